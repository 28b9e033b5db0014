"""Readiness that tells the truth: a process is ready when its broker is connected, its database
answers and its work flows — the outbox drains (its oldest unsent event is younger than
``BFEST_READY_OUTBOX_MAX_AGE`` seconds), its consumers keep up (fewer than
``BFEST_READY_CONSUMER_MAX_PENDING`` events behind) and its dead-letter subject is empty.

A :class:`Probe` runs its checks on demand (each ``/readyz``, ``/metrics`` scrape and NATS
``health`` command) and refreshes the Prometheus gauges as it goes, so what readiness says and what
the metrics show are the same numbers. Each check returns the reasons it found (none: fine).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts import subjects
from services.common import metrics

Check = Callable[[], Awaitable[list[str]]]
CHECK_TIMEOUT = 3.0


@dataclass
class Readiness:
    ready: bool
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": self.reasons}


class Probe:
    """The readiness of one process (a service, the worker), from its checks."""

    def __init__(self, name: str, checks: list[Check] | None = None) -> None:
        self.name = name
        self.checks: list[Check] = list(checks or [])

    async def readiness(self) -> Readiness:
        async def run(check: Check) -> list[str]:
            try:
                return await asyncio.wait_for(check(), CHECK_TIMEOUT)
            except TimeoutError:
                return [f"{getattr(check, '__name__', 'check')}: no answer within {CHECK_TIMEOUT:g}s"]
            except Exception as exc:  # noqa: BLE001 - a failing check is a reason, not a crash
                return [f"{getattr(check, '__name__', 'check')}: {exc.__class__.__name__}: {exc}"[:300]]

        results = await asyncio.gather(*(run(c) for c in self.checks))
        reasons = [r for rs in results for r in rs]
        metrics.READY.labels(self.name).set(0 if reasons else 1)
        return Readiness(not reasons, reasons)


def _named(name: str, fn: Check) -> Check:
    fn.__name__ = name
    return fn


def nats_connected(get_nc: Callable[[], NATS | None]) -> Check:
    async def check() -> list[str]:
        nc = get_nc()
        if nc is None or not nc.is_connected:
            return ["nats: not connected"]
        return []

    return _named("nats", check)


def database(db: Any) -> Check:
    async def check() -> list[str]:
        state = await db.ping()
        return [] if state == "ok" else [f"database: {state}"]

    return _named("database", check)


async def outbox_state(db: Any) -> tuple[int, float]:
    """Unsent outbox rows and the age in seconds of the oldest of them (0 when none)."""
    outbox = db.outbox
    async with db.session() as session:
        row = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.published_at.is_(None))
            )
        ).one()
    depth, oldest = int(row[0]), row[1]
    if not depth or oldest is None:
        return depth, 0.0
    if isinstance(oldest, str):  # SQLite's MIN() gives the stored text back
        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return depth, max(0.0, (dt.datetime.now(dt.UTC) - oldest).total_seconds())


def outbox(db: Any, service: str, max_age: float) -> Check:
    async def check() -> list[str]:
        depth, age = await outbox_state(db)
        metrics.OUTBOX_DEPTH.labels(service).set(depth)
        metrics.OUTBOX_OLDEST_AGE.labels(service).set(age)
        if depth and age > max_age:
            return [
                f"outbox: the oldest of {depth} unsent event(s) is {age:.0f}s old (limit {max_age:g}s): "
                "events are not reaching NATS"
            ]
        return []

    return _named("outbox", check)


def consumers(get_js: Callable[[], JetStreamContext | None], service: str, durables: Callable[[], list[str]], max_pending: int) -> Check:
    async def check() -> list[str]:
        js = get_js()
        if js is None:
            return []
        reasons = []
        for durable in durables():
            try:
                info = await js.consumer_info(subjects.STREAM, durable, timeout=CHECK_TIMEOUT)
            except NotFoundError:
                continue  # not created yet
            pending = int(info.num_pending or 0)
            metrics.CONSUMER_PENDING.labels(service, durable).set(pending)
            metrics.CONSUMER_ACK_PENDING.labels(service, durable).set(int(info.num_ack_pending or 0))
            metrics.CONSUMER_REDELIVERED.labels(service, durable).set(int(info.num_redelivered or 0))
            if pending > max_pending:
                reasons.append(f"consumer {durable}: {pending} event(s) behind (limit {max_pending})")
        return reasons

    return _named("consumers", check)


def dead_letters(get_js: Callable[[], JetStreamContext | None], service: str) -> Check:
    async def check() -> list[str]:
        js = get_js()
        if js is None:
            return []
        subject = subjects.dlq(service)
        info = await js.stream_info("BFEST_DLQ", subjects_filter=subject)
        depth = int((info.state.subjects or {}).get(subject, 0))
        metrics.DLQ_DEPTH.labels(service).set(depth)
        if depth:
            return [f"dlq: {depth} event(s) in {subject} could not be processed; read and resolve them"]
        return []

    return _named("dlq", check)


def temporal(client: Any) -> Check:
    async def check() -> list[str]:
        ok = await client.service_client.check_health(timeout=dt.timedelta(seconds=CHECK_TIMEOUT))
        return [] if ok else ["temporal: the server answers but is not serving"]

    return _named("temporal", check)
