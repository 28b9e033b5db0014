"""Migration registration_0003: a database of the release before the tracks keeps its call, quota
and proposals, all KOVABLIK's, and the service's queries run on them (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.migrations import heads, upgrade

ROWS = [
    "INSERT INTO reg_call (cycle_year, state, opens_at, closes_at, quota_per_agency, next_seq) "
    "VALUES (2026, 'open', '2026-03-01 01:00:00+00:00', '2026-04-30 05:00:00+00:00', 3, 2)",
    "INSERT INTO reg_quota (cycle_year, agency_code, used) VALUES (2026, 'KAB-MALANG', 1)",
    "INSERT INTO reg_proposal (id, cycle_year, unit_code, agency_code, title_key, \"group\", content, status, was_forwarded, updated_at) "
    "VALUES ('P2026-00001', 2026, 'KAB-MALANG-U01', 'KAB-MALANG', 'antrian', 'umum', '{}', 'forwarded', true, '2026-03-02 01:00:00+00:00')",
]


async def _run(url: str, *statements: str) -> list[list[tuple]]:
    engine = create_async_engine(url)
    out = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(sa.text(statement))
                out.append([tuple(r) for r in result] if result.returns_rows else [])
    finally:
        await engine.dispose()
    return out


async def test_existing_rows_become_kovablik_s(database_url):
    await upgrade("registration", database_url, "registration_0002")
    await _run(database_url, *ROWS)
    result = await upgrade("registration", database_url)
    assert (result.before, result.after) == (("registration_0002",), heads("registration"))
    calls, quotas, proposals = await _run(
        database_url,
        "SELECT cycle_year, track, next_seq, quota_per_agency FROM reg_call",
        "SELECT cycle_year, track, agency_code, used FROM reg_quota",
        "SELECT id, track, group_code FROM reg_proposal",
    )
    assert calls == [(2026, "kovablik", 2, 3)]
    assert quotas == [(2026, "kovablik", "KAB-MALANG", 1)]
    assert proposals == [("P2026-00001", "kovablik", None)]
    # KBK's call of the same year fits beside it now.
    await _run(
        database_url,
        "INSERT INTO reg_call (cycle_year, track, state, opens_at, closes_at, quota_per_agency, next_seq) "
        "VALUES (2026, 'kbk', 'open', '2026-03-01 01:00:00+00:00', '2026-04-30 05:00:00+00:00', 1, 1)",
    )
