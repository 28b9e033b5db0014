"""A service killed while it holds a command: the worker's client sends the command again (same
request id) while the first request waits, so the command is answered seconds after the service
is back, not when the whole timeout has run out. Real processes on a real nats-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from contracts.registration import CallView, OpenCall
from services.common.messaging import CommandClient
from tests.support import eventually, request

BFEST = str(Path(sys.executable).parent / "bfest")
YEAR = 2061


def start_registration(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([BFEST, "service", "run", "registration"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def ready(nc) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool((await request(nc, "bfest.registration.cmd.health", b"{}", timeout=1))["ok"])
    except Exception:  # noqa: BLE001 - not up yet
        return False


async def test_a_command_lost_with_its_killed_service_is_answered_soon_after_it_returns(nats_url, nc, tmp_path):
    env = {
        **os.environ,
        "BFEST_NATS_URL": nats_url,
        "BFEST_VAR_DIR": str(tmp_path),
        "BFEST_REGISTRATION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/registration.db",
        "BFEST_LOG_JSON": "1",
    }
    log = tmp_path / "registration.log"
    await asyncio.to_thread(subprocess.run, [BFEST, "db", "upgrade", "--service", "registration"], env=env, check=True, capture_output=True, timeout=60)
    service = start_registration(env, log)
    try:
        await eventually(lambda: ready(nc), timeout=60)
        client = CommandClient(nc, timeout=60, resend_after=2)
        command = OpenCall(
            request_id="open-2061",
            cycle_year=YEAR,
            opens_at="2061-03-01T08:00:00+07:00",
            closes_at="2061-04-30T12:00:00+07:00",
        )
        service.send_signal(signal.SIGSTOP)  # it takes the command off the wire and never answers
        answer = asyncio.create_task(client.call(command))
        await asyncio.sleep(0.5)  # not a timing assertion: lets the request reach the stopped service
        service.kill()
        service.wait()
        assert not answer.done()

        service = start_registration(env, log)
        await eventually(lambda: ready(nc), timeout=60)
        back = asyncio.get_running_loop().time()
        view = CallView.model_validate(await answer)
        waited = asyncio.get_running_loop().time() - back
        assert view.cycle_year == YEAR and view.state == "open"
        # The client's timeout is 60 s; without a copy sent again it would have waited all of it.
        assert waited < 10, f"answered {waited:.1f}s after the service was back"
        opened = [line for line in log.read_text().splitlines() if '"command.handled"' in line and "open_call" in line]
        assert len(opened) == 1, opened  # the copies were answered by the one command handled
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGCONT)
            service.terminate()
            service.wait(timeout=20)
