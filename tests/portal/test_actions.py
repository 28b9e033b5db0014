"""People's acts through the portal, on a real nats-server with the real services: a juror scores
on the form (a refusal shows next to the field and the input stays; another juror's assignment
does not open), a unit submits, an agency forwards three and is refused a fourth with the quota
message, a verifier overrides with a reason (the verifier id from the session), and a
certificate checks on the public page (a tampered code does not)."""

from __future__ import annotations

import datetime as dt
import re

from services.awards.app import create_app as awards_app
from services.common.settings import Settings
from services.portal.accounts import Role
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.awards.test_awards import YEAR as AWARDS_YEAR
from tests.awards.test_certificates import ceremony
from tests.portal.support import account, client, csrf_of, logged_in, portal
from tests.registration import test_service as reg
from tests.scoring.test_service import YEAR as SCORING_YEAR
from tests.scoring.test_service import cmd as scoring_cmd
from tests.scoring.test_service import open_desk_stage
from tests.support import eventually, request, running
from tests.verification import test_verification as ver


async def test_a_juror_scores_their_assignment_on_the_form(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    async with running(scoring_app(), nats_url, str(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")):
        plan = await open_desk_stage(nc, js)
        juror, pid = plan[0]
        other = next(p for j, p in plan if j != juror and (juror, p) not in plan)
        async with portal(nats_url, tmp_path, SCORING_YEAR) as app:
            await account(app, Role.JUROR, juror, "Juri Satu")
            async with logged_in(app, juror) as c:
                home = await c.get("/juror")
                assert home.status_code == 200 and f"/juror/desk/{pid}" in home.text
                mine = {p for j, p in plan if j == juror}
                assert set(re.findall(r"/juror/desk/(P\d+)", home.text)) == mine  # only their own
                form = await c.get(f"/juror/desk/{pid}")
                assert "Mutu" in form.text and "skala" in form.text and "bobot" in form.text and "50%" in form.text
                token = csrf_of(form.text)
                off = await c.post(f"/juror/desk/{pid}", data={"csrf_token": token, "score__mutu": "11", "score__dampak": "7", "comment": "Bagus"})
                assert off.status_code == 400 and "Nilai harus antara 1 dan 10" in off.text
                assert 'value="11"' in off.text and 'value="7"' in off.text and "Bagus" in off.text  # the input stays
                ok = await c.post(f"/juror/desk/{pid}", data={"csrf_token": token, "score__mutu": "8", "score__dampak": "7,5", "comment": "Bagus"})
                assert ok.status_code == 303
                saved = await c.get(ok.headers["location"])
                assert "Nilai tersimpan" in saved.text and 'value="8"' in saved.text and 'value="7.5"' in saved.text
                # revise through the JSON API: the envelope of scoring's reply
                api = await c.post(f"/api/juror/scores/desk/{pid}", json={"scores": {"mutu": 9, "dampak": 7.5}}, headers={"X-CSRF-Token": token})
                assert api.json()["ok"] is True
                listing = (await c.get("/api/juror/assignments")).json()["data"]
                row = next(a for a in listing["stages"][0]["assignments"] if a["proposal_id"] == pid)
                assert row["revision"] == 2 and row["scores"] == {"mutu": 9, "dampak": 7.5}
                # another juror's assignment does not open, and scoring refuses it anyway
                assert (await c.get(f"/juror/desk/{other}")).status_code == 404
                assert (await c.post(f"/juror/desk/{other}", data={"csrf_token": token, "score__mutu": "5"})).status_code == 404
                refused = await c.post(f"/api/juror/scores/desk/{other}", json={"scores": {"mutu": 5, "dampak": 5}}, headers={"X-CSRF-Token": token})
                assert refused.json()["error"]["code"] == "not_assigned"
        # Behind the portal, scoring itself refuses a juror reading another juror's assignments.
        someone = next(j for j, _ in plan if j != juror)
        peek = await request(nc, scoring_cmd("juror_assignments"), {"cycle_year": SCORING_YEAR, "juror_id": someone}, actor={"id": juror, "role": "juror"})
        assert peek["error"]["code"] == "not_allowed_to_read", peek
        own = await request(nc, scoring_cmd("juror_assignments"), {"cycle_year": SCORING_YEAR, "juror_id": juror}, actor={"id": juror, "role": "juror"})
        assert own["ok"] and {a["proposal_id"] for a in own["data"]["stages"][0]["assignments"]} == {p for j, p in plan if j == juror}


async def test_a_certificate_checks_on_the_public_page_and_a_tampered_one_does_not(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", public_url="http://portal.test")
    async with running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"):
        results = await ceremony(nc, js)
        winner = next(c for c in results["categories"] if c["key"] == "top")["winners"][0]
        code = winner["certificate_code"]
        async with portal(nats_url, tmp_path, AWARDS_YEAR) as app, client(app) as c:
            page = await c.get(f"/verify/{code}")
            assert page.status_code == 200 and "Piagam sah" in page.text and winner["unit_name"] in page.text
            assert "ed25519:" in page.text
            tampered = code[:-1] + ("A" if code[-1] != "A" else "B")
            bad = await c.get(f"/verify/{tampered}")
            assert "Piagam tidak sah" in bad.text and "Piagam sah" not in bad.text
            typed = await c.get("/verify", params={"code": code})
            assert typed.status_code == 303 and typed.headers["location"].endswith(f"/verify/{code}")
            api = (await c.get(f"/api/verify/{code}")).json()
            assert api["ok"] and api["data"]["valid"] is True and api["data"]["recipient"] == winner["unit_name"]
            assert (await c.get(f"/api/verify/{tampered}")).json()["data"]["valid"] is False
            assert (await c.get("/api/me")).json() == {"person": None}
            shown = await c.get("/results")
            assert winner["unit_name"] in shown.text and f"/verify/{code}" in shown.text


async def test_a_unit_submits_its_agency_is_refused_a_fourth_forward_and_the_unit_resubmits(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    async with running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        await reg.setup_call(nc, quota=3)
        async with portal(nats_url, tmp_path, reg.YEAR) as app:
            await account(app, Role.UNIT, "KAB-MALANG-U01", "Puskesmas 1")
            await account(app, Role.AGENCY, "KAB-MALANG", "Kabupaten Malang")
            async with logged_in(app, "KAB-MALANG-U01") as unit:
                form = await unit.get("/unit/new")
                fields = {
                    "csrf_token": csrf_of(form.text), "title": "Antrian Daring Puskesmas", "group": "umum", "category": "kesehatan",
                    "summary": "Antrian daring.", "problem": "Antrian panjang.", "solution": "Pendaftaran daring.", "impact": "Tunggu turun.",
                    "started_on": "2029-01-15", "document_uri": "https://portal.example/p.pdf", "contact_name": "Admin",
                    "contact_email": "bukan-email",
                }  # fmt: skip
                bad = await unit.post("/unit/new", data=fields)
                assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text and "Antrian Daring Puskesmas" in bad.text
                ok = await unit.post("/unit/new", data={**fields, "contact_email": "admin@malangkab.go.id"})
                assert ok.status_code == 303, ok.text
                own = ok.headers["location"].rsplit(":", 1)[1]  # /unit?notice=submitted:<id>
                listing = await unit.get("/unit")
                assert "Antrian Daring Puskesmas" in listing.text and own in listing.text
                again = await unit.post("/unit/new", data={**fields, "contact_email": "admin@malangkab.go.id"})
                assert again.status_code == 409 and "Judul ini sudah dipakai" in again.text
            others = [(await reg.submit(nc, f"KAB-MALANG-U{i:02d}", f"Inovasi Nomor {i}"))["data"]["id"] for i in range(2, 5)]
            async with logged_in(app, "KAB-MALANG") as agency:
                page = await agency.get("/agency")
                assert set(re.findall(r'id="row-(P\d{4}-\d+)"', page.text)) == {own, *others}
                assert "terpakai <span class=\"en\">used</span> 0 dari" in page.text
                token = csrf_of(page.text)
                for pid in others:
                    assert (await agency.post(f"/agency/proposals/{pid}/forward", data={"csrf_token": token})).status_code == 303
                fourth = await agency.post(f"/agency/proposals/{own}/forward", data={"csrf_token": token})
                assert fourth.status_code == 409 and "Kuota instansi sudah habis" in fourth.text
                assert "sisa <span class=\"en\">left</span> 0" in fourth.text
                api = await agency.post(f"/api/agency/proposals/{own}/forward", headers={"X-CSRF-Token": token})
                assert api.json()["error"]["code"] == "quota_exceeded"
                listed = (await agency.get("/api/agency/proposals")).json()["data"]["items"]
                assert sorted(p["status"] for p in listed) == ["forwarded", "forwarded", "forwarded", "submitted"]
                short = await agency.post(f"/agency/proposals/{own}/return", data={"csrf_token": token, "reason": "x"})
                assert short.status_code == 400 and "minimal 3 karakter" in short.text
                back = await agency.post(f"/agency/proposals/{own}/return", data={"csrf_token": token, "reason": "Lengkapi data dukung"})
                assert back.status_code == 303
            await account(app, Role.AGENCY, "OPD-DINKES", "Dinas Kesehatan")
            async with logged_in(app, "OPD-DINKES") as stranger:
                page = await stranger.get("/agency")
                assert "row-P" not in page.text  # another agency's proposals are not listed
                theirs = await stranger.post(f"/agency/proposals/{own}/forward", data={"csrf_token": csrf_of(page.text)})
                assert theirs.status_code == 409 and "instansi" in theirs.text
            assert (await request(nc, reg.cmd("get_proposal"), {"proposal_id": own}))["data"]["status"] == "returned"  # unchanged
            await account(app, Role.UNIT, "KAB-MALANG-U02", "Puskesmas 2")
            async with logged_in(app, "KAB-MALANG-U02") as neighbour:  # another unit cannot open it
                assert (await neighbour.get(f"/unit/proposals/{own}/edit")).status_code == 404
            async with logged_in(app, "KAB-MALANG-U01") as unit:
                listing = await unit.get("/unit")
                assert f"/unit/proposals/{own}/edit" in listing.text and "Lengkapi data dukung" in listing.text
                edit = await unit.get(f"/unit/proposals/{own}/edit")
                assert "Lengkapi data dukung" in edit.text and 'value="Antrian Daring Puskesmas"' in edit.text
                revised = await unit.post(f"/unit/proposals/{own}/edit", data={**fields, "csrf_token": csrf_of(edit.text), "contact_email": "admin@malangkab.go.id", "summary": "Antrian daring, dengan data dukung."})
                assert revised.status_code == 303, revised.text
        again = (await request(nc, reg.cmd("get_proposal"), {"proposal_id": own}))["data"]
        assert again["status"] == "submitted" and again["content"]["summary"] == "Antrian daring, dengan data dukung."


async def test_a_verifier_confirms_or_overrides_with_a_reason(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    async with running(verification_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"):
        for snap in (ver.snapshot("P1", "Satu Layanan"), ver.snapshot("P2", "Dua Layanan")):
            await ver.publish_forwarded(js, snap)

        async def started():  # type: ignore[no-untyped-def]
            body = ver.start_body(["P1", "P2"], review=True)
            body["rules"]["verifiers"] = ["V01"]
            r = await request(nc, ver.cmd("start_verification"), body)
            return r if r["ok"] else None

        await eventually(started)
        async with portal(nats_url, tmp_path, ver.YEAR) as app:
            await account(app, Role.VERIFIER, "V01", "Verifikator Satu")
            async with logged_in(app, "V01") as c:
                page = await c.get("/verifier")
                assert 'id="row-P1"' in page.text and 'id="row-P2"' in page.text and "Hasil otomatis" in page.text
                token = csrf_of(page.text)
                short = await c.post("/verifier/P1/decide", data={"csrf_token": token, "decision": "disqualified", "reason": "no"})
                assert short.status_code == 400 and "minimal 3 karakter" in short.text and 'value="no"' in short.text
                ok = await c.post("/verifier/P1/decide", data={"csrf_token": token, "decision": "disqualified", "reason": "Dokumen palsu", "verifier_id": "SOMEONE-ELSE"})
                assert ok.status_code == 303
                after = await c.get("/verifier")
                assert 'id="row-P1"' not in after.text and 'id="row-P2"' in after.text
            await account(app, Role.VERIFIER, "V02", "Bukan Verifikator Siklus Ini")
            async with logged_in(app, "V02") as c:
                page = await c.get("/verifier")
                unlisted = await c.post("/verifier/P2/decide", data={"csrf_token": csrf_of(page.text), "decision": "eligible", "reason": "Dokumen lengkap"})
                assert unlisted.status_code == 409 and "tidak terdaftar sebagai verifikator" in unlisted.text
                assert 'value="Dokumen lengkap"' in unlisted.text  # the input stays
        decision = (await request(nc, ver.cmd("get_decision"), {"cycle_year": ver.YEAR, "proposal_id": "P1"}))["data"]
        assert decision["final"] == "disqualified"
        assert decision["overrides"][-1]["verifier_id"] == "V01"  # the session's, not the form's


async def test_the_public_objects_during_the_window_with_a_spam_guard(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    async with running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"):
        plan = await open_desk_stage(nc, js)
        for juror, pid in plan:
            body = {"request_id": f"s-{juror}-{pid}", "cycle_year": SCORING_YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": 7, "dampak": 7}}
            assert (await request(nc, scoring_cmd("submit_score"), body))["ok"]
        until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
        closed = await request(nc, scoring_cmd("close_stage"), {"request_id": "close", "cycle_year": SCORING_YEAR, "stage": "desk", "at": dt.datetime.now(dt.UTC).isoformat(), "objection_window_until": until})
        assert closed["ok"], closed
        shortlisted = (await request(nc, scoring_cmd("get_shortlist"), {"cycle_year": SCORING_YEAR, "stage": "desk"}))["data"]["rows"][0]["proposal_id"]
        async with portal(nats_url, tmp_path, SCORING_YEAR, objections_per_hour=2) as app, client(app, host="10.1.1.1") as c:
            page = await c.get("/objections")
            assert page.status_code == 200 and "Kirim sanggahan" in page.text and shortlisted in page.text
            token = csrf_of(page.text)
            good = {"csrf_token": token, "proposal_id": shortlisted, "name": "Siti Warga", "contact": "siti@example.id", "reason": "Inovasi ini sudah menang tahun lalu."}
            short = await c.post("/objections/desk", data={**good, "reason": "buruk"})
            assert short.status_code == 400 and "minimal 10 karakter" in short.text and "Siti Warga" in short.text
            robot = await c.post("/objections/desk", data={**good, "website": "http://spam.example"})
            assert robot.status_code == 409 and "tidak dapat dikirim" in robot.text
            ok = await c.post("/objections/desk", data=good)
            assert ok.status_code == 303 and "filed=" in ok.headers["location"]
            assert "diterima" in (await c.get(ok.headers["location"])).text
            assert (await c.post("/objections/desk", data=good)).status_code == 303
            limited = await c.post("/objections/desk", data=good)
            assert limited.status_code == 429 and "Terlalu banyak sanggahan" in limited.text
        status = (await request(nc, scoring_cmd("objections_status"), {"cycle_year": SCORING_YEAR, "stage": "desk"}))["data"]
        assert status["filed"] == 2  # the robot's and the over-limit ones never reached scoring
