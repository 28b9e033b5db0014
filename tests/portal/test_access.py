"""Access rules, table-driven: each role reaches its own pages and API and is refused every other
role's; the anonymous public sees only the public pages; a form without the CSRF token is refused;
logins are rate-limited; logout ends the session for good."""

from __future__ import annotations

import pytest

from services.portal.accounts import Role
from tests.portal.support import PASSWORD, account, client, csrf_of, logged_in, portal

YEAR = 2033
SUBJECTS = {
    Role.UNIT: "KAB-A-U1", Role.AGENCY: "KAB-A", Role.VERIFIER: "V01", Role.JUROR: "J1", Role.OPERATOR: "biro-org",
    Role.EVALUATOR: "E01", Role.REVIEWER: "R01", Role.KBK_GROUP: "KAB-A-U1-KBK1",
}  # fmt: skip

# (method, path, the role it is for); None: public
PAGES: list[tuple[str, str, Role | None]] = [
    ("GET", "/", None),
    ("GET", "/verify", None),
    ("GET", "/verify/BF26-AAAA-BBBB-CCCC", None),
    ("GET", "/results", None),
    ("GET", "/login", None),
    ("GET", "/api/me", None),
    ("GET", "/api/verify/BF26-AAAA-BBBB-CCCC", None),
    ("GET", "/api/results", None),
    ("GET", "/objections", None),
    ("POST", "/objections/desk", None),
    ("GET", "/archive", None),
    ("GET", "/archive?text=antrian&year=2031&group=replikasi&offset=20", None),
    ("GET", "/archive/2031-P0001", None),
    ("GET", "/api/archive", None),
    ("GET", "/api/archive/2031-P0001", None),
    ("GET", "/unit", Role.UNIT),
    ("GET", "/unit/new", Role.UNIT),
    ("POST", "/unit/new", Role.UNIT),
    ("POST", "/unit/proposals/P1/withdraw", Role.UNIT),
    ("GET", "/unit/proposals/P1/edit", Role.UNIT),
    ("POST", "/unit/proposals/P1/edit", Role.UNIT),
    ("GET", "/agency", Role.AGENCY),
    ("GET", "/api/agency/proposals", Role.AGENCY),
    ("POST", "/api/agency/proposals/P1/forward", Role.AGENCY),
    ("GET", "/api/unit/proposals", Role.UNIT),
    ("GET", "/api/verifier/pending", Role.VERIFIER),
    ("POST", "/agency/proposals/P1/forward", Role.AGENCY),
    ("POST", "/agency/proposals/P1/return", Role.AGENCY),
    ("GET", "/verifier", Role.VERIFIER),
    ("POST", "/verifier/P1/decide", Role.VERIFIER),
    ("GET", "/juror", Role.JUROR),
    ("GET", "/juror/desk/P1", Role.JUROR),
    ("POST", "/juror/desk/P1", Role.JUROR),
    ("GET", "/api/juror/assignments", Role.JUROR),
    ("POST", "/api/juror/scores/desk/P1", Role.JUROR),
    ("POST", "/juror/desk/P1/conflict", Role.JUROR),
    ("POST", "/api/juror/conflicts/desk/P1", Role.JUROR),
    ("GET", "/operator", Role.OPERATOR),
    ("GET", "/api/operator/status", Role.OPERATOR),
    ("GET", "/evaluator", Role.EVALUATOR),
    ("GET", "/evaluator/sakip", Role.EVALUATOR),
    ("GET", "/evaluator/rb", Role.EVALUATOR),
    ("GET", "/evaluator/cettar", Role.EVALUATOR),
    ("GET", "/evaluator/sakip/KAB-A", Role.EVALUATOR),
    ("POST", "/evaluator/sakip", Role.EVALUATOR),
    ("GET", "/api/evaluator/sakip", Role.EVALUATOR),
    ("POST", "/api/evaluator/sakip", Role.EVALUATOR),
    ("GET", "/reviewer", Role.REVIEWER),
    ("POST", "/reviewer/sakip/KAB-A/review", Role.REVIEWER),
    ("GET", "/api/reviewer/pending", Role.REVIEWER),
    ("POST", "/api/reviewer/sakip/KAB-A", Role.REVIEWER),
    ("GET", "/kbk", Role.KBK_GROUP),
    ("GET", "/kbk/new", Role.KBK_GROUP),
    ("POST", "/kbk/new", Role.KBK_GROUP),
    ("GET", "/kbk/risalah/P1/edit", Role.KBK_GROUP),
    ("POST", "/kbk/risalah/P1/edit", Role.KBK_GROUP),
    ("GET", "/api/kbk/risalah", Role.KBK_GROUP),
]
PRIVATE = [p for p in PAGES if p[2] is not None]
SIGNED_IN = [
    ("GET", "/proposals/P1/documents"),
    ("GET", "/proposals/P1/documents/sha256-" + "0" * 64 + ".pdf"),
    ("GET", "/api/proposals/P1/documents"),
]
"""A proposal's documents: for any signed-in role that may see the proposal (decided per proposal,
tests/portal/test_documents.py), never for the anonymous public."""


@pytest.fixture
async def app(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    # NATS runs, no service answers: what a role may do gets as far as the service, what it may
    # not is refused by the portal before anything is sent.
    async with portal(nats_url, tmp_path, YEAR) as app:
        for role, subject in SUBJECTS.items():
            await account(app, role, subject)
        yield app


async def _call(c, method: str, path: str):  # type: ignore[no-untyped-def]
    if method == "GET":
        return await c.get(path)
    token = csrf_of((await c.get("/login")).text)
    if path.startswith("/api/"):
        return await c.post(path, json={"scores": {"mutu": 5}}, headers={"X-CSRF-Token": token})
    return await c.post(path, data={"csrf_token": token, "reason": "alasan uji", "decision": "eligible"})


async def test_the_anonymous_public_sees_only_the_public_pages(app):  # type: ignore[no-untyped-def]
    async with client(app) as c:
        for method, path, role in PAGES:
            r = await _call(c, method, path)
            if role is None:
                assert r.status_code not in (401, 403) and "location" not in r.headers, (path, r.status_code)
            elif path.startswith("/api/"):
                assert r.status_code == 401, (path, r.status_code)
            else:
                assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (path, r.status_code)
        for method, path in SIGNED_IN:
            r = await _call(c, method, path)
            assert r.status_code == (401 if path.startswith("/api/") else 303), (path, r.status_code)


@pytest.mark.parametrize("role", list(SUBJECTS))
async def test_each_role_is_refused_every_other_roles_pages_and_api(app, role):  # type: ignore[no-untyped-def]
    async with logged_in(app, SUBJECTS[role]) as c:
        for method, path, owner in PRIVATE:
            r = await _call(c, method, path)
            if owner == role:
                assert r.status_code not in (401, 403), (role, path, r.status_code)
                if method == "GET" and not path.startswith("/api/"):
                    assert "Akses ditolak" not in r.text
            else:
                assert r.status_code == 403, (role, path, r.status_code)
        for method, path, owner in PAGES:
            if owner is None:
                assert (await _call(c, method, path)).status_code not in (401, 403), path
        for method, path in SIGNED_IN:  # no service answers here: not found, never let through
            assert (await _call(c, method, path)).status_code in (404, 503), (role, path)


async def test_a_form_or_api_call_without_the_csrf_token_is_refused(app):  # type: ignore[no-untyped-def]
    async with logged_in(app, SUBJECTS[Role.JUROR]) as c:
        r = await c.post("/juror/desk/P1", data={"score__mutu": "5"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await c.post("/juror/desk/P1", data={"score__mutu": "5", "csrf_token": "forged"})
        assert r.status_code == 403
        r = await c.post("/api/juror/scores/desk/P1", json={"scores": {"mutu": 5}})
        assert r.status_code == 403
        assert (await c.post("/logout")).status_code == 403  # even logging out needs it
    async with client(app) as anonymous:
        r = await anonymous.post("/login", data={"login": "J1", "password": PASSWORD})
        assert r.status_code == 403


async def test_logins_are_rate_limited_and_logout_ends_the_session(app):  # type: ignore[no-untyped-def]
    async with client(app, host="10.0.0.9") as c:
        token = csrf_of((await c.get("/login")).text)
        for _ in range(5):
            r = await c.post("/login", data={"csrf_token": token, "login": "J1", "password": "wrong-password"})
            assert r.status_code == 401 and "salah" in r.text
        r = await c.post("/login", data={"csrf_token": token, "login": "J1", "password": PASSWORD})
        assert r.status_code == 429 and "Terlalu banyak" in r.text  # even the right password waits
    async with logged_in(app, SUBJECTS[Role.VERIFIER]) as c:  # another address and account: not limited
        cookie = c.cookies.get("bfest_session")
        assert (await c.get("/verifier")).status_code == 200
        token = csrf_of((await c.get("/verifier")).text)
        assert (await c.post("/logout", data={"csrf_token": token})).status_code == 303
        assert (await c.get("/verifier")).status_code == 303
    async with client(app) as replay:  # the old cookie, replayed after logout, is no one
        replay.cookies.set("bfest_session", cookie)
        assert (await replay.get("/verifier")).status_code == 303


async def test_set_password_links_work_once_and_the_cookie_is_httponly_and_samesite(app):  # type: ignore[no-untyped-def]
    await app.state.accounts.ensure_account(Role.JUROR, "J9", "Juri Sembilan")
    token = await app.state.accounts.invite("J9")
    async with client(app) as c:
        page = await c.get(f"/set-password/{token}")
        assert page.status_code == 200 and "J9" in page.text
        short = await c.post(f"/set-password/{token}", data={"csrf_token": csrf_of(page.text), "password": "pendek", "password2": "pendek"})
        assert short.status_code == 400 and "minimal 10" in short.text
        ok = await c.post(f"/set-password/{token}", data={"csrf_token": csrf_of(page.text), "password": PASSWORD, "password2": PASSWORD})
        assert ok.status_code == 303
        again = await c.get(f"/set-password/{token}")
        assert again.status_code == 404
        login = await c.post("/login", data={"csrf_token": csrf_of(page.text), "login": "J9", "password": PASSWORD})
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
    async with client(app) as c:  # no open redirect after login
        page = await c.get("/login?next=https://evil.example/")
        r = await c.post("/login", data={"csrf_token": csrf_of(page.text), "login": "J9", "password": PASSWORD, "next": "https://evil.example/"})
        assert r.headers["location"] == "/juror"
