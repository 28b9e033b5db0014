"""The tracks' pages through the portal on a real nats-server, the services' side answered by the
contract-checked stand-ins of tests/portal/fakes.py: an evaluator enters a SAKIP sheet (what is
not a number, and what the service refuses, shown next to its field; after the entry the grade
and every part), a CETTAR sheet shows its parts with their sources; a reviewer approves or
returns, is refused their own sheet in Indonesian, and a return needs its reason; a work-culture
group submits its risalah with its PDF; the results page shows every track; the archive is
searched with filters and pages, an innovation lists where it was replicated, and a unit's
replication names its original. Each act's person comes from the session, never the form.

tests/portal/test_tracks_services.py walks the same pages against the real services."""

from __future__ import annotations

import hashlib
import re

from contracts.awards import CertificateView, VerifyCertificate
from contracts.base import Reply
from contracts.registration import SearchArchive, SubmitProposal, SubmitRisalah
from contracts.verification import EnterEvaluation, ReviewEvaluation
from services.portal.accounts import Role
from tests.portal.fakes import (
    Awards,
    Evaluations,
    Registration,
    archive_entries,
    responding,
    results_all_tracks,
)
from tests.portal.support import account, client, csrf_of, logged_in, portal

YEAR = 2033
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
SHEET = {"subject_code": "OPD-DINKES", "subject_name": "Dinas Kesehatan", "subject_kind": "opd", "planning": "28", "measurement": "27,5", "reporting": "14", "internal_evaluation": "22"}  # fmt: skip


async def test_an_evaluator_enters_a_sakip_sheet_and_sees_its_grade_and_parts(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    evaluations = Evaluations(YEAR)
    async with responding(nc, evaluations.handlers()) as received, portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.EVALUATOR, "E01", "Evaluator Satu")
        async with logged_in(app, "E01") as c:
            home = await c.get("/evaluator")
            assert home.status_code == 200 and 'href="/evaluator/sakip"' in home.text and 'href="/evaluator/cettar"' in home.text
            page = await c.get("/evaluator/sakip")
            assert page.status_code == 200 and 'id="internal_evaluation"' in page.text and "Belum ada lembar" in page.text
            assert 'inputmode="decimal"' in page.text  # a phone offers the number pad
            token = csrf_of(page.text)
            # not a number: refused by the portal next to its field, nothing sent, the input kept
            typo = await c.post("/evaluator/sakip", data={**SHEET, "reporting": "empat belas", "csrf_token": token})
            assert typo.status_code == 400 and 'id="reporting-error"' in typo.text and "Isikan angka" in typo.text
            assert 'value="empat belas"' in typo.text and 'value="Dinas Kesehatan"' in typo.text
            assert not [cmd for cmd, _ in received if isinstance(cmd, EnterEvaluation)]
            # above the component's maximum: the service refuses; shown next to that field in Indonesian
            over = await c.post("/evaluator/sakip", data={**SHEET, "measurement": "31", "csrf_token": token})
            assert over.status_code == 409 and 'id="measurement-error"' in over.text and "tidak sesuai rubrik" in over.text
            assert "Nilai harus antara 0 dan 30 menurut rubrik." in over.text
            assert 'aria-invalid="true"' in over.text and 'value="31"' in over.text
            # a good sheet, with another evaluator's id typed into the form: the session's is sent
            saved = await c.post("/evaluator/sakip", data={**SHEET, "evaluator_id": "E99", "csrf_token": token})
            assert saved.status_code == 303 and saved.headers["location"] == "/evaluator/sakip/OPD-DINKES?notice=entered"
            sent, actor = [(cmd, a) for cmd, a in received if isinstance(cmd, EnterEvaluation)][-1]
            assert sent.evaluator_id == "E01" and actor is not None and (actor.id, actor.role) == ("E01", "evaluator")
            assert sent.values == {"planning": 28.0, "measurement": 27.5, "reporting": 14.0, "internal_evaluation": 22.0}
            sheet = await c.get(saved.headers["location"])
            assert sheet.status_code == 200 and 'id="saved"' in sheet.text
            assert "Sangat Memuaskan" in sheet.text and "91.50" in sheet.text and "menunggu telaah" in sheet.text
            assert "Pengukuran Kinerja" in sheet.text and "maks 30" in sheet.text and "sakip-test" in sheet.text
            # the form now shows each component's maximum as the service's rubric gives it
            again = await c.get("/evaluator/sakip")
            assert "maksimal 15 menurut rubrik" in again.text and "/evaluator/sakip/OPD-DINKES" in again.text
            # the JSON API: the envelope of verification's reply
            api = await c.post("/api/evaluator/rb", json={"subject_code": "OPD-DINKES", "subject_name": "Dinas Kesehatan", "values": {"index": 82.1}}, headers={"X-CSRF-Token": token})
            assert api.json()["ok"] is True and api.json()["data"]["grade"] == "A"
            assert (await c.get("/api/evaluator/rb")).json()["data"]["total"] == 1
            assert (await c.get("/evaluator/wbk")).status_code == 404  # not an evaluation track
    registration = Registration(YEAR)
    (tmp_path / "again").mkdir()
    async with responding(nc, {**evaluations.handlers(), **registration.handlers()}) as received, portal(nats_url, tmp_path / "again", YEAR) as app:
        await account(app, Role.EVALUATOR, "E01")
        async with logged_in(app, "E01") as c:
            page = await c.get("/evaluator/sakip")  # the registry's agencies and regions offered, not its units
            assert '<option value="KAB-JEMBER">Kabupaten Jember</option>' in page.text and "OPD-DINKES-U01" not in page.text
            by_code = await c.post("/evaluator/sakip", data={**SHEET, "subject_code": "KAB-JEMBER", "subject_name": "", "subject_kind": "opd", "csrf_token": csrf_of(page.text)})
            assert by_code.status_code == 303
            sent = [cmd for cmd, _ in received if isinstance(cmd, EnterEvaluation)][-1]
            assert (sent.subject_name, sent.subject_kind) == ("Kabupaten Jember", "kabupaten")  # the registry's


async def test_a_cettar_rating_shows_its_parts_with_their_sources(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    evaluations = Evaluations(YEAR)
    async with responding(nc, evaluations.handlers()), portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.EVALUATOR, "E01")
        async with logged_in(app, "E01") as c:
            page = await c.get("/evaluator/cettar")
            assert 'id="work_culture"' in page.text and 'id="planning"' not in page.text
            r = await c.post("/evaluator/cettar", data={"subject_code": "KOTA-BATU", "subject_name": "Kota Batu", "subject_kind": "kota", "work_culture": "90", "csrf_token": csrf_of(page.text)})
            assert r.status_code == 303
            sheet = (await c.get(r.headers["location"])).text
            for words in ("Zona Integritas", "wbk 2033: mean LKE total of 2 unit(s)", "missing: counted as 0", "bobot", "Budaya Kerja"):
                assert words in sheet, words


async def test_a_reviewer_approves_returns_and_is_refused_their_own_sheet(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    evaluations = Evaluations(YEAR)
    async with responding(nc, evaluations.handlers()) as received, portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.EVALUATOR, "E01")
        await account(app, Role.EVALUATOR, "198001012005011001", login="evaluator-nip")
        await account(app, Role.REVIEWER, "198001012005011001", login="reviewer-nip")  # the same person, both roles
        await account(app, Role.REVIEWER, "R02")
        for who, subject in (("E01", "OPD-DINKES"), ("evaluator-nip", "OPD-BAPPEDA"), ("E01", "OPD-DISHUB")):
            async with logged_in(app, who) as c:
                page = await c.get("/evaluator/sakip")
                r = await c.post("/evaluator/sakip", data={**SHEET, "subject_code": subject, "subject_name": subject, "csrf_token": csrf_of(page.text)})
                assert r.status_code == 303, r.text
        async with logged_in(app, "reviewer-nip") as c:
            page = await c.get("/reviewer")
            assert page.status_code == 200 and page.text.count('<article class="sheet"') == 3
            assert "Sangat Memuaskan" in page.text and "Perencanaan Kinerja" in page.text
            token = csrf_of(page.text)
            own = await c.post("/reviewer/sakip/OPD-BAPPEDA/review", data={"decision": "approve", "reviewer_id": "R02", "csrf_token": token})
            assert own.status_code == 409 and 'id="error-sakip-OPD-BAPPEDA"' in own.text
            assert "tidak dapat menelaah lembar yang Anda isi sendiri" in own.text
            sent, actor = [(cmd, a) for cmd, a in received if isinstance(cmd, ReviewEvaluation)][-1]
            assert sent.reviewer_id == "198001012005011001" and actor is not None and actor.role == "reviewer"  # never the form's R02
            bare = await c.post("/reviewer/sakip/OPD-DINKES/review", data={"decision": "return", "reason": "", "csrf_token": token})
            assert bare.status_code == 400 and "perlu alasan" in bare.text and 'id="error-sakip-OPD-DINKES"' in bare.text
            back = await c.post("/reviewer/sakip/OPD-DINKES/review", data={"decision": "return", "reason": "Bukti pengukuran belum lengkap", "csrf_token": token})
            assert back.status_code == 303 and back.headers["location"] == "/reviewer?notice=returned:sakip-OPD-DINKES"
            ok = await c.post("/reviewer/sakip/OPD-DISHUB/review", data={"decision": "approve", "csrf_token": token})
            assert ok.status_code == 303
            left = await c.get("/reviewer")
            assert left.text.count('<article class="sheet"') == 1 and "OPD-BAPPEDA" in left.text
        async with logged_in(app, "R02") as c:
            token = csrf_of((await c.get("/reviewer")).text)
            api = await c.post("/api/reviewer/sakip/OPD-BAPPEDA", json={"approve": True}, headers={"X-CSRF-Token": token})
            assert api.json()["ok"] is True and api.json()["data"]["state"] == "approved"
            assert (await c.get("/api/reviewer/pending")).json()["data"] == {"sakip": [], "rb": [], "cettar": []}
        async with logged_in(app, "E01") as c:
            listing = (await c.get("/evaluator/sakip")).text
            assert "dikembalikan" in listing and "Bukti pengukuran belum lengkap" in listing and "disetujui" in listing
    assert {(k, v.state) for (_, k), v in evaluations.sheets.items()} == {("OPD-DINKES", "returned"), ("OPD-DISHUB", "approved"), ("OPD-BAPPEDA", "approved")}


async def test_a_work_culture_group_submits_its_risalah_with_its_pdf(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    registration = Registration(YEAR)
    async with responding(nc, registration.handlers()) as received, portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.KBK_GROUP, "KAB-MALANG-U01-KBK1", "KBK Gugus Melati")
        await account(app, Role.KBK_GROUP, "KAB-MALANG-U01-KBK2")
        async with logged_in(app, "KAB-MALANG-U01-KBK1") as c:
            home = await c.get("/kbk")
            assert home.status_code == 200 and "Belum ada risalah" in home.text and "Pendaftaran KBK" in home.text
            form = await c.get("/kbk/new")
            assert "Judul risalah" in form.text and "Klaster" in form.text and 'id="replicates"' not in form.text and 'type="file"' in form.text
            fields = {
                "title": "Mengurangi Berkas Hilang", "category": "pelayanan_publik", "summary": "Berkas tertata.", "problem": "Berkas hilang.",
                "solution": "Penomoran dan rak arsip.", "impact": "Nol berkas hilang.", "started_on": "2032-02-01", "contact_name": "Ketua KBK",
                "contact_email": "kbk@malangkab.go.id", "group_code": "OTHER-KBK", "csrf_token": csrf_of(form.text),
            }  # fmt: skip
            r = await c.post("/kbk/new", data=fields, files={"documents": ("risalah.pdf", PDF, "application/pdf")})
            assert r.status_code == 303, r.text
            rid = r.headers["location"].rsplit(":", 1)[1]
            sent, actor = [(cmd, a) for cmd, a in received if isinstance(cmd, SubmitRisalah)][-1]
            assert sent.group_code == "KAB-MALANG-U01-KBK1" and actor is not None and actor.role == "kbk_group"
            assert sent.content.group == "umum" and sent.content.category == "pelayanan_publik"
            uri = f"nats-os://bfest-docs-{YEAR}/sha256-{hashlib.sha256(PDF).hexdigest()}.pdf"
            assert [d.uri for d in sent.content.documents] == [uri]
            listed = await c.get("/kbk")
            assert "Mengurangi Berkas Hilang" in listed.text and f'id="row-{rid}"' in listed.text
            docs = await c.get(f"/proposals/{rid}/documents")  # its own risalah's PDF
            assert docs.status_code == 200 and "risalah.pdf" in docs.text
            # returned by the agency admin: revised on the same form, its PDF still attached, and resubmitted
            registration.proposals[rid] = registration.proposals[rid].model_copy(update={"status": "returned", "returned_reason": "Lengkapi data dukung"})
            edit = await c.get(f"/kbk/risalah/{rid}/edit")
            assert edit.status_code == 200 and "Lengkapi data dukung" in edit.text and "risalah.pdf" in edit.text
            kept = re.findall(r'name="document_kept" value="([^"]+)" checked', edit.text)
            again = await c.post(f"/kbk/risalah/{rid}/edit", data={**fields, "title": "Mengurangi Berkas Hilang (revisi)", "document_kept": kept[0]})
            assert again.status_code == 303, again.text
            resent = [cmd for cmd, _ in received if isinstance(cmd, SubmitRisalah)][-1]
            assert (resent.proposal_id, resent.content.title, [d.uri for d in resent.content.documents]) == (rid, "Mengurangi Berkas Hilang (revisi)", [uri])
        async with logged_in(app, "KAB-MALANG-U01-KBK2") as c:  # another group sees none of it
            assert (await c.get(f"/kbk/risalah/{rid}/edit")).status_code == 404
            assert (await c.get(f"/proposals/{rid}/documents")).status_code == 404


async def test_the_results_page_shows_every_track(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    async with responding(nc, Awards(results_all_tracks(YEAR)).handlers()), portal(nats_url, tmp_path, YEAR) as app, client(app) as c:
        page = await c.get("/results")
        assert page.status_code == 200
        text = page.text
        order = [text.index(f'id="track-{t}"') for t in ("kovablik", "wbk", "kbk", "sakip", "rb", "cettar")]
        assert order == sorted(order)
        for words in ("Antrian Daring Puskesmas", "RSUD Soetomo", "KBK Gugus Melati", "Mengurangi Berkas Hilang", "Sangat Memuaskan (AA)", "penyerahan hasil SAKIP", "A (Sangat Baik)", "Sangat Cettar"):
            assert words in text, words
        cettar = text[text.index('id="track-cettar"') :]
        for words in ("Zona Integritas: 79", "wbk 2033: mean LKE total of 3 unit(s)", "SAKIP: 88", "sakip 2033 (approved)", "bobot"):
            assert words in cettar, words
        sakip = text[text.index('id="track-sakip"') : text.index('id="track-rb"')]
        assert "Pengukuran Kinerja: 27.5 / 30" in sakip and "sakip-permenpanrb-88-2021" in sakip


async def test_a_sakip_handover_certificate_says_what_it_attests(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    """The awards branch adds what a certificate attests to its check (kind, track, grade, score);
    the page shows them when they come, and is as before when they do not."""
    handover = {
        "valid": True, "code": "BF33-SAKP-0001-AAAA", "cycle_year": YEAR, "award_key": "sakip_result", "award_name": "Penyerahan Hasil Evaluasi SAKIP",
        "recipient": "Dinas Kesehatan", "key_id": "ed25519:0123456789abcdef", "unit_code": "OPD-DINKES",
    }  # fmt: skip
    attests = {"certificate_kind": "sakip_result", "track": "sakip", "grade": "AA", "score": "91.50"}
    CertificateView.model_validate(handover)
    answers = {"BF33-SAKP-0001-AAAA": {**handover, **attests}, "BF33-TOPX-0001-AAAA": {**handover, "code": "BF33-TOPX-0001-AAAA", "award_name": "TOP Inovasi"}}
    handlers = {VerifyCertificate: lambda cmd, actor: Reply.success(answers[cmd.code])}
    async with responding(nc, handlers), portal(nats_url, tmp_path, YEAR) as app, client(app) as c:
        page = (await c.get("/verify/BF33-SAKP-0001-AAAA")).text
        assert "Piagam sah" in page and "Penyerahan hasil evaluasi SAKIP" in page and ">AA<" in page and "91.50" in page
        plain = (await c.get("/verify/BF33-TOPX-0001-AAAA")).text
        assert "Piagam sah" in plain and "Penyerahan hasil evaluasi SAKIP" not in plain and "Predikat" not in plain


async def test_the_archive_is_searched_and_an_innovation_lists_its_replications(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    registration = Registration(YEAR, archive_entries())
    async with responding(nc, registration.handlers()) as received, portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.UNIT, "KOTA-BATU-U01")
        async with client(app) as c:
            first = await c.get("/archive")
            assert first.status_code == 200 and "Ditemukan 28 inovasi" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text
            second = await c.get("/archive?offset=20")
            assert "21–28 dari" in second.text and 'rel="prev"' in second.text and 'rel="next"' not in second.text
            found = await c.get("/archive?text=antrian&group=replikasi&region=Kota+Batu&year=2032&category=kesehatan")
            assert "Ditemukan 1 inovasi" in found.text and "Antrian Daring Kota Batu" in found.text
            query = [cmd for cmd, _ in received if isinstance(cmd, SearchArchive)][-1]
            assert (query.text, query.group, query.region, query.year, query.category) == ("antrian", "replikasi", "Kota Batu", 2032, "kesehatan")
            bad = await c.get("/archive?year=dulu")
            assert bad.status_code == 400 and 'id="year-error"' in bad.text
            original = await c.get("/archive/2031-P0007")
            assert original.status_code == 200 and "TOP 5 KOVABLIK 2031" in original.text
            replications = original.text[original.text.index('id="replications"') :]
            assert 'href="/archive/2032-P0010"' in replications and "Kota Batu" in replications and "Kabupaten Jember" in replications
            copy = await c.get("/archive/2032-P0010")
            assert 'id="replicates"' in copy.text and 'href="/archive/2031-P0007"' in copy.text
            assert (await c.get("/archive/2099-NONE")).status_code == 404
            assert (await c.get("/archive/bukan id")).status_code == 404
            assert (await c.get("/api/archive?text=antrian")).json()["data"]["total"] == 3
        async with logged_in(app, "KOTA-BATU-U01") as unit:
            form = await unit.get("/unit/new")
            assert 'id="replicates"' in form.text and "Replikasi dari" in form.text
            fields = {
                "title": "Antrian Daring Kota Batu", "group": "replikasi", "category": "kesehatan", "summary": "Replikasi.", "problem": "Antre.",
                "solution": "Daring.", "impact": "Cepat.", "started_on": "2032-01-15", "document_uri": "https://portal.example/p.pdf",
                "contact_name": "Admin", "contact_email": "admin@batukota.go.id", "csrf_token": csrf_of(form.text),
            }  # fmt: skip
            unknown = await unit.post("/unit/new", data={**fields, "replicates": "2031-P9999"})
            assert unknown.status_code == 409 and 'id="replicates-error"' in unknown.text and "tidak ada di rumah inovasi" in unknown.text
            assert 'value="2031-P9999"' in unknown.text
            ok = await unit.post("/unit/new", data={**fields, "replicates": "2031-P0007"})
            assert ok.status_code == 303
            sent = [cmd for cmd, _ in received if isinstance(cmd, SubmitProposal)][-1]
            assert sent.content.replicates == "2031-P0007" and sent.unit_code == "KOTA-BATU-U01"
            plain = await unit.post("/unit/new", data={**fields, "group": "umum", "title": "Inovasi Lain"})
            assert plain.status_code == 303
            assert [cmd for cmd, _ in received if isinstance(cmd, SubmitProposal)][-1].content.replicates is None


async def test_an_agency_admin_sees_risalah_beside_proposals_with_each_quota_apart(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    registration = Registration(YEAR)
    async with responding(nc, registration.handlers()), portal(nats_url, tmp_path, YEAR) as app:
        await account(app, Role.KBK_GROUP, "KAB-MALANG-U01-KBK1")
        await account(app, Role.AGENCY, "KAB-MALANG")
        content = {
            "title": "Mengurangi Berkas Hilang", "group": "umum", "category": "pelayanan_publik", "summary": "S.", "problem": "P.", "solution": "S.",
            "impact": "I.", "started_on": "2032-02-01", "contact": {"name": "Ketua", "email": "kbk@malangkab.go.id"},
        }  # fmt: skip
        for i, (cls, who) in enumerate(((SubmitRisalah, {"group_code": "KAB-MALANG-U01-KBK1"}), (SubmitProposal, {"unit_code": "KAB-MALANG-U02"}), (SubmitProposal, {"unit_code": "KAB-MALANG-U03"}))):
            body = {"request_id": f"r{i}", "cycle_year": YEAR, "content": {**content, "title": f"Judul {i}"}, **who}
            stored = registration._store(cls.model_validate(body), "kbk" if cls is SubmitRisalah else "kovablik", who.get("unit_code", "KAB-MALANG-U01"), who.get("group_code"))
            registration.proposals[stored.data["id"]] = registration.proposals[stored.data["id"]].model_copy(update={"status": "forwarded"} if i < 2 else {})
        async with logged_in(app, "KAB-MALANG") as c:
            page = (await c.get("/agency")).text
            assert re.search(r'id="quota">.*terpakai <span class="en">used</span> 1 dari <span class="en">of</span> 3', page)
            assert re.search(r'id="kbk-quota">.*terpakai <span class="en">used</span> 1 dari <span class="en">of</span> 3', page)
            assert "Risalah KBK" in page and "KBK KAB-MALANG-U01-KBK1" in page
