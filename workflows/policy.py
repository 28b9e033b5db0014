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
