"""Registration's tables (its own database) and the queries its handlers need."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import JSON, Column, Field

from services.common.db import UtcDateTime, make_base
from services.common.runtime import UnitOfWork

Base = make_base("registration")


class ParticipantRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "reg_participant"
    code: str = Field(primary_key=True, max_length=64)
    name: str
    kind: str = Field(max_length=16)
    parent_code: str | None = Field(default=None, index=True, max_length=64)
    active: bool = True


class CallRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "reg_call"
    cycle_year: int = Field(primary_key=True)
    state: str = "open"
    opens_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    closes_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    quota_per_agency: int = 3
    next_seq: int = 1
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    summary: dict | None = Field(default=None, sa_column=Column(JSON))


class ProposalRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "reg_proposal"
    __table_args__ = (sa.Index("ix_reg_proposal_agency", "cycle_year", "agency_code", "status"),)
    id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    unit_code: str = Field(index=True, max_length=64)
    agency_code: str = Field(max_length=64)
    title_key: str
    group: str = Field(max_length=16)
    content: dict = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16)
    was_forwarded: bool = False
    submitted_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    forwarded_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    returned_reason: str | None = None
    updated_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class QuotaRow(Base, table=True):  # type: ignore[call-arg]
    """One row per (cycle, agency): locked while a forward or withdrawal changes ``used``, so the
    quota holds exactly under concurrent forwards from any number of replicas."""

    __tablename__ = "reg_quota"
    cycle_year: int = Field(primary_key=True)
    agency_code: str = Field(primary_key=True, max_length=64)
    used: int = 0


CALLS = CallRow.__table__  # type: ignore[attr-defined]
PARTICIPANTS = ParticipantRow.__table__  # type: ignore[attr-defined]
PROPOSALS = ProposalRow.__table__  # type: ignore[attr-defined]
QUOTAS = QuotaRow.__table__  # type: ignore[attr-defined]


async def locked(uow: UnitOfWork, model: Any, *where: Any) -> Any:
    """The first ``model`` row matching ``where``, locked until commit."""
    return (await uow.session.execute(uow.db.for_update(sa.select(model).where(*where)))).scalars().first()


def proposals_for_update(uow: UnitOfWork, ids: list[str]) -> Any:
    return uow.db.for_update(sa.select(PROPOSALS).where(PROPOSALS.c.id.in_(ids)).order_by(PROPOSALS.c.id))


async def lock_quotas(uow: UnitOfWork, keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """The agencies' ``used`` counts, their rows created if missing and locked until commit (in key
    order, so concurrent batches on several replicas cannot deadlock each other)."""
    if not keys:
        return {}
    insert = sqlite_insert if uow.db.is_sqlite else pg_insert
    await uow.session.execute(
        insert(QUOTAS).on_conflict_do_nothing(),
        [{"cycle_year": y, "agency_code": a, "used": 0} for y, a in keys],
    )
    stmt = uow.db.for_update(
        sa.select(QUOTAS.c.cycle_year, QUOTAS.c.agency_code, QUOTAS.c.used)
        .where(sa.tuple_(QUOTAS.c.cycle_year, QUOTAS.c.agency_code).in_(keys))
        .order_by(QUOTAS.c.cycle_year, QUOTAS.c.agency_code),
    )
    return {(r.cycle_year, r.agency_code): r.used for r in await uow.session.execute(stmt)}


async def save_quotas(uow: UnitOfWork, used: dict[tuple[int, str], int]) -> None:
    if used:
        await uow.session.execute(
            sa.update(QUOTAS).where(
                QUOTAS.c.cycle_year == sa.bindparam("y"), QUOTAS.c.agency_code == sa.bindparam("a")
            ),
            [{"y": y, "a": a, "used": n} for (y, a), n in used.items()],
        )
