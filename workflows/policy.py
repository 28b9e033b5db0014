"""Timeouts and retry policies shared by the workflows."""

from datetime import timedelta

from temporalio.common import RetryPolicy

COMMAND_TIMEOUT = timedelta(seconds=60)
"""One NATS command, end to end (a service answers in milliseconds; this covers a slow database)."""

COMMAND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    # Unlimited attempts: a service that is down, or a read model that is behind, comes back.
    # Refusals that retrying cannot fix are raised non-retryable by the activity.
)


def request_prefix() -> str:
    """The prefix of a workflow's command request ids: its id and its first run. A retry or a
    reset of the same execution keeps it, so its commands stay idempotent; a fresh start of the
    same year (after a failure or a cancel, with a corrected config) gets its own, so its
    commands are not taken for retries of the old ones with another payload."""
    from temporalio import workflow

    info = workflow.info()
    return f"{info.workflow_id}:{info.first_execution_run_id[:8]}"
