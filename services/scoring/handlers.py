"""Scoring's use cases: one function per command or event. Each loads through the repositories,
calls the aggregate, saves and emits what it returned; the rules live in ``domain``."""

from __future__ import annotations

from typing import Any

from contracts.base import SetRef, digest_ids
from contracts.cycle import CycleCancelled
from contracts.scoring import (
    CloseStage,
    ConflictDeclaredView,
    DecideObjection,
    DeclareConflict,
    FileObjection,
    FinalizeShortlist,
    FinalShortlistSummary,
    GetShortlist,
    ImportJurors,
    JurorAssignments,
    JurorAssignmentsView,
    ListJurors,
    ObjectionsStatus,
    ObjectionsStatusView,
    ObjectionView,
    OpenStage,
    ReminderDue,
    RemindJurors,
    ShortlistView,
    StageClosedSummary,
    StageStatus,
    StageStatusView,
    StageSummary,
    SubmitScore,
)
from contracts.verification import ProposalDisqualified, ProposalVerified, VerificationClosed
from services.common.errors import DomainError, NotReady
from services.scoring import domain, views
from services.scoring.domain import Stage, StageConfig, StageState
from services.scoring.repository import ScoringUnit

# --------------------------------------------------------------------------- read model


async def on_proposal_verified(evt: ProposalVerified | ProposalDisqualified, uow: ScoringUnit) -> None:
    # A disqualified one is kept too: an override may make it eligible, and the frozen list decides who enters.
    await uow.proposals.keep(evt.proposal.id, evt.cycle_year, evt.proposal.model_dump(mode="json"))


on_proposal_disqualified = on_proposal_verified


async def on_verification_closed(evt: VerificationClosed, uow: ScoringUnit) -> None:
    await uow.proposals.freeze(evt.cycle_year, evt.summary.track.value, list(evt.eligible_ids))


async def on_cycle_cancelled(evt: CycleCancelled, uow: ScoringUnit) -> None:
    """A cancelled cycle's open stage takes no more scores, a closed one no more objections (until
    the year is started again)."""
    for stage in await uow.stages.of_cycle(evt.cycle_year, (StageState.OPEN, StageState.CLOSED)):
        stage.cancel()
        await uow.stages.save(stage)


# --------------------------------------------------------------------------- jurors


async def import_jurors(cmd: ImportJurors, uow: ScoringUnit) -> dict[str, int]:
    created = [await uow.jurors.upsert(j) for j in cmd.jurors]
    return {"created": sum(created), "updated": len(created) - sum(created)}


async def list_jurors(cmd: ListJurors, uow: ScoringUnit) -> dict[str, Any]:
    items, total = await uow.jurors.page(cmd.offset, cmd.limit)
    return {"items": items, "total": total, "offset": cmd.offset}


# --------------------------------------------------------------------------- stages


async def open_stage(cmd: OpenStage, uow: ScoringUnit) -> StageSummary:
    existing = await uow.stages.find(cmd.cycle_year, cmd.stage)
    if existing is not None:  # a retry, or the year's cycle started again: its jurors go on
        existing.reopen()
        await uow.stages.save(existing)
        return views.progress_summary(existing, *await uow.stages.progress(existing))
    ids = await _entrant_ids(cmd, uow)
    copies = await uow.proposals.copies(ids)
    missing = [i for i in ids if i not in copies]
    if missing:
        raise NotReady(message=f"{len(missing)} entrant(s) not known yet", details={"missing": missing[:20]})
    plan = domain.assign([domain.entrant(copies[i]) for i in ids], await uow.jurors.pool(cmd.cycle_year), cmd.jurors_per_proposal, cmd.seed)
    config = StageConfig.from_json(cmd.model_dump(mode="json"))
    stage, events = Stage.open(cmd.cycle_year, cmd.stage, config, ids, cmd.deadline, plan)
    uow.stages.add(stage)
    await uow.stages.save(stage)
    uow.emit(events)
    return views.summary(stage, sum(len(js) for js in plan.values()), 0, len({j for js in plan.values() for j in js}))


async def _entrant_ids(cmd: OpenStage, uow: ScoringUnit) -> list[str]:
    """The stage's entrants: the cycle's eligible list, or the previous stage's final shortlist,
    as many and the same as the workflow expects."""
    ref = cmd.entrants
    if ref.source == "verification":
        ids = await uow.proposals.eligible(cmd.cycle_year, ref.track.value)
        if ids is None:
            raise NotReady(
                message=f"the eligible list of {cmd.cycle_year} ({ref.track.value}) has not arrived yet",
                details={"waiting_for": "verification_closed", "track": ref.track.value},
            )
    else:
        prev = await uow.stages.find(cmd.cycle_year, ref.stage or "")
        if prev is None or prev.final_rows is None:
            raise NotReady(message=f"the final shortlist of stage {ref.stage} is not there yet", details={"waiting_for": ref.stage})
        ids = [r["proposal_id"] for r in prev.final_rows]
    have = SetRef(count=len(ids), digest=digest_ids(ids))
    if have != ref.expected:
        raise NotReady(message=f"entrants differ: have {have.count}, expected {ref.expected.count}", details={"have": have.count, "expected": ref.expected.count})
    return sorted(ids)


async def submit_scores(cmds: list[SubmitScore], uow: ScoringUnit) -> list[Any]:
    """The scores of a batch (group commit), in arrival order. Each stage's row is locked, so
    revisions, the divergence rule and "fully scored" see every earlier score, on any replica;
    what a score needs is read once for the whole batch and the rows are written together."""
    wanted: dict[tuple[int, str], set[str]] = {}
    for c in cmds:
        wanted.setdefault((c.cycle_year, c.stage), set()).add(c.proposal_id)
    stages = await uow.stages.for_scores(wanted)
    jurors = await uow.jurors.known(c.juror_id for c in cmds)
    results: list[Any] = []
    for cmd in cmds:
        try:
            results.append(await _score(cmd, stages, jurors, uow))
        except DomainError as exc:
            results.append(exc)
    for stage in stages.values():
        await _save_and_say_if_fully_scored(stage, uow)
    return results


async def _save_and_say_if_fully_scored(stage: Stage, uow: ScoringUnit) -> None:
    """Write the stage; once every assignment has a score, say so (once), counting what was written."""
    await uow.stages.save(stage)
    if stage.may_be_fully_scored:
        uow.emit(stage.fully_scored(await uow.stages.assignments(stage)))
        await uow.stages.save(stage)


async def _score(cmd: SubmitScore, stages: dict[tuple[int, str], Stage], jurors: set[str], uow: ScoringUnit) -> dict[str, Any]:
    """One score of a batch; it raises before changing anything when it is refused."""
    if cmd.juror_id not in jurors:
        raise domain.unknown_juror(cmd.juror_id)
    stage = domain.find_stage(stages, cmd.cycle_year, cmd.stage)
    entry, events = stage.score(cmd.juror_id, cmd.proposal_id, dict(cmd.scores), cmd.comment, uow.now, jurors)
    added = None
    spread = stage.needs_another_juror(cmd.proposal_id)
    if spread is not None:  # the jurors disagree: one more juror, once
        copy = await uow.proposals.copy(cmd.proposal_id)
        assert copy is not None
        await uow.stages.load_loads(stage)
        added, more = stage.add_juror(domain.entrant(copy), await uow.jurors.pool(cmd.cycle_year), spread)
        events += more
    uow.emit(events)
    return {"proposal_id": cmd.proposal_id, "juror_id": cmd.juror_id, "weighted_total": round(entry.total, 4), "revision": entry.revision, "juror_added": added}


async def declare_conflict(cmd: DeclareConflict, uow: ScoringUnit) -> ConflictDeclaredView:
    """A juror gives back an assignment they have a conflict of interest with, before scoring it;
    the conflict is remembered so they are never assigned that proposal again this cycle."""
    stage = await uow.stages.for_a_change_of_juror(cmd.cycle_year, cmd.stage, cmd.proposal_id)
    copy = await uow.proposals.copy(cmd.proposal_id)
    if copy is None:
        raise domain.not_assigned(cmd.stage, cmd.juror_id, cmd.proposal_id)
    pool = [j for j in await uow.jurors.pool(cmd.cycle_year) if j.id != cmd.juror_id]
    replacement, events = stage.declare_conflict(cmd.juror_id, domain.entrant(copy), cmd.reason, pool)
    uow.emit(events)
    await _save_and_say_if_fully_scored(stage, uow)
    return ConflictDeclaredView(stage=cmd.stage, proposal_id=cmd.proposal_id, juror_id=cmd.juror_id, replacement_juror_id=replacement)


async def stage_status(cmd: StageStatus, uow: ScoringUnit) -> StageStatusView:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    return views.stage_status(stage, *await uow.stages.progress(stage), cmd.per_juror)


async def juror_assignments(cmd: JurorAssignments, uow: ScoringUnit) -> JurorAssignmentsView:
    """What one juror is to score, stage by stage, with the criteria and their own latest marks."""
    by_stage = await uow.jurors.assignments(cmd.cycle_year, cmd.juror_id, cmd.stage)
    latest = await uow.jurors.latest_scores(cmd.cycle_year, cmd.juror_id)
    copies = await uow.proposals.copies(sorted({p for ps in by_stage.values() for p in ps}))
    stages = [views.juror_stage(await uow.stages.get(cmd.cycle_year, key), by_stage[key], latest, copies) for key in sorted(by_stage)]
    return JurorAssignmentsView(cycle_year=cmd.cycle_year, juror_id=cmd.juror_id, stages=stages)


async def remind_jurors(cmd: RemindJurors, uow: ScoringUnit) -> dict[str, int]:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    if stage.status != StageState.OPEN:
        return {"reminded": 0}
    if cmd.deadline is not None:  # the workflow's deadline, extensions included
        stage.deadline = cmd.deadline
        await uow.stages.save(stage)
    assigned, scored = await uow.stages.progress(stage)
    open_by: dict[str, list[str]] = {}
    for juror, pid in assigned:
        if (juror, pid) not in scored:
            open_by.setdefault(juror, []).append(pid)
    uow.emit(
        ReminderDue(cycle_year=cmd.cycle_year, stage=cmd.stage, juror_id=juror, open_assignments=sorted(pids), deadline=stage.deadline)
        for juror, pids in sorted(open_by.items())
    )
    return {"reminded": len(open_by)}


async def close_stage(cmd: CloseStage, uow: ScoringUnit) -> StageClosedSummary:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage, lock=True)
    if stage.closed_summary is not None:  # a retry answers as it ended
        return StageClosedSummary.model_validate(stage.closed_summary)
    copies = await uow.proposals.copies(stage.proposals)
    number = await uow.counters.next(cmd.cycle_year, "announcement")
    closing = domain.Closing(cmd.at, cmd.objection_window_until, uow.now, number, await uow.stages.assignments(stage))
    entrants = [domain.entrant(copies[p]) for p in stage.proposals]
    summary, events = stage.close(entrants, await uow.stages.latest_scores(stage), copies, closing)
    await uow.stages.save(stage)
    uow.emit(events)
    return summary


async def get_shortlist(cmd: GetShortlist, uow: ScoringUnit) -> ShortlistView:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    stage.require_shortlist()
    return views.shortlist(stage)


# --------------------------------------------------------------------------- objections


async def file_objection(cmd: FileObjection, uow: ScoringUnit) -> ObjectionView:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    number = await uow.counters.next(cmd.cycle_year, "objection")  # rolled back with a refusal
    # A filer may not backdate an objection into a window that has passed.
    objection, events = stage.file_objection(number, cmd.proposal_id, cmd.filer, cmd.reason, max(cmd.at or uow.now, uow.now))
    uow.objections.add(objection)
    uow.emit(events)
    return objection.view()


async def decide_objection(cmd: DecideObjection, uow: ScoringUnit) -> ObjectionView:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    objection = await uow.objections.get(cmd.objection_id)
    events = stage.decide_objection(objection, cmd.objection_id, cmd.decision, cmd.reason, cmd.decided_by)
    assert objection is not None
    uow.objections.save(objection)
    await uow.stages.save(stage)
    uow.emit(events)
    return objection.view()


async def objections_status(cmd: ObjectionsStatus, uow: ScoringUnit) -> ObjectionsStatusView:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    return views.objections_status(stage, await uow.objections.of_stage(cmd.cycle_year, cmd.stage))


async def finalize_shortlist(cmd: FinalizeShortlist, uow: ScoringUnit) -> FinalShortlistSummary:
    stage = await uow.stages.get(cmd.cycle_year, cmd.stage)
    if stage.final_summary is not None:  # a retry answers as it ended
        return FinalShortlistSummary.model_validate(stage.final_summary)
    pending = views.objections_status(stage, await uow.objections.of_stage(cmd.cycle_year, cmd.stage)).pending
    number = await uow.counters.next(cmd.cycle_year, "announcement")  # rolled back with a refusal
    summary, events = stage.finalize(cmd.at, pending, number)
    await uow.stages.save(stage)
    uow.emit(events)
    return summary
