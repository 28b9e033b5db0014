"""Baseline: the registration service's schema as the last release before migrations made it
(participants, calls, proposals, quota; the runtime's outbox, inbox and kept command replies).

Frozen here (later changes are later revisions). A fresh database gets these tables; a database
made by a release before migrations gets what it lacks (see services.common.migrations).

Revision ID: registration_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_or_adopt

revision = "registration_0001"
down_revision = None
branch_labels = None
depends_on = None


def schema(metadata: sa.MetaData) -> None:
    sa.Table(
        "reg_call",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quota_per_agency", sa.Integer(), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
    )
    sa.Table(
        "reg_participant",
        metadata,
        sa.Column("code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Index("ix_reg_participant_parent_code", "parent_code", unique=False),
    )
    sa.Table(
        "reg_proposal",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("agency_code", sa.String(64), nullable=False),
        sa.Column("title_key", sa.String(), nullable=False),
        sa.Column("group", sa.String(16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("was_forwarded", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_reason", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_reg_proposal_agency", "cycle_year", "agency_code", "status", unique=False),
        sa.Index("ix_reg_proposal_cycle_year", "cycle_year", unique=False),
        sa.Index("ix_reg_proposal_unit_code", "unit_code", unique=False),
    )
    sa.Table(
        "reg_quota",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("agency_code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
    )
    sa.Table(
        "registration_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("command", sa.String(100), primary_key=True, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "registration_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True, nullable=False),
        sa.Column("event_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "registration_outbox",
        metadata,
        sa.Column("seq", sa.Integer(), primary_key=True, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id"),
        sa.Index("ix_registration_outbox_published_at", "published_at", unique=False),
    )


def upgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    create_or_adopt(op.get_bind(), metadata)


def downgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    metadata.drop_all(op.get_bind())
