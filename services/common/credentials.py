"""How a process proves who it is: the NATS connect options for an identity (nkey seed or creds
file, its own inbox prefix, TLS) and Temporal's (TLS, API key), from the settings. Secrets stay
in ``SecretStr`` or files and are never logged."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from services.common import authz
from services.common.settings import Settings, get_settings


def nats_options(identity: str, settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (and FastStream's ``NatsBroker``) as ``identity``."""
    s = settings or get_settings()
    options: dict[str, Any] = {"inbox_prefix": authz.inbox_prefix(identity)}
    if s.nats_creds:
        options["user_credentials"] = str(s.nats_creds)
    elif s.nats_nkey_seed_file:
        options["nkeys_seed"] = str(s.nats_nkey_seed_file)
    elif s.nats_nkey_seed:
        options["nkeys_seed_str"] = s.nats_nkey_seed.get_secret_value()
    else:
        seed = authz.seed_path(s.credentials_dir(), identity)
        if seed.exists():
            options["nkeys_seed"] = str(seed)
    tls = nats_tls(s)
    if tls is not None:
        options["tls"] = tls
    return options


def nats_tls(s: Settings) -> ssl.SSLContext | None:
    if not (s.nats_tls_ca or s.nats_tls_cert):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(s.nats_tls_ca) if s.nats_tls_ca else None)
    if s.nats_tls_cert:
        context.load_cert_chain(str(s.nats_tls_cert), str(s.nats_tls_key) if s.nats_tls_key else None)
    return context


def has_credentials(identity: str, settings: Settings | None = None) -> bool:
    options = nats_options(identity, settings)
    return any(k in options for k in ("user_credentials", "nkeys_seed", "nkeys_seed_str"))


def temporal_options(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``temporalio.client.Client.connect``: TLS or mTLS, API key."""
    from temporalio.service import TLSConfig

    s = settings or get_settings()
    options: dict[str, Any] = {}

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path else None

    if s.temporal_tls_ca or s.temporal_tls_cert:
        options["tls"] = TLSConfig(
            server_root_ca_cert=read(s.temporal_tls_ca),
            client_cert=read(s.temporal_tls_cert),
            client_private_key=read(s.temporal_tls_key),
        )
    elif s.temporal_tls or s.temporal_api_key:
        options["tls"] = True
    if s.temporal_api_key:
        options["api_key"] = s.temporal_api_key.get_secret_value()
    return options
