"""The demo's simulated people ask again when an outage refuses them, as a real client does (the
same command, so the same request id): a service that is not running yet (no responders), and a
NATS server killed with -9 and started again a few seconds later (the connection is lost, then
comes back). Real nats-server, the real registration service."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from bfest.simulation import Door
from contracts.registration import ImportParticipants, ListParticipants, OpenCall, Participant
from services.common.messaging import CommandError
from services.common.settings import Settings
from services.registration.app import create_app
from tests.support import authorization_config, binary, free_port, running, wait_for_port

# Not a year on the cluster: these run in every `make test`.


class RestartableNats:
    """One nats-server on a fixed port and store, which the test kills and starts again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.store = tempfile.mkdtemp(prefix="bfest-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [binary("nats-server"), "-c", str(authorization_config()), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def restartable_nats() -> Iterator[RestartableNats]:
    server = RestartableNats()
    server.start()
    try:
        yield server
    finally:
        if server.proc and server.proc.poll() is None:
            server.proc.terminate()
            server.proc.wait(10)
        shutil.rmtree(server.store, ignore_errors=True)


def participants(prefix: str) -> list[Participant]:
    agency = Participant(code=f"KAB-{prefix}", name=f"Kabupaten {prefix}", kind="kabupaten")  # type: ignore[arg-type]
    units = [Participant(code=f"KAB-{prefix}-U{i:02d}", name=f"Puskesmas {i}", kind="upp", parent_code=f"KAB-{prefix}") for i in range(3)]  # type: ignore[arg-type]
    return [agency, *units]


async def test_a_person_waits_for_a_service_that_is_starting_and_through_a_nats_restart(restartable_nats, tmp_path):
    nats = restartable_nats
    door = await Door.open(nats.url, "cli", timeout=3, patience=60)
    app = create_app(Settings(var_dir=tmp_path))
    db = f"sqlite+aiosqlite:///{tmp_path}/registration.db"
    try:
        # The service is not running yet: no responders, asked again until it is.
        first = asyncio.create_task(door.call(ImportParticipants(request_id="people-1", participants=participants("MALANG"))))
        await asyncio.sleep(1.5)
        assert not first.done()
        async with running(app, nats.url, db):
            reply = await asyncio.wait_for(first, 60)
            assert reply["created"] == 4
            after_outage = door.retries
            assert after_outage >= 1

            # NATS dies mid-demo and comes back on the same port and store: the person's next
            # request (and the service) reconnect; nothing is lost and nothing is done twice.
            nats.kill()
            second = asyncio.create_task(door.call(ImportParticipants(request_id="people-2", participants=participants("BATU"))))
            await asyncio.sleep(2.0)
            assert not second.done()
            nats.start()
            await asyncio.wait_for(second, 60)
            assert door.retries > after_outage
            # The same request again (a client that never saw the reply) is answered, not redone.
            again = await door.call(ImportParticipants(request_id="people-2", participants=participants("BATU")))
            assert again == await door.call(ImportParticipants(request_id="people-2", participants=participants("BATU")))
            page = await door.call(ListParticipants(limit=100))
            assert sorted(p["code"] for p in page["items"]) == sorted(p.code for p in participants("MALANG") + participants("BATU"))
    finally:
        with contextlib.suppress(Exception):
            await door.close()


async def test_a_refusal_that_is_not_an_outage_is_not_retried(restartable_nats, tmp_path):
    door = await Door.open(restartable_nats.url, "cli", timeout=3, patience=60)
    async with running(create_app(Settings(var_dir=tmp_path)), restartable_nats.url, f"sqlite+aiosqlite:///{tmp_path}/r.db"):
        orphan = Participant(code="KAB-X-U01", name="Puskesmas", kind="upp", parent_code="KAB-NOWHERE")  # type: ignore[arg-type]
        with pytest.raises(CommandError) as refused:
            await door.call(ImportParticipants(request_id="orphan", participants=[orphan]))
        assert refused.value.code == "unknown_participant"
        assert door.retries == 0
    await door.close()


async def test_a_person_the_server_refuses_hears_it_at_once_though_they_resend(restartable_nats):
    # The people resend an unanswered request (``RESEND_AFTER``); a subject their identity may not
    # use is still refused as such, not taken for an outage and asked again until patience ends.
    door = await Door.open(restartable_nats.url, "portal", timeout=30, patience=40)
    try:
        assert door.client.resend_after is not None and door.client.resend_after < door.client.timeout
        command = OpenCall(request_id="not-mine", cycle_year=2091, opens_at="2091-03-01T08:00:00+07:00", closes_at="2091-04-30T12:00:00+07:00")  # type: ignore[arg-type]
        with pytest.raises(CommandError) as refused:
            await door.call(command)
        assert refused.value.code == "forbidden"
        assert door.retries == 0
    finally:
        await door.close()


def test_the_demo_operator_never_extends_a_stage_into_the_past():
    import datetime as dt

    from bfest.demo import _more_time

    opened = dt.datetime(2091, 6, 1, 8, 0, tzinfo=dt.UTC)
    deadline = opened + dt.timedelta(seconds=30)
    on_time = _more_time(deadline, opened, now=opened)
    assert on_time == deadline + dt.timedelta(seconds=7.5)  # a quarter of the time left more
    late = deadline + dt.timedelta(seconds=42)  # an outage slowed the demo past the deadline
    assert _more_time(deadline, opened, now=late) == late + dt.timedelta(seconds=30)
