"""OpenID Connect login (Authlib) against a small OpenID Connect provider served on a free port in
the test (discovery, JWKS, authorize, token; RS256 ID tokens): the login page offers the provider
only when it is configured; a person whose claim names an issued account is signed in; a person
the secretariat never issued an account to is refused with a clear message; a forged ID token and a
replayed state are refused; the password login keeps working beside it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI

from services.portal.accounts import Role
from tests.portal.oidc_provider import Provider
from tests.portal.support import account, client, portal
from tests.portal.test_browser import serving

YEAR = 2033
PEOPLE = {
    "juri": {"sub": "idp-0001", "email": "juri.satu@jatimprov.go.id", "nip": "198001012005011001", "name": "Dr. Juri Satu"},
    "unit": {"sub": "idp-0002", "email": "KAB-MALANG-U01", "nip": "198202022006022002", "name": "Admin Puskesmas"},
    "asing": {"sub": "idp-0999", "email": "orang.asing@example.id", "nip": "199909092019091009", "name": "Orang Asing"},
}


@contextlib.asynccontextmanager
async def provider_and_portal(nats_url: str, tmp_path: Path, **kwargs: Any) -> AsyncIterator[tuple[Provider, FastAPI]]:
    idp = Provider(client_id="bfest-portal", client_secret="rahasia-klien-sso", people=PEOPLE)
    async with serving(idp.app()) as issuer:
        idp.issuer = issuer
        secret = tmp_path / "oidc-client-secret"
        secret.write_text("rahasia-klien-sso\n")
        async with portal(nats_url, tmp_path, YEAR, oidc_issuer=issuer, oidc_client_id="bfest-portal", oidc_client_secret_file=secret, **kwargs) as app:
            yield idp, app


async def sign_in_at_the_provider(c: httpx.AsyncClient, user: str, next: str | None = None) -> tuple[httpx.Response, str]:
    """The portal sends the person to the provider; they say who they are; the provider sends them
    back with a code. Returns the portal's answer to the callback and the callback URL."""
    go = await c.get("/login/oidc", params={"next": next} if next else None)
    assert go.status_code in (302, 303, 307), go.text
    target = go.headers["location"]
    params = dict(parse_qsl(urlsplit(target).query))
    assert params["client_id"] == "bfest-portal" and "openid" in params["scope"] and params["nonce"] and params["state"]
    async with httpx.AsyncClient() as browser:
        page = await browser.get(target)
        assert page.status_code == 200 and "Setujui" in page.text
        approved = await browser.post(target.split("?")[0], data={**params, "user": user})
    assert approved.status_code == 302
    callback = approved.headers["location"]
    assert callback.startswith("http://portal.test/login/oidc/callback?")
    return await c.get(callback), callback


async def test_a_person_logs_in_through_the_identity_provider(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    async with provider_and_portal(nats_url, tmp_path) as (idp, app):
        await account(app, Role.JUROR, "J01", "Dr. Juri Satu")
        await app.state.accounts.link_oidc("J01", "juri.satu@jatimprov.go.id")
        await account(app, Role.UNIT, "KAB-MALANG-U01", "Puskesmas 1")  # claimed by its account name
        async with client(app) as c:
            page = await c.get("/login")
            assert 'id="oidc-login"' in page.text and "Masuk dengan SSO Pemprov Jatim" in page.text
            back, _ = await sign_in_at_the_provider(c, "juri", next="/juror?from=sso")
            assert back.status_code == 303 and back.headers["location"] == "/juror?from=sso", back.text
            assert (await c.get("/api/me")).json()["person"]["login"] == "J01"
        async with client(app) as c:
            back, _ = await sign_in_at_the_provider(c, "unit")
            assert back.status_code == 303 and back.headers["location"] == "/unit"
            assert (await c.get("/api/me")).json()["person"]["login"] == "KAB-MALANG-U01"
        assert idp.tokens_issued == 2


async def test_an_unknown_person_a_forged_token_and_a_replayed_state_are_refused(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    async with provider_and_portal(nats_url, tmp_path) as (idp, app):
        await account(app, Role.JUROR, "J01", "Dr. Juri Satu")
        await app.state.accounts.link_oidc("J01", "juri.satu@jatimprov.go.id")
        async with client(app) as c:
            stranger, _ = await sign_in_at_the_provider(c, "asing")
            assert stranger.status_code == 403
            assert "Identitas orang.asing@example.id belum terdaftar sebagai akun portal" in stranger.text and "sekretariat" in stranger.text
            assert (await c.get("/api/me")).json() == {"person": None}
            ok, callback = await sign_in_at_the_provider(c, "juri")
            assert ok.status_code == 303
            replayed = await c.get(callback)  # the same state and code again
            assert replayed.status_code == 401 and "Login SSO gagal" in replayed.text
        idp.sign_with_rogue_key = True
        async with client(app) as c:
            forged, _ = await sign_in_at_the_provider(c, "juri")
            assert forged.status_code == 401 and "Login SSO gagal" in forged.text
            assert (await c.get("/api/me")).json() == {"person": None}


async def test_without_configuration_there_is_no_provider_login(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    async with portal(nats_url, tmp_path, YEAR) as app:
        assert app.state.oidc is None
        await account(app, Role.JUROR, "J01")
        async with client(app) as c:
            page = await c.get("/login")
            assert page.status_code == 200 and "oidc-login" not in page.text
            assert (await c.get("/login/oidc")).status_code == 404
            assert (await c.get("/login/oidc/callback?code=x&state=y")).status_code == 404
