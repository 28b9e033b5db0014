"""Batching (group commit), the one way to batch a command: register a set-based handler with
``ServiceApp.command_batch``. The commands that arrive while a batch is being written are handled
together, in arrival order, by one call of the handler in one transaction (one idempotency
lookup, one outbox write, one commit), each with its own reply. A handler refuses one command of
a batch by returning its :class:`DomainError` in that command's place; the others go on. A
one-command handler joins in with :func:`each_in_savepoint`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from contracts.base import Command, Reply
from services.common import telemetry
from services.common.errors import DomainError
from services.common.runtime.idempotency import command_row, conflict, payload_hash
from services.common.runtime.replies import error_reply, refusal
from services.common.runtime.uow import UnitOfWork

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.common.runtime import ServiceApp

CommandHandler = Callable[[Any, UnitOfWork], Awaitable[Any]]
BatchHandler = Callable[[list[Any], UnitOfWork], Awaitable[list[Any]]]
"""Gets the commands of a batch, returns one result per command in the same order: the reply's
data, or the :class:`DomainError` that refuses that command (which must then have changed nothing)."""


@dataclass
class Pending:
    cmd: Command
    respond: Callable[[Reply], Awaitable[None]]
    payload_hash: str = ""
    received: float = field(default_factory=time.perf_counter)
    context: Any = None  # the trace context it arrived in (tracing on)
    span: Any = None


def each_in_savepoint(fn: CommandHandler) -> BatchHandler:
    """A one-command handler run for each command of a batch, each in a savepoint: its handler
    sees what the earlier ones did; a refusal rolls back only its own changes."""

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

    batch.__name__ = getattr(fn, "__name__", "batch")
    return batch


def one_at_a_time(fn: BatchHandler) -> CommandHandler:
    """The batch handler called for one command (an in-process dispatch)."""

    async def one(cmd: Command, uow: UnitOfWork) -> Any:
        [result] = await fn([cmd], uow)
        if isinstance(result, DomainError):
            raise result
        return result

    return one


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


class Batcher:
    """Collects one command's requests while the previous batch is written (group commit)."""

    def __init__(self, batches: Batches, model: type[Command], fn: BatchHandler, max_batch: int) -> None:
        self.batches, self.model, self.fn, self.max_batch = batches, model, fn, max_batch
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"batch-{self.model.NAME}")

    async def stop(self) -> None:
        """Finish what was accepted, then stop."""
        if self.task and not self.task.done():
            try:
                await asyncio.wait_for(self.queue.join(), timeout=30)
            except TimeoutError:
                self.batches.app.log.warning("command.batch_unfinished", command=self.model.NAME, left=self.queue.qsize())
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
                await self.batches.handle(self.model, self.fn, batch)
            except Exception:  # noqa: BLE001 - never let the batcher die; handle answered each
                self.batches.app.log.exception("command.batch_failed", command=self.model.NAME, size=len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()


class Batches:
    """The batched commands of one service."""

    def __init__(self, app: ServiceApp) -> None:
        self.app = app
        self.batchers: dict[str, Batcher] = {}

    def register(self, model: type[Command], fn: BatchHandler, max_batch: int) -> None:
        self.batchers[model.subject()] = Batcher(self, model, fn, max_batch)

    def start(self) -> None:
        for batcher in self.batchers.values():
            batcher.start()

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()

    async def handle(self, model: type[Command], fn: BatchHandler, batch: list[Pending]) -> None:
        """Handle a batch of one command in one transaction and answer each request."""
        app = self.app
        assert app.db is not None
        for item in batch:
            self._open(model, item)
        try:
            replies, events = await app.db.retrying(lambda: self._once(model, fn, batch))
        except Exception as exc:  # noqa: BLE001 - one bad command must not sink the others
            if len(batch) > 1:
                app.log.warning("command.batch_split", command=model.NAME, size=len(batch), error=str(exc)[:300])
                # Each on its own: the one that fails is answered with its error, the rest commit.
                for item in batch:
                    await self.handle(model, fn, [item])
                return
            log = app.log.bind(request_id=batch[0].cmd.request_id)
            replies, events = [error_reply(exc, model.subject(), log, inside_handler=True)], 0
        if events:
            app.wake_relay()
        refused = sum(1 for r in replies if not r.ok)
        app.log.info("command.batch_handled", command=model.NAME, size=len(batch), refused=refused, events=events)
        for item, reply in zip(batch, replies, strict=True):
            await self._answer(item, reply)

    def _open(self, model: type[Command], item: Pending) -> None:
        item.payload_hash = payload_hash(item.cmd)
        if item.span is None and telemetry.enabled():
            item.span = telemetry.start(
                f"command {model.NAME}",
                parent=item.context,
                kind=telemetry.SpanKind.SERVER,
                attributes=self.app.commands.span_attributes(item.cmd),
            )

    async def _answer(self, item: Pending, reply: Reply) -> None:
        self.app.commands.observe(item.cmd, reply, item.received, item.span)
        if item.span is not None:
            item.span.end()
        try:
            await item.respond(reply)
        except Exception as exc:  # noqa: BLE001 - the caller went away; the command stands
            self.app.log.warning("command.reply_failed", command=item.cmd.NAME, request_id=item.cmd.request_id, error=str(exc))

    async def _once(self, model: type[Command], fn: BatchHandler, batch: list[Pending]) -> tuple[list[Reply], int]:
        db = self.app.db
        assert db is not None
        async with db.sessions() as session, session.begin():
            stored = await self.app.commands.log.stored(db, session, model.NAME, (i.cmd.request_id for i in batch))
            replies, fresh, first_of = _sort_out(model, batch, stored)
            uow = UnitOfWork(session, self.app.service, self.app.clock(), db)
            if fresh:
                await self._handle_fresh(session, fn, uow, [batch[i] for i in fresh], fresh, replies)
        # A retry inside the batch (same request_id twice) answers as its first.
        for i, item in enumerate(batch):
            if replies[i] is None:
                replies[i] = replies[first_of[item.cmd.request_id]]
        return [r for r in replies if r is not None], len(uow.events)

    async def _handle_fresh(
        self, session: AsyncSession, fn: BatchHandler, uow: UnitOfWork, items: list[Pending], at: list[int], replies: list[Reply | None]
    ) -> None:
        """The commands not seen before: the handler's results become replies, kept with the events."""
        cmds = [item.cmd for item in items]
        traced = telemetry.enabled()
        if traced:
            uow.command_traces = {id(i.cmd): tp for i in items if (tp := telemetry.span_traceparent(i.span))}
        results = await fn(cmds, uow)
        if traced:
            _trace_batch_events(uow, cmds)
        if len(results) != len(items):
            raise RuntimeError(f"{cmds[0].NAME}: the batch handler answered {len(results)} of {len(items)} commands")
        rows = []
        for i, item, result in zip(at, items, results, strict=True):
            if isinstance(result, DomainError):
                reply, remember = refusal(result), not result.retryable
            else:
                reply, remember = Reply.success(to_jsonable_python(result)), True
            replies[i] = reply
            if remember:
                rows.append(command_row(item.cmd, item.payload_hash, reply, uow.now))
        await uow.write_outbox()
        assert self.app.db is not None
        await self.app.commands.log.remember(session, self.app.db, rows)


def _sort_out(
    model: type[Command], batch: list[Pending], stored: dict[str, Any]
) -> tuple[list[Reply | None], list[int], dict[str, int]]:
    """Which commands of a batch are new (``fresh``, by position), which were answered before
    (their reply), which reuse a request id with another payload (a conflict), and each request
    id's first position in the batch."""
    replies: list[Reply | None] = [None] * len(batch)
    fresh: list[int] = []
    first_of: dict[str, int] = {}
    for i, item in enumerate(batch):
        rid = item.cmd.request_id
        if rid in stored or rid in first_of:
            known = stored[rid].payload_hash if rid in stored else batch[first_of[rid]].payload_hash
            if known != item.payload_hash:
                replies[i] = refusal(conflict(rid, model.NAME))
            elif rid in stored:
                replies[i] = Reply.model_validate_json(stored[rid].reply)
            continue
        first_of[rid] = i
        fresh.append(i)
    return replies, fresh, first_of
