"""The dev stack's side of the trust boundary: make each identity's credentials on first start
(under ``<var>/nats/auth``, git-ignored), write nats-server's authorization from the permission
table (services/common/authz.py), and hand each process the seed of its own identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats

from services.common import authz
from services.common.credentials import nats_options
from services.common.settings import Settings, nats_servers


def prepare(settings: Settings) -> Path:
    """Credentials for every identity (kept if they exist) and the server's authorization
    configuration, rewritten from the table. Returns the configuration file."""
    return authz.write_server_config(settings.credentials_dir().resolve())


def server_args(config: Path) -> list[str]:
    return ["-c", str(config)]


def identity_env(settings: Settings, identity: str) -> dict[str, str]:
    """The environment that makes a child process connect as ``identity`` (and only as it)."""
    seed = authz.seed_path(settings.credentials_dir().resolve(), identity)
    return {"BFEST_NATS_NKEY_SEED_FILE": str(seed)} if seed.exists() else {}


async def connect(url: str, identity: str = authz.CLI, settings: Settings | None = None, **kwargs: Any) -> Any:
    """A short-lived connection as ``identity`` (the stack's own probes connect as the operator)."""
    return await nats.connect(servers=nats_servers(url), **{**nats_options(identity, settings), **kwargs})


def auth_required(nc: Any) -> bool:
    info = getattr(nc, "_server_info", None) or {}
    return bool(info.get("auth_required"))


async def apply_stream_limits(url: str, settings: Settings) -> None:
    """Create the streams or bring their limits up to the settings, as the operator: the only
    identity that may change an existing stream."""
    from services.common.messaging import ensure_streams

    nc = await connect(url, authz.CLI, settings, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        await ensure_streams(nc.jetstream(), settings, manage=True)
    finally:
        await nc.close()
