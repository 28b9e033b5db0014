"""A deadline that passes while a step runs (issue: late steps must not wedge or empty the year),
on Temporal's time-skipping server with scripted activities: an activity that outlasts the time
left before a moment the workflow is about to wait for, a close that succeeds only after retries,
a stage that reaches its deadline without the scores its rule needs, and awards left empty."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from contracts.base import CyclePhase
from contracts.cycle import (
    CloseStageNow,
    CycleConfig,
    CycleInput,
    CycleResult,
    ExtendDeadline,
    stage_workflow_id,
)
from tests.support import eventually, time_skipping_env
from tests.workflows.fakes import Script, config
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
HISTORIES = os.path.join(os.path.dirname(__file__), "histories")


@pytest.fixture(scope="module")
async def late_env():  # type: ignore[no-untyped-def]
    """This module's own time-skipping server: its years sleep through months (``env.sleep``),
    which a server shared with the whole suite, holding what earlier tests left running, failed to
    do in full runs."""
    env = await time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(late_env):  # type: ignore[no-untyped-def]
    script = Script()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(late_env.client, task_queue=queue, workflows=[CycleWorkflow, JuryStageWorkflow], activities=script.activities()):
        yield late_env, script, queue


async def start(env, queue, cfg: CycleConfig):  # type: ignore[no-untyped-def]
    wid = f"bfest-cycle-{cfg.year}-{uuid.uuid4().hex[:6]}"
    return await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=wid, task_queue=queue)


def reshaped(cfg: CycleConfig, call_opens: dt.datetime | None = None, desk: dt.datetime | None = None, ceremony: dt.datetime | None = None) -> CycleConfig:
    """``cfg`` with some of its moments moved."""
    raw = cfg.model_dump()
    if call_opens is not None:
        raw["call"]["opens"] = call_opens
    if desk is not None:
        raw["stages"][0]["deadline"] = desk
    if ceremony is not None:
        raw["ceremony"]["date"] = ceremony
    return CycleConfig.model_validate(raw)


async def no_failed_task(env, handle, *stages: str) -> None:  # type: ignore[no-untyped-def]
    """The year's history (and its stages') has no failed workflow task: nothing was wedged."""
    histories = [await handle.fetch_history()]
    for key in stages:
        histories.append(await env.client.get_workflow_handle(stage_workflow_id(handle_year(handle), key)).fetch_history())
    for history in histories:
        failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert not failed, failed[0].workflow_task_failed_event_attributes.failure.message


def handle_year(handle) -> int:  # type: ignore[no-untyped-def]
    return int(handle.id.split("-")[2])


def timers(history, summary: str) -> int:  # type: ignore[no-untyped-def]
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and summary in e.user_metadata.summary.data.decode()
    )


def record(name: str, history) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("BFEST_RECORD_HISTORIES"):  # refresh tests/workflows/histories/ (see test_replay.py)
        with open(os.path.join(HISTORIES, name), "w") as f:
            f.write(history.to_json())


async def test_an_activity_that_outlasts_the_wait_for_the_call_to_open(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = reshaped(config(now + DAY), call_opens=now + 2 * SECOND)
    script.slow["phase:waiting_for_call"] = 4  # publishing the phase takes longer than was left
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED
    await no_failed_task(env, handle)
    history = await handle.fetch_history()
    assert timers(history, "until the call for proposals opens") == 0  # the moment had passed: it went on
    record("cycle-late-call.json", history)


async def test_an_activity_that_outlasts_the_wait_for_the_ceremony(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    cfg = reshaped(cfg, ceremony=cfg.stages[-1].deadline + 2 * SECOND)
    script.slow["phase:waiting_for_ceremony"] = 4
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED and result.awards
    await no_failed_task(env, handle)
    assert timers(await handle.fetch_history(), "until the ceremony") == 0


async def test_a_stage_that_opens_after_its_deadline_and_reminders_closes_without_a_reminder_burst(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    cfg = reshaped(cfg, desk=cfg.verification.deadline + 2 * SECOND)
    script.pending_verification = 1  # verification waits for its deadline, then the desk stage has 2 s left
    script.slow["open_stage"] = 4
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED
    await no_failed_task(env, handle, "desk", "interview", "field")
    reminded = [cmd.stage for n, cmd in script.calls if n == "remind_jurors"]
    assert "desk" not in reminded  # both reminders fell due before it opened: none sent at once
    assert reminded.count("interview") == 2 and reminded.count("field") == 2


async def test_a_close_that_succeeds_only_after_retries_still_gives_the_whole_objection_window(harness):
    env, script, queue = harness
    script.close_fails = {"desk": 3}
    script.clock = env.get_current_time
    cfg = config(await env.get_current_time(), objection_days=5)
    handle = await start(env, queue, cfg)
    assert (await handle.result()).phase == CyclePhase.COMPLETED
    close, final = (next(cmd for n, cmd in script.calls if n == name and cmd.stage == "desk") for name in ("close_stage", "finalize_shortlist"))
    stage_history = await env.client.get_workflow_handle(stage_workflow_id(cfg.year, "desk")).fetch_history()
    completed = next(
        e.event_time.ToDatetime(dt.UTC)
        for e in stage_history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and any(
            s.event_id == e.activity_task_completed_event_attributes.scheduled_event_id
            and s.activity_task_scheduled_event_attributes.activity_type.name == "close_stage"
            for s in stage_history.events
        )
    )
    assert completed > close.at  # the close was late
    assert final.at >= completed + 5 * DAY - SECOND  # and the public still had five whole days


async def a_paused_interview(env, script, queue):  # type: ignore[no-untyped-def]
    """A year whose interview stage reaches its deadline with nothing scored: its config, its
    handle and its status once it waits for the operator."""
    script.unscored = {"interview"}
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    await env.sleep(85 * DAY)  # past the interview's deadline (day 80), before the field's (day 100)

    async def paused():  # type: ignore[no-untyped-def]
        status = await handle.query(CycleWorkflow.status)
        return status if status.attention else None

    return cfg, handle, await eventually(paused)


async def test_a_stage_without_scores_waits_for_the_operator_who_extends_it(harness):
    env, script, queue = harness
    cfg, handle, status = await a_paused_interview(env, script, queue)
    assert status.phase == CyclePhase.JURY and status.stage == "interview"
    assert "interview reached its deadline with 0 of 10 proposal(s) scored" in status.attention
    assert "bfest cycle extend" in status.attention and "close-stage" in status.attention
    stage = env.client.get_workflow_handle(stage_workflow_id(cfg.year, "interview"))
    assert (await stage.query(JuryStageWorkflow.status))["state"] == "waiting_for_operator"
    assert not any(n == "close_stage" and c.stage == "interview" for n, c in script.calls)  # nothing handed on

    script.unscored.clear()  # the jurors score in the extra days
    until = (await env.get_current_time()) + 5 * DAY
    await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="interview", until=until, reason="jurors were ill", operator="biro-org"))

    async def going_on() -> bool:  # the stage tells the cycle it goes on (a signal after the update)
        return (await handle.query(CycleWorkflow.status)).attention is None

    await eventually(going_on)
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED and result.warnings == []
    close = next(c for n, c in script.calls if n == "close_stage" and c.stage == "interview")
    assert close.at >= until - SECOND
    history = await handle.fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
    assert signals.count("stage_attention") == 2  # paused, then going on: both in the cycle's history
    from bfest.operator import _history_of

    timeline = [e.text for e in await _history_of(env.client, handle.id, "cycle")]
    assert any(t.startswith("waiting for the operator: interview reached its deadline") for t in timeline), timeline
    record("cycle-stage-paused.json", history)
    record("stage-interview-paused.json", await stage.fetch_history())


async def test_a_stage_without_scores_closed_anyway_by_the_operator_says_so(harness):
    env, script, queue = harness
    _, handle, _ = await a_paused_interview(env, script, queue)
    await handle.execute_update(CycleWorkflow.close_stage_now, CloseStageNow(stage="interview", reason="panel met on paper", operator="biro-org"))
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED
    interview = result.stages[1]
    assert not interview.closed_early
    assert interview.note is not None and "panel met on paper" in interview.note and "biro-org" in interview.note


async def test_a_stage_without_scores_and_a_cancel_ends_the_year_cancelled(harness):
    env, script, queue = harness
    _, handle, _ = await a_paused_interview(env, script, queue)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await handle.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.CANCELLED and status.attention is None
    assert script.events[-1] == "cycle_cancelled"


async def test_an_award_left_empty_is_said_in_status_and_result(harness):
    env, script, queue = harness
    script.winners = {"top": []}
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()
    assert result.phase == CyclePhase.COMPLETED
    assert result.warnings and result.warnings[0].startswith("award top (Terpuji) has no winner")
    assert "the final stage field shortlisted 3 of 5" in result.warnings[0]
    assert (await handle.query(CycleWorkflow.status)).warnings == result.warnings
    from bfest.operator import _history_of

    last = (await _history_of(env.client, handle.id, "cycle"))[-1]
    assert last.kind == "completed" and "warning: award top (Terpuji) has no winner" in last.text
