"""Several NATS URLs (``BFEST_NATS_URL=nats://a:4222,nats://b:4222``, as deploy/ sets it): every
connection — a service's broker and its JetStream connection, the worker's, the CLI's — takes the
list and connects to whichever server answers, here a real one beside a dead one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import authz
from services.common.messaging import CommandClient, connect_jetstream
from services.common.settings import Settings, nats_servers
from services.registration.app import create_app
from tests.support import free_port, request, running


def test_a_comma_separated_url_is_a_list_of_servers():
    assert nats_servers("nats://a:4222") == ["nats://a:4222"]
    assert nats_servers("nats://a:4222,nats://b:4222, nats://c:4222") == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert nats_servers(["nats://a:4222", "nats://b:4222,nats://c:4222"]) == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    with pytest.raises(ValueError, match="BFEST_NATS_URL"):
        nats_servers(" , ")


@pytest.fixture
def urls(nats_url: str) -> str:
    """A dead server first, then the real one."""
    return f"nats://127.0.0.1:{free_port()},{nats_url}"


async def test_a_service_the_worker_and_a_client_connect_to_the_server_that_answers(urls, nc, tmp_path):
    # The client, with the dead server tried first (nats-py shuffles the list unless told not to).
    client = await CommandClient.connect(urls, timeout=5, dont_randomize=True)
    # The worker and the bridge connect like this (workflows/worker.py).
    worker_nc, js = await connect_jetstream(urls, "bfest-worker", identity=authz.WORKER)
    try:
        assert (await js.stream_info("BFEST_EVENTS")).config.name == "BFEST_EVENTS"
        # A service: its JetStream connection and its FastStream broker.
        async with running(create_app(Settings(var_dir=tmp_path)), urls, f"sqlite+aiosqlite:///{tmp_path}/r.db"):
            assert (await request(nc, "bfest.registration.cmd.health", b"{}"))["ok"]
            reply = await client.request_raw("bfest.registration.cmd.health", b"{}")
            assert reply.ok, reply
    finally:
        await worker_nc.close()
        await client.close()


async def test_the_cli_takes_several_urls(urls, nats_url, tmp_path):
    settings = Settings(var_dir=tmp_path)
    units = tmp_path / "units.csv"
    units.write_text("code,name,kind,parent_code,active\nKAB-X,Kabupaten X,kabupaten,,true\nKAB-X-U1,UPT X,upt,KAB-X,true\n")
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"):
        env = {**os.environ, "BFEST_NATS_URL": urls, "BFEST_VAR_DIR": str(tmp_path), "COLUMNS": "200"}
        bfest = str(Path(sys.executable).parent / "bfest")
        out = await asyncio.to_thread(
            subprocess.run, [bfest, "participants", "import", str(units)], capture_output=True, text=True, env=env, timeout=60
        )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2" in out.stdout, out.stdout


async def test_the_dev_stacks_probes_find_the_server_behind_a_dead_one(nats_url):
    """The stack's probes may not reconnect (allow_reconnect=False); nats-py still goes through the
    list to the server that answers."""
    from bfest import security

    dead = f"nats://127.0.0.1:{free_port()}"
    nc = await security.connect(
        f"{dead},{dead},{nats_url}", connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False, dont_randomize=True
    )
    try:
        assert nc.is_connected
    finally:
        await nc.close()
