"""Verification's use cases: building the copy of forwarded proposals, the administrative run,
overrides, closing, and the WBK evaluation."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contracts.base import AdminDecision, ErrorCode, WbkDecision, digest_ids, title_key
from contracts.cycle import CycleCancelled
from contracts.registration import ProposalForwarded, ProposalReturned, ProposalWithdrawn
from contracts.verification import (
    CloseVerification,
    DecisionOverridden,
    GetDecision,
    GetWbkResult,
    OverrideDecision,
    OverrideWbk,
    ProposalDecisionView,
    ProposalDisqualified,
    ProposalVerified,
    Reasoned,
    StartVerification,
    SubmitLke,
    VerificationClosed,
    VerificationClosedSummary,
    VerificationCompleted,
    VerificationCounts,
    VerificationError,
    VerificationStatus,
    VerifiedProposal,
    WbkEvaluated,
    WbkResult,
)
from services.common.errors import DomainError, NotReady
from services.common.runtime import UnitOfWork
from services.verification import domain
from services.verification.store import DecisionRow, ProposalCopy, RunRow, WbkRow
from services.verification.thresholds import threshold_set

DECISIONS, COPIES = DecisionRow.__table__, ProposalCopy.__table__  # type: ignore[attr-defined]

# --------------------------------------------------------------------------- the copy of registration's proposals


async def _remember(uow: UnitOfWork, year: int, snapshot: Any, forwarded: bool) -> None:
    row = await uow.session.get(ProposalCopy, snapshot.id)
    data = snapshot.model_dump(mode="json")
    if row is None:
        uow.session.add(ProposalCopy(id=snapshot.id, cycle_year=year, forwarded=forwarded, snapshot=data))
    else:
        row.forwarded, row.snapshot = forwarded, data


async def on_forwarded(evt: ProposalForwarded, uow: UnitOfWork) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, True)


async def on_withdrawn(evt: ProposalWithdrawn, uow: UnitOfWork) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, False)


async def on_returned(evt: ProposalReturned, uow: UnitOfWork) -> None:
    await _remember(uow, evt.cycle_year, evt.proposal, False)


# --------------------------------------------------------------------------- the administrative run


def _verified(snapshot: dict[str, Any]) -> VerifiedProposal:
    c = snapshot["content"]
    return VerifiedProposal(
        id=snapshot["id"],
        title=c["title"],
        group=c["group"],
        category=c["category"],
        unit_code=snapshot["unit_code"],
        unit_name=snapshot["unit_name"],
        agency_code=snapshot["agency_code"],
        agency_name=snapshot["agency_name"],
        forwarded_at=snapshot.get("forwarded_at"),
    )


async def _counts(uow: UnitOfWork, year: int) -> VerificationCounts:
    run = await uow.session.get(RunRow, year)
    d = DECISIONS.c
    # Counted by the database: a national run has tens of thousands of decisions. Only a
    # verifier's override moves ``final`` away from ``automatic``.
    counts = (
        await uow.session.execute(
            sa.select(d.final, d.automatic, sa.func.count()).where(d.cycle_year == year).group_by(d.final, d.automatic)
        )
    ).all()
    return VerificationCounts(
        cycle_year=year,
        state=run.state if run else "not_started",
        total=sum(n for *_, n in counts),
        pending=sum(n for final, _, n in counts if final is None),
        eligible=sum(n for final, _, n in counts if final == AdminDecision.ELIGIBLE),
        disqualified=sum(n for final, _, n in counts if final == AdminDecision.DISQUALIFIED),
        overridden=sum(n for final, automatic, n in counts if final is not None and final != automatic),
        deadline=run.deadline if run else None,
    )


def _emit_decision(uow: UnitOfWork, year: int, row: DecisionRow, snapshot: dict[str, Any]) -> None:
    proposal = _verified(snapshot)
    overridden = row.final != row.automatic
    if row.final == AdminDecision.ELIGIBLE:
        uow.emit(ProposalVerified(cycle_year=year, proposal=proposal, overridden=overridden))
    else:
        reasons = [Reasoned.model_validate(r) for r in row.reasons]
        uow.emit(ProposalDisqualified(cycle_year=year, proposal=proposal, reasons=reasons, overridden=overridden))


async def _complete_if_done(uow: UnitOfWork, run: RunRow) -> None:
    counts = await _counts(uow, run.cycle_year)
    if run.state == "open" and counts.pending == 0:
        run.state = "completed"
        counts = counts.model_copy(update={"state": "completed"})
        uow.emit(VerificationCompleted(cycle_year=run.cycle_year, counts=counts))


async def start_verification(cmd: StartVerification, uow: UnitOfWork) -> VerificationCounts:
    run = await uow.session.get(RunRow, cmd.cycle_year)
    if run is not None:
        if run.state == "cancelled":  # the year's cycle started again: its verifiers go on
            run.state = "open"
            await uow.session.flush()
            await _complete_if_done(uow, run)  # everything was decided before the cancel
        return await _counts(uow, cmd.cycle_year)
    c_ = COPIES.c
    copies = (await uow.session.execute(sa.select(c_.id, c_.snapshot).where(c_.cycle_year == cmd.cycle_year, c_.forwarded))).all()
    have = {"count": len(copies), "digest": digest_ids(c.id for c in copies)}
    if have != cmd.expected.model_dump():
        raise NotReady(
            message=f"the copy of forwarded proposals has {len(copies)}, the call closed with {cmd.expected.count}; waiting for events",
            details={"have": have["count"], "expected": cmd.expected.count},
        )
    by_title: dict[str, list[str]] = {}
    for c in copies:
        by_title.setdefault(title_key(c.snapshot["content"]["title"]), []).append(c.id)
    run = RunRow(
        cycle_year=cmd.cycle_year,
        deadline=cmd.deadline,
        call_closed_at=cmd.call_closed_at,
        rules=cmd.rules.model_dump(mode="json"),
    )
    uow.session.add(run)
    rows = []
    for c in sorted(copies, key=lambda c: c.id):
        twins = [i for i in by_title[title_key(c.snapshot["content"]["title"])] if i != c.id]
        reasons = domain.check_proposal(c.snapshot, cmd.rules, cmd.call_closed_at, sorted(twins))
        automatic = AdminDecision.DISQUALIFIED if reasons else AdminDecision.ELIGIBLE
        row = DecisionRow(
            proposal_id=c.id,
            cycle_year=cmd.cycle_year,
            automatic=automatic.value,
            reasons=[r.model_dump() for r in reasons],
            final=None if cmd.rules.review_required else automatic.value,
            overrides=[],
        )
        rows.append(row)
        if row.final is not None:
            _emit_decision(uow, cmd.cycle_year, row, c.snapshot)
    await uow.session.flush()
    # Thousands of rows: one bulk insert, not the ORM's one object at a time.
    if rows:
        await uow.session.execute(sa.insert(DECISIONS), [r.model_dump() for r in rows])
    await _complete_if_done(uow, run)
    return await _counts(uow, cmd.cycle_year)


async def verification_status(cmd: VerificationStatus, uow: UnitOfWork) -> VerificationCounts:
    counts = await _counts(uow, cmd.cycle_year)
    if not cmd.list_pending:
        return counts
    d = DECISIONS.c
    waiting = await uow.session.execute(
        sa.select(d.proposal_id).where(d.cycle_year == cmd.cycle_year, d.final.is_(None)).order_by(d.proposal_id).limit(1000)
    )
    return counts.model_copy(update={"pending_ids": [r[0] for r in waiting]})


def _decision_view(row: DecisionRow) -> ProposalDecisionView:
    return ProposalDecisionView(
        proposal_id=row.proposal_id,
        automatic=row.automatic,  # type: ignore[arg-type]
        reasons=row.reasons,  # type: ignore[arg-type]
        final=row.final or row.automatic,  # type: ignore[arg-type]
        overrides=row.overrides,
        pending=row.final is None,
    )


async def get_decision(cmd: GetDecision, uow: UnitOfWork) -> ProposalDecisionView:
    row = await uow.session.get(DecisionRow, cmd.proposal_id)
    if row is None and await uow.session.get(RunRow, cmd.cycle_year) is None:
        raise DomainError(
            VerificationError.NOT_STARTED,
            f"verification of {cmd.cycle_year} has not started: decisions exist once the call has closed"
            " and the cycle has started verification",
            {"cycle_year": cmd.cycle_year},
        )
    if row is None or row.cycle_year != cmd.cycle_year:
        raise DomainError(VerificationError.UNKNOWN_PROPOSAL, f"no decision for proposal {cmd.proposal_id} in {cmd.cycle_year}")
    return _decision_view(row)


async def _open_run(uow: UnitOfWork, year: int) -> RunRow:
    """The run, while it takes overrides: until the workflow's ``close_verification``, which comes
    at the deadline as the operator left it (an extension moves only the workflow's timer)."""
    run = await uow.session.get(RunRow, year)
    if run is None:
        raise DomainError(VerificationError.NOT_STARTED, f"verification {year} has not started")
    if run.state in ("closed", "cancelled"):
        why = "decisions are final" if run.state == "closed" else "its cycle was cancelled"
        raise DomainError(VerificationError.CLOSED, f"verification {year} is {run.state}; {why}", {"state": run.state})
    return run


async def on_cycle_cancelled(evt: CycleCancelled, uow: UnitOfWork) -> None:
    """A cancelled cycle takes no more overrides (until the year is started again)."""
    run = await uow.session.get(RunRow, evt.cycle_year)
    if run is not None and run.state in ("open", "completed"):
        run.state = "cancelled"


def _a_verifier_of(run: RunRow | None, verifier_id: str) -> None:
    """The cycle's verifier list (its rules), when it names one, must name the acting verifier."""
    listed = (run.rules or {}).get("verifiers") if run is not None else None
    if listed is not None and verifier_id not in listed:
        raise DomainError(
            ErrorCode.NOT_A_VERIFIER,
            f"{verifier_id} is not in the verifier list of cycle {run.cycle_year if run else ''}".strip(),
            {"verifier_id": verifier_id},
        )


async def override_decision(cmd: OverrideDecision, uow: UnitOfWork) -> ProposalDecisionView:
    at = cmd.at or uow.now
    run = await _open_run(uow, cmd.cycle_year)
    _a_verifier_of(run, cmd.verifier_id)
    row = await uow.session.get(DecisionRow, cmd.proposal_id)
    if row is None or row.cycle_year != cmd.cycle_year:
        raise DomainError(VerificationError.UNKNOWN_PROPOSAL, f"no proposal {cmd.proposal_id} in verification {cmd.cycle_year}")
    previous = row.final
    row.overrides = [
        *row.overrides,
        {"decision": cmd.decision.value, "reason": cmd.reason, "verifier_id": cmd.verifier_id, "at": at.isoformat()},
    ]
    row.final = cmd.decision.value
    copy = await uow.session.get(ProposalCopy, row.proposal_id)
    if previous != row.final:
        assert copy is not None
        _emit_decision(uow, cmd.cycle_year, row, copy.snapshot)
    if cmd.decision.value != row.automatic:
        uow.emit(
            DecisionOverridden(
                cycle_year=cmd.cycle_year,
                subject_kind="proposal",
                subject_id=row.proposal_id,
                automatic=row.automatic,
                decision=cmd.decision.value,
                reason=cmd.reason,
                verifier_id=cmd.verifier_id,
            )
        )
    await uow.session.flush()
    await _complete_if_done(uow, run)
    return _decision_view(row)


async def close_verification(cmd: CloseVerification, uow: UnitOfWork) -> VerificationClosedSummary:
    run = await uow.session.get(RunRow, cmd.cycle_year)
    if run is None:
        raise DomainError(VerificationError.NOT_STARTED, f"verification {cmd.cycle_year} has not started")
    if run.summary is not None:
        return VerificationClosedSummary.model_validate(run.summary)
    rows = (await uow.session.execute(sa.select(DecisionRow).where(DecisionRow.cycle_year == cmd.cycle_year))).scalars().all()
    for row in rows:
        if row.final is None:  # not reviewed by the deadline: the automatic result stands
            row.final = row.automatic
            copy = await uow.session.get(ProposalCopy, row.proposal_id)
            assert copy is not None
            _emit_decision(uow, cmd.cycle_year, row, copy.snapshot)
    eligible = sorted(r.proposal_id for r in rows if r.final == AdminDecision.ELIGIBLE)
    wbk = (await uow.session.execute(sa.select(WbkRow).where(WbkRow.cycle_year == cmd.cycle_year))).scalars().all()
    layak = sorted(w.unit_code for w in wbk if w.result["final"] == WbkDecision.LAYAK_WBK)
    summary = VerificationClosedSummary(
        cycle_year=cmd.cycle_year,
        eligible=len(eligible),
        disqualified=len(rows) - len(eligible),
        overridden=sum(1 for r in rows if r.overrides and r.final != r.automatic),
        eligible_digest=digest_ids(eligible),
        wbk_layak=len(layak),
        wbk_belum_layak=len(wbk) - len(layak),
    )
    run.state, run.summary = "closed", summary.model_dump(mode="json")
    uow.emit(VerificationClosed(cycle_year=cmd.cycle_year, summary=summary, eligible_ids=eligible, wbk_layak_units=layak))
    return summary


# --------------------------------------------------------------------------- WBK


async def _wbk_still_open(uow: UnitOfWork, year: int) -> None:
    run = await uow.session.get(RunRow, year)
    if run is not None and run.state in ("closed", "cancelled"):
        raise DomainError(VerificationError.CLOSED, f"verification {year} is {run.state}; WBK results are final", {"state": run.state})


async def submit_lke(cmd: SubmitLke, uow: UnitOfWork) -> WbkResult:
    await _wbk_still_open(uow, cmd.cycle_year)
    decision, total, leverage, checks = domain.evaluate_lke(cmd.lke, threshold_set(cmd.threshold_set))
    result = WbkResult(
        unit_code=cmd.unit_code,
        cycle_year=cmd.cycle_year,
        threshold_set=cmd.threshold_set,
        total=total,
        leverage_total=leverage,
        automatic=decision,
        final=decision,
        failed=[c for c in checks if not c.passed],
        checks=checks,
    )
    row = await uow.session.get(WbkRow, (cmd.cycle_year, cmd.unit_code))
    data = result.model_dump(mode="json")
    if row is None:
        uow.session.add(
            WbkRow(
                cycle_year=cmd.cycle_year, unit_code=cmd.unit_code, unit_name=cmd.unit_name, agency_code=cmd.agency_code, agency_name=cmd.agency_name, result=data
            )
        )
    else:
        row.result, row.overrides, row.unit_name, row.agency_code, row.agency_name = data, [], cmd.unit_name, cmd.agency_code, cmd.agency_name
    uow.emit(WbkEvaluated(cycle_year=cmd.cycle_year, result=result, unit_name=cmd.unit_name, agency_code=cmd.agency_code, agency_name=cmd.agency_name))
    return result


async def override_wbk(cmd: OverrideWbk, uow: UnitOfWork) -> WbkResult:
    await _wbk_still_open(uow, cmd.cycle_year)
    _a_verifier_of(await uow.session.get(RunRow, cmd.cycle_year), cmd.verifier_id)
    row = await uow.session.get(WbkRow, (cmd.cycle_year, cmd.unit_code))
    if row is None:
        raise DomainError(VerificationError.NOT_FOUND, f"no LKE of {cmd.unit_code} in {cmd.cycle_year}")
    at = cmd.at or uow.now
    result = WbkResult.model_validate(row.result).model_copy(update={"final": cmd.decision, "overridden": True})
    row.result = result.model_dump(mode="json")
    row.overrides = [*row.overrides, {"decision": cmd.decision.value, "reason": cmd.reason, "verifier_id": cmd.verifier_id, "at": at.isoformat()}]
    uow.emit(
        DecisionOverridden(
            cycle_year=cmd.cycle_year,
            subject_kind="wbk",
            subject_id=cmd.unit_code,
            automatic=result.automatic.value,
            decision=cmd.decision.value,
            reason=cmd.reason,
            verifier_id=cmd.verifier_id,
        )
    )
    uow.emit(WbkEvaluated(cycle_year=cmd.cycle_year, result=result, unit_name=row.unit_name, agency_code=row.agency_code, agency_name=row.agency_name))
    return result


async def get_wbk_result(cmd: GetWbkResult, uow: UnitOfWork) -> WbkResult:
    row = await uow.session.get(WbkRow, (cmd.cycle_year, cmd.unit_code))
    if row is None:
        raise DomainError(VerificationError.NOT_FOUND, f"no LKE of {cmd.unit_code} in {cmd.cycle_year}")
    return WbkResult.model_validate(row.result)


