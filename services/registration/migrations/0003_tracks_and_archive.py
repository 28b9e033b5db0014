"""Issue 26: a call and a quota per (year, competition) — KOVABLIK's innovations and KBK's
risalah — proposals that keep their competition (``track``) and the KBK group that submitted them
(``group_code``), and the innovation archive (rumah inovasi) with what registration learns on the
way to it (stages reached, awards per year, years archived).

``reg_call`` and ``reg_quota`` gain ``track`` in their primary key: both are made again and their
rows carried over as KOVABLIK's (a primary key cannot be altered in place on SQLite). Existing
proposals are KOVABLIK's.

Revision ID: registration_0003
Revises: registration_0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from services.common.db import UtcDateTime

revision = "registration_0003"
down_revision = "registration_0002"
branch_labels = None
depends_on = None

KOVABLIK = "kovablik"


def _calls(metadata: sa.MetaData, with_track: bool) -> sa.Table:
    return sa.Table(
        "reg_call",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True),
        *([sa.Column("track", sa.String(16), primary_key=True)] if with_track else []),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("opens_at", UtcDateTime(), nullable=False),
        sa.Column("closes_at", UtcDateTime(), nullable=False),
        sa.Column("quota_per_agency", sa.Integer(), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
    )


def _quotas(metadata: sa.MetaData, with_track: bool) -> sa.Table:
    return sa.Table(
        "reg_quota",
        metadata,
        sa.Column("cycle_year", sa.Integer(), primary_key=True),
        *([sa.Column("track", sa.String(16), primary_key=True)] if with_track else []),
        sa.Column("agency_code", sa.String(64), primary_key=True),
        sa.Column("used", sa.Integer(), nullable=False),
    )


def _new_tables(metadata: sa.MetaData) -> list[sa.Table]:
    return [
        sa.Table(
            "reg_archive",
            metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("year", sa.Integer(), nullable=False, index=True),
            sa.Column("track", sa.String(16), nullable=False),
            sa.Column("title", sa.String(), nullable=False),
            sa.Column("unit_code", sa.String(64), nullable=True),
            sa.Column("unit_name", sa.String(), nullable=False),
            sa.Column("agency_code", sa.String(64), nullable=True),
            sa.Column("agency_name", sa.String(), nullable=False),
            sa.Column("region", sa.String(), nullable=True),
            sa.Column("category", sa.String(64), nullable=False),
            sa.Column("group", sa.String(16), nullable=False),
            sa.Column("summary", sa.Text(), nullable=False),
            sa.Column("stage_reached", sa.String(), nullable=True),
            sa.Column("award", sa.String(), nullable=True),
            sa.Column("replicates", sa.String(64), nullable=True, index=True),
            sa.Column("imported", sa.Boolean(), nullable=False),
            sa.Column("search_text", sa.Text(), nullable=False),
        ),
        sa.Table(
            "reg_stage_seen",
            metadata,
            sa.Column("proposal_id", sa.String(64), primary_key=True),
            sa.Column("stage", sa.String(64), primary_key=True),
            sa.Column("cycle_year", sa.Integer(), nullable=False, index=True),
            sa.Column("seen_at", UtcDateTime(), nullable=False),
        ),
        sa.Table(
            "reg_awards_seen",
            metadata,
            sa.Column("cycle_year", sa.Integer(), primary_key=True),
            sa.Column("winners", sa.Integer(), nullable=False),
            sa.Column("awards", sa.JSON(), nullable=False),
        ),
        sa.Table(
            "reg_archived_year",
            metadata,
            sa.Column("cycle_year", sa.Integer(), primary_key=True),
            sa.Column("entries", sa.Integer(), nullable=False),
            sa.Column("awarded", sa.Integer(), nullable=False),
            sa.Column("archived_at", UtcDateTime(), nullable=False),
        ),
    ]


def _remake(make: Any, with_track: bool) -> None:
    """Make a table again with (or without) ``track`` in its key, its rows carried over."""
    bind = op.get_bind()
    old = make(sa.MetaData(), not with_track)
    rows = [dict(r._mapping) for r in bind.execute(sa.select(old))]
    old.drop(bind)
    new = make(sa.MetaData(), with_track)
    new.create(bind)
    if not with_track:  # going down: only KOVABLIK's rows fit the old key
        rows = [r for r in rows if r.get("track") == KOVABLIK]
    for row in rows:
        row.pop("track", None)
        if with_track:
            row["track"] = KOVABLIK
    if rows:
        bind.execute(sa.insert(new), rows)


def upgrade() -> None:
    _remake(_calls, with_track=True)
    _remake(_quotas, with_track=True)
    with op.batch_alter_table("reg_proposal") as batch_op:
        batch_op.add_column(sa.Column("track", sa.String(16), nullable=False, server_default=KOVABLIK))
        batch_op.add_column(sa.Column("group_code", sa.String(64), nullable=True))
    metadata = sa.MetaData()
    for table in _new_tables(metadata):
        table.create(op.get_bind())


def downgrade() -> None:
    metadata = sa.MetaData()
    for table in reversed(_new_tables(metadata)):
        table.drop(op.get_bind())
    op.execute(sa.text("DELETE FROM reg_proposal WHERE track <> 'kovablik'"))
    with op.batch_alter_table("reg_proposal") as batch_op:
        batch_op.drop_column("group_code")
        batch_op.drop_column("track")
    _remake(_quotas, with_track=False)
    _remake(_calls, with_track=False)
