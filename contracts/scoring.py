"""Scoring: jurors, conflict-aware assignment, weighted scores, normalised ranking, shortlists,
public objections (uji publik).

Domain error codes: ``unknown_juror``, ``unknown_stage``, ``stage_closed``, ``not_assigned``,
``unknown_criterion``, ``missing_criterion``, ``off_scale``, ``infeasible_assignment``,
``objection_window_closed``, ``objection_window_open`` (a shortlist finalised before its window
has passed), ``not_on_shortlist``, ``already_decided`` (an objection decided before),
``already_scored`` (a conflict of interest declared on a proposal the juror has already scored), plus the runtime's codes (``not_ready``, retryable, while objections to a stage are
still undecided)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, Strict, model_validator

from contracts.base import (
    STAFF,
    Acting,
    Code,
    Command,
    Competition,
    Count,
    Digest,
    ErrorCode,
    Event,
    Group,
    Health,
    Instant,
    Name,
    ObjectionDecision,
    PositiveInt,
    Query,
    Reason,
    Role,
    SetRef,
    StageKey,
    WorkflowCommand,
    WorkflowQuery,
    Year,
    acting,
    command,
    event,
)
from contracts.published import score_text

SERVICE = "scoring"


Mark = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A criterion's value: a JSON number (not true, not "7"), checked against the stage's scale."""


class ScoringError:
    UNKNOWN_JUROR = "unknown_juror"
    UNKNOWN_STAGE = "unknown_stage"
    STAGE_CLOSED = "stage_closed"
    NOT_ASSIGNED = "not_assigned"
    UNKNOWN_CRITERION = "unknown_criterion"
    MISSING_CRITERION = "missing_criterion"
    OFF_SCALE = "off_scale"
    INFEASIBLE_ASSIGNMENT = "infeasible_assignment"
    OBJECTION_WINDOW_CLOSED = "objection_window_closed"
    OBJECTION_WINDOW_OPEN = "objection_window_open"
    NOT_ON_SHORTLIST = "not_on_shortlist"
    ALREADY_DECIDED = "already_decided"
    ALREADY_SCORED = "already_scored"
    NOT_FOUND = "not_found"


# --------------------------------------------------------------------------- values


class Juror(BaseModel):
    model_config = {"extra": "forbid"}
    id: Code
    name: Name
    affiliation: Code = Field(description="Agency code, or an outside institution's code.")
    expertise: list[Code] = Field(default_factory=list, description="Categories the juror knows best.")
    conflicts: list[Code] = Field(default_factory=list, description="Proposal ids or agency codes.")
    active: bool = True


class Criterion(BaseModel):
    model_config = {"extra": "forbid"}
    key: Code
    name: Name
    weight: float = Field(gt=0, le=1, allow_inf_nan=False)
    scale_min: float = Field(default=1, allow_inf_nan=False)
    scale_max: float = Field(default=10, allow_inf_nan=False)


def stage_rule_problems(criteria: list[Criterion], group_proportions: dict[Any, float] | None, path: str = "") -> list[tuple[str, str]]:
    """What is wrong with a stage's criteria and group proportions, as (field path, problem):
    the cycle config and ``open_stage`` hold a stage to the same rules."""
    at = f"{path}." if path else ""
    out: list[tuple[str, str]] = []
    total = sum(c.weight for c in criteria)
    if abs(total - 1.0) > 1e-6:
        out.append((f"{at}criteria", f"weights sum to {total:g}, must sum to 1"))
    keys = [c.key for c in criteria]
    if len(set(keys)) != len(keys):
        out.append((f"{at}criteria", "criterion keys must be unique"))
    for j, c in enumerate(criteria):
        if c.scale_min >= c.scale_max:
            out.append((f"{at}criteria[{j}]", "scale_min must be below scale_max"))
    if group_proportions is not None:
        share = sum(group_proportions.values())
        if abs(share - 1.0) > 1e-6 or any(v < 0 for v in group_proportions.values()):
            out.append((f"{at}group_proportions", "must be non-negative and sum to 1"))
    return out


def check_stage_rules(criteria: list[Criterion], group_proportions: dict[Any, float] | None, path: str = "") -> None:
    """Raise ``ValueError`` naming every :func:`stage_rule_problems` (for a model's validator)."""
    problems = stage_rule_problems(criteria, group_proportions, path)
    if problems:
        raise ValueError("; ".join(f"{at}: {problem}" for at, problem in problems))


class EntrantsRef(BaseModel):
    """Who enters a stage: the verification's eligible list, or a previous stage's final shortlist."""

    model_config = {"extra": "forbid"}
    source: str = Field(pattern=r"^(verification|stage)$")
    track: Competition = Field(default=Competition.KOVABLIK, description="With source 'verification': whose eligible set (KBK's risalah or the innovations).")
    stage: StageKey | None = Field(default=None, description="The previous stage, when source is 'stage'.")
    expected: SetRef


class StageSummary(BaseModel):
    cycle_year: Year
    stage: StageKey
    state: str = Field(description="open | closed | final | cancelled (its cycle was; open_stage when the year starts again opens it again)")
    proposals: Count
    jurors: Count
    assignments: Count
    scored: Count
    deadline: Instant | None = None


class JurorProgress(BaseModel):
    juror_id: Code
    assigned: Count
    scored: Count
    missing: list[Code]


class StageStatusView(StageSummary):
    fully_scored: bool
    proposals_scored: Count | None = Field(
        default=None, description="Proposals with at least one assigned juror's score (what the stage can rank)."
    )
    per_juror: list[JurorProgress] = Field(default_factory=list)


class RankedRow(BaseModel):
    rank: PositiveInt
    proposal_id: Code
    title: str
    group: Group
    agency_code: Code
    unit_code: Code
    unit_name: str | None = None
    agency_name: str | None = None
    category: str | None = None
    score: float | None = Field(description="Mean of the normalised weighted totals; none when unscored.")
    raw_score: float | None = Field(
        default=None, description="Mean of the jurors' raw weighted totals, on the stage's scale (a passing grade applies to it)."
    )
    jurors: Count
    explanation: dict[str, Any] = Field(description="Raw and normalised scores per juror, tie-break used, flags.")
    score_published: str | None = Field(
        default=None,
        description="The score as published: rounded half-up to two decimals (contracts.published), e.g. '73.01'; always derived from score.",
    )

    @model_validator(mode="after")
    def _publish(self) -> RankedRow:
        self.score_published = score_text(self.score) or None
        return self


class ShortlistView(BaseModel):
    cycle_year: Year
    stage: StageKey
    announcement_no: str
    final: bool
    rows: list[RankedRow]
    digest: Digest


class StageClosedSummary(BaseModel):
    cycle_year: Year
    stage: StageKey
    ranked: Count
    unscored: Count
    shortlist: SetRef
    announcement_no: str
    assignments: Count | None = Field(default=None, description="Assignments at the close, jurors added on divergence included.")
    scores: Count | None = Field(default=None, description="Assignments scored at the close.")
    objection_window_until: Instant | None = Field(default=None, description="The public objection window the stage was closed with, if any.")


class AssignmentView(BaseModel):
    """One proposal a juror is to score in a stage, with the juror's latest marks if any."""

    proposal_id: Code
    title: str | None = None
    group: Group | None = None
    category: str | None = None
    scored: bool
    scores: dict[str, float] | None = Field(default=None, description="The juror's latest marks per criterion.")
    comment: str | None = None
    revision: Count = Field(default=0, description="How many times the juror has scored it (0: not yet).")


class JurorStageView(BaseModel):
    """A stage as one juror sees it: its state, deadline and criteria, and their assignments."""

    stage: StageKey
    state: str
    deadline: Instant
    criteria: list[Criterion]
    assignments: list[AssignmentView]


class JurorAssignmentsView(BaseModel):
    cycle_year: Year
    juror_id: Code
    stages: list[JurorStageView]


class ConflictDeclaredView(BaseModel):
    """A juror's declared conflict of interest: the assignment left them, and who took it over."""

    stage: StageKey
    proposal_id: Code
    juror_id: Code
    replacement_juror_id: Code | None = Field(default=None, description="The juror now assigned in their place; none when no free juror was left.")


class ObjectionView(BaseModel):
    id: Code
    stage: StageKey
    proposal_id: Code
    filer: str
    reason: str
    filed_at: Instant
    decision: ObjectionDecision | None = None
    decision_reason: str | None = None
    decided_by: str | None = None


class ObjectionsStatusView(BaseModel):
    cycle_year: Year
    stage: StageKey
    window_until: Instant | None
    filed: Count
    pending: Count
    upheld: Count
    rejected: Count


class FinalShortlistSummary(BaseModel):
    cycle_year: Year
    stage: StageKey
    shortlist: SetRef
    removed: list[Code]
    promoted: list[Code]
    announcement_no: str


# --------------------------------------------------------------------------- commands


@command(SERVICE, "health", reply=Health)
class ScoringHealth(Query):
    """Liveness and readiness of the scoring service."""


@command(SERVICE, "import_jurors")
class ImportJurors(Command):
    """Create or update jurors. Idempotent by id."""

    jurors: list[Juror] = Field(min_length=1, max_length=5000)


@command(SERVICE, "list_jurors")
class ListJurors(Query):
    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        return STAFF  # the pool's affiliations and conflicts

    offset: Count = 0
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


@command(SERVICE, "open_stage", reply=StageSummary)
class OpenStage(WorkflowCommand):
    """Open a jury stage and assign jurors (sent by the workflow). Fails before assigning anything
    when the pool cannot cover every proposal. Answers ``not_ready`` while the entrants the command
    expects have not reached the service."""

    cycle_year: Year
    stage: StageKey
    entrants: EntrantsRef
    criteria: list[Criterion] = Field(min_length=1, max_length=30)
    jurors_per_proposal: int = Field(default=3, ge=1, le=20, strict=True)
    advance: int = Field(ge=1, strict=True)
    group_proportions: dict[Group, float] | None = None
    divergence_threshold: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    deadline: Instant
    seed: int = Field(default=0, strict=True)
    at: Instant

    @model_validator(mode="after")
    def _stage_rules(self) -> OpenStage:
        check_stage_rules(self.criteria, self.group_proportions)
        return self


@command(SERVICE, "submit_score")
class SubmitScore(Command):
    """A juror scores (or re-scores) one assigned proposal, one value per criterion."""
    ACTING: ClassVar[Acting | None] = acting(Role.JUROR, "juror_id", ErrorCode.NOT_A_JUROR)


    cycle_year: Year
    stage: StageKey
    juror_id: Code
    proposal_id: Code
    scores: dict[str, Mark] = Field(min_length=1, max_length=30)
    comment: str | None = Field(default=None, max_length=5000)


@command(SERVICE, "declare_conflict", reply=ConflictDeclaredView)
class DeclareConflict(Command):
    """A juror declares a conflict of interest with one assigned proposal before scoring it: the
    assignment leaves them and goes to another conflict-free juror of the pool, if one is left."""
    ACTING: ClassVar[Acting | None] = acting(Role.JUROR, "juror_id", ErrorCode.NOT_A_JUROR)

    cycle_year: Year
    stage: StageKey
    juror_id: Code
    proposal_id: Code
    reason: Reason


@command(SERVICE, "stage_status", reply=StageStatusView)
class StageStatus(WorkflowQuery):
    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        return STAFF if cmd.per_juror else None  # each juror's load and open assignments

    cycle_year: Year
    stage: StageKey
    per_juror: bool = False


@command(SERVICE, "juror_assignments", reply=JurorAssignmentsView)
class JurorAssignments(Query):
    """One juror's assignments in every stage of a year (or one stage), with each stage's criteria
    (scale and weight) and the juror's latest marks: what the portal's scoring form shows. A
    person reading it is that juror (or staff): no juror sees another's load or marks."""

    OWN_READER_FIELD: ClassVar[str | None] = "juror_id"

    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        return STAFF | {Role.JUROR}

    cycle_year: Year
    juror_id: Code
    stage: StageKey | None = None


@command(SERVICE, "remind_jurors")
class RemindJurors(WorkflowCommand):
    """Publish a reminder event to each juror with open assignments (sent by the workflow)."""

    cycle_year: Year
    stage: StageKey
    at: Instant
    deadline: Instant | None = Field(
        default=None, description="The stage's deadline now (an operator may have extended it); defaults to the one open_stage set."
    )


@command(SERVICE, "close_stage", reply=StageClosedSummary)
class CloseStage(WorkflowCommand):
    """Freeze scores, rank, publish the shortlist (sent by the workflow). Idempotent."""

    cycle_year: Year
    stage: StageKey
    at: Instant
    objection_window_until: Instant | None = Field(default=None, description="Public objections accepted until then.")


@command(SERVICE, "get_shortlist", reply=ShortlistView)
class GetShortlist(Query):
    cycle_year: Year
    stage: StageKey


@command(SERVICE, "file_objection", reply=ObjectionView)
class FileObjection(Command):
    """A member of the public objects to a shortlisted proposal during the objection window."""
    ACTING: ClassVar[Acting | None] = acting((Role.PUBLIC, *(r for r in Role if r != Role.PUBLIC)), None, ErrorCode.ACTOR_REQUIRED)  # anyone signed in


    cycle_year: Year
    stage: StageKey
    proposal_id: Code
    filer: Name
    reason: Reason
    at: Instant | None = Field(default=None, description="When it was filed; defaults to, and is never before, the service's clock.")


@command(SERVICE, "decide_objection", reply=ObjectionView)
class DecideObjection(Command):
    """Decide an objection: ``upheld`` removes the proposal (the next of its group moves up)."""
    ACTING: ClassVar[Acting | None] = acting((Role.SECRETARIAT, Role.OPERATOR), "decided_by", ErrorCode.NOT_SECRETARIAT)


    cycle_year: Year
    stage: StageKey
    objection_id: Code
    decision: ObjectionDecision
    reason: Reason
    decided_by: Code


@command(SERVICE, "objections_status", reply=ObjectionsStatusView)
class ObjectionsStatus(Query):
    cycle_year: Year
    stage: StageKey


@command(SERVICE, "finalize_shortlist", reply=FinalShortlistSummary)
class FinalizeShortlist(WorkflowCommand):
    """Make the stage's shortlist final once the window passed and every objection is decided
    (sent by the workflow). Answers ``not_ready`` while objections are pending. Idempotent."""

    cycle_year: Year
    stage: StageKey
    at: Instant


# --------------------------------------------------------------------------- events


@event(SERVICE, "jurors_assigned")
class JurorsAssigned(Event):
    stage: StageKey
    proposals: Count
    jurors: Count
    assignments: Count
    load_min: Count
    load_max: Count
    proposal_ids: list[Code] = Field(
        default_factory=list,
        description="The proposals that entered the stage (the innovation archive's stage reached); empty in events recorded before it was added.",
    )


@event(SERVICE, "juror_added")
class JurorAdded(Event):
    """Scores of a proposal diverged beyond the threshold; one more juror was assigned."""

    stage: StageKey
    proposal_id: Code
    juror_id: Code
    spread: float


@event(SERVICE, "conflict_declared")
class ConflictDeclared(Event):
    """A juror declared a conflict of interest; the assignment moved to ``replacement_juror_id``."""

    stage: StageKey
    proposal_id: Code
    juror_id: Code
    replacement_juror_id: Code | None = None
    reason: Reason


@event(SERVICE, "score_submitted")
class ScoreSubmitted(Event):
    stage: StageKey
    juror_id: Code
    proposal_id: Code
    weighted_total: float
    revision: PositiveInt


@event(SERVICE, "reminder_due")
class ReminderDue(Event):
    """A juror still has open assignments in a stage."""

    stage: StageKey
    juror_id: Code
    open_assignments: list[Code]
    deadline: Instant


@event(SERVICE, "stage_fully_scored")
class StageFullyScored(Event):
    """Every assignment of the stage is scored (the workflow may close it early)."""

    stage: StageKey
    assignments: Count


@event(SERVICE, "stage_closed")
class StageClosed(Event):
    summary: StageClosedSummary


@event(SERVICE, "shortlist_published")
class ShortlistPublished(Event):
    """Pengumuman: the shortlist of a stage, numbered."""

    stage: StageKey
    announcement_no: str
    rows: list[RankedRow]
    objection_window_until: Instant | None = None


@event(SERVICE, "objection_filed")
class ObjectionFiled(Event):
    objection: ObjectionView


@event(SERVICE, "objection_decided")
class ObjectionDecided(Event):
    objection: ObjectionView


@event(SERVICE, "shortlist_final")
class ShortlistFinal(Event):
    """The stage's shortlist after objections: what enters the next stage (or the awards)."""

    stage: StageKey
    announcement_no: str
    rows: list[RankedRow]
    digest: Digest
