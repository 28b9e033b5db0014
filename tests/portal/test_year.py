"""A compressed year through the portal in a real browser (Debian's chromium, Selenium): the real
nats-server, the four services, the cycle workflow, activities and bridge on Temporal's
time-skipping server (months pass in seconds), and the portal served by uvicorn. The people this
test follows act on the pages; the rest of the year's people are simulated through NATS, as in
tests/e2e/test_full_year.py.

A unit submits a proposal with its PDF; its agency admin forwards three and is refused a fourth with the quota
message in Indonesian; a verifier overrides an automatic decision with a reason; two jurors score
on the form and one cannot open another juror's assignment; a member of the public files an
objection during the window; the operator's dashboard follows the phases; the results page shows
the winners; a certificate's QR URL (read from the certificate PDF) verifies and a tampered code
does not. Every page is screenshotted (var/test-artifacts/portal/year/), checked by axe-core
against WCAG 2.1 A and AA, and checked at a phone's width (390 px) for sideways scrolling."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import uuid
from pathlib import Path
from typing import Any

import pypdf
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bfest.files.participants import load_default_participants
from bfest.simulation import Simulator, demo_jurors
from contracts.awards import GetResults, VerifyCertificate
from contracts.base import CyclePhase, ObjectionDecision, new_request_id
from contracts.cycle import CycleInput, stage_workflow_id
from contracts.registration import ListProposals, SubmitProposal
from contracts.scoring import DecideObjection, GetShortlist, JurorAssignments, StageStatus
from contracts.verification import GetDecision, VerificationStatus
from services.awards.app import create_app as awards_app
from services.common.messaging import CommandClient, CommandError
from services.common.settings import Settings
from services.portal.accounts import Role
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.e2e.test_full_year import _opened, _scored_again, _state, _verified, year_config
from tests.portal.support import PASSWORD, account, portal
from tests.portal.test_browser import AXE, CHROMEDRIVER, CHROMIUM, _browser, axe_violations, serving
from tests.support import eventually, running
from workflows.cycle import CycleWorkflow
from workflows.worker import running_worker

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "portal" / "year"
DESKTOP = (1280, 900)
PHONE = (390, 844)
DAY = dt.timedelta(days=1)
OPERATOR, VERIFIER = "biro-org", "VER-WEB"
WIDEST = """
const out = [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(-3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
return [document.documentElement.scrollWidth, window.innerWidth, out];
"""
"""The page's width at the phone's, its screen's, and the last elements that reach past the screen
(to name the culprit when the page scrolls sideways; a table's cells reach past it too while the
table scrolls in its own box)."""


class Browser:
    """One Chromium that each person uses in turn (log in, act, log out), with the checks every
    page gets: a screenshot at a desktop's width, axe-core's WCAG 2.1 AA rules, and at a phone's
    width a screenshot and no page wider than the screen."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.driver = _browser(*DESKTOP)
        self.driver.implicitly_wait(30)  # a page behind a busy shared machine still comes
        self.violations: list[str] = []
        self.too_wide: list[str] = []
        self.pages: list[str] = []

    def quit(self) -> None:
        self.driver.quit()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def page(self, name: str) -> str:
        """Check the page open now under ``name``; its <main> text."""
        d = self.driver
        text = str(d.find_element(By.TAG_NAME, "main").text)
        d.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        if AXE.exists():
            self.violations += [f"{name}: {v}" for v in axe_violations(d)]
        d.set_window_size(*PHONE)
        try:
            wide = d.execute_script(WIDEST)
            if wide[0] > wide[1]:
                self.too_wide.append(f"{name}: {wide[0]} px wide at a {wide[1]} px screen ({', '.join(wide[2])})")
            d.save_screenshot(str(ARTIFACTS / f"{name}-phone.png"))
        finally:
            d.set_window_size(*DESKTOP)
        self.pages.append(name)
        return text

    def login(self, login: str) -> None:
        self.open("/login")
        self.find("#login").send_keys(login)
        self.find("#password").send_keys(PASSWORD)
        self.find("main form button").click()
        self.find('header form[action="/logout"]')  # signed in (waits for the next page)

    def logout(self) -> None:
        self.find('header form[action="/logout"] button').click()
        self.find('header a[href="/login"]')


def _content(unit: str, title: str, started: dt.date) -> dict[str, Any]:
    return {
        "title": title, "group": "umum", "category": "kependudukan", "summary": f"{title} untuk warga.",
        "problem": "Warga menunggu lama.", "solution": "Layanan satu pintu daring.", "impact": "Waktu layanan turun 40%.",
        "started_on": started.isoformat(), "documents": [{"kind": "proposal", "uri": f"https://portal.example/docs/{unit}.pdf"}],
        "contact": {"name": f"Admin {unit}", "email": f"admin@{unit.lower()}.example.go.id"},
    }  # fmt: skip


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_a_compressed_year_through_the_portal_in_a_browser(temporal_env, nats_url, tmp_path):  # type: ignore[no-untyped-def]
    env = temporal_env
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    year = 2041 + uuid.uuid4().int % 49  # 2040 is test_operator's year with no cycle (one Temporal per session)
    cfg = year_config(await env.get_current_time(), year)
    seen: dict[str, str] = {}
    facts: dict[str, Any] = {}

    async with contextlib.AsyncExitStack() as stack:
        app = await stack.enter_async_context(portal(nats_url, tmp_path, year))
        app.state.temporal = env.client  # the operator's dashboard reads the time-skipping server
        base = await stack.enter_async_context(serving(app))
        # The certificates' QR codes open this portal's /verify/<code>.
        settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", public_url=base)
        for svc in (registration_app(settings), verification_app(settings), scoring_app(settings), awards_app(settings)):
            await stack.enter_async_context(running(svc, nats_url, f"sqlite+aiosqlite:///{tmp_path}/{svc.service}.db"))
        client = await CommandClient.connect(nats_url, timeout=30)
        stack.push_async_callback(client.close)
        sim = Simulator(client, year, seed=7, call_closes=cfg.call.closes.date())
        await sim.load_participants(load_default_participants())
        await sim.load_jurors(demo_jurors(30, 7))
        queue = f"q-{uuid.uuid4().hex[:8]}"
        await stack.enter_async_context(running_worker(env.client, nats_url, task_queue=queue))
        b = Browser(base)
        stack.callback(b.quit)

        async def act(step: Any, *args: Any) -> Any:
            """A browser step, off the event loop (which serves the portal and the services)."""
            return await asyncio.to_thread(step, *args)

        def dashboard(name: str) -> str:
            b.login(OPERATOR)
            b.open("/operator")
            text = b.page(name)
            facts.setdefault("phases", []).append(b.find("#phase").text)
            b.logout()
            return text

        # ------------------------------------------------------------------ the call
        handle = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{year}", task_queue=queue)

        async def phase(p: CyclePhase, stage: str | None = None) -> bool:
            s = await handle.query(CycleWorkflow.status)
            return s.phase == p and (stage is None or s.stage == stage)

        await eventually(lambda: phase(CyclePhase.CALL_OPEN))
        units = await sim.units_by_agency(16)
        agency = sorted(units)[-1]
        own_units = units.pop(agency)  # this agency's people use the portal; the others are simulated
        unit = own_units[0]
        await account(app, Role.UNIT, unit, sim.unit_names[unit])
        await account(app, Role.AGENCY, agency, sim.unit_names.get(agency, agency))
        await account(app, Role.VERIFIER, VERIFIER, "Verifikator Portal")
        await account(app, Role.OPERATOR, OPERATOR, "Biro Organisasi")
        seen["operator-call"] = await act(dashboard, "01-operator-call-open")
        started = cfg.call.closes.date() - dt.timedelta(days=800)
        title = f"Layanan Adminduk Jemput Bola {year}"
        pdf = tmp_path / "adminduk-jemput-bola.pdf"
        pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")

        def unit_submits() -> str:
            b.login(unit)
            b.open("/unit/new")
            typed = {
                "title": title, "category": "kependudukan", "summary": "Petugas datang ke desa.",
                "problem": "Warga desa jauh dari kantor.", "solution": "Petugas jemput bola dengan layanan daring.",
                "impact": "Waktu layanan turun 60%.", "document_uri": f"https://portal.example/docs/{unit}-web.pdf",
                "contact_name": "Admin Unit", "contact_email": "admin@unit.example.go.id",
            }  # fmt: skip
            for field, value in typed.items():
                b.find(f"#{field}").send_keys(value)
            Select(b.find("#group")).select_by_value("umum")
            b.driver.execute_script("document.getElementById('started_on').value = arguments[0]", started.isoformat())
            b.find("#documents").send_keys(str(pdf))  # the proposal's PDF, into the year's object store
            b.page("02-unit-new-proposal")
            b.find("main form button").click()
            b.find(".notice")
            seen["unit-list"] = b.page("03-unit-proposals")
            own = str(b.driver.current_url).rsplit(":", 1)[1]  # /unit?notice=submitted:<id>
            b.open(f"/proposals/{own}/documents")
            seen["unit-documents"] = b.page("03-unit-proposal-documents")
            b.logout()
            return own

        own = await act(unit_submits)
        others = []
        for n in range(1, 4):  # three more of the agency's proposals, sent by its (simulated) units
            u = own_units[n % len(own_units)]
            cmd = SubmitProposal(request_id=f"web-{year}-{n}", cycle_year=year, unit_code=u, content=_content(u, f"Inovasi Portal Nomor {n} Tahun {year}", started))  # type: ignore[arg-type]
            others.append((await sim.call(cmd))["id"])
        forwarded, fourth = [own, *others[:2]], others[2]

        def agency_forwards() -> None:
            b.login(agency)
            seen["agency"] = b.page("04-agency-proposals")
            for pid in forwarded:
                b.find(f'form[action="/agency/proposals/{pid}/forward"] button').click()
                b.driver.find_element(By.XPATH, f'//div[@class="notice" and contains(., "forwarded:{pid}")]')
            b.find(f'form[action="/agency/proposals/{fourth}/forward"] button').click()
            b.find(".alert")
            seen["agency-refused"] = b.page("05-agency-quota-refused")
            b.logout()

        await act(agency_forwards)
        listed = await sim.call(ListProposals(cycle_year=year, agency_code=agency, limit=100))
        facts["agency-statuses"] = {p["id"]: p["status"] for p in listed["items"]}
        stats = await sim.run_call(units, per_agency=3, quota=3)
        sim.proposals += [{"id": pid, "agency": agency, "unit": unit} for pid in forwarded]
        await sim.submit_lkes([us[0] for us in list(units.values())[:6]])

        # ------------------------------------------------------------------ verification
        await env.sleep(31 * DAY)
        await eventually(lambda: phase(CyclePhase.VERIFICATION), timeout=30)

        async def pending() -> list[str]:
            try:
                st = await sim.call(VerificationStatus(cycle_year=year, list_pending=True))
            except CommandError:
                return []
            return list(st.get("pending_ids") or [])

        waiting = await eventually(pending, timeout=30)
        seen["operator-verification"] = await act(dashboard, "06-operator-verification")
        decisions = {pid: await sim.call(GetDecision(cycle_year=year, proposal_id=pid)) for pid in waiting[:50] if pid != own}
        target = next((pid for pid, d in decisions.items() if d["automatic"] == "disqualified"), next(iter(decisions)))
        overruled = "eligible" if decisions[target]["automatic"] == "disqualified" else "disqualified"
        reason = "Dokumen asli diperiksa ulang oleh verifikator"

        def verifier_overrides() -> None:
            b.login(VERIFIER)
            seen["verifier"] = b.page("07-verifier-pending")
            Select(b.find(f"#decision-{target}")).select_by_value(overruled)
            b.find(f"#reason-{target}").send_keys(reason)
            b.find(f'form[action="/verifier/{target}/decide"] button').click()
            b.find(".notice")
            seen["verifier-done"] = b.page("08-verifier-overridden")
            facts["still-pending"] = [e.get_attribute("id")[4:] for e in b.driver.find_elements(By.CSS_SELECTOR, "tr[id^=row-]")]
            b.logout()

        await act(verifier_overrides)
        facts["override"] = await sim.call(GetDecision(cycle_year=year, proposal_id=target))
        everyone = sim.proposals
        sim.proposals = [p for p in everyone if p["id"] != target]  # the other results: confirmed as the demo does
        await eventually(_verified(sim), timeout=30)
        sim.proposals = everyone

        # ------------------------------------------------------------------ the jury
        for stage in cfg.stages:
            await eventually(lambda key=stage.key: phase(CyclePhase.JURY, key), timeout=60)
            await eventually(_opened(sim, stage.key), timeout=30)
            if stage.key == "desk":
                seen["operator-jury"] = await act(dashboard, "09-operator-jury")
                progress = (await sim.call(StageStatus(request_id=new_request_id(), cycle_year=year, stage="desk", per_juror=True)))["per_juror"]
                j1, j2 = [p for p in progress if p["missing"]][:2]
                mine = await sim.call(JurorAssignments(cycle_year=year, juror_id=j1["juror_id"], stage="desk"))
                assigned = {a["proposal_id"] for a in mine["stages"][0]["assignments"]}
                p1, p2 = j1["missing"][0], next(p for p in j2["missing"] if p not in assigned)
                for j in (j1, j2):
                    await account(app, Role.JUROR, j["juror_id"], f"Juri {j['juror_id']}")

                def juror_scores(juror: str, pid: str, marks: dict[str, str], checked: bool, not_theirs: str | None) -> None:
                    b.login(juror)
                    if checked:
                        seen["juror-assignments"] = b.page("10-juror-assignments")
                    b.find(f'a[href="/juror/desk/{pid}"]').click()
                    if checked:
                        seen["juror-form"] = b.page("11-juror-score-form")
                    for key, mark in marks.items():
                        b.find(f"#score__{key}").clear()
                        b.find(f"#score__{key}").send_keys(mark)
                    b.find("#comment").send_keys("Inovasi relevan, data dukung lengkap.")
                    b.find("main form button").click()
                    b.find("#saved")
                    if checked:
                        seen["juror-saved"] = b.page("12-juror-score-saved")
                    if not_theirs:
                        b.open(f"/juror/desk/{not_theirs}")
                        seen["juror-not-theirs"] = b.page("13-juror-not-their-assignment")
                    b.logout()

                await act(juror_scores, j1["juror_id"], p1, {"kebaruan": "8", "dampak": "7,5"}, True, p2)
                await act(juror_scores, j2["juror_id"], p2, {"kebaruan": "6", "dampak": "9"}, False, None)
                for j, pid in ((j1, p1), (j2, p2)):
                    view = await sim.call(JurorAssignments(cycle_year=year, juror_id=j["juror_id"], stage="desk"))
                    facts[f"scored-{pid}"] = next(a for a in view["stages"][0]["assignments"] if a["proposal_id"] == pid)
                facts["p1"], facts["p2"] = p1, p2
            await sim.score_stage(stage, None, include_late=True)
            await eventually(_scored_again(sim, stage), timeout=30)
            child = env.client.get_workflow_handle(stage_workflow_id(year, stage.key))
            if stage.objection_days:
                await eventually(_state(child, "objections"), timeout=60)
                if stage.key == "desk":
                    shortlist = await sim.call(GetShortlist(cycle_year=year, stage="desk"))
                    objected = shortlist["rows"][-1]["proposal_id"]

                    def public_objects() -> str:
                        b.open("/objections")
                        seen["objections"] = b.page("14-objections-open")
                        Select(b.find("#proposal_id-desk")).select_by_value(objected)
                        b.find("#name-desk").send_keys("Siti Warga")
                        b.find("#contact-desk").send_keys("siti@example.id")
                        b.find("#reason-desk").send_keys("Inovasi ini sudah berjalan sebelum unit ini dibentuk.")
                        b.find('form[action="/objections/desk"] button[type="submit"]').click()
                        notice = str(b.find(".notice").text)
                        seen["objection-filed"] = b.page("15-objection-filed")
                        return notice

                    notice = await act(public_objects)
                    objection_id = re.search(r"Sanggahan (\S+) diterima", notice)
                    assert objection_id, notice
                    # The secretariat decides it (simulated: deciding objections is not a portal page).
                    facts["objection"] = await sim.call(
                        DecideObjection(
                            request_id=f"web-{year}-decide", cycle_year=year, stage="desk", objection_id=objection_id.group(1),
                            decision=ObjectionDecision.REJECTED, reason="Bukti menunjukkan inovasi dimulai oleh unit ini", decided_by="TPI-01",
                        )
                    )  # fmt: skip
                await env.sleep(dt.timedelta(days=stage.objection_days + 0.5))
            await eventually(_state(child, "done"), timeout=60)
        outcome = await handle.result()
        seen["operator-done"] = await act(dashboard, "16-operator-completed")

        # ------------------------------------------------------------------ the results
        results = await sim.call(GetResults(request_id=new_request_id(), cycle_year=year))
        first = next(c for c in results["categories"] if c["key"] == "top")["winners"][0]
        pdf = pypdf.PdfReader(first["certificate_path"])
        links = [a.get_object()["/A"]["/URI"] for a in pdf.pages[0].get("/Annots", []) if "/A" in a.get_object()]
        qr_url = next(u for u in links if "/verify/" in u)  # the URL the QR code holds, also the footer's link
        code = qr_url.rsplit("/", 1)[1]
        tampered = code[:-1] + ("A" if code[-1] != "A" else "B")
        facts["certificate"] = await sim.call(VerifyCertificate(code=code))

        def public_reads() -> None:
            b.open("/results")
            seen["results"] = b.page("17-results")
            b.driver.get(qr_url)
            seen["verify"] = b.page("18-verify-valid")
            b.open(f"/verify/{tampered}")
            seen["verify-tampered"] = b.page("19-verify-tampered")

        await act(public_reads)

    # ---------------------------------------------------------------------- what the pages showed
    assert seen["operator-call"] and facts["phases"] == ["call_open", "verification", "jury", "completed"]
    assert outcome.phase == CyclePhase.COMPLETED and stats["refused_over_quota"] > 0
    assert title in seen["unit-list"] and own in seen["unit-list"]
    assert "adminduk-jemput-bola.pdf" in seen["unit-documents"]  # the PDF went with the proposal
    assert f"terpakai used 0 dari of {cfg.call.quota_per_agency}" in seen["agency"]
    assert "Kuota instansi sudah habis" in seen["agency-refused"] and "sisa left 0" in seen["agency-refused"]
    assert facts["agency-statuses"] == {**dict.fromkeys(forwarded, "forwarded"), fourth: "submitted"}
    assert target in seen["verifier"] and "Hasil otomatis" in seen["verifier"]
    assert f"{overruled}:{target}" in seen["verifier-done"] and target not in facts["still-pending"]  # decided: no longer waiting
    assert len(facts["still-pending"]) == len(waiting) - 1
    override = facts["override"]
    assert override["final"] == overruled and override["overrides"][-1]["verifier_id"] == VERIFIER and override["overrides"][-1]["reason"] == reason
    assert facts["p1"] in seen["juror-assignments"] and facts["p2"] not in seen["juror-assignments"]
    assert "bobot" in seen["juror-form"] and "skala" in seen["juror-form"] and "Kebaruan" in seen["juror-form"]
    assert "Nilai tersimpan" in seen["juror-saved"]
    assert "Penugasan tidak ditemukan" in seen["juror-not-theirs"]
    assert facts[f"scored-{facts['p1']}"]["scores"] == {"kebaruan": 8, "dampak": 7.5}
    assert facts[f"scored-{facts['p2']}"]["scores"] == {"kebaruan": 6, "dampak": 9}
    assert objected in seen["objections"] and "Kirim sanggahan" in seen["objections"]
    assert facts["objection"]["decision"] == "rejected" and facts["objection"]["filer"] == "Siti Warga <siti@example.id>"
    winners = [w for c in results["categories"] for w in c["winners"]]
    assert winners and all(w["unit_name"] in seen["results"] for w in winners)
    assert code == first["certificate_code"] and qr_url == f"{base}/verify/{code}" == facts["certificate"]["verify_url"]
    assert "Piagam sah" in seen["verify"] and first["unit_name"] in seen["verify"]
    assert "Piagam tidak sah" in seen["verify-tampered"] and "Piagam sah" not in seen["verify-tampered"]
    assert not b.too_wide, "wider than a phone's screen (sideways scrolling):\n" + "\n".join(b.too_wide)
    (ARTIFACTS / "axe-violations.txt").write_text("\n".join(b.violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing (make {AXE.relative_to(ROOT)})")
    assert not b.violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(b.violations)
