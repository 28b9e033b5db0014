"""The service runtime: one :class:`ServiceApp` per service process.

A service declares its command handlers and event handlers with plain functions::

    app = ServiceApp("registration", Base.metadata)

    @app.command(ForwardProposal)
    async def forward_proposal(cmd: ForwardProposal, uow: UnitOfWork) -> ProposalView: ...

    @app.on_event(ProposalForwarded)
    async def on_forwarded(evt: ProposalForwarded, uow: UnitOfWork) -> None: ...

and the runtime does the rest, in one place:

- commands are served by FastStream on ``bfest.<service>.cmd.<name>`` in the queue group
  ``<service>``; every reply is the envelope. Malformed JSON → ``invalid_json``; a schema
  violation → ``validation_error`` with each field's problem; a :class:`DomainError` → its code;
  anything else → ``internal_error`` (logged with its trace). The consumer keeps running.
- a command's state change, its outgoing events (outbox) and its reply (keyed by ``request_id``)
  commit in one transaction; a retried ``request_id`` returns the first reply.
- a command registered with :meth:`ServiceApp.command_batch` is *group-committed*: the commands
  that arrive while a batch is being written are handled together, in arrival order, by one call
  of a set-based handler in one transaction (one idempotency lookup, one outbox write, one
  commit), each with its own reply. A handler refuses one command of a batch by returning its
  :class:`DomainError` in that command's place; the others go on.
- events are consumed from JetStream by one durable pull consumer per upstream service, in
  stream order; each event id is recorded (inbox) in the handler's transaction, so a redelivered
  event changes nothing; an event that cannot be processed goes to ``bfest.dlq.<service>`` with
  the reason and the consumer goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import hashlib
import json
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from faststream import BaseMiddleware
from faststream.nats import NatsBroker
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import catalogue, subjects
from contracts.base import Actor, Command, ErrorCode, Event, Health, Query, Reply
from services.common import authz, health, metrics, telemetry
from services.common.actors import actor_from_headers, check_actor
from services.common.credentials import nats_options
from services.common.db import Database
from services.common.errors import DomainError
from services.common.http import HealthServer
from services.common.logging import configure_logging, get_logger
from services.common.messaging import OutboxRelay, connect_jetstream, dumps
from services.common.migrations import require_current
from services.common.settings import Settings, get_settings, nats_servers

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

    async def _write_outbox(self) -> None:
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


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err.get("loc", ())]
        out.append(
            {"field": ".".join(loc) or "(body)", "problem": err.get("msg", ""), "type": err.get("type")}
        )
    return out


def error_reply(exc: BaseException, subject: str, log: Any, inside_handler: bool = False) -> Reply:
    if isinstance(exc, ValidationError) and not inside_handler:
        details = validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        return Reply.failure(ErrorCode.VALIDATION_ERROR, f"invalid command for {subject}: {summary}", details)
    if isinstance(exc, DomainError):
        return Reply.failure(exc.code, exc.message, exc.details)
    log.exception("command.internal_error", subject=subject)
    return Reply.failure(
        ErrorCode.INTERNAL_ERROR, f"internal error while handling {subject}; it has been logged"
    )


async def respond(raw: Any, reply: Reply) -> None:
    """Answer a request (a message published without a reply subject gets none)."""
    if raw.reply:
        await raw.respond(reply.model_dump_json().encode())


class EnvelopeMiddleware(BaseMiddleware):
    """Answers with the envelope whatever goes wrong before the intake has the command: malformed
    JSON → ``invalid_json``; anything but a JSON object or a schema violation →
    ``validation_error`` with each field's problem (out of the box FastStream sends no reply)."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        raw = msg.raw_message
        subject = getattr(raw, "subject", "?")
        body = msg.body
        # The body is decoded once, by FastStream; it is looked at again only when something fails.
        if body.lstrip()[:1] != b"{":
            await respond(raw, _not_an_object(subject, body))
            return None
        try:
            return await call_next(msg)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an envelope
            try:
                json.loads(body)
            except _UNREADABLE as bad:
                await respond(raw, _invalid_json(subject, bad))
                return None
            if isinstance(exc, ValidationError) and exc.errors()[0]["type"] == "json_invalid":
                # Python reads it, strict JSON does not (NaN, Infinity).
                await respond(raw, _invalid_json(subject, ValueError(exc.errors()[0]["msg"])))
                return None
            await respond(raw, error_reply(exc, subject, get_logger("command", subject=subject)))
            return None


# A body nested too deeply for the parser (RecursionError) is refused as unreadable JSON too.
_UNREADABLE = (ValueError, UnicodeDecodeError, RecursionError)


def _invalid_json(subject: str, exc: Exception) -> Reply:
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    return Reply.failure(ErrorCode.INVALID_JSON, f"the body of {subject} is not valid JSON: {reason}")


def _not_an_object(subject: str, body: bytes) -> Reply:
    try:
        json.loads(body)
    except _UNREADABLE as exc:
        if body.strip():
            return _invalid_json(subject, exc)
    return Reply.failure(ErrorCode.VALIDATION_ERROR, f"the body of {subject} must be a JSON object")


async def _as_received(msg: Any) -> bytes:
    """FastStream's decoder for commands: the body as received (the intake parses it)."""
    return bytes(msg.body)


def _conflict(request_id: str, name: str) -> DomainError:
    return DomainError(
        ErrorCode.CONFLICT,
        f"request_id {request_id!r} was already used for a different {name} command",
        {"request_id": request_id},
    )


def _command_row(cmd: Command, payload_hash: str, reply: Reply, at: dt.datetime) -> dict[str, Any]:
    """The first reply to a request, as kept in ``<service>_commands``."""
    return {
        "request_id": cmd.request_id,
        "command": cmd.NAME,
        "payload_hash": payload_hash,
        "reply": reply.model_dump_json(),
        "ok": reply.ok,
        "created_at": at,
    }


def _payload_hash(cmd: Command) -> str:
    data = cmd.model_dump(mode="json", exclude={"request_id"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


EventHandler = Callable[[Any, UnitOfWork], Awaitable[None]]
CommandHandler = Callable[[Any, UnitOfWork], Awaitable[Any]]
BatchHandler = Callable[[list[Any], UnitOfWork], Awaitable[list[Any]]]
"""Gets the commands of a batch, returns one result per command in the same order: the reply's
data, or the :class:`DomainError` that refuses that command (which must then have changed nothing)."""


@dataclass
class _Pending:
    cmd: Command
    respond: Callable[[Reply], Awaitable[None]]
    payload_hash: str = ""
    received: float = field(default_factory=time.perf_counter)
    context: Any = None  # the trace context it arrived in (tracing on)
    span: Any = None


def _trace_batch_events(uow: UnitOfWork, cmds: list[Command]) -> None:
    """The events a set-based handler emitted for a batch: each continues the trace of the
    command about the same proposal, else the batch's first traced command's."""
    if not uow.command_traces:
        return
    by_proposal = {
        getattr(c, "proposal_id", None): uow.command_traces[id(c)] for c in cmds if id(c) in uow.command_traces
    }
    first = next(iter(uow.command_traces.values()))
    for event in uow.events:
        if event.event_id not in uow.trace:
            uow.trace[event.event_id] = by_proposal.get(getattr(event, "proposal_id", None), first)


def _in_savepoints(fn: CommandHandler) -> BatchHandler:
    """A one-command handler run for each command of a batch, each in a savepoint."""

    async def batch(cmds: list[Any], uow: UnitOfWork) -> list[Any]:
        results: list[Any] = []
        for cmd in cmds:
            own = UnitOfWork(uow.session, uow.service, uow.now, uow.db)
            own.trace_parent = uow.command_traces.get(id(cmd))
            try:
                async with uow.session.begin_nested():
                    result = await fn(cmd, own)
            except DomainError as exc:
                results.append(exc)
                continue
            uow.events.extend(own.events)
            uow.trace.update(own.trace)
            results.append(result)
        return results

    return batch


class _Batcher:
    """Collects one command's requests while the previous batch is written (group commit)."""

    def __init__(self, app: ServiceApp, model: type[Command], fn: BatchHandler, max_batch: int) -> None:
        self.app, self.model, self.fn, self.max_batch = app, model, fn, max_batch
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"batch-{self.model.NAME}")

    async def stop(self) -> None:
        """Finish what was accepted, then stop."""
        if self.task and not self.task.done():
            try:
                await asyncio.wait_for(self.queue.join(), timeout=30)
            except TimeoutError:
                self.app.log.warning(
                    "command.batch_unfinished", command=self.model.NAME, left=self.queue.qsize()
                )
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            # Let the intake hand over what has already arrived: the batch is written without
            # yielding (SQLite runs inline), so this is where the next commands join it.
            await asyncio.sleep(0)
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.app.handle_batch(self.model, self.fn, batch)
            except Exception:  # noqa: BLE001 - never let the batcher die; handle_batch answered each
                self.app.log.exception("command.batch_failed", command=self.model.NAME, size=len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()


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
        self._commands: dict[str, tuple[type[Command], CommandHandler]] = {}
        self._events: dict[str, tuple[type[Event], EventHandler]] = {}
        self._on_start: list[Callable[[ServiceApp], Awaitable[None]]] = []
        self.db: Database | None = None
        self.broker: NatsBroker | None = None
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._batchers: dict[str, _Batcher] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        # Commands being handled, by (name, request_id, payload): a copy the caller sent again
        # (it heard nothing yet) waits for the first one's reply instead of doing the work again.
        self._serving: dict[tuple[str, str, str], asyncio.Future[Reply]] = {}
        self._workers: asyncio.Semaphore | None = None
        self._stopping = asyncio.Event()
        self.http_port: int | None = self.settings.http_port_for(service)
        """Where /livez, /readyz and /metrics are served (0: a free port; None: not at all)."""
        self.http: HealthServer | None = None
        self.probe: health.Probe | None = None
        self.command(catalogue.COMMANDS[subjects.command(service, "health")].model)(self._health)

    # ------------------------------------------------------------------ registration

    def command(self, model: type[Command], group_commit: bool = False) -> Callable[[CommandHandler], CommandHandler]:
        """Register the handler of a catalogued command of this service. With ``group_commit``
        the commands that arrive together share one transaction, each in its own savepoint (its
        handler sees what the earlier ones did; a refusal rolls back only its own changes)."""
        spec = catalogue.COMMANDS.get(model.subject())
        if spec is None or spec.model is not model or spec.service != self.service:
            raise ValueError(f"{model.__name__} is not a catalogued command of {self.service}")

        def register(fn: CommandHandler) -> CommandHandler:
            self._commands[spec.subject] = (model, fn)
            if group_commit:
                self._batchers[spec.subject] = _Batcher(self, model, _in_savepoints(fn), 256)
            return fn

        return register

    def command_batch(
        self, model: type[Command], max_batch: int = 256
    ) -> Callable[[BatchHandler], BatchHandler]:
        """Register the set-based handler of a catalogued command (group commit, see the module)."""

        def register(fn: BatchHandler) -> BatchHandler:
            async def one(cmd: Command, uow: UnitOfWork) -> Any:
                [result] = await fn([cmd], uow)
                if isinstance(result, DomainError):
                    raise result
                return result

            self.command(model)(one)
            self._batchers[model.subject()] = _Batcher(self, model, fn, max_batch)
            return fn

        return register

    def on_event(self, model: type[Event]) -> Callable[[EventHandler], EventHandler]:
        """Register the handler of a catalogued event (of another service, usually)."""
        if model.subject() not in catalogue.EVENTS:
            raise ValueError(f"{model.__name__} is not a catalogued event")

        def register(fn: EventHandler) -> EventHandler:
            self._events[model.subject()] = (model, fn)
            return fn

        return register

    def on_start(
        self, fn: Callable[[ServiceApp], Awaitable[None]]
    ) -> Callable[[ServiceApp], Awaitable[None]]:
        self._on_start.append(fn)
        return fn

    # ------------------------------------------------------------------ lifecycle

    async def start(self, nats_url: str | None = None, database_url: str | None = None) -> None:
        configure_logging(self.settings.log_level, self.settings.log_json)
        telemetry.configure_from_env(self.service)
        nats_url = nats_url or self.settings.nats_url
        self.db = Database(
            database_url or self.settings.database_url(self.service), self.metadata, self.service
        )
        if self.migrations:
            db = self.db
            try:
                await db.retrying(lambda: require_current(db.engine, self.service))
            except BaseException:
                await db.dispose()
                raise
        else:
            await self.db.create_all()
        self.nc, self.js = await connect_jetstream(
            nats_url, f"bfest-{self.service}", identity=self.service, settings=self.settings
        )
        self.relay = OutboxRelay(self.db, self.js)
        self.relay.start()
        for hook in self._on_start:
            await hook(self)
        self._workers = asyncio.Semaphore(self.settings.command_workers)
        for batcher in self._batchers.values():
            batcher.start()
        self.broker = self._build_broker(nats_url)
        await self.broker.start()
        await self._until_serving()
        self.probe = self._probe()
        if self.http_port is not None:
            self.http = HealthServer(self.probe, self.settings.http_host, self.http_port)
            await self.http.start()
        for upstream in sorted({spec_service(s) for s in self._events}):
            self._consumers.append(
                asyncio.create_task(self._consume(upstream), name=f"{self.service}<-{upstream}")
            )
        _settle_gc()
        self.log.info(
            "service.started",
            nats=nats_url,
            database=self.db.url.split("@")[-1],
            commands=len(self._commands),
            consumes=sorted({spec_service(s) for s in self._events}),
        )

    def _durables(self) -> list[str]:
        return [authz.service_durable(self.service, upstream) for upstream in sorted({spec_service(s) for s in self._events})]

    def _probe(self) -> health.Probe:
        assert self.db is not None
        s = self.settings
        return health.Probe(
            self.service,
            [
                health.nats_connected(lambda: self.nc),
                health.nats_connected(lambda: getattr(self.broker, "_connection", None) if self.broker else None),
                health.database(self.db),
                health.outbox(self.db, self.service, s.ready_outbox_max_age),
                health.consumers(lambda: self.js, self.service, self._durables, s.ready_consumer_max_pending),
                health.dead_letters(lambda: self.js, self.service),
            ],
        )

    async def _until_serving(self) -> None:
        """Return once the command subscriptions answer (the server has registered them)."""
        assert self.nc is not None
        health = subjects.command(self.service, "health")
        for _ in range(100):
            try:
                await self.nc.request(health, b"{}", timeout=1)
                return
            except Exception:  # noqa: BLE001 - not subscribed yet
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.service} did not start serving {health}")

    async def stop(self) -> None:
        self._stopping.set()
        if self.http:
            await self.http.stop()
            self.http = None
        if self.broker:
            await self.broker.stop()
        # What was accepted is answered before the database goes away.
        for batcher in self._batchers.values():
            await batcher.stop()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
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

    # ------------------------------------------------------------------ commands

    def _build_broker(self, nats_url: str) -> NatsBroker:
        # The intake reads the body itself (one pass of pydantic's JSON parser, see _intake), so
        # FastStream hands it over as it came: no decoding, no dependency injection per message.
        options = nats_options(self.service, self.settings)
        tls = options.pop("tls", None)
        if tls is not None:
            from faststream.security import BaseSecurity

            options["security"] = BaseSecurity(ssl_context=tls)
        broker = NatsBroker(
            nats_servers(nats_url),
            **options,
            middlewares=[*telemetry.broker_middlewares(), EnvelopeMiddleware],
            logger=None,
            name=f"bfest-{self.service}-cmd",
            apply_types=False,
            decoder=_as_received,
        )
        for subject, (model, fn) in self._commands.items():
            broker.subscriber(
                subject,
                queue=subjects.queue_group(self.service),
                no_reply=True,  # the intake answers itself, once the command is handled
                title=subject,
                description=catalogue.COMMANDS[subject].doc,
            )(self._intake(broker, subject, model, fn))
        return broker

    def _intake(self, broker: NatsBroker, subject: str, model: type[Command], fn: CommandHandler) -> Callable[..., Awaitable[None]]:
        """Hand the parsed command over at once, so the subscription never waits for the
        database: a group-committed command joins its batch, any other runs as its own task (at
        most ``command_workers`` at a time); the reply goes out when it is done."""
        batcher = self._batchers.get(subject)

        async def intake(body: bytes) -> None:
            cmd = model.model_validate_json(body)  # a ValidationError is answered by EnvelopeMiddleware
            raw = broker.context.get_local("message").raw_message
            try:
                check_actor(cmd, actor_from_headers(raw.headers))
            except DomainError as exc:
                self.log.info("command.refused", command=cmd.NAME, request_id=cmd.request_id, code=exc.code, message=exc.message)
                await respond(raw, Reply.failure(exc.code, exc.message, exc.details))
                return

            async def answer(reply: Reply) -> None:
                await respond(raw, reply)

            parent = telemetry.received(raw.headers)
            if batcher is not None:
                batcher.queue.put_nowait(_Pending(cmd, answer, received=time.perf_counter(), context=parent))
            else:
                task = asyncio.create_task(self._serve(cmd, fn, answer, parent))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

        intake.__name__ = subject.replace(".", "_")
        return intake

    async def _serve(
        self, cmd: Command, fn: CommandHandler, answer: Callable[[Reply], Awaitable[None]], parent: Any = None
    ) -> None:
        # A read changes nothing, so a copy of it is simply read again.
        reply = await (self._work(cmd, fn, parent) if isinstance(cmd, Query) else self._once(cmd, fn, parent))
        try:
            await answer(reply)
        except Exception as exc:  # noqa: BLE001 - the caller went away; the command stands
            self.log.warning(
                "command.reply_failed", command=cmd.NAME, request_id=cmd.request_id, error=str(exc)
            )

    async def _work(self, cmd: Command, fn: CommandHandler, parent: Any) -> Reply:
        assert self._workers is not None
        async with self._workers:
            return await self.handle(cmd, fn, parent)

    async def _once(self, cmd: Command, fn: CommandHandler, parent: Any) -> Reply:
        """Handle a command that changes state; a copy the caller sent again (it heard nothing
        yet) while the first is being handled waits for the first's reply instead of doing the
        work again. Keyed by name, request id and payload, so a reused id with another payload
        still gets its conflict from the database."""
        key = (cmd.NAME, cmd.request_id, _payload_hash(cmd))
        first = self._serving.get(key)
        if first is not None:
            return await asyncio.shield(first)
        self._serving[key] = handled = asyncio.get_running_loop().create_future()
        try:
            reply = await self._work(cmd, fn, parent)
            handled.set_result(reply)
            return reply
        finally:
            del self._serving[key]
            if not handled.done():
                handled.cancel()

    async def dispatch(self, cmd: Command, actor: Actor | None = None) -> Reply:
        """Handle a command in-process (tests, benchmarks): the same path as over NATS. The actor,
        when given, is checked as the header's would be (an in-process caller is trusted)."""
        _, fn = self._commands[cmd.subject()]
        if actor is not None:
            try:
                check_actor(cmd, actor)
            except DomainError as exc:
                return Reply.failure(exc.code, exc.message, exc.details)
        return await self.handle(cmd, fn)

    async def handle(self, cmd: Command, fn: CommandHandler, parent: Any = None) -> Reply:
        started = time.perf_counter()
        with telemetry.span(
            f"command {cmd.NAME}", parent=parent, kind=telemetry.SpanKind.SERVER, attributes=self._span_attributes(cmd)
        ) as span:
            reply = await self._reply(cmd, fn)
            self._observe(cmd, reply, started, span)
        return reply

    def _span_attributes(self, cmd: Command) -> dict[str, Any]:
        return {
            telemetry.SERVICE: self.service,
            telemetry.SUBJECT: cmd.subject(),
            telemetry.REQUEST_ID: cmd.request_id,
            **telemetry.attributes_of(cmd),
        }

    def _observe(self, cmd: Command, reply: Reply, started: float, span: Any) -> None:
        """A command's latency and outcome, in the metrics and on its span."""
        outcome = "ok" if reply.ok or reply.error is None else reply.error.code
        metrics.observe_command(self.service, cmd.subject(), outcome, time.perf_counter() - started)
        telemetry.mark(span, outcome, reply.error.message if reply.error else None)

    async def _reply(self, cmd: Command, fn: CommandHandler) -> Reply:
        assert self.db is not None
        log = self.log.bind(command=cmd.NAME, request_id=cmd.request_id)
        try:
            if isinstance(cmd, Query):
                return await self.db.retrying(lambda: self._query_once(cmd, fn))
            return await self.db.retrying(lambda: self._handle_once(cmd, fn, log))
        except DomainError as exc:
            if not exc.retryable:
                await self._remember_failure(cmd, exc)
            log.info("command.refused", code=exc.code, message=exc.message)
            return Reply.failure(exc.code, exc.message, exc.details)
        except Exception as exc:  # noqa: BLE001
            # Past parsing, even a ValidationError is our bug, not the caller's.
            return error_reply(exc, cmd.subject(), log, inside_handler=True)

    async def _query_once(self, cmd: Command, fn: CommandHandler) -> Reply:
        assert self.db is not None
        async with self.db.session() as session:
            uow = UnitOfWork(session, self.service, self.clock(), self.db)
            return Reply.success(to_jsonable_python(await fn(cmd, uow)))

    async def _handle_once(self, cmd: Command, fn: CommandHandler, log: Any, again: bool = False) -> Reply:
        assert self.db is not None and self.relay is not None
        table = self.db.commands
        payload_hash = _payload_hash(cmd)
        try:
            async with self.db.sessions() as session, session.begin():
                first = await self._first_reply(session, cmd, payload_hash)
                if first is not None:
                    return first
                uow = UnitOfWork(session, self.service, self.clock(), self.db)
                reply = Reply.success(to_jsonable_python(await fn(cmd, uow)))
                await uow._write_outbox()
                await session.execute(sa.insert(table).values(_command_row(cmd, payload_hash, reply, uow.now)))
        except IntegrityError:
            if again:
                raise
            # Most likely the same request_id committed meanwhile (a concurrent retry): its reply wins.
            return await self._handle_once(cmd, fn, log, again=True)
        if uow.events:
            self.relay.wake()
        log.info("command.handled", events=len(uow.events))
        return reply

    async def _first_reply(self, session: AsyncSession, cmd: Command, payload_hash: str) -> Reply | None:
        assert self.db is not None
        table = self.db.commands
        row = (
            await session.execute(
                sa.select(table.c.reply, table.c.payload_hash).where(
                    table.c.request_id == cmd.request_id, table.c.command == cmd.NAME
                )
            )
        ).first()
        if row is None:
            return None
        if row.payload_hash != payload_hash:
            raise _conflict(cmd.request_id, cmd.NAME)
        return Reply.model_validate_json(row.reply)

    async def handle_batch(self, model: type[Command], fn: BatchHandler, batch: list[_Pending]) -> None:
        """Handle a batch of one command in one transaction and answer each request."""
        assert self.db is not None and self.relay is not None
        for item in batch:
            item.payload_hash = _payload_hash(item.cmd)
            if item.span is None and telemetry.enabled():
                item.span = telemetry.start(
                    f"command {model.NAME}",
                    parent=item.context,
                    kind=telemetry.SpanKind.SERVER,
                    attributes=self._span_attributes(item.cmd),
                )
        try:
            replies, events = await self.db.retrying(lambda: self._batch_once(model, fn, batch))
        except Exception as exc:  # noqa: BLE001 - one bad command must not sink the others
            if len(batch) == 1:
                replies = [
                    error_reply(
                        exc,
                        model.subject(),
                        self.log.bind(request_id=batch[0].cmd.request_id),
                        inside_handler=True,
                    )
                ]
            else:
                self.log.warning(
                    "command.batch_split", command=model.NAME, size=len(batch), error=str(exc)[:300]
                )
                # Each on its own: the one that fails is answered with its error, the rest commit.
                for item in batch:
                    await self.handle_batch(model, fn, [item])
                return
            events = 0
        if events:
            self.relay.wake()
        refused = sum(1 for r in replies if not r.ok)
        self.log.info(
            "command.batch_handled", command=model.NAME, size=len(batch), refused=refused, events=events
        )
        for item, reply in zip(batch, replies, strict=True):
            self._observe(item.cmd, reply, item.received, item.span)
            if item.span is not None:
                item.span.end()
            try:
                await item.respond(reply)
            except Exception as exc:  # noqa: BLE001 - the caller went away; the command stands
                self.log.warning(
                    "command.reply_failed", command=model.NAME, request_id=item.cmd.request_id, error=str(exc)
                )

    async def _batch_once(
        self, model: type[Command], fn: BatchHandler, batch: list[_Pending]
    ) -> tuple[list[Reply], int]:
        assert self.db is not None
        table = self.db.commands
        replies: list[Reply | None] = [None] * len(batch)
        async with self.db.sessions() as session, session.begin():
            ids = sorted({item.cmd.request_id for item in batch})
            stored = {
                row.request_id: row
                for row in await session.execute(
                    sa.select(table.c.request_id, table.c.reply, table.c.payload_hash).where(
                        table.c.command == model.NAME, table.c.request_id.in_(ids)
                    )
                )
            }
            fresh: list[int] = []
            first_of: dict[str, int] = {}
            for i, item in enumerate(batch):
                rid = item.cmd.request_id
                if rid in stored or rid in first_of:
                    known = stored[rid].payload_hash if rid in stored else batch[first_of[rid]].payload_hash
                    if known != item.payload_hash:
                        conflict = _conflict(rid, model.NAME)
                        replies[i] = Reply.failure(conflict.code, conflict.message, conflict.details)
                    elif rid in stored:
                        replies[i] = Reply.model_validate_json(stored[rid].reply)
                    continue
                first_of[rid] = i
                fresh.append(i)
            uow = UnitOfWork(session, self.service, self.clock(), self.db)
            rows = []
            if fresh:
                traced = telemetry.enabled()
                if traced:
                    uow.command_traces = {
                        id(batch[i].cmd): tp for i in fresh if (tp := telemetry.span_traceparent(batch[i].span))
                    }
                results = await fn([batch[i].cmd for i in fresh], uow)
                if traced:
                    _trace_batch_events(uow, [batch[i].cmd for i in fresh])
                if len(results) != len(fresh):
                    raise RuntimeError(
                        f"{model.NAME}: the batch handler answered {len(results)} of {len(fresh)} commands"
                    )
                for i, result in zip(fresh, results, strict=True):
                    if isinstance(result, DomainError):
                        reply = Reply.failure(result.code, result.message, result.details)
                        remember = not result.retryable
                    else:
                        reply = Reply.success(to_jsonable_python(result))
                        remember = True
                    replies[i] = reply
                    if remember:
                        rows.append(_command_row(batch[i].cmd, batch[i].payload_hash, reply, uow.now))
                await uow._write_outbox()
                if rows:
                    await session.execute(sa.insert(table), rows)
        # A retry inside the batch (same request_id twice) answers as its first.
        for i, item in enumerate(batch):
            if replies[i] is None:
                replies[i] = replies[first_of[item.cmd.request_id]]
        return [r for r in replies if r is not None], len(uow.events)

    async def _remember_failure(self, cmd: Command, exc: DomainError) -> None:
        """A refused command's first answer is kept too, so its retry answers the same."""
        if (
            isinstance(cmd, Query)
            or self.db is None
            or exc.code == ErrorCode.CONFLICT
            and "request_id" in (exc.details or {})
        ):
            return
        reply = Reply.failure(exc.code, exc.message, exc.details)
        try:
            async with self.db.sessions() as session, session.begin():
                await session.execute(
                    sa.insert(self.db.commands).values(_command_row(cmd, _payload_hash(cmd), reply, self.clock()))
                )
        except IntegrityError:
            pass

    async def _health(self, cmd: Query, uow: UnitOfWork) -> Health:
        assert self.db is not None and self.relay is not None
        state = await (self.probe or self._probe()).readiness()
        return Health(
            service=self.service,
            status="ok" if state.ready else "not_ready",
            version=self.version,
            database=await self.db.ping(),
            outbox_pending=await self.relay.pending(),
            ready=state.ready,
            reasons=state.reasons,
        )

    # ------------------------------------------------------------------ events

    async def _consume(self, upstream: str) -> None:
        assert self.js is not None
        durable = authz.service_durable(self.service, upstream)
        sub = await self.js.pull_subscribe(
            subjects.events_of(upstream),
            durable=durable,
            stream=subjects.STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=-1,
                ack_wait=60,
                max_ack_pending=1000,
            ),
        )
        log = self.log.bind(consumer=durable)
        while not self._stopping.is_set():
            try:
                msgs = await sub.fetch(batch=100, timeout=1)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS reconnecting; try again
                log.warning("consumer.fetch_failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            if len(msgs) > 1:
                await self._process_events(durable, msgs, log)
            else:
                for msg in msgs:
                    await self._process_event(durable, msg, log)

    async def process_event_payload(self, consumer: str, subject: str, data: bytes) -> str:
        """Process one event; returns ``done``, ``duplicate``, ``ignored`` or raises."""
        entry = self._events.get(subject)
        if entry is None:
            return "ignored"
        model, fn = entry
        event = model.model_validate_json(data)
        telemetry.annotate(telemetry.attributes_of(event))
        assert self.db is not None
        db = self.db

        async def unit() -> str:
            async with db.sessions() as session, session.begin():
                uow = await self._record_and_handle(session, consumer, subject, fn, event)
            if uow is None:
                return "duplicate"
            if uow.events and self.relay:
                self.relay.wake()
            return "done"

        return await db.retrying(unit)

    async def _record_and_handle(
        self, session: AsyncSession, consumer: str, subject: str, fn: EventHandler, event: Event
    ) -> UnitOfWork | None:
        """In a savepoint: the event's inbox row, its handler and the events it emits. ``None`` when
        the event was seen before; if the handler fails, the savepoint (inbox row included) is
        rolled back and the failure raised."""
        assert self.db is not None
        savepoint = await session.begin_nested()
        try:
            await session.execute(
                sa.insert(self.db.inbox).values(
                    consumer=consumer, event_id=event.event_id, subject=subject, received_at=self.clock()
                )
            )
        except IntegrityError:
            await savepoint.rollback()
            return None
        uow = UnitOfWork(session, self.service, self.clock(), self.db)
        try:
            await fn(event, uow)
            await uow._write_outbox()
        except BaseException:
            await savepoint.rollback()
            raise
        await savepoint.commit()
        return uow

    async def _process_events(self, consumer: str, msgs: list[Any], log: Any) -> None:
        """A fetched batch in one transaction (group commit), each event in its own savepoint, in
        stream order. An event whose handler fails is left out of the batch and handled alone
        (dead letter or redelivery, as :meth:`_process_event` decides); the others commit."""
        assert self.db is not None
        db = self.db
        parsed: list[tuple[Any, Any, EventHandler, Event]] = []
        alone: list[Any] = []
        for msg in msgs:
            entry = self._events.get(msg.subject)
            if entry is None:
                parsed.append((msg, None, None, None))  # type: ignore[arg-type]
                continue
            try:
                parsed.append((msg, msg.subject, entry[1], entry[0].model_validate_json(msg.data)))
            except (ValidationError, ValueError):
                alone.append(msg)

        async def unit() -> tuple[list[Any], list[Any], int]:
            done: list[Any] = []
            failed: list[Any] = []
            emitted = 0
            async with db.sessions() as session, session.begin():
                for msg, subject, fn, event in parsed:
                    if fn is None:
                        done.append(msg)
                        continue
                    with self._event_span(msg) as span:
                        if span is not None:
                            span.set_attributes(telemetry.attributes_of(event))
                        try:
                            uow = await self._record_and_handle(session, consumer, subject, fn, event)
                        except Exception:  # noqa: BLE001 - handled alone below, with its own verdict
                            telemetry.mark(span, "handled_alone")
                            failed.append(msg)  # rolled back, inbox row too: alone, it starts from scratch
                            continue
                        telemetry.mark(span, "ok" if uow else "duplicate")
                    emitted += len(uow.events) if uow else 0
                    done.append(msg)  # handled, or a duplicate seen before
            return done, failed, emitted

        done, failed, emitted = await db.retrying(unit)
        if emitted and self.relay:
            self.relay.wake()
        for msg in done:
            await msg.ack()
            if msg.subject in self._events:
                metrics.EVENTS_CONSUMED.labels(self.service, msg.subject, "ok").inc()
        log.debug("event.batch_processed", size=len(msgs), done=len(done), alone=len(failed) + len(alone))
        again = {id(m) for m in failed} | {id(m) for m in alone}
        for msg in msgs:
            if id(msg) in again:
                await self._process_event(consumer, msg, log)

    def _event_span(self, msg: Any) -> Any:
        """The span of one consumed event, continuing the trace its headers carry (none for an
        event this service does not handle)."""
        if not telemetry.enabled() or msg.subject not in self._events:
            return contextlib.nullcontext()
        attributes = {telemetry.SERVICE: self.service, telemetry.SUBJECT: msg.subject}
        return telemetry.span(
            f"consume {msg.subject}",
            parent=telemetry.extract(msg.headers),
            kind=telemetry.SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _process_event(self, consumer: str, msg: Any, log: Any) -> None:
        with self._event_span(msg) as span:
            outcome = await self._process_event_once(consumer, msg, log)
            if outcome is not None:
                telemetry.mark(span, outcome)
                metrics.EVENTS_CONSUMED.labels(self.service, msg.subject, outcome).inc()

    async def _process_event_once(self, consumer: str, msg: Any, log: Any) -> str | None:
        """Process, acknowledge or dead-letter one event; returns the outcome (``None``: not ours)."""
        try:
            outcome = await self.process_event_payload(consumer, msg.subject, msg.data)
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
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            if delivered >= 5:
                log.exception("event.failed_repeatedly", subject=msg.subject, deliveries=delivered)
                await self.dead_letter(msg.subject, msg.data, exc)
                await msg.ack()
                return "dead_lettered"
            log.warning("event.retry", subject=msg.subject, deliveries=delivered, error=str(exc))
            await msg.nak(delay=min(30, 2**delivered))
            return "retry"

    async def dead_letter(self, subject: str, data: bytes, exc: BaseException) -> None:
        assert self.js is not None
        if isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors()):
            reason, details = "invalid_json", None
        elif isinstance(exc, ValidationError):
            reason, details = "validation_error", validation_details(exc)
        elif isinstance(exc, DomainError):
            reason, details = exc.code, exc.details
        elif isinstance(exc, ValueError):
            reason, details = "invalid_json", None
        else:
            reason, details = "handler_failed", None
        entry = {
            "service": self.service,
            "subject": subject,
            "reason": reason,
            "error": str(exc)[:2000],
            "details": details,
            "payload": data.decode("utf-8", "replace")[:100_000],
            "at": self.clock().isoformat(),
        }
        self.log.warning("event.dead_lettered", subject=subject, reason=reason, error=str(exc)[:300])
        await self.js.publish(subjects.dlq(self.service), dumps(entry))


def _settle_gc() -> None:
    """Keep the garbage collector's pauses out of the tail latency. What start-up built (models,
    schemas, mappers, the broker) lives as long as the process: it is frozen out of collections,
    which otherwise walk all of it every full pass (tens of ms: the p99 of a command burst). The
    young generation is collected less often, as a request makes a few hundred short-lived
    objects. Reference counting still frees nearly everything at once; only cycles wait."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(10_000, second, third)


def spec_service(event_subject: str) -> str:
    return catalogue.EVENTS[event_subject].service


__all__ = ["ServiceApp", "UnitOfWork", "DomainError", "BaseModel"]
