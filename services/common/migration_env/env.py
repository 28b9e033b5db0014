"""Alembic's environment, shared by every service's migration history (see
services/common/migrations.py, which opens the database and passes its connection)."""

from alembic import context

from services.common.migrations import configure_environment

configure_environment(context)  # type: ignore[arg-type]  # alembic.context proxies an EnvironmentContext
