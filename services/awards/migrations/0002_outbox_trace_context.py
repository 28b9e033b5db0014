"""The outbox keeps the W3C traceparent of the span that emitted each event (issue 25), so the
relay's publish continues that trace. Nullable: rows written before it have none.

Revision ID: awards_0002
Revises: awards_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "awards_0002"
down_revision = "awards_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("awards_outbox") as batch_op:
        batch_op.add_column(sa.Column("trace_context", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("awards_outbox") as batch_op:
        batch_op.drop_column("trace_context")
