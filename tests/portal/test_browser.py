"""A person's walk in a real browser (Debian's chromium through Selenium and chromedriver; nothing
is downloaded): a juror sets their password from the invitation link, logs in, scores an
assignment on the form, and a certificate's QR URL verifies on /verify while a tampered code
does not. Screenshots of each page, at a desktop's and a phone's width, are kept under
var/test-artifacts/portal/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.awards.app import create_app as awards_app
from services.common.settings import Settings
from services.portal.accounts import Role
from services.scoring.app import create_app as scoring_app
from tests.awards.test_certificates import ceremony
from tests.portal.support import PASSWORD, portal
from tests.scoring.test_service import YEAR as SCORING_YEAR
from tests.scoring.test_service import cmd as scoring_cmd
from tests.scoring.test_service import open_desk_stage
from tests.support import eventually, free_port, request, running

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "portal"
AXE = Path(os.environ.get("BFEST_AXE_JS", ROOT / "var" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))
"""axe-core from the npm registry (`make test` installs it under var/npm), injected into each page."""
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)


def _browser(width: int = 1280, height: int = 900) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}", "--lang=id"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.implicitly_wait(10)  # an element looked up right after a page loads is waited for
    return browser


def axe_violations(browser: Any) -> list[str]:
    """What axe-core finds against WCAG 2.1 A and AA on the page open in ``browser``."""
    browser.execute_script(AXE.read_text())
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"axe.run(document, {{runOnly: {{type: 'tag', values: {json.dumps(WCAG_AA)}}}}})"
        ".then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).join(', '))))"
        ".catch(e => done(['axe failed: ' + e]));"
    )
    return list(result)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app on a real HTTP port, served by uvicorn in this event loop (beside the services)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done())
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_a_juror_scores_in_the_browser_and_a_certificate_verifies(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", public_url="http://portal.test")
    async with (
        running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"),
        running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"),
    ):
        plan = await open_desk_stage(nc, js)
        juror, pid = plan[0]
        results = await ceremony(nc, js)
        code = next(c for c in results["categories"] if c["key"] == "top")["winners"][0]["certificate_code"]
        async with portal(nats_url, tmp_path, SCORING_YEAR) as app, serving(app) as base:
            await app.state.accounts.ensure_account(Role.JUROR, juror, "Dr. Juri Satu")
            token = await app.state.accounts.invite(juror)

            violations: list[str] = []

            def walk() -> dict[str, str]:
                seen: dict[str, str] = {}
                browser = _browser()
                try:
                    def shot(name: str) -> None:
                        browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
                        seen[name] = browser.find_element(By.TAG_NAME, "main").text
                        if AXE.exists():
                            for v in axe_violations(browser):
                                violations.append(f"{name}: {v}")

                    browser.get(f"{base}/set-password/{token}")
                    shot("01-set-password")
                    browser.find_element(By.ID, "password").send_keys(PASSWORD)
                    browser.find_element(By.ID, "password2").send_keys(PASSWORD)
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.ID, "login").send_keys(juror)
                    browser.find_element(By.ID, "password").send_keys(PASSWORD)
                    shot("02-login")
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.CSS_SELECTOR, 'header form[action="/logout"]')  # signed in
                    shot("03-juror-assignments")
                    browser.find_element(By.CSS_SELECTOR, f'a[href="/juror/desk/{pid}"]').click()
                    shot("04-score-form")
                    browser.find_element(By.ID, "score__mutu").send_keys("12")
                    browser.find_element(By.ID, "score__dampak").send_keys("7")
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.CSS_SELECTOR, ".field-error")
                    shot("05-score-refused")
                    field = browser.find_element(By.ID, "score__mutu")
                    field.clear()
                    field.send_keys("8")
                    browser.find_element(By.ID, "comment").send_keys("Inovasi relevan dan berdampak.")
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.ID, "saved")
                    shot("06-score-saved")
                    browser.get(f"{base}/verify/{code}")
                    shot("07-verify-valid")
                    browser.get(f"{base}/verify/{code[:-4]}ZZZZ")
                    shot("08-verify-tampered")
                finally:
                    browser.quit()
                phone = _browser(390, 844)
                try:
                    phone.get(f"{base}/verify/{code}")
                    phone.save_screenshot(str(ARTIFACTS / "09-verify-phone.png"))
                    if AXE.exists():
                        violations.extend(f"phone: {v}" for v in axe_violations(phone))
                    # nothing wider than the phone's screen: no sideways scrolling
                    seen["phone-overflow"] = str(phone.execute_script("return document.documentElement.scrollWidth > window.innerWidth"))
                finally:
                    phone.quit()
                return seen

            seen = await asyncio.to_thread(walk)
    assert juror in seen["01-set-password"]
    assert pid in seen["03-juror-assignments"] and "Belum dinilai" in seen["03-juror-assignments"]
    assert "bobot" in seen["04-score-form"] and "skala" in seen["04-score-form"]
    assert "Nilai harus antara 1 dan 10" in seen["05-score-refused"]
    assert "Nilai tersimpan" in seen["06-score-saved"] and "revisi ke-1" in seen["06-score-saved"]
    assert "Piagam sah" in seen["07-verify-valid"] and "ed25519:" in seen["07-verify-valid"]
    assert "Piagam tidak sah" in seen["08-verify-tampered"]
    assert seen["phone-overflow"] == "False"
    (ARTIFACTS / "axe-violations.txt").write_text("\n".join(violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing (npm install --prefix var/npm axe-core@4; make test does)")
    assert not violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(violations)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_a_unit_submits_and_its_agency_meets_the_quota_in_the_browser(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from services.registration.app import create_app as registration_app
    from tests.portal.support import account
    from tests.registration import test_service as reg

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        await reg.setup_call(nc, quota=3)
        others = [(await reg.submit(nc, f"KAB-MALANG-U{i:02d}", f"Inovasi Nomor {i}"))["data"]["id"] for i in range(2, 5)]
        async with portal(nats_url, tmp_path, reg.YEAR) as app, serving(app) as base:
            await account(app, Role.UNIT, "KAB-MALANG-U01", "Puskesmas 1")
            await account(app, Role.AGENCY, "KAB-MALANG", "Kabupaten Malang")
            violations: list[str] = []

            def walk() -> dict[str, str]:
                seen: dict[str, str] = {}
                browser = _browser()

                def shot(name: str) -> None:
                    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
                    seen[name] = browser.find_element(By.TAG_NAME, "main").text
                    if AXE.exists():
                        violations.extend(f"{name}: {v}" for v in axe_violations(browser))

                def login(name: str) -> None:
                    browser.get(f"{base}/login")
                    browser.find_element(By.ID, "login").send_keys(name)
                    browser.find_element(By.ID, "password").send_keys(PASSWORD)
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.CSS_SELECTOR, 'header form[action="/logout"]')  # signed in

                try:
                    for page, name in (("/", "10-home"), ("/results", "11-results-none-yet"), ("/objections", "12-objections-none-open")):
                        browser.get(base + page)
                        shot(name)
                    login("KAB-MALANG-U01")
                    browser.get(f"{base}/unit/new")
                    typed = {
                        "title": "Antrian Daring Puskesmas", "category": "kesehatan", "summary": "Antrian daring.",
                        "problem": "Antrian panjang.", "solution": "Pendaftaran daring.", "impact": "Waktu tunggu turun.",
                        "document_uri": "https://portal.example/p.pdf", "contact_name": "Admin Puskesmas", "contact_email": "admin@malangkab.go.id",
                    }  # fmt: skip
                    for field, value in typed.items():
                        browser.find_element(By.ID, field).send_keys(value)
                    Select(browser.find_element(By.ID, "group")).select_by_value("umum")
                    browser.execute_script("document.getElementById('started_on').value = '2029-01-15'")
                    shot("13-unit-new-proposal")
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.CSS_SELECTOR, ".notice")
                    shot("14-unit-proposals")
                    browser.find_element(By.CSS_SELECTOR, "header form button").click()  # log out
                    browser.find_element(By.CSS_SELECTOR, 'header a[href="/login"]')  # (waits until it is done)
                    login("KAB-MALANG")
                    shot("15-agency-proposals")
                    for pid in others:
                        browser.find_element(By.CSS_SELECTOR, f'form[action="/agency/proposals/{pid}/forward"] button').click()
                        browser.find_element(By.XPATH, f'//div[@class="notice" and contains(., "forwarded:{pid}")]')
                    own = next(e.get_attribute("id")[4:] for e in browser.find_elements(By.CSS_SELECTOR, "tr[id^=row-]") if e.get_attribute("id")[4:] not in others)
                    browser.find_element(By.CSS_SELECTOR, f'form[action="/agency/proposals/{own}/forward"] button').click()
                    browser.find_element(By.CSS_SELECTOR, ".alert")
                    shot("16-agency-quota-refused")
                finally:
                    browser.quit()
                return seen

            seen = await asyncio.to_thread(walk)
    assert "Antrian Daring Puskesmas" in seen["14-unit-proposals"]
    assert "terpakai used 0 dari of 3, sisa left 3" in seen["15-agency-proposals"]
    assert "Kuota instansi sudah habis" in seen["16-agency-quota-refused"]
    (ARTIFACTS / "axe-violations-registration.txt").write_text("\n".join(violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing (npm install --prefix var/npm axe-core@4; make test does)")
    assert not violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(violations)


def _phone_check(base: str, path: str, cookies: list[dict[str, Any]], name: str, violations: list[str]) -> str:
    """``path`` at a phone's width (the session's cookies carried over): axe, a screenshot, and
    whether anything is wider than the screen."""
    phone = _browser(390, 844)
    try:
        phone.get(base + "/livez")
        for cookie in cookies:
            phone.add_cookie({k: cookie[k] for k in ("name", "value", "path") if k in cookie})
        phone.get(base + path)
        phone.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        if AXE.exists():
            violations.extend(f"{name}: {v}" for v in axe_violations(phone))
        return str(phone.execute_script("return document.documentElement.scrollWidth > window.innerWidth"))
    finally:
        phone.quit()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_a_unit_uploads_its_pdf_in_the_browser_and_its_agency_opens_it(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from services.registration.app import create_app as registration_app
    from tests.portal.support import account
    from tests.registration import test_service as reg

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = tmp_path / "proposal-antrian.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    fake = tmp_path / "bukan-pdf.pdf"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n not a pdf")
    async with running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        await reg.setup_call(nc, quota=3)
        async with portal(nats_url, tmp_path, reg.YEAR) as app, serving(app) as base:
            await account(app, Role.UNIT, "KAB-MALANG-U01", "Puskesmas 1")
            await account(app, Role.AGENCY, "KAB-MALANG", "Kabupaten Malang")
            violations: list[str] = []

            def walk() -> dict[str, str]:
                seen: dict[str, str] = {}
                browser = _browser()

                def shot(name: str) -> None:
                    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
                    seen[name] = browser.find_element(By.TAG_NAME, "main").text
                    if AXE.exists():
                        violations.extend(f"{name}: {v}" for v in axe_violations(browser))

                def login(name: str) -> None:
                    browser.get(f"{base}/login")
                    browser.find_element(By.ID, "login").send_keys(name)
                    browser.find_element(By.ID, "password").send_keys(PASSWORD)
                    browser.find_element(By.CSS_SELECTOR, "main form button").click()
                    browser.find_element(By.CSS_SELECTOR, 'header form[action="/logout"]')

                try:
                    login("KAB-MALANG-U01")
                    browser.get(f"{base}/unit/new")
                    typed = {
                        "title": "Antrian Daring Puskesmas", "category": "kesehatan", "summary": "Antrian daring.",
                        "problem": "Antrian panjang.", "solution": "Pendaftaran daring.", "impact": "Waktu tunggu turun.",
                        "contact_name": "Admin Puskesmas", "contact_email": "admin@malangkab.go.id",
                    }  # fmt: skip
                    for field, value in typed.items():
                        browser.find_element(By.ID, field).send_keys(value)
                    Select(browser.find_element(By.ID, "group")).select_by_value("umum")
                    browser.execute_script("document.getElementById('started_on').value = '2029-01-15'")
                    browser.find_element(By.ID, "documents").send_keys(str(fake))
                    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
                    browser.find_element(By.ID, "documents-error")
                    shot("20-unit-upload-refused")
                    seen["kept-title"] = str(browser.find_element(By.ID, "title").get_attribute("value"))
                    browser.find_element(By.ID, "documents").send_keys(str(pdf))
                    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
                    browser.find_element(By.CSS_SELECTOR, ".notice")
                    shot("21-unit-proposal-with-document")
                    browser.find_element(By.PARTIAL_LINK_TEXT, "Dokumen").click()
                    browser.find_element(By.CSS_SELECTOR, "ul.documents-list a")
                    shot("22-proposal-documents")
                    seen["unit-new-phone-overflow"] = _phone_check(base, "/unit/new", browser.get_cookies(), "23-unit-new-phone", violations)
                    browser.find_element(By.CSS_SELECTOR, "header form button").click()  # log out
                    browser.find_element(By.CSS_SELECTOR, 'header a[href="/login"]')
                    login("KAB-MALANG")
                    browser.find_element(By.PARTIAL_LINK_TEXT, "Dokumen").click()
                    link = browser.find_element(By.CSS_SELECTOR, "ul.documents-list a")
                    seen["agency-documents"] = browser.find_element(By.TAG_NAME, "main").text
                    seen["agency-download"] = str(link.get_attribute("href"))
                finally:
                    browser.quit()
                return seen

            seen = await asyncio.to_thread(walk)
    assert "bukan PDF" in seen["20-unit-upload-refused"] and seen["kept-title"] == "Antrian Daring Puskesmas"
    assert "Antrian Daring Puskesmas" in seen["21-unit-proposal-with-document"]
    assert "proposal-antrian.pdf" in seen["22-proposal-documents"] and "sha256" in seen["22-proposal-documents"]
    assert "proposal-antrian.pdf" in seen["agency-documents"] and "/documents/sha256-" in seen["agency-download"]
    assert seen["unit-new-phone-overflow"] == "False"
    (ARTIFACTS / "axe-violations-documents.txt").write_text("\n".join(violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing")
    assert not violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(violations)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
async def test_a_juror_signs_in_through_the_identity_provider_and_declares_a_conflict(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.portal.oidc_provider import Provider

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"):
        plan = await open_desk_stage(nc, js)
        juror, pid = plan[0]
        idp = Provider(client_id="bfest-portal", client_secret="rahasia-klien", people={"juri": {"sub": "idp-1", "email": "juri@jatimprov.go.id", "name": "Dr. Juri Satu"}})
        secret = tmp_path / "oidc-secret"
        secret.write_text("rahasia-klien")
        async with serving(idp.app()) as issuer:
            idp.issuer = issuer
            async with portal(nats_url, tmp_path, SCORING_YEAR, oidc_issuer=issuer, oidc_client_id="bfest-portal", oidc_client_secret_file=secret) as app, serving(app) as base:
                await app.state.accounts.ensure_account(Role.JUROR, juror, "Dr. Juri Satu")
                await app.state.accounts.link_oidc(juror, "juri@jatimprov.go.id")
                violations: list[str] = []

                def walk() -> dict[str, str]:
                    seen: dict[str, str] = {}
                    browser = _browser()

                    def shot(name: str) -> None:
                        browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
                        seen[name] = browser.find_element(By.TAG_NAME, "main").text
                        if AXE.exists():
                            violations.extend(f"{name}: {v}" for v in axe_violations(browser))

                    try:
                        browser.get(f"{base}/login")
                        shot("30-login-with-sso")
                        browser.find_element(By.ID, "oidc-login").click()
                        Select(browser.find_element(By.ID, "user")).select_by_value("juri")  # the provider's page
                        browser.find_element(By.ID, "approve").click()
                        browser.find_element(By.CSS_SELECTOR, 'header form[action="/logout"]')  # signed in, back at the portal
                        shot("31-juror-after-sso")
                        browser.find_element(By.CSS_SELECTOR, f'a[href="/juror/desk/{pid}"]').click()
                        browser.find_element(By.ID, "conflict_reason")
                        shot("32-score-form-with-conflict")
                        seen["score-phone-overflow"] = _phone_check(base, f"/juror/desk/{pid}", browser.get_cookies(), "33-score-form-phone", violations)
                        browser.find_element(By.ID, "conflict_reason").send_keys("x")
                        browser.find_element(By.CSS_SELECTOR, "section.conflict form button").click()
                        browser.find_element(By.ID, "conflict_reason-error")
                        shot("34-conflict-refused")
                        seen["kept-reason"] = str(browser.find_element(By.ID, "conflict_reason").get_attribute("value"))
                        field = browser.find_element(By.ID, "conflict_reason")
                        field.clear()
                        field.send_keys("Saudara kandung kepala unit pengusul")
                        browser.find_element(By.CSS_SELECTOR, "section.conflict form button").click()
                        browser.find_element(By.ID, "conflict-declared")
                        shot("35-conflict-declared")
                    finally:
                        browser.quit()
                    return seen

                seen = await asyncio.to_thread(walk)
        mine = await request(nc, scoring_cmd("juror_assignments"), {"cycle_year": SCORING_YEAR, "juror_id": juror})
    assert "Masuk dengan SSO Pemprov Jatim" in seen["30-login-with-sso"]
    assert "Penugasan Anda" in seen["31-juror-after-sso"]
    assert "Nyatakan konflik kepentingan" in seen["32-score-form-with-conflict"]
    assert "minimal 3 karakter" in seen["34-conflict-refused"] and seen["kept-reason"] == "x"
    assert "Konflik kepentingan atas" in seen["35-conflict-declared"] and f"/juror/desk/{pid}" not in seen["35-conflict-declared"]
    assert pid not in {a["proposal_id"] for s in mine["data"]["stages"] for a in s["assignments"]}
    assert seen["score-phone-overflow"] == "False"
    (ARTIFACTS / "axe-violations-sso-conflict.txt").write_text("\n".join(violations) + "\n")
    if not AXE.exists():
        pytest.skip(f"every step passed; the WCAG check was skipped: {AXE} missing")
    assert not violations, "WCAG 2.1 AA (axe-core):\n" + "\n".join(violations)
