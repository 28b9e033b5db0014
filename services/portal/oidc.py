"""OpenID Connect login (Authlib's Starlette client) for a provincial identity provider: on only
when configured (``BFEST_PORTAL_OIDC_*``). The provider says who the person is (a signed ID token,
checked against its published keys, issuer, audience and the nonce of this login); the portal
decides what they may do: the configured claim must name an account the secretariat issued, else
the login is refused. No account is ever made from a provider's word."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from services.portal.config import PortalSettings

if TYPE_CHECKING:
    from authlib.integrations.starlette_client import StarletteOAuth2App

NAME = "provinsi"


class OidcMisconfigured(RuntimeError):
    pass


def client(portal: PortalSettings) -> StarletteOAuth2App | None:
    """The provider's client, or ``None`` when OpenID Connect is not configured."""
    if not portal.oidc_enabled():
        return None
    assert portal.oidc_client_secret_file is not None
    try:
        secret = portal.oidc_client_secret_file.read_text().strip()
    except OSError as exc:
        raise OidcMisconfigured(f"BFEST_PORTAL_OIDC_CLIENT_SECRET_FILE: cannot read {portal.oidc_client_secret_file} ({exc.strerror})") from None
    if not secret:
        raise OidcMisconfigured(f"BFEST_PORTAL_OIDC_CLIENT_SECRET_FILE: {portal.oidc_client_secret_file} is empty")
    with warnings.catch_warnings():  # imported only when configured; its httpx deprecation notice is not the operator's concern
        warnings.filterwarnings("ignore", message=".*httpx module is deprecated.*")
        from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

    oauth = OAuth()
    oauth.register(
        NAME,
        client_id=portal.oidc_client_id,
        client_secret=secret,
        server_metadata_url=portal.oidc_metadata_url(),
        client_kwargs={"scope": portal.oidc_scope},
    )
    app = oauth.create_client(NAME)
    assert isinstance(app, StarletteOAuth2App)
    return app
