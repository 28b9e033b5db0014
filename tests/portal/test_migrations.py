"""The portal's schema migrations (Alembic, its own history like each service's), on SQLite and
PostgreSQL: ``upgrade head`` gives exactly the schema of the code; a database the portal made at
start before migrations (``create_all``) is brought to head with its accounts kept; the portal
refuses to start on a schema older than its code, in one line naming the command."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
import sqlalchemy as sa

from services.common import migrations
from services.common.db import runtime_tables
from services.common.migrations import SchemaBehind, upgrade
from services.common.settings import Settings
from services.portal.app import create_app
from services.portal.config import PortalSettings
from services.portal.store import Base
from tests.common.test_migrations import dialect, fresh, run_sync, snapshot, unordered  # noqa: F401 - the fixture

baseline = importlib.import_module("services.portal.migrations.0001_baseline")


def code_metadata() -> sa.MetaData:
    """The tables the portal's code makes: its own and the runtime's (its Database adds them)."""
    runtime_tables(Base.metadata, "portal")
    return Base.metadata


async def test_upgrade_head_gives_exactly_the_schema_of_the_code(dialect, tmp_path):  # noqa: F811
    async with fresh(dialect, tmp_path, "migrated") as migrated, fresh(dialect, tmp_path, "created") as created:
        result = await upgrade("portal", migrated)
        assert result.before == () and result.after == migrations.heads("portal") == ("portal_0002",)
        await run_sync(created, code_metadata().create_all)
        want = await run_sync(created, snapshot, "portal")
        got = await run_sync(migrated, snapshot, "portal")
        assert set(got) == set(want)
        for table in want:
            assert got[table] == want[table], table
        again = await upgrade("portal", migrated)
        assert not again.changed and "up to date" in again.line()


async def test_a_portal_database_made_before_migrations_is_upgraded_with_its_accounts(dialect, tmp_path):  # noqa: F811
    async with fresh(dialect, tmp_path, "legacy") as legacy, fresh(dialect, tmp_path, "created") as created:
        old = sa.MetaData()
        baseline.schema(old)  # the tables the portal created at start before migrations

        def made_then(conn: sa.Connection) -> None:
            old.create_all(conn)
            conn.execute(
                old.tables["por_account"].insert(),
                [{"login": "J01", "role": "juror", "subject_id": "J01", "display_name": "Juri", "password_hash": "x", "active": True, "created_at": dt.datetime.now(dt.UTC)}],
            )

        await run_sync(legacy, made_then)
        problem = await run_sync(legacy, migrations.schema_problem, "portal")
        assert problem and "was made by a release before migrations" in problem and "bfest db upgrade --service portal" in problem
        result = await upgrade("portal", legacy)
        assert result.before == () and result.after == ("portal_0002",)
        await run_sync(created, code_metadata().create_all)
        got, want = await run_sync(legacy, snapshot, "portal"), await run_sync(created, snapshot, "portal")
        assert unordered(got) == unordered(want)
        rows = await run_sync(legacy, lambda c: c.execute(sa.text("SELECT login, oidc_id FROM por_account")).all())
        assert [tuple(r) for r in rows] == [("J01", None)]


async def test_the_portal_refuses_a_schema_older_than_its_code(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    await upgrade("portal", url, target="portal_0001")
    app = create_app(Settings(var_dir=tmp_path), PortalSettings(secret="s" * 40), nats_url="nats://127.0.0.1:1", database_url=url)  # type: ignore[arg-type]
    with pytest.raises(SchemaBehind) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert str(refused.value) == (
        "the portal database is at revision portal_0001, older than this code (portal_0002): run `bfest db upgrade --service portal`"
    )
