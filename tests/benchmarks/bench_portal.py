"""The portal under load: a juror's score through HTTP → NATS → scoring → reply, at 100 concurrent
signed-in juror sessions (httpx AsyncClient, session cookie and CSRF header), against the portal
served by uvicorn in its own process with the scoring service on a real nats-server. Baselines in
the same run, on the same server and sessions: a bare FastAPI endpoint (the same middleware, CSRF
check and JSON body; no session lookup, no NATS), and what lies between: the session lookup
alone (``/api/me``) and the scoring service alone (the same command straight over NATS at the same
concurrency). Prints throughput, the ratio to the bare endpoint, p50/p99 and whether p99 meets
the goal (≤ 150 ms); asserts only that every score was accepted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.base import digest_ids
from contracts.verification import (
    ProposalVerified,
    VerificationClosed,
    VerificationClosedSummary,
    VerifiedProposal,
)
from services.portal.accounts import Role
from tests.portal.support import PASSWORD, csrf_of, portal
from tests.scoring.test_service import CRITERIA, YEAR, cmd
from tests.support import HARNESS, connect_as, free_port, request, running, wait_for_port

SESSIONS = 100
PER_SESSION = 20  # 2,000 requests a measurement
WARMUP = 2
GOAL_P99_MS = 150.0
JURORS = [{"id": f"JB{i:03d}", "name": f"Juri Bench {i}", "affiliation": f"UNIV{i % 20}", "conflicts": []} for i in range(SESSIONS)]
PROPOSALS = [f"PB{i:04d}" for i in range(2 * SESSIONS)]
SECRET = "bench-secret-" + "x" * 32
ROOT = Path(__file__).resolve().parents[2]


def light_passwords() -> None:
    """Signing 100 people in is set-up, not what is measured: the bench's accounts get argon2
    hashes with light parameters (here and in the portal's process, so logins do not rehash)."""
    from argon2 import PasswordHasher

    from services.portal import accounts

    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def bench_app() -> Any:
    """The portal as ``bfest portal run`` serves it, plus a bare endpoint beside it: the same
    server's baseline (``uvicorn --factory tests.benchmarks.bench_portal:bench_app``)."""
    from services.common.settings import Settings
    from services.portal.app import create_app
    from services.portal.config import PortalSettings

    light_passwords()
    env = os.environ
    settings = Settings(var_dir=Path(env["BENCH_PORTAL_VAR"]), command_timeout=30.0)
    app = create_app(settings, PortalSettings(year=YEAR, secret=SECRET), nats_url=env["BENCH_NATS_URL"], database_url=env["BENCH_PORTAL_DB"])  # type: ignore[arg-type]

    @app.post("/bench/bare", include_in_schema=False)
    async def bare(body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "data": None, "error": None}

    # Where a request's time goes inside the portal: the whole request in the app, the session
    # lookup, and the command's NATS round trip (scoring's answer included).
    from services.portal.accounts import Accounts
    from services.portal.gateway import Gateway

    phases: dict[str, list[float]] = {"app": [], "session": [], "nats": []}

    def timed(name: str, call: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                phases[name].append(time.perf_counter() - t)

        return wrapper

    Gateway.send = timed("nats", Gateway.send)  # type: ignore[method-assign]
    Accounts.session_person = timed("session", Accounts.session_person)  # type: ignore[method-assign]

    class Timed:
        def __init__(self, inner: Any) -> None:
            self.inner = timed("app", inner)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.inner(scope, receive, send)

    app.add_middleware(Timed)  # outermost: the app's whole time, from uvicorn's hand-over

    @app.get("/bench/phases", include_in_schema=False)
    async def read_phases() -> dict[str, list[float]]:
        """The phases measured since the last read (and forget them)."""
        out = {k: list(v) for k, v in phases.items()}
        for v in phases.values():
            v.clear()
        return out

    return app


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def feed_stage(nc, js) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """100 jurors, 200 verified proposals, the desk stage open with two jurors a proposal: each
    juror's assignments."""
    assert (await request(nc, cmd("import_jurors"), {"request_id": "bench-jurors", "jurors": JURORS}))["ok"]
    for i, pid in enumerate(PROPOSALS):
        evt = ProposalVerified(
            cycle_year=YEAR,
            proposal=VerifiedProposal(id=pid, title=f"Inovasi {pid}", group="umum", category="kesehatan", unit_code=f"KAB-{i % 38}-U1", unit_name="Unit", agency_code=f"KAB-{i % 38}", agency_name="Kab"),
        )
        await js.publish(evt.subject(), evt.model_dump_json().encode())
    closed = VerificationClosed(
        cycle_year=YEAR,
        summary=VerificationClosedSummary(cycle_year=YEAR, eligible=len(PROPOSALS), disqualified=0, overridden=0, eligible_digest=digest_ids(PROPOSALS)),
        eligible_ids=PROPOSALS,
    )
    await js.publish(closed.subject(), closed.model_dump_json().encode())
    body = {
        "request_id": "bench-open", "cycle_year": YEAR, "stage": "desk",
        "entrants": {"source": "verification", "expected": {"count": len(PROPOSALS), "digest": digest_ids(PROPOSALS)}},
        "criteria": CRITERIA, "jurors_per_proposal": 2, "advance": 10, "group_proportions": {"umum": 1.0},
        "divergence_threshold": 9.5, "deadline": "2033-06-12T16:00:00+07:00", "seed": 1, "at": "2033-05-20T08:00:00+07:00",
    }  # fmt: skip
    for _ in range(200):
        if (await request(nc, cmd("open_stage"), body))["ok"]:
            break
        await asyncio.sleep(0.1)
    status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk", "per_juror": True}))["data"]
    return {j["juror_id"]: j["missing"] for j in status["per_juror"]}


@contextlib.asynccontextmanager
async def portal_process(nats_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """The portal in its own process, served by uvicorn (one worker, as ``bfest portal run``)."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_NATS_URL": nats_url,
        "BENCH_PORTAL_DB": f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}",
        "BENCH_PORTAL_VAR": str(tmp_path / "portal-var"),
        "BFEST_LOG_LEVEL": "warning",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "--factory", "tests.benchmarks.bench_portal:bench_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--timeout-keep-alive", "600",  # the sessions signed in first wait for the rest, idle
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_for_port, port, 60)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def signed_in(base: str, juror: str) -> tuple[httpx.AsyncClient, str]:
    c = httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1))
    page = await c.get("/login")
    r = await c.post("/login", data={"csrf_token": csrf_of(page.text), "login": juror, "password": PASSWORD})
    assert r.status_code == 303, r.text
    home = await c.get("/juror")
    assert home.status_code == 200, home.text
    return c, csrf_of(home.text)


CPU: dict[str, float] = {}
"""The portal process's CPU time per request (ms) in each measurement: where its time goes."""
HERE: dict[str, float] = {}
"""This process's (the clients', the scoring service's) CPU time per request (ms)."""


async def drive(send: Callable[[int, int], Awaitable[Any]], sessions: int, per_session: int, pid: int | None = None, name: str = "") -> tuple[float, list[float], list[Any]]:
    """``sessions`` concurrent loops, each sending ``per_session`` requests one after another:
    throughput (requests/s), each latency, each answer; with ``pid``, that process's CPU time per
    request in ``CPU[name]``."""
    latencies: list[float] = []
    answers: list[Any] = []

    async def one(s: int) -> None:
        for i in range(per_session):
            t = time.perf_counter()
            answers.append(await send(s, i))
            latencies.append(time.perf_counter() - t)

    start, cpu, here = time.perf_counter(), cpu_seconds(pid) if pid else 0.0, time.process_time()
    await asyncio.gather(*(one(s) for s in range(sessions)))
    HERE[name] = (time.process_time() - here) / (sessions * per_session) * 1000
    if pid:
        CPU[name] = (cpu_seconds(pid) - cpu) / (sessions * per_session) * 1000
    return sessions * per_session / (time.perf_counter() - start), latencies, answers


def line(name: str, rps: float, lat: list[float], base_rps: float | None = None, cpu: str = "") -> str:
    ratio = f"; {rps / base_rps:.2f}× the bare endpoint" if base_rps else ""
    parts = ([f"portal {CPU[cpu]:.2f}"] if cpu in CPU else []) + ([f"this process {HERE[cpu]:.2f}"] if cpu in HERE else [])
    used = f"; CPU ms/request: {', '.join(parts)}" if parts else ""
    return f"\n[bench portal] {name}: {rps:,.0f} req/s, p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms{ratio}{used}"


@pytest.mark.timeout(1200)  # measured, not bounded by the suite's per-test limit (a busy machine is slow)
async def test_scores_through_the_portal_at_one_hundred_sessions(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    from services.scoring.app import create_app as scoring_app

    async with running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'scoring.db'}"):
        plan = await feed_stage(nc, js)
        jurors = sorted(j for j, pids in plan.items() if pids)[:SESSIONS]
        # The jurors' accounts, as `bfest portal invite` and the set-password page make them.
        light_passwords()
        async with portal(nats_url, tmp_path, YEAR) as app:
            for j in jurors:
                await app.state.accounts.ensure_account(Role.JUROR, j, j)
                await app.state.accounts.set_password(await app.state.accounts.invite(j), PASSWORD)
        async with portal_process(nats_url, tmp_path) as (base, pid):
            gate = asyncio.Semaphore(4)  # signing in (argon2) is set-up, not measured: a few at a time

            async def one_by_one(j: str) -> tuple[httpx.AsyncClient, str]:
                async with gate:
                    return await signed_in(base, j)

            sessions = await asyncio.gather(*(one_by_one(j) for j in jurors))
            try:

                async def score(s: int, i: int) -> Any:
                    c, token = sessions[s]
                    pid = plan[jurors[s]][i % len(plan[jurors[s]])]
                    r = await c.post(f"/api/juror/scores/desk/{pid}", json={"scores": {"mutu": 1 + (i % 10), "dampak": 7}}, headers={"X-CSRF-Token": token})
                    return r.json()

                async def bare(s: int, i: int) -> Any:
                    c, token = sessions[s]
                    return (await c.post("/bench/bare", json={"scores": {"mutu": 1 + (i % 10), "dampak": 7}}, headers={"X-CSRF-Token": token})).json()

                async def me(s: int, i: int) -> Any:
                    return (await sessions[s][0].get("/api/me")).json()

                raw = await connect_as(nats_url, HARNESS)

                async def direct(s: int, i: int) -> Any:  # the scoring service alone: the portal's command, straight over NATS
                    j = jurors[s]
                    pid = plan[j][i % len(plan[j])]
                    body = {"request_id": f"raw-{s}-{i}-{time.perf_counter_ns()}", "cycle_year": YEAR, "stage": "desk", "juror_id": j, "proposal_id": pid, "scores": {"mutu": 5, "dampak": 5}}
                    return await request(raw, cmd("submit_score"), body, timeout=60)

                await drive(score, len(sessions), WARMUP)
                await drive(bare, len(sessions), WARMUP)
                bare_rps, bare_lat, _ = await drive(bare, len(sessions), PER_SESSION, pid, "bare")
                me_rps, me_lat, _ = await drive(me, len(sessions), PER_SESSION, pid, "me")
                raw_rps, raw_lat, raw_answers = await drive(direct, len(sessions), PER_SESSION, None, "raw")
                await sessions[0][0].get("/bench/phases")  # forget the baselines'
                rps, lat, answers = await drive(score, len(sessions), PER_SESSION, pid, "score")
                inside = (await sessions[0][0].get("/bench/phases")).json()
                await raw.close()
            finally:
                await asyncio.gather(*(c.aclose() for c, _ in sessions))
    refused = [a for a in answers if not a.get("ok")]
    assert not refused, refused[:3]
    assert all(a["ok"] for a in raw_answers)
    p99 = pct(lat, 0.99)
    met = "met" if p99 <= GOAL_P99_MS else "NOT met"
    print(
        f"\n[bench portal] {len(sessions)} signed-in juror sessions × {PER_SESSION} requests each; the portal: uvicorn in its own process; this process: the httpx clients and the scoring service"
        + line("bare FastAPI endpoint (baseline: session cookie, CSRF, JSON; no NATS)", bare_rps, bare_lat, cpu="bare")
        + line("session lookup alone (GET /api/me)", me_rps, me_lat, bare_rps, cpu="me")
        + line("scoring service alone (submit_score over NATS, same concurrency)", raw_rps, raw_lat, cpu="raw")
        + line("score via the portal (HTTP → NATS → scoring → reply)", rps, lat, bare_rps, cpu="score")
        + f"\n[bench portal] goal p99 ≤ {GOAL_P99_MS:.0f} ms: {met} (p99 {p99:.1f} ms)"
        + f"\n[bench portal] inside the portal, a score: in the app p50 {pct(inside['app'], 0.5):.1f} / p99 {pct(inside['app'], 0.99):.1f} ms, "
        f"of which the session lookup p50 {pct(inside['session'], 0.5):.1f} / p99 {pct(inside['session'], 0.99):.1f} ms and the NATS round trip to scoring "
        f"p50 {pct(inside['nats'], 0.5):.1f} / p99 {pct(inside['nats'], 0.99):.1f} ms; the rest of the client's p50 {pct(lat, 0.5):.1f} ms "
        f"({pct(lat, 0.5) - pct(inside['app'], 0.5):.1f} ms) is outside the app: sockets, uvicorn's HTTP parsing, waiting for the event loop, the clients; "
        f"the machine's load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
