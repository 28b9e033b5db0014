"""A service that is down for a while: the workflow's activity retries with backoff and the cycle
completes once the service is back (the retries show in the history's timeline)."""

from __future__ import annotations

import uuid

from contracts.base import CyclePhase
from contracts.cycle import CycleInput
from services.awards.app import create_app as awards_app
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import eventually, running
from tests.workflows.fakes import config
from workflows.cycle import CycleWorkflow
from workflows.worker import running_worker


async def test_the_cycle_waits_for_a_service_that_is_down_then_completes(temporal_env, nats_url, tmp_path):
    env = temporal_env
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    start = await env.get_current_time()
    cfg = config(start, year=2000 + uuid.uuid4().int % 40)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with (
        running(registration_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"),
        running(verification_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/v.db"),
        running(scoring_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/s.db"),
        running_worker(env.client, nats_url, task_queue=queue),
    ):
        handle = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{cfg.year}", task_queue=queue)

        async def retrying() -> bool:
            desc = await handle.describe()
            return any(a.attempt >= 2 for a in desc.raw_description.pending_activities)

        await eventually(retrying, timeout=30)  # validate_awards: no awards service answers yet
        assert (await handle.query(CycleWorkflow.status)).phase == CyclePhase.STARTING
        async with running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"):
            result = await handle.result()
    assert result.phase == CyclePhase.COMPLETED
    history = await handle.fetch_history()
    started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
    assert any(e.activity_task_started_event_attributes.attempt >= 2 for e in started)
