"""The verification service's schema revisions (Alembic; see services.common.migrations)."""
