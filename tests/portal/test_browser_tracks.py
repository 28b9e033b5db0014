"""The tracks' pages in a real browser (Debian's chromium through Selenium, as test_browser.py),
the services' side answered by the contract-checked stand-ins of tests/portal/fakes.py: an
evaluator's SAKIP sheet refused next to its field, then saved with its grade and parts; a
reviewer refused their own sheet in Indonesian and returning another with a reason; a
work-culture group submitting its risalah with its PDF; the public results of every track and the
archive's search and an innovation's replications. Every page passes axe-core's WCAG 2.1 A and
AA rules, and at 390 px nothing is wider than the screen. Screenshots: var/test-artifacts/portal/tracks/."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from contracts.base import Actor
from contracts.verification import EnterEvaluation
from services.portal.accounts import Role
from tests.portal.fakes import (
    Awards,
    Evaluations,
    Registration,
    archive_entries,
    responding,
    results_all_tracks,
)
from tests.portal.support import PASSWORD, account, portal
from tests.portal.test_browser import (
    ARTIFACTS,
    AXE,
    CHROMEDRIVER,
    CHROMIUM,
    _browser,
    axe_violations,
    serving,
)

YEAR = 2033
NIP = "198001012005011001"


def _artifacts() -> Path:
    out = ARTIFACTS / "tracks"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _phone(base: str, path: str, cookies: list[dict[str, Any]], name: str, violations: list[str]) -> str:
    """``path`` at a phone's width with the session's cookies: axe, a screenshot, and whether
    anything is wider than the screen."""
    phone = _browser(390, 844)
    try:
        phone.get(base + "/livez")
        for cookie in cookies:
            phone.add_cookie({k: cookie[k] for k in ("name", "value", "path") if k in cookie})
        phone.get(base + path)
        phone.save_screenshot(str(_artifacts() / f"{name}.png"))
        if AXE.exists():
            violations.extend(f"{name}: {v}" for v in axe_violations(phone))
        return str(phone.execute_script("return document.documentElement.scrollWidth > window.innerWidth"))
    finally:
        phone.quit()


class Walk:
    """One browser through the pages, each shown page kept (its text, a screenshot, axe)."""

    def __init__(self, base: str) -> None:
        from selenium.webdriver.common.by import By

        self.by = By
        self.base = base
        self.browser = _browser()
        self.seen: dict[str, str] = {}
        self.violations: list[str] = []

    def find(self, css: str) -> Any:
        return self.browser.find_element(self.by.CSS_SELECTOR, css)

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(_artifacts() / f"{name}.png"))
        self.seen[name] = self.find("main").text
        if AXE.exists():
            self.violations.extend(f"{name}: {v}" for v in axe_violations(self.browser))

    def phone(self, path: str, name: str) -> None:
        self.seen[f"{name}-overflow"] = _phone(self.base, path, self.browser.get_cookies(), name, self.violations)

    def login(self, login: str) -> None:
        self.browser.get(f"{self.base}/login")
        self.find("#login").send_keys(login)
        self.find("#password").send_keys(PASSWORD)
        self.find("main form button").click()
        self.find('header form[action="/logout"]')

    def logout(self) -> None:
        self.find("header form button").click()
        self.find('header a[href="/login"]')

    def type(self, fields: dict[str, str]) -> None:
        for field, value in fields.items():
            element = self.find(f"#{field}")
            element.clear()
            element.send_keys(value)


def evaluator_and_reviewer(w: Walk) -> None:
    w.login("E01")
    w.find('a[href="/evaluator/sakip"]').click()
    w.find("#planning")
    w.type({"subject_code": "OPD-DINKES", "subject_name": "Dinas Kesehatan", "planning": "28", "measurement": "31", "reporting": "14", "internal_evaluation": "22"})
    w.find("main form button[type=submit]").click()
    w.find("#measurement-error")
    w.shot("40-evaluator-refused")
    w.type({"measurement": "27,5"})
    w.find("main form button[type=submit]").click()
    w.find("#saved")
    w.shot("41-evaluator-sheet")
    w.phone("/evaluator/sakip/OPD-DINKES", "42-evaluator-sheet-phone")
    w.logout()
    w.login("reviewer-nip")
    w.shot("43-reviewer-pending")
    w.find('form[action="/reviewer/sakip/OPD-BAPPEDA/review"] button').click()
    w.find("#error-sakip-OPD-BAPPEDA")
    w.shot("44-reviewer-own-sheet")
    w.find("#return-sakip-OPD-DINKES").click()
    w.type({"reason-sakip-OPD-DINKES": "Bukti pengukuran belum lengkap"})
    w.find('form[action="/reviewer/sakip/OPD-DINKES/review"] button').click()
    w.find(".notice")
    w.shot("45-reviewer-returned")
    w.phone("/reviewer", "46-reviewer-phone")
    w.logout()


def group_submits(w: Walk, pdf: str) -> None:
    w.login("KAB-MALANG-U01-KBK1")
    w.find('a[href="/kbk/new"]').click()
    w.type({
        "title": "Mengurangi Berkas Hilang", "category": "pelayanan_publik", "summary": "Berkas tertata.", "problem": "Berkas hilang.",
        "solution": "Penomoran dan rak arsip.", "impact": "Nol berkas hilang.", "contact_name": "Ketua KBK", "contact_email": "kbk@malangkab.go.id",
    })  # fmt: skip
    w.browser.execute_script("document.getElementById('started_on').value = '2032-02-01'")
    w.find("#documents").send_keys(pdf)
    w.shot("47-kbk-risalah-form")
    w.phone("/kbk/new", "48-kbk-risalah-form-phone")
    w.find("main form button[type=submit]").click()
    w.find(".notice")
    w.shot("49-kbk-risalah-list")
    w.logout()


def public_reads(w: Walk) -> None:
    w.browser.get(f"{w.base}/results")
    w.find("#track-cettar")
    w.shot("50-results-all-tracks")
    w.phone("/results", "51-results-phone")
    w.browser.get(f"{w.base}/archive")
    w.type({"text": "antrian"})
    w.find("main form button[type=submit]").click()
    w.find("#found")
    w.shot("52-archive-search")
    w.find('a[href="/archive/2031-P0007"]').click()
    w.find("#replications")
    w.shot("53-archive-innovation")
    w.phone("/archive/2031-P0007", "54-archive-innovation-phone")
    w.phone("/archive?text=antrian", "55-archive-search-phone")


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_the_tracks_pages_in_the_browser(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    evaluations, registration = Evaluations(YEAR), Registration(YEAR, archive_entries())
    theirs = EnterEvaluation(
        request_id="seed", cycle_year=YEAR, kind="sakip", subject_code="OPD-BAPPEDA", subject_name="Bappeda", subject_kind="opd",
        values={"planning": 25, "measurement": 24, "reporting": 12, "internal_evaluation": 20}, evaluator_id=NIP,
    )  # fmt: skip
    assert evaluations.enter(theirs, Actor(id=NIP, role="evaluator")).ok  # entered by the person who reviews below
    pdf = tmp_path / "risalah.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    handlers = {**evaluations.handlers(), **registration.handlers(), **Awards(results_all_tracks(YEAR)).handlers()}
    async with responding(nc, handlers), portal(nats_url, tmp_path, YEAR) as app, serving(app) as base:
        await account(app, Role.EVALUATOR, "E01", "Evaluator Satu")
        await account(app, Role.REVIEWER, NIP, "Penelaah Satu", login="reviewer-nip")
        await account(app, Role.KBK_GROUP, "KAB-MALANG-U01-KBK1", "KBK Gugus Melati")

        def walk() -> Walk:
            w = Walk(base)
            try:
                evaluator_and_reviewer(w)
                group_submits(w, str(pdf))
                public_reads(w)
            finally:
                w.browser.quit()
            return w

        w = await asyncio.to_thread(walk)
    seen = w.seen
    assert "tidak sesuai rubrik" in seen["40-evaluator-refused"]
    assert "Sangat Memuaskan" in seen["41-evaluator-sheet"] and "Pengukuran Kinerja" in seen["41-evaluator-sheet"]
    assert "Bappeda" in seen["43-reviewer-pending"] and "Dinas Kesehatan" in seen["43-reviewer-pending"]
    assert "tidak dapat menelaah lembar yang Anda isi sendiri" in seen["44-reviewer-own-sheet"]
    assert "returned:sakip-OPD-DINKES" in seen["45-reviewer-returned"]
    assert "Mengurangi Berkas Hilang" in seen["49-kbk-risalah-list"]
    assert "Sangat Cettar" in seen["50-results-all-tracks"] and "Zona Integritas" in seen["50-results-all-tracks"]
    assert "Ditemukan 3 inovasi" in seen["52-archive-search"]
    assert "Kabupaten Jember" in seen["53-archive-innovation"] and "Kota Batu" in seen["53-archive-innovation"]
    assert {k: v for k, v in seen.items() if k.endswith("-overflow")} == dict.fromkeys(
        ("42-evaluator-sheet-phone-overflow", "46-reviewer-phone-overflow", "48-kbk-risalah-form-phone-overflow", "51-results-phone-overflow", "54-archive-innovation-phone-overflow", "55-archive-search-phone-overflow"),
        "False",
    )
    (_artifacts() / "axe-violations.txt").write_text("\n".join(w.violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing (npm install --prefix var/npm axe-core@4; make test does)")
    assert not w.violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(w.violations)
