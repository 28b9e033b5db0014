"""Verification of 3,000 proposals through the service (events in, start_verification, all
decided), against the pure domain check of the same proposals in-process. Prints figures only."""

from __future__ import annotations

import time

from contracts import subjects
from contracts.base import digest_ids
from contracts.registration import ProposalForwarded, ProposalSnapshot
from contracts.verification import AdminRules
from services.verification import domain
from services.verification.app import create_app
from tests.support import eventually, request, running

N = 3000


def snap(i: int) -> dict:
    return {
        "id": f"P{i:05d}", "unit_code": f"U{i}", "unit_name": f"Unit {i}", "agency_code": f"A{i % 300}", "agency_name": "Agency",
        "status": "forwarded", "forwarded_at": "2030-04-01T00:00:00+07:00",
        "content": {"title": f"Inovasi nomor {i}", "group": "umum", "category": "kesehatan", "summary": "s" * 40, "problem": "p" * 40,
                    "solution": "x" * 40, "impact": "i" * 40, "started_on": "2027-01-01" if i % 10 else "2030-01-01",
                    "documents": [{"kind": "proposal", "uri": "https://x"}], "contact": {"name": "A", "email": "a@b.go.id"}},
    }  # fmt: skip


async def test_verifying_three_thousand_proposals(nats_url, nc, js, sqlite_db):
    import datetime as dt

    snaps = [snap(i) for i in range(N)]
    t = time.perf_counter()
    for s in snaps:
        domain.check_proposal(s, AdminRules(), dt.datetime(2030, 4, 30, tzinfo=dt.UTC), [])
    base = time.perf_counter() - t
    async with running(create_app(), nats_url, sqlite_db):
        for s in snaps:
            evt = ProposalForwarded(cycle_year=2030, proposal=ProposalSnapshot.model_validate(s), quota_used=1, quota_per_agency=3)
            await js.publish(evt.subject(), evt.model_dump_json().encode())
        ids = [s["id"] for s in snaps]
        body = {"request_id": "start", "cycle_year": 2030, "expected": {"count": N, "digest": digest_ids(ids)}, "call_closed_at": "2030-04-30T12:00:00+07:00", "deadline": "2030-05-15T00:00:00+07:00", "at": "2030-04-30T12:00:00+07:00"}
        t = time.perf_counter()

        async def done():  # type: ignore[no-untyped-def]
            r = await request(nc, subjects.command("verification", "start_verification"), {**body, "request_id": f"start-{time.perf_counter()}"}, timeout=60)
            return r if r["ok"] else None

        reply = await eventually(done, timeout=300, interval=0.2)
        took = time.perf_counter() - t
    print(
        f"\n[bench verification] {N} proposals: events consumed and all decided in {took:.2f} s "
        f"({reply['data']['eligible']} eligible, {reply['data']['disqualified']} disqualified)"
        f"\n[bench verification] baseline, the pure check in-process: {base:.3f} s; ratio {took / base:.0f}×"
    )
