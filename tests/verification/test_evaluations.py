"""The SAKIP, RB and CETTAR evaluations (issue 26) without I/O: a sheet's way from entered to
approved or returned, every refusal, CETTAR's read parts with their sources, closing, and every
result rebuilt from its events. The same rules over NATS are in test_evaluations_service.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.base import ErrorCode, EvaluationKind
from contracts.verification import (
    EnterEvaluation,
    EvaluationClosed,
    EvaluationEntered,
    EvaluationReviewed,
    OpenEvaluation,
    ReviewEvaluation,
    SubmitLke,
    VerificationError,
)
from services.common.errors import DomainError
from services.verification import domain, rubric_files
from services.verification.domain import Context, Evaluation, EvaluationRound, SheetState, WbkEvaluation
from services.verification.thresholds import threshold_sets
from tests.verification.test_verification import YEAR, lke

AT = dt.datetime(2032, 8, 1, 3, 0, tzinfo=dt.UTC)
SAKIP, RB, CETTAR = EvaluationKind.SAKIP, EvaluationKind.RB, EvaluationKind.CETTAR
RUBRICS = {SAKIP: "sakip-permenpanrb-88-2021", RB: "rb-index-permenpanrb-26-2020", CETTAR: "cettar-platform-default-2027"}
GOOD = {"planning": 27.5, "measurement": 25, "reporting": 12.5, "internal_evaluation": 20}  # 85.00: A


def rubric(kind: EvaluationKind) -> dict[str, Any]:
    return rubric_files.rubric(RUBRICS[kind], kind.value)


def opened(kind: EvaluationKind, evaluators: list[str] | None = None, reviewers: list[str] | None = None) -> EvaluationRound:
    return EvaluationRound.open(
        OpenEvaluation(
            request_id="open", cycle_year=YEAR, kind=kind, rubric=RUBRICS[kind], deadline=AT + dt.timedelta(days=30),
            evaluators=evaluators, reviewers=reviewers, at=AT,
        )
    )  # fmt: skip


def enter(kind: EvaluationKind, values: dict[str, float], subject: str = "KAB-JEMBER", evaluator: str = "E1") -> EnterEvaluation:
    return EnterEvaluation(
        request_id="e", cycle_year=YEAR, kind=kind, subject_code=subject, subject_name=f"Pemerintah {subject}", values=values, evaluator_id=evaluator
    )


def review(kind: EvaluationKind, approve: bool = True, reviewer: str = "R1", reason: str | None = None, subject: str = "KAB-JEMBER") -> ReviewEvaluation:
    return ReviewEvaluation(request_id="r", cycle_year=YEAR, kind=kind, subject_code=subject, approve=approve, reason=reason, reviewer_id=reviewer)


def entered(kind: EvaluationKind, values: dict[str, float], context: Context | None = None, **kw: Any) -> tuple[Evaluation, list[Any]]:
    return Evaluation.enter(None, enter(kind, values, **kw), rubric(kind), context or Context(), AT)


def refused(code: str, call: Any, *args: Any) -> DomainError:
    with pytest.raises(DomainError) as err:
        call(*args)
    assert err.value.code == code, err.value
    return err.value


# --------------------------------------------------------------------------- a sheet's way


def test_an_entered_sheet_is_approved_by_another_and_is_then_final():
    sheet, [evt] = entered(SAKIP, GOOD)
    assert isinstance(evt, EvaluationEntered) and sheet.state == SheetState.ENTERED
    v = sheet.view
    assert (v.total, v.grade, v.label, v.rubric, v.evaluator_id) == (85.0, "A", "Memuaskan", "sakip-permenpanrb-88-2021", "E1")
    assert "88/2021" in v.rubric_source and [p.key for p in v.parts] == list(GOOD) and v.parts[0].max == 30
    [approved] = sheet.review(review(SAKIP), AT)
    assert isinstance(approved, EvaluationReviewed) and approved.evaluation.state == "approved" and approved.evaluation.reviewer_id == "R1"
    refused(VerificationError.ALREADY_APPROVED, Evaluation.enter, sheet, enter(SAKIP, GOOD), rubric(SAKIP), Context(), AT)
    refused(VerificationError.ALREADY_APPROVED, sheet.review, review(SAKIP, reviewer="R2"), AT)


def test_a_returned_sheet_is_entered_again_then_approved():
    sheet, _ = entered(RB, {"index": 71.2})
    refused(ErrorCode.VALIDATION_ERROR, sheet.review, review(RB, approve=False), AT)  # returning needs its reason
    sheet.review(review(RB, approve=False, reason="Indeks belum diverifikasi"), AT)
    assert sheet.state == SheetState.RETURNED and sheet.view.review_reason == "Indeks belum diverifikasi"
    refused(ErrorCode.INVALID_TRANSITION, sheet.review, review(RB), AT)  # the evaluator corrects it first
    again, _ = Evaluation.enter(sheet, enter(RB, {"index": 70.0}), rubric(RB), Context(), AT)
    assert again.state == SheetState.ENTERED and again.view.reviewer_id is None and again.view.grade == "B"
    again.review(review(RB), AT)
    assert again.state == SheetState.APPROVED


def test_a_reviewer_never_approves_their_own_sheet():
    sheet, _ = entered(SAKIP, GOOD, evaluator="P1")
    refused(VerificationError.OWN_SHEET, sheet.review, review(SAKIP, reviewer="P1"), AT)
    assert sheet.state == SheetState.ENTERED


def test_the_round_lists_who_may_enter_and_who_may_approve():
    listed = opened(SAKIP, evaluators=["E1"], reviewers=["R1"])
    listed.check_evaluator("E1")
    listed.check_reviewer("R1")
    refused(ErrorCode.NOT_AN_EVALUATOR, listed.check_evaluator, "E2")
    refused(ErrorCode.NOT_A_REVIEWER, listed.check_reviewer, "R2")
    anyone = opened(SAKIP)
    anyone.check_evaluator("E9")
    anyone.check_reviewer("R9")


def test_the_window_before_opening_and_after_closing():
    refused(VerificationError.EVALUATION_NOT_OPEN, domain.open_round, None, YEAR, SAKIP)
    assert domain.window(YEAR, SAKIP, None, {}).state == "not_open"
    r = opened(SAKIP)
    assert domain.open_round(r, YEAR, SAKIP) is r
    r.close([], rubric(SAKIP), {})
    refused(VerificationError.EVALUATION_CLOSED, domain.open_round, r, YEAR, SAKIP)
    assert domain.opened(r, YEAR, SAKIP) is r  # still readable (and closed again, idempotently)


def test_an_unknown_rubric_key_is_refused():
    err = refused(VerificationError.UNKNOWN_RUBRIC, rubric_files.rubric, "sakip-2099", "sakip")
    assert err.details["known"] == ["sakip-permenpanrb-88-2021"]


@pytest.mark.parametrize(
    ("kind", "values"),
    [(RB, {"idx": 70}), (RB, {"index": 101}), (CETTAR, {"sakip": 90}), (CETTAR, {"work_culture": -1}), (SAKIP, {"planning": 30})],
)
def test_a_sheet_that_does_not_fit_its_rubric_is_refused(kind, values):
    refused(VerificationError.INVALID_SHEET, entered, kind, values)


def test_a_missing_sheet_is_not_found():
    refused(VerificationError.NOT_FOUND, domain.known_sheet, None, YEAR, SAKIP, "KAB-X")


# --------------------------------------------------------------------------- SAKIP against last year


def test_last_years_approved_grade_gives_the_improvement():
    last, _ = entered(SAKIP, {"planning": 22, "measurement": 22, "reporting": 11, "internal_evaluation": 20})  # 75: BB
    assert domain.previous_grade(last.view) is None  # not approved: not remembered
    last.review(review(SAKIP), AT)
    assert domain.previous_grade(last.view) == "BB"
    now, _ = entered(SAKIP, GOOD, Context(previous_grade="BB"))
    assert (now.view.previous_grade, now.view.grade, now.view.improvement) == ("BB", "A", 1)
    worse, _ = entered(SAKIP, {"planning": 20, "measurement": 20, "reporting": 10, "internal_evaluation": 10}, Context(previous_grade="BB"))
    assert (worse.view.grade, worse.view.improvement) == ("CC", -2)


# --------------------------------------------------------------------------- CETTAR's parts


def wbk(unit: str, agency: str, **results: float) -> WbkEvaluation:
    cmd = SubmitLke(request_id=unit, cycle_year=YEAR, unit_code=unit, agency_code=agency, lke=lke(**results))
    return WbkEvaluation.evaluate(cmd, threshold_sets()["permenpanrb-90-2021"])[0]


MAXIMA = {key: domain.lke_maximum(rules) for key, rules in threshold_sets().items()}


def test_a_cettar_rating_shows_each_part_with_its_source():
    sakip, _ = entered(SAKIP, GOOD)
    sakip.review(review(SAKIP), AT)
    rb, _ = entered(RB, {"index": 78})  # entered, not approved: does not count
    units = [wbk("U1", "KAB-JEMBER"), wbk("U2", "KAB-JEMBER", performance=2.0)]  # LKE totals 90 and 88
    assert MAXIMA["permenpanrb-90-2021"] == 100
    context = domain.cettar_context(YEAR, sakip.view, rb.view, units, MAXIMA)
    rating, _ = entered(CETTAR, {"work_culture": 80}, context)
    parts = {p.key: (p.value, p.weight, p.source) for p in rating.view.parts}
    assert parts["sakip"] == (85.0, 0.3, f"sakip {YEAR} (approved, sakip-permenpanrb-88-2021)")
    assert parts["rb"] == (0.0, 0.3, "missing: counted as 0")
    assert parts["zona_integritas"][:2] == (89.0, 0.2) and "mean LKE total of 2 unit(s) (U1, U2)" in str(parts["zona_integritas"][2])
    assert parts["work_culture"] == (80.0, 0.2, "sheet")
    # 85*0.3 + 0*0.3 + 89*0.2 + 80*0.2 = 59.30
    assert (rating.view.total, rating.view.grade, rating.view.label) == (59.3, "cukup_cettar", "Cukup Cettar")
    none = domain.cettar_context(YEAR, None, None, [], MAXIMA)
    assert all(source == "missing: counted as 0" and value == 0 for value, source in none.read.values())


# --------------------------------------------------------------------------- closing


def test_closing_counts_only_approved_sheets_and_rates_cettar_again():
    r = opened(CETTAR)
    first, _ = entered(CETTAR, {"work_culture": 90}, domain.cettar_context(YEAR, None, None, [], MAXIMA), subject="KAB-A")
    first.review(review(CETTAR, subject="KAB-A"), AT)
    waiting, _ = entered(CETTAR, {"work_culture": 90}, subject="KAB-B")
    sakip, _ = entered(SAKIP, {"planning": 30, "measurement": 30, "reporting": 15, "internal_evaluation": 25}, subject="KAB-A")
    sakip.review(review(SAKIP, subject="KAB-A"), AT)
    rb, _ = entered(RB, {"index": 90}, subject="KAB-A")
    rb.review(review(RB, subject="KAB-A"), AT)
    contexts = {"KAB-A": domain.cettar_context(YEAR, sakip.view, rb.view, [wbk("U1", "KAB-A")], MAXIMA)}
    [closed] = r.close([first, waiting], rubric(CETTAR), contexts)
    assert isinstance(closed, EvaluationClosed) and r.summary is not None
    assert (r.summary.approved, r.summary.unapproved, r.summary.grades) == (1, 1, {"sangat_cettar": 1})
    [result] = closed.results
    # at entry: 0.2 * 90 = 18 (cukup); at closing: 100*0.3 + 90*0.3 + 90*0.2 + 90*0.2 = 93
    assert (result.subject_code, result.total, result.grade) == ("KAB-A", 93.0, "sangat_cettar")
    assert {p.key: p.source for p in result.parts}["rb"] == f"rb {YEAR} (approved, rb-index-permenpanrb-26-2020)"
    assert domain.recompute(result, rubric(CETTAR)) == result
    assert r.close([first, waiting], rubric(CETTAR), {}) == []  # closing again changes nothing


# --------------------------------------------------------------------------- rebuilt from events


@pytest.mark.parametrize(
    ("kind", "first", "second", "context"),
    [
        (SAKIP, {"planning": 20, "measurement": 20, "reporting": 10, "internal_evaluation": 10}, GOOD, Context(previous_grade="B")),
        (RB, {"index": 50}, {"index": 50.01}, Context()),
        (CETTAR, {"work_culture": 70}, {"work_culture": 88.5}, Context(read={"sakip": (81.0, "sakip (approved)"), "rb": (0.0, "missing: counted as 0")})),
    ],
)
def test_every_result_is_rebuilt_from_its_events(kind, first, second, context):
    events: list[Any] = []
    sheet, out = Evaluation.enter(None, enter(kind, first), rubric(kind), context, AT)
    events += out
    events += sheet.review(review(kind, approve=False, reason="Perbaiki"), AT)
    sheet, out = Evaluation.enter(sheet, enter(kind, second), rubric(kind), context, AT + dt.timedelta(days=1))
    events += out
    events += sheet.review(review(kind), AT + dt.timedelta(days=2))
    assert domain.replay(events, rubric(kind)) == sheet.view
    assert domain.replay(events[:2], rubric(kind)) == events[1].evaluation  # as it stood when returned
