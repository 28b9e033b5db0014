"""NATS plumbing shared by services, the worker and the CLI: the JetStream streams, the outbox
relay, :func:`durable_batches` (the one way events are consumed: a FastStream JetStream pull
subscriber on a durable consumer) and :class:`CommandClient` (request/reply with the envelope)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import sqlalchemy as sa
from faststream import AckPolicy as FastStreamAck
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.subscriber.usecases import BatchPullStreamSubscriber
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from contracts import subjects
from contracts.base import ACTOR_HEADER, Actor, Command, ErrorCode, Reply
from services.common import authz, metrics, telemetry
from services.common.credentials import nats_options
from services.common.db import Database
from services.common.logging import get_logger
from services.common.settings import Settings, get_settings, nats_servers

DUPLICATE_WINDOW_SECONDS = 2 * 60 * 60

EVENTS_STREAM = StreamConfig(
    name=subjects.STREAM,
    subjects=[subjects.EVENTS_ALL],
    storage=StorageType.FILE,
    retention=RetentionPolicy.LIMITS,
    discard=DiscardPolicy.OLD,
    duplicate_window=DUPLICATE_WINDOW_SECONDS,
    description="Every Bureaucracy Fest event (bfest.evt.<service>.<event>.v<N>)",
)
DLQ_STREAM = StreamConfig(
    name="BFEST_DLQ",
    subjects=[subjects.DLQ_ALL],
    storage=StorageType.FILE,
    retention=RetentionPolicy.LIMITS,
    max_age=90 * 24 * 3600,
    description="Poison events each service could not process, with the reason",
)


def stream_limits(settings: Settings) -> dict[str, dict[str, float | int]]:
    """Each stream's limits from settings, in nats-py's units (seconds, bytes): the event stream's
    age and size, the dead-letter stream's size, the largest message both take, and the copies a
    cluster keeps of each. 0 in a setting means no limit (JetStream's -1 for sizes, 0 for age)."""
    size = settings.max_message_bytes if settings.max_message_bytes > 0 else -1
    total = settings.events_max_bytes if settings.events_max_bytes > 0 else -1
    replicas = max(1, settings.stream_replicas)
    return {
        EVENTS_STREAM.name: {"max_age": max(0.0, settings.events_max_age_days) * 86400, "max_bytes": total, "max_msg_size": size, "num_replicas": replicas},  # type: ignore[dict-item]
        DLQ_STREAM.name: {"max_bytes": total, "max_msg_size": size, "num_replicas": replicas},  # type: ignore[dict-item]
    }


def _unlimited(field: str, value: float | int | None) -> bool:
    if field == "num_replicas":  # there is no "unlimited" number of copies
        return False
    return value is None or (value <= 0 if field == "max_age" else value < 0)


def _kept_or_raised(field: str, current: float | int | None, wanted: float | int) -> float | int:
    """The limit to set: ours, unless the stream's is higher (an operator raised it; a stream
    with no limit at all predates the limits, so it gets ours). Replicas likewise: a start with
    one replica leaves a stream an operator raised to three at three."""
    if field == "num_replicas":
        return max(int(current or 1), int(wanted))
    if _unlimited(field, current):
        return wanted
    if _unlimited(field, wanted):
        return wanted
    assert current is not None
    return max(current, wanted)


async def ensure_streams(js: JetStreamContext, settings: Settings | None = None, manage: bool = True) -> None:
    """Create the streams with their limits, or bring an existing one's up to ours without ever
    lowering a limit an operator raised. Safe to call from every replica. Changing an existing
    stream is the operator's (``manage``: the ``cli`` identity, which ``bfest dev up`` uses); a
    service or the worker only creates a missing stream, and says when an existing one differs."""
    limits = stream_limits(settings or get_settings())
    for base in (EVENTS_STREAM, DLQ_STREAM):
        assert base.name is not None
        wanted = limits[base.name]
        try:
            await js.add_stream(dataclasses.replace(base, **wanted))  # type: ignore[arg-type]
            continue
        except BadRequestError:
            pass  # it exists, created by another replica or an earlier version
        current = (await js.stream_info(base.name)).config
        merged = {field: _kept_or_raised(field, getattr(current, field), value) for field, value in wanted.items()}
        if all(getattr(current, field) == value for field, value in merged.items()):
            continue
        if not manage:
            get_logger("nats").info("stream.limits_differ", stream=base.name, limits=merged, note="the operator's identity updates them")
            continue
        try:
            # The stream as it is (replicas, placement an operator set) with our limits merged in.
            await js.update_stream(dataclasses.replace(current, **merged))  # type: ignore[arg-type]
        except BadRequestError as exc:
            get_logger("nats").warning("stream.limits_not_updated", stream=base.name, limits=merged, error=str(exc))


def dumps(value: Any) -> bytes:
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    return json.dumps(to_jsonable_python(value), separators=(",", ":")).encode()


class OutboxRelay:
    """Publishes committed outbox rows to JetStream in commit order, with ``Nats-Msg-Id`` =
    event id, then marks them sent. A crash between commit and publish loses nothing: the rows
    are still unsent at the next start; a crash between publish and mark is absorbed by
    JetStream's de-duplication window. Several replicas may relay at once for the same reason."""

    def __init__(self, db: Database, js: JetStreamContext, poll_interval: float = 1.0, batch: int = 256) -> None:
        self.db = db
        self.js = js
        self.poll_interval = poll_interval
        self.batch = batch
        self.ack_timeout = 10.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.log = get_logger("outbox", service=db.service)
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self.db.service}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - the next start publishes what is left
            self.log.warning("outbox.final_flush_failed", error=str(exc))

    async def _run(self) -> None:
        while True:
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep relaying; NATS or the DB may come back
                self.log.warning("outbox.relay_failed", error=str(exc))
                await asyncio.sleep(self.poll_interval)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def pending(self) -> int:
        async def count() -> int:
            async with self.db.session() as session:
                result = await session.execute(
                    sa.select(sa.func.count()).select_from(self.db.outbox).where(self.db.outbox.c.published_at.is_(None))
                )
                return int(result.scalar_one())

        return int(await self.db.retrying(count))

    async def _publish(self, rows: list[Any]) -> list[Any]:
        """Publish a page of rows at once and wait for JetStream's acks (or fail, leaving the rows
        unsent for the next pass)."""
        futures = []
        try:
            for row in rows:
                headers = {"Nats-Msg-Id": row.event_id}
                if row.trace_context:  # the event continues the trace of the command that emitted it
                    headers[telemetry.TRACEPARENT] = row.trace_context
                futures.append(await self.js.publish_async(row.subject, row.payload.encode(), headers=headers))
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout))
        finally:
            for future in futures:
                future.cancel()  # unanswered (a timeout, a failure): stop waiting for it

    async def flush(self) -> int:
        """Publish every unsent row; returns how many were published."""
        outbox = self.db.outbox
        total = 0
        async def unsent() -> list[Any]:
            async with self.db.sessions() as session:
                return list(
                    (
                        await session.execute(
                            sa.select(
                                outbox.c.seq, outbox.c.event_id, outbox.c.subject, outbox.c.payload, outbox.c.trace_context
                            )
                            .where(outbox.c.published_at.is_(None))
                            .order_by(outbox.c.seq)
                            .limit(self.batch)
                        )
                    ).all()
                )

        while True:
            rows = await self.db.retrying(unsent)
            if not rows:
                return total
            acks = await self._publish(rows)
            async def mark(rows: list[Any] = rows) -> None:
                async with self.db.sessions() as session, session.begin():
                    await session.execute(
                        sa.update(outbox)
                        .where(outbox.c.seq.in_([r.seq for r in rows]))
                        .values(published_at=dt.datetime.now(dt.UTC))
                    )

            await self.db.retrying(mark)
            total += len(rows)
            published = sum(1 for ack in acks if not ack.duplicate)
            self.published += published
            metrics.EVENTS_PUBLISHED.labels(self.db.service).inc(published)
            self.log.debug("outbox.published", count=len(rows))


EventBatchHandler = Callable[[list[Msg]], Awaitable[None]]


def broker_as(identity: str, url: str | Sequence[str], settings: Settings | None = None, **kwargs: Any) -> NatsBroker:
    """A FastStream broker connecting as ``identity`` (its credentials, inbox prefix and TLS)."""
    options = nats_options(identity, settings)
    tls = options.pop("tls", None)
    if tls is not None:
        from faststream.security import BaseSecurity

        options["security"] = BaseSecurity(ssl_context=tls)
    return NatsBroker(nats_servers(url), **options, logger=None, **kwargs)


class _PromptBatchPull(BatchPullStreamSubscriber):
    """FastStream's batch pull subscriber, handing over each fetch as soon as it returns.

    FastStream 0.7's own loop fetches again until the batch is full or ``PullSub.timeout`` has
    passed, so a lone event waited for the rest of the window (0.87 s at ``timeout=1``, measured;
    a short window instead polls the server all day long: 16 ms of CPU a second per consumer at
    50 ms). nats-py's ``fetch`` already returns, in stream order, what the server has at once, up
    to the batch size; the idle consumer waits in one long poll. Everything else (the durable
    consumer, middlewares, tracing, the test broker) is FastStream's."""

    __slots__ = ()

    async def _consume_pull(self) -> None:
        assert self.subscription, "create_subscription first"
        while self.running:
            try:
                messages = await self.subscription.fetch(batch=self.pull_sub.batch_size, timeout=self.pull_sub.timeout)
            except TimeoutError:
                continue
            except Exception as exc:  # noqa: BLE001 - NATS reconnecting; try again
                get_logger("nats").warning("consumer.fetch_failed", subject=self.subject.broker_address, error=str(exc))
                await asyncio.sleep(1)
                continue
            if messages and self.running:
                await self.consume(messages)


async def _raw_batch(msg: Any) -> list[Msg]:
    """The decoder of an event batch: the messages as fetched (each is parsed, acknowledged and
    dead-lettered on its own by the consumer)."""
    return list(msg.raw_message)


def durable_batches(
    broker: NatsBroker,
    subject: str,
    durable: str,
    identity: str,
    *,
    batch: int = 100,
    ack_wait: float = 60,
    max_ack_pending: int = 1000,
    description: str | None = None,
) -> Callable[[EventBatchHandler], Any]:
    """Register a handler of ``subject``'s events on the durable pull consumer ``durable`` of the
    event stream: it gets up to ``batch`` messages at a time, in stream order, and acknowledges
    (or naks) each itself; an unacknowledged message is delivered again after ``ack_wait``."""
    subscriber = broker.subscriber(
        subject,
        stream=JStream(subjects.STREAM, declare=False),  # the streams are ensure_streams' job
        durable=durable,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=-1,
            ack_wait=ack_wait,
            max_ack_pending=max_ack_pending,
        ),
        pull_sub=PullSub(batch_size=batch, timeout=1.0, batch=True),
        ack_policy=FastStreamAck.MANUAL,
        inbox_prefix=f"{authz.inbox_prefix(identity)}.".encode(),
        decoder=_raw_batch,
        title=durable,
        description=description,
    )
    assert type(subscriber) is BatchPullStreamSubscriber, type(subscriber)
    subscriber.__class__ = _PromptBatchPull
    return subscriber


class CommandError(Exception):
    """An ``ok: false`` reply, raised by :meth:`CommandClient.call`."""

    def __init__(self, subject: str, code: str, message: str, details: Any = None) -> None:
        self.subject, self.code, self.message, self.details = subject, code, message, details
        super().__init__(f"{code}: {message}")

    @property
    def retryable(self) -> bool:
        return self.code in (ErrorCode.NOT_READY, ErrorCode.INTERNAL_ERROR, "timeout", "no_responders")


class CommandClient:
    """Sends commands to services over NATS request/reply and reads the envelope.

    With ``resend_after`` (the worker's activities), a command that gets no answer within that
    many seconds is sent again with the same ``request_id`` while the first request keeps
    waiting, and ``no responders`` (the service is down) is asked again every second: a command
    lost in flight when its service was killed costs seconds after the service is back, not the
    whole timeout. The services answer a repeated ``request_id`` once (the first reply), and a copy
    that arrives while the first is still being handled waits for it."""

    def __init__(
        self, nc: NATS, timeout: float = 10.0, resend_after: float | None = None, denials: PermissionDenials | None = None
    ) -> None:
        self.nc = nc
        self.timeout = timeout
        self.resend_after = resend_after
        self.denials = denials

    @classmethod
    async def connect(
        cls, url: str | Sequence[str], timeout: float = 10.0, identity: str = authz.CLI, settings: Settings | None = None, **kwargs: Any
    ) -> CommandClient:
        """Connect as ``identity`` (the operator's ``cli`` unless told otherwise)."""
        denials = PermissionDenials()
        nc = await nats.connect(
            servers=nats_servers(url),
            name=f"bfest-{identity}",
            connect_timeout=3,
            max_reconnect_attempts=3,
            error_cb=denials.on_error,
            **{**nats_options(identity, settings), **kwargs},
        )
        return cls(nc, timeout, denials=denials)

    async def close(self) -> None:
        await self.nc.drain()

    async def request(self, command: Command, timeout: float | None = None, actor: Actor | None = None) -> Reply:
        """Send a command; ``actor`` names the person acting (header ``Bfest-Actor``), which a
        person's command needs."""
        headers = {ACTOR_HEADER: actor.model_dump_json()} if actor is not None else None
        return await self.request_raw(command.subject(), dumps(command), timeout, headers)

    async def request_raw(
        self, subject: str, payload: bytes, timeout: float | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        total = timeout or self.timeout
        headers = telemetry.headers(headers)  # the caller's trace goes on with the command
        if self.resend_after is None or self.resend_after >= total:
            try:
                request = self.nc.request(subject, payload, timeout=total, headers=headers)
                msg = await (self.denials.guard(subject, request) if self.denials else request)
            except PermissionError as exc:
                return Reply.failure("forbidden", str(exc))
            except nats.errors.NoRespondersError:
                return Reply.failure("no_responders", f"no service answers {subject}: is it running?")
            except nats.errors.TimeoutError:
                return Reply.failure("timeout", f"{subject} did not answer within {total:g}s")
            return Reply.model_validate_json(msg.data)
        return await self._request_patiently(subject, payload, total, self.resend_after, headers)

    async def _request_patiently(
        self, subject: str, payload: bytes, total: float, resend_after: float, headers: dict[str, str] | None = None
    ) -> Reply:
        loop = asyncio.get_running_loop()
        end = loop.time() + total
        pending: set[asyncio.Task[Any]] = set()
        next_send, interval = loop.time(), resend_after
        nobody_since: float | None = None  # since when every request found no service
        try:
            while True:
                now = loop.time()
                if nobody_since is not None and not pending and now - nobody_since >= resend_after:
                    # Down before it was asked: the activity's retry (with its backoff) asks again.
                    return Reply.failure("no_responders", f"no service answers {subject}: is it running?")
                if now >= end:
                    return Reply.failure("timeout", f"{subject} did not answer within {total:g}s")
                if now >= next_send:
                    request = self.nc.request(subject, payload, timeout=end - now, headers=headers)
                    pending.add(asyncio.ensure_future(self.denials.guard(subject, request) if self.denials else request))
                    next_send, interval = now + interval, min(interval * 2, 4 * resend_after)
                wait = max(0.0, min(next_send, end) - loop.time())
                if not pending:
                    await asyncio.sleep(wait)
                    continue
                done, pending = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if exc is None:
                        return Reply.model_validate_json(task.result().data)
                    if isinstance(exc, PermissionError):  # refused by the server: no copy helps
                        return Reply.failure("forbidden", str(exc))
                    if isinstance(exc, nats.errors.NoRespondersError):
                        # Down, perhaps with the command it held: ask again in a second.
                        nobody_since = loop.time() if nobody_since is None else nobody_since
                        next_send = min(next_send, loop.time() + 1.0)
                    elif not isinstance(exc, nats.errors.TimeoutError):
                        raise exc
        finally:
            for task in pending:
                task.cancel()

    async def call(self, command: Command, timeout: float | None = None, actor: Actor | None = None) -> Any:
        """Send and return ``data``; raise :class:`CommandError` on ``ok: false``."""
        reply = await self.request(command, timeout, actor)
        if not reply.ok:
            assert reply.error is not None
            raise CommandError(command.subject(), reply.error.code, reply.error.message, reply.error.details)
        return reply.data


class PermissionDenials:
    """Turns the server's asynchronous "Permissions Violation" for a request's subject into a
    prompt failure of that request (instead of a timeout)."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[str]]] = {}

    async def on_error(self, exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" not in text.lower():
            return
        for subject, futures in self._waiting.items():
            if f'"{subject.lower()}"' in text.lower():
                for future in futures:
                    if not future.done():
                        future.set_result(text)

    async def guard(self, subject: str, request: Any) -> Any:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(subject, []).append(future)
        task = asyncio.ensure_future(request)
        try:
            done, _ = await asyncio.wait({task, future}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            raise PermissionError(f"not allowed to send {subject} with this identity ({future.result()})")
        finally:
            futures = self._waiting.get(subject, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(subject, None)


async def connect_jetstream(
    url: str | Sequence[str], name: str, timeout: float = 10.0, identity: str | None = None, settings: Settings | None = None
) -> tuple[NATS, JetStreamContext]:
    """Connect as ``identity`` (reconnecting forever once connected), failing with one clear error
    when no server answers at first or the server refuses the credentials."""
    log = get_logger("nats", client=name)

    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        if "authorization violation" in str(exc).lower():
            refused.append(str(exc))
        log.warning("nats.error", url=url, error=f"{exc.__class__.__name__}: {exc}")

    options = nats_options(identity, settings) if identity else {}
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                servers=nats_servers(url), name=name, max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2, error_cb=on_error, **options
            ),
            timeout,
        )
    except (TimeoutError, OSError, nats.errors.NoServersError) as exc:
        if refused:
            how = "with the seed " + str(options.get("nkeys_seed")) if options.get("nkeys_seed") else "without credentials"
            raise RuntimeError(
                f"NATS at {url} refused {identity or 'this client'} ({how}): give it its identity's "
                "credentials (BFEST_NATS_NKEY_SEED_FILE, BFEST_NATS_CREDS, or var/nats/auth from `bfest dev up`)"
            ) from None
        raise RuntimeError(f"NATS is not reachable at {url} ({exc.__class__.__name__})") from None
    except nats.errors.Error as exc:
        raise RuntimeError(f"NATS at {url} refused {identity or 'this client'}: {exc}") from None
    js = nc.jetstream()
    await ensure_streams(js, settings, manage=identity in (None, authz.CLI))
    return nc, js


__all__ = [
    "broker_as",
    "durable_batches",
    "CommandClient",
    "CommandError",
    "OutboxRelay",
    "connect_jetstream",
    "dumps",
    "ensure_streams",
    "NotFoundError",
]
