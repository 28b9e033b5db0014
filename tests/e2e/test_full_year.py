"""A whole year end to end: the four real services on a real nats-server, the real workflow,
activities and bridge on Temporal's time-skipping server, people simulated through the services'
commands. Months pass in seconds."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from pathlib import Path

import pypdf
import pytest

from bfest.files.participants import load_default_participants
from bfest.simulation import Simulator, demo_jurors
from contracts.awards import GetResults, VerifyCertificate
from contracts.base import CyclePhase, new_request_id
from contracts.cycle import CycleConfig, stage_workflow_id
from contracts.scoring import GetShortlist, StageStatus
from services.awards.app import create_app as awards_app
from services.common.messaging import CommandClient, CommandError
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import eventually, postgres_database, running
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow
from workflows.worker import running_worker

DAY = dt.timedelta(days=1)
CRIT = [
    {"key": "kebaruan", "name": "Kebaruan", "weight": 0.4, "scale_min": 1, "scale_max": 10},
    {"key": "dampak", "name": "Dampak", "weight": 0.6, "scale_min": 1, "scale_max": 10},
]


def year_config(start: dt.datetime, year: int) -> CycleConfig:
    return CycleConfig.model_validate(
        {
            "year": year,
            "seed": 7,
            "call": {"opens": start, "closes": start + 30 * DAY, "quota_per_agency": 3},
            "verification": {"deadline": start + 45 * DAY, "rules": {"review_required": True}},
            "stages": [
                {"key": "desk", "name": "Desk", "deadline": start + 75 * DAY, "criteria": CRIT, "advance": 12, "objection_days": 5, "divergence_threshold": 3.0},
                {"key": "interview", "name": "Interview", "deadline": start + 100 * DAY, "criteria": CRIT, "advance": 8, "objection_days": 2},
                {"key": "field", "name": "Field", "deadline": start + 120 * DAY, "criteria": CRIT, "advance": 6, "jurors_per_proposal": 2},
            ],
            "ceremony": {"date": start + 150 * DAY, "venue": "Graha Pancasila, Kota Batu"},
            "awards": [
                {"key": "top", "rule": "top_n", "n": 5, "name_id": "TOP 5 Inovasi", "name_en": "TOP 5 Innovations"},
                {"key": "umum_top", "rule": "top_n", "n": 1, "per_group": True, "name_id": "Terbaik per kelompok", "name_en": "Best per group"},
                {"key": "replikasi", "rule": "best_of_group", "group": "replikasi", "name_id": "Replikasi Terbaik", "name_en": "Best Replication"},
                {"key": "wbk", "rule": "layak_wbk", "name_id": "Layak WBK", "name_en": "Worthy of WBK"},
            ],
        }
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def services(request: pytest.FixtureRequest, nats_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The four services, each on its own database: SQLite files, or PostgreSQL databases."""
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    apps = [registration_app(settings), verification_app(settings), scoring_app(settings), awards_app(settings)]
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            if request.param == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp_path}/{app.service}.db"
            elif os.environ.get("BFEST_TEST_POSTGRES_URL"):
                url = await stack.enter_async_context(postgres_database())
            else:
                pytest.skip("BFEST_TEST_POSTGRES_URL is not set (CI sets it to the local PostgreSQL)")
            await stack.enter_async_context(running(app, nats_url, url))
        yield apps


async def test_a_whole_year_from_call_to_ceremony(temporal_env, nats_url, services, tmp_path):
    env = temporal_env
    client = await CommandClient.connect(nats_url, timeout=30)
    year = 2041 + uuid.uuid4().int % 49  # 2040 is test_operator's year with no cycle (one Temporal per session)
    start = await env.get_current_time()
    cfg = year_config(start, year)
    sim = Simulator(client, year, seed=7, call_closes=cfg.call.closes.date())
    await sim.load_participants(load_default_participants())
    await sim.load_jurors(demo_jurors(30, 7))
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, nats_url, task_queue=queue):
        handle = await env.client.start_workflow(
            CycleWorkflow.run, __import__("contracts.cycle", fromlist=["CycleInput"]).CycleInput(config=cfg), id=f"bfest-cycle-{year}", task_queue=queue
        )

        async def phase(p: CyclePhase, stage: str | None = None) -> bool:
            s = await handle.query(CycleWorkflow.status)
            return s.phase == p and (stage is None or s.stage == stage)

        await eventually(lambda: phase(CyclePhase.CALL_OPEN))
        units = await sim.units_by_agency(15)
        stats = await sim.run_call(units, per_agency=3, quota=3)
        assert stats["refused_over_quota"] == 3  # every fifth agency tried a fourth forward
        await sim.submit_lkes([us[0] for us in list(units.values())[:6]])

        await env.sleep(31 * DAY)
        await eventually(lambda: phase(CyclePhase.VERIFICATION), timeout=30)
        await eventually(_verified(sim), timeout=30)

        for stage in cfg.stages:
            await eventually(lambda key=stage.key: phase(CyclePhase.JURY, key), timeout=60)
            await eventually(_opened(sim, stage.key), timeout=30)
            await sim.score_stage(stage, None, include_late=True)
            await eventually(_scored_again(sim, stage), timeout=30)  # jurors added by divergence score too
            child = env.client.get_workflow_handle(stage_workflow_id(year, stage.key))
            if stage.objection_days:
                await eventually(_state(child, "objections"), timeout=60)
                if stage.key == "desk":
                    shortlist = await client.call(GetShortlist(cycle_year=year, stage="desk"))
                    await sim.object_and_decide("desk", shortlist["rows"][0]["proposal_id"])
                await env.sleep(dt.timedelta(days=stage.objection_days + 0.5))
            await eventually(_state(child, "done"), timeout=60)
        result = await handle.result()

        history = await handle.fetch_history()

    assert result.phase == CyclePhase.COMPLETED
    assert [s.stage for s in result.stages] == ["desk", "interview", "field"]
    assert all(s.closed_early for s in result.stages)  # fully scored → the bridge closed each stage early
    assert len(history.events) < 400

    results = await client.call(GetResults(request_id=new_request_id(), cycle_year=year))
    field = await client.call(GetShortlist(cycle_year=year, stage="field"))
    final_ids = [r["proposal_id"] for r in field["rows"]]
    cats = {c["key"]: c for c in results["categories"]}
    # The awards follow the rules on the final shortlist, computed directly here.
    assert [w["proposal_id"] for w in cats["top"]["winners"]] == final_ids[:5]
    groups = {r["proposal_id"]: r["group"] for r in field["rows"]}
    best_per_group = {}
    for pid in final_ids:
        best_per_group.setdefault(groups[pid], pid)
    assert sorted(w["proposal_id"] for w in cats["umum_top"]["winners"]) == sorted(best_per_group.values())
    replicas = [p for p in final_ids if groups[p] == "replikasi"]
    assert [w["proposal_id"] for w in cats["replikasi"]["winners"]] == replicas[:1]
    if not replicas:
        assert cats["replikasi"]["empty_reason"]
    assert len(cats["wbk"]["winners"]) == result.counts["wbk_layak"] > 0
    assert result.awards["top"] == final_ids[:5]

    # Certificates are real PDFs that name the winner and carry a code that verifies.
    first = cats["top"]["winners"][0]
    text = pypdf.PdfReader(first["certificate_path"]).pages[0].extract_text()
    assert first["certificate_code"] in text and first["unit_name"] in text
    ok = await client.call(VerifyCertificate(code=first["certificate_code"]))
    assert ok["valid"] and ok["recipient"] == first["unit_name"]
    forged = await client.call(VerifyCertificate(code="BF40-AAAA-BBBB-CCCC"))
    assert forged["valid"] is False
    html = Path(results["files"]["html"]).read_text()
    assert all(w["unit_name"] in html for c in results["categories"] for w in c["winners"])
    await client.close()


def _verified(sim: Simulator):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        try:
            await sim.verify_all()
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
            return st["assignments"] > 0
        except CommandError:
            return False

    return go


def _scored_again(sim: Simulator, stage):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        st = await sim.call(StageStatus(request_id=new_request_id(), cycle_year=sim.year, stage=stage.key))
        if st["fully_scored"] or st["state"] != "open":
            return True
        await sim.score_stage(stage, None, include_late=True)
        return False

    return go


def _state(child, state: str):  # type: ignore[no-untyped-def]
    async def go() -> bool:
        try:
            return (await child.query(JuryStageWorkflow.status))["state"] == state
        except Exception:  # noqa: BLE001 - the child may have completed: its query still answers
            return False

    return go
