"""The worker process (``bfest worker run``): the one place that wires the Temporal client, the
task queue, the NATS connection, the activities and the bridge. Run as many as you like."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from contracts.cycle import TASK_QUEUE
from services.common import authz
from services.common.credentials import temporal_options
from services.common.logging import configure_logging, get_logger
from services.common.messaging import CommandClient, connect_jetstream
from services.common.settings import Settings, get_settings
from workflows.activities import CycleActivities
from workflows.bridge import run_bridge
from workflows.cycle import CycleWorkflow
from workflows.policy import COMMAND_RESEND_AFTER, COMMAND_TIMEOUT
from workflows.stage import JuryStageWorkflow

WORKFLOWS = [CycleWorkflow, JuryStageWorkflow]


async def connect_temporal(settings: Settings | None = None) -> Client:
    settings = settings or get_settings()
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            **temporal_options(settings),
        )
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        raise RuntimeError(f"Temporal is not reachable at {settings.temporal_address}: {exc}") from None


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, nats_url: str, task_queue: str = TASK_QUEUE, bridge: bool = True
) -> AsyncIterator[Worker]:
    """A worker (and the bridge) running in this process until the block ends."""
    nc, js = await connect_jetstream(nats_url, "bfest-worker", identity=authz.WORKER)
    # A national-scale command (assigning 60,000 reviews, verifying 20,000 proposals) may take
    # tens of seconds: wait for it almost as long as the activity may run.
    activities = CycleActivities(
        CommandClient(nc, timeout=COMMAND_TIMEOUT.total_seconds() - 5, resend_after=COMMAND_RESEND_AFTER)
    )
    worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities.all())
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run())]
    if bridge:
        tasks.append(asyncio.create_task(run_bridge(client, js, stop)))
    try:
        yield worker
    finally:
        stop.set()
        await worker.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()


async def run_worker() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    log = get_logger("worker")
    client = await connect_temporal(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(client, settings.nats_url):
        log.info("worker.started", task_queue=TASK_QUEUE, temporal=settings.temporal_address, nats=settings.nats_url)
        await stop.wait()
    log.info("worker.stopped")


async def ensure_search_attributes(client: Client, namespace: str = "default") -> None:
    """Register BfestYear (Int) and BfestStage (Keyword) if the server lacks them."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError

    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    "BfestYear": IndexedValueType.INDEXED_VALUE_TYPE_INT,
                    "BfestStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
                },
            )
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise
