"""Verification's storage: its tables (its own copy of the forwarded proposals, from
registration's events; the run per cycle; decisions with their overrides; WBK results) and the
repositories that load and save the domain's aggregates in them, with the bulk reads and writes a
national run needs. ``SqlUnit`` gives a handler the repositories of one unit of work; a test may
hand it a fake with the same attributes (``VerificationUnit``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import JSON, Column, Field, col

from contracts.base import AdminDecision, Event
from contracts.verification import AdminRules, Reasoned, VerificationClosedSummary, WbkResult
from services.common.db import UtcDateTime, make_base
from services.common.runtime import UnitOfWork
from services.verification.domain import Decision, RunState, Snapshot, Verification, WbkEvaluation

if TYPE_CHECKING:  # what make_base builds: a SQLModel base with the service's own metadata
    from sqlmodel import SQLModel

    class Base(SQLModel): ...

else:
    Base = make_base("verification")


class ProposalCopy(Base, table=True):
    __tablename__ = "ver_proposal"
    id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    forwarded: bool = True
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class RunRow(Base, table=True):
    __tablename__ = "ver_run"
    cycle_year: int = Field(primary_key=True)
    state: str = "open"  # open | completed | closed | cancelled (its cycle was; open again when the year starts again)
    deadline: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    call_closed_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class DecisionRow(Base, table=True):
    __tablename__ = "ver_decision"
    proposal_id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    automatic: str
    reasons: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    final: str | None = None  # None while a human review is pending
    overrides: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class WbkRow(Base, table=True):
    __tablename__ = "ver_wbk"
    cycle_year: int = Field(primary_key=True)
    unit_code: str = Field(primary_key=True, max_length=64)
    unit_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    overrides: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


# --------------------------------------------------------------------------- what a handler sees


class Runs(Protocol):
    async def get(self, cycle_year: int) -> Verification | None: ...
    async def save(self, run: Verification) -> None: ...


class Decisions(Protocol):
    async def get(self, proposal_id: str) -> Decision | None: ...
    async def for_year(self, cycle_year: int) -> list[Decision]: ...
    async def add_all(self, decisions: Sequence[Decision]) -> None: ...
    async def save(self, *decisions: Decision) -> None: ...
    async def tally(self, cycle_year: int) -> list[tuple[str | None, str, int]]:
        """How many decisions per (final, automatic) pair, counted by the database."""
        ...

    async def pending_ids(self, cycle_year: int, limit: int) -> list[str]: ...


class Copies(Protocol):
    async def remember(self, cycle_year: int, snapshot: dict[str, Any], forwarded: bool) -> None: ...
    async def forwarded(self, cycle_year: int) -> list[tuple[str, Snapshot]]: ...
    async def snapshots(self, ids: Iterable[str]) -> dict[str, Snapshot]: ...


class WbkResults(Protocol):
    async def get(self, cycle_year: int, unit_code: str) -> WbkEvaluation | None: ...
    async def for_year(self, cycle_year: int) -> list[WbkEvaluation]: ...
    async def save(self, evaluation: WbkEvaluation) -> None: ...


class VerificationUnit(Protocol):
    """A unit of work as verification's handlers use it: its repositories, its clock, and
    ``emit`` for the events that commit with it."""

    @property
    def runs(self) -> Runs: ...
    @property
    def decisions(self) -> Decisions: ...
    @property
    def copies(self) -> Copies: ...
    @property
    def wbk(self) -> WbkResults: ...
    @property
    def now(self) -> dt.datetime: ...
    def emit(self, *events: Event) -> None: ...


# --------------------------------------------------------------------------- the SQL repositories

IN_CHUNK = 500
"""Ids per ``IN (...)`` list: well under every database's limit on bound parameters."""


class SqlRuns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[int, RunRow] = {}

    async def _row(self, cycle_year: int) -> RunRow | None:
        row = self._rows.get(cycle_year) or await self.session.get(RunRow, cycle_year)
        if row is not None:
            self._rows[cycle_year] = row
        return row

    async def get(self, cycle_year: int) -> Verification | None:
        row = await self._row(cycle_year)
        if row is None:
            return None
        return Verification(
            cycle_year=row.cycle_year,
            deadline=row.deadline,
            call_closed_at=row.call_closed_at,
            rules=AdminRules.model_validate(row.rules),
            state=RunState(row.state),
            summary=None if row.summary is None else VerificationClosedSummary.model_validate(row.summary),
        )

    async def save(self, run: Verification) -> None:
        row = await self._row(run.cycle_year)
        if row is None:
            rules = run.rules.model_dump(mode="json")
            row = RunRow(cycle_year=run.cycle_year, deadline=run.deadline, call_closed_at=run.call_closed_at, rules=rules)
            self.session.add(row)
            self._rows[run.cycle_year] = row
        row.state = run.state.value
        row.summary = None if run.summary is None else run.summary.model_dump(mode="json")


def _decision(row: DecisionRow) -> Decision:
    return Decision(
        proposal_id=row.proposal_id,
        cycle_year=row.cycle_year,
        automatic=AdminDecision(row.automatic),
        reasons=[Reasoned.model_validate(r) for r in row.reasons],
        final=None if row.final is None else AdminDecision(row.final),
        overrides=list(row.overrides),
    )


class SqlDecisions:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[str, DecisionRow] = {}

    async def get(self, proposal_id: str) -> Decision | None:
        row = await self.session.get(DecisionRow, proposal_id)
        if row is None:
            return None
        self._rows[proposal_id] = row
        return _decision(row)

    async def for_year(self, cycle_year: int) -> list[Decision]:
        rows = (await self.session.execute(sa.select(DecisionRow).where(col(DecisionRow.cycle_year) == cycle_year))).scalars().all()
        self._rows.update((r.proposal_id, r) for r in rows)
        return [_decision(r) for r in rows]

    async def add_all(self, decisions: Sequence[Decision]) -> None:
        # Thousands of rows: one bulk insert, not the ORM's one object at a time.
        if decisions:
            await self.session.execute(sa.insert(DecisionRow), [self._values(d) for d in decisions])

    @staticmethod
    def _values(d: Decision) -> dict[str, Any]:
        return {
            "proposal_id": d.proposal_id,
            "cycle_year": d.cycle_year,
            "automatic": d.automatic.value,
            "reasons": [r.model_dump() for r in d.reasons],
            "final": None if d.final is None else d.final.value,
            "overrides": list(d.overrides),
        }

    async def save(self, *decisions: Decision) -> None:
        for d in decisions:
            row = self._rows[d.proposal_id]
            row.final = None if d.final is None else d.final.value
            row.overrides = list(d.overrides)

    async def tally(self, cycle_year: int) -> list[tuple[str | None, str, int]]:
        await self.session.flush()
        final, automatic = col(DecisionRow.final), col(DecisionRow.automatic)
        query = sa.select(final, automatic, sa.func.count()).where(col(DecisionRow.cycle_year) == cycle_year).group_by(final, automatic)
        return [(f, a, n) for f, a, n in (await self.session.execute(query)).all()]

    async def pending_ids(self, cycle_year: int, limit: int) -> list[str]:
        pid = col(DecisionRow.proposal_id)
        query = sa.select(pid).where(col(DecisionRow.cycle_year) == cycle_year, col(DecisionRow.final).is_(None)).order_by(pid).limit(limit)
        return list((await self.session.execute(query)).scalars())


class SqlCopies:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, cycle_year: int, snapshot: dict[str, Any], forwarded: bool) -> None:
        row = await self.session.get(ProposalCopy, snapshot["id"])
        if row is None:
            self.session.add(ProposalCopy(id=snapshot["id"], cycle_year=cycle_year, forwarded=forwarded, snapshot=snapshot))
        else:
            row.forwarded, row.snapshot = forwarded, snapshot

    async def forwarded(self, cycle_year: int) -> list[tuple[str, Snapshot]]:
        query = sa.select(col(ProposalCopy.id), col(ProposalCopy.snapshot)).where(
            col(ProposalCopy.cycle_year) == cycle_year, col(ProposalCopy.forwarded)
        )
        return [(pid, snapshot) for pid, snapshot in (await self.session.execute(query)).all()]

    async def snapshots(self, ids: Iterable[str]) -> dict[str, Snapshot]:
        wanted, out = list(ids), {}
        for i in range(0, len(wanted), IN_CHUNK):
            query = sa.select(col(ProposalCopy.id), col(ProposalCopy.snapshot)).where(col(ProposalCopy.id).in_(wanted[i : i + IN_CHUNK]))
            out.update({pid: snapshot for pid, snapshot in (await self.session.execute(query)).all()})
        return out


class SqlWbkResults:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[tuple[int, str], WbkRow] = {}

    async def _row(self, key: tuple[int, str]) -> WbkRow | None:
        row = self._rows.get(key) or await self.session.get(WbkRow, key)
        if row is not None:
            self._rows[key] = row
        return row

    @staticmethod
    def _evaluation(row: WbkRow) -> WbkEvaluation:
        return WbkEvaluation(
            cycle_year=row.cycle_year,
            unit_code=row.unit_code,
            result=WbkResult.model_validate(row.result),
            unit_name=row.unit_name,
            agency_code=row.agency_code,
            agency_name=row.agency_name,
            overrides=list(row.overrides),
        )

    async def get(self, cycle_year: int, unit_code: str) -> WbkEvaluation | None:
        row = await self._row((cycle_year, unit_code))
        return None if row is None else self._evaluation(row)

    async def for_year(self, cycle_year: int) -> list[WbkEvaluation]:
        rows = (await self.session.execute(sa.select(WbkRow).where(col(WbkRow.cycle_year) == cycle_year))).scalars().all()
        return [self._evaluation(r) for r in rows]

    async def save(self, evaluation: WbkEvaluation) -> None:
        e = evaluation
        row = await self._row((e.cycle_year, e.unit_code))
        if row is None:
            row = WbkRow(cycle_year=e.cycle_year, unit_code=e.unit_code, result={})
            self.session.add(row)
            self._rows[(e.cycle_year, e.unit_code)] = row
        row.result, row.overrides = e.result.model_dump(mode="json"), list(e.overrides)
        row.unit_name, row.agency_code, row.agency_name = e.unit_name, e.agency_code, e.agency_name


class SqlUnit:
    """The repositories of one unit of work (its session), its clock and its outbox."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.runs = SqlRuns(uow.session)
        self.decisions = SqlDecisions(uow.session)
        self.copies = SqlCopies(uow.session)
        self.wbk = SqlWbkResults(uow.session)

    @property
    def now(self) -> dt.datetime:
        return self._uow.now

    def emit(self, *events: Event) -> None:
        for event in events:
            self._uow.emit(event)
