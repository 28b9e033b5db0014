"""Awards' tables: final shortlists and WBK decisions received by events, results, certificates."""

from __future__ import annotations

import datetime as dt

from sqlmodel import JSON, Column, Field

from services.common.db import UtcDateTime, make_base

Base = make_base("awards")


class ShortlistRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "awd_shortlist"
    cycle_year: int = Field(primary_key=True)
    stage: str = Field(primary_key=True, max_length=32)
    announcement_no: str
    digest: str
    rows: list = Field(sa_column=Column(JSON, nullable=False))


class WbkRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "awd_wbk"
    cycle_year: int = Field(primary_key=True)
    unit_code: str = Field(primary_key=True, max_length=64)
    unit_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    decision: str
    total: float | None = None


class ResultRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "awd_result"
    cycle_year: int = Field(primary_key=True)
    categories: list = Field(sa_column=Column(JSON, nullable=False))
    rankings: list = Field(sa_column=Column(JSON, nullable=False))
    ceremony: dict = Field(sa_column=Column(JSON, nullable=False))
    files: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict = Field(sa_column=Column(JSON, nullable=False))
    announcement_no: str | None = None


class CertificateRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "awd_certificate"
    code: str = Field(primary_key=True, max_length=40)
    cycle_year: int = Field(index=True)
    award_key: str
    award_name: str
    recipient: str
    title: str | None = None
    path: str
    unit_code: str | None = None
    proposal_id: str | None = None
    key_id: str | None = None
    signature: str | None = Field(default=None, description="Ed25519 signature (base64) of the certificate record; none before signing.")
    issued_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class CounterRow(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "awd_counter"
    cycle_year: int = Field(primary_key=True)
    announcements: int = 0
