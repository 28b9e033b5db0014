"""Verification: administrative checks of forwarded proposals, WBK (Zona Integritas) evaluation,
verifier overrides.

Domain error codes: ``verification_not_started``, ``verification_closed``,
``unknown_proposal``, ``lke_out_of_range``, ``unknown_threshold_set``,
``invalid_sheet`` (a SAKIP, RB or CETTAR sheet that does not fit its rubric), ``unknown_rubric``,
``evaluation_not_open``, ``evaluation_closed``, ``already_approved``, ``own_sheet`` (a reviewer
approving a sheet they entered), plus the runtime's codes
(``not_ready`` while the copy of registration's proposals is behind)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from contracts.base import (
    Acting,
    AdminDecision,
    Code,
    Command,
    Competition,
    Count,
    Digest,
    ErrorCode,
    EvaluationKind,
    Event,
    Group,
    Health,
    Instant,
    Name,
    ParticipantKind,
    Query,
    Reason,
    Role,
    SakipGrade,
    SetRef,
    Title,
    WbkDecision,
    WorkflowCommand,
    Year,
    acting,
    command,
    event,
)

SERVICE = "verification"


class VerificationError:
    NOT_STARTED = "verification_not_started"
    CLOSED = "verification_closed"
    UNKNOWN_PROPOSAL = "unknown_proposal"
    LKE_OUT_OF_RANGE = "lke_out_of_range"
    UNKNOWN_THRESHOLD_SET = "unknown_threshold_set"
    INVALID_SHEET = "invalid_sheet"
    NOT_FOUND = "not_found"
    UNKNOWN_RUBRIC = "unknown_rubric"
    EVALUATION_NOT_OPEN = "evaluation_not_open"
    EVALUATION_CLOSED = "evaluation_closed"
    ALREADY_APPROVED = "already_approved"
    OWN_SHEET = "own_sheet"


class DisqualificationReason:
    """Machine-readable reason codes of the administrative check."""

    INCOMPLETE = "incomplete"  # a required field is empty
    MISSING_DOCUMENT = "missing_document"
    TOO_YOUNG = "running_less_than_minimum"  # the innovation has run less than min_running_months
    INVALID_GROUP = "invalid_group"
    INVALID_CATEGORY = "invalid_category"
    DUPLICATE_TITLE = "duplicate_title"  # same title as another proposal of the cycle
    PAST_TOP_WINNER = "past_top_winner_in_general_group"


class Reasoned(BaseModel):
    code: str
    message: str = Field(description="A human sentence (Indonesian, with English).")


class PastWinner(BaseModel):
    model_config = {"extra": "forbid"}
    title: Title
    year: Year
    agency_code: Code | None = None


class AdminRules(BaseModel):
    """The cycle's administrative rules (from the cycle config)."""

    model_config = {"extra": "forbid"}
    min_running_months: int = Field(default=12, ge=0, le=120, strict=True)
    required_documents: list[Code] = Field(default_factory=lambda: ["proposal"])
    categories: list[Code] | None = Field(default=None, description="Allowed categories; none means any.")
    groups: list[Group] = Field(default_factory=lambda: list(Group))
    past_winners: list[PastWinner] = Field(default_factory=list, max_length=5000)
    review_required: bool = Field(
        default=False,
        description="When true, each automatic result stays pending until a verifier confirms or overrides it.",
    )
    verifiers: list[Code] | None = Field(
        default=None,
        max_length=1000,
        description="The verifiers who may confirm or override a result (their ids, as the portal's accounts name them); none means any verifier.",
    )


class VerificationCounts(BaseModel):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    state: str = Field(description="not_started | open | completed | closed | cancelled (its cycle was; the year started again opens it again)")
    total: Count
    pending: Count
    eligible: Count
    disqualified: Count
    overridden: Count
    deadline: Instant | None = Field(default=None, description="As start_verification set it; an operator's extension moves the cycle's (see its status).")
    pending_ids: list[Code] | None = Field(
        default=None, description="With verification_status's list_pending: the proposals waiting for a verifier (the first 1,000 by id)."
    )


class VerificationClosedSummary(BaseModel):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    eligible: Count
    disqualified: Count
    overridden: Count
    eligible_digest: Digest
    wbk_layak: Count = 0
    wbk_belum_layak: Count = 0


class ProposalDecisionView(BaseModel):
    proposal_id: Code
    automatic: AdminDecision
    reasons: list[Reasoned]
    final: AdminDecision
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    pending: bool = Field(
        default=False, description="Waiting for a verifier: final is the automatic result until one confirms or overrides it."
    )


# --------------------------------------------------------------------------- WBK / LKE


class AreaScore(BaseModel):
    """One leverage area of the LKE: fulfilment (pemenuhan) and reform (reform) points."""

    model_config = {"extra": "forbid"}
    fulfilment: float = Field(ge=0, allow_inf_nan=False)
    reform: float = Field(ge=0, allow_inf_nan=False)


class LkeResults(BaseModel):
    """The result components (hasil)."""

    model_config = {"extra": "forbid"}
    anti_corruption_survey: float = Field(ge=0, allow_inf_nan=False, description="IPAK, of 17.5")
    performance: float = Field(ge=0, allow_inf_nan=False, description="Performance achievement, of 5")
    service_survey: float = Field(ge=0, allow_inf_nan=False, description="IPKP, of 17.5")


class LkePreconditions(BaseModel):
    model_config = {"extra": "forbid"}
    audit_followup_pct: float = Field(ge=0, le=100, allow_inf_nan=False)
    sakip_grade: SakipGrade
    asset_declaration_compliant: bool = Field(strict=True)


class Lke(BaseModel):
    """Lembar Kerja Evaluasi Zona Integritas (PermenPANRB 90/2021)."""

    model_config = {"extra": "forbid"}
    areas: dict[str, AreaScore] = Field(
        description="change_management, business_process, hr_management, accountability, supervision, public_service"
    )
    results: LkeResults
    preconditions: LkePreconditions


class ThresholdCheck(BaseModel):
    name: str
    value: float
    minimum: float
    passed: bool


class WbkResult(BaseModel):
    unit_code: Code
    cycle_year: Year
    threshold_set: str
    total: float
    leverage_total: float
    automatic: WbkDecision
    final: WbkDecision
    failed: list[ThresholdCheck]
    checks: list[ThresholdCheck]
    overridden: bool = False


# --------------------------------------------------------------------------- commands


@command(SERVICE, "health", reply=Health)
class VerificationHealth(Query):
    """Liveness and readiness of the verification service."""


@command(SERVICE, "start_verification", reply=VerificationCounts)
class StartVerification(WorkflowCommand):
    """Run the administrative check over the frozen forwarded set of a cycle (sent by the workflow).
    Answers ``not_ready`` while the service's copy of the forwarded proposals differs from ``expected``."""

    cycle_year: Year
    track: Competition = Field(default=Competition.KOVABLIK, description="Whose forwarded set: the innovations' or the work-culture groups' risalah.")
    expected: SetRef
    call_closed_at: Instant
    deadline: Instant
    rules: AdminRules = Field(default_factory=AdminRules)
    at: Instant


@command(SERVICE, "verification_status", reply=VerificationCounts)
class VerificationStatus(Query):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    list_pending: bool = Field(default=False, description="Also list the proposals waiting for a verifier.")


@command(SERVICE, "get_decision", reply=ProposalDecisionView)
class GetDecision(Query):
    cycle_year: Year
    proposal_id: Code


@command(SERVICE, "override_decision", reply=ProposalDecisionView)
class OverrideDecision(Command):
    """A human verifier overrides the automatic decision, with a reason, until verification is
    closed: the cycle workflow closes it at its deadline, as an operator may have extended it."""
    ACTING: ClassVar[Acting | None] = acting(Role.VERIFIER, "verifier_id", ErrorCode.NOT_A_VERIFIER)


    cycle_year: Year
    proposal_id: Code
    decision: AdminDecision
    reason: Reason
    verifier_id: Code
    at: Instant | None = Field(default=None, description="When it was decided, for the record; defaults to the service's clock.")


@command(SERVICE, "close_verification", reply=VerificationClosedSummary)
class CloseVerification(WorkflowCommand):
    """Freeze the verification result at the deadline (sent by the workflow). Idempotent."""

    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    at: Instant


@command(SERVICE, "submit_lke", reply=WbkResult)
class SubmitLke(Command):
    """A unit nominated for "Layak Berpredikat WBK" submits its LKE; scored against a threshold set."""
    ACTING: ClassVar[Acting | None] = acting(Role.UNIT, "unit_code", ErrorCode.NOT_YOUR_UNIT, ErrorCode.NOT_YOUR_UNIT)


    cycle_year: Year
    unit_code: Code
    unit_name: Name | None = None
    agency_code: Code | None = None
    agency_name: Name | None = Field(default=None, description="The unit's agency, as the results and the certificate name it.")
    threshold_set: Code = "permenpanrb-90-2021"
    lke: Lke


@command(SERVICE, "override_wbk", reply=WbkResult)
class OverrideWbk(Command):
    ACTING: ClassVar[Acting | None] = acting(Role.VERIFIER, "verifier_id", ErrorCode.NOT_A_VERIFIER)

    cycle_year: Year
    unit_code: Code
    decision: WbkDecision
    reason: Reason
    verifier_id: Code
    at: Instant | None = None


@command(SERVICE, "get_wbk_result", reply=WbkResult)
class GetWbkResult(Query):
    cycle_year: Year
    unit_code: Code


# --------------------------------------------------------------------------- events


class VerifiedProposal(BaseModel):
    """What the jury stages need of an eligible proposal."""

    id: Code
    title: str
    group: Group
    category: Code
    unit_code: Code
    unit_name: str
    agency_code: Code
    agency_name: str
    forwarded_at: Instant | None = None
    track: Competition = Competition.KOVABLIK
    group_code: Code | None = Field(default=None, description="The work-culture group, for a KBK risalah.")


@event(SERVICE, "proposal_verified")
class ProposalVerified(Event):
    """A proposal passed the administrative check (automatically or by override)."""

    proposal: VerifiedProposal
    overridden: bool = False


@event(SERVICE, "proposal_disqualified")
class ProposalDisqualified(Event):
    """A proposal failed the administrative check, with machine-readable reasons."""

    proposal: VerifiedProposal
    reasons: list[Reasoned]
    overridden: bool = False


@event(SERVICE, "decision_overridden")
class DecisionOverridden(Event):
    """A human verifier changed an automatic decision (administrative or WBK)."""

    subject_kind: str = Field(description="proposal | wbk")
    subject_id: Code
    automatic: str
    decision: str
    reason: str
    verifier_id: Code


@event(SERVICE, "wbk_evaluated")
class WbkEvaluated(Event):
    """A unit's LKE was scored (or its decision overridden)."""

    result: WbkResult
    unit_name: str | None = None
    agency_code: Code | None = None
    agency_name: str | None = None


@event(SERVICE, "verification_completed")
class VerificationCompleted(Event):
    """Every proposal of the cycle has a decision (the workflow may close verification early)."""

    counts: VerificationCounts


@event(SERVICE, "verification_closed")
class VerificationClosed(Event):
    """The verification result is frozen; ``eligible_ids`` enter the first jury stage."""

    summary: VerificationClosedSummary
    eligible_ids: list[Code]
    wbk_layak_units: list[Code] = Field(default_factory=list)




# --------------------------------------------------------------------------- evaluations (SAKIP, RB, CETTAR)
# Each track's sheets are scored against a versioned rubric, a data file naming its source
# (services/verification/data/rubrics/). An evaluator enters a sheet, a reviewer other than the
# evaluator approves it (or returns it with a reason); the track's child workflow opens the window
# and closes it at its deadline; only approved sheets count. CETTAR's sheet carries the
# work-culture part; its other parts (SAKIP, RB, Zona Integritas) are the year's approved results
# of those tracks, read by the service when the sheet is entered and again at the close.


class EvaluationPart(BaseModel):
    """One part of an evaluation as the rubric weighs it: shown on every result."""

    key: Code
    name: str
    value: float = Field(description="The part as entered (or, for CETTAR, as taken from its own track's result).")
    max: float | None = Field(default=None, description="The part's maximum, where the rubric caps it (SAKIP's components).")
    weight: float | None = Field(default=None, description="The part's weight in a composite (CETTAR).")
    source: str | None = Field(default=None, description="Where the value came from, e.g. 'sakip 2027 (approved)', or 'missing: counted as 0'.")


class EvaluationView(BaseModel):
    cycle_year: Year
    kind: EvaluationKind
    subject_code: Code = Field(description="The agency, regency or city evaluated.")
    subject_name: str
    subject_kind: ParticipantKind | None = None
    rubric: Code = Field(description="The rubric's key, e.g. sakip-permenpanrb-88-2021.")
    rubric_source: str = Field(description="The rubric's source as its data file names it (regulation, or 'platform default').")
    parts: list[EvaluationPart]
    total: float
    grade: str = Field(description="SAKIP: AA..D; RB: the predicate's key; CETTAR: sangat_cettar | cettar | cukup_cettar.")
    label: str = Field(description="The grade as people read it, e.g. 'Sangat Memuaskan', 'Sangat Cettar'.")
    previous_grade: str | None = Field(default=None, description="SAKIP: last year's approved grade, as the platform remembers it.")
    improvement: int | None = Field(default=None, description="SAKIP: grades gained against last year (negative: lost).")
    state: str = Field(description="entered | approved | returned")
    evaluator_id: Code
    entered_at: Instant
    reviewer_id: Code | None = None
    reviewed_at: Instant | None = None
    review_reason: str | None = None
    note: str | None = None


class EvaluationWindow(BaseModel):
    cycle_year: Year
    kind: EvaluationKind
    state: str = Field(description="not_open | open | closed")
    rubric: Code | None = None
    deadline: Instant | None = None
    entered: Count = 0
    approved: Count = 0
    returned: Count = 0


class EvaluationClosedSummary(BaseModel):
    cycle_year: Year
    kind: EvaluationKind
    rubric: Code
    approved: Count = Field(description="The results that count: approved sheets.")
    unapproved: Count = Field(description="Sheets entered but not approved by the deadline: they do not count.")
    grades: dict[str, int] = Field(description="Approved results per grade.")
    digest: Digest = Field(description="digest_ids of the approved subjects' codes.")


class EvaluationPage(BaseModel):
    items: list[EvaluationView]
    total: Count
    next_offset: int | None = None


@command(SERVICE, "open_evaluation", reply=EvaluationWindow)
class OpenEvaluation(WorkflowCommand):
    """Open a track's evaluation window (sent by the track's workflow). Idempotent."""

    cycle_year: Year
    kind: EvaluationKind
    rubric: Code
    deadline: Instant
    evaluators: list[Code] | None = Field(default=None, max_length=1000, description="Who may enter sheets; none means any evaluator.")
    reviewers: list[Code] | None = Field(default=None, max_length=1000, description="Who may approve; none means any reviewer.")
    at: Instant


@command(SERVICE, "close_evaluation", reply=EvaluationClosedSummary)
class CloseEvaluation(WorkflowCommand):
    """Freeze a track's results at its deadline (sent by the track's workflow). Idempotent. For
    CETTAR, every rating is computed again from the approved SAKIP, RB and WBK results at closing."""

    cycle_year: Year
    kind: EvaluationKind
    at: Instant


@command(SERVICE, "enter_evaluation", reply=EvaluationView)
class EnterEvaluation(Command):
    """An evaluator enters (or corrects, until approved) one subject's sheet: SAKIP's four
    components by the rubric's keys, RB's ``index``, CETTAR's ``work_culture``."""

    ACTING: ClassVar[Acting | None] = acting(Role.EVALUATOR, "evaluator_id", ErrorCode.NOT_AN_EVALUATOR)

    cycle_year: Year
    kind: EvaluationKind
    subject_code: Code
    subject_name: Name
    subject_kind: ParticipantKind | None = None
    values: dict[Code, float] = Field(min_length=1, max_length=20)
    evaluator_id: Code
    note: Reason | None = None


@command(SERVICE, "review_evaluation", reply=EvaluationView)
class ReviewEvaluation(Command):
    """A reviewer approves an entered sheet, or returns it to the evaluator with a reason."""

    ACTING: ClassVar[Acting | None] = acting(Role.REVIEWER, "reviewer_id", ErrorCode.NOT_A_REVIEWER)

    cycle_year: Year
    kind: EvaluationKind
    subject_code: Code
    approve: bool
    reason: Reason | None = Field(default=None, description="Required when returning a sheet.")
    reviewer_id: Code


@command(SERVICE, "get_evaluation", reply=EvaluationView)
class GetEvaluation(Query):
    cycle_year: Year
    kind: EvaluationKind
    subject_code: Code


@command(SERVICE, "list_evaluations", reply=EvaluationPage)
class ListEvaluations(Query):
    cycle_year: Year
    kind: EvaluationKind
    state: str | None = Field(default=None, pattern=r"^(entered|approved|returned)$")
    offset: Count = 0
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


@command(SERVICE, "evaluation_status", reply=EvaluationWindow)
class EvaluationStatus(Query):
    cycle_year: Year
    kind: EvaluationKind


@event(SERVICE, "evaluation_entered")
class EvaluationEntered(Event):
    """A sheet was entered or corrected; the result is computed but does not count until approved."""

    evaluation: EvaluationView


@event(SERVICE, "evaluation_reviewed")
class EvaluationReviewed(Event):
    """A reviewer approved a sheet (it counts) or returned it (with the reason)."""

    evaluation: EvaluationView


@event(SERVICE, "evaluation_closed")
class EvaluationClosed(Event):
    """A track's results are frozen: every approved result, which the ceremony hands over."""

    summary: EvaluationClosedSummary
    results: list[EvaluationView]
