"""Settings from the environment (prefix ``BFEST_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BFEST_", env_file=".env", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    var_dir: Path = Path("var")
    results_dir: Path | None = None
    log_level: str = "INFO"
    log_json: bool = False
    command_timeout: float = 10.0
    command_workers: int = 16
    """Commands one service replica handles at once."""

    # NATS credentials (see services/common/authz.py and the README's "Security"). A process
    # connects as its identity with, in this order: a creds file (JWT), an nkey seed (file or
    # value), else ``<nats_credentials_dir>/<identity>.nk`` (the dev stack's generated keys).
    nats_creds: Path | None = None
    nats_nkey_seed_file: Path | None = None
    nats_nkey_seed: SecretStr | None = None
    nats_credentials_dir: Path | None = None
    """Default ``<var_dir>/nats/auth``: where ``bfest dev up`` keeps each identity's seed."""
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    # Temporal: TLS (mTLS with a client certificate and key) and/or an API key (Temporal Cloud).
    temporal_tls: bool = False
    temporal_tls_ca: Path | None = None
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None

    def credentials_dir(self) -> Path:
        return self.nats_credentials_dir or (self.var_dir / "nats" / "auth")

    def database_url(self, service: str) -> str:
        """``BFEST_<SERVICE>_DATABASE_URL``, else a SQLite file under ``var/``."""
        url = os.environ.get(f"BFEST_{service.upper()}_DATABASE_URL")
        if url:
            return url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"

    def results_path(self) -> Path:
        path = self.results_dir or (self.var_dir / "results")
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache
def get_settings() -> Settings:
    return Settings()
