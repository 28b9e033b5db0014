"""One async database per service (SQLModel/SQLAlchemy): SQLite file by default, PostgreSQL by URL.

Every service gets, beside its own tables, three of the runtime's: ``<service>_outbox`` (events
committed with the state change, relayed to JetStream), ``<service>_inbox`` (event ids already
consumed) and ``<service>_commands`` (the first reply to each ``request_id``).

Transactions: on SQLite a service keeps one connection whose calls run inline on the event loop
(:class:`InlineSQLiteConnection`), every transaction starts with ``BEGIN IMMEDIATE`` so it never
has to upgrade a read lock, and a lock held by another process comes back at once as "database is
locked"; on PostgreSQL a service uses row locks (``SELECT … FOR UPDATE``) where a rule spans rows.
:meth:`Database.retrying` retries the whole unit, with an asynchronous backoff, on a lock held
elsewhere, a deadlock or a serialisation failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

CYCLE_ZONE = ZoneInfo("Asia/Jakarta")
"""The zone every date of the cycle is read in (DESIGN §2), whatever zone a client wrote it in."""


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware datetime on every database: stored in UTC, read back aware in the
    cycle's zone, Asia/Jakarta (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time carries its zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value).astimezone(CYCLE_ZONE)


def make_base(service: str) -> type[SQLModel]:
    """A SQLModel base class with its own metadata, so each service creates only its own tables
    even when several services share one process (tests) or one PostgreSQL database."""

    reg = registry()
    base = type(f"{service.title()}Table", (SQLModel,), {"__module__": __name__}, registry=reg)
    return base


def runtime_tables(metadata: sa.MetaData, service: str) -> tuple[sa.Table, sa.Table, sa.Table]:
    names = (f"{service}_outbox", f"{service}_inbox", f"{service}_commands")
    if all(n in metadata.tables for n in names):
        return metadata.tables[names[0]], metadata.tables[names[1]], metadata.tables[names[2]]
    outbox = sa.Table(
        f"{service}_outbox",
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True, index=True),
        # W3C traceparent of the span that emitted the event (issue 25): the relay's publish
        # continues that trace. Nullable; added to an older outbox by each service's revision 0002.
        sa.Column("trace_context", sa.String(128), nullable=True),
    )
    inbox = sa.Table(
        f"{service}_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
    )
    commands = sa.Table(
        f"{service}_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("command", sa.String(100), primary_key=True),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    return outbox, inbox, commands


class _InlineQueue:
    """Stands in for aiosqlite's queue to its worker thread: runs the call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineSQLiteConnection(aiosqlite.Connection):
    """aiosqlite's connection with each call run on the event loop's thread instead of handed to
    a worker thread and back.

    A statement on a local SQLite file takes microseconds; the two thread hops aiosqlite makes
    per call (cursor, execute, fetch, close: ~4 per statement) cost far more, and they let the
    loop interleave transactions that then queue on SQLite's lock with its sleeping busy
    handler. Inline, a transaction that awaits only the database runs without yielding, and the
    service's single pooled connection (``pool_size=1``) serialises the rest in FIFO order."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _InlineQueue()  # type: ignore[assignment]

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineSQLiteConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _inline_sqlite_creator(url: str, busy_timeout: float) -> Callable[[], Any]:
    database = sa.engine.make_url(url).database or ":memory:"

    async def creator() -> InlineSQLiteConnection:
        connector = partial(sqlite3.connect, database, timeout=busy_timeout, check_same_thread=False)
        connection: InlineSQLiteConnection = await InlineSQLiteConnection(connector)
        return connection

    return creator


_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}


def is_transient(exc: BaseException) -> bool:
    """A lock timeout, deadlock or serialisation failure: the whole unit may simply be retried."""
    if isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        return True
    if isinstance(exc, DBAPIError):
        orig = getattr(exc, "orig", None)
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code in _RETRYABLE_SQLSTATES:
            return True
        text = str(exc).lower()
        return "deadlock" in text or "could not serialize" in text
    return False


class Database:
    def __init__(self, url: str, metadata: sa.MetaData, service: str) -> None:
        self.url = url
        self.service = service
        self.metadata = metadata
        self.outbox, self.inbox, self.commands = runtime_tables(metadata, service)
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            # One connection, used inline (see InlineSQLiteConnection). SQLite's busy handler
            # would block the event loop while another connection (another replica on the same
            # file) holds the lock, so it is off: "database is locked" comes back at once and
            # :meth:`retrying` waits asynchronously instead.
            kwargs.update(async_creator=_inline_sqlite_creator(url, 0.0), pool_size=1, max_overflow=0, pool_timeout=120)
        else:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            self._sqlite_setup(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)

    @staticmethod
    def _sqlite_setup(engine: AsyncEngine) -> None:
        # pysqlite's own transaction handling defers BEGIN; take it over so writers start with
        # BEGIN IMMEDIATE (the recipe from SQLAlchemy's SQLite dialect documentation).
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    async def create_all(self) -> None:
        """Create the tables of a metadata that has no migration history (a test's own tables).
        A service's tables come from its migrations (``bfest db upgrade``, see
        :mod:`services.common.migrations`)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    def for_share(self, stmt: Any) -> Any:
        """``stmt … FOR SHARE`` on PostgreSQL: its rows cannot change until commit (another
        transaction's ``FOR UPDATE`` waits), while other sharers go on; SQLite serialises anyway."""
        return stmt if self.is_sqlite else stmt.with_for_update(read=True)

    def for_update(self, stmt: Any) -> Any:
        """``stmt … FOR UPDATE`` on PostgreSQL (its rows locked until commit); SQLite's write
        transaction already serialises, and has no such clause."""
        return stmt if self.is_sqlite else stmt.with_for_update()

    async def retrying(self, unit: Any, attempts: int = 40) -> Any:
        """Run ``await unit()`` again on a transient database failure (a lock held by another
        replica, a deadlock, a serialisation failure), backing off up to 0.5 s (~15 s in all)."""
        for attempt in range(attempts):
            try:
                return await unit()
            except DBAPIError as exc:
                if not is_transient(exc) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(min(0.5, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    async def ping(self) -> str:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            return "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised: this is a health check
            return f"error: {exc.__class__.__name__}"

    async def dispose(self) -> None:
        await self.engine.dispose()
