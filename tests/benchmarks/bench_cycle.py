"""A national-scale year: N proposals (BFEST_BENCH_PROPOSALS, default 2,000; the national KIPP
has ~20,000) from generated agencies, 300 jurors, three jury stages, the four real services on a
real nats-server and the workflow on the time-skipping server. Prints wall time per phase and the
cycle's history length; asserts nothing about time."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid

import pytest
from temporalio.api.testservice.v1 import SleepRequest

from bfest.simulation import demo_jurors
from contracts import subjects
from contracts.base import Actor, CyclePhase, Role, new_request_id
from contracts.cycle import CycleConfig, CycleInput, stage_workflow_id
from contracts.registration import ForwardProposal, ImportParticipants, Participant, SubmitProposal
from contracts.scoring import StageStatus, SubmitScore
from services.awards.app import create_app as awards_app
from services.common.messaging import CommandClient
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import as_named, eventually, running
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow
from workflows.worker import running_worker

N = int(os.environ.get("BFEST_BENCH_PROPOSALS", "2000"))
IN_FLIGHT = 64
DAY = dt.timedelta(days=1)


async def pool(jobs, limit: int = IN_FLIGHT) -> None:  # type: ignore[no-untyped-def]
    it = iter(jobs)

    async def worker() -> None:
        for job in it:
            await job()

    await asyncio.gather(*(worker() for _ in range(limit)))


def config(start: dt.datetime, year: int) -> CycleConfig:
    crit = [{"key": "a", "name": "A", "weight": 0.5}, {"key": "b", "name": "B", "weight": 0.5}]
    return CycleConfig.model_validate(
        {
            "year": year,
            "call": {"opens": start, "closes": start + 30 * DAY},
            "verification": {"deadline": start + 45 * DAY},
            "stages": [
                {"key": "desk", "name": "Desk", "deadline": start + 75 * DAY, "criteria": crit, "advance": max(10, N // 20), "divergence_threshold": 9},
                {"key": "interview", "name": "Interview", "deadline": start + 100 * DAY, "criteria": crit, "advance": max(5, N // 100), "divergence_threshold": 9},
                {"key": "field", "name": "Field", "deadline": start + 120 * DAY, "criteria": crit, "advance": max(5, N // 200), "divergence_threshold": 9},
            ],
            "ceremony": {"date": start + 150 * DAY, "venue": "Kota Batu"},
            "awards": [{"key": "top", "rule": "top_n", "n": 5, "name_id": "TOP 5", "name_en": "TOP 5"}],
        }
    )


async def skip(env, duration: dt.timedelta) -> None:  # type: ignore[no-untyped-def]
    """``env.sleep`` with a long RPC deadline: while the services work through the close (tens of
    thousands of events), activities run in real time and the virtual clock waits for them."""
    req = SleepRequest()
    req.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(req, timeout=dt.timedelta(minutes=30))


async def caught_up(js, durable: str) -> bool:  # type: ignore[no-untyped-def]
    info = await js.consumer_info(subjects.STREAM, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


@pytest.mark.timeout(3600)  # the national scale is measured, not bounded by the suite's per-test limit
async def test_a_national_scale_year(temporal_env, nats_url, tmp_path):
    env = temporal_env
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        phases[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        print(f"[bench cycle] … {name:<45} {phases[name]:8.1f} s", flush=True)  # progress, for long runs

    async with (
        running(registration_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"),
        running(verification_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/v.db"),
        running(scoring_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/s.db"),
        running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"),
    ):
        client = await CommandClient.connect(nats_url, timeout=120)
        js = client.nc.jetstream()
        agencies = (N + 2) // 3
        people = [Participant(code=f"AG{a:05d}", name=f"Agency {a}", kind="kabupaten") for a in range(agencies)]
        people += [Participant(code=f"AG{a:05d}-U", name=f"Unit {a}", kind="upp", parent_code=f"AG{a:05d}") for a in range(agencies)]
        for i in range(0, len(people), 2000):
            await client.call(ImportParticipants(participants=people[i : i + 2000]))
        await client.call(__import__("contracts.scoring", fromlist=["ImportJurors"]).ImportJurors(jurors=demo_jurors(300, 1)))
        lap("load participants and 300 jurors")

        year = 2000 + uuid.uuid4().int % 40
        start = await env.get_current_time()
        cfg = config(start, year)
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with running_worker(env.client, nats_url, task_queue=queue):
            handle = await env.client.start_workflow(CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{year}", task_queue=queue)

            async def phase(p: CyclePhase, stage: str | None = None) -> bool:
                s = await handle.query(CycleWorkflow.status)
                return s.phase == p and (stage is None or s.stage == stage)

            await eventually(lambda: phase(CyclePhase.CALL_OPEN), timeout=60)
            ids: list[tuple[str, str]] = []

            def submit(i: int):  # type: ignore[no-untyped-def]
                async def go() -> None:
                    a = i // 3
                    content = {
                        "title": f"Inovasi {i}", "group": ["umum", "khusus", "replikasi"][i % 3], "category": "kesehatan",
                        "summary": "s" * 30, "problem": "p" * 30, "solution": "x" * 30, "impact": "i" * 30,
                        "started_on": (start - 400 * DAY).date().isoformat(),
                        "documents": [{"kind": "proposal", "uri": "https://x"}], "contact": {"name": "A", "email": "a@b.go.id"},
                    }  # fmt: skip
                    cmd = SubmitProposal(cycle_year=year, unit_code=f"AG{a:05d}-U", content=content)  # type: ignore[arg-type]
                    view = await client.call(cmd, actor=as_named(cmd))
                    ids.append((view["id"], f"AG{a:05d}"))

                return go

            await pool(submit(i) for i in range(N))
            lap(f"submit {N} proposals")

            def forward(pid: str, agency: str):  # type: ignore[no-untyped-def]
                cmd = ForwardProposal(cycle_year=year, agency_code=agency, proposal_id=pid)
                return lambda: client.call(cmd, actor=as_named(cmd))

            await pool(forward(p, a) for p, a in ids)
            lap(f"forward {N} proposals")
            # Verification keeps its own copy of the forwarded proposals from the events; let it
            # catch up before the call closes (else the close waits, which the time-skipping
            # server's sleep call does not outlast).
            await eventually(lambda: caught_up(js, "verification--registration"), timeout=600, interval=0.2)
            lap("verification consumes the call's events")

            await skip(env, 31 * DAY)
            for stage in cfg.stages:
                await eventually(lambda key=stage.key: phase(CyclePhase.JURY, key), timeout=600, interval=0.5)
                if stage.key == "desk":
                    lap("close call and verify (events, checks)")

                async def status(key: str = stage.key):  # type: ignore[no-untyped-def]
                    try:
                        return await client.call(StageStatus(request_id=new_request_id(), cycle_year=year, stage=key, per_juror=True))
                    except Exception:  # noqa: BLE001 - not open yet
                        return None

                st = await eventually(status, timeout=600, interval=0.5)
                lap(f"{stage.key}: open and assign {st['proposals']} proposals")
                jobs = []
                for j in st["per_juror"]:
                    for pid in j["missing"]:
                        v = 3 + (hash((pid, j["juror_id"])) % 60) / 10
                        jobs.append(
                            lambda jid=j["juror_id"], pid=pid, v=v: client.call(
                                SubmitScore(cycle_year=year, stage=stage.key, juror_id=jid, proposal_id=pid, scores={"a": v, "b": v}),
                                actor=Actor(id=jid, role=Role.JUROR),
                            )
                        )
                await pool(jobs)
                lap(f"{stage.key}: {len(jobs)} scores")
                child = env.client.get_workflow_handle(stage_workflow_id(year, stage.key))

                async def done(child=child):  # type: ignore[no-untyped-def]
                    try:
                        return (await child.query(JuryStageWorkflow.status))["state"] == "done"
                    except Exception:  # noqa: BLE001
                        return False

                await eventually(done, timeout=600, interval=0.5)
                lap(f"{stage.key}: rank and shortlist")
            result = await handle.result()
            lap("ceremony: awards and certificates")
            history = await handle.fetch_history()
        await client.close()
    assert result.phase == CyclePhase.COMPLETED
    total = sum(phases.values())
    print(f"\n[bench cycle] {N} proposals, 300 jurors, 3 stages: {total:.1f} s in all (target for 20,000: ≤ 300 s)")
    for name, seconds in phases.items():
        print(f"[bench cycle]   {name:<45} {seconds:8.1f} s")
    print(f"[bench cycle] history: {len(history.events)} events in the cycle workflow (target ≤ 1,000)")
