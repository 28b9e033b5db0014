"""Timeouts and retry policies shared by the workflows."""

from datetime import timedelta

from temporalio.common import RetryPolicy

COMMAND_TIMEOUT = timedelta(seconds=60)
"""One NATS command, end to end (a service answers in milliseconds; this covers a slow database)."""

COMMAND_RESEND_AFTER = 5.0
"""Seconds without an answer after which an activity sends its command again (same request id),
keeping the first request waiting: a service killed while it held the command answers the copy
seconds after it is back (see ``CommandClient``)."""

COMMAND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    # Unlimited attempts: a service that is down, or a read model that is behind, comes back.
    # Refusals that retrying cannot fix are raised non-retryable by the activity.
)


def request_prefix() -> str:
    """The prefix of a workflow's command request ids and event ids: its id and its run. An
    activity's retries keep it, so a command is not done twice; another run (the year started again
    after a failure or a cancel, a reset in the Temporal UI) gets its own, so its commands, whose
    times differ, are not taken for retries of the old ones, and its events are its own. The
    services answer a step already done as it ended, and take an event again by its state."""
    from temporalio import workflow

    info = workflow.info()
    return f"{info.workflow_id}:{info.run_id}"
