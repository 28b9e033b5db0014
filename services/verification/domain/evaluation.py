"""The evaluations against versioned rubrics (issue 26): SAKIP grades, the Reformasi Birokrasi
index predicate and the CETTAR rating. A track's round (``EvaluationRound``) is opened and closed
by its workflow and names the rubric and who may enter and approve; one subject's sheet
(``Evaluation``) goes entered → approved | returned, and a returned sheet is entered again.

Every result is an ``EvaluationView`` naming its rubric, showing its parts (each with its source)
and keeping who entered and who reviewed it; ``recompute`` scores a view again from nothing but
what it shows, so the ``evaluation_entered``/``evaluation_reviewed`` events rebuild every result
(``replay``). CETTAR's parts other than the work culture are the year's approved SAKIP and RB
results of the same subject and the Zona Integritas result of its units' LKEs, read again when
the round closes. Pure: rubrics arrive as data, other tracks' results as values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from contracts.base import ErrorCode, EvaluationKind, Event, digest_ids
from contracts.verification import (
    EnterEvaluation,
    EvaluationClosed,
    EvaluationClosedSummary,
    EvaluationEntered,
    EvaluationPart,
    EvaluationReviewed,
    EvaluationView,
    EvaluationWindow,
    OpenEvaluation,
    ReviewEvaluation,
    VerificationError,
)
from services.common.errors import DomainError
from services.verification import rubrics
from services.verification.domain.wbk import WbkEvaluation

Rubric = Mapping[str, Any]
"""One versioned rubric (``data/rubrics/<key>.json``, read by the adapter)."""

MISSING = "missing: counted as 0"
CETTAR_READ = ("sakip", "rb", "zona_integritas")
"""CETTAR's parts the service reads from the year's other results (the sheet gives ``work_culture``)."""
RB_INDEX = "index"
WORK_CULTURE = "work_culture"


class RoundState(StrEnum):
    OPEN = "open"  # sheets are entered and reviewed
    CLOSED = "closed"  # final: only approved results count


class SheetState(StrEnum):
    ENTERED = "entered"  # waiting for a reviewer
    APPROVED = "approved"  # counts; cannot be entered again
    RETURNED = "returned"  # back at the evaluator, with the reviewer's reason


# ----------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Context:
    """What a sheet is scored with beside its own values: SAKIP's last-year grade, CETTAR's parts
    read from the other tracks (value and source)."""

    previous_grade: str | None = None
    read: Mapping[str, tuple[float, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    parts: list[EvaluationPart]
    total: float
    grade: str
    label: str
    previous_grade: str | None = None
    improvement: int | None = None


def _only(values: Mapping[str, float], key: str, kind: str) -> float:
    rubrics.exactly({key: None}, values, f"a {kind} sheet has exactly the value")
    return values[key]


def score(kind: EvaluationKind, rubric: Rubric, values: Mapping[str, float], context: Context) -> Scored:
    """A sheet's result by its rubric: refused with ``invalid_sheet`` when it does not fit."""
    if kind == EvaluationKind.SAKIP:
        s = rubrics.evaluate_sakip(rubric, values, context.previous_grade)
        parts = [
            EvaluationPart(key=k, name=spec["name"], value=float(s.components[k]), max=float(spec["max"]))
            for k, spec in rubric["components"].items()
        ]
        return Scored(parts, float(s.total), s.grade, s.label, s.previous_grade, s.improvement)
    if kind == EvaluationKind.RB:
        r = rubrics.evaluate_rb(rubric, _only(values, RB_INDEX, "RB"))
        part = EvaluationPart(key=RB_INDEX, name="Indeks Reformasi Birokrasi", value=float(r.value), max=float(rubric["max"]))
        return Scored([part], float(r.value), r.grade, r.label)
    inputs: dict[str, Any] = {name: context.read.get(name, (0.0, MISSING))[0] for name in CETTAR_READ}
    inputs[WORK_CULTURE] = _only(values, WORK_CULTURE, "CETTAR")
    c = rubrics.evaluate_cettar(rubric, inputs)
    sources = {name: context.read.get(name, (0.0, MISSING))[1] for name in CETTAR_READ} | {WORK_CULTURE: "sheet"}
    parts = [
        EvaluationPart(key=p.name, name=rubric["parts"][p.name]["name"], value=float(p.value), weight=float(p.weight), source=sources[p.name])
        for p in c.parts
    ]
    return Scored(parts, float(c.composite), c.grade, c.label)


def sheet_of(view: EvaluationView) -> tuple[dict[str, float], Context]:
    """What a result was scored from, as it shows it: the sheet's values and the context."""
    parts = {p.key: p for p in view.parts}
    if view.kind == EvaluationKind.CETTAR:
        read = {k: (parts[k].value, parts[k].source or MISSING) for k in CETTAR_READ if k in parts}
        return {WORK_CULTURE: parts[WORK_CULTURE].value}, Context(read=read)
    return {k: p.value for k, p in parts.items()}, Context(previous_grade=view.previous_grade)


def _scored(view: EvaluationView, s: Scored) -> EvaluationView:
    return view.model_copy(
        update={
            "parts": s.parts,
            "total": s.total,
            "grade": s.grade,
            "label": s.label,
            "previous_grade": s.previous_grade,
            "improvement": s.improvement,
        }
    )


def recompute(view: EvaluationView, rubric: Rubric) -> EvaluationView:
    """The result scored again from what it shows: equal to ``view`` when nothing was lost."""
    values, context = sheet_of(view)
    return _scored(view, score(view.kind, rubric, values, context))


def replay(events: Iterable[EvaluationEntered | EvaluationReviewed], rubric: Rubric) -> EvaluationView | None:
    """A subject's result rebuilt from its events in order: each entry scored again from its own
    sheet, each review applied as it was made."""
    out: EvaluationView | None = None
    for evt in events:
        if isinstance(evt, EvaluationEntered):
            out = recompute(evt.evaluation, rubric)
        elif out is not None:
            reviewed = evt.evaluation
            out = out.model_copy(
                update={k: getattr(reviewed, k) for k in ("state", "reviewer_id", "reviewed_at", "review_reason")}
            )
    return out


# ----------------------------------------------------------------------------- CETTAR's read parts


def _approved_total(view: EvaluationView | None, year: int, kind: str) -> tuple[float, str]:
    if view is None or view.state != SheetState.APPROVED:
        return 0.0, MISSING
    return view.total, f"{kind} {year} (approved, {view.rubric})"


def zona_integritas(results: Sequence[WbkEvaluation], maxima: Mapping[str, Decimal]) -> tuple[float, str]:
    """The Zona Integritas part of a subject: the mean of its units' LKE totals, each scaled to
    0-100 by its threshold set's maximum (PermenPANRB 90/2021: 100 already). No LKE: 0, missing."""
    if not results:
        return 0.0, MISSING
    scaled = [Decimal(str(r.result.total)) * 100 / maxima.get(r.result.threshold_set, Decimal(100)) for r in results]
    mean = rubrics.published(min(sum(scaled, Decimal(0)) / len(scaled), Decimal(100)))
    units = ", ".join(sorted(r.unit_code for r in results))
    return float(mean), f"wbk {results[0].cycle_year}: mean LKE total of {len(results)} unit(s) ({units}), scaled to 0-100"


def cettar_context(
    year: int, sakip: EvaluationView | None, rb: EvaluationView | None, units_wbk: Sequence[WbkEvaluation], maxima: Mapping[str, Decimal]
) -> Context:
    """The parts CETTAR reads for one subject: its approved SAKIP total and RB index of the year,
    and its units' Zona Integritas result."""
    return Context(
        read={
            "sakip": _approved_total(sakip, year, "sakip"),
            "rb": _approved_total(rb, year, "rb"),
            "zona_integritas": zona_integritas(units_wbk, maxima),
        }
    )


def lke_maximum(threshold_set: Mapping[str, Any]) -> Decimal:
    """An LKE's highest total under a threshold set: its areas' weights and the results' maxima."""
    areas = sum((Decimal(str(a["weight"])) for a in threshold_set["areas"].values()), Decimal(0))
    return areas + sum((Decimal(str(m)) for m in threshold_set["result_maxima"].values()), Decimal(0))


def previous_grade(last_year: EvaluationView | None) -> str | None:
    """SAKIP: last year's grade, when last year's sheet was approved."""
    return last_year.grade if last_year is not None and last_year.state == SheetState.APPROVED else None


# ----------------------------------------------------------------------------- one subject's sheet


@dataclass
class Evaluation:
    """One subject's evaluation in a track and year: its current result (``view``)."""

    view: EvaluationView

    @property
    def state(self) -> SheetState:
        return SheetState(self.view.state)

    @classmethod
    def enter(
        cls, found: Evaluation | None, cmd: EnterEvaluation, rubric: Rubric, context: Context, at: dt.datetime
    ) -> tuple[Evaluation, list[Event]]:
        """A sheet entered, or corrected until it is approved: scored, waiting for a reviewer."""
        if found is not None and found.state == SheetState.APPROVED:
            raise DomainError(
                VerificationError.ALREADY_APPROVED,
                f"the {cmd.kind.value} sheet of {cmd.subject_code} in {cmd.cycle_year} is approved: it is final",
                {"subject_code": cmd.subject_code},
            )
        s = score(cmd.kind, rubric, cmd.values, context)
        view = EvaluationView(
            cycle_year=cmd.cycle_year,
            kind=cmd.kind,
            subject_code=cmd.subject_code,
            subject_name=cmd.subject_name,
            subject_kind=cmd.subject_kind,
            rubric=str(rubric["key"]),
            rubric_source=str(rubric["source"]),
            parts=s.parts,
            total=s.total,
            grade=s.grade,
            label=s.label,
            previous_grade=s.previous_grade,
            improvement=s.improvement,
            state=SheetState.ENTERED.value,
            evaluator_id=cmd.evaluator_id,
            entered_at=at,
            note=cmd.note,
        )
        return cls(view), [EvaluationEntered(cycle_year=cmd.cycle_year, evaluation=view)]

    def review(self, cmd: ReviewEvaluation, at: dt.datetime) -> list[Event]:
        """A reviewer other than its evaluator approves an entered sheet, or returns it with a reason."""
        if self.state == SheetState.APPROVED:
            raise DomainError(VerificationError.ALREADY_APPROVED, f"the sheet of {self.view.subject_code} is approved already")
        if self.state != SheetState.ENTERED:
            raise DomainError(
                ErrorCode.INVALID_TRANSITION,
                f"the sheet of {self.view.subject_code} was returned: its evaluator enters it again first",
                {"state": self.state.value},
            )
        if cmd.reviewer_id == self.view.evaluator_id:
            raise DomainError(VerificationError.OWN_SHEET, f"{cmd.reviewer_id} entered this sheet: another reviewer approves it")
        if not cmd.approve and not cmd.reason:
            raise DomainError(ErrorCode.VALIDATION_ERROR, "a returned sheet needs the reason", {"field": "reason"})
        state = SheetState.APPROVED if cmd.approve else SheetState.RETURNED
        self.view = self.view.model_copy(
            update={"state": state.value, "reviewer_id": cmd.reviewer_id, "reviewed_at": at, "review_reason": cmd.reason}
        )
        return [EvaluationReviewed(cycle_year=self.view.cycle_year, evaluation=self.view)]


def known_sheet(found: Evaluation | None, cycle_year: int, kind: EvaluationKind, subject_code: str) -> Evaluation:
    if found is None:
        raise DomainError(VerificationError.NOT_FOUND, f"no {kind.value} sheet of {subject_code} in {cycle_year}")
    return found


# ----------------------------------------------------------------------------- a track's round


@dataclass
class EvaluationRound:
    """A track's evaluation window in a year: its rubric, deadline and who may enter and approve."""

    cycle_year: int
    kind: EvaluationKind
    rubric: str
    deadline: dt.datetime
    evaluators: list[str] | None = None
    reviewers: list[str] | None = None
    state: RoundState = RoundState.OPEN
    summary: EvaluationClosedSummary | None = None

    @classmethod
    def open(cls, cmd: OpenEvaluation) -> EvaluationRound:
        return cls(cmd.cycle_year, cmd.kind, cmd.rubric, cmd.deadline, cmd.evaluators, cmd.reviewers)

    def ensure_open(self) -> None:
        if self.state == RoundState.CLOSED:
            raise DomainError(
                VerificationError.EVALUATION_CLOSED, f"the {self.kind.value} evaluation of {self.cycle_year} is closed: its results are final"
            )

    def check_evaluator(self, evaluator_id: str) -> None:
        if self.evaluators is not None and evaluator_id not in self.evaluators:
            raise DomainError(
                ErrorCode.NOT_AN_EVALUATOR,
                f"{evaluator_id} is not in the {self.kind.value} evaluator list of {self.cycle_year}",
                {"evaluator_id": evaluator_id},
            )

    def check_reviewer(self, reviewer_id: str) -> None:
        if self.reviewers is not None and reviewer_id not in self.reviewers:
            raise DomainError(
                ErrorCode.NOT_A_REVIEWER,
                f"{reviewer_id} is not in the {self.kind.value} reviewer list of {self.cycle_year}",
                {"reviewer_id": reviewer_id},
            )

    def window(self, counts: Mapping[str, int]) -> EvaluationWindow:
        return window(self.cycle_year, self.kind, self, counts)

    def close(self, sheets: Sequence[Evaluation], rubric: Rubric, contexts: Mapping[str, Context]) -> list[Event]:
        """Freeze the results: only approved sheets count. A CETTAR rating is scored again with
        the parts read at closing (``contexts``, per subject). Closing again changes nothing."""
        if self.summary is not None:
            return []
        approved = sorted((s for s in sheets if s.state == SheetState.APPROVED), key=lambda s: s.view.subject_code)
        for sheet in approved:
            if sheet.view.subject_code in contexts:
                values, _ = sheet_of(sheet.view)
                sheet.view = _scored(sheet.view, score(self.kind, rubric, values, contexts[sheet.view.subject_code]))
        grades: dict[str, int] = {}
        for sheet in approved:
            grades[sheet.view.grade] = grades.get(sheet.view.grade, 0) + 1
        self.summary = EvaluationClosedSummary(
            cycle_year=self.cycle_year,
            kind=self.kind,
            rubric=self.rubric,
            approved=len(approved),
            unapproved=len(sheets) - len(approved),
            grades=grades,
            digest=digest_ids(s.view.subject_code for s in approved),
        )
        self.state = RoundState.CLOSED
        return [EvaluationClosed(cycle_year=self.cycle_year, summary=self.summary, results=[s.view for s in approved])]


def window(cycle_year: int, kind: EvaluationKind, found: EvaluationRound | None, counts: Mapping[str, int]) -> EvaluationWindow:
    """The window as its status shows it (``not_open`` before the workflow opens it)."""
    return EvaluationWindow(
        cycle_year=cycle_year,
        kind=kind,
        state=found.state.value if found else "not_open",
        rubric=found.rubric if found else None,
        deadline=found.deadline if found else None,
        entered=counts.get(SheetState.ENTERED.value, 0),
        approved=counts.get(SheetState.APPROVED.value, 0),
        returned=counts.get(SheetState.RETURNED.value, 0),
    )


def open_round(found: EvaluationRound | None, cycle_year: int, kind: EvaluationKind) -> EvaluationRound:
    """The track's open round: ``evaluation_not_open`` before its workflow opens it,
    ``evaluation_closed`` after it closes."""
    started = opened(found, cycle_year, kind)
    started.ensure_open()
    return started


def opened(found: EvaluationRound | None, cycle_year: int, kind: EvaluationKind) -> EvaluationRound:
    if found is None:
        raise DomainError(
            VerificationError.EVALUATION_NOT_OPEN, f"the {kind.value} evaluation of {cycle_year} is not open yet", {"state": "not_open"}
        )
    return found

