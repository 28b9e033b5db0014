"""A juror's declared conflicts of interest (bfest.scoring.cmd.declare_conflict): remembered so
the juror is never assigned that proposal again in the cycle.

Revision ID: scoring_0003
Revises: scoring_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scoring_0003"
down_revision = "scoring_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sco_declared_conflict",
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("juror_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("proposal_id", sa.String(64), primary_key=True, nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("replacement_juror_id", sa.String(64), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sco_declared_conflict")
