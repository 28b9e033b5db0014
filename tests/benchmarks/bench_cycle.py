"""A national-scale year: N proposals (BFEST_BENCH_PROPOSALS, default 20,000: the national KIPP's
size) from generated agencies, 300 jurors, three jury stages, played twice in one run by the same
driver: on a single node (one nats-server, the four services in this process on SQLite) and on the
cluster of ``bfest dev up --cluster`` (three NATS nodes with the streams at three replicas,
PostgreSQL with a database per service, two replicas of each service as their own processes).
Both years' workflow runs on the time-skipping server with this process's worker (the dev
server's clock cannot be skipped: a real-time year would measure the calendar). Prints wall time
per phase for both, the cluster's as a ratio to the single node's, and the cycle's history length;
asserts nothing about time."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bfest.simulation import demo_jurors
from contracts.base import Actor, CyclePhase, Role, new_request_id
from contracts.cycle import CycleConfig, CycleInput, stage_workflow_id
from contracts.registration import ForwardProposal, ImportParticipants, Participant, SubmitProposal
from contracts.scoring import ImportJurors, StageStatus, SubmitScore
from services.awards.app import create_app as awards_app
from services.common.messaging import CommandClient
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import as_named, caught_up, eventually, running, skip_time
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow
from workflows.worker import running_worker

N = int(os.environ.get("BFEST_BENCH_PROPOSALS", "20000"))
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
                {"key": key, "name": key.title(), "deadline": start + days * DAY, "criteria": crit, "advance": advance, "divergence_threshold": 9}
                for key, days, advance in (("desk", 75, max(10, N // 20)), ("interview", 100, max(5, N // 100)), ("field", 120, max(5, N // 200)))
            ],
            "ceremony": {"date": start + 150 * DAY, "venue": "Kota Batu"},
            "awards": [{"key": "top", "rule": "top_n", "n": 5, "name_id": "TOP 5", "name_en": "TOP 5"}],
        }
    )


@dataclasses.dataclass
class Stack:
    name: str
    nats_url: str
    settings: Settings | None = None
    """The credentials of a secured NATS (the cluster's), else the environment's."""


@contextlib.asynccontextmanager
async def single_node(nats_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    async with (
        running(registration_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"),
        running(verification_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/v.db"),
        running(scoring_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/s.db"),
        running(awards_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"),
    ):
        yield Stack("single node", nats_url)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path) -> AsyncIterator[Stack | None]:
    from tests.chaos import harness

    if not await harness.postgres_reachable():
        yield None
        return
    tmp_path.mkdir(parents=True, exist_ok=True)
    c = harness.Cluster(tmp_path)
    try:
        await asyncio.to_thread(c.start, False)  # its services; the worker is this process's
        yield Stack("cluster", c.url, c.settings)
    finally:
        await asyncio.to_thread(c.stack.stop)
        await c.drop_databases()


async def play(env, stack: Stack, year: int) -> tuple[dict[str, float], int]:  # type: ignore[no-untyped-def]
    """One year of N proposals on ``stack``: the wall time of each phase, and the cycle workflow's
    history length."""
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        phases[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        print(
            f"[bench cycle] … {stack.name}: {name:<45} {phases[name]:8.1f} s", flush=True
        )  # progress, for long runs

    client = await CommandClient.connect(stack.nats_url, timeout=120, settings=stack.settings)
    js = client.nc.jetstream()
    agencies = (N + 2) // 3
    people = [Participant(code=f"AG{a:05d}", name=f"Agency {a}", kind="kabupaten") for a in range(agencies)]
    people += [
        Participant(code=f"AG{a:05d}-U", name=f"Unit {a}", kind="upp", parent_code=f"AG{a:05d}")
        for a in range(agencies)
    ]
    for i in range(0, len(people), 2000):
        await client.call(ImportParticipants(participants=people[i : i + 2000]))
    await client.call(ImportJurors(jurors=demo_jurors(300, 1)))
    lap("load participants and 300 jurors")

    start = await env.get_current_time()
    cfg = config(start, year)
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with running_worker(env.client, stack.nats_url, task_queue=queue, settings=stack.settings):
        handle = await env.client.start_workflow(
            CycleWorkflow.run, CycleInput(config=cfg), id=f"bfest-cycle-{year}", task_queue=queue
        )

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

        await skip_time(env, 31 * DAY, deadline=dt.timedelta(minutes=30))  # the services work through the close meanwhile
        for stage in cfg.stages:
            await eventually(lambda key=stage.key: phase(CyclePhase.JURY, key), timeout=900, interval=0.5)
            if stage.key == "desk":
                lap("close call and verify (events, checks)")

            async def status(key: str = stage.key):  # type: ignore[no-untyped-def]
                try:
                    return await client.call(
                        StageStatus(request_id=new_request_id(), cycle_year=year, stage=key, per_juror=True)
                    )
                except Exception:  # noqa: BLE001 - not open yet
                    return None

            st = await eventually(status, timeout=900, interval=0.5)
            lap(f"{stage.key}: open and assign {st['proposals']} proposals")
            jobs = []
            for j in st["per_juror"]:
                for pid in j["missing"]:
                    v = 3 + (hash((pid, j["juror_id"])) % 60) / 10
                    jobs.append(
                        lambda jid=j["juror_id"], pid=pid, v=v, key=stage.key: client.call(
                            SubmitScore(
                                cycle_year=year,
                                stage=key,
                                juror_id=jid,
                                proposal_id=pid,
                                scores={"a": v, "b": v},
                            ),
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

            await eventually(done, timeout=900, interval=0.5)
            lap(f"{stage.key}: rank and shortlist")
        result = await handle.result()
        lap("ceremony: awards and certificates")
        history = await handle.fetch_history()
    await client.close()
    assert result.phase == CyclePhase.COMPLETED
    return phases, len(history.events)


@pytest.mark.timeout(7200)  # the national scale is measured, not bounded by the suite's per-test limit
async def test_a_national_scale_year_on_one_node_and_on_the_cluster(temporal_env, nats_url, tmp_path):
    base = 2000 + uuid.uuid4().int % 30
    async with single_node(nats_url, tmp_path / "single") as stack:
        single, single_history = await play(temporal_env, stack, base)
    async with cluster(tmp_path / "cluster") as stack:
        if stack is None:
            clustered, history = None, 0
            print(
                "\n[bench cycle] no PostgreSQL at BFEST_TEST_POSTGRES_URL (or 127.0.0.1:5432): the cluster's year is not measured"
            )
        else:
            clustered, history = await play(temporal_env, stack, base + 50)
    one = sum(single.values())
    print(
        f"\n[bench cycle] {N:,} proposals, 300 jurors, 3 stages, the same driver on both stacks (target for 20,000: ≤ 300 s);"
        "\n[bench cycle] single node: one nats-server, the four services in this process on SQLite;"
        "\n[bench cycle] cluster: 3 NATS nodes (streams at R3), PostgreSQL, two replicas of each service as processes:"
    )
    print(f"[bench cycle]   {'phase':<45} {'single node':>12} {'cluster':>9} {'ratio':>6}")
    for name, seconds in single.items():
        other = clustered.get(name) if clustered else None
        tail = f" {other:8.1f}s {other / seconds:6.2f}" if other is not None and seconds > 0 else ""
        print(f"[bench cycle]   {name:<45} {seconds:11.1f}s{tail}")
    line = f"[bench cycle]   {'in all':<45} {one:11.1f}s"
    if clustered:
        many = sum(clustered.values())
        line += f" {many:8.1f}s {many / one:6.2f}  (cluster time / single-node time; a ratio under 1 is the cluster faster)"
    print(line)
    print(
        f"[bench cycle] history: {single_history} events in the single node's cycle workflow, {history} in the cluster's (target ≤ 1,000)"
    )
