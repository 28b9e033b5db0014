"""Scoring's repositories over the runtime's unit of work: they load the aggregates a command
needs (with the bulk reads and row locks the batch of scores needs) and save what changed.
``ScoringUnit`` bundles them with the clock and ``emit``; a handler sees nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer

from contracts.base import Event, ObjectionDecision
from contracts.scoring import Juror
from services.common.runtime import UnitOfWork
from services.scoring.domain import (
    Changes,
    JurorInfo,
    Objection,
    Score,
    ScoreEntry,
    Stage,
    StageConfig,
    StageState,
    unknown_stage,
)
from services.scoring.store import (
    AssignmentRow,
    Base,
    CounterRow,
    DeclaredConflictRow,
    EntrantsRow,
    JurorRow,
    ObjectionRow,
    ProposalCopy,
    ScoreRow,
    StageRow,
)

# The tables' columns as SQL expressions (the model classes' attributes are typed as their values).
_TABLES = Base.metadata.tables
ASSIGNMENT, SCORE, STAGE = _TABLES["sco_assignment"].c, _TABLES["sco_score"].c, _TABLES["sco_stage"].c
JUROR, CONFLICT, COPY, OBJECTION = _TABLES["sco_juror"].c, _TABLES["sco_declared_conflict"].c, _TABLES["sco_proposal"].c, _TABLES["sco_objection"].c
_YEAR: sa.BindParameter[int] = sa.bindparam("y")
_STAGE: sa.BindParameter[str] = sa.bindparam("st")
_PIDS: sa.BindParameter[list[str]] = sa.bindparam("ps", expanding=True)
# The statements every batch of scores runs, built once (building an expression costs more than running it).
ASSIGNED_TO = sa.select(ASSIGNMENT.proposal_id, ASSIGNMENT.juror_id, ASSIGNMENT.extra).where(ASSIGNMENT.cycle_year == _YEAR, ASSIGNMENT.stage == _STAGE, ASSIGNMENT.proposal_id.in_(_PIDS))
LATEST_SCORES = sa.select(SCORE.id, SCORE.proposal_id, SCORE.juror_id, SCORE.revision, SCORE.weighted_total).where(
    SCORE.cycle_year == _YEAR, SCORE.stage == _STAGE, SCORE.proposal_id.in_(_PIDS), SCORE.latest
)
ASSIGNMENTS = sa.select(sa.func.count()).select_from(_TABLES["sco_assignment"]).where(ASSIGNMENT.cycle_year == _YEAR, ASSIGNMENT.stage == _STAGE)
LOADS = sa.select(ASSIGNMENT.juror_id, sa.func.count()).where(ASSIGNMENT.cycle_year == _YEAR, ASSIGNMENT.stage == _STAGE).group_by(ASSIGNMENT.juror_id)
_SCORED = (
    sa.select(SCORE.id)
    .where(SCORE.cycle_year == ASSIGNMENT.cycle_year, SCORE.stage == ASSIGNMENT.stage, SCORE.proposal_id == ASSIGNMENT.proposal_id, SCORE.juror_id == ASSIGNMENT.juror_id, SCORE.latest)
    .exists()
)
UNSCORED = ASSIGNMENTS.where(~_SCORED)
LIGHT = [defer(getattr(StageRow, name), raiseload=True) for name in ("proposals", "ranking", "shortlist", "final_rows")]
"""For the scores, which need only a stage's state and criteria, not its large lists (built once:
building loader options costs more than the lists they leave unread)."""
_LISTS = ("proposals", "ranking", "shortlist", "final_rows")
_SCALARS = (
    "fully_scored_sent",
    "unscored",
    "cancelled",
    "removed",
    "initial_shortlist",
    "announcement_no",
    "closed_summary",
    "window_until",
    "final_summary",
    "deadline",
)


def _stage_of(row: StageRow, light: bool = False) -> Stage:
    stage = Stage(row.cycle_year, row.stage, StageState(row.state), StageConfig.from_json(row.config), row.deadline)
    for name in _SCALARS:
        setattr(stage, name, getattr(row, name))
    stage.removed = list(row.removed or [])
    if not light:
        for name in _LISTS:
            setattr(stage, name, getattr(row, name))
    return stage


class StageRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow, self.session = uow, uow.session
        self._rows: dict[tuple[int, str], tuple[StageRow, bool]] = {}  # key → (row, loaded light)

    async def find(self, year: int, key: str, lock: bool = False) -> Stage | None:
        """``lock`` holds the row until commit (on PostgreSQL), so no batch of scores can land
        between what a command reads and what it writes."""
        row = await self.session.get(StageRow, (year, key), with_for_update=lock and not self.uow.db.is_sqlite or None)
        if row is None:
            return None
        self._rows[(year, key)] = (row, False)
        return _stage_of(row)

    async def get(self, year: int, key: str, lock: bool = False) -> Stage:
        stage = await self.find(year, key, lock)
        if stage is None:
            raise unknown_stage(year, key)
        return stage

    async def of_cycle(self, year: int, states: Iterable[StageState]) -> list[Stage]:
        rows = (await self.session.execute(sa.select(StageRow).where(STAGE.cycle_year == year, STAGE.state.in_([s.value for s in states])))).scalars()
        out = []
        for row in rows:
            self._rows[(row.cycle_year, row.stage)] = (row, False)
            out.append(_stage_of(row))
        return out

    async def for_scores(self, wanted: Mapping[tuple[int, str], Iterable[str]]) -> dict[tuple[int, str], Stage]:
        """The stages a batch of scores touches, locked in key order, each with the assignments
        and latest scores of the batch's proposals (one query per table and stage)."""
        select = sa.select(StageRow).where(sa.tuple_(STAGE.cycle_year, STAGE.stage).in_(sorted(wanted)))
        rows = (await self.session.execute(self.uow.db.for_update(select.order_by(STAGE.cycle_year, STAGE.stage).options(*LIGHT)))).scalars()
        stages = {}
        for row in rows:
            key = (row.cycle_year, row.stage)
            self._rows[key] = (row, True)
            stages[key] = stage = _stage_of(row, light=True)
            await self._counted(stage)
            await self.load_proposals(stage, sorted(set(wanted[key])))
        return stages

    async def _counted(self, stage: Stage) -> None:
        if stage.unscored is None:  # opened before the stage kept its count
            stage.unscored = (await self.session.execute(UNSCORED, {"y": stage.cycle_year, "st": stage.key})).scalar_one()

    async def load_proposals(self, stage: Stage, pids: list[str]) -> None:
        """The assignments and latest scores of ``pids`` in the stage."""
        at = {"y": stage.cycle_year, "st": stage.key, "ps": pids}
        for pid in pids:
            stage.assigned.setdefault(pid, {})
            stage.latest.setdefault(pid, {})
        for a in await self.session.execute(ASSIGNED_TO, at):
            stage.assigned[a.proposal_id][a.juror_id] = a.extra
        for s in await self.session.execute(LATEST_SCORES, at):
            stage.latest[s.proposal_id][s.juror_id] = ScoreEntry(s.juror_id, s.proposal_id, s.revision, s.weighted_total, row_id=s.id)

    async def for_a_change_of_juror(self, year: int, key: str, proposal_id: str) -> Stage:
        """A stage locked, with one proposal's assignments and scores and every juror's load."""
        stage = await self.get(year, key, lock=True)
        await self._counted(stage)
        await self.load_proposals(stage, [proposal_id])
        await self.load_loads(stage)
        return stage

    async def load_loads(self, stage: Stage) -> None:
        if stage.loads is None:
            stage.loads = {r[0]: r[1] for r in await self.session.execute(LOADS, {"y": stage.cycle_year, "st": stage.key})}

    async def assignments(self, stage: Stage) -> int:
        return int((await self.session.execute(ASSIGNMENTS, {"y": stage.cycle_year, "st": stage.key})).scalar_one())

    async def progress(self, stage: Stage) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
        """Every (juror, proposal) assigned in the stage, and those with a score."""
        where = (ASSIGNMENT.cycle_year == stage.cycle_year, ASSIGNMENT.stage == stage.key)
        assigned = [(r[0], r[1]) for r in await self.session.execute(sa.select(ASSIGNMENT.juror_id, ASSIGNMENT.proposal_id).where(*where))]
        scored = sa.select(SCORE.juror_id, SCORE.proposal_id).where(SCORE.cycle_year == stage.cycle_year, SCORE.stage == stage.key, SCORE.latest)
        return assigned, {(r[0], r[1]) for r in await self.session.execute(scored)}

    async def latest_scores(self, stage: Stage) -> list[Score]:
        select = sa.select(ScoreRow).where(SCORE.cycle_year == stage.cycle_year, SCORE.stage == stage.key, SCORE.latest)
        return [Score(r.juror_id, r.proposal_id, r.weighted_total, r.values) for r in (await self.session.execute(select)).scalars()]

    def add(self, stage: Stage) -> None:
        row = StageRow(cycle_year=stage.cycle_year, stage=stage.key, config=stage.config.as_json(), proposals=stage.proposals, deadline=stage.deadline)
        self.session.add(row)
        self._rows[(stage.cycle_year, stage.key)] = (row, False)

    async def save(self, stage: Stage) -> None:
        """Write the stage's fields and what it changed (scores, assignments, declared conflicts)."""
        row, light = self._rows[(stage.cycle_year, stage.key)]
        row.state = stage.state.value
        for name in _SCALARS:
            setattr(row, name, getattr(stage, name))
        row.removed = stage.removed or None
        if not light:
            for name in _LISTS:
                setattr(row, name, getattr(stage, name))
        await self._write_changes(stage)

    async def _write_changes(self, stage: Stage) -> None:
        changes, y, st = stage.changes, stage.cycle_year, stage.key
        for pid, jid in changes.unassigned:
            await self.session.execute(sa.delete(AssignmentRow).where(ASSIGNMENT.cycle_year == y, ASSIGNMENT.stage == st, ASSIGNMENT.proposal_id == pid, ASSIGNMENT.juror_id == jid))
        if changes.assigned:
            await self.session.execute(sa.insert(AssignmentRow), [{"cycle_year": y, "stage": st, "proposal_id": p, "juror_id": j, "extra": e} for p, j, e in changes.assigned])
        for jid, pid, reason, replacement in changes.conflicts:
            if await self.session.get(DeclaredConflictRow, (y, jid, pid)) is None:  # declared in another stage already
                self.session.add(DeclaredConflictRow(cycle_year=y, juror_id=jid, proposal_id=pid, stage=st, reason=reason, replacement_juror_id=replacement, declared_at=self.uow.now))
        if changes.demoted:
            await self.session.execute(sa.update(ScoreRow).where(SCORE.id.in_(changes.demoted)).values(latest=False))
        if changes.new_scores:
            await self.session.execute(sa.insert(ScoreRow), [_score_row(y, st, s) for s in changes.new_scores])
        stage.changes = Changes()


def _score_row(year: int, key: str, s: ScoreEntry) -> dict[str, Any]:
    return {
        "cycle_year": year,
        "stage": key,
        "juror_id": s.juror_id,
        "proposal_id": s.proposal_id,
        "revision": s.revision,
        "latest": s.latest,
        "values": s.values,
        "weighted_total": s.total,
        "comment": s.comment,
        "at": s.at,
    }


class JurorRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def upsert(self, juror: Juror) -> bool:
        """Add or update a juror; True when added."""
        row = await self.session.get(JurorRow, juror.id)
        data = juror.model_dump(mode="json")
        if row is None:
            self.session.add(JurorRow(**data))
            return True
        for k, v in data.items():
            setattr(row, k, v)
        return False

    async def page(self, offset: int, limit: int) -> tuple[list[Juror], int]:
        total = (await self.session.execute(sa.select(sa.func.count()).select_from(JurorRow))).scalar_one()
        rows = (await self.session.execute(sa.select(JurorRow).order_by(JUROR.id).offset(offset).limit(limit))).scalars()
        return [Juror.model_validate(r.model_dump()) for r in rows], int(total)

    async def known(self, ids: Iterable[str]) -> set[str]:
        return set((await self.session.execute(sa.select(JUROR.id).where(JUROR.id.in_(set(ids))))).scalars())

    async def pool(self, year: int) -> list[JurorInfo]:
        """The active jurors, by id, each with their listed conflicts and those they declared this cycle."""
        declared: dict[str, set[str]] = {}
        conflicts = sa.select(CONFLICT.juror_id, CONFLICT.proposal_id).where(CONFLICT.cycle_year == year)
        for juror_id, proposal_id in await self.session.execute(conflicts):
            declared.setdefault(juror_id, set()).add(proposal_id)
        return [
            JurorInfo(r.id, r.affiliation, frozenset(r.expertise), frozenset(r.conflicts) | declared.get(r.id, set()))
            for r in (await self.session.execute(sa.select(JurorRow).where(JUROR.active).order_by(JUROR.id))).scalars()
        ]

    async def assignments(self, year: int, juror_id: str, stage: str | None) -> dict[str, list[str]]:
        """stage → the proposals assigned to a juror."""
        where = [ASSIGNMENT.cycle_year == year, ASSIGNMENT.juror_id == juror_id]
        if stage is not None:
            where.append(ASSIGNMENT.stage == stage)
        out: dict[str, list[str]] = {}
        for key, pid in await self.session.execute(sa.select(ASSIGNMENT.stage, ASSIGNMENT.proposal_id).where(*where)):
            out.setdefault(key, []).append(pid)
        return out

    async def latest_scores(self, year: int, juror_id: str) -> dict[tuple[str, str], ScoreEntry]:
        """(stage, proposal) → a juror's latest score."""
        select = sa.select(ScoreRow).where(SCORE.cycle_year == year, SCORE.juror_id == juror_id, SCORE.latest)
        return {
            (r.stage, r.proposal_id): ScoreEntry(r.juror_id, r.proposal_id, r.revision, r.weighted_total, dict(r.values), r.comment, r.at, row_id=r.id)
            for r in (await self.session.execute(select)).scalars()
        }


class ProposalRepository:
    """Scoring's copy of the verified proposals and each cycle's frozen list of entrants."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def keep(self, proposal_id: str, year: int, data: dict[str, Any]) -> None:
        track = str(data.get("track") or "kovablik")
        row = await self.session.get(ProposalCopy, proposal_id)
        if row is None:
            self.session.add(ProposalCopy(id=proposal_id, cycle_year=year, data=data, track=track))
        else:
            row.data, row.track = data, track

    async def copies(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(ids)
        if not ids:
            return {}
        return {r.id: r.data for r in (await self.session.execute(sa.select(ProposalCopy).where(COPY.id.in_(ids)))).scalars()}

    async def copy(self, proposal_id: str) -> dict[str, Any] | None:
        row = await self.session.get(ProposalCopy, proposal_id)
        return None if row is None else dict(row.data)

    async def freeze(self, year: int, track: str, ids: list[str]) -> None:
        """The eligible list of one competition of the year, as verification first closed it."""
        if await self.session.get(EntrantsRow, (year, track)) is None:
            self.session.add(EntrantsRow(cycle_year=year, track=track, eligible_ids=ids))

    async def eligible(self, year: int, track: str) -> list[str] | None:
        row = await self.session.get(EntrantsRow, (year, track))
        return None if row is None else list(row.eligible_ids)


class ObjectionRepository:
    def __init__(self, session: Any) -> None:
        self.session = session
        self._rows: dict[str, ObjectionRow] = {}

    async def get(self, objection_id: str) -> Objection | None:
        row = await self.session.get(ObjectionRow, objection_id)
        if row is None:
            return None
        self._rows[row.id] = row
        return _objection(row)

    async def of_stage(self, year: int, stage: str) -> list[Objection]:
        select = sa.select(ObjectionRow).where(OBJECTION.cycle_year == year, OBJECTION.stage == stage)
        return [_objection(r) for r in (await self.session.execute(select)).scalars()]

    def add(self, o: Objection) -> None:
        row = ObjectionRow(id=o.id, cycle_year=o.cycle_year, stage=o.stage, proposal_id=o.proposal_id, filer=o.filer, reason=o.reason, filed_at=o.filed_at)
        self.session.add(row)
        self._rows[o.id] = row

    def save(self, o: Objection) -> None:
        row = self._rows[o.id]
        row.decision = None if o.decision is None else o.decision.value
        row.decision_reason, row.decided_by = o.decision_reason, o.decided_by


def _objection(row: ObjectionRow) -> Objection:
    decision = None if row.decision is None else ObjectionDecision(row.decision)
    return Objection(row.id, row.cycle_year, row.stage, row.proposal_id, row.filer, row.reason, row.filed_at, decision, row.decision_reason, row.decided_by)


class CounterRepository:
    """Announcement numbers (Pengumuman No. …) and objection numbers, per cycle."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def next(self, year: int, name: str) -> int:
        row = await self.session.get(CounterRow, (year, name))
        if row is None:
            row = CounterRow(cycle_year=year, name=name, value=0)
            self.session.add(row)
        row.value += 1
        return int(row.value)


@dataclass
class ScoringUnit:
    """A handler's unit of work: scoring's repositories over one transaction, the clock, and
    ``emit`` for the events that commit with it."""

    now: dt.datetime
    stages: StageRepository
    jurors: JurorRepository
    proposals: ProposalRepository
    objections: ObjectionRepository
    counters: CounterRepository
    _emit: Callable[[Event], None]

    @classmethod
    def over(cls, uow: UnitOfWork) -> ScoringUnit:
        s = uow.session
        return cls(uow.now, StageRepository(uow), JurorRepository(s), ProposalRepository(s), ObjectionRepository(s), CounterRepository(s), uow.emit)

    def emit(self, events: Iterable[Event]) -> None:
        for event in events:
            self._emit(event)
