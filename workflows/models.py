"""Workflow-internal inputs and outputs (what crosses the workflow/activity boundary besides the
contracts' commands)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from contracts.base import SetRef
from contracts.cycle import StageConfig, StageOutcome


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
    parent_id: str


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
