"""Observability on real servers: one trace from a command through its outbox row and event to the
next service's consumer, and from a workflow activity to the service's handler; readiness that
turns not ready when the outbox stops draining and recovers; /metrics that shows it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, StatusCode
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from contracts.base import Actor
from contracts.registration import ForwardProposal, OpenCall, ProposalForwarded
from services.common import telemetry
from services.common.http import fetch_text
from services.common.messaging import CommandClient
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.verification.app import create_app as verification_app
from tests.registration.test_service import YEAR, forward, setup_call, submit
from tests.support import eventually, running, sqlite_url, start_with_relay_down
from workflows.activities import CycleActivities
from workflows.worker import _tracing_for_worker

AGENCY = Actor(id="KAB-MALANG", role="agency")


@pytest.fixture(params=["faststream", "runtime"])
def spans(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    """Tracing on, every span kept in memory, for this test only; a command's trace context read
    by FastStream's telemetry middleware, or by the runtime itself."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use(provider, faststream=request.param == "faststream")
    try:
        yield exporter
    finally:
        telemetry.use(None)
        provider.shutdown()


def trace_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_one_trace_from_a_forward_to_the_verification_consumer(nats_url, nc, tmp_path, spans):
    registration, verification = registration_app(), verification_app()
    async with running(registration, nats_url, sqlite_url(tmp_path, "reg")), running(
        verification, nats_url, sqlite_url(tmp_path, "ver")
    ):
        await setup_call(nc)
        pid = (await submit(nc, "KAB-MALANG-U01", "Antrian daring"))["data"]["id"]
        client = CommandClient(nc)
        published = await nc.subscribe(ProposalForwarded.subject())
        tracer = telemetry.provider().get_tracer("test")  # type: ignore[union-attr]
        with tracer.start_as_current_span("operator forwards") as root:
            data = await client.call(ForwardProposal(cycle_year=YEAR, agency_code="KAB-MALANG", proposal_id=pid), actor=AGENCY)
        assert data["id"] == pid
        trace_id = root.get_span_context().trace_id

        # The outbox row keeps the trace of the command that caused it.
        assert registration.db is not None
        async with registration.db.session() as session:
            stored = (
                await session.execute(
                    sa.select(registration.db.outbox.c.trace_context).where(
                        registration.db.outbox.c.subject == ProposalForwarded.subject()
                    )
                )
            ).scalar_one()
        assert stored is not None and stored.split("-")[1] == f"{trace_id:032x}"

        consumed = f"consume {ProposalForwarded.subject()}"
        found = await eventually(lambda: named(trace_of(spans, trace_id), consumed))
        chain = trace_of(spans, trace_id)
        [command] = named(chain, "command forward_proposal")
        attrs = command.attributes or {}
        assert attrs[telemetry.CYCLE_YEAR] == YEAR and attrs[telemetry.PROPOSAL_ID] == pid
        assert attrs[telemetry.OUTCOME] == "ok" and attrs[telemetry.SUBJECT] == ForwardProposal.subject()
        # The outbox row keeps the command's span, the relay publishes the event with it, and the
        # consumer continues it: command → outbox row → event → consumer, one trace.
        assert stored == telemetry.span_traceparent(NonRecordingSpan(command.context))  # type: ignore[arg-type]
        event = await published.next_msg(timeout=10)
        assert (event.headers or {}).get("traceparent") == stored
        [consumer] = found
        assert consumer.parent is not None and consumer.parent.span_id == command.context.span_id  # type: ignore[union-attr]
        assert (consumer.attributes or {})[telemetry.SERVICE] == "verification"
        assert (consumer.attributes or {})[telemetry.PROPOSAL_ID] == pid

        # A refused command's span carries the error code.
        with tracer.start_as_current_span("operator forwards an unknown proposal") as again:
            reply = await client.request(
                ForwardProposal(cycle_year=YEAR, agency_code="KAB-MALANG", proposal_id="P2031-99999"), actor=AGENCY
            )
        assert reply.error is not None and reply.error.code == "not_found"
        [refused] = named(trace_of(spans, again.get_span_context().trace_id), "command forward_proposal")
        assert (refused.attributes or {})[telemetry.OUTCOME] == "not_found"
        assert refused.status.status_code == StatusCode.ERROR and "not_found" in (refused.status.description or "")


@workflow.defn(name="traced-open-call", sandboxed=False)
class OpenCallWorkflow:
    @workflow.run
    async def run(self, cmd: OpenCall) -> str:
        view = await workflow.execute_activity(
            "open_call", cmd, start_to_close_timeout=timedelta(seconds=30), result_type=dict
        )
        return str(view["state"])


async def test_one_trace_from_a_workflow_activity_to_the_handler(nats_url, nc, tmp_path, spans, temporal_env):
    registration = registration_app()
    async with running(registration, nats_url, sqlite_url(tmp_path, "reg")):
        client = Client(**{**temporal_env.client.config(), "interceptors": telemetry.temporal_interceptors()})
        activities = CycleActivities(CommandClient(nc))
        queue = f"traced-{uuid.uuid4().hex[:6]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[OpenCallWorkflow],
            activities=[activities.open_call],
            interceptors=_tracing_for_worker(client),
        ):
            tracer = telemetry.provider().get_tracer("test")  # type: ignore[union-attr]
            with tracer.start_as_current_span("operator starts") as root:
                cmd = OpenCall(
                    request_id="open-traced",
                    cycle_year=YEAR,
                    opens_at="2031-03-01T08:00:00+07:00",  # type: ignore[arg-type]
                    closes_at="2031-04-30T12:00:00+07:00",  # type: ignore[arg-type]
                )
                state = await client.execute_workflow(
                    OpenCallWorkflow.run, cmd, id=f"traced-{uuid.uuid4().hex[:6]}", task_queue=queue
                )
        assert state == "open"
        chain = trace_of(spans, root.get_span_context().trace_id)
        names = [s.name for s in chain]
        assert named(chain, "RunActivity:open_call"), names
        handler = named(chain, "command open_call")
        assert handler, names
        activity_span = named(chain, "RunActivity:open_call")[0]
        # activity → (FastStream's process span of the request) → the handler's span
        ids = {s.context.span_id: s for s in chain}  # type: ignore[union-attr]
        up = handler[0]
        while up.parent is not None and up.parent.span_id in ids and up is not activity_span:
            up = ids[up.parent.span_id]
        assert up is activity_span, names
        assert (handler[0].attributes or {})[telemetry.CYCLE_YEAR] == YEAR


async def test_readiness_follows_the_outbox_and_metrics_show_its_depth(nats_url, nc, tmp_path):
    settings = Settings(ready_outbox_max_age=0.3)
    app = registration_app(settings)
    app.http_port = 0
    await start_with_relay_down(app, nats_url, sqlite_url(tmp_path, "reg"))
    try:
        assert app.http is not None
        port = app.http.port

        async def get(path: str) -> tuple[int, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await reader.read()
            writer.close()
            head, _, body = data.partition(b"\r\n\r\n")
            return int(head.split()[1]), body

        def value(text: bytes, series: str) -> float:
            for line in text.decode().splitlines():
                if line.startswith(series + " "):
                    return float(line.split()[-1])
            return 0.0

        def depth(text: bytes) -> float:
            return value(text, 'bfest_outbox_depth{service="registration"}')

        published = 'bfest_events_published_total{service="registration"}'

        assert (await get("/livez"))[0] == 200
        assert (await get("/readyz"))[0] == 200
        assert depth(await fetch_text("127.0.0.1", port)) == 0
        await setup_call(nc)
        for i in range(3):
            r = await submit(nc, f"KAB-MALANG-U{i:02d}", f"Inovasi {i}")
            assert (await forward(nc, r["data"]["id"]))["ok"]
        metrics = await fetch_text("127.0.0.1", port)
        assert depth(metrics) == 7  # call opened, 3 submitted, 3 forwarded
        assert b"bfest_command_duration_seconds_count" in metrics
        published_before = value(metrics, published)

        async def not_ready() -> dict | None:
            status, body = await get("/readyz")
            return json.loads(body) if status == 503 else None

        state = await eventually(not_ready)
        assert state["ready"] is False
        assert any(r.startswith("outbox: the oldest of 7 unsent event(s)") for r in state["reasons"]), state
        health = await nc.request("bfest.registration.cmd.health", b"{}", timeout=5)
        reply = json.loads(health.data)["data"]
        assert reply["status"] == "not_ready" and reply["ready"] is False and reply["reasons"]

        assert app.relay is not None
        await app.relay.flush()  # the relay comes back and drains the outbox
        status, body = await get("/readyz")
        assert status == 200 and json.loads(body) == {"process": "registration", "ready": True, "reasons": []}
        metrics = await fetch_text("127.0.0.1", port)
        assert depth(metrics) == 0
        assert value(metrics, published) == published_before + 7
    finally:
        await app.stop()


async def test_readiness_names_dead_letters_and_a_lagging_consumer(nats_url, nc, js, tmp_path):
    from services.common import health

    app = registration_app()
    async with running(app, nats_url, sqlite_url(tmp_path, "reg")):
        assert app.probe is not None
        assert (await app.probe.readiness()).ready
        # A poison event: dead-lettered, and the service says so until someone resolves it.
        await js.publish("bfest.evt.cycle.cycle_cancelled.v1", b"{not json", headers={"Nats-Msg-Id": "poison-1"})

        async def dlq_reason() -> list[str]:
            return [r for r in (await app.probe.readiness()).reasons if r.startswith("dlq: 1 event(s) in bfest.dlq.registration")]  # type: ignore[union-attr]

        assert await eventually(dlq_reason)

    # A durable consumer nobody reads: it lags by what the stream holds for it.
    from nats.js.api import AckPolicy, ConsumerConfig

    await js.add_consumer("BFEST_EVENTS", ConsumerConfig(durable_name="idle", ack_policy=AckPolicy.EXPLICIT, filter_subject="bfest.evt.cycle.>"))
    for i in range(3):
        await js.publish("bfest.evt.cycle.stage_changed.v1", b"{}", headers={"Nats-Msg-Id": f"lag-{i}"})
    probe = health.Probe("lagging", [health.consumers(lambda: js, "lagging", lambda: ["idle"], max_pending=2)])
    state = await probe.readiness()
    assert not state.ready and state.reasons == ["consumer idle: 4 event(s) behind (limit 2)"]


async def test_cycle_status_warns_of_a_service_that_is_not_ready(nats_url, nc, tmp_path):
    from bfest.observe import readiness_warnings

    app = registration_app(Settings(ready_outbox_max_age=0.2))
    await start_with_relay_down(app, nats_url, sqlite_url(tmp_path, "reg"))
    try:
        await setup_call(nc)

        async def warned() -> list[str]:
            return [w for w in await readiness_warnings(nats_url) if w.startswith("registration is not ready: outbox:")]

        assert await eventually(warned)
        lines = await readiness_warnings(nats_url)
        assert "verification is not running (no service answers bfest.verification.cmd.health)" in lines
        assert app.relay is not None
        await app.relay.flush()
        assert not [w for w in await readiness_warnings(nats_url) if w.startswith("registration")]
    finally:
        await app.stop()
    assert await readiness_warnings("nats://127.0.0.1:1") == []


def test_bfest_trace_lists_a_proposals_path_from_the_trace_backend():
    """Against a stub of the Jaeger query API (the shape Jaeger and Tempo's Jaeger query answer)."""
    import http.server
    import threading
    from urllib.parse import parse_qs, urlparse

    from typer.testing import CliRunner

    from bfest.cli import app

    def span(sid: str, name: str, start: int, service: str, **tags: str) -> dict:
        return {
            "traceID": "abc123",
            "spanID": sid,
            "operationName": name,
            "startTime": start,
            "duration": 1500,
            "processID": "p1",
            "tags": [{"key": "bfest.service", "value": service}, *({"key": k.replace("_", ".", 1), "value": v} for k, v in tags.items())],
        }

    trace_ = {
        "traceID": "abc123",
        "processes": {"p1": {"serviceName": "bfest-registration"}},
        "spans": [
            span("2", "consume bfest.evt.registration.proposal_forwarded.v1", 1_780_000_000_200_000, "verification"),
            span("1", "command forward_proposal", 1_780_000_000_000_000, "registration", bfest_proposal_id="P2026-00020", bfest_outcome="ok"),
        ],
    }
    asked: list[dict] = []

    class Jaeger(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/api/services":
                body = {"data": ["bfest-registration", "bfest-verification", "other"]}
            else:
                q = parse_qs(url.query)
                asked.append({"service": q["service"][0], "tags": json.loads(q["tags"][0])})
                body = {"data": [trace_] if q["service"][0] == "bfest-registration" else []}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jaeger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = CliRunner().invoke(app, ["trace", "--proposal", "P2026-00020", "--query-url", url])
        assert result.exit_code == 0, result.output
        lines = result.output.strip().splitlines()
        assert "registration" in lines[0] and "command forward_proposal" in lines[0] and "ok" in lines[0]
        assert "verification" in lines[1] and "proposal_forwarded" in lines[1]
        assert lines[0].startswith("29 May 2026 ") and " WIB " in lines[0]
        assert asked == [{"service": s, "tags": {"bfest.proposal_id": "P2026-00020"}} for s in ("bfest-registration", "bfest-verification")]
    finally:
        server.shutdown()
    down = CliRunner().invoke(app, ["trace", "--proposal", "P1", "--query-url", "http://127.0.0.1:1"])
    assert down.exit_code == 1 and "did not answer" in down.output


async def test_the_worker_serves_readiness_and_temporals_metrics(nats_url, temporal_env):
    from temporalio.contrib.pydantic import pydantic_data_converter

    from workflows.worker import _temporal_metrics_runtime, running_worker

    runtime, temporal_metrics = _temporal_metrics_runtime()
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host, runtime=runtime, data_converter=pydantic_data_converter
    )
    async with running_worker(client, nats_url, task_queue=f"health-{uuid.uuid4().hex[:6]}", http_port=0, extra_metrics=temporal_metrics) as worker:
        address = worker.health_address  # type: ignore[attr-defined]
        host, port = address.removeprefix("http://").split(":")
        ready = json.loads(await fetch_text(host, int(port), "/readyz"))
        assert ready == {"process": "worker", "ready": True, "reasons": []}

        async def temporal_series() -> str | None:
            text = (await fetch_text(host, int(port))).decode()
            return text if "temporal_" in text else None

        text = await eventually(temporal_series)
        assert 'bfest_ready{service="worker"} 1.0' in text


def test_the_dashboard_shows_only_metrics_the_processes_serve():
    import re
    from pathlib import Path

    from prometheus_client import REGISTRY

    import services.common.metrics  # noqa: F401 - registers the bfest_ metrics

    dashboard = json.loads((Path(__file__).parents[2] / "deploy" / "grafana" / "bfest-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    served = {m.name + suffix for m in REGISTRY.collect() for suffix in suffixes.get(m.type, [""])}
    used = {name for e in exprs for name in re.findall(r"\b(bfest_[a-z_]+)", e)}
    assert used and used <= served, used - served


def test_spans_go_to_the_collector_named_by_the_standard_variable(monkeypatch):
    """OTEL_EXPORTER_OTLP_ENDPOINT set: spans are exported by OTLP/HTTP; unset: tracing stays off."""
    import http.server
    import threading

    from opentelemetry import trace as otel_trace

    telemetry.use(None)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert telemetry.configure_from_env("registration") is False and not telemetry.enabled()
    assert telemetry.headers({"a": "b"}) == {"a": "b"} and telemetry.traceparent() is None

    received: list[tuple[str, str]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert telemetry.configure_from_env("registration") is True
        provider = telemetry.provider()
        with telemetry.span("command forward_proposal") as span:
            assert span is not None and telemetry.traceparent() == telemetry.span_traceparent(span)
        provider.force_flush()  # type: ignore[union-attr]
        assert received == [("/v1/traces", "application/x-protobuf")]
        assert otel_trace.get_tracer_provider() is provider
    finally:
        server.shutdown()
        telemetry.use(None)
