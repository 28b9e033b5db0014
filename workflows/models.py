"""Workflow-internal inputs and outputs (what crosses the workflow/activity boundary besides the
contracts' commands)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator
from temporalio.exceptions import ApplicationError

from contracts.base import Competition, EvaluationKind, SetRef, Track
from contracts.cycle import EvaluationTrackConfig, KbkTrackConfig, StageConfig, StageOutcome
from contracts.scoring import check_stage_rules
from workflows.config import field_problems

M = TypeVar("M", bound=BaseModel)


def read_input(model: type[M], raw: Any, what: str, expected: str) -> M:
    """A workflow's input, read by the workflow rather than by the data converter: one started by
    hand (the temporal CLI, say) with an input it cannot read, or with none, fails at once with a
    non-retryable ``Invalid<What>Input`` naming each problem, instead of retrying a workflow task
    that can never succeed."""
    kind = f"Invalid{what.title().replace(' ', '')}Input"
    if raw is None:
        raise ApplicationError(f"no {what} input: start the workflow with {expected}", type=kind, non_retryable=True)
    try:
        return model.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        problems = [f"{path}: {msg}" for path, msg in field_problems(exc, whole="(input)")]
        more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
        message = f"invalid {what} input, {len(problems)} problem(s): " + "; ".join(problems[:8]) + more
    except (TypeError, ValueError) as exc:
        message = f"invalid {what} input: {exc}"
    raise ApplicationError(message, type=kind, non_retryable=True)


class PublishEvent(BaseModel):
    subject: str
    event_id: str
    payload: str


class StageInput(BaseModel):
    year: int
    stage: StageConfig
    source: str = Field(description="verification | stage")
    previous_stage: str | None = None
    entrants: SetRef
    ceremony_date: dt.datetime
    seed: int = 0
    parent_id: str = Field(description="The workflow a stage waiting for the operator tells (the cycle's).")
    track: Competition = Field(default=Competition.KOVABLIK, description="Whose stage: KOVABLIK's or KBK's (its entrants from that competition's check).")

    @model_validator(mode="after")
    def _stage_rules(self) -> StageInput:
        # The rules open_stage holds a stage to, so a stage started by hand with others fails at
        # once naming them (the cycle's own stages passed them with its config).
        check_stage_rules(self.stage.criteria, self.stage.group_proportions, "stage")
        return self


class StageResult(BaseModel):
    outcome: StageOutcome
    shortlist: SetRef


class StageDeadline(BaseModel):
    until: dt.datetime
    reason: str
    operator: str


class StageCloseNow(BaseModel):
    reason: str
    operator: str


class StageAttention(BaseModel):
    """Signal ``stage_attention`` from a stage to its cycle: why it waits for the operator, or
    ``message=None`` once it goes on."""

    stage: str
    message: str | None = None


# --------------------------------------------------------------------------- the tracks' child workflows


class EvaluationTrackInput(BaseModel):
    """An evaluation track's workflow (SAKIP, RB, CETTAR): its window and rubric."""

    year: int
    kind: EvaluationKind
    config: EvaluationTrackConfig
    parent_id: str = Field(description="The cycle, told of the track's progress.")


class KbkTrackInput(BaseModel):
    """The KBK competition's workflow: its call, check and jury stages."""

    year: int
    config: KbkTrackConfig
    ceremony_date: dt.datetime
    seed: int = 0
    parent_id: str = Field(description="The cycle, told of the track's progress (and by its stages, of what waits for the operator).")


class TrackResult(BaseModel):
    """What a track hands the ceremony (see contracts.awards.TrackAwardsInput)."""

    track: Track
    counts: dict[str, int] = Field(default_factory=dict)
    expected_results: int | None = Field(default=None, description="sakip, rb, cettar: the approved results its close counted.")
    final_stage: str | None = Field(default=None, description="KBK: its last jury stage.")
    shortlist: SetRef | None = Field(default=None, description="KBK: that stage's final shortlist.")
    stages: list[StageOutcome] = Field(default_factory=list)


class TrackDeadline(BaseModel):
    """Signal ``extend_deadline`` from the cycle to a track: ``step`` is the track's own name for it
    (an evaluation's ``deadline``; KBK's ``call``, ``verification`` or a stage key)."""

    step: str
    until: dt.datetime
    reason: str
    operator: str


class TrackCloseNow(BaseModel):
    """Signal ``close_now`` from the cycle to the KBK track: close ``step`` now."""

    step: str
    reason: str
    operator: str
