"""One ceremony across tracks (issue 26): the closed evaluations received from verification
(``awd_evaluation``), a certificate's track, kind, grade and total, and a ceremony's evaluation
results and other competitions' rankings. Existing certificates are KOVABLIK awards; existing
ceremonies have neither.

Revision ID: awards_0003
Revises: awards_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "awards_0003"
down_revision = "awards_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "awd_evaluation",
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False, autoincrement=False),
        sa.Column("track", sa.String(16), primary_key=True, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
    )
    with op.batch_alter_table("awd_certificate") as batch_op:
        batch_op.add_column(sa.Column("track", sa.String(length=16), nullable=False, server_default="kovablik"))
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="award"))
        batch_op.add_column(sa.Column("grade", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("score", sa.String(), nullable=True))
    with op.batch_alter_table("awd_result") as batch_op:
        batch_op.add_column(sa.Column("evaluations", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("track_rankings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("awd_result") as batch_op:
        batch_op.drop_column("track_rankings")
        batch_op.drop_column("evaluations")
    with op.batch_alter_table("awd_certificate") as batch_op:
        batch_op.drop_column("score")
        batch_op.drop_column("grade")
        batch_op.drop_column("kind")
        batch_op.drop_column("track")
    op.drop_table("awd_evaluation")
