"""Event consumption: the verification service catching up on 5,000 ``proposal_forwarded`` events
already in the stream (its durable consumer, inbox row and handler per event, a transaction per
fetched batch, acks), against a bare nats-py pull consumer that only fetches and acknowledges the
same events in the same run (the transport's floor). Prints figures and the ratio."""

from __future__ import annotations

import os
import time

from nats.js.api import AckPolicy, ConsumerConfig

from contracts import subjects
from contracts.registration import ProposalForwarded, ProposalSnapshot
from services.verification.app import create_app
from tests.benchmarks.bench_verification import snap
from tests.support import caught_up, eventually, running

N = int(os.environ.get("BFEST_BENCH_EVENTS", "5000"))


async def test_catching_up_on_events_against_a_bare_pull_consumer(nats_url, nc, js, sqlite_db):  # type: ignore[no-untyped-def]
    for i in range(N):
        evt = ProposalForwarded(cycle_year=2030, proposal=ProposalSnapshot.model_validate(snap(i)), quota_used=1, quota_per_agency=3)
        await js.publish(evt.subject(), evt.model_dump_json().encode())

    t = time.perf_counter()
    sub = await js.pull_subscribe(
        subjects.events_of("registration"), durable="bare", stream=subjects.STREAM, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )
    seen = 0
    while seen < N:
        for msg in await sub.fetch(batch=100, timeout=5):
            await msg.ack()
            seen += 1
    bare = time.perf_counter() - t

    cpu = time.process_time()
    t = time.perf_counter()
    async with running(create_app(), nats_url, sqlite_db):
        await eventually(lambda: caught_up(js, "verification--registration"), timeout=600, interval=0.05)
        took = time.perf_counter() - t
        cpu = time.process_time() - cpu
    print(
        f"\n[bench events] verification catches up on {N} events: {took:.2f} s ({N / took:,.0f} events/s, "
        f"{cpu / N * 1e6:.0f} µs CPU per event, start-up included)"
        f"\n[bench events] baseline, a bare pull consumer fetching and acking them: {bare:.2f} s ({N / bare:,.0f} events/s); "
        f"ratio {took / bare:.1f}×"
    )
