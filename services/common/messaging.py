"""NATS plumbing shared by services, the worker and the CLI: the JetStream streams, the outbox
relay, and :class:`CommandClient` (request/reply with the envelope)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import nats
import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from contracts import subjects
from contracts.base import ACTOR_HEADER, Actor, Command, ErrorCode, Reply
from services.common import authz
from services.common.credentials import nats_options
from services.common.db import Database
from services.common.logging import get_logger
from services.common.settings import Settings

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


async def ensure_streams(js: JetStreamContext, manage: bool = False) -> None:
    """Create the streams if they are missing. Safe to call from every replica. With ``manage``
    (the operator's identity, the only one allowed to change a stream) an existing stream's
    configuration is brought up to date too."""
    for config in (EVENTS_STREAM, DLQ_STREAM):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:
                pass  # another replica created it meanwhile
            continue
        if manage:
            try:
                await js.update_stream(config)
            except BadRequestError:
                pass  # an operator tuned it (replicas, limits): keep theirs


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
                futures.append(
                    await self.js.publish_async(
                        row.subject, row.payload.encode(), headers={"Nats-Msg-Id": row.event_id}
                    )
                )
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
                            sa.select(outbox.c.seq, outbox.c.event_id, outbox.c.subject, outbox.c.payload)
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
            self.published += sum(1 for ack in acks if not ack.duplicate)
            self.log.debug("outbox.published", count=len(rows))


class CommandError(Exception):
    """An ``ok: false`` reply, raised by :meth:`CommandClient.call`."""

    def __init__(self, subject: str, code: str, message: str, details: Any = None) -> None:
        self.subject, self.code, self.message, self.details = subject, code, message, details
        super().__init__(f"{code}: {message}")

    @property
    def retryable(self) -> bool:
        return self.code in (ErrorCode.NOT_READY, ErrorCode.INTERNAL_ERROR, "timeout", "no_responders")


class CommandClient:
    """Sends commands to services over NATS request/reply and reads the envelope."""

    def __init__(self, nc: NATS, timeout: float = 10.0, denials: PermissionDenials | None = None) -> None:
        self.nc = nc
        self.timeout = timeout
        self.denials = denials

    @classmethod
    async def connect(
        cls, url: str, timeout: float = 10.0, identity: str = authz.CLI, settings: Settings | None = None, **kwargs: Any
    ) -> CommandClient:
        """Connect as ``identity`` (the operator's ``cli`` unless told otherwise)."""
        denials = PermissionDenials()
        nc = await nats.connect(
            url,
            name=f"bfest-{identity}",
            connect_timeout=3,
            max_reconnect_attempts=3,
            error_cb=denials.on_error,
            **{**nats_options(identity, settings), **kwargs},
        )
        return cls(nc, timeout, denials)

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
        try:
            request = self.nc.request(subject, payload, timeout=timeout or self.timeout, headers=headers)
            msg = await (self.denials.guard(subject, request) if self.denials else request)
        except PermissionError as exc:
            return Reply.failure("forbidden", str(exc))
        except nats.errors.NoRespondersError:
            return Reply.failure("no_responders", f"no service answers {subject}: is it running?")
        except nats.errors.TimeoutError:
            return Reply.failure("timeout", f"{subject} did not answer within {timeout or self.timeout:g}s")
        return Reply.model_validate_json(msg.data)

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
    url: str, name: str, timeout: float = 10.0, identity: str | None = None, settings: Settings | None = None
) -> tuple[NATS, JetStreamContext]:
    """Connect as ``identity`` (reconnecting forever once connected), failing with one clear error
    when no server answers at first or the server refuses the credentials."""
    log = get_logger("nats", client=name)

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", url=url, error=f"{exc.__class__.__name__}: {exc}")

    options = nats_options(identity, settings) if identity else {}
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2, error_cb=on_error, **options
            ),
            timeout,
        )
    except (TimeoutError, OSError, nats.errors.NoServersError) as exc:
        raise RuntimeError(f"NATS is not reachable at {url} ({exc.__class__.__name__})") from None
    except nats.errors.Error as exc:
        raise RuntimeError(f"NATS at {url} refused {identity or 'this client'}: {exc}") from None
    js = nc.jetstream()
    await ensure_streams(js, manage=identity == authz.CLI)
    return nc, js


__all__ = [
    "CommandClient",
    "CommandError",
    "OutboxRelay",
    "connect_jetstream",
    "dumps",
    "ensure_streams",
    "NotFoundError",
]
