"""Scoring's tables: jurors, its copy of verified proposals, stages, assignments, every score
revision, objections."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from services.common.db import UtcDateTime, make_base

if TYPE_CHECKING:  # to the type checker the tables are SQLModel tables; at run time they get scoring's own metadata
    Base = SQLModel
else:
    Base = make_base("scoring")


class JurorRow(Base, table=True):
    __tablename__ = "sco_juror"
    id: str = Field(primary_key=True, max_length=64)
    name: str
    affiliation: str
    expertise: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    conflicts: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True


class ProposalCopy(Base, table=True):
    __tablename__ = "sco_proposal"
    id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Whose competition (kovablik, kbk), as verification's event named it; copies kept before
    # revision scoring_0005 are KOVABLIK's.
    track: str = Field(default="kovablik", sa_column=Column(sa.String(16), nullable=False, server_default="kovablik"))


class EntrantsRow(Base, table=True):
    """The frozen eligible list of a cycle's competition (from verification_closed, per track)."""

    __tablename__ = "sco_entrants"
    cycle_year: int = Field(primary_key=True)
    track: str = Field(default="kovablik", primary_key=True, max_length=16)
    eligible_ids: list[Any] = Field(sa_column=Column(JSON, nullable=False))


class StageRow(Base, table=True):
    __tablename__ = "sco_stage"
    cycle_year: int = Field(primary_key=True)
    stage: str = Field(primary_key=True, max_length=32)
    state: str = "open"  # open | closed | final (domain.StageState)
    config: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # what the stage was opened with
    proposals: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    deadline: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    fully_scored_sent: bool = False
    # Assignments without a score yet: "fully scored" is when it reaches 0 (None: a stage opened
    # before the count was kept; the next batch of scores counts it once).
    unscored: int | None = None
    ranking: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    shortlist: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    announcement_no: str | None = None
    closed_summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    window_until: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    final_rows: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    final_summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Kept in ``config`` before revision scoring_0004: its cycle was cancelled (an open stage
    # takes no scores, a closed one no objections), the proposals removed by upheld objections,
    # and the shortlist as first published.
    cancelled: bool = Field(default=False, sa_column=Column(sa.Boolean(), nullable=False, server_default="0"))
    removed: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    initial_shortlist: list[Any] | None = Field(default=None, sa_column=Column(JSON))


class AssignmentRow(Base, table=True):
    __tablename__ = "sco_assignment"
    cycle_year: int = Field(primary_key=True)
    stage: str = Field(primary_key=True, max_length=32)
    proposal_id: str = Field(primary_key=True, max_length=64)
    juror_id: str = Field(primary_key=True, max_length=64)
    extra: bool = False  # added because the scores diverged


class ScoreRow(Base, table=True):
    __tablename__ = "sco_score"
    __table_args__ = (sa.Index("ix_sco_score_stage", "cycle_year", "stage", "proposal_id"),)
    id: int | None = Field(default=None, primary_key=True)
    cycle_year: int
    stage: str = Field(max_length=32)
    juror_id: str = Field(max_length=64)
    proposal_id: str = Field(max_length=64)
    revision: int
    latest: bool = True
    values: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    weighted_total: float
    comment: str | None = None
    at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ObjectionRow(Base, table=True):
    __tablename__ = "sco_objection"
    id: str = Field(primary_key=True, max_length=64)
    cycle_year: int
    stage: str = Field(max_length=32)
    proposal_id: str = Field(max_length=64)
    filer: str
    reason: str
    filed_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    decision: str | None = None
    decision_reason: str | None = None
    decided_by: str | None = None


class CounterRow(Base, table=True):
    """Announcement numbers (Pengumuman No. …) and objection numbers, per cycle."""

    __tablename__ = "sco_counter"
    cycle_year: int = Field(primary_key=True)
    name: str = Field(primary_key=True, max_length=32)
    value: int = 0


class DeclaredConflictRow(Base, table=True):
    """A conflict of interest a juror declared with a proposal: they are never assigned it again
    in the cycle (replacement, divergence, a later stage)."""

    __tablename__ = "sco_declared_conflict"
    cycle_year: int = Field(primary_key=True)
    juror_id: str = Field(primary_key=True, max_length=64)
    proposal_id: str = Field(primary_key=True, max_length=64)
    stage: str = Field(max_length=32)
    reason: str
    replacement_juror_id: str | None = Field(default=None, max_length=64)
    declared_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
