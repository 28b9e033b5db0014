"""Verification: administrative checks of forwarded proposals, WBK (Zona Integritas) evaluation,
verifier overrides.

Domain error codes: ``verification_not_started``, ``verification_closed``,
``unknown_proposal``, ``lke_out_of_range``, ``unknown_threshold_set``,
``invalid_sheet`` (a SAKIP, RB or CETTAR sheet that does not fit its rubric), plus the runtime's codes
(``not_ready`` while the copy of registration's proposals is behind)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from contracts.base import (
    Acting,
    AdminDecision,
    Code,
    Command,
    Count,
    Digest,
    ErrorCode,
    Event,
    Group,
    Health,
    Instant,
    Name,
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
    expected: SetRef
    call_closed_at: Instant
    deadline: Instant
    rules: AdminRules = Field(default_factory=AdminRules)
    at: Instant


@command(SERVICE, "verification_status", reply=VerificationCounts)
class VerificationStatus(Query):
    cycle_year: Year
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


