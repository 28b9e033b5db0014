"""Verification's tables: its own copy of the forwarded proposals (from registration's events),
the run per cycle, decisions with their overrides, WBK results."""

from __future__ import annotations

import datetime as dt

from sqlmodel import JSON, Column, Field

from services.common.db import UtcDateTime, make_base

Base = make_base("verification")


class ProposalCopy(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "ver_proposal"
    id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    forwarded: bool = True
    snapshot: dict = Field(sa_column=Column(JSON, nullable=False))


class RunRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "ver_run"
    cycle_year: int = Field(primary_key=True)
    state: str = "open"  # open | completed | closed | cancelled (its cycle was; open again when the year starts again)
    deadline: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    call_closed_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    rules: dict = Field(sa_column=Column(JSON, nullable=False))
    summary: dict | None = Field(default=None, sa_column=Column(JSON))


class DecisionRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "ver_decision"
    proposal_id: str = Field(primary_key=True, max_length=64)
    cycle_year: int = Field(index=True)
    automatic: str
    reasons: list = Field(sa_column=Column(JSON, nullable=False))
    final: str | None = None  # None while a human review is pending
    overrides: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class WbkRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "ver_wbk"
    cycle_year: int = Field(primary_key=True)
    unit_code: str = Field(primary_key=True, max_length=64)
    unit_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    result: dict = Field(sa_column=Column(JSON, nullable=False))
    overrides: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
