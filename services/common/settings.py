"""Settings from the environment (prefix ``BFEST_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

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
