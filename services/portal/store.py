"""The portal's own tables: accounts, server-side sessions (a logout ends one for good), one-time
set-password invitations, and counted attempts (the rate limits on logins and objections, shared by replicas)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlmodel import Column, Field, SQLModel

from services.common.db import UtcDateTime, make_base

if TYPE_CHECKING:  # to the type checker the tables are SQLModel tables; at run time they get the portal's own metadata
    Base = SQLModel
else:
    Base = make_base("portal")


class AccountRow(Base, table=True):
    __tablename__ = "por_account"
    login: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    subject_id: str = Field(max_length=64, description="The unit/agency code, juror or verifier id the account acts as.")
    display_name: str = ""
    password_hash: str | None = None
    active: bool = True
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    oidc_id: str | None = Field(default=None, max_length=200, unique=True, index=True, description="The identity provider's claim (e.g. email or NIP) that signs this account in (added by portal_0002, so last).")


class SessionRow(Base, table=True):
    __tablename__ = "por_session"
    id_hash: str = Field(primary_key=True, max_length=64)
    login: str = Field(index=True, max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class InviteRow(Base, table=True):
    __tablename__ = "por_invite"
    token_hash: str = Field(primary_key=True, max_length=64)
    login: str = Field(index=True, max_length=64)
    expires_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class AttemptRow(Base, table=True):
    """One counted attempt: a failed login (``login:<name>``, ``addr:<client address>``) or a
    filed objection (``objection:<client address>``)."""

    __tablename__ = "por_attempt"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=200)
    at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


class DocumentRow(Base, table=True):
    """A PDF a unit uploaded into the cycle's Object Store bucket (``uri`` names the bucket and
    the content-addressed object); only the unit that uploaded it may attach it to a proposal."""

    __tablename__ = "por_document"
    uri: str = Field(primary_key=True, max_length=300)
    unit_code: str = Field(primary_key=True, max_length=64)
    filename: str = Field(max_length=200)
    size: int
    sha256: str = Field(max_length=64)
    uploaded_at: dt.datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
