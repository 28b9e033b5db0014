"""Baseline: the verification service's schema as the last release before migrations made it
(proposals to check, decisions, WBK evaluations, runs; the runtime's outbox, inbox and kept command replies).

Frozen here (later changes are later revisions). A fresh database gets these tables; a database
made by a release before migrations gets what it lacks (see services.common.migrations).

Revision ID: verification_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_or_adopt

revision = "verification_0001"
down_revision = None
branch_labels = None
depends_on = None


def schema(metadata: sa.MetaData) -> None:
    sa.Table(
        "ver_decision",
        metadata,
        sa.Column("proposal_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("automatic", sa.String(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("final", sa.String(), nullable=True),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Index("ix_ver_decision_cycle_year", "cycle_year", unique=False),
    )
    sa.Table(
        "ver_proposal",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Index("ix_ver_proposal_cycle_year", "cycle_year", unique=False),
    )
    sa.Table(
        "ver_run",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
    )
    sa.Table(
        "ver_wbk",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("unit_code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("unit_name", sa.String(), nullable=True),
        sa.Column("agency_code", sa.String(), nullable=True),
        sa.Column("agency_name", sa.String(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
    )
    sa.Table(
        "verification_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("command", sa.String(100), primary_key=True, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "verification_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True, nullable=False),
        sa.Column("event_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "verification_outbox",
        metadata,
        sa.Column("seq", sa.Integer(), primary_key=True, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id"),
        sa.Index("ix_verification_outbox_published_at", "published_at", unique=False),
    )


def upgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    create_or_adopt(op.get_bind(), metadata)


def downgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    metadata.drop_all(op.get_bind())
