"""The tracks (issue 26): the administrative check runs per (year, track) — KOVABLIK's proposals
and the work-culture groups' (KBK) risalah each have their run, decisions and copy — and the
evaluations of SAKIP, RB and CETTAR get their tables (a track's round per year, one sheet per
subject). Existing rows are KOVABLIK's (``track`` defaults to ``kovablik``).

Revision ID: verification_0003
Revises: verification_0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "verification_0003"
down_revision = "verification_0002"
branch_labels = None
depends_on = None


def _track(primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("track", sa.String(16), nullable=False, server_default="kovablik", primary_key=primary_key)


RUN_COLUMNS = ("cycle_year", "state", "deadline", "call_closed_at", "rules", "summary")


def _run_table(key: list[str]) -> sa.Table:
    """``ver_run`` as the code makes it, with the primary key ``key``."""
    columns: list[sa.Column[Any]] = [
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
    ]
    if "track" in key:
        columns.append(_track(primary_key=True))
    return sa.Table("ver_run", sa.MetaData(), *columns)


def _run_keyed_by(key: list[str]) -> None:
    """Give ``ver_run`` the primary key ``key`` (adding ``track`` to it, or taking it away).
    PostgreSQL alters the table; SQLite cannot change a primary key, so the table is made again
    as the code makes it and its rows are copied over."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if "track" in key:
            op.add_column("ver_run", _track())
            # A lone integer key was made SERIAL; a year within a composite key counts nothing.
            op.alter_column("ver_run", "cycle_year", server_default=None)
            op.execute(sa.text("DROP SEQUENCE IF EXISTS ver_run_cycle_year_seq"))
        op.drop_constraint("ver_run_pkey", "ver_run", type_="primary")
        op.create_primary_key("ver_run_pkey", "ver_run", key)
        if "track" not in key:
            op.drop_column("ver_run", "track")
        return
    op.rename_table("ver_run", "_ver_run_old")
    _run_table(key).create(bind)
    names = ", ".join(RUN_COLUMNS)
    op.execute(sa.text(f"INSERT INTO ver_run ({names}) SELECT {names} FROM _ver_run_old"))
    op.drop_table("_ver_run_old")


def upgrade() -> None:
    with op.batch_alter_table("ver_proposal") as batch_op:
        batch_op.add_column(_track())
    with op.batch_alter_table("ver_decision") as batch_op:
        batch_op.add_column(_track())
    _run_keyed_by(["cycle_year", "track"])
    op.create_table(
        "ver_eval_round",
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("kind", sa.String(16), primary_key=True, nullable=False),
        sa.Column("rubric", sa.String(64), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluators", sa.JSON(), nullable=True),
        sa.Column("reviewers", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
    )
    op.create_table(
        "ver_evaluation",
        sa.Column("cycle_year", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("kind", sa.String(16), primary_key=True, nullable=False),
        sa.Column("subject_code", sa.String(64), primary_key=True, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("view", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ver_evaluation")
    op.drop_table("ver_eval_round")
    op.execute(sa.text("DELETE FROM ver_run WHERE track <> 'kovablik'"))
    _run_keyed_by(["cycle_year"])
    for table in ("ver_decision", "ver_proposal"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("track")
