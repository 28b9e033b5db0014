"""Signing in and out (with a password, or through the provincial identity provider when OpenID
Connect is configured), and setting a password from a one-time invitation link."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.common.errors import AuthlibBaseError
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from httpx import HTTPError
from joserfc.errors import JoseError
from starlette.responses import Response

from services.common.logging import get_logger
from services.portal.accounts import HOME, AccountError, Person
from services.portal.web import accounts, current_person, render

log = get_logger("portal.oidc")

router = APIRouter(tags=["auth"])

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
    return _login_page(request, next=_safe_next(next) or "", login="", error=None)


def _login_page(request: Request, status_code: int = 200, **context: object) -> Response:
    portal = request.app.state.portal
    oidc = {"label": portal.oidc_label} if request.app.state.oidc is not None else None
    return render(request, "login.html", status_code=status_code, oidc=oidc, **context)


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
        return _login_page(request, status_code=status, next=_safe_next(next) or "", login=login, error=message)
    return await _signed_in(request, who, next)


async def _signed_in(request: Request, who: Person, next: str | None) -> Response:
    old = request.session.get("sid")
    if old:
        await accounts(request).close_session(old)
    # A new session and a new CSRF token at every login (no session fixation).
    request.session.clear()
    request.session["sid"] = await accounts(request).open_session(who)
    return RedirectResponse(_safe_next(next) or HOME[who.role], status_code=303)


@router.get("/login/oidc", include_in_schema=False)
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """To the identity provider (Authlib keeps the state and nonce of this login in the session)."""
    provider = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "Login SSO tidak diaktifkan / single sign-on is not configured")
    request.session["oidc_next"] = _safe_next(next) or ""
    try:
        return await provider.authorize_redirect(request, str(request.url_for("oidc_callback")))  # type: ignore[no-any-return]
    except (HTTPError, AuthlibBaseError, ValueError) as exc:
        log.warning("oidc.provider_unreachable", error=f"{exc.__class__.__name__}: {exc}")
        error = ("Penyedia identitas tidak dapat dihubungi; coba lagi atau masuk dengan kata sandi.", "The identity provider cannot be reached; try again or log in with a password.")
        return _login_page(request, status_code=502, next=_safe_next(next) or "", login="", error=error)


@router.get("/login/oidc/callback", include_in_schema=False, name="oidc_callback")
async def oidc_callback(request: Request) -> Response:
    """Back from the provider: the signed ID token names the person; the configured claim must
    name an account the secretariat issued."""
    provider = request.app.state.oidc
    if provider is None:
        raise HTTPException(404, "Login SSO tidak diaktifkan / single sign-on is not configured")
    next = request.session.pop("oidc_next", "")
    claim = request.app.state.portal.oidc_claim
    try:
        token = await provider.authorize_access_token(request)
    except (HTTPError, AuthlibBaseError, JoseError, ValueError, KeyError) as exc:  # a wrong state, a refused code, a bad signature
        log.warning("oidc.refused", error=f"{exc.__class__.__name__}: {exc}")
        error = ("Login SSO gagal atau dibatalkan; coba lagi.", "The single sign-on failed or was cancelled; try again.")
        return _login_page(request, status_code=401, next=next, login="", error=error)
    userinfo = token.get("userinfo") or {}
    value = str(userinfo.get(claim) or "")
    who = await accounts(request).by_oidc(value) if value else None
    if who is None:
        log.info("oidc.unknown_person", claim=claim, sub=userinfo.get("sub"))
        shown = value or f"(tanpa klaim {claim})"
        error = (
            f"Identitas {shown} belum terdaftar sebagai akun portal. Minta sekretariat (Biro Organisasi) menerbitkan akun Anda.",
            f"{shown} has no portal account. Ask the secretariat to issue one.",
        )
        return _login_page(request, status_code=403, next=next, login="", error=error)
    return await _signed_in(request, who, next)


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
