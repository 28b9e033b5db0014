"""The portal's schema revisions (Alembic; see services.common.migrations)."""
