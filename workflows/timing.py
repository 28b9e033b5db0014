"""Waiting in workflow code: every wait is measured from ``workflow.now()`` at the moment its timer
is created, and a moment already passed means "go on now".

A wait computed before an activity and started after it (``moment - now`` taken, then an activity
that outlasts what was left) would ask for a negative timer, which fails the workflow task on every
replay: a worker that was down, or an activity that retried, across the moment would wedge the
year. These helpers are the only way the workflows wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


async def sleep_until(moment: datetime, summary: str) -> None:
    """A durable timer until ``moment``; nothing at all if it has already passed."""
    remaining = moment - workflow.now()
    if remaining > timedelta(0):
        await workflow.sleep(remaining, summary=summary)


async def wait_for(condition: Callable[[], bool], until: datetime, summary: str) -> bool:
    """Wait until ``condition()`` holds or ``until`` passes; True if the condition holds."""
    if condition():
        return True
    remaining = until - workflow.now()
    if remaining <= timedelta(0):
        return False
    try:
        await workflow.wait_condition(condition, timeout=remaining, timeout_summary=summary)
    except TimeoutError:
        return condition()
    return True


async def wait_for_deadline(deadline: Callable[[], datetime], done: Callable[[], bool], summary: str) -> bool:
    """Wait until ``done()`` or the deadline, which an operator's update may move while it runs
    (the wait starts again for the new one). True if ``done()`` ended it."""
    while not done():
        current = deadline()
        if not await wait_for(lambda: done() or deadline() != current, current, summary):
            return False
    return True
