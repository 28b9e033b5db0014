"""The unit of work a handler gets: the open transaction, the clock, and the events it emits
(written to the outbox in the same transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.base import Event
from services.common import telemetry
from services.common.db import Database

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class UnitOfWork:
    """What a handler gets: the open transaction, the clock, and :meth:`emit` for events that
    commit with it (outbox)."""

    session: AsyncSession
    service: str
    now: dt.datetime
    db: Database
    events: list[Event] = field(default_factory=list)
    trace: dict[str, str] = field(default_factory=dict)
    """Each emitted event's traceparent (event id → W3C header value), kept in the outbox row."""
    trace_parent: str | None = None
    """The traceparent of the command this unit handles, when not the current span (a batch)."""
    command_traces: dict[int, str] = field(default_factory=dict)
    """A batch's commands' traceparents, by ``id(command)``."""

    def emit(self, event: Event) -> None:
        self.events.append(event)
        parent = self.trace_parent or telemetry.traceparent()
        if parent:
            self.trace[event.event_id] = parent

    async def write_outbox(self) -> None:
        """Write the emitted events to the outbox, in the unit's transaction."""
        if not self.events:
            return
        await self.session.execute(
            sa.insert(self.db.outbox),
            [
                {
                    "event_id": e.event_id,
                    "subject": e.subject(),
                    "payload": e.model_dump_json(),
                    "created_at": self.now,
                    "trace_context": self.trace.get(e.event_id),
                }
                for e in self.events
            ],
        )
