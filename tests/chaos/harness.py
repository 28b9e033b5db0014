"""The chaos suite's hands: the cluster stack of ``bfest dev up --cluster`` (3 NATS nodes with
streams at three replicas, PostgreSQL, two replicas of each service, two workers, the Temporal dev
server), a compressed year played on it by the demo's simulated people, the faults, and what a
year leaves behind (awards, ranking, certificates, events per subject, outboxes, DLQ) to compare
with the undisturbed year's."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from bfest import security
from bfest.demo import play_year
from bfest.devstack import DevStack
from contracts import subjects
from contracts.awards import GetResults, VerifyCertificate
from contracts.base import CyclePhase, new_request_id
from contracts.scoring import ReminderDue
from services.common.messaging import CommandClient
from services.common.settings import Settings
from tests.support import free_port
from workflows.cycle import CycleWorkflow

SEED = 1
MINUTES = float(os.environ.get("BFEST_CHAOS_MINUTES", "2.5"))
"""The compressed year's length; the same for every run, so every run has the same schedule."""

LEAD = 20.0
"""Seconds from the year's schedule being made to its call opening: enough for the cycle, on a
cold and busy cluster, to start and wait for the call, as every year then does (with the demo's
3 s, a first year that took longer skipped ``waiting_for_call``, one ``cycle.stage_changed`` fewer
than a later year's: a difference in the schedule, not in the platform)."""

REMINDERS_PER_STAGE = 2
"""``compress_schedule`` gives each stage two reminders; a juror gets each at most once."""

POSTGRES = os.environ.get("BFEST_TEST_POSTGRES_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def server_url(url: str) -> str:
    """The server's maintenance database (the tests name ``…/test``; databases are made beside)."""
    return url.rsplit("/", 1)[0] + "/postgres"


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(server_url(POSTGRES).replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


class Cluster:
    """The stack, started (and restarted) as ``bfest dev up --cluster`` starts it."""

    def __init__(self, var: Path) -> None:
        self.prefix = f"bfest_chaos_{uuid.uuid4().hex[:8]}_"
        self.settings = Settings(
            var_dir=var,
            results_dir=var / "results",
            temporal_address=f"127.0.0.1:{free_port()}",
            temporal_ui_url=f"http://127.0.0.1:{free_port()}",
        )
        self.stack = self._new_stack()

    def _new_stack(self) -> DevStack:
        os.environ["BFEST_DEV_DATABASE_PREFIX"] = self.prefix
        return DevStack(self.settings, say=lambda text: None, cluster=True, postgres_url=server_url(POSTGRES))

    def start(self, worker: bool = True) -> None:
        """The stack; without its two workers when ``worker`` is false (the national benchmark
        runs its own on the time-skipping server)."""
        info = self.stack.start(worker=worker)
        self.settings = self.settings.model_copy(update={"nats_url": info.nats_url, "temporal_address": info.temporal_address})

    def restart(self) -> None:
        """The whole stack stopped and started again on the same state (NATS stores, Temporal's
        database file, the PostgreSQL databases, the same ports)."""
        self.stack.stop()
        self.stack = self._new_stack()
        self.start()

    @property
    def url(self) -> str:
        return self.settings.nats_url

    def keep_logs(self, where: Path) -> Path:
        """The stack's logs, kept beside the test artifacts (pytest removes old temporary dirs)."""
        import shutil

        where.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.settings.var_dir / "logs", where / "logs", dirs_exist_ok=True)
        return where

    async def drop_databases(self) -> None:
        conn = await asyncpg.connect(server_url(POSTGRES).replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for name in (*subjects.SERVICES, "portal"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.prefix}{name}" WITH (FORCE)')
        finally:
            await conn.close()


# ---------------------------------------------------------------------------- what a year leaves


def _no_year(value: Any, year: int) -> Any:
    """The same seed in another year gives the same year with other numbers in its ids."""
    return json.loads(re.sub(str(year), "YEAR", json.dumps(value, sort_keys=True, default=str)))


@dataclasses.dataclass
class Outcome:
    year: int
    awards: Any
    ranking: Any
    certificates: Any
    events: Counter[str]
    """The year's events in the stream, per subject."""
    duplicate_ids: int
    """Events in the stream more than once (by ``Nats-Msg-Id``)."""
    outbox_unsent: dict[str, int]
    dlq: int
    completed: bool
    cycle_events: Counter[str] = dataclasses.field(default_factory=Counter)
    """The workflow's own events by name (``phase:jury:desk``…): says which one differs."""
    unrecorded: int = 0
    """Events in the stream that no service committed to its outbox and the workflow did not
    publish: an event published twice under two ids."""
    unpublished: int = 0
    """Events a service committed (and marked sent) or the workflow published that are not in
    the stream: lost on the way."""
    reminders: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)
    """``scoring.reminder_due`` per (stage, juror)."""


TIME_DRIVEN = frozenset({ReminderDue.subject()})
"""Subjects whose count is the wall clock's, not the year's: a reminder goes to each juror still
scoring when its moment comes, so a fault that slows the scoring (or a busier machine) rightly
reminds more jurors. They are checked by what must hold however fast the jurors are: each juror
reminded at most once per reminder the stage schedules (``REMINDERS_PER_STAGE``), and every
reminder the scoring service committed in the stream once (the ledger)."""


async def every_event(js: Any) -> list[Any]:
    """Every message in the event stream, read to its end (by each message's count of those still
    pending, not by a pause: a loaded machine may pause longer than any timeout)."""
    from nats.js.api import DeliverPolicy

    total = (await js.stream_info(subjects.STREAM)).state.messages
    sub = await js.subscribe(subjects.EVENTS_ALL, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    out: list[Any] = []
    try:
        while len(out) < total:
            msg = await sub.next_msg(timeout=30)
            out.append(msg)
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return out


async def _results(cluster: Cluster, year: int) -> tuple[Any, list[Any], list[Any]]:
    """The published results, the awards (rank, winner, score, certificate) and each
    certificate's verification."""
    client = await CommandClient.connect(cluster.url, timeout=30)
    try:
        results = await client.call(GetResults(request_id=new_request_id(), cycle_year=year))
        awards = [
            (c["key"], w["rank"], w.get("proposal_id"), w["unit_code"], w.get("score_published"), bool(w.get("certificate_code")))
            for c in results["categories"]
            for w in c["winners"]
        ]
        certificates = []
        for c in results["categories"]:
            for w in c["winners"]:
                if w.get("certificate_code"):
                    view = await client.call(VerifyCertificate(request_id=new_request_id(), code=w["certificate_code"]))
                    certificates.append((view["valid"], view.get("award_key"), w["unit_code"], w["rank"]))
    finally:
        await client.close()
    return results, awards, certificates


@dataclasses.dataclass
class _Stream:
    events: Counter[str]
    ids: Counter[str]
    named: Counter[str]
    reminders: Counter[tuple[str, str]]
    dlq: int


async def _stream(cluster: Cluster, year: int) -> _Stream:
    """The year's events as the stream holds them, and the dead letters."""
    nc = await security.connect(cluster.url, "cli", cluster.settings)  # the operator reads the streams
    out = _Stream(Counter(), Counter(), Counter(), Counter(), 0)
    cycle_events = subjects.events_of(subjects.CYCLE)[:-1]
    try:
        js = nc.jetstream()
        for msg in await every_event(js):
            try:
                body = json.loads(msg.data)
            except ValueError:
                continue
            if not (isinstance(body, dict) and body.get("cycle_year") == year):
                continue
            out.events[msg.subject] += 1
            out.ids[(msg.headers or {}).get("Nats-Msg-Id") or body.get("event_id") or ""] += 1
            if msg.subject.startswith(cycle_events):
                out.named[str(body.get("event_id", "")).split(":", 2)[-1]] += 1
            if msg.subject == ReminderDue.subject():
                out.reminders[(str(body.get("stage")), str(body.get("juror_id")))] += 1
        out.dlq = int((await js.stream_info("BFEST_DLQ")).state.messages)
    finally:
        await nc.close()
    return out


async def _ledger(cluster: Cluster, year: int) -> tuple[set[str], dict[str, int]]:
    """What should be in the stream for ``year``: every event a service committed to its outbox
    and marked sent, every event the cycle workflow published (its ``publish_cycle_event``
    activities); and each outbox's unsent rows."""
    ids: set[str] = set()
    unsent: dict[str, int] = {}
    for name, url in cluster.stack.databases.items():
        if name not in subjects.SERVICES:
            continue
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            unsent[name] = int(await conn.fetchval(f"SELECT count(*) FROM {name}_outbox WHERE published_at IS NULL"))
            for row in await conn.fetch(f"SELECT event_id, payload FROM {name}_outbox WHERE published_at IS NOT NULL"):
                if json.loads(row["payload"]).get("cycle_year") == year:
                    ids.add(row["event_id"])
        finally:
            await conn.close()
    ids |= await _published_by_workflow(cluster, year)
    return ids, unsent


async def _published_by_workflow(cluster: Cluster, year: int) -> set[str]:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    temporal = await Client.connect(cluster.settings.temporal_address, data_converter=pydantic_data_converter)
    ids: set[str] = set()
    async for event in temporal.get_workflow_handle(f"bfest-cycle-{year}").fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "publish_cycle_event":
                ids.add(json.loads(attrs.input.payloads[0].data)["event_id"])
    return ids


async def outcome(cluster: Cluster, year: int, phase: Any) -> Outcome:
    results, awards, certificates = await _results(cluster, year)
    stream = await _stream(cluster, year)
    ledger, unsent = await _ledger(cluster, year)
    return Outcome(
        year,
        sorted(_no_year(awards, year)),
        _no_year(results.get("rankings", []), year),
        sorted(_no_year(certificates, year)),
        stream.events,
        sum(n - 1 for i, n in stream.ids.items() if i and n > 1),
        unsent,
        stream.dlq,
        phase == CyclePhase.COMPLETED,
        stream.named,
        unrecorded=len(set(stream.ids) - ledger),
        unpublished=len(ledger - set(stream.ids)),
        reminders=stream.reminders,
    )


# ---------------------------------------------------------------------------- faults

Fault = Callable[[Cluster, Any], Awaitable[None]]
"""Given the cluster and the year's workflow handle, waits for its moment, does harm, heals."""


async def status(handle: Any, patience: float = 120) -> Any:
    """The cycle's status, asked again while Temporal or a worker is away (at most ``patience`` s)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + patience
    while True:
        try:
            return await handle.query(CycleWorkflow.status)
        except Exception:
            if loop.time() > end:
                raise
        await asyncio.sleep(0.5)


async def until(handle: Any, predicate: Callable[[Any], bool], timeout: float = 600) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        st = await status(handle)
        if predicate(st):
            return st
        if st.phase in (CyclePhase.COMPLETED, CyclePhase.FAILED, CyclePhase.CANCELLED):
            raise AssertionError(f"the year ended ({st.phase}) before the fault's moment")
        await asyncio.sleep(0.3)
    raise AssertionError("the fault's moment never came")


def in_phase(phase: CyclePhase) -> Callable[[Any], bool]:
    return lambda st: st.phase == phase


async def kill_and_restart(cluster: Cluster, names: list[str], down_for: float = 3.0) -> None:
    for name in names:
        cluster.stack.signal(name, signal.SIGKILL)
    await asyncio.sleep(down_for)
    for name in names:
        await asyncio.to_thread(cluster.stack.restart_replica, name)


async def event_stream_leader(cluster: Cluster) -> str:
    nc = await security.connect(cluster.url, "cli", cluster.settings)  # the operator reads the streams
    try:
        info = await nc.jetstream().stream_info(subjects.STREAM)
        assert info.cluster is not None and info.cluster.leader, "the event stream has no leader"
        return str(info.cluster.leader)
    finally:
        await nc.close()


async def nats_leader(cluster: Cluster, handle: Any) -> None:
    """kill -9 the NATS node that leads the event stream, mid-jury; it comes back 5 s later."""
    await until(handle, in_phase(CyclePhase.JURY))
    leader = await event_stream_leader(cluster)
    cluster.stack.signal(leader, signal.SIGKILL)
    await asyncio.sleep(5)
    await asyncio.to_thread(cluster.stack.restart_node, leader)


async def replica_each_service(cluster: Cluster, handle: Any) -> None:
    """kill -9 one replica of each service in its busiest phase (restarted 3 s later)."""
    for phase, service in (
        (CyclePhase.CALL_OPEN, "registration"),
        (CyclePhase.VERIFICATION, "verification"),
        (CyclePhase.JURY, "scoring"),
        (CyclePhase.WAITING_FOR_CEREMONY, "awards"),
    ):
        await until(handle, lambda st, p=phase: list(CyclePhase).index(st.phase) >= list(CyclePhase).index(p))
        await kill_and_restart(cluster, [f"{service}-1"])


async def worker_during_stage(cluster: Cluster, handle: Any) -> None:
    await until(handle, in_phase(CyclePhase.JURY))
    await kill_and_restart(cluster, ["worker-1"], down_for=5)


async def sigstop_service(cluster: Cluster, handle: Any) -> None:
    """SIGSTOP a scoring replica for 20 s mid-jury (it holds its connections, answering nothing)."""
    await until(handle, in_phase(CyclePhase.JURY))
    cluster.stack.signal("scoring-1", signal.SIGSTOP)
    try:
        await asyncio.sleep(20)
    finally:
        cluster.stack.signal("scoring-1", signal.SIGCONT)


async def partition_node(cluster: Cluster, handle: Any) -> None:
    """One NATS node cut off from the others (restarted without routes, on a cluster port nobody
    knows) for 15 s mid-jury, then joined again."""
    await until(handle, in_phase(CyclePhase.JURY))
    await asyncio.to_thread(cluster.stack.restart_node, "nats-3", True)
    await asyncio.sleep(15)
    await asyncio.to_thread(cluster.stack.restart_node, "nats-3", False)


async def restart_stack(cluster: Cluster, handle: Any) -> None:
    await until(handle, in_phase(CyclePhase.JURY))
    await asyncio.to_thread(cluster.restart)


async def scoring_as_stage_closes(cluster: Cluster, handle: Any) -> None:
    """Both scoring replicas killed as the first stage's deadline (as extended) passes."""
    import datetime as dt

    st = await until(handle, in_phase(CyclePhase.JURY))
    first = st.stage

    def closing(s: Any) -> bool:
        mine = next((x for x in s.stages if x.key == first), None)
        return mine is None or mine.state != "running" or mine.deadline <= dt.datetime.now(dt.UTC)

    await until(handle, closing)
    await kill_and_restart(cluster, ["scoring-1", "scoring-2"])


async def awards_during_determine(cluster: Cluster, handle: Any) -> None:
    """Both awards replicas killed while the workflow runs ``determine_awards`` (the ceremony's
    first step: the phase is waited for first, since the year's workflow starts only once its
    people are loaded and ``describe`` does not know it before)."""
    from temporalio.service import RPCError

    await until(handle, in_phase(CyclePhase.CEREMONY))

    async def determining() -> bool:
        try:
            desc = await handle.describe()
        except RPCError:  # Temporal busy: ask again
            return False
        return any(a.activity_type.name == "determine_awards" for a in desc.raw_description.pending_activities)

    while not await determining():
        st = await status(handle)
        if st.phase != CyclePhase.CEREMONY or st.counts.get("certificates") is not None:
            raise AssertionError(f"determine_awards ended before the fault (phase {st.phase})")
        await asyncio.sleep(0.1)
    await kill_and_restart(cluster, ["awards-1", "awards-2"])


LONGER = {"stack_restart_mid_cycle": 2.5}
"""Faults whose outage is long next to a compressed year's phases, and how many times longer their
year is. The whole cluster stopped and started again (seventeen processes, three NATS nodes, the
migrations) takes about a minute on a busy 2-core machine, longer than the desk stage of a 3.5
minute year: the stage's deadline passed while nothing ran, its late juror was never reminded, and
it closed short (measured: 112 s with the processes stopped one by one). A real stage lasts weeks,
so an outage of minutes changes nothing; the longer year keeps that proportion. The awards, ranking,
certificates and events must still be the undisturbed year's: its schedule is not part of them."""

FAULTS: dict[str, Fault] = {
    "nats_leader_kill9": nats_leader,
    "replica_per_service_kill9": replica_each_service,
    "worker_kill9_during_stage": worker_during_stage,
    "service_sigstop_20s": sigstop_service,
    "nats_node_partition": partition_node,
    "stack_restart_mid_cycle": restart_stack,
    "scoring_kill_as_stage_closes": scoring_as_stage_closes,
    "awards_kill_during_determine": awards_during_determine,
}


async def play(cluster: Cluster, year: int, fault: Fault | None = None, minutes: float = MINUTES) -> tuple[Outcome, list[str]]:
    """A compressed year with the fixed seed, ``minutes`` long, played on the cluster by the
    stack's two workers, with ``fault`` done to it on the way. Returns what it left and what went
    wrong."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    problems: list[str] = []
    game = asyncio.create_task(play_year(cluster.settings, cluster.url, SEED, year, minutes, worker=False, quiet=True, lead=LEAD))
    harm = None
    if fault is not None:
        temporal = await Client.connect(cluster.settings.temporal_address, data_converter=pydantic_data_converter)
        handle = temporal.get_workflow_handle(f"bfest-cycle-{year}")
        harm = asyncio.create_task(fault(cluster, handle))
    try:
        await asyncio.wait_for(asyncio.shield(game), timeout=minutes * 60 + 420)
    except Exception as exc:  # noqa: BLE001 - reported as the year not completing
        import traceback

        problems.append(f"year: {exc.__class__.__name__}: {exc}")
        traceback.print_exception(exc)
    if harm is not None:
        try:
            await asyncio.wait_for(harm, 120)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"fault: {exc.__class__.__name__}: {exc}")
    if not game.done():
        game.cancel()
    from temporalio.client import Client as C

    temporal = await C.connect(cluster.settings.temporal_address, data_converter=pydantic_data_converter)
    phase = None
    handle = temporal.get_workflow_handle(f"bfest-cycle-{year}")
    try:
        st = await status(handle, patience=60)
        phase = st.phase
        if phase != CyclePhase.COMPLETED:
            desc = await handle.describe()
            pending = [
                f"{a.activity_type.name} attempt {a.attempt}: {a.last_failure.message if a.HasField('last_failure') else ''}"
                for a in desc.raw_description.pending_activities
            ]
            problems.append(f"cycle {phase} stage={st.stage} attention={st.attention} pending={pending}")
            if desc.status.name == "RUNNING":  # it would load the cluster under the next years
                await handle.terminate(reason="the chaos suite's year did not complete")
    except Exception as exc:  # noqa: BLE001 - no cycle to ask
        problems.append(f"status: {exc.__class__.__name__}: {exc}")
    # The relays drain what the last commands wrote (bounded: a stuck one is the finding).
    out = Outcome(year, [], [], [], Counter(), 0, {}, 0, False)
    for _ in range(60):
        try:
            out = await outcome(cluster, year, phase)
        except Exception as exc:  # noqa: BLE001 - a year without results
            problems.append(f"outcome: {exc.__class__.__name__}: {exc}")
            break
        if not any(out.outbox_unsent.values()):
            break
        await asyncio.sleep(1)
    return out, problems


def compare(name: str, base: Outcome, run: Outcome, problems: list[str]) -> tuple[str, bool]:
    """The fault's line, and whether the run matched the undisturbed one in every respect.

    lost: events committed (outbox rows marked sent, the workflow's published events) missing from
    the stream, and per subject fewer than the undisturbed year. duplicated: an event in the stream
    twice, one no service or workflow recorded, per subject more than the undisturbed year, and a
    juror reminded more often than the stage schedules. The time-driven subjects (reminders) are
    not compared by count (see ``TIME_DRIVEN``)."""
    counted = (set(base.events) | set(run.events)) - TIME_DRIVEN
    lost = sum(max(0, base.events[s] - run.events[s]) for s in counted) + run.unpublished
    over_reminded = sum(max(0, n - REMINDERS_PER_STAGE) for n in run.reminders.values())
    duplicated = sum(max(0, run.events[s] - base.events[s]) for s in counted) + run.duplicate_ids + run.unrecorded + over_reminded
    identical = (run.awards, run.ranking, run.certificates) == (base.awards, base.ranking, base.certificates) and bool(run.awards)
    valid = all(c[0] for c in run.certificates)
    unsent = sum(run.outbox_unsent.values())
    ok = run.completed and identical and valid and lost == 0 and duplicated == 0 and unsent == 0 and run.dlq == 0 and not problems
    line = (
        f"fault={name} completed={'yes' if run.completed else 'no'} identical={'yes' if identical else 'no'} "
        f"lost={lost} duplicated={duplicated} outbox={unsent} dlq={run.dlq} certificates_valid={'yes' if valid else 'no'} "
        f"events={sum(run.events.values())} reminders={sum(run.reminders.values())}/{sum(base.reminders.values())}"
    )
    diff = {s: run.events[s] - base.events[s] for s in sorted(counted) if run.events[s] != base.events[s]}
    if diff or run.duplicate_ids or run.unrecorded or run.unpublished or over_reminded:
        named = {n: run.cycle_events[n] - base.cycle_events[n] for n in set(run.cycle_events) | set(base.cycle_events)}
        line += (
            f" differs={ {s.removeprefix('bfest.evt.'): d for s, d in diff.items()} } cycle_events={ {n: d for n, d in sorted(named.items()) if d} }"
            f" duplicate_ids={run.duplicate_ids} unrecorded={run.unrecorded} unpublished={run.unpublished} over_reminded={over_reminded}"
        )
    if problems:
        line += " problems=" + "; ".join(problems)[:300]
    return line, ok
