"""Baseline: the awards service's schema as the last release before migrations made it
(shortlists, WBK decisions, results, certificates; the runtime's outbox, inbox and kept command replies).

Frozen here (later changes are later revisions). A fresh database gets these tables; a database
made by a release before migrations gets what it lacks (see services.common.migrations).

Revision ID: awards_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_or_adopt

revision = "awards_0001"
down_revision = None
branch_labels = None
depends_on = None


def schema(metadata: sa.MetaData) -> None:
    sa.Table(
        "awards_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("command", sa.String(100), primary_key=True, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "awards_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True, nullable=False),
        sa.Column("event_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "awards_outbox",
        metadata,
        sa.Column("seq", sa.Integer(), primary_key=True, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id"),
        sa.Index("ix_awards_outbox_published_at", "published_at", unique=False),
    )
    sa.Table(
        "awd_certificate",
        metadata,
        sa.Column("code", sa.String(40), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("award_key", sa.String(), nullable=False),
        sa.Column("award_name", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=True),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=True),
        sa.Column("proposal_id", sa.String(), nullable=True),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("signature", sa.String(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_awd_certificate_cycle_year", "cycle_year", unique=False),
    )
    sa.Table(
        "awd_counter",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("announcements", sa.Integer(), nullable=False),
    )
    sa.Table(
        "awd_result",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("rankings", sa.JSON(), nullable=False),
        sa.Column("ceremony", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("announcement_no", sa.String(), nullable=True),
    )
    sa.Table(
        "awd_shortlist",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("stage", sa.String(32), primary_key=True, nullable=False),
        sa.Column("announcement_no", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
    )
    sa.Table(
        "awd_wbk",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("unit_code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("unit_name", sa.String(), nullable=True),
        sa.Column("agency_code", sa.String(), nullable=True),
        sa.Column("agency_name", sa.String(), nullable=True),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
    )


def upgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    create_or_adopt(op.get_bind(), metadata)


def downgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    metadata.drop_all(op.get_bind())
