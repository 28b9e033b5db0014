"""The bridge: turns the events that should wake a workflow early into signals.

``verification_completed`` → signal ``verification_completed`` to ``bfest-cycle-<year>``;
``stage_fully_scored`` → signal ``fully_scored`` to ``bfest-cycle-<year>-<stage>``.

Services never call Temporal; this small consumer does (durable, so nothing is missed while it is
down). Signalling is idempotent (a second signal sets the same flag) and a workflow that is
already past that point, finished, or unknown is tolerated: the event is acknowledged and logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts import subjects
from contracts.base import Event
from contracts.cycle import stage_workflow_id, workflow_id
from contracts.scoring import StageFullyScored
from contracts.verification import VerificationCompleted
from services.common import authz, telemetry
from services.common.logging import get_logger

log = get_logger("bridge")

ROUTES: dict[str, tuple[type[Event], Any]] = {
    VerificationCompleted.subject(): (
        VerificationCompleted,
        lambda e: (workflow_id(e.cycle_year), "verification_completed"),
    ),
    StageFullyScored.subject(): (
        StageFullyScored,
        lambda e: (stage_workflow_id(e.cycle_year, e.stage), "fully_scored"),
    ),
}


DURABLES = [authz.bridge_durable(subject) for subject in ROUTES]


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


async def run_bridge(client: Client, js: JetStreamContext, stop: asyncio.Event) -> None:
    """One durable pull consumer per routed subject, until ``stop`` is set."""

    async def consume(subject: str) -> None:
        durable = authz.bridge_durable(subject)
        sub = await js.pull_subscribe(
            subject,
            durable=durable,
            stream=subjects.STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30),
        )
        while not stop.is_set():
            try:
                msgs = await sub.fetch(batch=10, timeout=1)
            except TimeoutError:
                continue
            except Exception as exc:  # noqa: BLE001 - NATS reconnecting
                log.warning("bridge.fetch_failed", error=str(exc))
                await asyncio.sleep(1)
                continue
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
                        await msg.nak(delay=2)

    await asyncio.gather(*(consume(s) for s in ROUTES))
