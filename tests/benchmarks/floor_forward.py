"""Not the service: the floor of ``forward_proposal`` on this stack, for the design decision in the
README's benchmark section. A stripped sketch of the leaner write path: raw ``sqlite3``
statements (no SQLAlchemy), no logs, no refusals or idempotent replays, the relay fed in memory
by the batch, but the same contract models, event, outbox and kept reply, and the same client
as ``bench_registration``. Run ``.venv/bin/python -m tests.benchmarks.floor_forward``; it prints
its ratio to raw request/reply measured in the same run, once with a FastStream intake and once
with a raw nats-py one."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from faststream.nats import NatsBroker
from pydantic_core import to_jsonable_python

from contracts.base import Reply
from contracts.registration import (
    ForwardProposal,
    ProposalContent,
    ProposalForwarded,
    ProposalSnapshot,
    ProposalView,
)
from services.common.messaging import ensure_streams
from tests.benchmarks.bench_registration import CPU, drive, pct, raw_request_reply
from tests.support import HARNESS, connect_as, nats_server_process, seed_file

N = 3000
SUBJECT = "bfest.registration.cmd.forward_proposal"
SCHEMA = """
PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
CREATE TABLE p(id TEXT PRIMARY KEY, unit_code TEXT, agency_code TEXT, content TEXT, status TEXT, forwarded_at TEXT, updated_at TEXT);
CREATE TABLE part(code TEXT PRIMARY KEY, name TEXT);
CREATE TABLE q(agency_code TEXT PRIMARY KEY, used INT);
CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE, subject TEXT, payload TEXT, published_at TEXT);
CREATE INDEX ob_pub ON outbox(published_at);
CREATE TABLE cmds(request_id TEXT PRIMARY KEY, payload_hash TEXT, reply TEXT);
"""
CONTENT = {"title": "Inovasi", "group": "umum", "category": "kesehatan", "summary": "s" * 30, "problem": "p" * 30,
           "solution": "x" * 30, "impact": "i" * 30, "started_on": "2048-01-01", "documents": [], "contact": {"name": "A", "email": "a@b.go.id"}}  # fmt: skip


def database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(SCHEMA)
    db.execute("BEGIN")
    for a in range(N // 3 + 1):
        db.executemany("INSERT INTO part VALUES (?, ?)", [(f"KAB-{a}", f"Kabupaten {a}"), (f"KAB-{a}-U1", f"Unit {a}")])
    db.executemany(
        "INSERT INTO p VALUES (?, ?, ?, ?, 'submitted', NULL, '')",
        [(f"P{i:05}", f"KAB-{i // 3}-U1", f"KAB-{i // 3}", json.dumps(CONTENT)) for i in range(N)],
    )
    db.execute("COMMIT")
    return db


def marks(n: int) -> str:
    return ",".join("?" * n)


async def floor(url: str, nc: Any, edge: str, path: Path) -> tuple[float, list[float]]:
    db = database(path)
    svc = await connect_as(url, HARNESS)
    js = svc.jetstream()
    await ensure_streams(js)
    queue: asyncio.Queue[tuple[ForwardProposal, Any]] = asyncio.Queue()
    wake, done, relayed = asyncio.Event(), asyncio.Event(), []
    published = 0

    async def relay() -> None:
        nonlocal published
        while True:
            await wake.wait()
            wake.clear()
            rows, relayed[:] = list(relayed), []
            acks = [await js.publish_async(s, p.encode(), headers={"Nats-Msg-Id": e}) for e, s, p in rows]
            await asyncio.gather(*acks)
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"UPDATE outbox SET published_at = datetime() WHERE event_id IN ({marks(len(rows))})", [e for e, _, _ in rows])
            db.execute("COMMIT")
            published += len(rows)
            if published >= N:
                done.set()

    async def batcher() -> None:
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(0)
            while not queue.empty():
                batch.append(queue.get_nowait())
            now = dt.datetime.now(dt.UTC)
            stamp = now.isoformat()
            cmds = [c for c, _ in batch]
            db.execute("BEGIN IMMEDIATE")
            ids = [c.request_id for c in cmds]
            db.execute(f"SELECT request_id, reply, payload_hash FROM cmds WHERE request_id IN ({marks(len(ids))})", ids).fetchall()
            pids = [c.proposal_id for c in cmds]
            props = {r[0]: r for r in db.execute(f"SELECT * FROM p WHERE id IN ({marks(len(pids))})", pids)}
            codes = sorted({c.agency_code for c in cmds} | {r[1] for r in props.values()})
            names = dict(db.execute(f"SELECT code, name FROM part WHERE code IN ({marks(len(codes))})", codes).fetchall())
            agencies = sorted({c.agency_code for c in cmds})
            db.executemany("INSERT OR IGNORE INTO q VALUES (?, 0)", [(a,) for a in agencies])
            used = dict(db.execute(f"SELECT * FROM q WHERE agency_code IN ({marks(len(agencies))})", agencies).fetchall())
            replies, outbox, kept = [], [], []
            for cmd in cmds:
                pid, unit, agency, content_json = props[cmd.proposal_id][:4]
                used[agency] += 1
                content = ProposalContent.model_validate_json(content_json)
                snapshot = ProposalSnapshot(id=pid, unit_code=unit, unit_name=names[unit], agency_code=agency, agency_name=names[agency],
                                            content=content, status="forwarded", submitted_at=now, forwarded_at=now)  # fmt: skip
                event = ProposalForwarded(cycle_year=2050, proposal=snapshot, quota_used=used[agency], quota_per_agency=3)
                outbox.append((event.event_id, event.subject(), event.model_dump_json()))
                view = ProposalView(id=pid, cycle_year=2050, unit_code=unit, agency_code=agency, content=content, status="forwarded",
                                    levels={"unit": "forwarded", "agency": "forwarded", "secretariat": "received"},
                                    submitted_at=now, forwarded_at=now, updated_at=now)  # fmt: skip
                reply = Reply.success(to_jsonable_python(view)).model_dump_json()
                digest = hashlib.sha256(json.dumps(cmd.model_dump(mode="json", exclude={"request_id"}), sort_keys=True).encode())
                replies.append(reply)
                kept.append((cmd.request_id, digest.hexdigest(), reply))
            db.executemany("UPDATE p SET status = 'forwarded', forwarded_at = ?, updated_at = ? WHERE id = ?", [(stamp, stamp, p) for p in pids])
            db.executemany("UPDATE q SET used = ? WHERE agency_code = ?", [(used[a], a) for a in agencies])
            db.executemany("INSERT INTO outbox(event_id, subject, payload) VALUES (?, ?, ?)", outbox)
            db.executemany("INSERT INTO cmds VALUES (?, ?, ?)", kept)
            db.execute("COMMIT")
            relayed.extend(outbox)
            wake.set()
            for (_, msg), reply in zip(batch, replies, strict=True):
                await msg.respond(reply.encode())

    tasks = [asyncio.create_task(batcher()), asyncio.create_task(relay())]
    broker = None
    if edge == "raw nats-py":

        async def on_message(msg: Any) -> None:
            queue.put_nowait((ForwardProposal.model_validate_json(msg.data), msg))

        await svc.subscribe(SUBJECT, queue="registration", cb=on_message)
        await svc.flush()
    else:

        async def as_received(msg: Any) -> bytes:
            return bytes(msg.body)

        broker = NatsBroker(url, nkeys_seed=seed_file(HARNESS), logger=None, apply_types=False, decoder=as_received)

        @broker.subscriber(SUBJECT, queue="registration", no_reply=True)
        async def intake(body: bytes) -> None:
            queue.put_nowait((ForwardProposal.model_validate_json(body), broker.context.get_local("message").raw_message))

        await broker.start()

    def make(i: int) -> tuple[str, bytes]:
        body = {"request_id": f"f{i}", "cycle_year": 2050, "agency_code": f"KAB-{i // 3}", "proposal_id": f"P{i:05}"}
        return SUBJECT, json.dumps(body).encode()

    result = await drive(nc, make, N)
    await done.wait()  # every event relayed: the figure covers the path up to JetStream
    for task in tasks:
        task.cancel()
    if broker is not None:
        await broker.stop()
    await svc.close()
    db.close()
    return result


async def main() -> None:
    with nats_server_process() as url, tempfile.TemporaryDirectory() as tmp:
        nc = await connect_as(url, HARNESS)
        base, _ = await raw_request_reply(url, nc)
        base_cpu = CPU[-1]
        for n, edge in enumerate(("FastStream", "raw nats-py")):
            rps, lat = await floor(url, nc, edge, Path(tmp) / f"floor{n}.db")
            print(
                f"[floor forward_proposal, {edge} intake] {rps:,.0f} req/s, p99 {pct(lat, 0.99):.1f} ms, "
                f"{rps / base:.1%} of raw ({base:,.0f} req/s); CPU per request {CPU[-1]:.0f} µs (raw {base_cpu:.0f} µs)"
            )
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
