"""Signing in and out, and setting a password from a one-time invitation link."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.portal.accounts import AccountError, Person, Role
from services.portal.web import accounts, current_person, render

router = APIRouter(tags=["auth"])

HOME = {Role.UNIT: "/unit", Role.AGENCY: "/agency", Role.VERIFIER: "/verifier", Role.JUROR: "/juror", Role.OPERATOR: "/operator"}


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (no open redirect to another host)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, next: str | None = None, person: Person | None = Depends(current_person)) -> Response:
    return render(request, "login.html", next=_safe_next(next) or "", login="", error=None)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    login: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    person: Person | None = Depends(current_person),
) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        who = await accounts(request).authenticate(login, password, address)
    except AccountError as exc:
        message = (
            ("Terlalu banyak percobaan masuk yang gagal; tunggu beberapa menit.", "Too many failed logins; wait a few minutes.")
            if exc.code == "rate_limited"
            else ("Nama akun atau kata sandi salah.", "Wrong account name or password.")
        )
        status = 429 if exc.code == "rate_limited" else 401
        return render(request, "login.html", status_code=status, next=_safe_next(next) or "", login=login, error=message)
    old = request.session.get("sid")
    if old:
        await accounts(request).close_session(old)
    # A new session and a new CSRF token at every login (no session fixation).
    request.session.clear()
    request.session["sid"] = await accounts(request).open_session(who)
    return RedirectResponse(_safe_next(next) or HOME[who.role], status_code=303)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    sid = request.session.get("sid")
    if sid:
        await accounts(request).close_session(sid)
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@router.get("/set-password/{token}", include_in_schema=False)
async def set_password_form(request: Request, token: str, person: Person | None = Depends(current_person)) -> Response:
    who = await accounts(request).invited(token)
    return render(request, "set_password.html", status_code=200 if who else 404, token=token, invited=who, error=None)


@router.post("/set-password/{token}", include_in_schema=False)
async def set_password(
    request: Request,
    token: str,
    password: str = Form(""),
    password2: str = Form(""),
    person: Person | None = Depends(current_person),
) -> Response:
    who = await accounts(request).invited(token)
    if who is None:
        return render(request, "set_password.html", status_code=404, token=token, invited=None, error=None)
    if password != password2:
        error = ("Kedua kata sandi tidak sama.", "The two passwords differ.")
        return render(request, "set_password.html", status_code=400, token=token, invited=who, error=error)
    try:
        await accounts(request).set_password(token, password)
    except AccountError as exc:
        error = (
            ("Kata sandi minimal 10 karakter.", "A password needs at least 10 characters.")
            if exc.code == "password_too_short"
            else ("Tautan ini sudah dipakai atau kedaluwarsa.", "This link is used or expired.")
        )
        return render(request, "set_password.html", status_code=400, token=token, invited=who, error=error)
    return RedirectResponse("/login?set=1", status_code=303)
