"""Idempotency: a command's first reply is kept (``<service>_commands``, keyed by ``request_id``)
and given again to a retry; a ``request_id`` reused with another payload is a conflict; a copy
that arrives while the first is still being handled waits for the first's reply."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.base import Command, ErrorCode, Query, Reply
from services.common.db import Database
from services.common.errors import DomainError
from services.common.runtime.replies import refusal


def payload_hash(cmd: Command) -> str:
    data = cmd.model_dump(mode="json", exclude={"request_id"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def conflict(request_id: str, name: str) -> DomainError:
    return DomainError(
        ErrorCode.CONFLICT,
        f"request_id {request_id!r} was already used for a different {name} command",
        {"request_id": request_id},
    )


def command_row(cmd: Command, digest: str, reply: Reply, at: dt.datetime) -> dict[str, Any]:
    """The first reply to a request, as kept in ``<service>_commands``."""
    return {
        "request_id": cmd.request_id,
        "command": cmd.NAME,
        "payload_hash": digest,
        "reply": reply.model_dump_json(),
        "ok": reply.ok,
        "created_at": at,
    }


class CommandLog:
    """The first replies of one service, and the commands it is handling right now."""

    def __init__(self) -> None:
        # Commands being handled, by (name, request_id, payload): a copy the caller sent again
        # (it heard nothing yet) waits for the first one's reply instead of doing the work again.
        self._serving: dict[tuple[str, str, str], asyncio.Future[Reply]] = {}

    async def first_reply(self, db: Database, session: AsyncSession, cmd: Command, digest: str) -> Reply | None:
        """The reply given to this request before, or ``None``; a conflict if its payload differed."""
        table = db.commands
        row = (
            await session.execute(
                sa.select(table.c.reply, table.c.payload_hash).where(
                    table.c.request_id == cmd.request_id, table.c.command == cmd.NAME
                )
            )
        ).first()
        if row is None:
            return None
        if row.payload_hash != digest:
            raise conflict(cmd.request_id, cmd.NAME)
        return Reply.model_validate_json(row.reply)

    async def stored(self, db: Database, session: AsyncSession, name: str, ids: Iterable[str]) -> dict[str, Any]:
        """The kept replies of several requests of one command (a batch), by request id."""
        table = db.commands
        rows = await session.execute(
            sa.select(table.c.request_id, table.c.reply, table.c.payload_hash).where(
                table.c.command == name, table.c.request_id.in_(sorted(set(ids)))
            )
        )
        return {row.request_id: row for row in rows}

    async def remember(self, session: AsyncSession, db: Database, rows: list[dict[str, Any]]) -> None:
        if rows:
            await session.execute(sa.insert(db.commands), rows)

    async def remember_failure(self, db: Database | None, cmd: Command, exc: DomainError, at: dt.datetime) -> None:
        """A refused command's first answer is kept too, so its retry answers the same."""
        if (
            isinstance(cmd, Query)
            or db is None
            or exc.code == ErrorCode.CONFLICT
            and "request_id" in (exc.details or {})
        ):
            return
        try:
            async with db.sessions() as session, session.begin():
                await session.execute(
                    sa.insert(db.commands).values(command_row(cmd, payload_hash(cmd), refusal(exc), at))
                )
        except IntegrityError:
            pass

    async def once(self, cmd: Command, work: Callable[[], Awaitable[Reply]]) -> Reply:
        """Handle a command that changes state; a copy the caller sent again (it heard nothing
        yet) while the first is being handled waits for the first's reply instead of doing the
        work again. Keyed by name, request id and payload, so a reused id with another payload
        still gets its conflict from the database."""
        key = (cmd.NAME, cmd.request_id, payload_hash(cmd))
        first = self._serving.get(key)
        if first is not None:
            return await asyncio.shield(first)
        self._serving[key] = handled = asyncio.get_running_loop().create_future()
        try:
            reply = await work()
            handled.set_result(reply)
            return reply
        finally:
            del self._serving[key]
            if not handled.done():
                handled.cancel()
