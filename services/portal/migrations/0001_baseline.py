"""Baseline: the portal's schema as the last release before migrations made it (accounts,
sessions, one-time invitations, counted attempts, and the runtime's outbox, inbox and kept
replies every service database gets), when the portal created its tables at start.

Frozen here (later changes are later revisions). A fresh database gets these tables; a database
made by that release gets what it lacks (see services.common.migrations).

Revision ID: portal_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_or_adopt

revision = "portal_0001"
down_revision = None
branch_labels = None
depends_on = None


def schema(metadata: sa.MetaData) -> None:
    sa.Table(
        "por_account",
        metadata,
        sa.Column("login", sa.String(64), primary_key=True, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "por_attempt",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_por_attempt_key", "key", unique=False),
        sa.Index("ix_por_attempt_at", "at", unique=False),
    )
    sa.Table(
        "por_invite",
        metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_por_invite_login", "login", unique=False),
    )
    sa.Table(
        "por_session",
        metadata,
        sa.Column("id_hash", sa.String(64), primary_key=True, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_por_session_login", "login", unique=False),
    )


    # The runtime's tables, which every service's database gets (the portal never used them).
    sa.Table(
        "portal_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("command", sa.String(100), primary_key=True, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "portal_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True, nullable=False),
        sa.Column("event_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "portal_outbox",
        metadata,
        sa.Column("seq", sa.Integer(), primary_key=True, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trace_context", sa.String(128), nullable=True),
        sa.UniqueConstraint("event_id"),
        sa.Index("ix_portal_outbox_published_at", "published_at", unique=False),
    )


def upgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    create_or_adopt(op.get_bind(), metadata)


def downgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    metadata.drop_all(op.get_bind())
