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
