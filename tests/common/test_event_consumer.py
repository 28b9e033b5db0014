"""Event handlers driven through FastStream's in-memory ``TestNatsBroker``: the same subscribers
the services and the bridge run (durable batch pull consumers, the dead-letter publisher), fast
and without a server. The delivery guarantees themselves (ack after commit, redelivery, the
fifth delivery to the dead letters, batches in one transaction) are proven against a real
nats-server in tests/common/test_runtime.py and tests/e2e."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from faststream.nats import TestNatsBroker

from contracts import subjects
from contracts.cycle import CycleCancelled
from contracts.registration import GetCall, OpenCall
from contracts.scoring import StageFullyScored
from contracts.verification import VerificationCompleted, VerificationCounts
from services.common.db import Database
from services.common.migrations import upgrade
from services.common.runtime import ServiceApp
from services.registration.app import create_app
from workflows.bridge import bridge_broker

YEAR = 2031


@pytest.fixture
async def registration(sqlite_db: str) -> AsyncIterator[ServiceApp]:
    """The registration service's app on its migrated database, not started: no NATS at all."""
    await upgrade("registration", sqlite_db)
    app = create_app()
    app.db = Database(sqlite_db, app.metadata, app.service)
    try:
        yield app
    finally:
        await app.db.dispose()


def cancelled(event_id: str = "evt-cancel-1") -> str:
    at = dt.datetime(YEAR, 3, 15, tzinfo=dt.UTC)
    return CycleCancelled(cycle_year=YEAR, phase="call_open", event_id=event_id, occurred_at=at).model_dump_json()


async def call_state(app: ServiceApp) -> str:
    reply = await app.dispatch(GetCall(cycle_year=YEAR))
    assert reply.ok, reply
    return str(reply.data["state"])


async def inbox_rows(app: ServiceApp) -> int:
    assert app.db is not None
    async with app.db.session() as session:
        return int((await session.execute(sa.select(sa.func.count()).select_from(app.db.inbox))).scalar_one())


async def test_a_cycle_cancelled_event_cancels_the_open_call_once(registration: ServiceApp) -> None:
    opened = await registration.dispatch(
        OpenCall(
            request_id="open",
            cycle_year=YEAR,
            opens_at=dt.datetime(YEAR, 3, 1, tzinfo=dt.UTC),
            closes_at=dt.datetime(YEAR, 4, 1, tzinfo=dt.UTC),
        )
    )
    assert opened.ok and await call_state(registration) == "open"
    broker = registration.build_broker("nats://unused:4222")
    async with TestNatsBroker(broker) as br:
        await br.publish(cancelled(), CycleCancelled.subject(), stream=subjects.STREAM)
        assert await call_state(registration) == "cancelled"
        assert await inbox_rows(registration) == 1
        # The same event delivered again changes nothing: the inbox knows it.
        await br.publish(cancelled(), CycleCancelled.subject(), stream=subjects.STREAM)
        assert await inbox_rows(registration) == 1
        assert registration.events.dead_letters.mock.call_count == 0


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (b"{not json", "invalid_json", None),
        (json.dumps({"cycle_year": "soon", "phase": "call_open"}).encode(), "validation_error", "cycle_year"),
    ],
)
async def test_an_event_that_cannot_be_read_goes_to_the_dead_letters_with_the_reason(
    registration: ServiceApp, body: bytes, reason: str, field: str | None
) -> None:
    broker = registration.build_broker("nats://unused:4222")
    async with TestNatsBroker(broker) as br:
        await br.publish(body, CycleCancelled.subject(), stream=subjects.STREAM)
        dead = registration.events.dead_letters.mock
        dead.assert_called_once()
        entry = json.loads(dead.call_args.args[0])
        assert entry["service"] == "registration" and entry["subject"] == CycleCancelled.subject()
        assert entry["reason"] == reason and entry["payload"] == body.decode()
        if field is not None:
            assert [d["field"] for d in entry["details"]] == [field]
        assert await inbox_rows(registration) == 0  # nothing recorded: nothing was processed


class FakeTemporal:
    """What the bridge asks of a Temporal client: a workflow handle that takes a signal."""

    def __init__(self) -> None:
        self.signals: list[tuple[str, str]] = []

    def get_workflow_handle(self, workflow_id: str) -> Any:
        signals = self.signals

        class Handle:
            async def signal(self, name: str) -> None:
                signals.append((workflow_id, name))

        return Handle()


async def test_the_bridge_turns_events_into_signals_through_the_same_consumer() -> None:
    temporal = FakeTemporal()
    broker = bridge_broker(temporal, "nats://unused:4222")  # type: ignore[arg-type]
    async with TestNatsBroker(broker) as br:
        counts = VerificationCounts(cycle_year=YEAR, state="completed", total=4, pending=0, eligible=3, disqualified=1, overridden=0)
        done = VerificationCompleted(cycle_year=YEAR, counts=counts)
        await br.publish(done.model_dump_json(), done.subject(), stream=subjects.STREAM)
        scored = StageFullyScored(cycle_year=YEAR, stage="desk", assignments=6)
        await br.publish(scored.model_dump_json(), scored.subject(), stream=subjects.STREAM)
        await br.publish(b"{broken", scored.subject(), stream=subjects.STREAM)  # acknowledged, logged
    assert temporal.signals == [(f"bfest-cycle-{YEAR}", "verification_completed"), (f"bfest-cycle-{YEAR}-desk", "fully_scored")]
