"""The yearly cycle: its configuration (what an operator writes in ``cycles/<year>.toml``), the
workflow's inputs, outputs, status and updates, and the lifecycle events the workflow publishes.

The workflow itself lives in ``workflows/``; these models are shared with the CLI and services."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.awards import RULE_TRACKS, AwardRule, Ceremony, award_rule_problems
from contracts.base import (
    DEFAULT_STAGES,
    Code,
    CyclePhase,
    Group,
    Instant,
    Name,
    PositiveInt,
    Reason,
    StageKey,
    Track,
    WorkflowEvent,
    Year,
    event,
)
from contracts.scoring import Criterion, stage_rule_problems
from contracts.verification import AdminRules

SERVICE = "cycle"


def workflow_id(year: int) -> str:
    return f"bfest-cycle-{year}"


def stage_workflow_id(year: int, stage: str) -> str:
    return f"bfest-cycle-{year}-{stage}"


def track_workflow_id(year: int, track: str) -> str:
    """A track's child workflow (sakip, rb, cettar, kbk): findable by the ``BfestTrack`` search attribute."""
    return f"bfest-cycle-{year}-{track}"


TASK_QUEUE = "bfest-cycle"


class CallConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opens: Instant
    closes: Instant
    quota_per_agency: PositiveInt = 3


class VerificationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deadline: Instant
    rules: AdminRules = Field(default_factory=AdminRules)


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StageKey
    name: Name
    deadline: Instant
    criteria: list[Criterion] = Field(min_length=1)
    jurors_per_proposal: int = Field(default=3, ge=1, le=20)
    advance: PositiveInt
    group_proportions: dict[Group, float] | None = None
    divergence_threshold: float = Field(default=2.0, gt=0)
    reminders: list[dt.timedelta] = Field(
        default_factory=lambda: [dt.timedelta(days=3), dt.timedelta(days=1)],
        description="Remind jurors with open assignments this long before the deadline.",
    )
    objection_days: float = Field(default=0, ge=0, le=60, description="Public objection window after the shortlist.")


class EvaluationTrackConfig(BaseModel):
    """An evaluation track (SAKIP, RB, CETTAR): evaluators enter sheets and reviewers approve them
    from ``opens`` until ``deadline``, scored by the rubric named (a data file under
    services/verification/data/rubrics/, naming its source)."""

    model_config = ConfigDict(extra="forbid")
    opens: Instant
    deadline: Instant
    rubric: Code
    evaluators: list[Code] | None = Field(default=None, max_length=1000, description="Who may enter sheets; none means any evaluator.")
    reviewers: list[Code] | None = Field(default=None, max_length=1000, description="Who may approve; none means any reviewer.")


class SakipTrackConfig(EvaluationTrackConfig):
    rubric: Code = "sakip-permenpanrb-88-2021"


class RbTrackConfig(EvaluationTrackConfig):
    rubric: Code = "rb-index-permenpanrb-26-2020"


class CettarTrackConfig(EvaluationTrackConfig):
    """CETTAR's composite reads the year's SAKIP, RB and Zona Integritas results: its deadline
    comes after theirs (the rating is computed again at its close)."""

    rubric: Code = "cettar-platform-default-2027"


class KbkTrackConfig(BaseModel):
    """The work-culture group competition: its own call (risalah), check and jury stages. Its
    stage keys share the year's namespace with KOVABLIK's (each names a child workflow)."""

    model_config = ConfigDict(extra="forbid")
    call: CallConfig
    verification: VerificationConfig
    stages: list[StageConfig] = Field(min_length=1)


OTHER_TRACKS = ("sakip", "rb", "cettar", "kbk")
"""The tracks that run in child workflows of their own (KOVABLIK and WBK run in the cycle's)."""

KBK_CALL, KBK_VERIFICATION = "kbk_call", "kbk_verification"
"""What ``extend_deadline`` calls the KBK call's and check's deadlines (the evaluation tracks' by
their track's name, KBK's jury stages by their keys)."""


class TracksConfig(BaseModel):
    """The tracks beside KOVABLIK and WBK; a year enables those it names."""

    model_config = ConfigDict(extra="forbid")
    sakip: SakipTrackConfig | None = None
    rb: RbTrackConfig | None = None
    cettar: CettarTrackConfig | None = None
    kbk: KbkTrackConfig | None = None

    def enabled(self) -> list[Track]:
        return [Track(name) for name in OTHER_TRACKS if getattr(self, name) is not None]

    def evaluations(self) -> dict[str, EvaluationTrackConfig]:
        """The enabled evaluation tracks (sakip, rb, cettar) by name."""
        return {name: cfg for name in ("sakip", "rb", "cettar") if (cfg := getattr(self, name)) is not None}

    def problems(self, ceremony: dt.datetime | None, verification: VerificationConfig | None) -> list[tuple[str, str]]:
        """The tracks' dates: each window opens before its deadline, every deadline comes before the
        ceremony, CETTAR closes after the results it reads (SAKIP, RB, and KOVABLIK's verification,
        which decides WBK), KBK's call, check and stages in order like KOVABLIK's."""
        out: list[tuple[str, str]] = []
        for name, ev in self.evaluations().items():
            path = f"tracks.{name}"
            if ev.deadline <= ev.opens:
                out.append((f"{path}.deadline", f"must be after {path}.opens"))
            if ceremony is not None and ev.deadline >= ceremony:
                out.append((f"{path}.deadline", "must be before ceremony.date"))
        if self.cettar is not None:
            reads = [(f"tracks.{n}.deadline", t.deadline) for n, t in (("sakip", self.sakip), ("rb", self.rb)) if t is not None]
            if verification is not None:
                reads.append(("verification.deadline", verification.deadline))  # WBK is decided there
            for path, deadline in reads:
                if self.cettar.deadline <= deadline:
                    out.append(("tracks.cettar.deadline", f"must be after {path}: CETTAR's rating reads that result"))
        if self.kbk is not None:
            out.extend(competition_problems(self.kbk.call, self.kbk.verification, self.kbk.stages, ceremony, "tracks.kbk."))
        return out

    def start_problems(self, kovablik_stages: set[str], reserved: set[str]) -> list[tuple[str, str]]:
        """KBK's stage keys each name a child workflow ``bfest-cycle-<year>-<key>`` beside
        KOVABLIK's stages and the tracks: none may be taken twice, nor be one of the cycle's words."""
        if self.kbk is None:
            return []
        taken = {*reserved, *OTHER_TRACKS, "kovablik", "wbk", KBK_CALL, KBK_VERIFICATION}
        out = []
        for i, stage in enumerate(self.kbk.stages):
            path = f"tracks.kbk.stages[{i}].key"
            if stage.key in kovablik_stages:
                out.append((path, f"{stage.key!r} is also a KOVABLIK stage; KBK's stages need keys of their own (e.g. kbk_{stage.key})"))
            elif stage.key in taken:
                out.append((path, f"{stage.key!r} names a track or one of the cycle's own steps; a jury stage needs another key"))
        return out


def competition_problems(
    call: CallConfig | None,
    verification: VerificationConfig | None,
    stages: list[StageConfig],
    ceremony: dt.datetime | None,
    prefix: str = "",
) -> list[tuple[str, str]]:
    """A competition's dates and stages (KOVABLIK's at the top of the config, KBK's under
    ``tracks.kbk``): call, verification and each stage in order, each stage's rules, the ceremony
    after the last stage and its objection window. Paths start with ``prefix``."""
    out: list[tuple[str, str]] = []
    if call is not None and call.opens >= call.closes:
        out.append((f"{prefix}call.closes", f"must be after {prefix}call.opens"))
    if call is not None and verification is not None and verification.deadline <= call.closes:
        out.append((f"{prefix}verification.deadline", f"must be after {prefix}call.closes"))
    previous: dt.datetime | None = verification.deadline if verification is not None else None
    previous_path = f"{prefix}verification.deadline"
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        path = f"{prefix}stages[{i}]"
        if stage.key in seen:
            out.append((f"{path}.key", f"stage {stage.key!r} appears twice"))
        seen.add(stage.key)
        if previous is not None and stage.deadline <= previous:
            out.append((f"{path}.deadline", f"must be after {previous_path}"))
        previous, previous_path = stage.deadline, f"{path}.deadline"
        out.extend(stage_rule_problems(stage.criteria, stage.group_proportions, path))
        if i > 0 and stage.advance > stages[i - 1].advance:
            out.append((f"{path}.advance", f"cannot exceed its entrants, the previous stage's advance ({stages[i - 1].advance})"))
        for k, r in enumerate(stage.reminders):
            if r <= dt.timedelta(0):
                out.append((f"{path}.reminders[{k}]", "must be a positive duration"))
    if ceremony is not None and previous is not None:
        window_end = previous
        if stages and stages[-1].objection_days:
            window_end = previous + dt.timedelta(days=stages[-1].objection_days)
        if ceremony <= previous:
            out.append(("ceremony.date", f"must be after {previous_path}"))
        elif ceremony < window_end:
            last = f"{prefix}stages[{len(stages) - 1}]" if prefix else "stage"
            out.append(("ceremony.date", f"must be after the last {last}'s objection window"))
    return out


class CycleConfig(BaseModel):
    """A yearly cycle. Validated as a whole: :meth:`problems` lists every problem with its field path."""

    model_config = ConfigDict(extra="forbid")
    year: Year
    name: Name = "Bureaucracy Fest"
    timezone: Literal["Asia/Jakarta"] = Field(
        default="Asia/Jakarta",
        description="The cycle's zone: every date is shown in Asia/Jakarta (WIB); a date in the file may carry any offset.",
    )
    call: CallConfig
    verification: VerificationConfig
    stages: list[StageConfig] = Field(min_length=1)
    ceremony: Ceremony
    awards: list[AwardRule] = Field(min_length=1)
    seed: int = 0
    tracks: TracksConfig = Field(default_factory=TracksConfig, description="SAKIP, RB, CETTAR and KBK, when enabled.")

    @model_validator(mode="after")
    def _consistent(self) -> CycleConfig:
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(f"{path}: {msg}" for path, msg in problems))
        return self

    def problems(self) -> list[tuple[str, str]]:
        """Every cross-field problem, each with its field path. A section that is missing (the
        config loader builds the model from the sections that parsed) skips the rules that need it,
        so one broken section does not hide the others' problems."""
        call, verification = getattr(self, "call", None), getattr(self, "verification", None)
        stages, ceremony = getattr(self, "stages", None) or [], getattr(self, "ceremony", None)
        out = competition_problems(call, verification, stages, ceremony.date if ceremony is not None else None)
        tracks = getattr(self, "tracks", None)
        if isinstance(tracks, TracksConfig):
            out.extend(tracks.problems(ceremony.date if ceremony is not None else None, verification))
        return out

    def start_problems(self) -> list[tuple[str, str]]:
        """What the config loader refuses besides :meth:`problems`: award rules the awards service
        would refuse, stage keys that name the cycle's own steps. Kept out of the model's own
        validation: the workflow reads its input with it, and a cycle recorded before these were
        checked must still replay (and answer its status query)."""
        reserved = {"call", *(p.value for p in CyclePhase)}
        stages = getattr(self, "stages", None) or []
        tracks = getattr(self, "tracks", None)
        known = isinstance(tracks, TracksConfig)  # not when its section failed to parse
        tracks = tracks if isinstance(tracks, TracksConfig) else TracksConfig()
        enabled = {t.value for t in tracks.enabled()}
        out = [
            (f"stages[{i}].key", f"{s.key!r} names one of the cycle's own steps or phases; a jury stage needs another key")
            for i, s in enumerate(stages)
            if s.key in reserved
        ]
        # A track's child workflow is bfest-cycle-<year>-<track>, a stage's bfest-cycle-<year>-<key>.
        out += [
            (f"stages[{i}].key", f"{s.key!r} is the name of an enabled track (its workflow's id); a jury stage needs another key")
            for i, s in enumerate(stages)
            if s.key in enabled
        ]
        out += tracks.start_problems({s.key for s in stages}, reserved)
        awards = getattr(self, "awards", None) or []
        out += [
            (f"awards[{i}].track", f"{rule.key} awards in track {rule.award_track()}, which this year does not enable (add [tracks.{rule.award_track()}])")
            for i, rule in enumerate(awards)
            if known and rule.rule in RULE_TRACKS and rule.award_track() in OTHER_TRACKS and rule.award_track() not in enabled
        ]
        return out + award_rule_problems(awards, "awards")

    def stage(self, key: str) -> StageConfig | None:
        return next((s for s in self.stages if s.key == key), None)

    def summary(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "name": self.name,
            "call": f"{self.call.opens.isoformat()} – {self.call.closes.isoformat()}",
            "quota_per_agency": self.call.quota_per_agency,
            "stages": [s.key for s in self.stages],
            "ceremony": f"{self.ceremony.date.isoformat()} @ {self.ceremony.venue}",
            "awards": [a.key for a in self.awards],
        }


DEFAULT_STAGE_KEYS = DEFAULT_STAGES


# --------------------------------------------------------------------------- workflow I/O


class CycleInput(BaseModel):
    config: CycleConfig


class StageOutcome(BaseModel):
    stage: str
    entrants: int = 0
    assignments: int = 0
    scored: int = 0
    shortlisted: int = 0
    closed_early: bool = False
    announcement_no: str | None = None
    objections_upheld: list[str] = Field(default_factory=list)
    final_announcement_no: str | None = None
    note: str | None = Field(default=None, description="Why the stage closed as it did, when it is not the usual way.")


class StageStatusView(BaseModel):
    key: str
    state: str = Field(description="pending | running | done, or cancelled | failed for the stage the cycle ended in")
    deadline: Instant
    outcome: StageOutcome | None = None


class TrackStatusView(BaseModel):
    track: str
    workflow_id: str
    state: str = Field(description="pending | running | done | cancelled | failed")
    phase: str | None = Field(default=None, description="What the track does now, e.g. evaluation, call_open, verification, or a jury stage's key.")
    deadline: Instant | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class CycleStatus(BaseModel):
    """What the ``status`` query returns."""

    year: int
    phase: CyclePhase
    stage: str | None = Field(description="The current jury stage, if any.")
    deadline: Instant | None = Field(description="The deadline the cycle is waiting for now.")
    counts: dict[str, int] = Field(default_factory=dict)
    stages: list[StageStatusView] = Field(default_factory=list)
    awards: dict[str, list[str]] = Field(default_factory=dict)
    operator_actions: list[dict[str, Any]] = Field(default_factory=list)
    cancelled: bool = False
    error: str | None = None
    attention: str | None = Field(default=None, description="What the cycle waits for the operator to decide, if anything.")
    warnings: list[str] = Field(default_factory=list, description="What the year's results lack, said once it has them.")
    tracks: list[TrackStatusView] = Field(default_factory=list, description="The other tracks' child workflows, when enabled.")


class CycleResult(BaseModel):
    year: int
    phase: CyclePhase
    counts: dict[str, int]
    stages: list[StageOutcome]
    awards: dict[str, list[str]] = Field(description="Winners per award category (unit codes / proposal ids).")
    announcement_no: str | None = None
    warnings: list[str] = Field(default_factory=list, description="Award categories left empty or short, and why.")


class ExtendDeadline(BaseModel):
    """Update ``extend_deadline``: move a stage's (or the call's, or verification's) deadline."""

    model_config = ConfigDict(extra="forbid")
    stage: str = Field(description="A jury stage key, or 'call' or 'verification'.")
    until: Instant
    reason: Reason = "extended by the operator"
    operator: str = Field(default="operator", max_length=100)


class CloseStageNow(BaseModel):
    """Update ``close_stage_now``: close a running stage before its deadline."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    reason: Reason = "closed early by the operator"
    operator: str = Field(default="operator", max_length=100)


# --------------------------------------------------------------------------- lifecycle events


@event(SERVICE, "cycle_started")
class CycleStarted(WorkflowEvent):
    config_summary: dict[str, Any]


@event(SERVICE, "stage_changed")
class CycleStageChanged(WorkflowEvent):
    """The cycle moved to a new phase or jury stage."""

    phase: CyclePhase
    stage: str | None = None
    deadline: Instant | None = None


@event(SERVICE, "cycle_cancelled")
class CycleCancelled(WorkflowEvent):
    """An operator cancelled the cycle; services stop accepting work for it."""

    phase: CyclePhase
    stage: str | None = None
    reason: str = "cancelled by the operator"


@event(SERVICE, "cycle_completed")
class CycleCompleted(WorkflowEvent):
    awards: dict[str, list[str]]
    counts: dict[str, int]
