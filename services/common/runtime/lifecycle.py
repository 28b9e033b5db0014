"""Lifecycle helpers: readiness (what /readyz checks), the wait until the command subscriptions
answer, and the garbage collector's settings for a long-lived service."""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING

from nats.aio.client import Client as NATS

from contracts import subjects
from services.common import health

if TYPE_CHECKING:
    from services.common.runtime import ServiceApp


def probe(app: ServiceApp) -> health.Probe:
    """Ready when both NATS connections are up, the database answers, the outbox is not stuck,
    the consumers keep up and nothing new is dead-lettered."""
    assert app.db is not None
    s = app.settings
    return health.Probe(
        app.service,
        [
            health.nats_connected(lambda: app.nc),
            health.nats_connected(lambda: getattr(app.broker, "_connection", None) if app.broker else None),
            health.database(app.db),
            health.outbox(app.db, app.service, s.ready_outbox_max_age),
            health.consumers(lambda: app.js, app.service, app.events.durables, s.ready_consumer_max_pending),
            health.dead_letters(lambda: app.js, app.service),
        ],
    )


async def until_serving(nc: NATS, service: str) -> None:
    """Return once the command subscriptions answer (the server has registered them)."""
    subject = subjects.command(service, "health")
    for _ in range(100):
        try:
            await nc.request(subject, b"{}", timeout=1)
            return
        except Exception:  # noqa: BLE001 - not subscribed yet
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{service} did not start serving {subject}")


def settle_gc() -> None:
    """Keep the garbage collector's pauses out of the tail latency. What start-up built (models,
    schemas, mappers, the broker) lives as long as the process: it is frozen out of collections,
    which otherwise walk all of it every full pass (tens of ms: the p99 of a command burst). The
    young generation is collected less often, as a request makes a few hundred short-lived
    objects. Reference counting still frees nearly everything at once; only cycles wait."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(10_000, second, third)
