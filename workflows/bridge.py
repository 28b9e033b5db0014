"""The bridge: turns the events that should wake a workflow early into signals.

``verification_completed`` → signal ``verification_completed`` to ``bfest-cycle-<year>`` (KOVABLIK's
check), or to ``bfest-cycle-<year>-kbk`` (the KBK track's, ``counts.track`` kbk);
``stage_fully_scored`` → signal ``fully_scored`` to ``bfest-cycle-<year>-<stage>``.

Services never call Temporal; this small consumer does, through the same durable FastStream pull
subscribers as the services' event consumers (:func:`services.common.messaging.durable_batches`),
so nothing is missed while it is down. Signalling is idempotent (a second signal sets the same
flag) and a workflow that is already past that point, finished, or unknown is tolerated: the
event is acknowledged and logged. When Temporal cannot be reached, the event is delivered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.nats import NatsBroker
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts.base import Competition, Event
from contracts.cycle import stage_workflow_id, track_workflow_id, workflow_id
from contracts.scoring import StageFullyScored
from contracts.verification import VerificationCompleted
from services.common import authz, telemetry
from services.common.logging import get_logger
from services.common.messaging import broker_as, durable_batches
from services.common.settings import Settings

log = get_logger("bridge")

ROUTES: dict[str, tuple[type[Event], Any]] = {
    VerificationCompleted.subject(): (
        VerificationCompleted,
        lambda e: (_checked_by(e), "verification_completed"),
    ),
    StageFullyScored.subject(): (
        StageFullyScored,
        lambda e: (stage_workflow_id(e.cycle_year, e.stage), "fully_scored"),
    ),
}


def _checked_by(event: VerificationCompleted) -> str:
    """The workflow whose check completed: the cycle's (KOVABLIK), or a competition track's."""
    track = event.counts.track
    return workflow_id(event.cycle_year) if track == Competition.KOVABLIK else track_workflow_id(event.cycle_year, track.value)


DURABLES = [authz.bridge_durable(subject) for subject in ROUTES]
RETRY_AFTER = 2.0
"""Seconds before an event whose signal failed (Temporal unreachable) is delivered again."""


async def signal_for(client: Client, subject: str, data: bytes) -> str:
    """Deliver one event as a signal; returns what happened (for logs and tests)."""
    model, route = ROUTES[subject]
    try:
        event = model.model_validate_json(data)
    except ValidationError as exc:
        log.warning("bridge.malformed_event", subject=subject, error=str(exc)[:300])
        return "malformed"
    wid, signal = route(event)
    telemetry.annotate(telemetry.attributes_of(event))
    try:
        await client.get_workflow_handle(wid).signal(signal)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            log.info("bridge.workflow_not_running", workflow_id=wid, signal=signal)
            return "not_running"
        raise
    log.info("bridge.signalled", workflow_id=wid, signal=signal)
    return "signalled"


async def signal_each(client: Client, msgs: list[Any]) -> None:
    """Signal for each event of a fetched batch, in stream order; acknowledge it once signalled
    (or once it is known that no signal can ever be delivered), else ask for it again later."""
    for msg in msgs:
        # The event's trace goes on into the signal (Temporal's tracing interceptor).
        with telemetry.span(
            f"bridge {msg.subject}",
            parent=telemetry.extract(msg.headers),
            kind=telemetry.SpanKind.CONSUMER,
            attributes={telemetry.SERVICE: "worker", telemetry.SUBJECT: msg.subject},
        ) as span:
            try:
                outcome = await signal_for(client, msg.subject, msg.data)
                telemetry.mark(span, "malformed" if outcome == "malformed" else "ok")
                await msg.ack()
            except Exception as exc:  # noqa: BLE001 - Temporal unreachable: redeliver later
                telemetry.mark(span, "signal_failed", str(exc))
                log.warning("bridge.signal_failed", subject=msg.subject, error=str(exc))
                await msg.nak(delay=RETRY_AFTER)


def bridge_broker(client: Client, nats_url: str | Sequence[str], settings: Settings | None = None) -> NatsBroker:
    """The bridge's FastStream broker (as the worker's identity): one durable pull subscriber per
    routed subject."""
    broker = broker_as(authz.WORKER, nats_url, settings, name="bfest-worker-bridge", apply_types=False)
    for subject in ROUTES:
        durable_batches(broker, subject, authz.bridge_durable(subject), authz.WORKER, batch=10, ack_wait=30)(
            _signaller(client, subject)
        )
    return broker


def _signaller(client: Client, subject: str) -> Callable[[list[Any]], Awaitable[None]]:
    async def signal(msgs: list[Any]) -> None:
        await signal_each(client, msgs)

    signal.__name__ = "bridge_" + subject.replace(".", "_")
    return signal


async def run_bridge(client: Client, nats_url: str | Sequence[str], stop: asyncio.Event, settings: Settings | None = None) -> None:
    """The bridge's consumers, until ``stop`` is set."""
    broker = bridge_broker(client, nats_url, settings)
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.stop()
