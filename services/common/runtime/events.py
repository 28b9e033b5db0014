"""The event consumer: one durable JetStream pull consumer per upstream service (a FastStream
subscriber, :func:`services.common.messaging.durable_batches`), in stream order. Each event id is
recorded (inbox) in the handler's transaction, so a redelivered event changes nothing; an event
is acknowledged only once its transaction committed; a failing handler's event is delivered
again (with a growing delay) and after five deliveries, like an event that cannot be read or
is refused, goes to ``bfest.dlq.<service>`` with the reason, and the consumer goes on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from faststream.nats import JStream, NatsBroker
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import catalogue, subjects
from contracts.base import Event
from services.common import authz, metrics, telemetry
from services.common.errors import DomainError
from services.common.messaging import dumps, durable_batches
from services.common.runtime.replies import validation_details
from services.common.runtime.uow import UnitOfWork

if TYPE_CHECKING:
    from services.common.runtime import ServiceApp

EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]
MAX_DELIVERIES = 5
"""A handler that fails this many times on one event sends it to the dead letters."""


def spec_service(event_subject: str) -> str:
    return catalogue.EVENTS[event_subject].service


def deliveries(msg: Any) -> int:
    """How many times JetStream has delivered this message (1 for a message without metadata)."""
    try:
        return int(msg.metadata.num_delivered or 1)
    except Exception:  # noqa: BLE001 - not a JetStream message (the test broker's)
        return 1


class Events:
    """The event handlers of one service, their consumers, inbox and dead letters."""

    def __init__(self, app: ServiceApp) -> None:
        self.app = app
        self.handlers: dict[str, tuple[type[Event], EventHandler]] = {}
        self.dead_letters: Any = None  # the publisher of bfest.dlq.<service>

    def register(self, model: type[Event], fn: EventHandler) -> None:
        self.handlers[model.subject()] = (model, fn)

    def upstreams(self) -> list[str]:
        return sorted({spec_service(s) for s in self.handlers})

    def durables(self) -> list[str]:
        return [authz.service_durable(self.app.service, upstream) for upstream in self.upstreams()]

    def subscribe(self, broker: NatsBroker) -> None:
        """One durable pull subscriber per upstream service, and the dead-letter publisher."""
        service = self.app.service
        self.dead_letters = broker.publisher(
            subjects.dlq(service),
            stream=JStream(authz.DLQ_STREAM, declare=False),
            title=subjects.dlq(service),
            description=f"Events {service} could not process, with the reason",
        )
        for upstream in self.upstreams():
            durable = authz.service_durable(service, upstream)
            durable_batches(
                broker, subjects.events_of(upstream), durable, service, description=f"{service} consumes {upstream}'s events"
            )(self._on_batch(durable))

    def _on_batch(self, durable: str) -> Callable[[list[Any]], Awaitable[None]]:
        log = self.app.log.bind(consumer=durable)

        async def on_batch(msgs: list[Any]) -> None:
            try:
                if len(msgs) > 1:
                    await self.process_batch(durable, msgs, log)
                else:
                    for msg in msgs:
                        await self.process_one(durable, msg, log)
            except Exception:  # noqa: BLE001 - the database gone for good: unacknowledged, they come again
                log.exception("consumer.batch_failed", size=len(msgs))

        on_batch.__name__ = durable.replace("-", "_")
        return on_batch

    # ------------------------------------------------------------------ one event

    async def process_payload(self, consumer: str, subject: str, data: bytes) -> str:
        """Process one event; returns ``done``, ``duplicate``, ``ignored`` or raises."""
        entry = self.handlers.get(subject)
        if entry is None:
            return "ignored"
        model, fn = entry
        event = model.model_validate_json(data)
        telemetry.annotate(telemetry.attributes_of(event))
        db = self.app.db
        assert db is not None

        async def unit() -> str:
            async with db.sessions() as session, session.begin():
                uow = await self.record_and_handle(session, consumer, subject, fn, event)
            if uow is None:
                return "duplicate"
            if uow.events:
                self.app.wake_relay()
            return "done"

        outcome: str = await db.retrying(unit)
        return outcome

    async def record_and_handle(
        self, session: AsyncSession, consumer: str, subject: str, fn: EventHandler, event: Event
    ) -> UnitOfWork | None:
        """In a savepoint: the event's inbox row, its handler and the events it emits. ``None`` when
        the event was seen before; if the handler fails, the savepoint (inbox row included) is
        rolled back and the failure raised."""
        db = self.app.db
        assert db is not None
        savepoint = await session.begin_nested()
        try:
            await session.execute(
                sa.insert(db.inbox).values(
                    consumer=consumer, event_id=event.event_id, subject=subject, received_at=self.app.clock()
                )
            )
        except IntegrityError:
            await savepoint.rollback()
            return None
        uow = UnitOfWork(session, self.app.service, self.app.clock(), db)
        try:
            await fn(event, uow)
            await uow.write_outbox()
        except BaseException:
            await savepoint.rollback()
            raise
        await savepoint.commit()
        return uow

    def span(self, msg: Any) -> Any:
        """The span of one consumed event, continuing the trace its headers carry (none for an
        event this service does not handle)."""
        if not telemetry.enabled() or msg.subject not in self.handlers:
            return contextlib.nullcontext()
        attributes = {telemetry.SERVICE: self.app.service, telemetry.SUBJECT: msg.subject}
        return telemetry.span(
            f"consume {msg.subject}",
            parent=telemetry.extract(msg.headers),
            kind=telemetry.SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def process_one(self, consumer: str, msg: Any, log: Any) -> None:
        with self.span(msg) as span:
            outcome = await self._process_one_once(consumer, msg, log)
            if outcome is not None:
                telemetry.mark(span, outcome)
                metrics.EVENTS_CONSUMED.labels(self.app.service, msg.subject, outcome).inc()

    async def _process_one_once(self, consumer: str, msg: Any, log: Any) -> str | None:
        """Process, acknowledge or dead-letter one event; returns the outcome (``None``: not ours)."""
        try:
            outcome = await self.process_payload(consumer, msg.subject, msg.data)
            await msg.ack()
            if outcome != "ignored":
                log.debug("event.processed", subject=msg.subject, outcome=outcome)
            return None if outcome == "ignored" else "ok" if outcome == "done" else outcome
        except (ValidationError, ValueError, DomainError) as exc:
            await self.dead_letter(msg.subject, msg.data, exc)
            await msg.ack()
            return "dead_lettered"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            delivered = deliveries(msg)
            if delivered >= MAX_DELIVERIES:
                log.exception("event.failed_repeatedly", subject=msg.subject, deliveries=delivered)
                await self.dead_letter(msg.subject, msg.data, exc)
                await msg.ack()
                return "dead_lettered"
            log.warning("event.retry", subject=msg.subject, deliveries=delivered, error=str(exc))
            await msg.nak(delay=min(30, 2**delivered))
            return "retry"

    # ------------------------------------------------------------------ a fetched batch

    def _parse(self, msgs: list[Any]) -> tuple[list[tuple[Any, EventHandler | None, Event | None]], list[Any]]:
        """The batch's events, parsed; the unreadable ones are left for :meth:`process_one`."""
        parsed: list[tuple[Any, EventHandler | None, Event | None]] = []
        alone: list[Any] = []
        for msg in msgs:
            entry = self.handlers.get(msg.subject)
            if entry is None:
                parsed.append((msg, None, None))
                continue
            try:
                parsed.append((msg, entry[1], entry[0].model_validate_json(msg.data)))
            except (ValidationError, ValueError):
                alone.append(msg)
        return parsed, alone

    async def process_batch(self, consumer: str, msgs: list[Any], log: Any) -> None:
        """A fetched batch in one transaction (group commit), each event in its own savepoint, in
        stream order. An event whose handler fails is left out of the batch and handled alone
        (dead letter or redelivery, as :meth:`process_one` decides); the others commit."""
        db = self.app.db
        assert db is not None
        parsed, alone = self._parse(msgs)
        done, failed, emitted = await db.retrying(lambda: self._batch_unit(consumer, parsed))
        if emitted:
            self.app.wake_relay()
        for msg in done:
            await msg.ack()
            if msg.subject in self.handlers:
                metrics.EVENTS_CONSUMED.labels(self.app.service, msg.subject, "ok").inc()
        log.debug("event.batch_processed", size=len(msgs), done=len(done), alone=len(failed) + len(alone))
        again = {id(m) for m in failed} | {id(m) for m in alone}
        for msg in msgs:
            if id(msg) in again:
                await self.process_one(consumer, msg, log)

    async def _batch_unit(
        self, consumer: str, parsed: list[tuple[Any, EventHandler | None, Event | None]]
    ) -> tuple[list[Any], list[Any], int]:
        db = self.app.db
        assert db is not None
        done: list[Any] = []
        failed: list[Any] = []
        emitted = 0
        async with db.sessions() as session, session.begin():
            for msg, fn, event in parsed:
                if fn is None or event is None:
                    done.append(msg)
                    continue
                with self.span(msg) as span:
                    if span is not None:
                        span.set_attributes(telemetry.attributes_of(event))
                    try:
                        uow = await self.record_and_handle(session, consumer, msg.subject, fn, event)
                    except Exception:  # noqa: BLE001 - handled alone, with its own verdict
                        telemetry.mark(span, "handled_alone")
                        failed.append(msg)  # rolled back, inbox row too: alone, it starts from scratch
                        continue
                    telemetry.mark(span, "ok" if uow else "duplicate")
                emitted += len(uow.events) if uow else 0
                done.append(msg)  # handled, or a duplicate seen before
        return done, failed, emitted

    # ------------------------------------------------------------------ dead letters

    async def dead_letter(self, subject: str, data: bytes, exc: BaseException) -> None:
        reason, details = _reason(exc)
        entry = {
            "service": self.app.service,
            "subject": subject,
            "reason": reason,
            "error": str(exc)[:2000],
            "details": details,
            "payload": data.decode("utf-8", "replace")[:100_000],
            "at": self.app.clock().isoformat(),
        }
        self.app.log.warning("event.dead_lettered", subject=subject, reason=reason, error=str(exc)[:300])
        assert self.dead_letters is not None
        await self.dead_letters.publish(dumps(entry))


def _reason(exc: BaseException) -> tuple[str, Any]:
    """Why an event is dead-lettered, and the details a person needs to fix it."""
    if isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors()):
        return "invalid_json", None
    if isinstance(exc, ValidationError):
        return "validation_error", validation_details(exc)
    if isinstance(exc, DomainError):
        return exc.code, exc.details
    if isinstance(exc, ValueError):
        return "invalid_json", None
    return "handler_failed", None
