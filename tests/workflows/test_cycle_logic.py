"""CycleWorkflow and JuryStageWorkflow logic on Temporal's time-skipping server, with scripted
activities: the order of a year, durable timers moved by extensions, early closes, rejected
updates that leave no trace, cancellation, history size."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Worker

from contracts.awards import AwardRule
from contracts.base import CyclePhase
from contracts.cycle import CloseStageNow, CycleInput, CycleResult, ExtendDeadline, stage_workflow_id
from tests.support import eventually
from tests.workflows.fakes import Script, config
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow

DAY = dt.timedelta(days=1)
HISTORIES = Path(__file__).parent / "histories"


def close_enough(fired: dt.datetime, due: dt.datetime) -> bool:
    """A durable timer fires at its due time (to the server's timer resolution)."""
    return dt.timedelta(0) <= fired - due < dt.timedelta(seconds=1)


@pytest.fixture
async def harness(temporal_env):  # type: ignore[no-untyped-def]
    script = Script()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[CycleWorkflow, JuryStageWorkflow],
        activities=script.activities(),
    ):
        yield temporal_env, script, queue


async def start(env, queue, cfg):  # type: ignore[no-untyped-def]
    wid = f"bfest-cycle-{cfg.year}-{uuid.uuid4().hex[:6]}"
    return await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=wid, task_queue=queue)


async def phase_is(handle, phase: CyclePhase, stage: str | None = None) -> bool:  # type: ignore[no-untyped-def]
    status = await handle.query(CycleWorkflow.status)
    return status.phase == phase and (stage is None or status.stage == stage)


async def test_a_year_runs_in_order_with_reminders_and_a_small_history(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now + DAY)
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()

    assert result.phase == CyclePhase.COMPLETED
    assert result.awards == {"top": ["field0", "field1", "field2"]}
    assert [s.stage for s in result.stages] == ["desk", "interview", "field"]
    assert result.counts["forwarded"] == 20 and result.counts["eligible"] == 18
    names = script.names()
    assert names[:5] == ["validate_awards", "open_call", "close_call", "start_verification", "close_verification"]
    assert names[-4:] == ["determine_awards", "announce_awards", "archive_year", "award_winners"]
    # Nobody scores in this script, so each stage sends both reminders (3 days and 1 day before).
    assert names.count("remind_jurors") == 6
    # Each stage's entrants are the previous stage's final shortlist.
    opens = [cmd for n, cmd in script.calls if n == "open_stage"]
    assert [o.entrants.source for o in opens] == ["verification", "stage", "stage"]
    assert [o.entrants.expected.count for o in opens] == [18, 10, 5]
    # The call closes exactly at its deadline (the workflow's clock), the ceremony at its date.
    close = next(cmd for n, cmd in script.calls if n == "close_call")
    assert close_enough(close.at, cfg.call.closes)
    determine = next(cmd for n, cmd in script.calls if n == "determine_awards")
    assert close_enough(determine.at, cfg.ceremony.date) and determine.expected_shortlist.count == 3
    # Deterministic request ids: a retried activity is the same command.
    assert close.request_id == f"{handle.id}:{handle.result_run_id}:close_call"
    assert "cycle_started" in script.events and script.events[-1] == "cycle_completed"

    history = await handle.fetch_history()
    assert len(history.events) < 200
    if os.environ.get("BFEST_RECORD_HISTORIES"):  # refresh tests/workflows/histories/ (see test_replay.py)
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / "cycle.json").write_text(history.to_json())
        for key in ("desk", "interview", "field"):
            child = await env.client.get_workflow_handle(stage_workflow_id(cfg.year, key)).fetch_history()
            (HISTORIES / f"stage-{key}.json").write_text(child.to_json())


async def test_extending_the_call_moves_its_timer(harness):
    env, script, queue = harness
    wib = dt.timezone(dt.timedelta(hours=7))
    cfg = config((await env.get_current_time()).astimezone(wib))
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    until = cfg.call.closes + 5 * DAY
    await handle.execute_update(
        CycleWorkflow.extend_deadline, ExtendDeadline(stage="call", until=until, reason="evaluators asked", operator="biro-org")
    )
    status = await handle.query(CycleWorkflow.status)
    assert status.deadline == until
    assert status.operator_actions[0]["reason"] == "evaluators asked"
    assert dt.datetime.fromisoformat(status.operator_actions[0]["at"]).utcoffset() == dt.timedelta(hours=7)
    await handle.result()
    close = next(cmd for n, cmd in script.calls if n == "close_call")
    assert close_enough(close.at, until)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda cfg, now: ExtendDeadline(stage="call", until=now - DAY), "in the past"),
        (lambda cfg, now: ExtendDeadline(stage="call", until=cfg.ceremony.date + DAY), "before the ceremony"),
        (lambda cfg, now: ExtendDeadline(stage="plenary", until=now + DAY), "unknown stage"),
        (lambda cfg, now: ExtendDeadline(stage="call", until=cfg.verification.deadline), "extend verification first"),
        (lambda cfg, now: ExtendDeadline(stage="desk", until=cfg.stages[1].deadline + DAY), "extend interview first"),
    ],
)
async def test_a_rejected_update_leaves_no_trace_in_history(harness, change, message):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CycleWorkflow.extend_deadline, change(cfg, now))
    assert message in str(err.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(CycleWorkflow.close_stage_now, CloseStageNow(stage="desk"))
    history = await handle.fetch_history()
    kinds = {e.event_type for e in history.events}
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED not in kinds
    status = await handle.query(CycleWorkflow.status)
    assert status.operator_actions == [] and status.deadline == cfg.call.closes
    await handle.terminate("test done")


async def test_closing_a_running_stage_early(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    handle = await start(env, queue, cfg)
    await env.sleep(45 * DAY)  # past the call and verification: the desk stage is running
    await eventually(lambda: phase_is(handle, CyclePhase.JURY, "desk"))
    await handle.execute_update(CycleWorkflow.close_stage_now, CloseStageNow(stage="desk", reason="all jurors done on paper"))
    await handle.result()
    desk_close = next(cmd for n, cmd in script.calls if n == "close_stage" and cmd.stage == "desk")
    assert desk_close.at < cfg.stages[0].deadline
    status = await handle.query(CycleWorkflow.status)
    assert status.stages[0].outcome is not None and status.stages[0].outcome.closed_early


async def test_fully_scored_signal_closes_the_stage_before_its_deadline(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    handle = await start(env, queue, cfg)
    await env.sleep(45 * DAY)
    await eventually(lambda: phase_is(handle, CyclePhase.JURY, "desk"))
    child = env.client.get_workflow_handle(stage_workflow_id(cfg.year, "desk"))
    await child.signal(JuryStageWorkflow.on_fully_scored)
    await handle.result()
    desk_close = next(cmd for n, cmd in script.calls if n == "close_stage" and cmd.stage == "desk")
    assert desk_close.at < cfg.stages[0].deadline


async def test_verification_waits_for_the_completed_signal(harness):
    env, script, queue = harness
    script.pending_verification = 5
    now = await env.get_current_time()
    cfg = config(now)
    handle = await start(env, queue, cfg)
    await env.sleep(31 * DAY)
    await eventually(lambda: phase_is(handle, CyclePhase.VERIFICATION))
    await handle.signal(CycleWorkflow.on_verification_completed)
    await handle.result()
    closed = next(cmd for n, cmd in script.calls if n == "close_verification")
    assert closed.at < cfg.verification.deadline


async def test_status_names_the_moment_waited_for_before_the_call_opens(harness):
    env, _, queue = harness
    cfg = config(await env.get_current_time() + DAY)
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.WAITING_FOR_CALL))
    status = await handle.query(CycleWorkflow.status)
    assert status.deadline is not None and close_enough(status.deadline, cfg.call.opens)
    await handle.terminate("test done")  # a cancel would leave a task no worker takes, stalling the skipped clock


async def test_cancellation_publishes_cycle_cancelled(harness):
    env, script, queue = harness
    now = await env.get_current_time()
    cfg = config(now)
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert script.events[-1] == "cycle_cancelled"
    assert "close_call" not in script.names()


async def test_a_cancel_while_a_stage_runs_publishes_cycle_cancelled(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    await env.sleep(dt.timedelta(days=45))  # into the desk stage (deadline on day 60)
    await eventually(lambda: phase_is(handle, CyclePhase.JURY, "desk"))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert script.events[-1] == "cycle_cancelled"
    status = await handle.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.CANCELLED and status.cancelled
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_a_cancel_while_a_command_is_retried_publishes_cycle_cancelled(harness):
    env, script, queue = harness
    script.verification_behind = True  # start_verification is retried: the cancel comes meanwhile
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    await env.sleep(dt.timedelta(days=31))
    await eventually(lambda: phase_is(handle, CyclePhase.VERIFICATION))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert script.events[-1] == "cycle_cancelled"
    assert (await handle.query(CycleWorkflow.status)).phase == CyclePhase.CANCELLED
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


async def test_a_stage_cancelled_on_its_own_fails_the_cycle_saying_so(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    await env.sleep(dt.timedelta(days=45))
    await eventually(lambda: phase_is(handle, CyclePhase.JURY, "desk"))
    await env.client.get_workflow_handle(stage_workflow_id(cfg.year, "desk")).cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await handle.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.FAILED and "stage desk was cancelled on its own" in (status.error or "")
    assert "cycle_cancelled" not in script.events


async def test_history_length_does_not_grow_with_the_number_of_proposals(temporal_env):
    """Activities return summaries: 20 and 20,000 proposals make histories of the same length."""
    lengths = {}
    for forwarded in (20, 20_000):
        script = Script(forwarded=forwarded)
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with Worker(temporal_env.client, task_queue=queue, workflows=[CycleWorkflow, JuryStageWorkflow], activities=script.activities()):
            now = await temporal_env.get_current_time()
            handle = await start(temporal_env, queue, config(now + DAY))
            result = await handle.result()
            assert result.counts["forwarded"] == forwarded
            history = await handle.fetch_history()
            size = sum(len(e.SerializeToString()) for e in history.events)
            lengths[forwarded] = (len(history.events), size)
    assert abs(lengths[20][0] - lengths[20_000][0]) <= 2
    assert lengths[20_000][1] < lengths[20][1] * 1.1


@pytest.mark.parametrize(
    ("workflow", "args", "named"),
    [
        ("CycleWorkflow", [{"config": {"year": 2040, "call": {"opens": "2040-05-01T00:00:00+07:00", "closes": "2040-04-01T00:00:00+07:00"}}}], "config.verification: Field required"),
        ("CycleWorkflow", [[1, 2]], "(input): Input should be an object"),
        ("CycleWorkflow", [], "no cycle input"),
        ("JuryStageWorkflow", [{"year": 2040}], "stage: Field required"),
        ("JuryStageWorkflow", [], "no stage input"),
    ],
)
async def test_a_workflow_started_by_hand_with_an_unreadable_input_fails_at_once_naming_its_problems(harness, workflow, args, named):
    env, script, queue = harness
    handle = await env.client.start_workflow(workflow, args=args, id=f"bfest-by-hand-{uuid.uuid4().hex[:6]}", task_queue=queue)
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    cause = err.value.cause
    expected = "InvalidCycleInput" if workflow == "CycleWorkflow" else "InvalidStageInput"
    assert getattr(cause, "type", None) == expected and cause.non_retryable  # type: ignore[attr-defined]
    assert named in str(cause) and script.calls == []


async def test_a_failed_year_says_why_and_starts_again_with_its_own_request_ids(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time())
    # Started by hand (the CLI checks award rules first): the awards service refuses them.
    lottery = AwardRule(key="top", rule="lottery", name_id="Undian", name_en="Lottery")
    refused = cfg.model_copy(update={"awards": [lottery]})
    script.refuse_awards = "rules[0].rule: unknown rule 'lottery'"
    wid = f"bfest-cycle-{cfg.year}-{uuid.uuid4().hex[:6]}"
    first = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=refused), id=wid, task_queue=queue)
    with pytest.raises(WorkflowFailureError):
        await first.result()
    status = await first.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.FAILED
    assert status.error == "validate_awards failed: rules[0].rule: unknown rule 'lottery'"
    if os.environ.get("BFEST_RECORD_HISTORIES"):  # a failed year must replay too (test_replay.py)
        (HISTORIES / "cycle-failed.json").write_text((await first.fetch_history()).to_json())

    again = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=wid, task_queue=queue)
    assert (await again.result()).phase == CyclePhase.COMPLETED
    ids = [cmd.request_id for name, cmd in script.calls if name == "validate_awards"]
    assert len(ids) == 2 and ids[0] != ids[1], ids  # the corrected start is not a replay of the refused one
    assert (await again.query(CycleWorkflow.status)).error is None


async def test_a_stage_a_service_refuses_fails_the_cycle_saying_why(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time())
    script.refuse_stage = "interview"
    handle = await start(env, queue, cfg)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await handle.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.FAILED
    assert status.error == "stage interview failed: 3 proposal(s) cannot get 3 jurors without a conflict: P1, P2, P3"
    assert [s.state for s in status.stages] == ["done", "failed", "pending"] and status.deadline is None


async def test_a_stage_started_by_hand_with_weights_off_fails_at_once_naming_them(harness):
    from contracts.base import SetRef
    from workflows.models import StageInput

    env, script, queue = harness
    cfg = config(await env.get_current_time())
    good = StageInput(year=cfg.year, stage=cfg.stages[0], source="verification", entrants=SetRef(count=0, digest="0" * 64), ceremony_date=cfg.ceremony.date, parent_id="by-hand")
    raw = good.model_dump(mode="json")
    raw["stage"]["criteria"][0]["weight"] = 0.9
    handle = await env.client.start_workflow("JuryStageWorkflow", raw, id=f"bfest-by-hand-{uuid.uuid4().hex[:6]}", task_queue=queue)
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    cause = err.value.cause
    assert getattr(cause, "type", None) == "InvalidStageInput" and cause.non_retryable  # type: ignore[attr-defined]
    assert "stage.criteria: weights sum to 0.9, must sum to 1" in str(cause) and script.calls == []


async def test_the_last_stage_may_not_be_extended_into_the_ceremony_with_its_objection_window(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time())
    last = cfg.stages[-1].model_copy(update={"objection_days": 3})
    cfg = cfg.model_copy(update={"stages": [*cfg.stages[:-1], last]})
    handle = await start(env, queue, cfg)
    await eventually(lambda: phase_is(handle, CyclePhase.CALL_OPEN))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="field", until=cfg.ceremony.date - DAY))
    assert "field must end with its objection window before the ceremony" in str(err.value.cause)
    ok = await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="field", until=cfg.ceremony.date - 4 * DAY))
    assert ok.startswith("field deadline is now")
    await handle.terminate("test done")


async def test_a_stage_without_entrants_closes_at_once(harness):
    env, script, queue = harness
    script.forwarded = 2  # both disqualified: the desk stage opens with no one
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()
    desk_open, desk_close = (next(cmd for n, cmd in script.calls if n == name and cmd.stage == "desk") for name in ("open_stage", "close_stage"))
    assert desk_open.entrants.expected.count == 0
    assert close_enough(desk_close.at, desk_open.at)  # not at its deadline, 20 days later
    assert result.stages[0].closed_early and result.stages[0].entrants == 0


async def test_a_year_started_again_after_its_call_closed_does_not_wait_for_it_again(harness):
    env, script, queue = harness
    script.call_state = "closed"  # registration answers the closed call as it is
    cfg = config(await env.get_current_time())
    handle = await start(env, queue, cfg)
    assert (await handle.result()).phase == CyclePhase.COMPLETED
    opened, closed = (next(cmd for n, cmd in script.calls if n == name) for name in ("open_call", "close_call"))
    assert close_enough(closed.at, opened.opens_at) and closed.at < cfg.call.closes


async def test_a_stage_closed_by_an_earlier_run_does_not_wait_a_fresh_objection_window(harness):
    env, script, queue = harness
    script.window_passed = True  # scoring answers the desk stage as an earlier run closed it
    cfg = config(await env.get_current_time(), objection_days=5)
    handle = await start(env, queue, cfg)
    assert (await handle.result()).phase == CyclePhase.COMPLETED
    close, final = (next(cmd for n, cmd in script.calls if n == name and cmd.stage == "desk") for name in ("close_stage", "finalize_shortlist"))
    assert close_enough(final.at, close.at)  # not five days later


async def test_the_objection_window_is_waited_for_when_the_stage_closes_now(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time(), objection_days=5)
    handle = await start(env, queue, cfg)
    assert (await handle.result()).phase == CyclePhase.COMPLETED
    close, final = (next(cmd for n, cmd in script.calls if n == name and cmd.stage == "desk") for name in ("close_stage", "finalize_shortlist"))
    assert close_enough(final.at, close.at + 5 * DAY)
