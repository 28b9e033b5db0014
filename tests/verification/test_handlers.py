"""Verification's handlers over a fake unit of work (no NATS, no database): what they load, save
and emit. The same handlers run over NATS and SQLite in test_verification.py."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.base import AdminDecision, Competition, SetRef, WbkDecision, digest_ids
from contracts.cycle import CycleCancelled
from contracts.registration import ProposalForwarded, ProposalSnapshot, ProposalWithdrawn
from contracts.verification import (
    AdminRules,
    CloseVerification,
    DecisionOverridden,
    GetDecision,
    GetWbkResult,
    OverrideDecision,
    OverrideWbk,
    ProposalDisqualified,
    ProposalVerified,
    StartVerification,
    SubmitLke,
    VerificationClosed,
    VerificationCompleted,
    VerificationError,
    VerificationStatus,
    WbkEvaluated,
)
from services.common.errors import DomainError
from services.verification import handlers as h
from services.verification.domain import RunState
from tests.verification.fakes import KOVABLIK, FakeUnit
from tests.verification.test_verification import CLOSED, YEAR, lke, snapshot

SNAPS = [snapshot("P1", "Posyandu Digital"), snapshot("P2", "Terlalu Muda", started_on="2032-01-01")]


def start_cmd(ids: list[str], review: bool = False, rid: str = "start") -> StartVerification:
    return StartVerification(
        request_id=rid,
        cycle_year=YEAR,
        expected=SetRef(count=len(ids), digest=digest_ids(ids)),
        call_closed_at=CLOSED,
        deadline=CLOSED + dt.timedelta(days=15),
        rules=AdminRules(review_required=review),
        at=CLOSED,
    )


async def forwarded(uow: FakeUnit, *snaps: dict) -> None:
    for s in snaps:
        await h.on_forwarded(ProposalForwarded(cycle_year=YEAR, proposal=ProposalSnapshot.model_validate(s), quota_used=1, quota_per_agency=3), uow)


async def test_start_waits_for_the_copy_then_decides_saves_and_completes():
    uow = FakeUnit()
    await forwarded(uow, SNAPS[0])
    with pytest.raises(DomainError) as err:
        await h.start_verification(start_cmd(["P1", "P2"]), uow)
    assert err.value.code == "not_ready" and uow.runs.rows == {} and uow.events == []
    await forwarded(uow, SNAPS[1])
    counts = await h.start_verification(start_cmd(["P1", "P2"]), uow)
    assert (counts.eligible, counts.disqualified, counts.pending, counts.state) == (1, 1, 0, "completed")
    assert uow.runs.rows[(YEAR, KOVABLIK)].state == RunState.COMPLETED and set(uow.decisions.rows) == {"P1", "P2"}
    assert [type(e) for e in uow.events] == [ProposalVerified, ProposalDisqualified, VerificationCompleted]
    again = await h.start_verification(start_cmd(["P1", "P2"], rid="start-2"), uow)
    assert again == counts and len(uow.events) == 3  # a second start changes nothing


async def test_a_withdrawn_copy_leaves_the_forwarded_set():
    uow = FakeUnit()
    await forwarded(uow, *SNAPS)
    withdrawn = ProposalWithdrawn(cycle_year=YEAR, proposal=ProposalSnapshot.model_validate({**SNAPS[1], "status": "withdrawn"}))
    await h.on_withdrawn(withdrawn, uow)
    assert (await h.start_verification(start_cmd(["P1"]), uow)).total == 1


async def test_override_saves_the_decision_and_completes_the_run():
    uow = FakeUnit()
    await forwarded(uow, *SNAPS)
    await h.start_verification(start_cmd(["P1", "P2"], review=True), uow)
    assert uow.events == []
    cmd = OverrideDecision(request_id="o", cycle_year=YEAR, proposal_id="P2", decision=AdminDecision.ELIGIBLE, reason="runs since 2030", verifier_id="V1")
    view = await h.override_decision(cmd, uow)
    assert view.final == "eligible" and not view.pending and view.overrides[0]["at"] == uow.now.isoformat()
    assert uow.decisions.rows["P2"].final == AdminDecision.ELIGIBLE  # saved
    await h.override_decision(cmd.model_copy(update={"proposal_id": "P1", "request_id": "o1"}), uow)
    assert [type(e) for e in uow.events] == [ProposalVerified, DecisionOverridden, ProposalVerified, VerificationCompleted]
    status = await h.verification_status(VerificationStatus(cycle_year=YEAR, list_pending=True), uow)
    assert status.state == "completed" and status.pending_ids == [] and status.overridden == 1
    read = await h.get_decision(GetDecision(cycle_year=YEAR, proposal_id="P2"), uow)
    assert read.automatic == "disqualified" and read.final == "eligible"


async def test_cancel_refuses_overrides_until_the_year_starts_again():
    uow = FakeUnit()
    await forwarded(uow, *SNAPS)
    await h.start_verification(start_cmd(["P1", "P2"], review=True), uow)
    await h.on_cycle_cancelled(CycleCancelled(event_id="c", occurred_at=CLOSED, cycle_year=YEAR, phase="verification"), uow)
    assert uow.runs.rows[(YEAR, KOVABLIK)].state == RunState.CANCELLED
    cmd = OverrideDecision(request_id="o", cycle_year=YEAR, proposal_id="P1", decision=AdminDecision.ELIGIBLE, reason="checked", verifier_id="V1")
    with pytest.raises(DomainError) as err:
        await h.override_decision(cmd, uow)
    assert err.value.code == VerificationError.CLOSED and uow.decisions.rows["P1"].overrides == []
    reopened = await h.start_verification(start_cmd(["P1", "P2"], review=True, rid="again"), uow)
    assert reopened.state == "open" and reopened.pending == 2
    assert (await h.override_decision(cmd, uow)).final == "eligible"


async def test_close_freezes_and_answers_the_same_summary_again():
    uow = FakeUnit()
    with pytest.raises(DomainError) as err:
        await h.close_verification(CloseVerification(request_id="c", cycle_year=YEAR, at=CLOSED), uow)
    assert err.value.code == VerificationError.NOT_STARTED
    await forwarded(uow, *SNAPS)
    await h.start_verification(start_cmd(["P1", "P2"], review=True), uow)
    await h.submit_lke(SubmitLke(request_id="l", cycle_year=YEAR, unit_code="U1", lke=lke()), uow)
    summary = await h.close_verification(CloseVerification(request_id="c", cycle_year=YEAR, at=CLOSED), uow)
    assert (summary.eligible, summary.disqualified, summary.wbk_layak) == (1, 1, 1)
    assert all(not d.pending for d in uow.decisions.rows.values()) and uow.runs.rows[(YEAR, KOVABLIK)].state == RunState.CLOSED
    assert len(uow.emitted(VerificationClosed)) == 1
    assert await h.close_verification(CloseVerification(request_id="c2", cycle_year=YEAR, at=CLOSED), uow) == summary
    assert len(uow.emitted(VerificationClosed)) == 1
    with pytest.raises(DomainError) as err:
        await h.submit_lke(SubmitLke(request_id="l2", cycle_year=YEAR, unit_code="U2", lke=lke()), uow)
    assert err.value.code == VerificationError.CLOSED


async def test_wbk_submit_override_and_read():
    uow = FakeUnit()
    with pytest.raises(DomainError) as err:
        await h.get_wbk_result(GetWbkResult(cycle_year=YEAR, unit_code="U1"), uow)
    assert err.value.code == VerificationError.NOT_FOUND
    with pytest.raises(DomainError) as err:
        await h.submit_lke(SubmitLke(request_id="l", cycle_year=YEAR, unit_code="U1", threshold_set="nope", lke=lke()), uow)
    assert err.value.code == VerificationError.UNKNOWN_THRESHOLD_SET and uow.wbk.rows == {}
    result = await h.submit_lke(SubmitLke(request_id="l", cycle_year=YEAR, unit_code="U1", lke=lke(performance=2.49)), uow)
    assert result.final == WbkDecision.BELUM_LAYAK
    cmd = OverrideWbk(request_id="o", cycle_year=YEAR, unit_code="U1", decision=WbkDecision.LAYAK_WBK, reason="survey re-run", verifier_id="V2")
    assert (await h.override_wbk(cmd, uow)).final == WbkDecision.LAYAK_WBK
    assert (await h.get_wbk_result(GetWbkResult(cycle_year=YEAR, unit_code="U1"), uow)).overridden
    assert len(uow.wbk.rows[(YEAR, "U1")].overrides) == 1
    # A new sheet replaces the result, overrides and all.
    await h.submit_lke(SubmitLke(request_id="l3", cycle_year=YEAR, unit_code="U1", lke=lke()), uow)
    assert uow.wbk.rows[(YEAR, "U1")].overrides == [] and uow.wbk.rows[(YEAR, "U1")].result.final == WbkDecision.LAYAK_WBK
    assert [type(e) for e in uow.events] == [WbkEvaluated, DecisionOverridden, WbkEvaluated, WbkEvaluated]


async def test_a_cancelled_cycle_stops_the_overrides_of_every_track():
    uow = FakeUnit()
    kbk = {**snapshot("K1", "Risalah Satu"), "track": "kbk", "group_code": "KBK-1"}
    await forwarded(uow, SNAPS[0], kbk)
    await h.start_verification(start_cmd(["P1"], review=True), uow)
    await h.start_verification(start_cmd(["K1"], review=True, rid="start-kbk").model_copy(update={"track": Competition.KBK}), uow)
    assert {track.value for _, track in uow.runs.rows} == {"kovablik", "kbk"}
    await h.on_cycle_cancelled(CycleCancelled(event_id="c", occurred_at=CLOSED, cycle_year=YEAR, phase="verification"), uow)
    assert {r.state for r in uow.runs.rows.values()} == {RunState.CANCELLED}
    with pytest.raises(DomainError) as err:
        await h.override_decision(OverrideDecision(request_id="o", cycle_year=YEAR, proposal_id="K1", decision=AdminDecision.ELIGIBLE, reason="Dokumen lengkap", verifier_id="V1"), uow)
    assert err.value.code == VerificationError.CLOSED
