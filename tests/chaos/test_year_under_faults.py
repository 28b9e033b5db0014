"""A compressed year with a fixed seed on the cluster (`bfest dev up --cluster`: 3 NATS nodes with
the streams at three replicas, PostgreSQL, two replicas of each service, two workers, the Temporal
dev server), once undisturbed, then once per fault. After each: the year completed, its awards,
ranking and certificates are the undisturbed year's, the events per subject are the same (nothing
lost, nothing duplicated), every outbox is empty and the DLQ too. One line per fault is printed
(`make chaos` shows them; `-s`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import harness

pytestmark = pytest.mark.timeout(3600)

CI_FAULT = "nats_leader_kill9"
"""The one fault `make test` (CI) plays; `make chaos` plays every other too."""


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[harness.Cluster]:
    if not await harness.postgres_reachable():
        pytest.skip(f"no PostgreSQL at {harness.POSTGRES} (the cluster mode keeps its databases there)")
    c = harness.Cluster(tmp_path_factory.mktemp("chaos"))
    try:
        started = time.monotonic()
        await asyncio.to_thread(c.start)
        print(f"cluster up in {time.monotonic() - started:.0f}s", flush=True)
        yield c
    finally:
        await asyncio.to_thread(c.stack.stop)
        c.keep_logs(Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "chaos")
        await c.drop_databases()


class Years:
    """One year per run, in the same stack: the same seed in another year gives the same year."""

    first = dt.date.today().year + 40  # far from real cycles; years go to 2100
    baseline: harness.Outcome | None = None
    lines: list[str] = []
    played: set[str] = set()


async def baseline(cluster: harness.Cluster) -> harness.Outcome:
    if Years.baseline is None:
        started = time.monotonic()
        out, problems = await harness.play(cluster, Years.first)
        assert not problems, problems
        assert out.completed and out.awards and out.events, out
        assert sum(out.outbox_unsent.values()) == 0 and out.dlq == 0 and out.duplicate_ids == 0
        Years.baseline = out
        line = f"fault=none completed=yes events={sum(out.events.values())} awards={len(out.awards)} certificates={len(out.certificates)} reminders={sum(out.reminders.values())} seconds={time.monotonic() - started:.0f}"
        Years.lines.append(line)
        print(line, flush=True)
    return Years.baseline


async def under(cluster: harness.Cluster, name: str) -> tuple[str, bool]:
    base = await baseline(cluster)
    year = Years.first + 1 + list(harness.FAULTS).index(name)
    started = time.monotonic()
    out, problems = await harness.play(cluster, year, harness.FAULTS[name], harness.MINUTES * harness.LONGER.get(name, 1.0))
    line, ok = harness.compare(name, base, out, problems)
    line += f" seconds={time.monotonic() - started:.0f}"
    Years.lines.append(line)
    Years.played.add(name)
    print(line, flush=True)
    return line, ok


@pytest.mark.chaos_ci
async def test_the_cluster_stack_and_a_year_through_the_event_stream_leader_killed(cluster):
    # `bfest dev up --cluster` recorded every process with its HTTP address.
    state: dict[str, Any] = json.loads(cluster.stack.state_file.read_text())
    names = {c["name"]: c for c in state["components"]}
    expected = {"nats-1", "nats-2", "nats-3", "temporal", "portal-1", "portal-2", "worker-1", "worker-2"}
    expected |= {f"{s}-{r}" for s in ("registration", "verification", "scoring", "awards") for r in (1, 2)}
    assert expected <= set(names), sorted(names)
    assert all(names[n]["http"].startswith("http://") for n in expected - {"temporal"})
    assert len(state["nats_url"].split(",")) == 3
    line, ok = await under(cluster, CI_FAULT)
    assert ok, line


@pytest.mark.chaos_full
@pytest.mark.parametrize("fault", [f for f in harness.FAULTS if f != CI_FAULT])
async def test_the_year_is_the_same_under_every_fault(cluster, fault):
    line, ok = await under(cluster, fault)
    assert ok, line
