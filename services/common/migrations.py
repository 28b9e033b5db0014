"""Schema migrations (Alembic): one history per service, run once before the service starts.

Each service's revisions live in ``services/<service>/migrations/`` (shipped as package data, so an
installed package can migrate); they share one Alembic environment, ``migration_env/`` here. A
service's database records its revision in its own table, ``<service>_alembic_version``, so
services that share one PostgreSQL database keep their histories apart.

- ``bfest db upgrade [--service NAME]`` (:func:`upgrade`) brings a database to its service's head,
  all in one transaction. On PostgreSQL the transaction first takes an advisory lock named after
  the service, so replicas (or their init jobs) that migrate at the same moment run one after the
  other: the second finds the schema at head and does nothing. On SQLite ``BEGIN IMMEDIATE`` does
  the same.
- A service only checks (:func:`require_current`): on a schema older than its code it refuses to
  start, naming the command to run; it never changes its schema itself.
- A database made by a release before migrations (its tables created at start, later columns
  added by the start that followed) has tables and no revision: the first revision, the baseline,
  creates what is missing and adds the columns and indexes it lacks (:func:`create_or_adopt`), so
  one upgrade brings it to the same schema as a fresh one.

A new revision: change the service's ``store.py``, then
``python -m services.common.migrations revision NAME "what changes"`` writes
``services/NAME/migrations/<nnnn>_<slug>.py`` with what Alembic's autogenerate finds between the
code and a scratch database at head (read and correct it, as always with autogenerate);
``tests/common/test_migrations.py`` then checks that ``upgrade head`` gives exactly the schema of
the code on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from contracts import subjects
from services.common.logging import get_logger

ENVIRONMENT = Path(__file__).with_name("migration_env")
DATABASES: tuple[str, ...] = (*subjects.SERVICES, "portal")
"""Every database with a migration history: the four services' and the portal's."""
SERVICES_DIR = Path(__file__).resolve().parent.parent

log = get_logger("migrations")


class SchemaBehind(RuntimeError):
    """The database's schema is older than the code: run ``bfest db upgrade``."""


def script_folder(service: str) -> Path:
    """Where a service's revisions live: ``services/<service>/migrations``."""
    return SERVICES_DIR / service / "migrations"


def version_table(service: str) -> str:
    return f"{service}_alembic_version"


def alembic_config(service: str, connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for one service, without an ini file."""
    folder = script_folder(service)
    if not folder.is_dir():
        raise ValueError(f"{service} has no migration history ({folder} is missing)")
    cfg = Config()
    cfg.set_main_option("script_location", str(ENVIRONMENT))
    cfg.set_main_option("version_locations", str(folder))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["service"] = service
    cfg.attributes["connection"] = connection
    return cfg


def heads(service: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(service)).get_heads())


def configure_environment(context: EnvironmentContext) -> None:
    """What ``migration_env/env.py`` does: run the migrations on the connection the caller holds
    (:func:`upgrade` opens it inside its transaction and lock)."""
    cfg = context.config
    connection = cfg.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `bfest db upgrade` (it opens the database from the settings)")
    context.configure(
        connection=connection,
        target_metadata=cfg.attributes.get("target_metadata"),
        version_table=version_table(cfg.attributes["service"]),
        render_as_batch=True,  # SQLite alters a table by copying it: autogenerate writes batch ops
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes plain SQLAlchemy types, so a revision never imports the code it froze."""
    from sqlmodel.sql.sqltypes import AutoString

    from services.common.db import UtcDateTime

    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String({obj.length})" if obj.length else "sa.String()"
    return False


# ---------------------------------------------------------------------------------- engines


def _lock_key(service: str) -> int:
    """A stable 64-bit advisory lock key per service (PostgreSQL's ``pg_advisory_xact_lock``)."""
    return int.from_bytes(hashlib.sha256(f"bfest-migrate:{service}".encode()).digest()[:8], "big", signed=True)


def migration_engine(url: str, busy_timeout: float = 60.0) -> AsyncEngine:
    """An engine for one migration run. On SQLite every transaction starts with ``BEGIN IMMEDIATE``
    (the whole upgrade is one transaction, DDL included, and a second upgrader waits for it)."""
    if not url.startswith("sqlite"):
        return create_async_engine(url, poolclass=NullPool)
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# ---------------------------------------------------------------------------------- reading


def current_revisions(connection: sa.Connection, service: str) -> tuple[str, ...]:
    context = MigrationContext.configure(connection, opts={"version_table": version_table(service)})
    return tuple(context.get_current_heads())


def _describe(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) if revisions else "none"


def schema_problem(connection: sa.Connection, service: str) -> str | None:
    """Why this database cannot serve this code (None when it can). A schema newer than the code
    (a revision this code does not know: a later release migrated it) is accepted, so replicas of
    the previous release keep running through a rolling upgrade; migrations add before they take away."""
    script = ScriptDirectory.from_config(alembic_config(service))
    head = tuple(script.get_heads())
    current = current_revisions(connection, service)
    if set(current) == set(head):
        return None
    command_line = f"`bfest db upgrade --service {service}`"
    if not current:
        made_before = f"{service}_outbox" in sa.inspect(connection).get_table_names()  # every release had it
        what = "was made by a release before migrations" if made_before else "has no schema yet"
        return f"the {service} database {what} (this code needs revision {_describe(head)}): run {command_line}"
    known = {rev.revision for rev in script.walk_revisions()}
    if not set(current) <= known:
        return None  # newer than this code
    return (
        f"the {service} database is at revision {_describe(current)}, older than this code "
        f"({_describe(head)}): run {command_line}"
    )


async def require_current(engine: AsyncEngine, service: str) -> None:
    """Raise :class:`SchemaBehind` (one line naming the command to run) unless the database is at
    this code's head, or newer."""
    async with engine.connect() as conn:
        problem = await conn.run_sync(schema_problem, service)
        await conn.rollback()
    if problem:
        raise SchemaBehind(problem)
    log.debug("schema.current", service=service)


# ---------------------------------------------------------------------------------- upgrading


@dataclass(frozen=True)
class Upgrade:
    service: str
    database: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def line(self) -> str:
        if not self.changed:
            return f"{self.service}: at {_describe(self.after)}, up to date ({self.database})"
        return f"{self.service}: upgraded {_describe(self.before)} → {_describe(self.after)} ({self.database})"


def _upgrade_sync(connection: sa.Connection, service: str, target: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    before = current_revisions(connection, service)
    command.upgrade(alembic_config(service, connection), target)
    return before, current_revisions(connection, service)


async def upgrade_connection(conn: AsyncConnection, service: str, target: str = "heads") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Upgrade inside the caller's transaction, after taking the service's migration lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(service)})
    return await conn.run_sync(_upgrade_sync, service, target)


async def upgrade(service: str, url: str, target: str = "heads") -> Upgrade:
    """Bring ``service``'s database at ``url`` to ``target`` (its head), in one transaction; safe
    to run from several processes at once."""
    engine = migration_engine(url)
    try:
        async with engine.begin() as conn:
            before, after = await upgrade_connection(conn, service, target)
    finally:
        await engine.dispose()
    result = Upgrade(service, sa.engine.make_url(url).render_as_string(hide_password=True), before, after)
    log.info("schema.upgraded" if result.changed else "schema.current", service=service, before=list(before), after=list(after))
    return result


# ---------------------------------------------------------------------------------- baseline


def create_or_adopt(bind: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """The baseline revision's upgrade: create ``metadata``'s tables; on a database made before
    migrations (some tables already there), create only what is missing and add the columns and
    indexes an existing table lacks (they were all added nullable). Returns what it added to
    existing tables."""
    from alembic import op

    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    added: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"{table.name}.{column.name} is missing and NOT NULL without a default: cannot adopt this database")
            op.add_column(table.name, column._copy())
            added.append(f"{table.name}.{column.name}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)
                added.append(f"index {index.name}")
    if added:
        log.info("schema.adopted", tables=sorted(existing & set(metadata.tables)), added=added)
    return added


# ---------------------------------------------------------------------------------- new revisions


def new_revision(service: str, message: str) -> Path:
    """Write the service's next revision with what Alembic's autogenerate finds between the code's
    tables and a scratch SQLite database at head (a starting point: read and correct it)."""
    import asyncio
    import importlib
    import tempfile

    from services.common.db import runtime_tables

    metadata = importlib.import_module(f"services.{service}.store").Base.metadata
    runtime_tables(metadata, service)
    folder = script_folder(service)
    number = 1 + max((int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*.py")), default=0)
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(upgrade(service, f"sqlite+aiosqlite:///{scratch}/head.db"))
        engine = sa.create_engine(f"sqlite:///{scratch}/head.db")
        with engine.begin() as conn:
            cfg = alembic_config(service, conn)
            cfg.attributes["target_metadata"] = metadata
            cfg.set_main_option("file_template", f"{number:04d}_%%(slug)s")
            script = command.revision(cfg, message=message, autogenerate=True, rev_id=f"{service}_{number:04d}")
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m services.common.migrations")
    sub = parser.add_subparsers(dest="verb", required=True)
    revision = sub.add_parser("revision", help="write a service's next revision (autogenerate)")
    revision.add_argument("service")
    revision.add_argument("message")
    args = parser.parse_args(argv)
    print(new_revision(args.service, args.message))


if __name__ == "__main__":
    main()
