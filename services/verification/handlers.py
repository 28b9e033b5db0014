"""Verification's use cases, one function per command or event: load through the repositories,
call the aggregate, save, emit what it returns. The rules live in ``domain``; the storage in
``store``; ``app`` binds each handler to the runtime's unit of work (``SqlUnit``)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from contracts.base import Competition, EvaluationKind, Event
from contracts.cycle import CycleCancelled
from contracts.registration import ProposalForwarded, ProposalReturned, ProposalSnapshot, ProposalWithdrawn
from contracts.verification import (
    CloseEvaluation,
    CloseVerification,
    EnterEvaluation,
    EvaluationClosedSummary,
    EvaluationPage,
    EvaluationStatus,
    EvaluationView,
    EvaluationWindow,
    GetDecision,
    GetEvaluation,
    GetWbkResult,
    ListEvaluations,
    OpenEvaluation,
    OverrideDecision,
    OverrideWbk,
    ProposalDecisionView,
    ReviewEvaluation,
    StartVerification,
    SubmitLke,
    VerificationClosedSummary,
    VerificationCounts,
    VerificationStatus,
    WbkResult,
)
from services.verification import domain, rubric_files
from services.verification.domain import Context, Evaluation, EvaluationRound, Verification, WbkEvaluation
from services.verification.store import VerificationUnit
from services.verification.thresholds import threshold_sets

PENDING_LISTED = 1000
"""How many waiting proposals ``verification_status`` lists at most."""

# --------------------------------------------------------------------------- the copy of registration's proposals


async def _remember(uow: VerificationUnit, year: int, snapshot: ProposalSnapshot, forwarded: bool) -> None:
    await uow.copies.remember(year, snapshot.model_dump(mode="json"), forwarded)


async def on_forwarded(evt: ProposalForwarded, uow: VerificationUnit) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, True)


async def on_withdrawn(evt: ProposalWithdrawn, uow: VerificationUnit) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, False)


async def on_returned(evt: ProposalReturned, uow: VerificationUnit) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, False)


# --------------------------------------------------------------------------- the administrative run


async def _counts(uow: VerificationUnit, year: int, run: Verification | None, track: Competition) -> VerificationCounts:
    return domain.tally(year, run, await uow.decisions.tally(year, track), track)


async def _complete_if_done(uow: VerificationUnit, run: Verification) -> list[Event]:
    return run.complete_if_done(await _counts(uow, run.cycle_year, run, run.track))


async def start_verification(cmd: StartVerification, uow: VerificationUnit) -> VerificationCounts:
    """The track's own check: its forwarded set (KOVABLIK's proposals or KBK's risalah) with its rules."""
    run = await uow.runs.get(cmd.cycle_year, cmd.track)
    if run is None:
        run, decisions, events = Verification.start(cmd, await uow.copies.forwarded(cmd.cycle_year, cmd.track))
        await uow.decisions.add_all(decisions)
        uow.emit(*events)
    elif not run.reopen():  # started already; a cancelled year's cycle started again goes on
        return await _counts(uow, cmd.cycle_year, run, cmd.track)
    uow.emit(*await _complete_if_done(uow, run))  # a reopened run may have been decided before its cancel
    await uow.runs.save(run)
    return await _counts(uow, cmd.cycle_year, run, cmd.track)


async def verification_status(cmd: VerificationStatus, uow: VerificationUnit) -> VerificationCounts:
    counts = await _counts(uow, cmd.cycle_year, await uow.runs.get(cmd.cycle_year, cmd.track), cmd.track)
    if not cmd.list_pending:
        return counts
    pending = await uow.decisions.pending_ids(cmd.cycle_year, PENDING_LISTED, cmd.track)
    return counts.model_copy(update={"pending_ids": pending})


async def get_decision(cmd: GetDecision, uow: VerificationUnit) -> ProposalDecisionView:
    decision = await uow.decisions.get(cmd.proposal_id)
    run = None if decision is not None else next(iter(await uow.runs.for_year(cmd.cycle_year)), None)
    return domain.readable_decision(decision, run, cmd.cycle_year, cmd.proposal_id).view()


async def on_cycle_cancelled(evt: CycleCancelled, uow: VerificationUnit) -> None:
    """A cancelled cycle takes no more overrides in any of its runs (until the year is started again)."""
    for run in await uow.runs.for_year(evt.cycle_year):
        run.cancel()
        await uow.runs.save(run)


async def override_decision(cmd: OverrideDecision, uow: VerificationUnit) -> ProposalDecisionView:
    """Until the workflow's ``close_verification`` of the proposal's track, which comes at the
    deadline as the operator left it (an extension moves only the workflow's timer)."""
    decision = await uow.decisions.get(cmd.proposal_id)
    track = decision.track if decision is not None else Competition.KOVABLIK
    run = domain.started(await uow.runs.get(cmd.cycle_year, track), cmd.cycle_year, track)
    snapshots = await uow.copies.snapshots([cmd.proposal_id])
    decision, events = run.override(decision, cmd, snapshots.get(cmd.proposal_id), cmd.at or uow.now)
    uow.emit(*events)
    await uow.decisions.save(decision)
    uow.emit(*await _complete_if_done(uow, run))
    await uow.runs.save(run)
    return decision.view()


async def close_verification(cmd: CloseVerification, uow: VerificationUnit) -> VerificationClosedSummary:
    run = domain.started(await uow.runs.get(cmd.cycle_year, cmd.track), cmd.cycle_year, cmd.track)
    if run.summary is None:  # closing again answers the first summary
        decisions = await uow.decisions.for_year(cmd.cycle_year, cmd.track)
        snapshots = await uow.copies.snapshots(d.proposal_id for d in decisions if d.pending)
        uow.emit(*run.close(decisions, snapshots, await uow.wbk.for_year(cmd.cycle_year)))
        await uow.decisions.save(*decisions)
        await uow.runs.save(run)
    assert run.summary is not None
    return run.summary


# --------------------------------------------------------------------------- WBK


async def submit_lke(cmd: SubmitLke, uow: VerificationUnit) -> WbkResult:
    domain.wbk_open(await uow.runs.get(cmd.cycle_year))
    thresholds = domain.pick_threshold_set(threshold_sets(), cmd.threshold_set)
    evaluation, events = WbkEvaluation.evaluate(cmd, thresholds)
    await uow.wbk.save(evaluation)
    uow.emit(*events)
    return evaluation.result


async def override_wbk(cmd: OverrideWbk, uow: VerificationUnit) -> WbkResult:
    run = await uow.runs.get(cmd.cycle_year)
    found = await uow.wbk.get(cmd.cycle_year, cmd.unit_code)
    evaluation, events = domain.override_wbk(run, found, cmd, cmd.at or uow.now)
    await uow.wbk.save(evaluation)
    uow.emit(*events)
    return evaluation.result


async def get_wbk_result(cmd: GetWbkResult, uow: VerificationUnit) -> WbkResult:
    found = await uow.wbk.get(cmd.cycle_year, cmd.unit_code)
    return domain.known_evaluation(found, cmd.cycle_year, cmd.unit_code).result


# --------------------------------------------------------------------------- evaluations (SAKIP, RB, CETTAR)


def _lke_maxima() -> dict[str, Decimal]:
    return {key: domain.lke_maximum(rules) for key, rules in threshold_sets().items()}


async def _view(uow: VerificationUnit, year: int, kind: EvaluationKind, subject: str) -> EvaluationView | None:
    found = await uow.evaluations.get(year, kind, subject)
    return None if found is None else found.view


async def _cettar_contexts(uow: VerificationUnit, year: int, subjects: Iterable[str]) -> dict[str, Context]:
    """CETTAR's read parts of each subject: the year's SAKIP and RB results and its units' LKEs."""
    wbk, maxima = await uow.wbk.for_year(year), _lke_maxima()
    out = {}
    for subject in subjects:
        units = [w for w in wbk if w.agency_code == subject]
        sakip, rb = await _view(uow, year, EvaluationKind.SAKIP, subject), await _view(uow, year, EvaluationKind.RB, subject)
        out[subject] = domain.cettar_context(year, sakip, rb, units, maxima)
    return out


async def _context(uow: VerificationUnit, cmd: EnterEvaluation) -> Context:
    if cmd.kind == EvaluationKind.SAKIP:
        return Context(previous_grade=domain.previous_grade(await _view(uow, cmd.cycle_year - 1, cmd.kind, cmd.subject_code)))
    if cmd.kind == EvaluationKind.CETTAR:
        return (await _cettar_contexts(uow, cmd.cycle_year, [cmd.subject_code]))[cmd.subject_code]
    return Context()


async def open_evaluation(cmd: OpenEvaluation, uow: VerificationUnit) -> EvaluationWindow:
    """Open the track's window with its rubric (refused when unknown). Opening again changes nothing."""
    found = await uow.rounds.get(cmd.cycle_year, cmd.kind)
    if found is None:
        rubric_files.rubric(cmd.rubric, cmd.kind.value)
        found = EvaluationRound.open(cmd)
        await uow.rounds.save(found)
    return found.window(await uow.evaluations.tally(cmd.cycle_year, cmd.kind))


async def enter_evaluation(cmd: EnterEvaluation, uow: VerificationUnit) -> EvaluationView:
    found = domain.open_round(await uow.rounds.get(cmd.cycle_year, cmd.kind), cmd.cycle_year, cmd.kind)
    found.check_evaluator(cmd.evaluator_id)
    rubric = rubric_files.rubric(found.rubric, cmd.kind.value)
    existing = await uow.evaluations.get(cmd.cycle_year, cmd.kind, cmd.subject_code)
    sheet, events = Evaluation.enter(existing, cmd, rubric, await _context(uow, cmd), uow.now)
    await uow.evaluations.save(sheet)
    uow.emit(*events)
    return sheet.view


async def review_evaluation(cmd: ReviewEvaluation, uow: VerificationUnit) -> EvaluationView:
    found = domain.open_round(await uow.rounds.get(cmd.cycle_year, cmd.kind), cmd.cycle_year, cmd.kind)
    found.check_reviewer(cmd.reviewer_id)
    sheet = domain.known_sheet(await uow.evaluations.get(cmd.cycle_year, cmd.kind, cmd.subject_code), cmd.cycle_year, cmd.kind, cmd.subject_code)
    uow.emit(*sheet.review(cmd, uow.now))
    await uow.evaluations.save(sheet)
    return sheet.view


async def close_evaluation(cmd: CloseEvaluation, uow: VerificationUnit) -> EvaluationClosedSummary:
    """Freeze the track's results; CETTAR's ratings read the then-approved results again."""
    found = domain.opened(await uow.rounds.get(cmd.cycle_year, cmd.kind), cmd.cycle_year, cmd.kind)
    if found.summary is None:  # closing again answers the first summary
        sheets = await uow.evaluations.for_round(cmd.cycle_year, cmd.kind)
        subjects = [s.view.subject_code for s in sheets] if cmd.kind == EvaluationKind.CETTAR else []
        contexts = await _cettar_contexts(uow, cmd.cycle_year, subjects)
        uow.emit(*found.close(sheets, rubric_files.rubric(found.rubric, cmd.kind.value), contexts))
        await uow.evaluations.save(*sheets)
        await uow.rounds.save(found)
    assert found.summary is not None
    return found.summary


async def get_evaluation(cmd: GetEvaluation, uow: VerificationUnit) -> EvaluationView:
    found = await uow.evaluations.get(cmd.cycle_year, cmd.kind, cmd.subject_code)
    return domain.known_sheet(found, cmd.cycle_year, cmd.kind, cmd.subject_code).view


async def list_evaluations(cmd: ListEvaluations, uow: VerificationUnit) -> EvaluationPage:
    sheets, total = await uow.evaluations.page(cmd.cycle_year, cmd.kind, cmd.state, cmd.offset, cmd.limit)
    following = cmd.offset + len(sheets)
    return EvaluationPage(items=[s.view for s in sheets], total=total, next_offset=following if following < total else None)


async def evaluation_status(cmd: EvaluationStatus, uow: VerificationUnit) -> EvaluationWindow:
    found = await uow.rounds.get(cmd.cycle_year, cmd.kind)
    return domain.window(cmd.cycle_year, cmd.kind, found, await uow.evaluations.tally(cmd.cycle_year, cmd.kind))
