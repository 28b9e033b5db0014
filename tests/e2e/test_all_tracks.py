"""A compressed year with every track enabled, end to end: the four real services on a real
nats-server, the real workflows (the cycle, its tracks' children, the jury stages), activities and
bridge on Temporal's time-skipping server, people simulated through the services' commands —
evaluators and reviewers for SAKIP, RB and CETTAR, work-culture groups and their agencies for KBK.
Every track's awards come out of the one ceremony, and the year joins the archive."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest

from bfest.files.participants import load_default_participants
from bfest.simulation import Simulator, agencies_of, demo_jurors, kbk_groups
from contracts.awards import GetResults
from contracts.base import CyclePhase, EvaluationKind, new_request_id
from contracts.cycle import CycleConfig, CycleInput, stage_workflow_id
from contracts.registration import SearchArchive
from contracts.scoring import StageStatus
from services.awards.app import create_app as awards_app
from services.common.messaging import CommandClient, CommandError
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import eventually, running
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow
from workflows.worker import running_worker

DAY = dt.timedelta(days=1)
CRIT = [
    {"key": "kebaruan", "name": "Kebaruan", "weight": 0.4, "scale_min": 1, "scale_max": 10},
    {"key": "dampak", "name": "Dampak", "weight": 0.6, "scale_min": 1, "scale_max": 10},
]
EVERY_SAKIP_GRADE = ["AA", "A", "BB", "B", "CC", "C", "D"]


def year_config(start: dt.datetime, year: int) -> CycleConfig:
    return CycleConfig.model_validate(
        {
            "year": year,
            "seed": 7,
            "call": {"opens": start, "closes": start + 30 * DAY, "quota_per_agency": 3},
            "verification": {"deadline": start + 45 * DAY, "rules": {"review_required": True}},
            "stages": [
                {"key": "desk", "name": "Desk", "deadline": start + 75 * DAY, "criteria": CRIT, "advance": 8},
                {"key": "field", "name": "Field", "deadline": start + 120 * DAY, "criteria": CRIT, "advance": 5, "jurors_per_proposal": 2},
            ],
            "ceremony": {"date": start + 150 * DAY, "venue": "Graha Pancasila, Kota Batu"},
            "tracks": {
                "sakip": {"opens": start + DAY, "deadline": start + 60 * DAY},
                "rb": {"opens": start + DAY, "deadline": start + 60 * DAY},
                "cettar": {"opens": start + 65 * DAY, "deadline": start + 110 * DAY},
                "kbk": {
                    "call": {"opens": start + 2 * DAY, "closes": start + 32 * DAY, "quota_per_agency": 2},
                    "verification": {"deadline": start + 50 * DAY, "rules": {"required_documents": ["risalah"], "min_running_months": 6, "review_required": True}},
                    "stages": [
                        {"key": "kbk_desk", "name": "Risalah", "deadline": start + 130 * DAY, "criteria": CRIT, "advance": 6, "jurors_per_proposal": 2},
                        {"key": "kbk_final", "name": "Presentasi", "deadline": start + 140 * DAY, "criteria": CRIT, "advance": 3, "jurors_per_proposal": 2},
                    ],
                },
            },
            "awards": [
                {"key": "top", "rule": "top_n", "n": 3, "name_id": "TOP 3 Inovasi", "name_en": "TOP 3 Innovations"},
                {"key": "wbk", "rule": "layak_wbk", "name_id": "Layak WBK", "name_en": "Worthy of WBK"},
                {"key": "kbk_top", "rule": "top_n", "track": "kbk", "n": 2, "name_id": "KBK Terbaik", "name_en": "Best KBK"},
                {"key": "sakip_hasil", "rule": "sakip_result", "track": "sakip", "name_id": "Hasil SAKIP", "name_en": "SAKIP results"},
                {"key": "rb_all", "rule": "grade", "track": "rb", "grades": EVERY_SAKIP_GRADE, "name_id": "Indeks RB", "name_en": "RB index"},
                {"key": "cettar_all", "rule": "grade", "track": "cettar", "grades": ["sangat_cettar", "cettar", "cukup_cettar"], "name_id": "CETTAR", "name_en": "CETTAR"},
            ],
        }
    )


@pytest.fixture
async def services(nats_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    apps = [registration_app(settings), verification_app(settings), scoring_app(settings), awards_app(settings)]
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(running(app, nats_url, f"sqlite+aiosqlite:///{tmp_path}/{app.service}.db"))
        yield apps


async def test_a_year_with_every_track_ends_in_one_ceremony(temporal_env, nats_url, services):
    env = temporal_env
    client = await CommandClient.connect(nats_url, timeout=30)
    year = 2041 + uuid.uuid4().int % 49  # 2040 is test_operator's year with no cycle (one Temporal per session)
    start = await env.get_current_time()
    cfg = year_config(start, year)
    assert cfg.tracks.kbk is not None
    sim = Simulator(client, year, seed=7, call_closes=cfg.call.closes.date())
    participants = load_default_participants()
    groups = kbk_groups(participants, 10, 7)
    await sim.load_participants(participants + groups)
    await sim.load_jurors(demo_jurors(30, 7))
    unit_agency = {p.code: p.parent_code for p in participants if p.parent_code}
    subjects = agencies_of(participants)[:8]
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, nats_url, task_queue=queue):
        handle = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{year}", task_queue=queue)

        async def phase(p: CyclePhase, stage: str | None = None) -> bool:
            s = await handle.query(CycleWorkflow.status)
            return s.phase == p and (stage is None or s.stage == stage)

        async def track_at(track: str, at: str) -> bool:
            s = await handle.query(CycleWorkflow.status)
            return any(t.track == track and (t.phase == at or t.state == at) for t in s.tracks)

        await eventually(lambda: phase(CyclePhase.CALL_OPEN))
        await env.sleep(3 * DAY)  # SAKIP and RB open, KBK's call too
        for track, at in (("sakip", "evaluation"), ("rb", "evaluation"), ("kbk", "kbk_call")):
            await eventually(lambda t=track, a=at: track_at(t, a), timeout=30)
        units = await sim.units_by_agency(10)
        await sim.run_call(units, per_agency=2, quota=3)
        await sim.submit_lkes([us[0] for us in list(units.values())[:4]])
        for kind in (EvaluationKind.SAKIP, EvaluationKind.RB):
            stats = await sim.evaluate(kind, subjects)
            assert stats["approved"] == len(subjects), stats
        risalah = await sim.run_risalah(groups, {g.parent_code: unit_agency[g.parent_code] for g in groups if g.parent_code})
        assert risalah["forwarded"] > 0

        await env.sleep(31 * DAY)  # both calls closed: both checks run
        await eventually(_verified(sim.verify_all), timeout=30)
        await eventually(_verified(sim.verify_kbk), timeout=30)

        # KOVABLIK's stages and KBK's run side by side; each closes once fully scored.
        all_stages = [*cfg.stages, *cfg.tracks.kbk.stages]
        for stage in all_stages:
            await eventually(_opened(sim, stage.key), timeout=60)
            await sim.score_stage(stage, None, include_late=True)
            await eventually(_scored_again(sim, stage), timeout=30)
            child = env.client.get_workflow_handle(stage_workflow_id(year, stage.key))
            await eventually(_state(child, "done"), timeout=60)

        assert cfg.tracks.cettar is not None  # CETTAR opens after SAKIP's and RB's results are in
        await env.sleep(cfg.tracks.cettar.opens - await env.get_current_time() + DAY)
        await eventually(lambda: track_at("cettar", "evaluation"), timeout=30)
        stats = await sim.evaluate(EvaluationKind.CETTAR, subjects)
        assert stats["approved"] == len(subjects), stats
        result = await handle.result()
        status = await handle.query(CycleWorkflow.status)

    assert result.phase == CyclePhase.COMPLETED
    assert {t.track: t.state for t in status.tracks} == {"sakip": "done", "rb": "done", "cettar": "done", "kbk": "done"}
    results = await client.call(GetResults(request_id=new_request_id(), cycle_year=year))
    cats = {c["key"]: c for c in results["categories"]}
    # One announcement covers every track's awards.
    assert results["announcement_no"] and result.announcement_no == results["announcement_no"]
    assert len(cats["sakip_hasil"]["winners"]) == len(subjects)
    assert len(cats["rb_all"]["winners"]) == len(subjects) and len(cats["cettar_all"]["winners"]) == len(subjects)
    assert 0 < len(cats["kbk_top"]["winners"]) <= 2
    assert all(w.get("track") == "kbk" for w in cats["kbk_top"]["winners"])
    assert {c["track"] for c in results["categories"]} >= {"kovablik", "wbk", "kbk", "sakip", "rb", "cettar"}
    assert set(results["evaluations"]) >= {"sakip", "rb", "cettar"}
    # The year joined the public archive after the ceremony.
    archive = await client.call(SearchArchive(year=year, limit=500))
    assert archive["total"] >= result.counts["forwarded"]
    await client.close()


def _verified(verify: Any):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        try:
            await verify()
            return True
        except CommandError as exc:
            if exc.code in ("not_ready", "verification_not_started", "unknown_proposal"):
                return False
            raise

    return go


def _opened(sim: Simulator, key: str):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        try:
            st = await sim.call(StageStatus(request_id=new_request_id(), cycle_year=sim.year, stage=key))
            return bool(st["assignments"] > 0)
        except CommandError:
            return False

    return go


def _scored_again(sim: Simulator, stage: Any):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        st = await sim.call(StageStatus(request_id=new_request_id(), cycle_year=sim.year, stage=stage.key))
        if st["fully_scored"] or st["state"] != "open":
            return True
        await sim.score_stage(stage, None, include_late=True)
        return False

    return go


def _state(child: Any, state: str):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        try:
            return bool((await child.query(JuryStageWorkflow.status))["state"] == state)
        except Exception:  # noqa: BLE001 - the child may have completed: its query still answers
            return False

    return go
