"""How a stored time reads back, on every database (the schema itself comes from migrations:
tests/common/test_migrations.py)."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.db import Database


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
