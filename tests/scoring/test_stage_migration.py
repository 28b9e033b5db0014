"""Revision scoring_0004 carries a stage's cancellation, removed proposals and first shortlist out
of ``config`` into their own columns, on SQLite and on PostgreSQL, and back on a downgrade."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from services.common import migrations
from services.common.migrations import upgrade

OPENED = {"criteria": [], "jurors_per_proposal": 2, "advance": 3, "group_proportions": None, "divergence_threshold": 3.0, "seed": 1}
ROWS = [  # (stage, state, what config carried)
    ("desk", "cancelled", {}),  # open, its cycle cancelled
    ("final", "closed", {"cancelled": True, "removed": ["P3"], "initial_shortlist": ["P1", "P3"]}),
    ("expo", "final", {"removed": [], "initial_shortlist": ["P1"]}),
    ("gala", "open", {}),
]


async def _sql(url: str, statement: str, params: list[dict] | None = None) -> list[tuple]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(statement), params or {})
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_a_stage_keeps_its_cancellation_and_shortlists_in_columns_after_the_upgrade(database_url):
    await upgrade("scoring", database_url, "scoring_0003")
    await _sql(
        database_url,
        "INSERT INTO sco_stage (cycle_year, stage, state, config, proposals, deadline, fully_scored_sent) "
        "VALUES (2031, :stage, :state, :config, '[]', '2031-06-01 00:00:00+00:00', false)",
        [{"stage": s, "state": state, "config": json.dumps({**OPENED, **extra})} for s, state, extra in ROWS],
    )
    await upgrade("scoring", database_url)
    got = {
        r[0]: (r[1], bool(r[2]), _j(r[3]), _j(r[4]), _j(r[5]))
        for r in await _sql(database_url, "SELECT stage, state, cancelled, removed, initial_shortlist, config FROM sco_stage")
    }
    assert got == {
        "desk": ("open", True, None, None, OPENED),
        "final": ("closed", True, ["P3"], ["P1", "P3"], OPENED),
        "expo": ("final", False, [], ["P1"], OPENED),
        "gala": ("open", False, None, None, OPENED),
    }

    def down(conn: sa.Connection) -> None:
        config = migrations.alembic_config("scoring", conn)
        command.downgrade(config, "scoring_0003")

    engine = migrations.migration_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(down)
    finally:
        await engine.dispose()
    back = {r[0]: (r[1], _j(r[2])) for r in await _sql(database_url, "SELECT stage, state, config FROM sco_stage")}
    assert back == {s: (state, {**OPENED, **extra}) for s, state, extra in ROWS}


def _j(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
