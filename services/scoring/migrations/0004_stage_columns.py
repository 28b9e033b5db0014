"""What a stage keeps gets its own columns instead of riding in ``config``: ``cancelled`` (its
cycle was cancelled; an open stage was stored as state ``cancelled``, a closed one as
``config["cancelled"]``), ``removed`` (proposals taken off the shortlist by upheld objections)
and ``initial_shortlist`` (the shortlist as first published). Existing rows are carried over;
``config`` keeps only what the stage was opened with.

Revision ID: scoring_0004
Revises: scoring_0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "scoring_0004"
down_revision = "scoring_0003"
branch_labels = None
depends_on = None

MOVED = ("cancelled", "removed", "initial_shortlist")

stage = sa.table(
    "sco_stage",
    sa.column("cycle_year", sa.Integer()),
    sa.column("stage", sa.String()),
    sa.column("state", sa.String()),
    sa.column("config", sa.JSON()),
    sa.column("cancelled", sa.Boolean()),
    sa.column("removed", sa.JSON()),
    sa.column("initial_shortlist", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("sco_stage") as batch_op:
        batch_op.add_column(sa.Column("cancelled", sa.Boolean(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("removed", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("initial_shortlist", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for year, key, state, config in bind.execute(sa.select(stage.c.cycle_year, stage.c.stage, stage.c.state, stage.c.config)).all():
        config = dict(config or {})
        values: dict[str, Any] = {
            "state": "open" if state == "cancelled" else state,
            "cancelled": state == "cancelled" or bool(config.get("cancelled")),
            "removed": config.get("removed"),
            "initial_shortlist": config.get("initial_shortlist"),
            "config": {k: v for k, v in config.items() if k not in MOVED},
        }
        bind.execute(stage.update().where(stage.c.cycle_year == year, stage.c.stage == key).values(**values))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(stage.c.cycle_year, stage.c.stage, stage.c.state, stage.c.config, stage.c.cancelled, stage.c.removed, stage.c.initial_shortlist)).all()
    for year, key, state, config, cancelled, removed, initial in rows:
        config = dict(config or {})
        if removed is not None:
            config["removed"] = removed
        if initial is not None:
            config["initial_shortlist"] = initial
        if cancelled and state == "closed":
            config["cancelled"] = True
        values = {"state": "cancelled" if cancelled and state == "open" else state, "config": config}
        bind.execute(stage.update().where(stage.c.cycle_year == year, stage.c.stage == key).values(**values))
    with op.batch_alter_table("sco_stage") as batch_op:
        batch_op.drop_column("initial_shortlist")
        batch_op.drop_column("removed")
        batch_op.drop_column("cancelled")
