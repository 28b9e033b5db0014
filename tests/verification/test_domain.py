"""Verification's aggregates without I/O: the run's state machine, decisions and overrides,
closing, and the WBK evaluation, with every refusal code the service answers raised here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from contracts.base import AdminDecision, ErrorCode, SetRef, WbkDecision, digest_ids
from contracts.verification import (
    AdminRules,
    DecisionOverridden,
    OverrideDecision,
    OverrideWbk,
    ProposalDisqualified,
    ProposalVerified,
    StartVerification,
    SubmitLke,
    VerificationClosed,
    VerificationCompleted,
    VerificationError,
    WbkEvaluated,
)
from services.common.errors import DomainError
from services.verification import domain
from services.verification.domain import TRANSITIONS, Decision, RunState, Verification, WbkEvaluation
from services.verification.thresholds import threshold_sets
from tests.verification import test_evaluations, test_rubrics
from tests.verification.test_verification import CLOSED, YEAR, lke, snapshot

AT = dt.datetime(2032, 5, 2, 3, 0, tzinfo=dt.UTC)


def start(copies: list[dict], review: bool = False, verifiers: list[str] | None = None, expected: list[str] | None = None):  # type: ignore[no-untyped-def]
    ids = expected if expected is not None else [c["id"] for c in copies]
    cmd = StartVerification(
        request_id="start",
        cycle_year=YEAR,
        expected=SetRef(count=len(ids), digest=digest_ids(ids)),
        call_closed_at=CLOSED,
        deadline=CLOSED + dt.timedelta(days=15),
        rules=AdminRules(categories=["kesehatan"], review_required=review, verifiers=verifiers),
        at=CLOSED,
    )
    return Verification.start(cmd, [(c["id"], c) for c in copies])


def override(pid: str, decision: str = "eligible", verifier: str = "V1") -> OverrideDecision:
    return OverrideDecision(
        request_id=f"ov-{pid}", cycle_year=YEAR, proposal_id=pid, decision=AdminDecision(decision), reason="checked by hand", verifier_id=verifier
    )


def counts(run: Verification, decisions: list[Decision]):  # type: ignore[no-untyped-def]
    groups: dict[tuple[str | None, str], int] = {}
    for d in decisions:
        key = (d.final.value if d.final else None, d.automatic.value)
        groups[key] = groups.get(key, 0) + 1
    return domain.tally(YEAR, run, [(f, a, n) for (f, a), n in groups.items()])


COPIES = [snapshot("P1", "Posyandu Digital"), snapshot("P2", "Antrian Online"), snapshot("P3", "antrian  ONLINE")]


# --------------------------------------------------------------------------- starting


def test_start_decides_every_copy_and_returns_its_events():
    run, decisions, events = start(COPIES)
    assert run.state == RunState.OPEN
    assert {d.proposal_id: d.final for d in decisions} == {"P1": "eligible", "P2": "disqualified", "P3": "disqualified"}
    assert [r.code for r in decisions[1].reasons] == ["duplicate_title"]
    assert [type(e) for e in events] == [ProposalVerified, ProposalDisqualified, ProposalDisqualified]
    assert [e.proposal.id for e in events] == ["P1", "P2", "P3"]  # type: ignore[attr-defined]


def test_start_refuses_while_the_copy_differs_from_the_closed_set():
    with pytest.raises(DomainError) as err:
        start(COPIES[:2], expected=["P1", "P2", "P3"])
    assert err.value.code == ErrorCode.NOT_READY and err.value.retryable
    assert err.value.details == {"have": 2, "expected": 3}


def test_review_required_leaves_every_decision_pending_and_emits_nothing():
    run, decisions, events = start(COPIES, review=True)
    assert all(d.pending for d in decisions) and events == []
    assert run.complete_if_done(counts(run, decisions)) == []
    assert run.state == RunState.OPEN


def test_complete_when_nothing_is_pending_once():
    run, decisions, _ = start(COPIES)
    [completed] = run.complete_if_done(counts(run, decisions))
    assert isinstance(completed, VerificationCompleted) and completed.counts.state == "completed"
    assert run.state == RunState.COMPLETED
    assert run.complete_if_done(counts(run, decisions)) == []  # announced once


# --------------------------------------------------------------------------- the state machine


def test_every_transition_of_the_table_and_nothing_else():
    actions: dict[str, Callable[[Verification], object]] = {
        "cancel": lambda r: r.cancel(),
        "reopen": lambda r: r.reopen(),
        "close": lambda r: r.close([], {}, []),
    }
    for action, run_action in actions.items():
        allowed, target = TRANSITIONS[action]
        for state in RunState:
            run, _, _ = start([])
            run.state = state
            run_action(run)
            assert run.state == (target if state in allowed else state), (action, state)


def test_cancel_and_reopen():
    run, _, _ = start(COPIES, review=True)
    run.cancel()
    assert run.state == RunState.CANCELLED
    with pytest.raises(DomainError) as err:
        run.override(None, override("P1"), None, AT)
    assert err.value.code == VerificationError.CLOSED and err.value.details == {"state": "cancelled"}
    assert "its cycle was cancelled" in err.value.message
    assert run.reopen() is True and run.state == RunState.OPEN
    assert run.reopen() is False  # only a cancelled run reopens
    closed, _, _ = start([])
    closed.close([], {}, [])
    closed.cancel()
    assert closed.state == RunState.CLOSED  # a closed run stays closed


# --------------------------------------------------------------------------- overrides


def test_an_override_records_itself_and_announces_the_changed_decision():
    run, decisions, _ = start(COPIES)
    p2 = decisions[1]
    decision, events = run.override(p2, override("P2"), COPIES[1], AT)
    assert decision.final == AdminDecision.ELIGIBLE and decision.automatic == AdminDecision.DISQUALIFIED
    assert decision.overrides == [{"decision": "eligible", "reason": "checked by hand", "verifier_id": "V1", "at": AT.isoformat()}]
    verified, overridden = events
    assert isinstance(verified, ProposalVerified) and verified.overridden
    assert isinstance(overridden, DecisionOverridden) and (overridden.automatic, overridden.decision) == ("disqualified", "eligible")
    # Confirming the automatic result of a decided proposal announces nothing new.
    _, again = run.override(decisions[0], override("P1"), COPIES[0], AT)
    assert again == []


def test_an_override_of_an_unknown_proposal_is_refused():
    run, decisions, _ = start(COPIES)
    with pytest.raises(DomainError) as err:
        run.override(None, override("P9"), None, AT)
    assert err.value.code == VerificationError.UNKNOWN_PROPOSAL
    other_year = Decision("P1", YEAR - 1, AdminDecision.ELIGIBLE, [], AdminDecision.ELIGIBLE)
    with pytest.raises(DomainError) as err:
        run.override(other_year, override("P1"), COPIES[0], AT)
    assert err.value.code == VerificationError.UNKNOWN_PROPOSAL


def test_only_a_listed_verifier_overrides():
    run, decisions, _ = start(COPIES, verifiers=["V1"])
    with pytest.raises(DomainError) as err:
        run.override(decisions[0], override("P1", verifier="V7"), COPIES[0], AT)
    assert err.value.code == ErrorCode.NOT_A_VERIFIER and err.value.details == {"verifier_id": "V7"}
    assert decisions[0].overrides == []  # nothing changed
    run.override(decisions[0], override("P1", verifier="V1"), COPIES[0], AT)


def test_reading_a_decision_before_the_start_and_of_a_stranger():
    with pytest.raises(DomainError) as err:
        domain.readable_decision(None, None, YEAR, "P1")
    assert err.value.code == VerificationError.NOT_STARTED
    run, decisions, _ = start(COPIES)
    with pytest.raises(DomainError) as err:
        domain.readable_decision(None, run, YEAR, "P9")
    assert err.value.code == VerificationError.UNKNOWN_PROPOSAL
    assert domain.readable_decision(decisions[0], run, YEAR, "P1").view().final == "eligible"
    with pytest.raises(DomainError) as err:
        domain.started(None, YEAR)
    assert err.value.code == VerificationError.NOT_STARTED


# --------------------------------------------------------------------------- closing


def test_close_freezes_pending_decisions_counts_wbk_and_refuses_later_overrides():
    run, decisions, _ = start(COPIES, review=True)
    run.override(decisions[1], override("P2"), COPIES[1], AT)
    layak = WbkEvaluation.evaluate(SubmitLke(request_id="l", cycle_year=YEAR, unit_code="U1", lke=lke()), threshold_sets()["permenpanrb-90-2021"])[0]
    events = run.close(decisions, {c["id"]: c for c in COPIES}, [layak])
    assert run.state == RunState.CLOSED and all(not d.pending for d in decisions)
    *decided, closed = events
    assert sorted(e.proposal.id for e in decided) == ["P1", "P3"]  # type: ignore[attr-defined]
    assert isinstance(closed, VerificationClosed) and closed.eligible_ids == ["P1", "P2"] and closed.wbk_layak_units == ["U1"]
    assert run.summary is not None and (run.summary.eligible, run.summary.disqualified, run.summary.overridden) == (2, 1, 1)
    assert run.close(decisions, {}, []) == []  # closing again keeps the first summary
    with pytest.raises(DomainError) as err:
        run.override(decisions[0], override("P1"), COPIES[0], AT)
    assert err.value.code == VerificationError.CLOSED and "decisions are final" in err.value.message


# --------------------------------------------------------------------------- WBK


def submit(**changes: object) -> SubmitLke:
    return SubmitLke(request_id="lke", cycle_year=YEAR, unit_code="U1", unit_name="Puskesmas", lke=lke(**changes))  # type: ignore[arg-type]


def test_an_lke_is_evaluated_against_the_set_it_is_given():
    thresholds = threshold_sets()["permenpanrb-90-2021"]
    evaluation, [evaluated] = WbkEvaluation.evaluate(submit(performance=2.49), thresholds)
    assert evaluation.result.final == WbkDecision.BELUM_LAYAK and [c.name for c in evaluation.result.failed] == ["performance"]
    assert isinstance(evaluated, WbkEvaluated) and evaluated.unit_name == "Puskesmas"
    # The same sheet against a laxer set (data handed in, not read from a file) passes.
    lax = {**thresholds, "minimum": {**thresholds["minimum"], "performance": 2.0}}
    assert WbkEvaluation.evaluate(submit(performance=2.49), lax)[0].layak


def test_a_wbk_override_keeps_the_checks_and_announces_both():
    evaluation, _ = WbkEvaluation.evaluate(submit(performance=2.49), threshold_sets()["permenpanrb-90-2021"])
    cmd = OverrideWbk(request_id="o", cycle_year=YEAR, unit_code="U1", decision=WbkDecision.LAYAK_WBK, reason="survey re-run", verifier_id="V2")
    found, events = domain.override_wbk(None, evaluation, cmd, AT)
    assert found.result.final == "layak_wbk" and found.result.automatic == "belum_layak" and found.result.overridden
    assert [type(e) for e in events] == [DecisionOverridden, WbkEvaluated] and len(found.overrides) == 1


def test_wbk_refusals():
    thresholds = threshold_sets()["permenpanrb-90-2021"]
    with pytest.raises(DomainError) as err:
        domain.pick_threshold_set(threshold_sets(), "permenpanrb-01-2099")
    assert err.value.code == VerificationError.UNKNOWN_THRESHOLD_SET and err.value.details == {"known": ["permenpanrb-90-2021"]}
    sheet = submit()
    sheet.lke.results.performance = 6.0  # its maximum is 5
    with pytest.raises(DomainError) as err:
        WbkEvaluation.evaluate(sheet, thresholds)
    assert err.value.code == VerificationError.LKE_OUT_OF_RANGE and err.value.details[0]["field"] == "results.performance"
    cmd = OverrideWbk(request_id="o", cycle_year=YEAR, unit_code="U9", decision=WbkDecision.LAYAK_WBK, reason="no sheet", verifier_id="V2")
    with pytest.raises(DomainError) as err:
        domain.override_wbk(None, None, cmd, AT)
    assert err.value.code == VerificationError.NOT_FOUND
    run, _, _ = start([], verifiers=["V1"])
    with pytest.raises(DomainError) as err:
        domain.override_wbk(run, None, cmd, AT)
    assert err.value.code == ErrorCode.NOT_A_VERIFIER
    run.close([], {}, [])
    with pytest.raises(DomainError) as err:
        domain.wbk_open(run)
    assert err.value.code == VerificationError.CLOSED and "WBK results are final" in err.value.message


def test_every_refusal_code_of_verification_has_a_domain_test():
    """Each code the contract documents (VerificationError) is raised by a pure module in a test
    (the rubrics' ``invalid_sheet`` in test_rubrics.py, the evaluations' in test_evaluations.py)."""
    documented = {v for k, v in vars(VerificationError).items() if k.isupper()}
    tested = {
        VerificationError.NOT_STARTED: test_reading_a_decision_before_the_start_and_of_a_stranger,
        VerificationError.CLOSED: test_cancel_and_reopen,
        VerificationError.UNKNOWN_PROPOSAL: test_an_override_of_an_unknown_proposal_is_refused,
        VerificationError.LKE_OUT_OF_RANGE: test_wbk_refusals,
        VerificationError.UNKNOWN_THRESHOLD_SET: test_wbk_refusals,
        VerificationError.NOT_FOUND: test_wbk_refusals,
        VerificationError.INVALID_SHEET: test_rubrics.test_a_component_outside_its_maximum_or_not_a_number_is_refused_naming_it,
        VerificationError.UNKNOWN_RUBRIC: test_evaluations.test_an_unknown_rubric_key_is_refused,
        VerificationError.EVALUATION_NOT_OPEN: test_evaluations.test_the_window_before_opening_and_after_closing,
        VerificationError.EVALUATION_CLOSED: test_evaluations.test_the_window_before_opening_and_after_closing,
        VerificationError.ALREADY_APPROVED: test_evaluations.test_an_entered_sheet_is_approved_by_another_and_is_then_final,
        VerificationError.OWN_SHEET: test_evaluations.test_a_reviewer_never_approves_their_own_sheet,
    }
    assert documented == set(tested)
