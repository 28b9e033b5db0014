"""The service runtime: one :class:`ServiceApp` per service process.

A service declares its command handlers and event handlers with plain functions::

    app = ServiceApp("registration", Base.metadata)

    @app.command(GetProposal)
    async def get_proposal(cmd: GetProposal, uow: UnitOfWork) -> ProposalView: ...

    @app.command_batch(ForwardProposal)
    async def forward_proposals(cmds: list[ForwardProposal], uow: UnitOfWork) -> list[...]: ...

    @app.on_event(ProposalForwarded)
    async def on_forwarded(evt: ProposalForwarded, uow: UnitOfWork) -> None: ...

and the runtime does the rest, one job per module:

- :mod:`.commands` (intake) and :mod:`.replies`: commands are served by FastStream on
  ``bfest.<service>.cmd.<name>`` in the queue group ``<service>``; every reply is the envelope.
  Malformed JSON → ``invalid_json``; a schema violation → ``validation_error`` with each field's
  problem; a :class:`DomainError` → its code; anything else → ``internal_error`` (logged with its
  trace). The consumer keeps running.
- :mod:`.idempotency`: a command's state change, its outgoing events (outbox) and its reply
  (keyed by ``request_id``) commit in one transaction; a retried ``request_id`` returns the first
  reply; a copy that arrives while the first is being handled waits for it.
- :mod:`.batching`: a command registered with :meth:`ServiceApp.command_batch` is
  group-committed (the one batching API; :func:`each_in_savepoint` adapts a one-command handler).
- :mod:`.events`: events are consumed from JetStream by one durable pull consumer (a FastStream
  subscriber) per upstream service, in stream order, with an inbox and a dead-letter subject.
- :mod:`.lifecycle`: readiness, start-up and the garbage collector's settings.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import BaseModel

from contracts import catalogue, subjects
from contracts.base import Actor, Command, Event, Health, Query, Reply
from services.common import health, telemetry
from services.common.db import Database
from services.common.errors import DomainError
from services.common.http import HealthServer
from services.common.logging import configure_logging, get_logger
from services.common.messaging import OutboxRelay, broker_as, connect_jetstream
from services.common.migrations import require_current
from services.common.runtime import lifecycle
from services.common.runtime.batching import Batches, BatchHandler, each_in_savepoint, one_at_a_time
from services.common.runtime.commands import CommandHandler, Commands
from services.common.runtime.events import EventHandler, Events, spec_service
from services.common.runtime.replies import EnvelopeMiddleware, as_received, error_reply, validation_details
from services.common.runtime.uow import Clock, UnitOfWork, utcnow
from services.common.settings import Settings, get_settings


class ServiceApp:
    def __init__(
        self,
        service: str,
        metadata: sa.MetaData,
        settings: Settings | None = None,
        version: str = "1",
        migrations: bool = True,
    ) -> None:
        """``migrations``: the schema comes from the service's migration history, which must be
        at head before it starts (``bfest db upgrade``); False only for a test's own tables,
        created at start."""
        if service not in subjects.SERVICES:
            raise ValueError(f"unknown service {service!r}")
        self.service = service
        self.metadata = metadata
        self.settings = settings or get_settings()
        self.version = version
        self.migrations = migrations
        self.clock: Clock = utcnow
        self.log = get_logger("service", service=service)
        self.commands = Commands(self)
        self.batches = Batches(self)
        self.events = Events(self)
        self._on_start: list[Callable[[ServiceApp], Awaitable[None]]] = []
        self.db: Database | None = None
        self.broker: NatsBroker | None = None
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.http_port: int | None = self.settings.http_port_for(service)
        """Where /livez, /readyz and /metrics are served (0: a free port; None: not at all)."""
        self.http: HealthServer | None = None
        self.probe: health.Probe | None = None
        self.command(catalogue.COMMANDS[subjects.command(service, "health")].model)(self._health)

    # ------------------------------------------------------------------ registration

    def command(self, model: type[Command]) -> Callable[[CommandHandler], CommandHandler]:
        """Register the handler of a catalogued command of this service."""
        self._catalogued(model)

        def register(fn: CommandHandler) -> CommandHandler:
            self.commands.register(model, fn)
            return fn

        return register

    def command_batch(self, model: type[Command], max_batch: int = 256) -> Callable[[BatchHandler], BatchHandler]:
        """Register the set-based handler of a catalogued command (group commit, see
        :mod:`.batching`); ``each_in_savepoint(fn)`` turns a one-command handler into one."""
        self._catalogued(model)

        def register(fn: BatchHandler) -> BatchHandler:
            self.commands.register(model, one_at_a_time(fn))
            self.batches.register(model, fn, max_batch)
            return fn

        return register

    def _catalogued(self, model: type[Command]) -> None:
        spec = catalogue.COMMANDS.get(model.subject())
        if spec is None or spec.model is not model or spec.service != self.service:
            raise ValueError(f"{model.__name__} is not a catalogued command of {self.service}")

    def on_event(self, model: type[Event]) -> Callable[[EventHandler], EventHandler]:
        """Register the handler of a catalogued event (of another service, usually)."""
        if model.subject() not in catalogue.EVENTS:
            raise ValueError(f"{model.__name__} is not a catalogued event")

        def register(fn: EventHandler) -> EventHandler:
            self.events.register(model, fn)
            return fn

        return register

    def on_start(self, fn: Callable[[ServiceApp], Awaitable[None]]) -> Callable[[ServiceApp], Awaitable[None]]:
        self._on_start.append(fn)
        return fn

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nats_url: str | None = None, database_url: str | None = None) -> None:
        configure_logging(self.settings.log_level, self.settings.log_json)
        telemetry.configure_from_env(self.service)
        nats_url = nats_url or self.settings.nats_url
        self.db = await self._open_database(database_url or self.settings.database_url(self.service))
        self.nc, self.js = await connect_jetstream(
            nats_url, f"bfest-{self.service}", identity=self.service, settings=self.settings
        )
        self.relay = OutboxRelay(self.db, self.js)
        self.relay.start()
        for hook in self._on_start:
            await hook(self)
        self.batches.start()
        self.broker = self.build_broker(nats_url)
        await self.broker.start()
        await lifecycle.until_serving(self.nc, self.service)
        self.probe = lifecycle.probe(self)
        if self.http_port is not None:
            self.http = HealthServer(self.probe, self.settings.http_host, self.http_port)
            await self.http.start()
        lifecycle.settle_gc()
        self.log.info(
            "service.started",
            nats=nats_url,
            database=self.db.url.split("@")[-1],
            commands=len(self.commands.handlers),
            consumes=self.events.upstreams(),
        )

    async def _open_database(self, url: str) -> Database:
        db = Database(url, self.metadata, self.service)
        if not self.migrations:
            await db.create_all()
            return db
        try:
            await db.retrying(lambda: require_current(db.engine, self.service))
        except BaseException:
            await db.dispose()
            raise
        return db

    def build_broker(self, nats_url: str) -> NatsBroker:
        """The FastStream broker: a subscriber per command and per upstream's events, and the
        dead-letter publisher. The intake reads a command's body itself (one pass of pydantic's
        JSON parser), so FastStream hands it over as it came: no decoding, no dependency
        injection per message."""
        broker = broker_as(
            self.service,
            nats_url,
            self.settings,
            middlewares=[*telemetry.broker_middlewares(), EnvelopeMiddleware],
            name=f"bfest-{self.service}-cmd",
            apply_types=False,
            decoder=as_received,
        )
        self.commands.subscribe(broker)
        self.events.subscribe(broker)
        return broker

    async def stop(self) -> None:
        if self.http:
            await self.http.stop()
            self.http = None
        if self.broker:
            await self.broker.stop()
        # What was accepted is answered before the database goes away.
        await self.batches.stop()
        await self.commands.finish()
        if self.relay:
            await self.relay.stop()
        if self.nc:
            # Not drain(): JetStream pull subscriptions make drain wait for its full timeout.
            await self.nc.close()
        if self.db:
            await self.db.dispose()
        self.log.info("service.stopped")

    async def run(self) -> None:
        """Run until SIGINT/SIGTERM, then stop gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()

    def wake_relay(self) -> None:
        """Committed events are waiting in the outbox: publish them now."""
        if self.relay is not None:
            self.relay.wake()

    # ------------------------------------------------------------------ in-process use

    async def dispatch(self, cmd: Command, actor: Actor | None = None) -> Reply:
        """Handle a command in-process (tests, benchmarks): the same path as over NATS. The actor,
        when given, is checked as the header's would be (an in-process caller is trusted)."""
        return await self.commands.dispatch(cmd, actor)

    async def process_event_payload(self, consumer: str, subject: str, data: bytes) -> str:
        """Process one event in-process; returns ``done``, ``duplicate``, ``ignored`` or raises."""
        return await self.events.process_payload(consumer, subject, data)

    async def _health(self, cmd: Query, uow: UnitOfWork) -> Health:
        assert self.db is not None and self.relay is not None
        state = await (self.probe or lifecycle.probe(self)).readiness()
        return Health(
            service=self.service,
            status="ok" if state.ready else "not_ready",
            version=self.version,
            database=await self.db.ping(),
            outbox_pending=await self.relay.pending(),
            ready=state.ready,
            reasons=state.reasons,
        )


__all__ = [
    "BaseModel",
    "BatchHandler",
    "CommandHandler",
    "DomainError",
    "EventHandler",
    "ServiceApp",
    "UnitOfWork",
    "each_in_savepoint",
    "error_reply",
    "spec_service",
    "utcnow",
    "validation_details",
]
