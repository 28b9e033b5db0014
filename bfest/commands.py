"""The operator's commands: ``bfest cycle …``, ``bfest participants import``, ``bfest jurors import``,
``bfest demo``. Each failure is one line on stderr and exit code 1."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bfest import operator as ops
from services.common.settings import get_settings

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except ops.OperatorError as exc:
        err.print(f"[bold red]error:[/] {escape(ops.to_seconds(str(exc)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ValidationError as exc:  # an option the command's model refuses, e.g. a too short --reason
        from workflows.config import field_problems

        problems = "; ".join(f"--{path.replace('_', '-')}: {msg}" for path, msg in field_problems(exc, whole="input"))
        err.print(f"[bold red]error:[/] invalid option {problems}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback; details with BFEST_DEBUG=1
        import os

        if os.environ.get("BFEST_DEBUG"):
            raise
        err.print(f"[bold red]error:[/] {exc.__class__.__name__}: {escape(ops.to_seconds(str(exc)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(ops.JAKARTA).strftime("%d %b %Y %H:%M:%S WIB")


def _when_short(value: Any) -> str:
    """A deadline in a table column: WIB (the column says so), to the second."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(ops.JAKARTA).strftime("%d %b %Y %H:%M:%S")


def _when_minute(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(ops.JAKARTA).strftime("%d %b %Y %H:%M")


def _hanging(rows: list[tuple[str, str]]) -> Table:
    """Labelled lines whose long text wraps under itself (not under the label)."""
    grid = Table.grid(padding=(0, 1), pad_edge=True)
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column()
    for label, text in rows:
        grid.add_row(f"  {label}", Text(text))
    return grid


def _left(value: Any, now: dt.datetime) -> str:
    if value is None:
        return ""
    delta = value - now
    if delta.total_seconds() <= 0:
        return "(due)"
    days, rem = divmod(int(delta.total_seconds()), 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    return f"({days}d {hours}h left)" if days else f"({hours}h {minutes}m left)"


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "operator"


def _schedule(cfg: Any) -> Table:
    """What a cycle config would run, step by step, in WIB."""
    name = cfg.name if str(cfg.year) in cfg.name else f"{cfg.name} {cfg.year}"
    table = Table(title=f"{name} — schedule", title_justify="left")
    table.add_column("step")
    table.add_column("deadline or date (WIB)")
    table.add_column("details")
    call = cfg.call
    table.add_row("call for proposals", _when(call.closes), f"opens {_when(call.opens)}; quota {call.quota_per_agency} per agency")
    table.add_row("verification", _when(cfg.verification.deadline), "administrative check and WBK evaluation")
    for stage in cfg.stages:
        details = (
            f"{stage.key}: {stage.jurors_per_proposal} jurors per proposal, {len(stage.criteria)} criteria, "
            f"advance {stage.advance}"
        )
        if stage.objection_days:
            details += f", then {stage.objection_days:g} day(s) of public objections"
        table.add_row(stage.name, _when(stage.deadline), details)
    _track_rows(table, cfg)
    ceremony = cfg.ceremony
    awards = ", ".join(f"{a.key} ({a.rule}{' ' + str(a.n) if a.n else ''})" for a in cfg.awards)
    table.add_row("award ceremony", _when(ceremony.date), f"{ceremony.venue}; awards: {awards}")
    return table


def _track_rows(table: Table, cfg: Any) -> None:
    """The tracks beside KOVABLIK, each in its own workflow bfest-cycle-<year>-<track>."""
    for name, ev in cfg.tracks.evaluations().items():
        table.add_row(f"track {name}", _when(ev.deadline), f"opens {_when(ev.opens)}; rubric {ev.rubric}")
    kbk = cfg.tracks.kbk
    if kbk is not None:
        table.add_row("track kbk: call", _when(kbk.call.closes), f"opens {_when(kbk.call.opens)}; quota {kbk.call.quota_per_agency} per agency")
        table.add_row("track kbk: verification", _when(kbk.verification.deadline), "administrative check of the risalah")
        for stage in kbk.stages:
            table.add_row(f"track kbk: {stage.name}", _when(stage.deadline), f"{stage.key}: advance {stage.advance}")


def register(cycle_app: typer.Typer, participants_app: typer.Typer, jurors_app: typer.Typer, app: typer.Typer) -> None:
    @cycle_app.command("start")
    def cycle_start(
        year: int = typer.Option(..., "--year", help="The cycle's year (must match the config, except with --minutes)."),
        config: Path = typer.Option(..., "--config", help="The cycle config (TOML), e.g. cycles/2027.toml."),
        allow_past: bool = typer.Option(False, "--allow-past", help="Start even if the call has already closed (the past steps run at once)."),
        check: bool = typer.Option(False, "--check", help="Only validate the config and print the schedule it would run; start nothing (needs no Temporal)."),
        minutes: float | None = typer.Option(
            None,
            "--minutes",
            min=5,
            help="A practice cycle: the config's steps, criteria and awards on a schedule compressed into this many minutes "
            "from now (the config's dates are not used, and --year may be any year without a cycle, e.g. 2099).",
        ),
    ) -> None:
        """Validate the config, then start the cycle's workflow (bfest-cycle-<year>)."""
        from workflows.config import ConfigError, load_config

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            err.print(f"[bold red]error:[/] {exc.source} has {len(exc.problems)} problem(s):", highlight=False)
            for path, msg in exc.problems:
                err.print(f"  • [bold]{path}[/]: {msg}", highlight=False)
            raise typer.Exit(1) from None
        if minutes is not None:
            from bfest.demo import practice_config

            try:
                cfg = practice_config(cfg, year, minutes, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
            except ValidationError as exc:
                from workflows.config import field_problems

                problems = "; ".join(f"{path}: {msg}" for path, msg in field_problems(exc))
                err.print(f"[bold red]error:[/] cannot compress {config} into {minutes:g} minutes: {problems}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
        if cfg.year != year:
            err.print(f"[bold red]error:[/] --year {year} but {config} is for {cfg.year}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        if cfg.call.closes <= dt.datetime.now(dt.UTC) and not allow_past:
            err.print(
                f"[bold red]error:[/] call.closes ({cfg.call.closes.isoformat()}) is already past: the cycle would rush through "
                "every past deadline at once; use a future schedule, or --allow-past to do that on purpose"
                " (as when starting again a year that failed or was cancelled)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1)
        if check:
            console.print(_schedule(cfg))
            console.print(f"[green]valid[/]: {config} would start cycle {year} (bfest cycle start without --check starts it)")
            return

        async def go() -> str:
            client = await ops.client_for()
            handle = await ops.start_cycle(client, cfg)
            return handle.id

        wid = run(go())
        settings = get_settings()
        console.print(f"[green]started[/] cycle {year}: workflow [bold]{wid}[/]")
        console.print(f"Temporal UI: {ops.ui_link(settings, wid)}")

    @cycle_app.command("status")
    def cycle_status(year: int = typer.Option(..., "--year"), as_json: bool = typer.Option(False, "--json")) -> None:
        """The cycle's current stage, deadline, counts and jury-stage progress."""

        async def go() -> Any:
            from bfest.observe import readiness_warnings

            st = await ops.status(await ops.client_for(), year)
            running_ = [s.key for s in st.stages if s.state == "running"]
            live, unready = await asyncio.gather(_live_progress(year, running_), readiness_warnings(get_settings().nats_url))
            return st, live, unready

        st, live, unready = run(go())
        if as_json:
            data = st.model_dump(mode="json")
            data["live"] = live
            data["services_not_ready"] = unready
            print(json.dumps(data))
            return
        now = dt.datetime.now(dt.UTC)
        lines = [
            f"[bold]phase[/]     {st.phase.value}" + (f" — stage [bold]{st.stage}[/]" if st.stage else ""),
            f"[bold]deadline[/]  {_when(st.deadline)} {_left(st.deadline, now)}",
        ]
        if st.error:
            lines.append(f"[bold red]failed[/]    {escape(st.error)}")
        if st.counts:
            lines.append("[bold]counts[/]    " + ", ".join(f"{k}={v}" for k, v in st.counts.items()))
        table = Table(box=None, pad_edge=False)
        table.add_column("stage")
        table.add_column("state")
        table.add_column("deadline (WIB)", no_wrap=True, min_width=len(_when_short(now)))
        for col in ("entrants", "scored", "shortlist"):
            table.add_column(col, justify="right", no_wrap=True)
        notes: list[tuple[str, str]] = []
        for s in st.stages:
            o = s.outcome
            now_ = live.get(s.key)
            entrants = str(o.entrants) if o else str(now_["proposals"]) if now_ else ""
            if o and s.state == "done":
                scored = f"{o.scored}/{o.assignments}"
            elif now_:
                scored = f"{now_['scored']}/{now_['assignments']}"
            else:
                scored = ""
            table.add_row(s.key, s.state, _when_short(s.deadline), entrants, scored, str(o.shortlisted) if o and s.state == "done" else "")
            announced = (o.final_announcement_no or o.announcement_no) if o else None
            if announced:
                notes.append((f"{s.key}:", f"shortlist announced as {announced}"))
        for a in st.operator_actions:
            until = f" until {_when(a['until'])}" if a.get("until") else ""
            notes.append(("operator:", f"{a['action']} {a['stage']}{until} by {a['operator']} — {a['reason']}"))
        for key, winners in st.awards.items():
            notes.append(("award:", f"{key}: {len(winners)} winner(s)"))
        console.print(Panel("\n".join(lines), title=f"Bureaucracy Fest {year}", expand=False))
        console.print(table)
        if st.tracks:
            console.print(_tracks_table(st.tracks, now))
        if st.attention:
            console.print(Text.from_markup(f"[bold yellow]waiting for the operator:[/] {escape(st.attention)}"))
        for warning in [*st.warnings, *unready]:
            console.print(Text.from_markup(f"[yellow]warning:[/] {escape(warning)}"))
        if notes:
            console.print(_hanging(notes))

    def _tracks_table(tracks: list[Any], now: dt.datetime) -> Table:
        """One line per track (SAKIP, RB, CETTAR, KBK): its state, what it does now, its deadline."""
        table = Table(box=None, pad_edge=False)
        for col in ("track", "state", "now", "deadline (WIB)", "counts"):
            table.add_column(col, no_wrap=col != "counts")
        for t in tracks:
            counts = ", ".join(f"{k}={v}" for k, v in t.counts.items())
            table.add_row(t.track, t.state, t.phase or "", _when_short(t.deadline) if t.deadline else "", counts)
        return table

    @cycle_app.command("history")
    def cycle_history(
        year: int = typer.Option(..., "--year"),
        as_json: bool = typer.Option(False, "--json", help="One JSON array, for machines."),
    ) -> None:
        """The cycle's timeline from its Temporal event history (stages included)."""

        async def go() -> Any:
            return await ops.history(await ops.client_for(), year)

        entries = run(go())
        if as_json:
            print(ops.entries_json(entries))
            return
        colours = {"failure": "red", "retry": "yellow", "update": "magenta", "signal": "cyan", "transition": "bold green"}
        # A grid, so a long line wraps under its own text, at a space, not under the date.
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for e in entries:
            c = colours.get(e.kind, "")
            grid.add_row(_when(e.at), e.workflow, Text(e.text, style=c))
        console.print(grid, highlight=False)

    @cycle_app.command("list")
    def cycle_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """Every cycle with its year, stage and state."""

        async def go() -> Any:
            return await ops.list_cycles(await ops.client_for())

        rows = run(go())
        if as_json:
            print(json.dumps(rows))
            return
        if not rows:
            console.print(f"no cycles yet: start one with `{ops.bfest_command()} cycle start --year Y --config FILE`", highlight=False)
            return
        wide = console.width >= 120
        table = Table(box=None, pad_edge=False)
        for col in ("year", "state", "stage", "started (WIB)", "closed (WIB)"):
            table.add_column(col, no_wrap=True)
        if wide:
            table.add_column("workflow", no_wrap=True)
            table.add_column("run", no_wrap=True)
        for r in rows:  # a year started again lists each of its runs, newest first
            stage = r["stage"] if r["stage"] and r["stage"] != r["state"] else ""
            row = [str(r["year"]), r["state"], stage, _when_minute(r["started"]), _when_minute(r["closed"]) if r["closed"] else ""]
            table.add_row(*row, *([r["workflow_id"], r["run_id"]] if wide else []))
        console.print(table)
        if not wide:
            console.print("[dim]workflow ids are bfest-cycle-<year>; run ids: bfest cycle list --json[/]")

    @cycle_app.command("extend")
    def cycle_extend(
        year: int = typer.Option(..., "--year"),
        stage: str = typer.Option(..., "--stage", help="call, verification, a jury stage key; a track: sakip, rb, cettar, kbk_call, kbk_verification or a KBK stage key"),
        until: str | None = typer.Option(None, "--until", help="New deadline, ISO 8601 (Asia/Jakarta if no zone)"),
        by: str | None = typer.Option(None, "--by", help="Or: how much later than its current deadline, e.g. 2m, 3h, 7d, 1d12h"),
        reason: str = typer.Option("extended by the operator", "--reason"),
        operator: str = typer.Option(_operator(), "--operator"),
    ) -> None:
        """Extend a step's deadline (validated: later than now and its current deadline, before the next step's and the ceremony)."""
        if (until is None) == (by is None):
            err.print("[bold red]error:[/] give one of --until DATETIME or --by DURATION", highlight=False)
            raise typer.Exit(2)

        async def go(client: Any) -> str:
            when = ops.parse_when(until) if until is not None else await ops.deadline_of(client, year, stage) + ops.parse_duration(by or "")
            return await ops.extend(client, year, stage, when, reason, operator)

        msg = run(_with_client(go))
        console.print(f"[green]ok[/] {msg}")

    @cycle_app.command("close-stage")
    def cycle_close_stage(
        year: int = typer.Option(..., "--year"),
        stage: str = typer.Option(..., "--stage"),
        reason: str = typer.Option("closed early by the operator", "--reason"),
        operator: str = typer.Option(_operator(), "--operator"),
    ) -> None:
        """Close the running stage now instead of at its deadline."""
        msg = run(_with_client(lambda c: ops.close_stage(c, year, stage, reason, operator)))
        console.print(f"[green]ok[/] {msg}")

    @cycle_app.command("cancel")
    def cycle_cancel(
        year: int = typer.Option(..., "--year"),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Cancel the cycle (publishes cycle_cancelled)."""
        run(_with_client(lambda c: ops.running(c, year)))  # a year with nothing to cancel fails before asking
        if not yes and not typer.confirm(f"Cancel the {year} cycle? This cannot be undone", default=False):
            err.print("not cancelled")
            raise typer.Exit(1)
        run(_with_client(lambda c: ops.cancel(c, year)))
        console.print(f"[yellow]cancellation requested[/] for cycle {year}")

    @participants_app.command("import")
    def participants_import(
        file: Path = typer.Argument(None, help="CSV (code,name,kind,parent_code,active) or JSON; default: East Java data set"),
    ) -> None:
        """Import participants into the registration service (idempotent by code)."""
        from bfest.loading import import_participants

        count = run(import_participants(file))
        console.print(f"[green]imported[/] {count} participants")

    @jurors_app.command("import")
    def jurors_import(file: Path = typer.Argument(..., help="JSON or CSV of jurors")) -> None:
        """Import jurors into the scoring service (idempotent by id)."""
        from bfest.loading import import_jurors

        count = run(import_jurors(file))
        console.print(f"[green]imported[/] {count} jurors")

    @app.command("demo")
    def demo(
        seed: int = typer.Option(1, "--seed", help="Same seed, same awards (in any year)."),
        year: int | None = typer.Option(None, "--year", help="Default: the first year from this one without a cycle (a second demo runs the next)."),
        minutes: float = typer.Option(3.0, "--minutes", help="How long the compressed year takes."),
        exit_: bool = typer.Option(False, "--exit", help="Stop what the demo started when it is done."),
        as_json: bool = typer.Option(False, "--json", help="Also print the final summary as one JSON line."),
        tracks: bool = typer.Option(False, "--tracks", help="Every track (SAKIP, RB, CETTAR, KBK) beside KOVABLIK and WBK: cycles/2027-all-tracks.toml's shape."),
    ) -> None:
        """Run a whole cycle on the embedded stack with simulated participants and jurors."""
        from bfest.demo import run_demo

        run(run_demo(seed=seed, year=year, minutes=minutes, leave_running=not exit_, as_json=as_json, tracks=tracks))


def register_db(app: typer.Typer) -> None:
    """``bfest db upgrade``: the services' schema migrations, run once before the services start."""
    db_app = typer.Typer(no_args_is_help=True, help="The services' databases: schema migrations.")
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def db_upgrade(
        service: str | None = typer.Option(None, "--service", help="One service, or portal (default: the four services and the portal)."),
    ) -> None:
        """Bring each service's database (BFEST_<SERVICE>_DATABASE_URL, else a SQLite file under
        BFEST_VAR_DIR) to this code's schema. Run it before the services start; safe to run again
        and from several places at once."""
        from services.common.logging import configure_logging
        from services.common.migrations import DATABASES, upgrade

        settings = get_settings()
        configure_logging("WARNING", settings.log_json)

        async def go() -> None:
            if service is not None and service not in DATABASES:
                raise ops.OperatorError(f"unknown service {service!r}; choose one of: {', '.join(DATABASES)}")
            for name in [service] if service else DATABASES:
                try:
                    result = await upgrade(name, settings.database_url(name))
                except Exception as exc:  # noqa: BLE001 - one line naming the service
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise ops.OperatorError(f"{name}: database upgrade failed: {exc.__class__.__name__}: {first}") from None
                console.print(result.line(), highlight=False, soft_wrap=True)

        run(go())


async def _live_progress(year: int, stages: list[str]) -> dict[str, Any]:
    """Scoring progress of the running stage, asked of the scoring service (best effort: the
    status panel still shows the workflow's view when NATS or the service is not reachable)."""
    if not stages:
        return {}
    from contracts.base import new_request_id
    from contracts.scoring import StageStatus
    from services.common.messaging import CommandClient

    try:
        client = await CommandClient.connect(get_settings().nats_url, timeout=2)
    except Exception:  # noqa: BLE001
        return {}
    out: dict[str, Any] = {}
    try:
        for key in stages:
            reply = await client.request(StageStatus(request_id=new_request_id(), cycle_year=year, stage=key), timeout=2)
            if reply.ok:
                out[key] = reply.data
    finally:
        await client.close()
    return out


async def _parse(text: str) -> dt.datetime:
    return ops.parse_when(text)


async def _with_client(fn: Callable[[Any], Awaitable[T]]) -> T:
    return await fn(await ops.client_for())
