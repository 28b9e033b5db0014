"""What every route shares: the templates, the signed-in person, the role a route needs, the CSRF
check on every form, and the reply of a refused act."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from services.common.db import CYCLE_ZONE
from services.portal.accounts import HOME, ROLE_NAMES, Accounts, Person, Role
from services.portal.gateway import Gateway

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


def wib(value: Any) -> str:
    """A moment as people here read it: in Asia/Jakarta, e.g. ``12 Jun 2033 16:00 WIB``."""
    if not value:
        return "—"
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    local = moment.astimezone(CYCLE_ZONE)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M} WIB"


TEMPLATES.env.filters["wib"] = wib
STATUS_ID = {
    "draft": "draf", "submitted": "diajukan", "returned": "dikembalikan", "forwarded": "diteruskan",
    "withdrawn": "ditarik", "open": "dibuka", "closed": "ditutup", "pending_review": "menunggu diperiksa",
    "not_received": "belum diterima", "received": "diterima", "revising": "sedang diperbaiki", "not_open": "belum dibuka",
}  # fmt: skip
TEMPLATES.env.filters["status_id"] = lambda value: STATUS_ID.get(str(value), str(value))
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginRequired(Exception):
    """An anonymous request for a page that needs an account (HTML: to the login page; API: 401)."""


def accounts(request: Request) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def year(request: Request) -> int:
    """The cycle a page shows: ``?year=`` on a page that only reads (past results, another
    cycle's dashboard), else the portal's year (``BFEST_PORTAL_YEAR``, default this year)."""
    asked = request.query_params.get("year", "")
    if request.method == "GET" and asked.isdigit() and 2000 <= int(asked) <= 2100:
        return int(asked)
    return request.app.state.year  # type: ignore[no-any-return]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def csrf_check(request: Request) -> None:
    """Every unsafe request carries the session's CSRF token (a form field, or the header for the
    JSON API); applied to the whole app, so no route can forget it."""
    if request.method not in UNSAFE:
        return
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not expected or not given or not secrets.compare_digest(str(expected), given):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again / token CSRF tidak ada atau salah")


async def current_person(request: Request) -> Person | None:
    if hasattr(request.state, "person"):  # already looked up for this request
        return request.state.person  # type: ignore[no-any-return]
    sid = request.session.get("sid")
    person = await accounts(request).session_person(sid) if sid else None
    if sid and person is None:
        request.session.pop("sid", None)
    request.state.person = person
    return person


def require_role(*roles: Role) -> Any:
    """The dependency of a route only ``roles`` may use: anonymous → login, another role → 403."""

    async def dependency(person: Person | None = Depends(current_person)) -> Person:
        if person is None:
            raise LoginRequired()
        if person.role not in roles:
            raise HTTPException(403, "Halaman ini bukan untuk peran Anda / this page is not for your role")
        return person

    return dependency


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    person = getattr(request.state, "person", None)
    base = {
        "person": person,
        "role_names": ROLE_NAMES,
        "home": HOME,
        "csrf": csrf_token(request),
        "year": year(request),
        "temporal_ui": request.app.state.temporal_ui_url,
    }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status_code)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")
