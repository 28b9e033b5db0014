"""``bfest demo``: a whole Bureaucracy Fest year in a few minutes on the embedded stack.

It brings up the stack (or uses a running one), loads the East Java participants and a juror
pool, starts a cycle whose schedule is compressed to minutes, and plays everyone's part through
the services' commands while the real workflow runs on Temporal: units submit, agencies forward
(a few beyond the quota, refused), verifiers check, jurors score (a harsh, a lenient and a late
one who is reminded), an operator extends a deadline, the public objects. Then it prints the
awards and where the certificates and the results page are.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bfest import operator as ops
from bfest import security
from bfest.simulation import Simulator, demo_jurors
from contracts import subjects
from contracts.awards import GetResults
from contracts.base import CyclePhase
from contracts.cycle import CycleConfig, stage_workflow_id
from contracts.published import score_text
from contracts.scoring import ReminderDue, StageStatus
from services.common.authz import AUDITOR, PORTAL
from services.common.logging import configure_logging
from services.common.messaging import CommandClient, CommandError
from services.common.settings import get_settings
from workflows.cycle import CycleWorkflow
from workflows.stage import JuryStageWorkflow
from workflows.worker import running_worker

console = Console()
JKT = dt.timezone(dt.timedelta(hours=7))


def compressed_config(year: int, seed: int, minutes: float, start: dt.datetime) -> CycleConfig:
    """The shipped 2026 shape (stages, criteria, awards), squeezed into ``minutes``."""
    from workflows.config import load_config

    base = load_config(_shipped_config())
    span = dt.timedelta(minutes=minutes)

    def at(share: float) -> dt.datetime:
        return (start + span * share).astimezone(JKT)

    data = base.model_dump(mode="python")
    data["year"], data["seed"] = year, seed
    data["name"] = f"Bureaucracy Fest demo {year}"
    data["call"].update(opens=at(0.0), closes=at(0.22))
    data["verification"]["deadline"] = at(0.36)
    data["verification"]["rules"]["review_required"] = True
    ends = [0.56, 0.72, 0.86]
    for stage, end in zip(data["stages"], ends, strict=False):
        stage["deadline"] = at(end)
        stage["reminders"] = [span * 0.06, span * 0.02]
        stage["objection_days"] = (span * 0.05).total_seconds() / 86400 if stage["key"] == "desk" else 0
        stage["advance"] = {"desk": 20, "interview": 12, "field": 12}.get(stage["key"], stage["advance"])
        stage["jurors_per_proposal"] = min(stage["jurors_per_proposal"], 3)
    data["ceremony"]["date"] = at(0.95)
    for award in data["awards"]:
        if award["key"] == "top_inovasi":
            award.update(n=10, name_id="TOP 10 Inovasi Pelayanan Publik Jawa Timur", name_en="TOP 10 East Java Public Service Innovations")
        if award["key"] == "outstanding":
            award["n"] = 3
    return CycleConfig.model_validate(data)


def _shipped_config() -> str:
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent / "cycles" / "2026.toml"
    return str(here)


async def _healthy(client: CommandClient) -> list[str]:
    healthy = []
    for service in subjects.SERVICES:
        reply = await client.request_raw(subjects.command(service, "health"), b"{}", timeout=2)
        if reply.ok:
            healthy.append(service)
    return healthy


async def _next_year(temporal: Any) -> int:
    taken = {r["year"] for r in await ops.list_cycles(temporal)}
    year = dt.date.today().year
    while year in taken:
        year += 1
    return year


async def run_demo(
    seed: int = 1, year: int | None = None, minutes: float = 3.0, leave_running: bool = True, as_json: bool = False
) -> dict[str, Any]:
    from bfest.devstack import DevStack

    settings = get_settings()
    stack = DevStack()
    console.rule("[bold]Bureaucracy Fest — demo cycle")
    info = await asyncio.to_thread(stack.start, True, False)
    try:
        summary = await _demo(settings, info, seed, year, minutes, as_json)
    finally:
        if not leave_running:
            await asyncio.to_thread(stack.stop)
    if leave_running and getattr(info, "started", None):
        # The demo's own worker has stopped with it; the stack that stays gets one, so a cycle
        # can still be queried (`bfest cycle status`) and started.
        await asyncio.to_thread(stack.start_worker)
        console.print(
            f"\nThe stack is still running: explore the Temporal UI at [bold]{settings.temporal_ui_url}[/] "
            f"(search `BfestYear = {summary['year']}`), try `bfest cycle status --year {summary['year']}` and "
            f"`bfest cycle history --year {summary['year']}`. Stop it with `bfest dev down` (or Ctrl-C here)."
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
            await stop.wait()
        console.print("stopping the stack…")
        await asyncio.to_thread(stack.stop)
        console.print("stopped.")
    return summary


async def _demo(settings: Any, info: Any, seed: int, year: int | None, minutes: float, as_json: bool) -> dict[str, Any]:
    from services.registration.participants_io import load_default_participants

    nats_url = getattr(info, "nats_url", settings.nats_url)
    client = await CommandClient.connect(nats_url, timeout=30, identity=PORTAL)  # the simulated people
    operator = await CommandClient.connect(nats_url, timeout=30)
    temporal = await ops.client_for(settings)
    try:
        healthy = await _healthy(client)
        missing = sorted(set(subjects.SERVICES) - set(healthy))
        if missing:
            raise ops.OperatorError(f"services not answering on {nats_url}: {', '.join(missing)} (see var/logs/)")
        year = year or await _next_year(temporal)
        sim = Simulator(client, year, seed, log=lambda text: console.print(f"  [dim]{text}[/]"), operator=operator)
        participants = load_default_participants()
        with console.status("loading participants and jurors…"):
            await sim.load_participants(participants)
            await sim.load_jurors(demo_jurors(45, seed))
        console.print(f"loaded {len(participants)} participants (East Java) and 45 jurors")
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
        cfg = compressed_config(year, seed, minutes, start)
        sim.call_closes = cfg.call.closes.date()  # innovations' ages count to the call's close

        # A read model catching up makes an activity retry (not_ready): normal, and visible in the
        # workflow's history; keep the SDK's per-attempt warnings off the demo's screen.
        logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
        # The screen tells the story: the worker and bridge running in this process log only
        # what needs attention (the services' own logs are under var/logs/).
        configure_logging("WARNING", settings.log_json)
        async with running_worker(temporal, nats_url):
            handle = await ops.start_cycle(temporal, cfg)
            console.print(f"started [bold]{handle.id}[/] — Temporal UI: {ops.ui_link(settings, handle.id)}")
            await _play(sim, temporal, handle, cfg, nats_url)
            result = await handle.result()
        results = await client.call(GetResults(cycle_year=year))
    finally:
        await client.close()
        await operator.close()
    _print_results(results, settings)
    summary = {
        "year": year,
        "seed": seed,
        "counts": result.counts,
        "stages": {s.stage: {"entrants": s.entrants, "shortlisted": s.shortlisted} for s in result.stages},
        "awards": {
            c["key"]: [w.get("title") or w.get("unit_name") or w["unit_code"] for w in c["winners"]] for c in results["categories"]
        },
        "results_dir": results.get("files", {}).get("html"),
    }
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return summary


async def _play(sim: Simulator, temporal: Any, handle: Any, cfg: CycleConfig, nats_url: str) -> None:
    done: set[str] = set()
    reminded: set[str] = set()
    nc = await security.connect(nats_url, AUDITOR)  # watches the reminders, changes nothing

    async def on_reminder(msg: Any) -> None:
        with contextlib.suppress(Exception):
            reminded.add(ReminderDue.model_validate_json(msg.data).juror_id)

    await nc.subscribe(ReminderDue.subject(), cb=on_reminder)
    progress = Progress(
        TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    tasks: dict[str, Any] = {}
    late_juror: str | None = None

    async def settle(current: str | None) -> None:
        """Bring the bars of stages already left to their final counts (a stage can finish
        between two looks, with its last scores and a juror added on divergence)."""
        for key in [k for k in tasks if k not in ("call", current)]:
            try:
                st = await sim.call(StageStatus(cycle_year=sim.year, stage=key))
            except CommandError:
                continue
            progress.update(tasks[key], total=st["assignments"], completed=st["scored"])

    try:
        with progress:
            while True:
                status = await handle.query(CycleWorkflow.status)
                phase = status.phase
                await settle(status.stage if phase == CyclePhase.JURY else None)
                if phase in (CyclePhase.COMPLETED, CyclePhase.FAILED, CyclePhase.CANCELLED):
                    break
                desc = await handle.describe()
                if desc.status.name != "RUNNING":
                    await settle(None)
                    break
                if phase == CyclePhase.CALL_OPEN and "call" not in done:
                    done.add("call")
                    tasks["call"] = progress.add_task("call for proposals", total=None)
                    units = await sim.units_by_agency(24)
                    stats = await sim.run_call(units, per_agency=3, quota=cfg.call.quota_per_agency)
                    nominees = [u for us in list(units.values())[:6] for u in us[:1]]
                    await sim.submit_lkes(nominees)
                    progress.update(tasks["call"], total=stats["submitted"], completed=stats["submitted"])
                    progress.console.print(
                        f"call: {stats['submitted']} submitted, {stats['forwarded']} forwarded, "
                        f"{stats['refused_over_quota']} refused over quota, {stats['returned']} returned and resubmitted, "
                        f"{stats['withdrawn']} withdrawn; {len(nominees)} WBK evaluation sheets"
                    )
                elif phase == CyclePhase.VERIFICATION and "verification" not in done:
                    try:
                        v = await sim.verify_all()
                    except CommandError as exc:
                        if exc.code == "not_ready" or "not_started" in exc.code:
                            await asyncio.sleep(0.5)
                            continue
                        raise
                    done.add("verification")
                    progress.console.print(f"verification: {v['confirmed']} confirmed, {v['overridden']} overridden by a verifier")
                elif phase == CyclePhase.JURY and status.stage:
                    key = status.stage
                    stage = cfg.stage(key)
                    assert stage is not None
                    try:
                        st = await sim.call(StageStatus(cycle_year=sim.year, stage=key, per_juror=True))
                    except CommandError:
                        st = None
                    child = temporal.get_workflow_handle(stage_workflow_id(sim.year, key))
                    if st is not None:
                        if key not in tasks:
                            tasks[key] = progress.add_task(f"jury: {stage.name[:26]}", total=st["assignments"])
                        progress.update(tasks[key], total=st["assignments"], completed=st["scored"])
                        if st["state"] == "open" and f"{key}:scored" not in done:
                            done.add(f"{key}:scored")
                            if key == cfg.stages[0].key:
                                late_juror = sorted(j["juror_id"] for j in st["per_juror"])[-1]
                                until = stage.deadline + (stage.deadline - dt.datetime.now(dt.UTC)) * 0.25
                                await ops.extend(
                                    temporal, sim.year, key, until, "Evaluators asked for more time (demo)", "biro-organisasi"
                                )
                                progress.console.print(f"operator: extended {key} to {until.astimezone(JKT):%H:%M:%S} WIB")
                            await sim.score_stage(stage, late_juror if key == cfg.stages[0].key else None, include_late=False)
                        if late_juror and key == cfg.stages[0].key and late_juror in reminded and f"{key}:late" not in done:
                            done.add(f"{key}:late")
                            progress.console.print(f"juror {late_juror} was reminded and scores now")
                            await sim.score_stage(stage, None, include_late=True)
                        cstat = await child.query(JuryStageWorkflow.status)
                        if cstat["state"] == "objections" and f"{key}:objection" not in done:
                            done.add(f"{key}:objection")
                            shortlist = await _shortlist(sim, key)
                            if shortlist:
                                oid = await sim.object_and_decide(key, shortlist[0])
                                progress.console.print(f"uji publik: objection {oid} against {shortlist[0]} filed and rejected")
                await asyncio.sleep(0.4)
    finally:
        await nc.drain()


async def _shortlist(sim: Simulator, stage: str) -> list[str]:
    from contracts.scoring import GetShortlist

    try:
        view = await sim.call(GetShortlist(cycle_year=sim.year, stage=stage))
    except CommandError:
        return []
    return [r["proposal_id"] for r in view["rows"]]


def _print_results(results: dict[str, Any], settings: Any) -> None:
    table = Table(title=f"Bureaucracy Fest {results['cycle_year']} — awards", show_lines=False)
    for col in ("award", "#", "winner", "innovation", "score"):
        table.add_column(col)
    for cat in results["categories"]:
        if not cat["winners"]:
            table.add_row(cat["name_id"], "", f"[dim]{cat.get('empty_reason') or 'no winner'}[/]", "", "")
        for w in cat["winners"]:
            table.add_row(
                cat["name_id"],
                str(w.get("rank", "")),
                w.get("unit_name") or w.get("unit_code"),
                w.get("title") or "",
                score_text(w.get("score")),
            )
    console.print(table)
    files = results.get("files", {})
    if files:
        console.print("results: " + ", ".join(f"{k}: {v}" for k, v in files.items()))
