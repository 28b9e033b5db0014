"""A small OpenID Connect provider for the portal's tests (a Starlette app, ID tokens signed with an
RSA key through joserfc): discovery, JWKS, an authorize page where a person picks who they are,
and the token endpoint (authorization code, client_secret_basic). It stands in for the provincial
identity provider; the portal's side (Authlib) is the real one."""

from __future__ import annotations

import base64
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Provider:
    client_id: str
    client_secret: str
    people: dict[str, dict[str, Any]]
    """username → the claims of their ID token (``sub``, ``email``, ``nip``, ``name``)."""
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "prov-1", "use": "sig"}))
    rogue_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "prov-1", "use": "sig"}))
    sign_with_rogue_key: bool = False
    """Sign ID tokens with a key the JWKS does not publish (a forged token)."""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens_issued: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize_page, methods=["GET"]),
                Route("/authorize", self.authorize, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "email", "profile"],
        })  # fmt: skip

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize_page(self, request: Request) -> Response:
        """Who is signing in (a real provider would ask for a password here)."""
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return HTMLResponse("<p>bad request</p>", status_code=400)
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in q.items())
        options = "".join(f'<option value="{u}">{html.escape(c.get("name", u))}</option>' for u, c in self.people.items())
        return HTMLResponse(
            '<!doctype html><html lang="id"><head><title>IdP</title></head><body><main><h1>Penyedia identitas</h1>'
            f'<form method="post" action="/authorize">{hidden}<label for="user">Pengguna</label>'
            f'<select id="user" name="user">{options}</select><button id="approve" type="submit">Setujui</button></form></main></body></html>'
        )

    async def authorize(self, request: Request) -> Response:
        form = await request.form()
        f = {k: str(v) for k, v in form.items()}
        if f.get("client_id") != self.client_id or f.get("user") not in self.people:
            return HTMLResponse("<p>bad request</p>", status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"user": f["user"], "redirect_uri": f["redirect_uri"], "nonce": f.get("nonce")}
        return RedirectResponse(f"{f['redirect_uri']}?{urlencode({'code': code, 'state': f.get('state', '')})}", status_code=302)

    async def token(self, request: Request) -> Response:
        basic = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if not secrets.compare_digest(basic, expected):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        grant = self.codes.pop(str(form.get("code")), None)  # a code is used once
        if form.get("grant_type") != "authorization_code" or grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {**self.people[grant["user"]], "iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300}
        if grant["nonce"]:
            claims["nonce"] = grant["nonce"]
        key = self.rogue_key if self.sign_with_rogue_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "prov-1"}, claims, key)
        self.tokens_issued += 1
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300, "id_token": id_token})
