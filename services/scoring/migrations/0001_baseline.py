"""Baseline: the scoring service's schema as the last release before migrations made it
(jurors, stages, entrants, assignments, scores, objections; the runtime's outbox, inbox and kept command replies).

Frozen here (later changes are later revisions). A fresh database gets these tables; a database
made by a release before migrations gets what it lacks (see services.common.migrations).

Revision ID: scoring_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_or_adopt

revision = "scoring_0001"
down_revision = None
branch_labels = None
depends_on = None


def schema(metadata: sa.MetaData) -> None:
    sa.Table(
        "sco_assignment",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("stage", sa.String(32), primary_key=True, nullable=False),
        sa.Column("proposal_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("juror_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("extra", sa.Boolean(), nullable=False),
    )
    sa.Table(
        "sco_counter",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("name", sa.String(32), primary_key=True, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    sa.Table(
        "sco_entrants",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("eligible_ids", sa.JSON(), nullable=False),
    )
    sa.Table(
        "sco_juror",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("affiliation", sa.String(), nullable=False),
        sa.Column("expertise", sa.JSON(), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    sa.Table(
        "sco_objection",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("proposal_id", sa.String(64), nullable=False),
        sa.Column("filer", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(), nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
    )
    sa.Table(
        "sco_proposal",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Index("ix_sco_proposal_cycle_year", "cycle_year", unique=False),
    )
    sa.Table(
        "sco_score",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("cycle_year", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("juror_id", sa.String(64), nullable=False),
        sa.Column("proposal_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("weighted_total", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_sco_score_stage", "cycle_year", "stage", "proposal_id", unique=False),
    )
    sa.Table(
        "sco_stage",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("stage", sa.String(32), primary_key=True, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("proposals", sa.JSON(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fully_scored_sent", sa.Boolean(), nullable=False),
        sa.Column("unscored", sa.Integer(), nullable=True),
        sa.Column("ranking", sa.JSON(), nullable=True),
        sa.Column("shortlist", sa.JSON(), nullable=True),
        sa.Column("announcement_no", sa.String(), nullable=True),
        sa.Column("closed_summary", sa.JSON(), nullable=True),
        sa.Column("window_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_rows", sa.JSON(), nullable=True),
        sa.Column("final_summary", sa.JSON(), nullable=True),
    )
    sa.Table(
        "scoring_commands",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("command", sa.String(100), primary_key=True, nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "scoring_inbox",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True, nullable=False),
        sa.Column("event_id", sa.String(200), primary_key=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "scoring_outbox",
        metadata,
        sa.Column("seq", sa.Integer(), primary_key=True, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id"),
        sa.Index("ix_scoring_outbox_published_at", "published_at", unique=False),
    )


def upgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    create_or_adopt(op.get_bind(), metadata)


def downgrade() -> None:
    metadata = sa.MetaData()
    schema(metadata)
    metadata.drop_all(op.get_bind())
