"""The tracks' pages against the real services on a real nats-server (test_tracks.py drives the same
pages against stand-ins): an evaluator's SAKIP sheet graded by verification's rubric, a value
above its component's maximum refused next to that field, a reviewer refused their own sheet and
another approving it; a work-culture group's risalah with its PDF kept by registration; the
archive searched and an imported innovation listing its replication, which a unit then names.

Each test needs its service's handlers for issue 26 (the verification and registration branches):
until they are merged it is skipped, naming what it waits for."""

from __future__ import annotations

import pytest

from contracts import subjects
from contracts.registration import GetArchived, SubmitRisalah
from contracts.verification import EnterEvaluation, ReviewEvaluation
from services.portal.accounts import Role
from tests.portal.support import account, client, csrf_of, logged_in, portal
from tests.support import eventually, request, running

RUBRIC = "sakip-permenpanrb-88-2021"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def _needs(app, *commands) -> None:  # type: ignore[no-untyped-def]
    missing = [c.NAME for c in commands if c.subject() not in app.commands.handlers]
    if missing:
        pytest.skip(f"needs the {commands[0].SERVICE} branch of issue 26 merged (no handler for {', '.join(missing)})")


async def test_sheets_are_graded_and_reviewed_by_the_verification_service(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    from services.verification.app import create_app as verification_app

    year = 2032
    service = verification_app()
    _needs(service, EnterEvaluation, ReviewEvaluation)
    async with running(service, nats_url, f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"):
        opened = await request(nc, subjects.command("verification", "open_evaluation"), {
            "request_id": "open-sakip", "cycle_year": year, "kind": "sakip", "rubric": RUBRIC,
            "deadline": f"{year}-09-30T16:00:00+07:00", "at": f"{year}-08-01T08:00:00+07:00",
        })  # fmt: skip
        assert opened["ok"], opened
        async with portal(nats_url, tmp_path, year) as app:
            await account(app, Role.EVALUATOR, "E1")
            await account(app, Role.REVIEWER, "E1", login="E1-reviewer")  # the same person as reviewer
            await account(app, Role.REVIEWER, "R1")
            async with logged_in(app, "E1") as c:
                token = csrf_of((await c.get("/evaluator/sakip")).text)
                sheet = {"subject_code": "KAB-JEMBER", "subject_name": "Pemerintah Kabupaten Jember", "subject_kind": "kabupaten", "planning": "27,5", "measurement": "25", "reporting": "12.5", "internal_evaluation": "20", "csrf_token": token}  # fmt: skip
                over = await c.post("/evaluator/sakip", data={**sheet, "reporting": "16"})
                assert over.status_code == 409 and 'id="reporting-error"' in over.text and "Nilai harus antara 0 dan 15 menurut rubrik." in over.text
                saved = await c.post("/evaluator/sakip", data=sheet)
                assert saved.status_code == 303, saved.text
                page = (await c.get(saved.headers["location"])).text
                assert "Memuaskan" in page and "85.00" in page and "(A)" in page and RUBRIC in page and "maks 30" in page
            async with logged_in(app, "E1-reviewer") as c:
                listing = await c.get("/reviewer")
                assert "Pemerintah Kabupaten Jember" in listing.text
                own = await c.post("/reviewer/sakip/KAB-JEMBER/review", data={"decision": "approve", "csrf_token": csrf_of(listing.text)})
                assert own.status_code == 409 and "tidak dapat menelaah lembar yang Anda isi sendiri" in own.text
            async with logged_in(app, "R1") as c:
                listing = await c.get("/reviewer")
                ok = await c.post("/reviewer/sakip/KAB-JEMBER/review", data={"decision": "approve", "csrf_token": csrf_of(listing.text)})
                assert ok.status_code == 303, ok.text
        got = await request(nc, subjects.command("verification", "get_evaluation"), {"cycle_year": year, "kind": "sakip", "subject_code": "KAB-JEMBER"})
        assert (got["data"]["state"], got["data"]["evaluator_id"], got["data"]["reviewer_id"]) == ("approved", "E1", "R1")


async def test_a_risalah_and_the_archive_through_the_registration_service(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    from services.registration.app import create_app as registration_app
    from tests.registration import test_service as reg

    service = registration_app()
    _needs(service, SubmitRisalah, GetArchived)
    group = {"code": "KAB-MALANG-U01-KBK1", "name": "KBK Sigap", "kind": "kbk", "parent_code": "KAB-MALANG-U01"}
    rows = [
        {"id": "ARSIP-2019-001", "year": 2019, "title": "Antrian Daring Puskesmas", "unit_name": "Puskesmas Kepanjen", "agency_name": "Kabupaten Malang", "region": "Kabupaten Malang", "category": "kesehatan", "group": "umum", "summary": "Pendaftaran dari rumah.", "award": "TOP 35"},
        {"id": "ARSIP-2020-007", "year": 2020, "title": "Antrian Daring Batu", "unit_name": "Puskesmas Batu", "agency_name": "Kota Batu", "region": "Kota Batu", "category": "kesehatan", "group": "replikasi", "summary": "Replikasi antrian daring.", "replicates": "ARSIP-2019-001"},
    ]  # fmt: skip
    async with running(service, nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        await reg.setup_call(nc, quota=3)
        assert (await request(nc, reg.cmd("import_participants"), {"request_id": "groups", "participants": [group]}))["ok"]
        kbk = {"request_id": "open-kbk", "cycle_year": reg.YEAR, "track": "kbk", "opens_at": "2031-03-01T08:00:00+07:00", "closes_at": "2031-05-31T12:00:00+07:00", "quota_per_agency": 1}  # fmt: skip
        assert (await request(nc, reg.cmd("open_call"), kbk))["ok"]
        imported = await request(nc, reg.cmd("import_archive"), {"request_id": "arch", "rows": rows})
        assert imported["ok"], imported
        async with portal(nats_url, tmp_path, reg.YEAR) as app:
            await account(app, Role.KBK_GROUP, group["code"])
            await account(app, Role.UNIT, "KAB-MALANG-U02")
            async with logged_in(app, group["code"]) as c:
                form = await c.get("/kbk/new")
                fields = {
                    "title": "Risalah Berkas Tertib", "category": "pelayanan_publik", "summary": "Berkas tertata.", "problem": "Berkas hilang.",
                    "solution": "Rak arsip.", "impact": "Nol berkas hilang.", "started_on": "2030-02-01", "contact_name": "Ketua",
                    "contact_email": "kbk@malangkab.go.id", "csrf_token": csrf_of(form.text),
                }  # fmt: skip
                r = await c.post("/kbk/new", data=fields, files={"documents": ("risalah.pdf", PDF, "application/pdf")})
                assert r.status_code == 303, r.text
                rid = r.headers["location"].rsplit(":", 1)[1]
                assert "Risalah Berkas Tertib" in (await c.get("/kbk")).text
                assert "risalah.pdf" in (await c.get(f"/proposals/{rid}/documents")).text
            stored = (await request(nc, reg.cmd("get_proposal"), {"proposal_id": rid}))["data"]
            assert (stored["track"], stored["group_code"], stored["unit_code"]) == ("kbk", group["code"], "KAB-MALANG-U01")
            async with client(app) as public:
                found = await public.get("/archive?text=antrian&region=Kota+Batu")
                assert 'href="/archive/ARSIP-2020-007"' in found.text and 'href="/archive/ARSIP-2019-001"' not in found.text
                original = await public.get("/archive/ARSIP-2019-001")
                assert 'href="/archive/ARSIP-2020-007"' in original.text and "Kota Batu" in original.text
            async with logged_in(app, "KAB-MALANG-U02") as unit:
                form = await unit.get("/unit/new")
                fields = {**reg.content("Antrian Daring Malang"), "csrf_token": csrf_of(form.text)}
                base = {k: v for k, v in fields.items() if isinstance(v, str)} | {"group": "replikasi", "document_uri": "https://portal.example/p.pdf", "contact_name": "Admin", "contact_email": "admin@malangkab.go.id"}
                unknown = await unit.post("/unit/new", data={**base, "replicates": "ARSIP-1999-404"})
                assert unknown.status_code == 409 and 'id="replicates-error"' in unknown.text
                ok = await unit.post("/unit/new", data={**base, "replicates": "ARSIP-2019-001"})
                assert ok.status_code == 303, ok.text


async def test_the_results_of_one_ceremony_across_tracks_from_the_awards_service(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    """The awards service's results of a year with every track (its own test's year, from
    tests/awards/test_tracks.py of the awards branch) on the public results page."""
    from contracts.awards import DetermineAwards
    from services.awards.app import create_app as awards_app
    from services.common.settings import Settings

    tracks = pytest.importorskip("tests.awards.test_tracks", reason="needs the awards branch of issue 26 merged (tests/awards/test_tracks.py)")
    if "tracks" not in DetermineAwards.model_fields:
        pytest.skip("needs the awards branch of issue 26 merged")
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", public_url="http://portal.test")
    async with running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"):
        await tracks.arrive_all_but_cettar(nc, js)
        await tracks.publish(js, tracks.closed("cettar"))

        async def determined():  # type: ignore[no-untyped-def]
            r = await request(nc, tracks.cmd("determine_awards"), tracks.body("det"))
            return r if r["ok"] else None

        assert await eventually(determined)
        announced = await request(nc, tracks.cmd("announce_awards"), {"request_id": "ann", "cycle_year": tracks.YEAR, "ceremony": tracks.CEREMONY, "at": tracks.AT})
        assert announced["ok"], announced
        async with portal(nats_url, tmp_path, tracks.YEAR) as app, client(app) as c:
            page = (await c.get("/results")).text
    order = [page.index(f'id="track-{t}"') for t in ("kovablik", "wbk", "kbk", "sakip", "rb", "cettar")]
    assert order == sorted(order)
    cettar = page[page.index('id="track-cettar"') :]
    assert "Sangat Cettar" in cettar and "Zona Integritas" in cettar and "Kabupaten Banyuwangi" in cettar
    sakip = page[page.index('id="track-sakip"') : page.index('id="track-rb"')]
    assert "penyerahan hasil SAKIP" in sakip and "(AA)" in sakip
