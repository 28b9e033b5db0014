"""Scoring's use cases: one function per command or event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer

from contracts.base import ObjectionDecision, SetRef, digest_ids
from contracts.cycle import CycleCancelled
from contracts.scoring import (
    AssignmentView,
    CloseStage,
    ConflictDeclared,
    ConflictDeclaredView,
    Criterion,
    DecideObjection,
    DeclareConflict,
    FileObjection,
    FinalizeShortlist,
    FinalShortlistSummary,
    GetShortlist,
    ImportJurors,
    Juror,
    JurorAdded,
    JurorAssignments,
    JurorAssignmentsView,
    JurorProgress,
    JurorsAssigned,
    JurorStageView,
    ListJurors,
    ObjectionDecided,
    ObjectionFiled,
    ObjectionsStatus,
    ObjectionsStatusView,
    ObjectionView,
    OpenStage,
    RankedRow,
    ReminderDue,
    RemindJurors,
    ScoreSubmitted,
    ScoringError,
    ShortlistFinal,
    ShortlistPublished,
    ShortlistView,
    StageClosed,
    StageClosedSummary,
    StageFullyScored,
    StageStatus,
    StageStatusView,
    StageSummary,
    SubmitScore,
)
from contracts.verification import ProposalDisqualified, ProposalVerified, VerificationClosed
from services.common.errors import DomainError, NotFound, NotReady
from services.common.runtime import UnitOfWork
from services.scoring import domain
from services.scoring.store import (
    AssignmentRow,
    CounterRow,
    DeclaredConflictRow,
    EntrantsRow,
    JurorRow,
    ObjectionRow,
    ProposalCopy,
    ScoreRow,
    StageRow,
)

# --------------------------------------------------------------------------- read model


async def on_proposal_verified(evt: ProposalVerified, uow: UnitOfWork) -> None:
    row = await uow.session.get(ProposalCopy, evt.proposal.id)
    data = evt.proposal.model_dump(mode="json")
    if row is None:
        uow.session.add(ProposalCopy(id=evt.proposal.id, cycle_year=evt.cycle_year, data=data))
    else:
        row.data = data


async def on_proposal_disqualified(evt: ProposalDisqualified, uow: UnitOfWork) -> None:
    # Kept too: an override may make it eligible, and the frozen list decides who enters.
    await on_proposal_verified(evt, uow)  # type: ignore[arg-type]


async def on_verification_closed(evt: VerificationClosed, uow: UnitOfWork) -> None:
    row = await uow.session.get(EntrantsRow, evt.cycle_year)
    if row is None:
        uow.session.add(EntrantsRow(cycle_year=evt.cycle_year, eligible_ids=list(evt.eligible_ids)))


# --------------------------------------------------------------------------- jurors


async def import_jurors(cmd: ImportJurors, uow: UnitOfWork) -> dict[str, int]:
    created = updated = 0
    for j in cmd.jurors:
        row = await uow.session.get(JurorRow, j.id)
        data = j.model_dump(mode="json")
        if row is None:
            uow.session.add(JurorRow(**data))
            created += 1
        else:
            for k, v in data.items():
                setattr(row, k, v)
            updated += 1
    return {"created": created, "updated": updated}


async def list_jurors(cmd: ListJurors, uow: UnitOfWork) -> dict[str, Any]:
    total = (await uow.session.execute(sa.select(sa.func.count()).select_from(JurorRow))).scalar_one()
    rows = (await uow.session.execute(sa.select(JurorRow).order_by(JurorRow.id).offset(cmd.offset).limit(cmd.limit))).scalars()
    return {"items": [Juror.model_validate(r.model_dump()) for r in rows], "total": total, "offset": cmd.offset}


# --------------------------------------------------------------------------- stages


async def _stage(uow: UnitOfWork, year: int, key: str, lock: bool = False) -> StageRow:
    """The stage's row; ``lock`` holds it until commit (on PostgreSQL), so no batch of scores
    can land between what this command reads and what it writes."""
    row = await uow.session.get(StageRow, (year, key), with_for_update=lock and not uow.db.is_sqlite or None)
    if row is None:
        raise DomainError(ScoringError.UNKNOWN_STAGE, f"no stage {key!r} in cycle {year}", {"stage": key})
    return row


_LIGHT = [defer(getattr(StageRow, name), raiseload=True) for name in ("proposals", "ranking", "shortlist", "final_rows")]
"""For the scores, which need only a stage's state and criteria, not its large lists (built once:
building loader options costs more than the lists they leave unread)."""


def _criteria(stage: StageRow) -> list[Criterion]:
    return [Criterion.model_validate(c) for c in stage.config["criteria"]]


async def _entrant_ids(uow: UnitOfWork, cmd: OpenStage) -> list[str]:
    ref = cmd.entrants
    if ref.source == "verification":
        frozen = await uow.session.get(EntrantsRow, cmd.cycle_year)
        if frozen is None:
            raise NotReady(message=f"the eligible list of {cmd.cycle_year} has not arrived yet", details={"waiting_for": "verification_closed"})
        ids = list(frozen.eligible_ids)
    else:
        prev = await uow.session.get(StageRow, (cmd.cycle_year, ref.stage or ""))
        if prev is None or prev.final_rows is None:
            raise NotReady(message=f"the final shortlist of stage {ref.stage} is not there yet", details={"waiting_for": ref.stage})
        ids = [r["proposal_id"] for r in prev.final_rows]
    have = SetRef(count=len(ids), digest=digest_ids(ids))
    if have != ref.expected:
        raise NotReady(message=f"entrants differ: have {have.count}, expected {ref.expected.count}", details={"have": have.count, "expected": ref.expected.count})
    return sorted(ids)


def _summary(stage: StageRow, assignments: int, scored: int, jurors: int) -> StageSummary:
    return StageSummary(
        cycle_year=stage.cycle_year,
        stage=stage.stage,
        state=stage.state,
        proposals=len(stage.proposals),
        jurors=jurors,
        assignments=assignments,
        scored=scored,
        deadline=stage.deadline,
    )


async def _progress(uow: UnitOfWork, stage: StageRow) -> tuple[list[AssignmentRow], set[tuple[str, str]]]:
    assigned = (
        await uow.session.execute(
            sa.select(AssignmentRow).where(AssignmentRow.cycle_year == stage.cycle_year, AssignmentRow.stage == stage.stage)
        )
    ).scalars().all()
    scored = {
        (r[0], r[1])
        for r in await uow.session.execute(
            sa.select(ScoreRow.juror_id, ScoreRow.proposal_id).where(
                ScoreRow.cycle_year == stage.cycle_year, ScoreRow.stage == stage.stage, ScoreRow.latest
            )
        )
    }
    return list(assigned), scored


async def open_stage(cmd: OpenStage, uow: UnitOfWork) -> StageSummary:
    existing = await uow.session.get(StageRow, (cmd.cycle_year, cmd.stage))
    if existing is not None:
        if existing.state == "cancelled":  # the year's cycle started again: its jurors go on
            existing.state = "open"
            await uow.session.flush()
        elif existing.config.get("cancelled"):  # and its public may object again
            existing.config = {k: v for k, v in existing.config.items() if k != "cancelled"}
            await uow.session.flush()
        assigned, scored = await _progress(uow, existing)
        return _summary(existing, len(assigned), len(scored), len({a.juror_id for a in assigned}))
    ids = await _entrant_ids(uow, cmd)
    copies = {
        r.id: r.data for r in (await uow.session.execute(sa.select(ProposalCopy).where(ProposalCopy.id.in_(ids)))).scalars()
    }
    missing = [i for i in ids if i not in copies]
    if missing:
        raise NotReady(message=f"{len(missing)} entrant(s) not known yet", details={"missing": missing[:20]})
    entrants = [_entrant(copies[i]) for i in ids]
    jurors = await _pool(uow, cmd.cycle_year)
    plan = domain.assign(entrants, jurors, cmd.jurors_per_proposal, cmd.seed)
    stage = StageRow(
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        config=cmd.model_dump(mode="json", include={"criteria", "jurors_per_proposal", "advance", "group_proportions", "divergence_threshold", "seed"}),
        proposals=ids,
        deadline=cmd.deadline,
    )
    uow.session.add(stage)
    rows = [AssignmentRow(cycle_year=cmd.cycle_year, stage=cmd.stage, proposal_id=p, juror_id=j) for p, js in plan.items() for j in js]
    uow.session.add_all(rows)
    stage.unscored = len(rows)
    loads: dict[str, int] = {}
    for r in rows:
        loads[r.juror_id] = loads.get(r.juror_id, 0) + 1
    uow.emit(
        JurorsAssigned(
            cycle_year=cmd.cycle_year,
            stage=cmd.stage,
            proposals=len(ids),
            jurors=len(loads),
            assignments=len(rows),
            load_min=min(loads.values(), default=0),
            load_max=max(loads.values(), default=0),
        )
    )
    return _summary(stage, len(rows), 0, len(loads))


async def _pool(uow: UnitOfWork, year: int) -> list[domain.JurorInfo]:
    """The active jurors, by id, each with their listed conflicts and those they declared this cycle."""
    declared: dict[str, set[str]] = {}
    for juror_id, proposal_id in await uow.session.execute(
        sa.select(DeclaredConflictRow.juror_id, DeclaredConflictRow.proposal_id).where(DeclaredConflictRow.cycle_year == year)
    ):
        declared.setdefault(juror_id, set()).add(proposal_id)
    return [
        domain.JurorInfo(r.id, r.affiliation, frozenset(r.expertise), frozenset(r.conflicts) | declared.get(r.id, set()))
        for r in (await uow.session.execute(sa.select(JurorRow).where(JurorRow.active).order_by(JurorRow.id))).scalars()
    ]


def _entrant(data: dict[str, Any]) -> domain.Entrant:
    return domain.Entrant(
        id=data["id"], agency=data["agency_code"], group=data["group"], category=data["category"], forwarded_at=data.get("forwarded_at") or ""
    )


@dataclass
class _Latest:
    """A (juror, proposal)'s latest score as the batch sees it: a stored row or one it adds."""

    revision: int
    total: float
    row_id: int | None = None
    new: dict[str, Any] | None = None


@dataclass
class _StageBatch:
    """What a batch of scores needs of one stage, read with one query per table."""

    row: StageRow
    criteria: list[Criterion]
    assigned: dict[str, dict[str, bool]]  # proposal → juror → added because of a divergence
    latest: dict[str, dict[str, _Latest]]  # proposal → juror → latest score
    loads: dict[str, int] | None = None  # juror → assignments, read when a juror must be added


async def submit_scores(cmds: list[SubmitScore], uow: UnitOfWork) -> list[Any]:
    """The scores of a batch (group commit), in arrival order. Each stage's row is locked, so
    revisions, the divergence rule and "fully scored" see every earlier score, on any replica;
    what a score needs is read once for the whole batch and the rows are written together."""
    session = uow.session
    keys = sorted({(c.cycle_year, c.stage) for c in cmds})
    stages: dict[tuple[int, str], _StageBatch] = {}
    rows = (
        await session.execute(
            uow.db.for_update(
                sa.select(StageRow)
                .where(sa.tuple_(StageRow.cycle_year, StageRow.stage).in_(keys))
                .order_by(StageRow.cycle_year, StageRow.stage)
                .options(*_LIGHT)
            )
        )
    ).scalars()
    for stage in rows:
        if stage.unscored is None:  # opened before the stage kept its count
            stage.unscored = (await session.execute(_UNSCORED, {"y": stage.cycle_year, "st": stage.stage})).scalar_one()
        pids = sorted({c.proposal_id for c in cmds if (c.cycle_year, c.stage) == (stage.cycle_year, stage.stage)})
        at = {"y": stage.cycle_year, "st": stage.stage, "ps": pids}
        batch = _StageBatch(stage, _criteria(stage), {p: {} for p in pids}, {p: {} for p in pids})
        for a in await session.execute(_ASSIGNED_TO, at):
            batch.assigned[a.proposal_id][a.juror_id] = a.extra
        for s in await session.execute(_LATEST_SCORES, at):
            batch.latest[s.proposal_id][s.juror_id] = _Latest(s.revision, s.weighted_total, row_id=s.id)
        stages[(stage.cycle_year, stage.stage)] = batch
    jurors = set((await session.execute(sa.select(JurorRow.id).where(JurorRow.id.in_({c.juror_id for c in cmds})))).scalars())
    new_scores: list[dict[str, Any]] = []
    demoted: list[int] = []
    results: list[Any] = []
    for cmd in cmds:
        try:
            if cmd.juror_id not in jurors:
                raise DomainError(ScoringError.UNKNOWN_JUROR, f"no juror {cmd.juror_id}", {"juror_id": cmd.juror_id})
            batch_of = stages.get((cmd.cycle_year, cmd.stage))
            if batch_of is None:
                raise DomainError(ScoringError.UNKNOWN_STAGE, f"no stage {cmd.stage!r} in cycle {cmd.cycle_year}", {"stage": cmd.stage})
            results.append(await _score(cmd, batch_of, uow, new_scores, demoted))
        except DomainError as exc:
            results.append(exc)
    if demoted:
        await session.execute(sa.update(ScoreRow).where(ScoreRow.id.in_(demoted)).values(latest=False))
    if new_scores:
        await session.execute(sa.insert(ScoreRow), new_scores)
    for batch in stages.values():
        await _fully_scored(uow, batch.row)
    return results


async def _score(
    cmd: SubmitScore, batch: _StageBatch, uow: UnitOfWork, new_scores: list[dict[str, Any]], demoted: list[int]
) -> dict[str, Any]:
    """One score of a batch; it raises before changing anything when it is refused."""
    stage = batch.row
    if stage.state != "open":
        raise DomainError(ScoringError.STAGE_CLOSED, f"stage {cmd.stage} is {stage.state}; scores can no longer change", {"stage": cmd.stage})
    if cmd.juror_id not in batch.assigned[cmd.proposal_id]:
        raise DomainError(
            ScoringError.NOT_ASSIGNED,
            f"juror {cmd.juror_id} is not assigned to proposal {cmd.proposal_id} in stage {cmd.stage}",
            {"juror_id": cmd.juror_id, "proposal_id": cmd.proposal_id},
        )
    domain.check_scores(cmd.scores, batch.criteria)
    total = domain.weighted_total(cmd.scores, batch.criteria)
    scores = batch.latest[cmd.proposal_id]
    previous = scores.get(cmd.juror_id)
    revision = 1
    if previous is None:
        stage.unscored -= 1
    else:
        revision = previous.revision + 1
        if previous.new is not None:
            previous.new["latest"] = False
        elif previous.row_id is not None:
            demoted.append(previous.row_id)
    row = {
        "cycle_year": cmd.cycle_year,
        "stage": cmd.stage,
        "juror_id": cmd.juror_id,
        "proposal_id": cmd.proposal_id,
        "revision": revision,
        "latest": True,
        "values": dict(cmd.scores),
        "weighted_total": total,
        "comment": cmd.comment,
        "at": uow.now,
    }
    new_scores.append(row)
    scores[cmd.juror_id] = _Latest(revision, total, new=row)
    uow.emit(
        ScoreSubmitted(
            cycle_year=cmd.cycle_year, stage=cmd.stage, juror_id=cmd.juror_id, proposal_id=cmd.proposal_id, weighted_total=total, revision=revision
        )
    )
    added = await _divergence(uow, batch, cmd.proposal_id)
    return {"proposal_id": cmd.proposal_id, "juror_id": cmd.juror_id, "weighted_total": round(total, 4), "revision": revision, "juror_added": added}


# The statements every batch of scores runs, built once (building an expression costs more than running it).
_A, _S = AssignmentRow, ScoreRow
_Y, _ST, _PS = sa.bindparam("y"), sa.bindparam("st"), sa.bindparam("ps", expanding=True)
_ASSIGNED_TO = sa.select(_A.proposal_id, _A.juror_id, _A.extra).where(_A.cycle_year == _Y, _A.stage == _ST, _A.proposal_id.in_(_PS))
_LATEST_SCORES = sa.select(_S.id, _S.proposal_id, _S.juror_id, _S.revision, _S.weighted_total).where(
    _S.cycle_year == _Y, _S.stage == _ST, _S.proposal_id.in_(_PS), _S.latest
)
_ASSIGNMENTS = sa.select(sa.func.count()).select_from(_A).where(_A.cycle_year == _Y, _A.stage == _ST)
_SCORED = (
    sa.select(_S.id)
    .where(_S.cycle_year == _A.cycle_year, _S.stage == _A.stage, _S.proposal_id == _A.proposal_id, _S.juror_id == _A.juror_id, _S.latest)
    .exists()
)
_UNSCORED = _ASSIGNMENTS.where(~_SCORED)


async def _divergence(uow: UnitOfWork, batch: _StageBatch, proposal_id: str) -> str | None:
    """When a proposal's jurors disagree beyond the threshold, assign one more juror (once)."""
    stage = batch.row
    spread = domain.diverges((s.total for s in batch.latest[proposal_id].values()), stage.config["divergence_threshold"])
    if spread is None:
        return None
    assigned = batch.assigned[proposal_id]
    if any(assigned.values()):
        return None
    copy = await uow.session.get(ProposalCopy, proposal_id)
    assert copy is not None
    entrant = _entrant(copy.data)
    if batch.loads is None:
        batch.loads = dict(
            (r[0], r[1])
            for r in await uow.session.execute(
                sa.select(AssignmentRow.juror_id, sa.func.count())
                .where(AssignmentRow.cycle_year == stage.cycle_year, AssignmentRow.stage == stage.stage)
                .group_by(AssignmentRow.juror_id)
            )
        )
    loads = batch.loads
    pick = domain.choose_juror(entrant, await _pool(uow, stage.cycle_year), assigned, loads)
    if pick is None:
        return None
    await uow.session.execute(
        sa.insert(AssignmentRow).values(cycle_year=stage.cycle_year, stage=stage.stage, proposal_id=proposal_id, juror_id=pick.id, extra=True)
    )
    assigned[pick.id] = True
    loads[pick.id] = loads.get(pick.id, 0) + 1
    stage.unscored += 1
    uow.emit(JurorAdded(cycle_year=stage.cycle_year, stage=stage.stage, proposal_id=proposal_id, juror_id=pick.id, spread=round(spread, 4)))
    return pick.id


async def declare_conflict(cmd: DeclareConflict, uow: UnitOfWork) -> ConflictDeclaredView:
    """A juror gives back an assignment they have a conflict of interest with, before scoring it:
    it goes to the least loaded conflict-free juror of the pool, or to no one if none is left;
    the conflict is remembered so they are never assigned that proposal again this cycle."""
    stage = await _stage(uow, cmd.cycle_year, cmd.stage, lock=True)
    key = (cmd.cycle_year, cmd.stage, cmd.proposal_id, cmd.juror_id)
    if stage.state != "open":
        raise DomainError(ScoringError.STAGE_CLOSED, f"stage {cmd.stage} is {stage.state}; assignments can no longer change", {"stage": cmd.stage})
    leaving = await uow.session.get(AssignmentRow, key)
    if leaving is None:
        raise DomainError(
            ScoringError.NOT_ASSIGNED,
            f"juror {cmd.juror_id} is not assigned to proposal {cmd.proposal_id} in stage {cmd.stage}",
            {"juror_id": cmd.juror_id, "proposal_id": cmd.proposal_id},
        )
    scored = await uow.session.execute(
        sa.select(ScoreRow.id).where(ScoreRow.cycle_year == cmd.cycle_year, ScoreRow.stage == cmd.stage, ScoreRow.proposal_id == cmd.proposal_id, ScoreRow.juror_id == cmd.juror_id).limit(1)
    )
    if scored.first() is not None:
        raise DomainError(
            ScoringError.ALREADY_SCORED,
            f"juror {cmd.juror_id} has already scored proposal {cmd.proposal_id} in stage {cmd.stage}; a conflict is declared before scoring",
            {"juror_id": cmd.juror_id, "proposal_id": cmd.proposal_id},
        )
    if stage.unscored is None:  # opened before the stage kept its count
        stage.unscored = (await uow.session.execute(_UNSCORED, {"y": stage.cycle_year, "st": stage.stage})).scalar_one()
    rows = (await uow.session.execute(sa.select(AssignmentRow).where(AssignmentRow.cycle_year == cmd.cycle_year, AssignmentRow.stage == cmd.stage))).scalars().all()
    loads: dict[str, int] = {}
    for a in rows:
        loads[a.juror_id] = loads.get(a.juror_id, 0) + 1
    if await uow.session.get(DeclaredConflictRow, (cmd.cycle_year, cmd.juror_id, cmd.proposal_id)) is None:  # declared in another stage already
        uow.session.add(DeclaredConflictRow(cycle_year=cmd.cycle_year, juror_id=cmd.juror_id, proposal_id=cmd.proposal_id, stage=cmd.stage, reason=cmd.reason, declared_at=uow.now))
        await uow.session.flush()
    copy = await uow.session.get(ProposalCopy, cmd.proposal_id)
    assert copy is not None
    taken = {a.juror_id for a in rows if a.proposal_id == cmd.proposal_id}
    pick = domain.choose_juror(_entrant(copy.data), await _pool(uow, cmd.cycle_year), taken, loads)
    await uow.session.delete(leaving)
    if pick is None:
        stage.unscored -= 1
    else:
        uow.session.add(AssignmentRow(cycle_year=cmd.cycle_year, stage=cmd.stage, proposal_id=cmd.proposal_id, juror_id=pick.id, extra=leaving.extra))
    replacement = None if pick is None else pick.id
    uow.emit(ConflictDeclared(cycle_year=cmd.cycle_year, stage=cmd.stage, proposal_id=cmd.proposal_id, juror_id=cmd.juror_id, replacement_juror_id=replacement, reason=cmd.reason))
    await uow.session.flush()
    await _fully_scored(uow, stage)
    return ConflictDeclaredView(stage=cmd.stage, proposal_id=cmd.proposal_id, juror_id=cmd.juror_id, replacement_juror_id=replacement)


async def _fully_scored(uow: UnitOfWork, stage: StageRow) -> None:
    """Once every assignment has a score (the stage counts the ones without), say so, once."""
    if stage.fully_scored_sent or stage.state != "open" or stage.unscored != 0:
        return
    assigned = (await uow.session.execute(_ASSIGNMENTS, {"y": stage.cycle_year, "st": stage.stage})).scalar_one()
    if assigned:
        stage.fully_scored_sent = True
        uow.emit(StageFullyScored(cycle_year=stage.cycle_year, stage=stage.stage, assignments=assigned))


async def stage_status(cmd: StageStatus, uow: UnitOfWork) -> StageStatusView:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    assigned, scored = await _progress(uow, stage)
    per: dict[str, JurorProgress] = {}
    for a in assigned:
        p = per.setdefault(a.juror_id, JurorProgress(juror_id=a.juror_id, assigned=0, scored=0, missing=[]))
        p.assigned += 1
        if (a.juror_id, a.proposal_id) in scored:
            p.scored += 1
        else:
            p.missing.append(a.proposal_id)
    done = sum(1 for a in assigned if (a.juror_id, a.proposal_id) in scored)
    return StageStatusView(
        **_summary(stage, len(assigned), done, len(per)).model_dump(),
        fully_scored=bool(assigned) and done == len(assigned),
        proposals_scored=len({a.proposal_id for a in assigned if (a.juror_id, a.proposal_id) in scored}),
        per_juror=sorted(per.values(), key=lambda p: p.juror_id) if cmd.per_juror else [],
    )


async def juror_assignments(cmd: JurorAssignments, uow: UnitOfWork) -> JurorAssignmentsView:
    """What one juror is to score, stage by stage, with the criteria and their own latest marks."""
    where = [AssignmentRow.cycle_year == cmd.cycle_year, AssignmentRow.juror_id == cmd.juror_id]
    if cmd.stage is not None:
        where.append(AssignmentRow.stage == cmd.stage)
    assigned = (await uow.session.execute(sa.select(AssignmentRow).where(*where))).scalars().all()
    by_stage: dict[str, list[str]] = {}
    for a in assigned:
        by_stage.setdefault(a.stage, []).append(a.proposal_id)
    latest = {
        (r.stage, r.proposal_id): r
        for r in (
            await uow.session.execute(
                sa.select(ScoreRow).where(
                    ScoreRow.cycle_year == cmd.cycle_year, ScoreRow.juror_id == cmd.juror_id, ScoreRow.latest
                )
            )
        ).scalars()
    }
    ids = sorted({a.proposal_id for a in assigned})
    copies = {
        r.id: r.data
        for r in (await uow.session.execute(sa.select(ProposalCopy).where(ProposalCopy.id.in_(ids)))).scalars()
    } if ids else {}
    stages = []
    for key in sorted(by_stage):
        stage = await _stage(uow, cmd.cycle_year, key)
        rows = []
        for pid in sorted(by_stage[key]):
            score = latest.get((key, pid))
            content = copies.get(pid, {})
            rows.append(
                AssignmentView(
                    proposal_id=pid,
                    title=content.get("title"),
                    group=content.get("group"),
                    category=content.get("category"),
                    scored=score is not None,
                    scores=dict(score.values) if score is not None else None,
                    comment=score.comment if score is not None else None,
                    revision=score.revision if score is not None else 0,
                )
            )
        stages.append(
            JurorStageView(stage=key, state=stage.state, deadline=stage.deadline, criteria=_criteria(stage), assignments=rows)
        )
    return JurorAssignmentsView(cycle_year=cmd.cycle_year, juror_id=cmd.juror_id, stages=stages)


async def remind_jurors(cmd: RemindJurors, uow: UnitOfWork) -> dict[str, int]:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    if stage.state != "open":
        return {"reminded": 0}
    if cmd.deadline is not None:  # the workflow's deadline, extensions included
        stage.deadline = cmd.deadline
    assigned, scored = await _progress(uow, stage)
    open_by: dict[str, list[str]] = {}
    for a in assigned:
        if (a.juror_id, a.proposal_id) not in scored:
            open_by.setdefault(a.juror_id, []).append(a.proposal_id)
    for juror, pids in sorted(open_by.items()):
        uow.emit(ReminderDue(cycle_year=cmd.cycle_year, stage=cmd.stage, juror_id=juror, open_assignments=sorted(pids), deadline=stage.deadline))
    return {"reminded": len(open_by)}


async def on_cycle_cancelled(evt: CycleCancelled, uow: UnitOfWork) -> None:
    """A cancelled cycle's open stage takes no more scores (until the year is started again)."""
    rows = (await uow.session.execute(sa.select(StageRow).where(StageRow.cycle_year == evt.cycle_year, StageRow.state.in_(["open", "closed"])))).scalars()
    for stage in rows:
        if stage.state == "open":
            stage.state = "cancelled"
        else:  # closed, in its objection window: it takes no more objections either
            stage.config = {**stage.config, "cancelled": True}


async def _next(uow: UnitOfWork, year: int, name: str) -> int:
    row = await uow.session.get(CounterRow, (year, name))
    if row is None:
        row = CounterRow(cycle_year=year, name=name, value=0)
        uow.session.add(row)
    row.value += 1
    return row.value


def _rows(ranked: list[domain.Row], copies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(ranked, start=1):
        d = copies[r.proposal]
        out.append(
            RankedRow(
                rank=i,
                proposal_id=r.proposal,
                title=d["title"],
                group=d["group"],
                agency_code=d["agency_code"],
                unit_code=d["unit_code"],
                unit_name=d.get("unit_name"),
                agency_name=d.get("agency_name"),
                category=d.get("category"),
                score=None if r.score is None else round(r.score, 4),
                raw_score=None if r.raw is None else round(r.raw, 4),
                jurors=r.jurors,
                explanation=r.explanation,
            ).model_dump(mode="json")
        )
    return out


async def close_stage(cmd: CloseStage, uow: UnitOfWork) -> StageClosedSummary:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage, lock=True)
    if stage.closed_summary is not None:
        return StageClosedSummary.model_validate(stage.closed_summary)
    criteria = _criteria(stage)
    copies = {r.id: r.data for r in (await uow.session.execute(sa.select(ProposalCopy).where(ProposalCopy.id.in_(stage.proposals)))).scalars()}
    scores = [
        domain.Score(r.juror_id, r.proposal_id, r.weighted_total, r.values)
        for r in (
            await uow.session.execute(
                sa.select(ScoreRow).where(ScoreRow.cycle_year == cmd.cycle_year, ScoreRow.stage == cmd.stage, ScoreRow.latest)
            )
        ).scalars()
    ]
    ranked = domain.rank([_entrant(copies[p]) for p in stage.proposals], scores, criteria)
    rows = _rows(ranked, copies)
    window_until = domain.objection_window(cmd.at, cmd.objection_window_until, uow.now)
    groups = {p: copies[p]["group"] for p in stage.proposals}
    chosen = domain.shortlist(ranked, groups, stage.config["advance"], stage.config.get("group_proportions"))
    number = await _next(uow, cmd.cycle_year, "announcement")
    announcement = f"{number:03d}/PANSEL-KOVABLIK/{cmd.cycle_year}"
    by_id = {r["proposal_id"]: r for r in rows}
    short_rows = [by_id[p] for p in chosen]
    summary = StageClosedSummary(
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        ranked=len(rows),
        unscored=sum(1 for r in ranked if r.score is None),
        shortlist=SetRef(count=len(chosen), digest=digest_ids(chosen)),
        announcement_no=announcement,
        assignments=len((await _progress(uow, stage))[0]),
        scores=len(scores),
        objection_window_until=window_until,
    )
    stage.state, stage.ranking, stage.shortlist, stage.announcement_no = "closed", rows, chosen, announcement
    stage.window_until, stage.closed_summary = window_until, summary.model_dump(mode="json")
    stage.config = {**stage.config, "initial_shortlist": chosen}
    uow.emit(StageClosed(cycle_year=cmd.cycle_year, summary=summary))
    uow.emit(
        ShortlistPublished(
            cycle_year=cmd.cycle_year,
            stage=cmd.stage,
            announcement_no=announcement,
            rows=[RankedRow.model_validate(r) for r in short_rows],
            objection_window_until=window_until,
        )
    )
    return summary


async def get_shortlist(cmd: GetShortlist, uow: UnitOfWork) -> ShortlistView:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    if stage.ranking is None or stage.shortlist is None:
        raise DomainError(ScoringError.NOT_FOUND, f"stage {cmd.stage} has no shortlist yet (it is {stage.state})")
    if stage.final_rows is not None:
        rows, number, final = stage.final_rows, stage.final_summary["announcement_no"] if stage.final_summary else "", True
    else:
        by_id = {r["proposal_id"]: r for r in stage.ranking}
        rows, number, final = [by_id[p] for p in stage.shortlist], stage.announcement_no or "", False
    return ShortlistView(
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        announcement_no=number,
        final=final,
        rows=[RankedRow.model_validate(r) for r in rows],
        digest=digest_ids(r["proposal_id"] for r in rows),
    )


# --------------------------------------------------------------------------- objections


def _objection_view(row: ObjectionRow) -> ObjectionView:
    return ObjectionView(
        id=row.id,
        stage=row.stage,
        proposal_id=row.proposal_id,
        filer=row.filer,
        reason=row.reason,
        filed_at=row.filed_at,
        decision=row.decision,  # type: ignore[arg-type]
        decision_reason=row.decision_reason,
        decided_by=row.decided_by,
    )


async def file_objection(cmd: FileObjection, uow: UnitOfWork) -> ObjectionView:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    # A filer may not backdate an objection into a window that has passed.
    at = max(cmd.at or uow.now, uow.now)
    if stage.config.get("cancelled"):
        raise DomainError(
            ScoringError.OBJECTION_WINDOW_CLOSED,
            f"objections to stage {cmd.stage} are not accepted: its cycle was cancelled",
            {"window_until": stage.window_until.isoformat() if stage.window_until else "no window", "cancelled": True},
        )
    if stage.state != "closed" or stage.window_until is None or at > stage.window_until:
        until = stage.window_until.isoformat() if stage.window_until else "no window"
        raise DomainError(
            ScoringError.OBJECTION_WINDOW_CLOSED,
            f"objections to stage {cmd.stage} are not accepted now (window: {until}, stage {stage.state})",
            {"window_until": until},
        )
    if cmd.proposal_id not in (stage.shortlist or []):
        raise DomainError(ScoringError.NOT_ON_SHORTLIST, f"proposal {cmd.proposal_id} is not on the {cmd.stage} shortlist")
    number = await _next(uow, cmd.cycle_year, "objection")
    row = ObjectionRow(
        id=f"OBJ{cmd.cycle_year}-{number:04d}",
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        proposal_id=cmd.proposal_id,
        filer=cmd.filer,
        reason=cmd.reason,
        filed_at=at,
    )
    uow.session.add(row)
    view = _objection_view(row)
    uow.emit(ObjectionFiled(cycle_year=cmd.cycle_year, objection=view))
    return view


async def decide_objection(cmd: DecideObjection, uow: UnitOfWork) -> ObjectionView:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    row = await uow.session.get(ObjectionRow, cmd.objection_id)
    if row is None or row.stage != cmd.stage or row.cycle_year != cmd.cycle_year:
        raise NotFound(ScoringError.NOT_FOUND, f"no objection {cmd.objection_id} in stage {cmd.stage}")
    if stage.state == "final":
        raise DomainError(ScoringError.STAGE_CLOSED, f"the {cmd.stage} shortlist is final")
    if stage.config.get("cancelled"):
        raise DomainError(ScoringError.STAGE_CLOSED, f"stage {cmd.stage}'s cycle was cancelled; objections are decided once it is started again")
    if row.decision is not None:
        raise DomainError(ScoringError.ALREADY_DECIDED, f"objection {row.id} was already decided ({row.decision})", {"decision": row.decision})
    row.decision, row.decision_reason, row.decided_by = cmd.decision.value, cmd.reason, cmd.decided_by
    if cmd.decision == ObjectionDecision.UPHELD and stage.shortlist and row.proposal_id in stage.shortlist:
        stage.shortlist = _promote(stage, row.proposal_id)
    view = _objection_view(row)
    uow.emit(ObjectionDecided(cycle_year=cmd.cycle_year, objection=view))
    return view


def _promote(stage: StageRow, removed: str) -> list[str]:
    """Remove a proposal and draw the shortlist again from the ranking without it (and without any
    removed before), by the stage's own rule: without proportions the next ranked proposal moves
    up, whatever its group; with them the group's next, or the best remaining overall if the
    group has none left."""
    ranking = stage.ranking or []
    excluded = set(stage.config.get("removed", [])) | {removed}
    stage.config = {**stage.config, "removed": sorted(excluded)}
    rows = [domain.Row(r["proposal_id"], r["score"], 0) for r in ranking if r["proposal_id"] not in excluded]
    groups = {r["proposal_id"]: r["group"] for r in ranking}
    return domain.shortlist(rows, groups, stage.config["advance"], stage.config.get("group_proportions"))


async def objections_status(cmd: ObjectionsStatus, uow: UnitOfWork) -> ObjectionsStatusView:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    rows = (
        await uow.session.execute(sa.select(ObjectionRow).where(ObjectionRow.cycle_year == cmd.cycle_year, ObjectionRow.stage == cmd.stage))
    ).scalars().all()
    return ObjectionsStatusView(
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        window_until=stage.window_until,
        filed=len(rows),
        pending=sum(1 for r in rows if r.decision is None),
        upheld=sum(1 for r in rows if r.decision == ObjectionDecision.UPHELD),
        rejected=sum(1 for r in rows if r.decision == ObjectionDecision.REJECTED),
    )


async def finalize_shortlist(cmd: FinalizeShortlist, uow: UnitOfWork) -> FinalShortlistSummary:
    stage = await _stage(uow, cmd.cycle_year, cmd.stage)
    if stage.final_summary is not None:
        return FinalShortlistSummary.model_validate(stage.final_summary)
    if stage.state != "closed":
        raise DomainError(ScoringError.STAGE_CLOSED, f"stage {cmd.stage} is {stage.state}; close it before finalising")
    if stage.window_until is not None and cmd.at < stage.window_until:
        until = stage.window_until.isoformat()
        raise DomainError(
            ScoringError.OBJECTION_WINDOW_OPEN,
            f"the objection window of stage {cmd.stage} is open until {until}; the shortlist is final only after it",
            {"window_until": until},
        )
    status = await objections_status(ObjectionsStatus(cycle_year=cmd.cycle_year, stage=cmd.stage), uow)
    if status.pending:
        raise NotReady(message=f"{status.pending} objection(s) to stage {cmd.stage} are not decided yet", details={"pending": status.pending})
    by_id = {r["proposal_id"]: r for r in stage.ranking or []}
    chosen = list(stage.shortlist or [])
    rows = [{**by_id[p], "rank": i} for i, p in enumerate(chosen, start=1)]
    first = set(stage.config.get("initial_shortlist", []))
    removed = sorted(set(stage.config.get("removed", [])))
    promoted = sorted(p for p in chosen if p not in first)
    number = await _next(uow, cmd.cycle_year, "announcement")
    summary = FinalShortlistSummary(
        cycle_year=cmd.cycle_year,
        stage=cmd.stage,
        shortlist=SetRef(count=len(chosen), digest=digest_ids(chosen)),
        removed=removed,
        promoted=promoted,
        announcement_no=f"{number:03d}/PANSEL-KOVABLIK/{cmd.cycle_year}",
    )
    stage.state, stage.final_rows, stage.final_summary = "final", rows, summary.model_dump(mode="json")
    uow.emit(
        ShortlistFinal(
            cycle_year=cmd.cycle_year,
            stage=cmd.stage,
            announcement_no=summary.announcement_no,
            rows=[RankedRow.model_validate(r) for r in rows],
            digest=summary.shortlist.digest,
        )
    )
    return summary


