"""Verification's use cases, one function per command or event: load through the repositories,
call the aggregate, save, emit what it returns. The rules live in ``domain``; the storage in
``store``; ``app`` binds each handler to the runtime's unit of work (``SqlUnit``)."""

from __future__ import annotations

from contracts.base import Event
from contracts.cycle import CycleCancelled
from contracts.registration import ProposalForwarded, ProposalReturned, ProposalSnapshot, ProposalWithdrawn
from contracts.verification import (
    CloseVerification,
    GetDecision,
    GetWbkResult,
    OverrideDecision,
    OverrideWbk,
    ProposalDecisionView,
    StartVerification,
    SubmitLke,
    VerificationClosedSummary,
    VerificationCounts,
    VerificationStatus,
    WbkResult,
)
from services.verification import domain
from services.verification.domain import Verification, WbkEvaluation
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


async def _counts(uow: VerificationUnit, year: int, run: Verification | None) -> VerificationCounts:
    return domain.tally(year, run, await uow.decisions.tally(year))


async def _complete_if_done(uow: VerificationUnit, run: Verification) -> list[Event]:
    return run.complete_if_done(await _counts(uow, run.cycle_year, run))


async def start_verification(cmd: StartVerification, uow: VerificationUnit) -> VerificationCounts:
    run = await uow.runs.get(cmd.cycle_year)
    if run is None:
        run, decisions, events = Verification.start(cmd, await uow.copies.forwarded(cmd.cycle_year))
        await uow.decisions.add_all(decisions)
        uow.emit(*events)
    elif not run.reopen():  # started already; a cancelled year's cycle started again goes on
        return await _counts(uow, cmd.cycle_year, run)
    uow.emit(*await _complete_if_done(uow, run))  # a reopened run may have been decided before its cancel
    await uow.runs.save(run)
    return await _counts(uow, cmd.cycle_year, run)


async def verification_status(cmd: VerificationStatus, uow: VerificationUnit) -> VerificationCounts:
    counts = await _counts(uow, cmd.cycle_year, await uow.runs.get(cmd.cycle_year))
    if not cmd.list_pending:
        return counts
    return counts.model_copy(update={"pending_ids": await uow.decisions.pending_ids(cmd.cycle_year, PENDING_LISTED)})


async def get_decision(cmd: GetDecision, uow: VerificationUnit) -> ProposalDecisionView:
    decision = await uow.decisions.get(cmd.proposal_id)
    run = await uow.runs.get(cmd.cycle_year) if decision is None else None
    return domain.readable_decision(decision, run, cmd.cycle_year, cmd.proposal_id).view()


async def on_cycle_cancelled(evt: CycleCancelled, uow: VerificationUnit) -> None:
    """A cancelled cycle takes no more overrides (until the year is started again)."""
    run = await uow.runs.get(evt.cycle_year)
    if run is not None:
        run.cancel()
        await uow.runs.save(run)


async def override_decision(cmd: OverrideDecision, uow: VerificationUnit) -> ProposalDecisionView:
    """Until the workflow's ``close_verification``, which comes at the deadline as the operator
    left it (an extension moves only the workflow's timer)."""
    run = domain.started(await uow.runs.get(cmd.cycle_year), cmd.cycle_year)
    decision = await uow.decisions.get(cmd.proposal_id)
    snapshots = await uow.copies.snapshots([cmd.proposal_id])
    decision, events = run.override(decision, cmd, snapshots.get(cmd.proposal_id), cmd.at or uow.now)
    uow.emit(*events)
    await uow.decisions.save(decision)
    uow.emit(*await _complete_if_done(uow, run))
    await uow.runs.save(run)
    return decision.view()


async def close_verification(cmd: CloseVerification, uow: VerificationUnit) -> VerificationClosedSummary:
    run = domain.started(await uow.runs.get(cmd.cycle_year), cmd.cycle_year)
    if run.summary is None:  # closing again answers the first summary
        decisions = await uow.decisions.for_year(cmd.cycle_year)
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
