"""Schema migrations (Alembic, one history per service), on SQLite and on PostgreSQL:

- ``upgrade head`` on an empty database gives exactly the tables, columns, keys and indexes the
  code's metadata creates (so a model change without its revision fails here);
- a database made by the release before migrations (commit 7812526, whose later columns were
  added at start) is brought to the same schema, its rows kept;
- a service refuses to start on a schema older than its code, in one line naming the command;
- two replicas (and their migration jobs) starting together on a fresh database both come up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import subjects
from services.common import migrations
from services.common.db import runtime_tables
from services.common.migrations import SchemaBehind, upgrade
from services.common.settings import Settings
from tests.support import eventually, postgres_database, request, running

LEGACY = Path(__file__).parent / "data" / "release-7812526"
POSTGRES = os.environ.get("BFEST_TEST_POSTGRES_URL")
BFEST = str(Path(sys.executable).parent / "bfest")


def code_metadata(service: str) -> sa.MetaData:
    metadata = importlib.import_module(f"services.{service}.store").Base.metadata
    runtime_tables(metadata, service)
    return metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dialect(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not POSTGRES:
        pytest.skip("BFEST_TEST_POSTGRES_URL is not set (CI sets it to the local PostgreSQL)")
    return str(request.param)


@contextlib.asynccontextmanager
async def fresh(dialect: str, tmp_path: Path, name: str) -> AsyncIterator[str]:
    if dialect == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / name}.db"
    else:
        async with postgres_database() as url:
            yield url


async def run_sync(url: str, fn: Any, *args: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn, *args)
    finally:
        await engine.dispose()


def unordered(tables: dict[str, Any]) -> dict[str, Any]:
    """The schema without the order of columns (an added column comes last) or SQLite's DDL text
    (ALTER TABLE keeps its own)."""
    return {name: {**t, "columns": sorted(t["columns"])} for name, t in tables.items() if name != "sqlite_master"}


def _ddl(sql: str | None) -> str | None:
    if sql is None:
        return None
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s*([(),])\s*", r"\1", sql).strip()


def snapshot(conn: sa.Connection, service: str) -> dict[str, Any]:
    """Everything the schema is made of, as the database reports it."""
    inspector = sa.inspect(conn)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        if name == migrations.version_table(service):
            continue
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")), c.get("autoincrement"))
                for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(name)),
            "unique": sorted((u["name"] or "", tuple(u["column_names"])) for u in inspector.get_unique_constraints(name)),
            "foreign_keys": sorted(str(f) for f in inspector.get_foreign_keys(name)),
        }
    if conn.dialect.name == "sqlite":  # the statements SQLite keeps, whitespace aside (ALTER TABLE's own)
        rows = conn.execute(sa.text("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '%alembic_version%' ORDER BY name"))
        tables["sqlite_master"] = [(kind, name, _ddl(sql)) for kind, name, sql in rows]
    return tables


@pytest.mark.parametrize("service", subjects.SERVICES)
async def test_upgrade_head_gives_exactly_the_schema_of_the_code(service, dialect, tmp_path):
    async with fresh(dialect, tmp_path, "migrated") as migrated, fresh(dialect, tmp_path, "created") as created:
        result = await upgrade(service, migrated)
        assert result.before == () and result.after == migrations.heads(service)
        await run_sync(created, code_metadata(service).create_all)
        want = await run_sync(created, snapshot, service)
        got = await run_sync(migrated, snapshot, service)
        assert set(got) == set(want)
        for table in want:
            assert got[table] == want[table], table
        again = await upgrade(service, migrated)
        assert not again.changed and "up to date" in again.line()


def _legacy_sql(dialect: str, service: str) -> list[str]:
    text = (LEGACY / ("sqlite" if dialect == "sqlite" else "postgresql") / f"{service}.sql").read_text()
    return [s.strip() for s in text.split(";") if s.strip()]


async def _make_legacy(url: str, dialect: str, service: str) -> None:
    def build(conn: sa.Connection) -> None:
        for statement in _legacy_sql(dialect, service):
            conn.exec_driver_sql(statement)

    await run_sync(url, build)


async def test_a_database_of_the_release_before_migrations_is_upgraded_with_its_rows(dialect, tmp_path):
    async with fresh(dialect, tmp_path, "old") as old, fresh(dialect, tmp_path, "new") as new:
        await _make_legacy(old, dialect, "awards")
        await run_sync(
            old,
            lambda c: c.exec_driver_sql(
                "INSERT INTO awd_certificate (code, cycle_year, award_key, award_name, recipient, path, issued_at) "
                "VALUES ('BF26-OLD', 2026, 'top', 'TOP 10', 'UPT X', 'x.pdf', '2026-11-20 03:00:00+00:00')"
            ),
        )
        # The release before migrations: the service refuses to start and says what to run.
        with pytest.raises(SchemaBehind, match=r"made by a release before migrations .*`bfest db upgrade --service awards`"):
            engine = create_async_engine(old)
            try:
                await migrations.require_current(engine, "awards")
            finally:
                await engine.dispose()

        result = await upgrade("awards", old)
        assert result.before == () and result.after == migrations.heads("awards")
        await run_sync(new, code_metadata("awards").create_all)
        got, want = await run_sync(old, snapshot, "awards"), await run_sync(new, snapshot, "awards")
        assert unordered(got) == unordered(want)
        row = await run_sync(old, lambda c: c.exec_driver_sql("SELECT code, recipient, signature FROM awd_certificate").one())
        assert tuple(row) == ("BF26-OLD", "UPT X", None)
        engine = create_async_engine(old)
        try:
            await migrations.require_current(engine, "awards")  # the service now starts on it
        finally:
            await engine.dispose()


@pytest.mark.parametrize("service", ["registration", "verification", "scoring"])
async def test_every_service_of_the_release_before_migrations_upgrades_to_the_code(service, dialect, tmp_path):
    async with fresh(dialect, tmp_path, "old") as old, fresh(dialect, tmp_path, "new") as new:
        await _make_legacy(old, dialect, service)
        await upgrade(service, old)
        await run_sync(new, code_metadata(service).create_all)
        got, want = await run_sync(old, snapshot, service), await run_sync(new, snapshot, service)
        assert unordered(got) == unordered(want)


async def test_a_service_refuses_a_schema_older_than_its_code_in_one_line(tmp_path, monkeypatch):
    from services.registration.app import create_app

    url = f"sqlite+aiosqlite:///{tmp_path}/registration.db"
    app = create_app(Settings(var_dir=tmp_path))
    with pytest.raises(SchemaBehind) as refused:
        await app.start(nats_url="nats://127.0.0.1:1", database_url=url)
    message = str(refused.value)
    assert "\n" not in message and "has no schema yet" in message and "run `bfest db upgrade --service registration`" in message

    # As the operator sees it: one line, exit code 1, before anything else happens.
    env = {**os.environ, "BFEST_VAR_DIR": str(tmp_path), "BFEST_REGISTRATION_DATABASE_URL": url, "BFEST_NATS_URL": "nats://127.0.0.1:1", "COLUMNS": "300"}
    out = await asyncio.to_thread(subprocess.run, [BFEST, "service", "run", "registration"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "registration could not start" in lines[0] and "bfest db upgrade --service registration" in lines[0], out.stderr

    # A later revision: a database at the earlier head is older than the code.
    await upgrade("registration", url)
    [head] = migrations.heads("registration")
    versions = tmp_path / "versions"
    shutil.copytree(migrations.script_folder("registration"), versions)
    (versions / "9999_call_note.py").write_text(
        '"""a note on the call"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "registration_next"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    with op.batch_alter_table("reg_call") as batch:\n'
        '        batch.add_column(sa.Column("note", sa.String(), nullable=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    with op.batch_alter_table("reg_call") as batch:\n'
        '        batch.drop_column("note")\n'
    )
    monkeypatch.setattr(migrations, "script_folder", lambda service: versions)
    engine = create_async_engine(url)
    try:
        with pytest.raises(SchemaBehind, match=rf"is at revision {head}, older than this code \(registration_next\): run `bfest db upgrade --service registration`"):
            await migrations.require_current(engine, "registration")
        result = await upgrade("registration", url)
        assert result.line().startswith(f"registration: upgraded {head} → registration_next")
        await migrations.require_current(engine, "registration")
        # …and the code of the release before accepts the newer schema (a rolling upgrade).
        monkeypatch.undo()
        await migrations.require_current(engine, "registration")
    finally:
        await engine.dispose()


async def test_two_replicas_starting_together_on_a_fresh_database_both_come_up(dialect, nats_url, nc, tmp_path):
    """Each replica's migration job runs at the same moment (an init container per replica), then
    both replicas start at once: no create_all race, both serve."""
    from services.scoring.app import create_app

    async with fresh(dialect, tmp_path, "scoring") as url:
        first, second = await asyncio.gather(upgrade("scoring", url), upgrade("scoring", url))
        assert sorted([first.changed, second.changed]) == [False, True]
        apps = [create_app(Settings(var_dir=tmp_path)), create_app(Settings(var_dir=tmp_path))]
        await asyncio.gather(*(app.start(nats_url=nats_url, database_url=url) for app in apps))
        try:
            for _ in range(4):
                assert (await request(nc, "bfest.scoring.cmd.health", b"{}"))["ok"]
        finally:
            await asyncio.gather(*(app.stop() for app in apps))


async def test_bfest_db_upgrade_migrates_every_service_or_one(tmp_path):
    env = {**os.environ, "BFEST_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "300"}
    for name in subjects.SERVICES:
        env.pop(f"BFEST_{name.upper()}_DATABASE_URL", None)

    def bfest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BFEST, "db", "upgrade", *args], capture_output=True, text=True, env=env, timeout=60)

    first = await asyncio.to_thread(bfest)
    assert first.returncode == 0, first.stderr
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == [*subjects.SERVICES, "portal"]
    [scoring_head] = migrations.heads("scoring")
    assert f"scoring: upgraded none → {scoring_head}" in first.stdout
    again = await asyncio.to_thread(bfest, "--service", "awards")
    [awards_head] = migrations.heads("awards")
    assert again.returncode == 0 and again.stdout.startswith(f"awards: at {awards_head}, up to date"), again.stdout
    unknown = await asyncio.to_thread(bfest, "--service", "payroll")
    assert unknown.returncode == 1 and unknown.stderr.strip().splitlines() == [
        "error: unknown service 'payroll'; choose one of: registration, verification, scoring, awards, portal"
    ]


async def test_running_in_tests_migrates_like_the_cli(nats_url, tmp_path):
    """tests.support.running() runs the upgrade itself, so a test starts a real service as deploy does."""
    from services.awards.app import create_app

    url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
    async with running(create_app(Settings(var_dir=tmp_path, results_dir=tmp_path / "r")), nats_url, url):
        pass
    engine = create_async_engine(url)
    try:
        await migrations.require_current(engine, "awards")
    finally:
        await engine.dispose()


def start(script: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(["sh", "-c", script], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_two_replica_processes_each_migrating_first_both_come_up(dialect, nats_url, tmp_path):
    """The deploy shape: each replica runs `bfest db upgrade` then `bfest service run` (an init
    container and its service), both at once, on a fresh database."""
    import signal

    async with fresh(dialect, tmp_path, "scoring") as url:
        env = {
            **os.environ,
            "BFEST_NATS_URL": nats_url,
            "BFEST_VAR_DIR": str(tmp_path),
            "BFEST_SCORING_DATABASE_URL": url,
            "BFEST_LOG_JSON": "1",
        }
        script = f"{BFEST} db upgrade --service scoring && exec {BFEST} service run scoring"
        logs = [tmp_path / f"replica-{i}.log" for i in (1, 2)]
        procs = [start(script, env, log) for log in logs]
        try:
            await eventually(lambda: all("service.started" in log.read_text() or p.poll() is not None for log, p in zip(logs, procs, strict=True)), timeout=90)
            assert [p.poll() for p in procs] == [None, None], [log.read_text()[-2000:] for log in logs]
            [head] = migrations.heads("scoring")
            upgraded = [(f"upgraded none → {head}" in log.read_text()) for log in logs]
            assert sorted(upgraded) == [False, True]  # one migrated, the other found it current
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                await asyncio.to_thread(p.wait, 30)
