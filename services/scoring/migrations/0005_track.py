"""Scoring keeps whose competition a proposal belongs to (issue 26: KOVABLIK's innovations or KBK's
risalah): ``sco_proposal.track``, and the eligible list per (year, track) in ``sco_entrants``.
Existing copies and eligible lists are KOVABLIK's.

Revision ID: scoring_0005
Revises: scoring_0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "scoring_0005"
down_revision = "scoring_0004"
branch_labels = None
depends_on = None


def _entrants(with_track: bool) -> list[Any]:
    columns: list[Any] = [sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False, autoincrement=False)]
    if with_track:
        columns.append(sa.Column("track", sa.String(16), primary_key=True, nullable=False))
    columns.append(sa.Column("eligible_ids", sa.JSON(), nullable=False))
    return columns


def _rebuild_entrants(with_track: bool) -> None:
    """``sco_entrants`` made again with (or without) the track in its key, its rows kept (a
    downgrade keeps KOVABLIK's lists only)."""
    bind = op.get_bind()
    old = sa.table("sco_entrants", sa.column("cycle_year", sa.Integer()), sa.column("eligible_ids", sa.JSON()), *([] if with_track else [sa.column("track", sa.String())]))
    query = sa.select(old.c.cycle_year, old.c.eligible_ids)
    if not with_track:
        query = query.where(old.c.track == "kovablik")
    rows = [{"cycle_year": year, "eligible_ids": ids} for year, ids in bind.execute(query).all()]
    op.drop_table("sco_entrants")
    table = op.create_table("sco_entrants", *_entrants(with_track))
    if rows:
        op.bulk_insert(table, [{**r, "track": "kovablik"} if with_track else r for r in rows])


def upgrade() -> None:
    with op.batch_alter_table("sco_proposal") as batch_op:
        batch_op.add_column(sa.Column("track", sa.String(length=16), nullable=False, server_default="kovablik"))
    _rebuild_entrants(with_track=True)


def downgrade() -> None:
    _rebuild_entrants(with_track=False)
    with op.batch_alter_table("sco_proposal") as batch_op:
        batch_op.drop_column("track")
