"""Settings from the environment (prefix ``BFEST_``). Secrets may come from files instead (Docker
secrets, Kubernetes Secrets mounted as files): ``BFEST_NATS_CREDS``, ``BFEST_NATS_NKEY_SEED_FILE``
and ``BFEST_CERTIFICATE_KEY_FILE`` are paths already; every other secret takes ``<VARIABLE>_FILE``
(:class:`SecretFilesSource`), and a database password ``BFEST_<SERVICE>_DATABASE_PASSWORD_FILE``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SecretFileError(OSError):
    """A ``*_FILE`` variable names a file that cannot be read (said in one line, naming both)."""


def read_secret_file(variable: str, path: str) -> str:
    """The secret in ``path`` (named by ``variable``), without the trailing newline an editor or
    ``echo`` leaves: Docker secrets and Kubernetes Secrets mounted as files hold one value each."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SecretFileError(f"{variable}: cannot read {path} ({exc.strerror or exc})") from None


class SecretFilesSource(PydanticBaseSettingsSource):
    """``<PREFIX><FIELD>_FILE`` for every secret (``SecretStr``) field that has no path field of
    its own: the value read from that file, so a secret never has to sit in the environment.
    Setting both the variable and its ``_FILE`` is refused (which one wins would be a guess)."""

    def _variable(self, name: str) -> str:
        return f"{self.config.get('env_prefix', '')}{name}_FILE".upper()

    def _secret_fields(self) -> list[str]:
        fields = self.settings_cls.model_fields
        return [
            name
            for name, info in fields.items()
            if SecretStr in getattr(info.annotation, "__args__", (info.annotation,)) and f"{name}_file" not in fields
        ]

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[str | None, str, bool]:
        variable = self._variable(field_name)
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        plain = variable.removesuffix("_FILE")
        if os.environ.get(plain):
            raise SecretFileError(f"set {plain} or {variable}, not both")
        return read_secret_file(variable, path), field_name, False

    def __call__(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in self._secret_fields():
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                values[key] = value
        return values


class SecretFilesSettings(BaseSettings):
    """Settings whose secrets may also come from files (``BFEST_…_FILE``), after the environment."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings, file_secret_settings


class Settings(SecretFilesSettings):
    model_config = SettingsConfigDict(env_prefix="BFEST_", env_file=".env", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    """``BFEST_NATS_URL``: one server, or every node of a cluster separated by commas
    (``nats://nats-1:4222,nats://nats-2:4222``); a client connects to whichever answers."""
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
    """``BFEST_TEMPORAL_API_KEY``, or the file named by ``BFEST_TEMPORAL_API_KEY_FILE``."""

    def credentials_dir(self) -> Path:
        return self.nats_credentials_dir or (self.var_dir / "nats" / "auth")

    # --- trust and published results (issue 21 items 4 and 5)
    profile: str = "development"
    """``BFEST_PROFILE``: ``production`` refuses development defaults for secrets (a process
    started without its key says so in one line and stops)."""
    public_url: str = "http://127.0.0.1:8000"
    """``BFEST_PUBLIC_URL``: where the public verification page lives (``<url>/verify/<code>``),
    printed on every certificate and held by its QR code; https in production."""
    certificate_key_file: Path | None = None
    """``BFEST_CERTIFICATE_KEY_FILE``: the awards service's Ed25519 signing key (PKCS#8 PEM).
    In development, without one, a key is generated once under ``var/keys/``."""
    certificate_key: SecretStr | None = None
    """``BFEST_CERTIFICATE_KEY``: the same PEM given inline (a secret manager's variable)."""
    events_max_age_days: float = 730.0
    """``BFEST_EVENTS_MAX_AGE_DAYS``: how long the event stream keeps an event (0: for ever). Two
    years: a cycle runs about one, and its services must be able to replay it."""
    events_max_bytes: int = 10 * 1024**3
    """``BFEST_EVENTS_MAX_BYTES``: the event stream's size limit (0: none); the oldest go first."""
    max_message_bytes: int = 1024**2
    """``BFEST_MAX_MESSAGE_BYTES``: the largest event a stream takes, NATS's own default payload
    limit (1 MiB); a larger one is refused at publish, not stored."""
    stream_replicas: int = 1
    """``BFEST_STREAM_REPLICAS``: copies JetStream keeps of each stream (3 on a 3-node cluster; 1
    on a single server). A start raises a stream to this, never lowers what an operator set."""

    # --- observability (issue 25; README: Observability)
    http_host: str = "127.0.0.1"
    """``BFEST_HTTP_HOST``: where a process serves /livez, /readyz and /metrics (0.0.0.0 in a container)."""
    http_port: int | None = None
    """``BFEST_HTTP_PORT`` (or ``BFEST_<SERVICE>_HTTP_PORT``, ``BFEST_WORKER_HTTP_PORT``): the port
    of those endpoints; 0 picks a free one; unset: no HTTP port."""
    ready_outbox_max_age: float = 30.0
    """``BFEST_READY_OUTBOX_MAX_AGE``: seconds the oldest unsent outbox event may wait before the
    process reports not ready."""
    ready_consumer_max_pending: int = 10_000
    """``BFEST_READY_CONSUMER_MAX_PENDING``: events a consumer may be behind before not ready."""

    def http_port_for(self, process: str) -> int | None:
        """``BFEST_<PROCESS>_HTTP_PORT``, else ``BFEST_HTTP_PORT``, else none."""
        own = os.environ.get(f"BFEST_{process.upper()}_HTTP_PORT")
        return int(own) if own else self.http_port

    @property
    def production(self) -> bool:
        return self.profile.strip().lower() in ("production", "prod")

    def database_url(self, service: str) -> str:
        """``BFEST_<SERVICE>_DATABASE_URL`` (or the URL in the file ``…_DATABASE_URL_FILE``), else a
        SQLite file under ``var/``. The password may come apart from the URL, from the file
        ``BFEST_<SERVICE>_DATABASE_PASSWORD_FILE`` or (one for every service)
        ``BFEST_DATABASE_PASSWORD_FILE``: it replaces the URL's own."""
        prefix = f"BFEST_{service.upper()}_DATABASE"
        url = os.environ.get(f"{prefix}_URL")
        if not url and os.environ.get(f"{prefix}_URL_FILE"):
            url = read_secret_file(f"{prefix}_URL_FILE", os.environ[f"{prefix}_URL_FILE"])
        if url:
            for variable in (f"{prefix}_PASSWORD_FILE", "BFEST_DATABASE_PASSWORD_FILE"):
                if os.environ.get(variable):
                    from sqlalchemy.engine import make_url

                    password = read_secret_file(variable, os.environ[variable])
                    return make_url(url).set(password=password).render_as_string(hide_password=False)
            return url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"

    def results_path(self) -> Path:
        path = self.results_dir or (self.var_dir / "results")
        path.mkdir(parents=True, exist_ok=True)
        return path


def nats_servers(urls: str | Sequence[str]) -> list[str]:
    """The server list for nats-py's ``servers=`` (and FastStream's): ``BFEST_NATS_URL`` may name
    several servers separated by commas (or spaces), which nats-py would take as one invalid URL."""
    parts = [urls] if isinstance(urls, str) else list(urls)
    servers = [u for part in parts for u in part.replace(",", " ").split()]
    if not servers:
        raise ValueError("no NATS server URL given (BFEST_NATS_URL)")
    return servers


@lru_cache
def get_settings() -> Settings:
    return Settings()
