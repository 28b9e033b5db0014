"""Helpers for the portal's tests: the app started with its lifespan on a real nats-server, an
httpx client per person, accounts made and signed in the way people do (invitation link, set
password, log in with the form's CSRF token)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.migrations import upgrade
from services.common.settings import Settings
from services.portal.accounts import Role
from services.portal.app import create_app
from services.portal.config import PortalSettings

PASSWORD = "rahasia-sekali-123"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextlib.asynccontextmanager
async def portal(nats_url: str, tmp_path: Path, year: int, **portal_kwargs: Any) -> AsyncIterator[FastAPI]:
    settings = Settings(var_dir=tmp_path / "portal-var", command_timeout=5.0)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    await upgrade("portal", database_url)  # as `bfest db upgrade` does before the portal starts
    app = create_app(
        settings,
        PortalSettings(year=year, secret="test-secret-" + "x" * 32, **portal_kwargs),  # type: ignore[arg-type]
        nats_url=nats_url,
        database_url=database_url,
    )
    async with app.router.lifespan_context(app):
        yield app


def client(app: FastAPI, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://portal.test", follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def account(app: FastAPI, role: Role, subject: str, name: str = "", login: str | None = None) -> str:
    """An account set up as a person would: the invitation, then the set-password form (its
    login is the subject's id unless ``login`` names another, e.g. one person in two roles)."""
    await app.state.accounts.ensure_account(role, subject, name or subject, login=login)
    token = await app.state.accounts.invite(login or subject)
    async with client(app) as c:
        page = await c.get(f"/set-password/{token}")
        r = await c.post(f"/set-password/{token}", data={"csrf_token": csrf_of(page.text), "password": PASSWORD, "password2": PASSWORD})
        assert r.status_code == 303, r.text
    return login or subject


@contextlib.asynccontextmanager
async def logged_in(app: FastAPI, login: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as c:
        page = await c.get("/login")
        r = await c.post("/login", data={"csrf_token": csrf_of(page.text), "login": login, "password": password})
        assert r.status_code == 303, r.text
        yield c
