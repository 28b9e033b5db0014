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

from contracts.base import AdminDecision, Competition, EvaluationKind, Event
from contracts.verification import (
    AdminRules,
    EvaluationClosedSummary,
    EvaluationView,
    Reasoned,
    VerificationClosedSummary,
    WbkResult,
)
from services.common.db import UtcDateTime, make_base
from services.common.runtime import UnitOfWork
from services.verification.domain import (
    Decision,
    Evaluation,
    EvaluationRound,
    RoundState,
    RunState,
    Snapshot,
    Verification,
    WbkEvaluation,
)

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
    track: str = Field(default="kovablik", sa_column=Column(sa.String(16), nullable=False, server_default="kovablik"))


class RunRow(Base, table=True):
    __tablename__ = "ver_run"
    cycle_year: int = Field(primary_key=True)
    state: str = "open"  # open | completed | closed | cancelled (its cycle was; open again when the year starts again)
    deadline: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    call_closed_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    rules: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    track: str = Field(default="kovablik", sa_column=Column(sa.String(16), primary_key=True, server_default="kovablik"))


class DecisionRow(Base, table=True):
    __tablename__ = "ver_decision"
    proposal_id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    automatic: str
    reasons: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    final: str | None = None  # None while a human review is pending
    overrides: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    track: str = Field(default="kovablik", sa_column=Column(sa.String(16), nullable=False, server_default="kovablik"))


class RoundRow(Base, table=True):
    __tablename__ = "ver_eval_round"
    cycle_year: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    rubric: str = Field(max_length=64)
    deadline: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    evaluators: list[str] | None = Field(default=None, sa_column=Column(JSON))
    reviewers: list[str] | None = Field(default=None, sa_column=Column(JSON))
    state: str = "open"  # open | closed
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class EvaluationRow(Base, table=True):
    __tablename__ = "ver_evaluation"
    cycle_year: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    subject_code: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)  # entered | approved | returned
    view: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


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
    async def get(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> Verification | None: ...
    async def for_year(self, cycle_year: int) -> list[Verification]: ...
    async def save(self, run: Verification) -> None: ...


class Decisions(Protocol):
    async def get(self, proposal_id: str) -> Decision | None: ...
    async def for_year(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[Decision]: ...
    async def add_all(self, decisions: Sequence[Decision]) -> None: ...
    async def save(self, *decisions: Decision) -> None: ...
    async def tally(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[tuple[str | None, str, int]]:
        """How many decisions per (final, automatic) pair, counted by the database."""
        ...

    async def pending_ids(self, cycle_year: int, limit: int, track: Competition = Competition.KOVABLIK) -> list[str]: ...


class Copies(Protocol):
    async def remember(self, cycle_year: int, snapshot: dict[str, Any], forwarded: bool) -> None: ...
    async def forwarded(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[tuple[str, Snapshot]]: ...
    async def snapshots(self, ids: Iterable[str]) -> dict[str, Snapshot]: ...


class WbkResults(Protocol):
    async def get(self, cycle_year: int, unit_code: str) -> WbkEvaluation | None: ...
    async def for_year(self, cycle_year: int) -> list[WbkEvaluation]: ...
    async def save(self, evaluation: WbkEvaluation) -> None: ...


class Rounds(Protocol):
    async def get(self, cycle_year: int, kind: EvaluationKind) -> EvaluationRound | None: ...
    async def save(self, found: EvaluationRound) -> None: ...


class Evaluations(Protocol):
    async def get(self, cycle_year: int, kind: EvaluationKind, subject_code: str) -> Evaluation | None: ...
    async def for_round(self, cycle_year: int, kind: EvaluationKind) -> list[Evaluation]: ...
    async def page(self, cycle_year: int, kind: EvaluationKind, state: str | None, offset: int, limit: int) -> tuple[list[Evaluation], int]:
        """One page by subject code, and how many there are in all."""
        ...

    async def tally(self, cycle_year: int, kind: EvaluationKind) -> dict[str, int]:
        """How many sheets per state, counted by the database."""
        ...

    async def save(self, *evaluations: Evaluation) -> None: ...


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
    def rounds(self) -> Rounds: ...
    @property
    def evaluations(self) -> Evaluations: ...
    @property
    def now(self) -> dt.datetime: ...
    def emit(self, *events: Event) -> None: ...


# --------------------------------------------------------------------------- the SQL repositories

IN_CHUNK = 500
"""Ids per ``IN (...)`` list: well under every database's limit on bound parameters."""


class SqlRuns:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[tuple[int, str], RunRow] = {}

    async def _row(self, key: tuple[int, str]) -> RunRow | None:
        row = self._rows.get(key) or await self.session.get(RunRow, key)
        if row is not None:
            self._rows[key] = row
        return row

    @staticmethod
    def _run(row: RunRow) -> Verification:
        return Verification(
            cycle_year=row.cycle_year,
            deadline=row.deadline,
            call_closed_at=row.call_closed_at,
            rules=AdminRules.model_validate(row.rules),
            state=RunState(row.state),
            summary=None if row.summary is None else VerificationClosedSummary.model_validate(row.summary),
            track=Competition(row.track),
        )

    async def get(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> Verification | None:
        row = await self._row((cycle_year, track.value))
        return None if row is None else self._run(row)

    async def for_year(self, cycle_year: int) -> list[Verification]:
        rows = (await self.session.execute(sa.select(RunRow).where(col(RunRow.cycle_year) == cycle_year))).scalars().all()
        self._rows.update(((r.cycle_year, r.track), r) for r in rows)
        return [self._run(r) for r in rows]

    async def save(self, run: Verification) -> None:
        key = (run.cycle_year, run.track.value)
        row = await self._row(key)
        if row is None:
            rules = run.rules.model_dump(mode="json")
            row = RunRow(cycle_year=run.cycle_year, track=run.track.value, deadline=run.deadline, call_closed_at=run.call_closed_at, rules=rules)
            self.session.add(row)
            self._rows[key] = row
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
        track=Competition(row.track),
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

    async def for_year(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[Decision]:
        query = sa.select(DecisionRow).where(col(DecisionRow.cycle_year) == cycle_year, col(DecisionRow.track) == track.value)
        rows = (await self.session.execute(query)).scalars().all()
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
            "track": d.track.value,
        }

    async def save(self, *decisions: Decision) -> None:
        for d in decisions:
            row = self._rows[d.proposal_id]
            row.final = None if d.final is None else d.final.value
            row.overrides = list(d.overrides)

    async def tally(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[tuple[str | None, str, int]]:
        await self.session.flush()
        final, automatic = col(DecisionRow.final), col(DecisionRow.automatic)
        where = (col(DecisionRow.cycle_year) == cycle_year, col(DecisionRow.track) == track.value)
        query = sa.select(final, automatic, sa.func.count()).where(*where).group_by(final, automatic)
        return [(f, a, n) for f, a, n in (await self.session.execute(query)).all()]

    async def pending_ids(self, cycle_year: int, limit: int, track: Competition = Competition.KOVABLIK) -> list[str]:
        pid = col(DecisionRow.proposal_id)
        where = (col(DecisionRow.cycle_year) == cycle_year, col(DecisionRow.track) == track.value, col(DecisionRow.final).is_(None))
        query = sa.select(pid).where(*where).order_by(pid).limit(limit)
        return list((await self.session.execute(query)).scalars())


class SqlCopies:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, cycle_year: int, snapshot: dict[str, Any], forwarded: bool) -> None:
        row = await self.session.get(ProposalCopy, snapshot["id"])
        track = snapshot.get("track") or Competition.KOVABLIK.value
        if row is None:
            self.session.add(ProposalCopy(id=snapshot["id"], cycle_year=cycle_year, forwarded=forwarded, snapshot=snapshot, track=track))
        else:
            row.forwarded, row.snapshot, row.track = forwarded, snapshot, track

    async def forwarded(self, cycle_year: int, track: Competition = Competition.KOVABLIK) -> list[tuple[str, Snapshot]]:
        query = sa.select(col(ProposalCopy.id), col(ProposalCopy.snapshot)).where(
            col(ProposalCopy.cycle_year) == cycle_year, col(ProposalCopy.track) == track.value, col(ProposalCopy.forwarded)
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


class SqlRounds:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[tuple[int, str], RoundRow] = {}

    async def get(self, cycle_year: int, kind: EvaluationKind) -> EvaluationRound | None:
        key = (cycle_year, kind.value)
        row = self._rows.get(key) or await self.session.get(RoundRow, key)
        if row is None:
            return None
        self._rows[key] = row
        return EvaluationRound(
            cycle_year=row.cycle_year,
            kind=EvaluationKind(row.kind),
            rubric=row.rubric,
            deadline=row.deadline,
            evaluators=row.evaluators,
            reviewers=row.reviewers,
            state=RoundState(row.state),
            summary=None if row.summary is None else EvaluationClosedSummary.model_validate(row.summary),
        )

    async def save(self, found: EvaluationRound) -> None:
        key = (found.cycle_year, found.kind.value)
        row = self._rows.get(key) or await self.session.get(RoundRow, key)
        if row is None:
            row = RoundRow(cycle_year=found.cycle_year, kind=found.kind.value, rubric=found.rubric, deadline=found.deadline)
            self.session.add(row)
            self._rows[key] = row
        row.rubric, row.deadline, row.evaluators, row.reviewers = found.rubric, found.deadline, found.evaluators, found.reviewers
        row.state = found.state.value
        row.summary = None if found.summary is None else found.summary.model_dump(mode="json")


class SqlEvaluations:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, cycle_year: int, kind: EvaluationKind, subject_code: str) -> Evaluation | None:
        row = await self.session.get(EvaluationRow, (cycle_year, kind.value, subject_code))
        return None if row is None else Evaluation(EvaluationView.model_validate(row.view))

    def _where(self, cycle_year: int, kind: EvaluationKind) -> tuple[Any, ...]:
        return (col(EvaluationRow.cycle_year) == cycle_year, col(EvaluationRow.kind) == kind.value)

    async def for_round(self, cycle_year: int, kind: EvaluationKind) -> list[Evaluation]:
        query = sa.select(col(EvaluationRow.view)).where(*self._where(cycle_year, kind)).order_by(col(EvaluationRow.subject_code))
        return [Evaluation(EvaluationView.model_validate(v)) for v in (await self.session.execute(query)).scalars()]

    async def page(self, cycle_year: int, kind: EvaluationKind, state: str | None, offset: int, limit: int) -> tuple[list[Evaluation], int]:
        where = [*self._where(cycle_year, kind), *([col(EvaluationRow.state) == state] if state else [])]
        total = (await self.session.execute(sa.select(sa.func.count()).select_from(EvaluationRow).where(*where))).scalar_one()
        query = sa.select(col(EvaluationRow.view)).where(*where).order_by(col(EvaluationRow.subject_code)).offset(offset).limit(limit)
        return [Evaluation(EvaluationView.model_validate(v)) for v in (await self.session.execute(query)).scalars()], int(total)

    async def tally(self, cycle_year: int, kind: EvaluationKind) -> dict[str, int]:
        await self.session.flush()
        state = col(EvaluationRow.state)
        query = sa.select(state, sa.func.count()).where(*self._where(cycle_year, kind)).group_by(state)
        return {s: int(n) for s, n in (await self.session.execute(query)).all()}

    async def save(self, *evaluations: Evaluation) -> None:
        for e in evaluations:
            v = e.view
            row = await self.session.get(EvaluationRow, (v.cycle_year, v.kind.value, v.subject_code))
            if row is None:
                row = EvaluationRow(cycle_year=v.cycle_year, kind=v.kind.value, subject_code=v.subject_code, state=v.state, view={})
                self.session.add(row)
            row.state, row.view = v.state, v.model_dump(mode="json")


class SqlUnit:
    """The repositories of one unit of work (its session), its clock and its outbox."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.runs = SqlRuns(uow.session)
        self.decisions = SqlDecisions(uow.session)
        self.copies = SqlCopies(uow.session)
        self.wbk = SqlWbkResults(uow.session)
        self.rounds = SqlRounds(uow.session)
        self.evaluations = SqlEvaluations(uow.session)

    @property
    def now(self) -> dt.datetime:
        return self._uow.now

    def emit(self, *events: Event) -> None:
        for event in events:
            self._uow.emit(event)
