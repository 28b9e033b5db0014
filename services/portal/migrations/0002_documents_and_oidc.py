"""Proposal documents and OpenID Connect sign-in: ``por_document`` (which unit uploaded which PDF
into the year's Object Store bucket) and ``por_account.oidc_id`` (the identity provider's claim,
e.g. email or NIP, that signs an account in), unique where set.

Revision ID: portal_0002
Revises: portal_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portal_0002"
down_revision = "portal_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "por_document",
        sa.Column("uri", sa.String(300), primary_key=True, nullable=False),
        sa.Column("unit_code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("por_account") as batch:
        batch.add_column(sa.Column("oidc_id", sa.String(200), nullable=True))
        batch.create_index("ix_por_account_oidc_id", ["oidc_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("por_account") as batch:
        batch.drop_index("ix_por_account_oidc_id")
        batch.drop_column("oidc_id")
    op.drop_table("por_document")
