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
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bfest import operator as ops
from bfest import security
from bfest.operator import bfest_command
from bfest.simulation import Door, Simulator, agencies_of, demo_jurors, kbk_groups
from contracts import subjects
from contracts.awards import GetResults
from contracts.base import CyclePhase, EvaluationKind, new_request_id
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


def compress_schedule(base: CycleConfig, year: int, minutes: float, start: dt.datetime) -> dict[str, Any]:
    """``base``'s steps, criteria and awards for ``year`` on a schedule squeezed into ``minutes``
    from ``start`` (as a dict to adjust before validating): the call takes the first fifth, the
    jury stages share the middle, the ceremony comes last; reminders and objection windows shrink
    alike."""
    span = dt.timedelta(minutes=minutes)
    start = start.replace(microsecond=0)

    def at(share: float) -> dt.datetime:
        return (start + span * share).astimezone(JKT)

    data = base.model_dump(mode="python")
    data["year"] = year
    data["call"].update(opens=at(0.0), closes=at(0.22))
    data["verification"]["deadline"] = at(0.36)
    count = max(1, len(data["stages"]))
    ends = [0.56, 0.72, 0.86] if count == 3 else [0.36 + 0.5 * (i + 1) / count for i in range(count)]
    for stage, end in zip(data["stages"], ends, strict=False):
        stage["deadline"] = at(end)
        stage["reminders"] = [span * 0.06, span * 0.02]
        stage["objection_days"] = (span * 0.05).total_seconds() / 86400 if stage["objection_days"] else 0
    data["ceremony"]["date"] = at(0.95)
    return data


def practice_config(base: CycleConfig, year: int, minutes: float, start: dt.datetime) -> CycleConfig:
    """A cycle to practise steering on: ``base`` compressed into ``minutes`` (``bfest cycle start
    --minutes``)."""
    data = compress_schedule(base, year, minutes, start)
    _compress_tracks(data, minutes, start)
    data["name"] = f"Bureaucracy Fest practice {year} (the shape of {base.year}, {minutes:g} minutes)"
    return CycleConfig.model_validate(data)


def compressed_config(year: int, seed: int, minutes: float, start: dt.datetime, tracks: bool = False) -> CycleConfig:
    """The shipped config's shape (stages, criteria, awards), squeezed into ``minutes``, with
    a demo's numbers (fewer finalists, every result reviewed, one objection window); with
    ``tracks``, the all-tracks example's shape (cycles/2027-all-tracks.toml)."""
    from workflows.config import load_config

    base = load_config(ALL_TRACKS_CONFIG if tracks else shipped_config())
    data = compress_schedule(base, year, minutes, start)
    if tracks:
        _compress_tracks(data, minutes, start)
    data["seed"] = seed
    data["name"] = f"Bureaucracy Fest demo {year}"
    data["verification"]["rules"]["review_required"] = True
    span = dt.timedelta(minutes=minutes)
    for stage in data["stages"]:
        stage["objection_days"] = (span * 0.05).total_seconds() / 86400 if stage["key"] == "desk" else 0
        stage["advance"] = {"desk": 20, "interview": 12, "field": 12}.get(stage["key"], stage["advance"])
        stage["jurors_per_proposal"] = min(stage["jurors_per_proposal"], 3)
    for award in data["awards"]:
        if award["key"] == "top_inovasi":
            award.update(n=10, name_id="TOP 10 Inovasi Pelayanan Publik Jawa Timur", name_en="TOP 10 East Java Public Service Innovations")
        if award["key"] == "outstanding":
            award["n"] = 3
    return CycleConfig.model_validate(data)


ALL_TRACKS_CONFIG = Path(__file__).resolve().parent.parent / "cycles" / "2027-all-tracks.toml"


def _compress_tracks(data: dict[str, Any], minutes: float, start: dt.datetime) -> None:
    """The tracks on the demo's clock: SAKIP and RB during the call and the check, CETTAR after
    them (it reads their results and WBK's), KBK's call beside KOVABLIK's and its stages after."""
    span = dt.timedelta(minutes=minutes)

    def at(share: float) -> dt.datetime:
        return (start.replace(microsecond=0) + span * share).astimezone(JKT)

    tracks = data.get("tracks") or {}
    for name in ("sakip", "rb"):
        if tracks.get(name):
            tracks[name].update(opens=at(0.01), deadline=at(0.45))
    if tracks.get("cettar"):
        tracks["cettar"].update(opens=at(0.47), deadline=at(0.88))
    kbk = tracks.get("kbk")
    if not kbk:
        return
    kbk["call"].update(opens=at(0.01), closes=at(0.22))
    kbk["verification"]["deadline"] = at(0.36)
    for stage, end in zip(kbk["stages"], [0.7, 0.88], strict=False):
        stage.update(deadline=at(end), reminders=[span * 0.04], objection_days=0, jurors_per_proposal=min(stage["jurors_per_proposal"], 2))


def shipped_config() -> str:
    """The newest shipped cycle config (cycles/<year>.toml): the next cycle's."""
    from pathlib import Path

    here = Path(__file__).resolve().parent.parent / "cycles"
    return str(max(here.glob("[0-9][0-9][0-9][0-9].toml")))


async def _healthy(client: CommandClient | Door) -> list[str]:
    healthy = []
    for service in subjects.SERVICES:
        reply = await client.request_raw(subjects.command(service, "health"), b"{}", timeout=2)
        if reply.ok:
            healthy.append(service)
    return healthy


async def _free_year(temporal: Any, first: int) -> int:
    taken = {r["year"] for r in await ops.list_cycles(temporal)}
    year = first
    while year in taken:
        year += 1
    return year


PRACTICE_YEAR = 2099
"""The year the README's practice cycle uses (far from any real one)."""


async def run_demo(
    seed: int = 1, year: int | None = None, minutes: float = 3.0, leave_running: bool = True, as_json: bool = False, tracks: bool = False
) -> dict[str, Any]:
    from bfest.devstack import DevStack

    stack = DevStack()
    console.rule("[bold]Bureaucracy Fest — demo cycle")
    info = await asyncio.to_thread(stack.start, True, False)
    # The stack may have put a server on a free port: the demo talks to the one it has.
    settings = get_settings().model_copy(
        update={"nats_url": info.nats_url, "temporal_address": info.temporal_address, "temporal_ui_url": info.temporal_ui_url}
    )
    try:
        summary = await _demo(settings, info, seed, year, minutes, as_json, tracks)
    finally:
        if not leave_running:
            await asyncio.to_thread(stack.stop)
    stays = leave_running and bool(info.started)
    if stays:
        # The demo's own worker has stopped with it; the stack that stays gets one, so a cycle
        # can still be queried (`bfest cycle status`) and started.
        await asyncio.to_thread(stack.start_worker)
    if leave_running:
        await _say_what_next(settings, summary["year"], stays, info)
    if stays:
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


async def _portal_hint(portal_url: str, year: int) -> None:
    """The portal's pages for the demo's year, and a one-time link for the operator's account."""
    from bfest.portal import invite

    console.print(f"Portal: {portal_url}/results?year={year} (results; each certificate checks at /verify/<code>)", highlight=False, soft_wrap=True)
    try:
        operator = await invite("operator", "biro-org", "Biro Organisasi", check=False)
    except Exception as exc:  # noqa: BLE001 - a hint, never the demo's failure
        console.print(f"  (no operator account: {exc})", highlight=False)
        return
    console.print(f"  operator account biro-org: {portal_url}/set-password/{operator.token} → then {portal_url}/operator?year={year}", highlight=False, soft_wrap=True)
    console.print("  more accounts: .venv/bin/bfest portal invite --role juror --id J01 (or unit, agency, verifier)", highlight=False, soft_wrap=True, markup=False)


async def _say_what_next(settings: Any, year: int, stays: bool, info: Any) -> None:
    """The first-hour walk, with the year the demo used and a ``bfest`` that works from here."""
    bfest = bfest_command()
    try:
        practice = await _free_year(await ops.client_for(settings), PRACTICE_YEAR)
    except ops.OperatorError:
        practice = PRACTICE_YEAR
    config = Path(shipped_config())
    with contextlib.suppress(ValueError):
        config = config.relative_to(Path.cwd())
    if stays:
        console.print("\nThe stack is still running; Ctrl-C here (or `" + bfest + " dev down` in another terminal) stops it.")
    else:
        console.print(f"\nThe stack the demo used is still running (owner pid {info.owner}); `{bfest} dev down` stops it.")
    lines = [
        f"{bfest} cycle status --year {year}",
        f"{bfest} cycle history --year {year}",
        f"{bfest} cycle list",
        f"{bfest} cycle start --year {practice} --config {config} --minutes 30   # a cycle to steer",
        f"{bfest} cycle extend --year {practice} --stage call --by 2m --reason \"portal outage\"",
        f"{bfest} cycle close-stage --year {practice} --stage call",
        f"{bfest} cycle cancel --year {practice} --yes",
    ]
    console.print("Try, in another terminal:", highlight=False)
    for line in lines:
        console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
    console.print(f"Temporal UI: {settings.temporal_ui_url} (search `BfestYear = {year}`)", highlight=False, soft_wrap=True)
    if getattr(info, "portal_url", None):
        await _portal_hint(info.portal_url, year)


async def _demo(settings: Any, info: Any, seed: int, year: int | None, minutes: float, as_json: bool, tracks: bool = False) -> dict[str, Any]:
    summary, results = await play_year(settings, getattr(info, "nats_url", settings.nats_url), seed, year, minutes, tracks=tracks)
    _print_results(results, settings)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    return summary


async def play_year(
    settings: Any,
    nats_url: str,
    seed: int,
    year: int | None,
    minutes: float,
    worker: bool = True,
    quiet: bool = False,
    lead: float = 3.0,
    tracks: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One compressed year on a running stack, its people simulated: the summary and the results.
    ``worker``: run a Temporal worker here too (the demo); without, the stack's workers run the
    cycle (the chaos suite, which kills them). ``lead``: seconds until the call opens. The people retry what an outage refuses
    (:class:`bfest.simulation.Door`), so a restarting service or NATS node slows the year."""
    from bfest.files.participants import load_default_participants

    client = await Door.open(nats_url, PORTAL)  # the simulated people
    operator = await Door.open(nats_url, "cli")
    temporal = await ops.client_for(settings)
    try:
        healthy = await _healthy(client)
        missing = sorted(set(subjects.SERVICES) - set(healthy))
        if missing:
            raise ops.OperatorError(f"services not answering on {nats_url}: {', '.join(missing)} (see var/logs/)")
        year = year or await _free_year(temporal, dt.date.today().year)
        # Indented as a block, so a long line wraps under itself in a narrow terminal.
        log = (lambda text: None) if quiet else (lambda text: console.print(Padding(Text(text, style="dim"), (0, 0, 0, 2))))  # noqa: E731
        sim = Simulator(client, year, seed, log=log, operator=operator)
        participants = load_default_participants()
        groups = kbk_groups(participants, 30, seed) if tracks else []
        with console.status("loading participants and jurors…"):
            await sim.load_participants(participants + groups)
            await sim.load_jurors(demo_jurors(45, seed))
        console.print(f"loaded {len(participants)} participants (East Java) and 45 jurors")
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lead)
        cfg = compressed_config(year, seed, minutes, start, tracks=tracks)
        sim.call_closes = cfg.call.closes.date()  # innovations' ages count to the call's close

        # A read model catching up makes an activity retry (not_ready): normal, and visible in the
        # workflow's history; keep the SDK's per-attempt warnings off the demo's screen.
        logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
        # The screen tells the story: the worker and bridge running in this process log only
        # what needs attention (the services' own logs are under var/logs/).
        configure_logging("WARNING", settings.log_json)
        async with running_worker(temporal, nats_url) if worker else contextlib.nullcontext():
            handle = await ops.start_cycle(temporal, cfg)
            console.print(f"started [bold]{handle.id}[/] — Temporal UI:")
            console.print(f"  {ops.ui_link(settings, handle.id)}", highlight=False, soft_wrap=True)
            people = TrackPeople(sim, participants, groups) if tracks else None
            await _play(sim, temporal, handle, cfg, nats_url, people)
            result = await _through_outages(handle.result)
        results = await client.call(GetResults(request_id=new_request_id(), cycle_year=year))
    finally:
        await client.close()
        await operator.close()
    summary = {
        "year": year,
        "seed": seed,
        "counts": result.counts,
        "stages": {s.stage: {"entrants": s.entrants, "shortlisted": s.shortlisted} for s in result.stages},
        "awards": {
            c["key"]: [w.get("title") or w.get("unit_name") or w["unit_code"] for w in c["winners"]] for c in results["categories"]
        },
        "results_dir": results.get("files", {}).get("html"),
        "retries": client.retries + operator.retries,
    }
    return summary, results


class TrackPeople:
    """The tracks' people in the demo: evaluators and reviewers (SAKIP, RB, CETTAR), work-culture
    groups and their agencies (KBK), each acting once its track is at their step."""

    def __init__(self, sim: Simulator, participants: list[Any], groups: list[Any]) -> None:
        self.sim, self.groups, self.done = sim, groups, set[str]()
        self.subjects = agencies_of(participants)[:40]
        self.unit_agency = {p.code: p.parent_code for p in participants if p.parent_code}

    async def act(self, status: Any, cfg: CycleConfig, say: Any) -> None:
        for view in status.tracks:
            step = f"{view.track}:{view.phase}"
            if view.state != "running" or step in self.done:
                continue
            if view.track in ("sakip", "rb", "cettar") and view.phase == "evaluation":
                self.done.add(step)
                stats = await self.sim.evaluate(EvaluationKind(view.track), self.subjects)
                say(f"{view.track}: {stats['entered']} sheets entered, {stats['returned']} returned and corrected, {stats['approved']} approved")
            elif view.phase == "kbk_call":
                self.done.add(step)
                units = {g.parent_code: self.unit_agency[g.parent_code] for g in self.groups}
                stats = await self.sim.run_risalah(self.groups, units)
                say(f"kbk: {stats['submitted']} risalah submitted, {stats['forwarded']} forwarded, {stats['refused_over_quota']} over quota")
            elif view.phase == "kbk_verification":
                try:
                    checked = await self.sim.verify_kbk()
                except CommandError as exc:
                    if exc.code == "not_ready" or "not_started" in exc.code:
                        continue
                    raise
                self.done.add(step)
                say(f"kbk: {checked} risalah checked by a verifier")
            elif cfg.tracks.kbk is not None and (stage := next((s for s in cfg.tracks.kbk.stages if s.key == view.phase), None)):
                with contextlib.suppress(CommandError):  # not open yet: the next look scores it
                    if await self.sim.score_stage(stage, None, include_late=True) == 0:
                        self.done.add(step)


async def _play(sim: Simulator, temporal: Any, handle: Any, cfg: CycleConfig, nats_url: str, people: TrackPeople | None = None) -> None:
    done: set[str] = set()
    reminded: set[str] = set()
    # Watches the reminders, changes nothing; reconnects for ever (a NATS node may restart).
    nc = await security.connect(nats_url, AUDITOR, max_reconnect_attempts=-1, reconnect_time_wait=0.5)

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
                st = await sim.call(StageStatus(request_id=new_request_id(), cycle_year=sim.year, stage=key))
            except CommandError:
                continue
            progress.update(tasks[key], total=st["assignments"], completed=st["scored"])

    try:
        with progress:
            while True:
                status = await _through_outages(lambda: handle.query(CycleWorkflow.status))
                phase = status.phase
                await settle(status.stage if phase == CyclePhase.JURY else None)
                if phase in (CyclePhase.COMPLETED, CyclePhase.FAILED, CyclePhase.CANCELLED):
                    break
                desc = await _through_outages(handle.describe)
                if desc.status.name != "RUNNING":
                    await settle(None)
                    break
                if people is not None:
                    await people.act(status, cfg, progress.console.print)
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
                        st = await sim.call(StageStatus(request_id=new_request_id(), cycle_year=sim.year, stage=key, per_juror=True))
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
                                until = _more_time(stage.deadline, cfg.verification.deadline)
                                await ops.extend(
                                    temporal, sim.year, key, until, "Evaluators asked for more time (demo)", "biro-organisasi"
                                )
                                progress.console.print(f"operator: extended {key} to {until.astimezone(JKT):%H:%M:%S} WIB")
                            await sim.score_stage(stage, late_juror if key == cfg.stages[0].key else None, include_late=False)
                        if late_juror and key == cfg.stages[0].key and late_juror in reminded and f"{key}:late" not in done:
                            done.add(f"{key}:late")
                            progress.console.print(f"juror {late_juror} was reminded and scores now")
                            await sim.score_stage(stage, None, include_late=True)
                        cstat = await _through_outages(lambda c=child: c.query(JuryStageWorkflow.status))
                        if cstat["state"] == "objections" and f"{key}:objection" not in done:
                            done.add(f"{key}:objection")
                            shortlist = await _shortlist(sim, key)
                            if shortlist:
                                oid = await sim.object_and_decide(key, shortlist[0])
                                progress.console.print(f"uji publik: objection {oid} against {shortlist[0]} filed and rejected")
                await asyncio.sleep(0.4)
    finally:
        await nc.drain()


def _more_time(deadline: dt.datetime, opened: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """The demo operator's extension of a stage planned from ``opened`` to ``deadline``: a quarter
    of the time left more; a demo that an outage slowed past the deadline gives the jurors the
    stage's planned length from now (an extension into the past is refused)."""
    now = now or dt.datetime.now(dt.UTC)
    return max(deadline + (deadline - now) * 0.25, now + (deadline - opened))


async def _through_outages(ask: Any, patience: float = 180.0) -> Any:
    """Ask Temporal again while it (or the worker that answers a query) is restarting, as the
    people ask the services again: an outage slows the demo, it does not end it."""
    from temporalio.service import RPCError

    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    wait = 0.2
    while True:
        try:
            return await ask()
        except RPCError:
            if loop.time() + wait > give_up:
                raise
        await asyncio.sleep(wait)
        wait = min(wait * 2, 2.0)


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
