"""``bfest``: one entry point with sub-commands (DESIGN.md §5). Errors are one clear line and a
non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer._click import exceptions as click_errors  # typer's own copy of click's (typer ≥ 0.23)

from contracts import subjects

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Bureaucracy Fest platform: operator CLI.")
dev_app = typer.Typer(no_args_is_help=True, help="The embedded stack on one machine.")
service_app = typer.Typer(no_args_is_help=True, help="Run one service.")
worker_app = typer.Typer(no_args_is_help=True, help="Run the Temporal worker.")
contracts_app = typer.Typer(no_args_is_help=True, help="The event and command catalogue.")
cycle_app = typer.Typer(no_args_is_help=True, help="Start, watch and steer a yearly cycle (Temporal).")
participants_app = typer.Typer(no_args_is_help=True, help="The participant registry (registration service).")
jurors_app = typer.Typer(no_args_is_help=True, help="The juror pool (scoring service).")
portal_app = typer.Typer(no_args_is_help=True, help="The web portal: run it, issue accounts.")
archive_app = typer.Typer(no_args_is_help=True, help="The innovation archive, rumah inovasi (registration service).")
app.add_typer(cycle_app, name="cycle")
app.add_typer(participants_app, name="participants")
app.add_typer(jurors_app, name="jurors")
app.add_typer(dev_app, name="dev")
app.add_typer(service_app, name="service")
app.add_typer(worker_app, name="worker")
app.add_typer(contracts_app, name="contracts")
app.add_typer(portal_app, name="portal")
app.add_typer(archive_app, name="archive")

console = Console()
err = Console(stderr=True)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@service_app.command("run")
def service_run(name: str = typer.Argument(..., help="registration | verification | scoring | awards | portal")) -> None:
    """Run one service until Ctrl-C (NATS at BFEST_NATS_URL, database at BFEST_<NAME>_DATABASE_URL)."""
    if name == "portal":
        portal_run()
        return
    if name not in subjects.SERVICES:
        fail(f"unknown service {name!r}; choose one of: {', '.join(subjects.SERVICES)}")
    module = importlib.import_module(f"services.{name}.app")
    try:
        service = module.create_app()  # may refuse: a production profile without its secrets
        asyncio.run(service.run())
    except (OSError, RuntimeError) as exc:
        fail(f"{name} could not start: {exc}")


@worker_app.command("run")
def worker_run() -> None:
    """Run the Temporal worker (task queue bfest-cycle) until Ctrl-C."""
    from workflows.worker import run_worker

    try:
        asyncio.run(run_worker())
    except (OSError, RuntimeError) as exc:
        fail(str(exc))


@portal_app.command("run")
def portal_run() -> None:
    """Serve the portal (http://BFEST_PORTAL_HOST:BFEST_PORTAL_PORT, default 127.0.0.1:8000) until Ctrl-C."""
    from bfest.operator import OperatorError
    from bfest.portal import run

    try:
        run()
    except OperatorError as exc:
        fail(str(exc))
    except (OSError, RuntimeError) as exc:
        fail(f"portal could not start: {exc}")


@portal_app.command("invite")
def portal_invite(
    role: str = typer.Option(..., "--role", help="unit | agency | verifier | juror | operator | evaluator | reviewer | kbk_group"),
    subject: str = typer.Option(..., "--id", help="The unit or agency code, juror id, verifier, evaluator or reviewer id, work-culture group code, or operator name."),
    name: str = typer.Option(None, "--name", help="Display name (default: the registry's or juror pool's)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Check units, agencies and jurors against the imports over NATS."),
    oidc_id: str = typer.Option(None, "--oidc-id", help="The identity provider's claim (BFEST_PORTAL_OIDC_CLAIM: email, NIP) that also signs this account in."),
    login: str = typer.Option(None, "--login", help="The account name, if not the id (one person in two roles: e.g. an evaluator who also reviews)."),
) -> None:
    """Make the account (if missing) and print a one-time set-password link (BFEST_PUBLIC_URL/set-password/…)."""
    from bfest.operator import OperatorError
    from bfest.portal import invite_sync

    try:
        inv = invite_sync(role, subject, name, check, oidc_id, login)
    except OperatorError as exc:
        fail(str(exc))
    console.print(f"{inv.role} {inv.login} ({inv.name}): {inv.url}", highlight=False, soft_wrap=True)


@dev_app.command("up")
def dev_up(
    cluster: bool = typer.Option(
        False,
        "--cluster",
        help="A 3-node NATS cluster (streams at 3 replicas), PostgreSQL at BFEST_DEV_POSTGRES_URL with a database per "
        "service, two replicas of each service, of the portal and of the worker.",
    ),
) -> None:
    """Start NATS (JetStream), the Temporal dev server with its UI, the four services and the
    worker; Ctrl-C stops everything."""
    from bfest.devstack import up

    up(cluster=cluster)


@dev_app.command("down")
def dev_down() -> None:
    """Stop a stack started by `bfest dev up` in another terminal."""
    from bfest.devstack import down

    down()


@contracts_app.command("asyncapi")
def contracts_asyncapi(
    output: Path = typer.Option(Path("docs/asyncapi.yaml"), "--output", "-o", help="Where to write the document."),
) -> None:
    """Write the AsyncAPI document of every subject (generated from the contracts)."""
    from services.common.asyncapi import write_asyncapi

    write_asyncapi(output)
    console.print(f"wrote {output}")


@archive_app.command("import")
def archive_import(file: Path = typer.Argument(..., help="CSV: id,year,title,unit_name,agency_name,region,category,group,summary,stage_reached,award,replicates")) -> None:
    """Import earlier years' innovations into the public archive (idempotent per id)."""
    from bfest.commands import run
    from bfest.files.archive import import_archive

    created, updated, total = run(import_archive(file))
    console.print(f"[green]imported[/] {created} new, {updated} changed; the archive holds {total}")


@app.command("trace")
def trace(
    proposal: str = typer.Option(..., "--proposal", help="A proposal id, e.g. P2026-00020"),
    query_url: str = typer.Option(
        os.environ.get("BFEST_TRACE_QUERY_URL", "http://127.0.0.1:16686"),
        "--query-url",
        help="The trace backend's Jaeger query API (BFEST_TRACE_QUERY_URL)",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The path of one proposal's commands and events in time order, from the trace backend."""
    import json as json_

    from bfest.observe import proposal_path

    try:
        rows = proposal_path(proposal, query_url)
    except OSError as exc:
        fail(f"the trace backend at {query_url} did not answer ({exc}); set --query-url or BFEST_TRACE_QUERY_URL")
    if as_json:
        print(json_.dumps(rows, default=str))
        return
    if not rows:
        console.print(f"no trace mentions {proposal} (is OTEL_EXPORTER_OTLP_ENDPOINT set for the services?)")
        return
    from zoneinfo import ZoneInfo

    wib = ZoneInfo("Asia/Jakarta")
    for r in rows:
        when = r["at"].astimezone(wib)
        console.print(
            f"{when:%d %b %Y %H:%M:%S}.{when.microsecond // 1000:03d} WIB  {r['service']:<13} {r['span']:<60} "
            f"{r['outcome'] or '':<14} {r['duration_ms']:8.1f} ms  trace {r['trace_id'][:12]}",
            highlight=False,
            soft_wrap=True,
        )


from bfest.commands import register, register_db  # noqa: E402  (the cycle/participants/jurors/demo/db commands)

register(cycle_app, participants_app, jurors_app, app)
register_db(app)


def _use_running_stack() -> None:
    """Point the command at the running dev stack (``var/dev/stack.json``) unless the environment
    names the servers: the stack may have started NATS or Temporal on a free port."""
    from bfest.devstack import running_stack_env
    from services.common.settings import Settings

    explicit = Settings().model_fields_set
    for key, value in running_stack_env(Settings().var_dir).items():
        if key.removeprefix("BFEST_").lower() not in explicit:
            os.environ[key] = value


def _usage_error(exc: click_errors.UsageError) -> None:
    """A usage error as one line (typer would draw a box around it)."""
    ctx = exc.ctx
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err.print(f"[bold red]error:[/] {escape(exc.format_message())}{where}", highlight=False, soft_wrap=True)


def main() -> None:
    """The ``bfest`` entry point. It leaves with ``os._exit`` once the command is done: the Temporal
    client's Rust threads can outlive the event loop, and the interpreter's teardown then sometimes
    aborts the process (SIGABRT, "PyGILState_Release … finalizing") after the command has already
    printed its answer (temporalio/sdk-python#300)."""
    code: int | str | None = 0
    try:
        _use_running_stack()
        rv = app(standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except SystemExit as exc:
        code = exc.code
    except click_errors.NoArgsIsHelpError as exc:  # `bfest cycle`: typer has printed the help
        code = exc.exit_code
    except click_errors.UsageError as exc:
        _usage_error(exc)
        code = exc.exit_code
    except click_errors.ClickException as exc:
        err.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        code = exc.exit_code
    except typer.Abort:
        err.print("aborted")
        code = 1
    except CliError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 1
    except KeyboardInterrupt:
        code = 130
    if isinstance(code, str):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`bfest … | head`)
            stream.flush()
    os._exit(code or 0)
