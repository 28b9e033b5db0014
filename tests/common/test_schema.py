"""A database made by an earlier version is brought up to date at start: new tables and new
nullable columns are added, and existing rows keep their data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.db import Database


def _metadata(*extra: sa.Column) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("sch_item", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)), *extra)
    return metadata


async def test_new_nullable_columns_are_added_and_rows_kept(database_url):
    old = Database(database_url, _metadata(), "registration")
    await old.create_all()
    async with old.sessions() as session, session.begin():
        await session.execute(sa.text("INSERT INTO sch_item (id, name) VALUES (1, 'kept')"))
    await old.dispose()

    new = Database(database_url, _metadata(sa.Column("unscored", sa.Integer, nullable=True)), "registration")
    await new.create_all()
    await new.create_all()  # idempotent
    async with new.sessions() as session, session.begin():
        row = (await session.execute(sa.text("SELECT id, name, unscored FROM sch_item"))).one()
        await session.execute(sa.text("UPDATE sch_item SET unscored = 3"))
    assert tuple(row) == (1, "kept", None)
    await new.dispose()


async def test_a_new_not_null_column_without_default_is_refused_by_name(database_url):
    old = Database(database_url, _metadata(), "registration")
    await old.create_all()
    await old.dispose()
    new = Database(database_url, _metadata(sa.Column("must", sa.Integer, nullable=False)), "registration")
    with pytest.raises(RuntimeError, match="sch_item.must .*needs a migration"):
        await new.create_all()
    await new.dispose()


async def test_a_time_written_in_any_zone_reads_back_as_the_same_instant_in_wib(database_url):
    import datetime as dt

    from services.common.db import UtcDateTime

    metadata = sa.MetaData()
    table = sa.Table("sch_when", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", UtcDateTime()))
    db = Database(database_url, metadata, "registration")
    await db.create_all()
    written = dt.datetime(2026, 4, 30, 5, 0, tzinfo=dt.UTC)
    async with db.sessions() as session, session.begin():
        await session.execute(sa.insert(table).values(id=1, at=written))
        read = (await session.execute(sa.select(table.c.at))).scalar_one()
    await db.dispose()
    assert read == written and read.isoformat() == "2026-04-30T12:00:00+07:00"
