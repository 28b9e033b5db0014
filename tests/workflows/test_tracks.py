"""The tracks' child workflows (SAKIP, RB, CETTAR, KBK) and the cycle that waits for them, on
Temporal's time-skipping server with scripted activities: every track runs and meets at the one
ceremony, the operators steer a track through the cycle, a track's refusal fails the year saying
why, a cancel of the year cancels its tracks. The bridge wakes the KBK track, not the cycle."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Worker

from contracts.base import Competition, CyclePhase, Track
from contracts.cycle import (
    CloseStageNow,
    CycleInput,
    CycleResult,
    ExtendDeadline,
    stage_workflow_id,
    track_workflow_id,
)
from contracts.verification import VerificationCompleted, VerificationCounts
from tests.support import eventually, skip_time, time_skipping_env
from tests.workflows.fakes import Script, config, tracks_config
from workflows.bridge import signal_for
from workflows.cycle import CycleWorkflow
from workflows.tracks import KbkTrackWorkflow
from workflows.worker import WORKFLOWS

DAY = dt.timedelta(days=1)
HISTORIES = Path(__file__).parent / "histories"


def close_enough(fired: dt.datetime, due: dt.datetime) -> bool:
    return dt.timedelta(0) <= fired - due < dt.timedelta(seconds=1)


@pytest.fixture
async def tracks_env():  # type: ignore[no-untyped-def]
    """Each test's own time-skipping server: its years sleep through months (``env.sleep``), which
    a server shared with earlier tests (the suite's, then this module's), holding what they left
    running, failed to do in full runs (RPC timeout), though the module passed alone."""
    env = await time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture
async def harness(tracks_env):  # type: ignore[no-untyped-def]
    script = Script()
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(tracks_env.client, task_queue=queue, workflows=WORKFLOWS, activities=script.activities()):
        yield tracks_env, script, queue


_YEARS = itertools.count(2091)


def a_year() -> int:
    """The tracks' and stages' workflow ids are by year: each test its own (within the years the
    config allows, clear of the other tests')."""
    return next(_YEARS)


async def start(env: Any, queue: str, cfg: Any) -> Any:
    return await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{cfg.year}", task_queue=queue)


def calls(script: Script, name: str) -> list[Any]:
    return [cmd for n, cmd in script.calls if n == name]


async def test_a_year_with_every_track_meets_at_one_ceremony(harness):
    env, script, queue = harness
    cfg = tracks_config(await env.get_current_time() + DAY, a_year())
    handle = await start(env, queue, cfg)
    result: CycleResult = await handle.result()

    assert result.phase == CyclePhase.COMPLETED
    # Each evaluation track opened its window and closed it at its deadline, with its rubric.
    opened = {c.kind.value: c for c in calls(script, "open_evaluation")}
    closed = {c.kind.value: c for c in calls(script, "close_evaluation")}
    assert set(opened) == set(closed) == {"sakip", "rb", "cettar"}
    for name, ev in cfg.tracks.evaluations().items():
        assert close_enough(opened[name].at, ev.opens) and opened[name].rubric == ev.rubric
        assert close_enough(closed[name].at, ev.deadline)
    # KBK ran its own call, check and stages, its entrants from its own check.
    assert [c.track for c in calls(script, "open_call")] == [Competition.KOVABLIK, Competition.KBK] or [
        c.track for c in calls(script, "open_call")
    ] == [Competition.KBK, Competition.KOVABLIK]
    kbk_verification = [c for c in calls(script, "start_verification") if c.track == Competition.KBK]
    assert len(kbk_verification) == 1 and kbk_verification[0].rules == cfg.tracks.kbk.verification.rules  # type: ignore[union-attr]
    kbk_stages = [c for c in calls(script, "open_stage") if c.stage.startswith("kbk_")]
    assert [(c.stage, c.entrants.source, c.entrants.track) for c in kbk_stages] == [
        ("kbk_desk", "verification", Competition.KBK),
        ("kbk_final", "stage", Competition.KBK),
    ]
    assert all(c.entrants.track == Competition.KOVABLIK for c in calls(script, "open_stage") if not c.stage.startswith("kbk_"))
    # One ceremony: every track's awards in the one determine_awards, after every track ended.
    [determine] = calls(script, "determine_awards")
    assert close_enough(determine.at, cfg.ceremony.date)
    assert set(determine.tracks) == {Track.SAKIP, Track.RB, Track.CETTAR, Track.KBK}
    assert determine.tracks[Track.KBK].final_stage == "kbk_final" and determine.tracks[Track.KBK].expected_shortlist.count == 3
    assert {t.value: determine.tracks[t].expected_results for t in (Track.SAKIP, Track.RB, Track.CETTAR)} == script.approved
    assert determine.final_stage == "field" and determine.expected_shortlist.count == 3
    names = script.names()
    assert names.index("determine_awards") > max(i for i, n in enumerate(names) if n in ("close_evaluation", "finalize_shortlist"))
    # Then the year joins the archive, with the winners the ceremony named.
    assert names[-4:] == ["determine_awards", "announce_awards", "archive_year", "award_winners"]
    assert calls(script, "archive_year")[0].expected_winners == 3
    # The scripted ceremony names no track winner: each gap is said, without KOVABLIK's stages as reason.
    gaps = {w.split()[1]: w for w in result.warnings}
    assert set(gaps) == {"kbk_best", "sakip_aa", "rb_best", "cettar"}
    assert all("shortlisted" not in w for w in gaps.values()), gaps

    status = await handle.query(CycleWorkflow.status)
    assert {t.track: t.state for t in status.tracks} == {"sakip": "done", "rb": "done", "cettar": "done", "kbk": "done"}
    assert {t.track: t.workflow_id for t in status.tracks}["kbk"] == track_workflow_id(cfg.year, "kbk")
    kbk = next(t for t in status.tracks if t.track == "kbk")
    assert kbk.counts["kbk_final_shortlisted"] == 3 and result.counts["sakip_approved"] == 38
    assert result.counts["kbk_final_shortlisted"] == 3 and result.counts["kbk_forwarded"] == 20
    child = env.client.get_workflow_handle(track_workflow_id(cfg.year, "kbk"))
    assert (await child.describe()).status == WorkflowExecutionStatus.COMPLETED
    history = await handle.fetch_history()
    assert len(history.events) < 300
    if os.environ.get("BFEST_RECORD_HISTORIES"):  # refresh tests/workflows/histories/ (see test_replay.py)
        (HISTORIES / "cycle-tracks.json").write_text(history.to_json())
        for name, wid in (("track-sakip", track_workflow_id(cfg.year, "sakip")), ("track-kbk", track_workflow_id(cfg.year, "kbk")), ("stage-kbk_desk", stage_workflow_id(cfg.year, "kbk_desk"))):
            (HISTORIES / f"{name}.json").write_text((await env.client.get_workflow_handle(wid).fetch_history()).to_json())


async def test_a_year_without_tracks_archives_itself_after_the_ceremony_and_starts_no_track(harness):
    env, script, queue = harness
    cfg = config(await env.get_current_time(), a_year())
    handle = await start(env, queue, cfg)
    await handle.result()
    assert calls(script, "open_evaluation") == [] and [c.track for c in calls(script, "open_call")] == [Competition.KOVABLIK]
    assert calls(script, "determine_awards")[0].tracks == {}
    assert script.names()[-3:] == ["announce_awards", "archive_year", "award_winners"]
    assert (await handle.query(CycleWorkflow.status)).tracks == []


async def test_status_shows_each_track_as_it_goes(harness):
    env, script, queue = harness
    cfg = tracks_config(await env.get_current_time(), a_year())
    handle = await start(env, queue, cfg)
    await skip_time(env, 10 * DAY)  # SAKIP and RB open, KBK's call open

    async def tracks_running() -> bool:
        st = await handle.query(CycleWorkflow.status)
        return {t.track: t.phase for t in st.tracks} == {"sakip": "evaluation", "rb": "evaluation", "cettar": "waiting", "kbk": "kbk_call"}

    await eventually(tracks_running)
    st = await handle.query(CycleWorkflow.status)
    views = {t.track: t for t in st.tracks}
    assert views["sakip"].state == "running" and views["sakip"].deadline == cfg.tracks.sakip.deadline  # type: ignore[union-attr]
    assert views["kbk"].deadline == cfg.tracks.kbk.call.closes  # type: ignore[union-attr]
    await end(env, handle, cfg)


async def test_the_operator_extends_a_track_through_the_cycle(harness):
    env, script, queue = harness
    cfg = tracks_config(await env.get_current_time(), a_year())
    assert cfg.tracks.sakip and cfg.tracks.cettar and cfg.tracks.kbk
    handle = await start(env, queue, cfg)
    await skip_time(env, 10 * DAY)
    await eventually(lambda: _phase(handle, "sakip", "evaluation"))
    # SAKIP must end before CETTAR, which reads it; a KBK step in order like KOVABLIK's.
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="sakip", until=cfg.tracks.cettar.deadline))
    assert "extend cettar first" in str(err.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="kbk_call", until=cfg.tracks.kbk.verification.deadline))
    assert "extend kbk_verification first" in str(err.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(CycleWorkflow.close_stage_now, CloseStageNow(stage="kbk_desk"))
    assert "not running now" in str(err.value.cause)

    sakip_until = cfg.tracks.sakip.deadline + 5 * DAY
    call_until = cfg.tracks.kbk.call.closes + 2 * DAY
    await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="sakip", until=sakip_until, reason="banyak OPD terlambat"))
    await handle.execute_update(CycleWorkflow.extend_deadline, ExtendDeadline(stage="kbk_call", until=call_until))
    st = await handle.query(CycleWorkflow.status)
    assert [a["stage"] for a in st.operator_actions] == ["sakip", "kbk_call"]
    await skip_time(env, 45 * DAY)  # KBK's desk stage is running
    await eventually(lambda: _phase(handle, "kbk", "kbk_desk"))
    await handle.execute_update(CycleWorkflow.close_stage_now, CloseStageNow(stage="kbk_desk", reason="semua juri selesai"))
    await handle.result()
    sakip_close = next(c for c in calls(script, "close_evaluation") if c.kind.value == "sakip")
    assert close_enough(sakip_close.at, sakip_until)
    kbk_close = next(c for c in calls(script, "close_call") if c.track == Competition.KBK)
    assert close_enough(kbk_close.at, call_until)
    desk = next(c for c in calls(script, "close_stage") if c.stage == "kbk_desk")
    assert desk.at < cfg.tracks.kbk.stages[0].deadline


async def test_a_track_a_service_refuses_fails_the_year_saying_why(harness):
    env, script, queue = harness
    script.refuse_evaluation = "rb"
    cfg = tracks_config(await env.get_current_time(), a_year())
    handle = await start(env, queue, cfg)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await handle.query(CycleWorkflow.status)
    assert status.phase == CyclePhase.FAILED
    assert status.error is not None and "track rb" in status.error and "no rubric" in status.error
    assert calls(script, "determine_awards") == []
    # The other tracks were cancelled with their year.
    await eventually(lambda: _all_closed(env, cfg))


async def _all_closed(env: Any, cfg: Any) -> bool:
    return WorkflowExecutionStatus.RUNNING not in await tracks_closed(env, cfg)


async def test_cancelling_the_year_cancels_its_tracks(harness):
    env, script, queue = harness
    cfg = tracks_config(await env.get_current_time(), a_year())
    handle = await start(env, queue, cfg)
    await skip_time(env, 10 * DAY)
    await eventually(lambda: _phase(handle, "kbk", "kbk_call"))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    async def all_cancelled() -> bool:
        states = await tracks_closed(env, cfg)
        return states == [WorkflowExecutionStatus.CANCELED] * 4

    await eventually(all_cancelled)
    status = await handle.query(CycleWorkflow.status)
    assert {t.state for t in status.tracks} == {"cancelled"}


async def test_the_bridge_wakes_the_kbk_track_for_its_check_and_the_cycle_for_kovablik():
    class Temporal:
        signals: list[tuple[str, str]] = []

        def get_workflow_handle(self, wid: str) -> Any:
            class Handle:
                async def signal(self, name: str) -> None:
                    Temporal.signals.append((wid, name))

            return Handle()

    temporal = Temporal()
    for track in (Competition.KBK, Competition.KOVABLIK):
        counts = VerificationCounts(cycle_year=2031, track=track, state="completed", total=2, pending=0, eligible=2, disqualified=0, overridden=0)
        event = VerificationCompleted(cycle_year=2031, counts=counts)
        assert await signal_for(temporal, event.subject(), event.model_dump_json().encode()) == "signalled"  # type: ignore[arg-type]
    assert Temporal.signals == [("bfest-cycle-2031-kbk", "verification_completed"), ("bfest-cycle-2031", "verification_completed")]


async def test_the_kbk_track_waits_for_its_check_to_complete(harness):
    env, script, queue = harness
    script.pending_verification = 4
    cfg = tracks_config(await env.get_current_time(), a_year())
    assert cfg.tracks.kbk
    handle = await start(env, queue, cfg)
    await skip_time(env, 36 * DAY)
    await eventually(lambda: _phase(handle, "kbk", "kbk_verification"))
    await env.client.get_workflow_handle(track_workflow_id(cfg.year, "kbk")).signal(KbkTrackWorkflow.on_verification_completed)
    await handle.result()
    kbk_close = next(c for c in calls(script, "close_verification") if c.track == Competition.KBK)
    assert kbk_close.at < cfg.tracks.kbk.verification.deadline


async def end(env: Any, handle: Any, cfg: Any) -> None:
    """Terminate a year left running, its tracks first: a cancel request to a track whose worker has
    gone (each test has its own queue) would leave a task nobody takes, stalling the skipped clock."""
    for track in ("sakip", "rb", "cettar", "kbk"):
        with contextlib.suppress(Exception):
            await env.client.get_workflow_handle(track_workflow_id(cfg.year, track)).terminate("test done")
    await handle.terminate("test done")


async def tracks_closed(env: Any, cfg: Any) -> list[WorkflowExecutionStatus | None]:
    return [(await env.client.get_workflow_handle(track_workflow_id(cfg.year, t)).describe()).status for t in ("sakip", "rb", "cettar", "kbk")]


async def _phase(handle: Any, track: str, phase: str) -> bool:
    st = await handle.query(CycleWorkflow.status)
    return any(t.track == track and t.phase == phase for t in st.tracks)


async def test_a_kbk_stage_a_service_refuses_shows_in_the_status_at_once(harness):
    env, script, queue = harness
    script.refuse_stage = "kbk_desk"
    cfg = tracks_config(await env.get_current_time(), a_year())
    handle = await start(env, queue, cfg)
    await skip_time(env, 46 * DAY)  # KBK's check is over: its first stage is refused

    async def kbk_failed() -> bool:
        st = await handle.query(CycleWorkflow.status)
        return any(t.track == "kbk" and t.state == "failed" for t in st.tracks)

    await eventually(kbk_failed)
    with pytest.raises(WorkflowFailureError):
        await handle.result()  # the year fails when it would wait for the track, saying why
    status = await handle.query(CycleWorkflow.status)
    assert status.error is not None and "track kbk" in status.error and "cannot get 3 jurors" in status.error
    await eventually(lambda: _all_closed(env, cfg))
