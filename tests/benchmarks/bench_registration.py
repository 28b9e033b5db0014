"""Intake: forward_proposal end to end (command → database → outbox → JetStream) at 64 requests in
flight from one client, on SQLite and PostgreSQL, against raw nats-py request/reply on the same
server measured in the same run. A second baseline, a FastStream subscriber typed like the
service's that only answers, shows what the messaging edge alone costs. Prints figures; asserts
none."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time

from faststream.nats import NatsBroker

from contracts import subjects
from contracts.base import ACTOR_HEADER
from contracts.registration import ForwardProposal
from services.registration.app import create_app
from tests.support import HARNESS, connect_as, request, running, seed_file

IN_FLIGHT = 64
N = 3000
CPU: list[float] = []  # µs of this process's CPU per request, one entry per drive()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def drive(nc, make, n: int, headers: dict[str, str] | None = None) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Throughput and latencies; also records the process's CPU time per request in ``CPU``
    (client, service and relay share this process: what a request costs is what limits it)."""
    latencies: list[float] = []
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            t = time.perf_counter()
            subject, body, *extra = make(i)
            merged = {**(headers or {}), **(extra[0] if extra else {})}
            await nc.request(subject, body, timeout=30, headers=merged or None)
            latencies.append(time.perf_counter() - t)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    CPU.append((time.process_time() - cpu) / n * 1e6)
    return n / (time.perf_counter() - start), latencies


async def raw_request_reply(nats_url: str, nc) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """The baseline: ``drive`` against a plain nats-py responder on its own connection."""
    raw = await connect_as(nats_url, HARNESS)

    async def echo(msg):  # type: ignore[no-untyped-def]
        await msg.respond(b'{"ok":true}')

    await raw.subscribe("bench.echo", cb=echo)
    await raw.flush()
    try:
        return await drive(nc, lambda i: ("bench.echo", b"{}"), N)
    finally:
        await raw.close()


async def test_forward_throughput_against_raw_request_reply(nats_url, database_url):
    nc = await connect_as(nats_url, HARNESS)
    base_rps, base_lat = await raw_request_reply(nats_url, nc)

    async def as_received(msg):  # type: ignore[no-untyped-def]
        return msg.body

    edge = NatsBroker(nats_url, nkeys_seed=seed_file(HARNESS), logger=None, apply_types=False, decoder=as_received)

    @edge.subscriber("bench.faststream", no_reply=True)
    async def typed(body: bytes) -> None:  # the service's intake, minus the service
        ForwardProposal.model_validate_json(body)
        await edge.context.get_local("message").raw_message.respond(b'{"ok":true}')

    await edge.start()
    body = json.dumps({"request_id": "f", "cycle_year": 2050, "agency_code": "KAB-1", "proposal_id": "P2050-00001"}).encode()
    edge_rps, _ = await drive(nc, lambda i: ("bench.faststream", body), N)
    await edge.stop()

    app = create_app()
    async with running(app, nats_url, database_url):
        agencies = [{"code": f"KAB-{a}", "name": f"Kabupaten {a}", "kind": "kabupaten"} for a in range(N // 3 + 1)]
        units = [{"code": f"KAB-{a}-U1", "name": f"Unit {a}", "kind": "upp", "parent_code": f"KAB-{a}"} for a in range(N // 3 + 1)]
        await request(nc, subjects.command("registration", "import_participants"), {"request_id": "imp", "participants": agencies + units})
        await request(nc, subjects.command("registration", "open_call"), {"request_id": "o", "cycle_year": 2050, "opens_at": "2050-03-01T00:00:00+07:00", "closes_at": "2050-04-01T00:00:00+07:00"})
        ids = []
        for i in range(N):
            a = i // 3
            body = {"request_id": f"s{i}", "cycle_year": 2050, "unit_code": f"KAB-{a}-U1", "content": {
                "title": f"Inovasi {i}", "group": "umum", "category": "kesehatan", "summary": "s" * 30, "problem": "p" * 30,
                "solution": "x" * 30, "impact": "i" * 30, "started_on": "2048-01-01", "documents": [], "contact": {"name": "A", "email": "a@b.go.id"}}}  # fmt: skip
            ids.append(((await request(nc, subjects.command("registration", "submit_proposal"), body))["data"]["id"], f"KAB-{a}"))
        subject = subjects.command("registration", "forward_proposal")

        def make(i: int) -> tuple[str, bytes, dict[str, str]]:
            pid, agency = ids[i]
            body = json.dumps({"request_id": f"f{i}", "cycle_year": 2050, "agency_code": agency, "proposal_id": pid}).encode()
            return subject, body, {ACTOR_HEADER: json.dumps({"id": agency, "role": "agency"})}

        rps, lat = await drive(nc, make, N)
        assert app.relay is not None
        await app.relay.flush()
    db = "postgresql" if "postgresql" in database_url else "sqlite"
    raw_cpu, edge_cpu, forward_cpu = CPU[-3:]
    print(
        f"\n[bench registration/{db}] forward_proposal: {rps:,.0f} req/s, p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms"
        f"\n[bench registration/{db}] raw nats request/reply: {base_rps:,.0f} req/s, p50 {pct(base_lat, 0.5):.2f} ms, p99 {pct(base_lat, 0.99):.2f} ms"
        f"\n[bench registration/{db}] FastStream typed subscriber that only answers: {edge_rps:,.0f} req/s ({edge_rps / base_rps:.1%} of raw)"
        f"\n[bench registration/{db}] CPU per request in this process (client + server side): raw {raw_cpu:.0f} µs,"
        f" FastStream edge {edge_cpu:.0f} µs, forward_proposal {forward_cpu:.0f} µs"
        f"\n[bench registration/{db}] ratio to raw: {rps / base_rps:.1%} (target ≥ 20%), p99 target ≤ 50 ms"
    )
    await nc.close()


async def prepare_forwards(nc, year: int, n: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A running registration service ready for ``n`` forwards in ``year``: participants imported,
    the call open, ``n`` proposals submitted (64 at a time); returns (proposal id, agency) each."""
    agencies = [{"code": f"KAB-{a}", "name": f"Kabupaten {a}", "kind": "kabupaten"} for a in range(n // 3 + 1)]
    units = [{"code": f"KAB-{a}-U1", "name": f"Unit {a}", "kind": "upp", "parent_code": f"KAB-{a}"} for a in range(n // 3 + 1)]
    everyone = agencies + units
    for k in range(0, len(everyone), 5000):  # an import takes at most 5,000
        await request(nc, subjects.command("registration", "import_participants"), {"request_id": f"imp-{k}", "participants": everyone[k : k + 5000]}, timeout=60)
    await request(nc, subjects.command("registration", "open_call"), {"request_id": "o", "cycle_year": year, "opens_at": f"{year}-03-01T00:00:00+07:00", "closes_at": f"{year}-04-01T00:00:00+07:00"}, timeout=60)

    async def submit(i: int) -> tuple[str, str]:
        a = i // 3
        body = {"request_id": f"s{i}", "cycle_year": year, "unit_code": f"KAB-{a}-U1", "content": {
            "title": f"Inovasi {i}", "group": "umum", "category": "kesehatan", "summary": "s" * 30, "problem": "p" * 30,
            "solution": "x" * 30, "impact": "i" * 30, "started_on": f"{year - 2}-01-01", "documents": [], "contact": {"name": "A", "email": "a@b.go.id"}}}  # fmt: skip
        return (await request(nc, subjects.command("registration", "submit_proposal"), body, timeout=60))["data"]["id"], f"KAB-{a}"

    ids: list[tuple[str, str]] = []
    for k in range(0, n, IN_FLIGHT):
        ids += await asyncio.gather(*(submit(i) for i in range(k, min(n, k + IN_FLIGHT))))
    return ids


async def forward_chunk(nc, app, ids: list[tuple[str, str]], year: int, headers: dict[str, str] | None, flush=None, traceparents: list[str] | None = None) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Forward ``ids`` at IN_FLIGHT; returns the requests per second and this process's CPU per
    forward, counted until the relay has published the events (and ``flush`` has handed the spans
    to the exporter): all a forward costs, on one side or the other."""
    subject = subjects.command("registration", "forward_proposal")

    def make(i: int) -> tuple[str, bytes, dict[str, str]]:
        pid, agency = ids[i]
        body = json.dumps({"request_id": f"f-{pid}", "cycle_year": year, "agency_code": agency, "proposal_id": pid}).encode()
        extra = {ACTOR_HEADER: json.dumps({"id": agency, "role": "agency"})}
        if traceparents is not None:
            extra["traceparent"] = traceparents[i]
        return subject, body, extra

    cpu = time.process_time()
    rps, _ = await drive(nc, make, len(ids), headers)
    await app.relay.flush()
    if flush is not None:
        flush()
    return rps, (time.process_time() - cpu) / len(ids) * 1e6


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.2f} ({ordered[0]:.2f}–{ordered[-1]:.2f})"


async def test_forward_with_tracing_against_without(nats_url, tmp_path):
    """Issue 25's goal: tracing on (every span made and handed by a batch span processor to an
    exporter that counts and drops them, as an OTLP exporter drops what it sent; the caller's trace
    context in each request) keeps ≥ 0.9 of the throughput with tracing off, same run. An
    in-memory exporter that keeps every span would measure the garbage collector walking them.

    The modes alternate in chunks of forwards, in a rotating order, round after round, and each
    round's ratio compares neighbours in time: the machine's other load moves single runs by tens
    of percent, the ratio of neighbours far less. "off" and "on" are one service whose tracing is
    switched between chunks (what the runtime traces is decided per command); "on with FastStream's
    span" is a second service, on its own NATS server, built with FastStream's middleware; "1 in 10
    sampled" is the plain service with callers whose trace context is sampled one time in ten."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans):  # type: ignore[no-untyped-def]
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    from services.common import telemetry
    from tests.support import nats_server_process, sqlite_url

    chunk, rounds, year = 200, 15, 2050
    exporter = Counting()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    caller = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    # A caller that samples 1 request in 10 (OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.1 in
    # the portal): the service's parent-based sampler follows each request's flag.
    sampled = [f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-{'01' if i % 10 == 0 else '00'}" for i in range(chunk)]
    modes = ["off", "on", "on, 1 in 10 sampled", "on with FastStream's span"]
    runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    plain, with_faststream = create_app(), create_app()
    nc = await connect_as(nats_url, HARNESS)
    with nats_server_process() as other_url:
        other = await connect_as(other_url, HARNESS)
        try:
            async with running(plain, nats_url, sqlite_url(tmp_path, "plain")):
                telemetry.use(provider, faststream=True)  # its broker is built with the middleware
                try:
                    async with running(with_faststream, other_url, sqlite_url(tmp_path, "faststream")):
                        telemetry.use(None)
                        todo = {
                            "plain": await prepare_forwards(nc, year, chunk * (3 * rounds + 1)),
                            "faststream": await prepare_forwards(other, year, chunk * (rounds + 1)),
                        }

                        def take(service: str) -> list[tuple[str, str]]:
                            ids, todo[service] = todo[service][:chunk], todo[service][chunk:]
                            return ids

                        await forward_chunk(nc, plain, take("plain"), year, None)  # warm up both
                        await forward_chunk(other, with_faststream, take("faststream"), year, None)
                        for r in range(rounds):
                            for mode in modes[r % 4 :] + modes[: r % 4]:
                                if mode == "off":
                                    result = await forward_chunk(nc, plain, take("plain"), year, None)
                                elif mode == "on":
                                    telemetry.use(provider)
                                    result = await forward_chunk(nc, plain, take("plain"), year, caller, provider.force_flush)
                                elif mode == "on, 1 in 10 sampled":
                                    telemetry.use(provider)
                                    result = await forward_chunk(nc, plain, take("plain"), year, None, provider.force_flush, sampled)
                                else:
                                    telemetry.use(provider, faststream=True)
                                    result = await forward_chunk(other, with_faststream, take("faststream"), year, caller, provider.force_flush)
                                telemetry.use(None)
                                runs[mode].append(result)
                finally:
                    telemetry.use(None)
        finally:
            await other.close()
            await nc.close()
    provider.shutdown()
    lines = [
        f"\n[bench tracing/sqlite] forward_proposal, {rounds} rounds of {chunk:,}-forward chunks at {IN_FLIGHT} in flight,"
        f" the modes alternated in each round ({exporter.spans:,} spans exported in all):"
    ]
    for mode, results in runs.items():
        line = (
            f"\n[bench tracing/sqlite]   tracing {mode}: {statistics.median(rps for rps, _ in results):,.0f} req/s,"
            f" {statistics.median(cpu for _, cpu in results):.0f} µs CPU per forward (medians; req/s by round:"
            f" {', '.join(f'{rps:,.0f}' for rps, _ in results)})"
        )
        if mode != "off":
            by_rps = [on[0] / off[0] for on, off in zip(results, runs["off"], strict=True)]
            by_cpu = [off[1] / on[1] for on, off in zip(results, runs["off"], strict=True)]
            line += f"; ratio to off, median (range) of rounds: {spread(by_rps)} by throughput, {spread(by_cpu)} by CPU (goal ≥ 0.9)"
        lines.append(line)
    print("".join(lines))
