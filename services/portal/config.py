"""The portal's settings (prefix ``BFEST_PORTAL_``), beside the shared ones."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from services.common.db import CYCLE_ZONE
from services.common.settings import SecretFilesSettings, Settings


class PortalSettings(SecretFilesSettings):  # BFEST_PORTAL_SECRET_FILE: the secret from a file
    model_config = SettingsConfigDict(env_prefix="BFEST_PORTAL_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    secret: SecretStr | None = None
    """``BFEST_PORTAL_SECRET``: signs the session cookies. In development, without one, a secret is
    generated once under ``var/keys/portal-secret``; a production profile refuses to start without."""
    year: int | None = None
    """``BFEST_PORTAL_YEAR``: the cycle the pages show (default: this year in Asia/Jakarta)."""
    session_hours: float = 12.0
    login_attempts: int = 5
    """Failed logins allowed per account name (and per client address) within ``login_window_seconds``."""
    login_window_seconds: int = 300
    invite_hours: float = 72.0
    stages: str = "desk,interview,field"
    """``BFEST_PORTAL_STAGES``: the jury stages whose objection windows the public page looks at."""
    objections_per_hour: int = 5
    """Objections one client address may file per hour (with the form's hidden trap field, the
    spam guard that needs no outside service)."""

    document_max_mb: float = 10.0
    """``BFEST_PORTAL_DOCUMENT_MAX_MB``: the largest proposal PDF a unit may upload."""
    document_replicas: int = 1
    """``BFEST_PORTAL_DOCUMENT_REPLICAS``: replicas of each year's document bucket (3 on a cluster)."""

    oidc_issuer: str | None = None
    """``BFEST_PORTAL_OIDC_ISSUER``: the provincial identity provider (OpenID Connect); its
    discovery document is ``<issuer>/.well-known/openid-configuration`` unless
    ``BFEST_PORTAL_OIDC_DISCOVERY_URL`` names another. Unset: no OpenID Connect login."""
    oidc_discovery_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_file: Path | None = None
    """``BFEST_PORTAL_OIDC_CLIENT_SECRET_FILE``: a file holding the client secret (never the secret in the environment)."""
    oidc_claim: str = "email"
    """``BFEST_PORTAL_OIDC_CLAIM``: the ID token's claim (e.g. ``email``, or ``nip``) matched against an
    account's OpenID id (``bfest portal invite --oidc-id``) or, failing that, its account name."""
    oidc_label: str = "SSO Pemprov Jatim"
    """``BFEST_PORTAL_OIDC_LABEL``: the name on the login page's button."""
    oidc_scope: str = "openid email profile"

    def oidc_metadata_url(self) -> str | None:
        if self.oidc_discovery_url:
            return self.oidc_discovery_url
        if self.oidc_issuer:
            return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
        return None

    def oidc_enabled(self) -> bool:
        return bool(self.oidc_metadata_url() and self.oidc_client_id and self.oidc_client_secret_file)

    def document_max_bytes(self) -> int:
        return int(self.document_max_mb * 1024 * 1024)

    def stage_keys(self) -> list[str]:
        return [s.strip() for s in self.stages.split(",") if s.strip()]

    def cycle_year(self) -> int:
        return self.year or dt.datetime.now(CYCLE_ZONE).year


class MissingSecret(RuntimeError):
    pass


def session_secret(portal: PortalSettings, settings: Settings) -> str:
    """The cookie-signing secret: the configured one, or (development only) one generated once and
    kept under ``var/keys/`` readable by its owner only."""
    if portal.secret is not None:
        return portal.secret.get_secret_value()
    if settings.production:
        raise MissingSecret("BFEST_PORTAL_SECRET is required with BFEST_PROFILE=production (it signs the session cookies)")
    path = Path(settings.var_dir) / "keys" / "portal-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
