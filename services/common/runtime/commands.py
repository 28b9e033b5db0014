"""Command intake: the FastStream subscriptions on ``bfest.<service>.cmd.<name>`` (queue group
``<service>``), the actor check, and the handling of one command in its own transaction with
its outbox rows and its first reply; the reply goes back as the envelope."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from faststream.nats import NatsBroker
from pydantic_core import to_jsonable_python
from sqlalchemy.exc import IntegrityError

from contracts import catalogue, subjects
from contracts.base import Actor, Command, Query, Reply
from services.common import metrics, telemetry
from services.common.actors import actor_from_headers, check_actor
from services.common.errors import DomainError
from services.common.runtime.batching import Pending
from services.common.runtime.idempotency import CommandLog, command_row, payload_hash
from services.common.runtime.replies import error_reply, refusal, respond
from services.common.runtime.uow import UnitOfWork

if TYPE_CHECKING:
    from services.common.runtime import ServiceApp

CommandHandler = Callable[[Any, UnitOfWork], Awaitable[Any]]
Answer = Callable[[Reply], Awaitable[None]]


class Commands:
    """The command handlers of one service and the way each command is served."""

    def __init__(self, app: ServiceApp) -> None:
        self.app = app
        self.handlers: dict[str, tuple[type[Command], CommandHandler]] = {}
        self.log = CommandLog()
        self._inflight: set[asyncio.Task[None]] = set()
        self._workers: asyncio.Semaphore | None = None

    def register(self, model: type[Command], fn: CommandHandler) -> None:
        self.handlers[model.subject()] = (model, fn)

    def subscribe(self, broker: NatsBroker) -> None:
        """One FastStream subscriber per command, answering through :meth:`intake`."""
        self._workers = asyncio.Semaphore(self.app.settings.command_workers)
        for subject, (model, fn) in self.handlers.items():
            broker.subscriber(
                subject,
                queue=subjects.queue_group(self.app.service),
                no_reply=True,  # the intake answers itself, once the command is handled
                title=subject,
                description=catalogue.COMMANDS[subject].doc,
            )(self.intake(broker, subject, model, fn))

    async def finish(self) -> None:
        """Wait for what was accepted (before the database goes away)."""
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def intake(self, broker: NatsBroker, subject: str, model: type[Command], fn: CommandHandler) -> Callable[..., Awaitable[None]]:
        """Hand the parsed command over at once, so the subscription never waits for the
        database: a batched command joins its batch, any other runs as its own task (at most
        ``command_workers`` at a time); the reply goes out when it is done."""
        batcher = self.app.batches.batchers.get(subject)

        async def intake(body: bytes) -> None:
            cmd = model.model_validate_json(body)  # a ValidationError is answered by EnvelopeMiddleware
            raw = broker.context.get_local("message").raw_message
            try:
                check_actor(cmd, actor_from_headers(raw.headers))
            except DomainError as exc:
                self.app.log.info("command.refused", command=cmd.NAME, request_id=cmd.request_id, code=exc.code, message=exc.message)
                await respond(raw, refusal(exc))
                return

            async def answer(reply: Reply) -> None:
                await respond(raw, reply)

            parent = telemetry.received(raw.headers)
            if batcher is not None:
                batcher.queue.put_nowait(Pending(cmd, answer, received=time.perf_counter(), context=parent))
            else:
                task = asyncio.create_task(self.serve(cmd, fn, answer, parent))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

        intake.__name__ = subject.replace(".", "_")
        return intake

    async def serve(self, cmd: Command, fn: CommandHandler, answer: Answer, parent: Any = None) -> None:
        # A read changes nothing, so a copy of it is simply read again.
        async def work() -> Reply:
            return await self._work(cmd, fn, parent)

        reply = await (work() if isinstance(cmd, Query) else self.log.once(cmd, work))
        try:
            await answer(reply)
        except Exception as exc:  # noqa: BLE001 - the caller went away; the command stands
            self.app.log.warning("command.reply_failed", command=cmd.NAME, request_id=cmd.request_id, error=str(exc))

    async def _work(self, cmd: Command, fn: CommandHandler, parent: Any) -> Reply:
        assert self._workers is not None
        async with self._workers:
            return await self.handle(cmd, fn, parent)

    async def dispatch(self, cmd: Command, actor: Actor | None = None) -> Reply:
        """Handle a command in-process: the same path as over NATS (see ``ServiceApp.dispatch``)."""
        _, fn = self.handlers[cmd.subject()]
        if actor is not None:
            try:
                check_actor(cmd, actor)
            except DomainError as exc:
                return refusal(exc)
        return await self.handle(cmd, fn)

    async def handle(self, cmd: Command, fn: CommandHandler, parent: Any = None) -> Reply:
        started = time.perf_counter()
        with telemetry.span(
            f"command {cmd.NAME}", parent=parent, kind=telemetry.SpanKind.SERVER, attributes=self.span_attributes(cmd)
        ) as span:
            reply = await self._reply(cmd, fn)
            self.observe(cmd, reply, started, span)
        return reply

    def span_attributes(self, cmd: Command) -> dict[str, Any]:
        return {
            telemetry.SERVICE: self.app.service,
            telemetry.SUBJECT: cmd.subject(),
            telemetry.REQUEST_ID: cmd.request_id,
            **telemetry.attributes_of(cmd),
        }

    def observe(self, cmd: Command, reply: Reply, started: float, span: Any) -> None:
        """A command's latency and outcome, in the metrics and on its span."""
        outcome = "ok" if reply.ok or reply.error is None else reply.error.code
        metrics.observe_command(self.app.service, cmd.subject(), outcome, time.perf_counter() - started)
        telemetry.mark(span, outcome, reply.error.message if reply.error else None)

    async def _reply(self, cmd: Command, fn: CommandHandler) -> Reply:
        db = self.app.db
        assert db is not None
        log = self.app.log.bind(command=cmd.NAME, request_id=cmd.request_id)
        try:
            if isinstance(cmd, Query):
                reply: Reply = await db.retrying(lambda: self._query_once(cmd, fn))
            else:
                reply = await db.retrying(lambda: self._handle_once(cmd, fn, log))
            return reply
        except DomainError as exc:
            if not exc.retryable:
                await self.log.remember_failure(db, cmd, exc, self.app.clock())
            log.info("command.refused", code=exc.code, message=exc.message)
            return refusal(exc)
        except Exception as exc:  # noqa: BLE001
            # Past parsing, even a ValidationError is our bug, not the caller's.
            return error_reply(exc, cmd.subject(), log, inside_handler=True)

    async def _query_once(self, cmd: Command, fn: CommandHandler) -> Reply:
        db = self.app.db
        assert db is not None
        async with db.session() as session:
            uow = UnitOfWork(session, self.app.service, self.app.clock(), db)
            return Reply.success(to_jsonable_python(await fn(cmd, uow)))

    async def _handle_once(self, cmd: Command, fn: CommandHandler, log: Any, again: bool = False) -> Reply:
        """The change, its outbox rows and its first reply, in one transaction."""
        db = self.app.db
        assert db is not None
        digest = payload_hash(cmd)
        try:
            async with db.sessions() as session, session.begin():
                first = await self.log.first_reply(db, session, cmd, digest)
                if first is not None:
                    return first
                uow = UnitOfWork(session, self.app.service, self.app.clock(), db)
                reply = Reply.success(to_jsonable_python(await fn(cmd, uow)))
                await uow.write_outbox()
                await session.execute(sa.insert(db.commands).values(command_row(cmd, digest, reply, uow.now)))
        except IntegrityError:
            if again:
                raise
            # Most likely the same request_id committed meanwhile (a concurrent retry): its reply wins.
            return await self._handle_once(cmd, fn, log, again=True)
        if uow.events:
            self.app.wake_relay()
        log.info("command.handled", events=len(uow.events))
        return reply
