"""The worker process (``bfest worker run``): the one place that wires the Temporal client, the
task queue, the NATS connection, the activities and the bridge. Run as many as you like."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from contracts.cycle import TASK_QUEUE
from services.common import authz, health, telemetry
from services.common.credentials import temporal_options
from services.common.http import HealthServer, fetch_text
from services.common.logging import configure_logging, get_logger
from services.common.messaging import CommandClient, connect_jetstream
from services.common.settings import Settings, get_settings
from workflows.activities import CycleActivities
from workflows.bridge import DURABLES, run_bridge
from workflows.cycle import CycleWorkflow
from workflows.policy import COMMAND_RESEND_AFTER, COMMAND_TIMEOUT
from workflows.stage import JuryStageWorkflow
from workflows.tracks import EvaluationTrackWorkflow, KbkTrackWorkflow

WORKFLOWS = [CycleWorkflow, JuryStageWorkflow, EvaluationTrackWorkflow, KbkTrackWorkflow]


async def connect_temporal(settings: Settings | None = None, runtime: Any = None) -> Client:
    settings = settings or get_settings()
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            interceptors=telemetry.temporal_interceptors(),
            runtime=runtime,
            **temporal_options(settings),
        )
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        raise RuntimeError(f"Temporal is not reachable at {settings.temporal_address}: {exc}") from None


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    nats_url: str,
    task_queue: str = TASK_QUEUE,
    bridge: bool = True,
    http_port: int | None = None,
    extra_metrics: Any = None,
    settings: Settings | None = None,
) -> AsyncIterator[Worker]:
    """A worker (and the bridge) running in this process until the block ends; with ``http_port``
    (0: a free one) it serves /livez, /readyz and /metrics (``worker.health_address``).
    ``settings`` name its credentials (default: the environment's)."""
    nc, js = await connect_jetstream(nats_url, "bfest-worker", identity=authz.WORKER, settings=settings)
    # A national-scale command (assigning 60,000 reviews, verifying 20,000 proposals) may take
    # tens of seconds: wait for it almost as long as the activity may run.
    activities = CycleActivities(
        CommandClient(nc, timeout=COMMAND_TIMEOUT.total_seconds() - 5, resend_after=COMMAND_RESEND_AFTER)
    )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities.all(),
        interceptors=_tracing_for_worker(client),
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run())]
    if bridge:
        tasks.append(asyncio.create_task(run_bridge(client, nats_url, stop, settings)))
    http = await _serve_health(client, nc, js, bridge, http_port, extra_metrics)
    worker.health_address = http.address if http else None  # type: ignore[attr-defined]
    try:
        yield worker
    finally:
        if http:
            await http.stop()
        stop.set()
        await worker.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


def _tracing_for_worker(client: Client) -> list[Any]:
    """Temporal's tracing interceptor for the worker, unless its client has it (the worker then
    takes it from the client)."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    if any(isinstance(i, TracingInterceptor) for i in client.config().get("interceptors", [])):
        return []
    return telemetry.temporal_interceptors()


async def _serve_health(
    client: Client, nc: Any, js: Any, bridge: bool, port: int | None, extra_metrics: Any
) -> HealthServer | None:
    if port is None:
        return None
    settings = get_settings()
    probe = health.Probe(
        "worker",
        [
            health.nats_connected(lambda: nc),
            health.temporal(client),
            health.consumers(lambda: js, "worker", lambda: DURABLES if bridge else [], settings.ready_consumer_max_pending),
        ],
    )
    server = HealthServer(probe, settings.http_host, port, extra_metrics)
    await server.start()
    return server


def _temporal_metrics_runtime() -> tuple[Any, Any]:
    """A Temporal runtime whose SDK metrics (workflow and activity task latencies, slots, polls…)
    are served by temporalio's own Prometheus endpoint on a private port; the worker's /metrics
    appends them."""
    import socket

    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))

    async def temporal_metrics() -> bytes:
        return await fetch_text("127.0.0.1", port)

    return runtime, temporal_metrics


async def run_worker() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    telemetry.configure_from_env("worker")
    log = get_logger("worker")
    http_port = settings.http_port_for("worker")
    runtime, temporal_metrics = _temporal_metrics_runtime() if http_port is not None else (None, None)
    client = await connect_temporal(settings, runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, settings.nats_url, http_port=http_port, extra_metrics=temporal_metrics) as worker:
        log.info(
            "worker.started",
            task_queue=TASK_QUEUE,
            temporal=settings.temporal_address,
            nats=settings.nats_url,
            http=getattr(worker, "health_address", None),
        )
        await stop.wait()
    log.info("worker.stopped")


async def ensure_search_attributes(client: Client, namespace: str = "default") -> None:
    """Register BfestYear (Int), BfestStage and BfestTrack (Keyword) if the server lacks them (asking first:
    adding one that exists makes the server log a warning)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.service import RPCError

    wanted = {
        "BfestYear": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "BfestStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "BfestTrack": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    }
    try:
        known = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        missing = {k: v for k, v in wanted.items() if k not in known.custom_attributes}
    except RPCError:  # a server that cannot list them (the time-skipping test server): add them
        missing = wanted
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise
