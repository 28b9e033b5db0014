"""The registration service over a real nats-server, on SQLite and PostgreSQL: the exact quota
under 50 concurrent forwards, the call window, the chain's transitions and every error code."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from contracts import subjects
from contracts.base import digest_ids
from contracts.registration import ProposalForwarded
from services.registration.app import create_app
from tests.support import eventually, request, running, start_with_relay_down, stream_messages

YEAR = 2031
JKT = dt.timezone(dt.timedelta(hours=7))


def cmd(name: str) -> str:
    return subjects.command("registration", name)


AGENCIES = [
    {"code": "KAB-MALANG", "name": "Kabupaten Malang", "kind": "kabupaten"},
    {"code": "OPD-DINKES", "name": "Dinas Kesehatan", "kind": "opd"},
]
UNITS = [{"code": f"KAB-MALANG-U{i:02d}", "name": f"Puskesmas {i}", "kind": "upp", "parent_code": "KAB-MALANG"} for i in range(60)] + [
    {"code": "OPD-DINKES-U01", "name": "UPT Dinkes 1", "kind": "upt", "parent_code": "OPD-DINKES"}
]


def content(title: str, **extra: object) -> dict:
    return {
        "title": title,
        "group": "umum",
        "category": "kesehatan",
        "summary": "Ringkasan inovasi.",
        "problem": "Antrian panjang.",
        "solution": "Antrian daring.",
        "impact": "Waktu tunggu turun 60%.",
        "started_on": "2029-01-15",
        "documents": [{"kind": "proposal", "uri": "https://portal.example/p.pdf"}],
        "contact": {"name": "Admin", "email": "admin@malangkab.go.id"},
        **extra,
    }


async def setup_call(nc, quota: int = 3) -> None:  # type: ignore[no-untyped-def]
    r = await request(nc, cmd("import_participants"), {"request_id": "imp", "participants": AGENCIES + UNITS})
    assert r["ok"], r
    r = await request(
        nc,
        cmd("open_call"),
        {
            "request_id": "open",
            "cycle_year": YEAR,
            "opens_at": "2031-03-01T08:00:00+07:00",
            "closes_at": "2031-04-30T12:00:00+07:00",
            "quota_per_agency": quota,
        },
    )
    assert r["ok"] and r["data"]["state"] == "open", r


async def submit(nc, unit: str, title: str, rid: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    return await request(
        nc, cmd("submit_proposal"), {"request_id": rid or f"s-{unit}-{title}", "cycle_year": YEAR, "unit_code": unit, "content": content(title)}
    )


async def forward(nc, pid: str, agency: str = "KAB-MALANG", rid: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    return await request(nc, cmd("forward_proposal"), {"request_id": rid or f"f-{pid}", "cycle_year": YEAR, "agency_code": agency, "proposal_id": pid})


async def submit_fifty(nc, title: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Fifty proposals of KAB-MALANG, one per unit; their ids."""
    ids = []
    for i in range(50):
        r = await submit(nc, f"KAB-MALANG-U{i:02d}", f"{title} {i}")
        assert r["ok"], r
        ids.append(r["data"]["id"])
    return ids


async def test_fifty_concurrent_forwards_accept_exactly_the_quota(nats_url, nc, js, database_url):
    async with running(create_app(), nats_url, database_url):
        await setup_call(nc)
        ids = await submit_fifty(nc, "Inovasi nomor")
        replies = await asyncio.gather(*(forward(nc, pid) for pid in ids))
        accepted = [r for r in replies if r["ok"]]
        refused = [r for r in replies if not r["ok"]]
        assert len(accepted) == 3
        assert {r["error"]["code"] for r in refused} == {"quota_exceeded"}
        assert len(refused) == 47
        winners = sorted(r["data"]["id"] for r in accepted)
        assert sorted(refused[-1]["error"]["details"]["forwarded"]) == winners

        # A retry of an accepted forward returns the first answer and changes nothing.
        again = await forward(nc, winners[0], rid=f"f-{winners[0]}")
        assert again == next(r for r in accepted if r["data"]["id"] == winners[0])

        # Withdrawing a forwarded proposal frees its slot: one more forward is accepted.
        unit = next(r["data"]["unit_code"] for r in accepted if r["data"]["id"] == winners[0])
        w = await request(
            nc, cmd("withdraw_proposal"), {"request_id": "w1", "cycle_year": YEAR, "unit_code": unit, "proposal_id": winners[0], "reason": "next year"}
        )
        assert w["ok"] and w["data"]["levels"]["secretariat"] == "withdrawn"
        late = [pid for pid in ids if pid not in winners]
        ok = await forward(nc, late[0], rid="f-after-withdraw")
        assert ok["ok"], ok
        full = await forward(nc, late[1], rid="f-full-again")
        assert full["error"]["code"] == "quota_exceeded"

        closed = await request(nc, cmd("close_call"), {"request_id": "close", "cycle_year": YEAR, "at": "2031-04-30T12:00:00+07:00"})
        assert closed["ok"]
        summary = closed["data"]
        forwarded_now = sorted([*winners[1:], late[0]])
        assert summary["forwarded"] == 3 and summary["forwarded_digest"] == digest_ids(forwarded_now)
        assert summary["by_agency"] == {"KAB-MALANG": 3}
        assert summary["by_level"] == {"secretariat": 3, "agency": 46}

        events = await eventually(lambda: _events(js, ProposalForwarded.subject(), 4))
        assert sorted(json.loads(m.data)["proposal"]["id"] for m in events) == sorted([*winners, late[0]])


async def _events(js, subject: str, n: int):  # type: ignore[no-untyped-def]
    msgs = await stream_messages(js, subject)
    return msgs if len(msgs) >= n else None


async def test_the_window_and_every_refusal_has_its_code(nats_url, nc, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        before = await submit(nc, "KAB-MALANG-U01", "Sebelum dibuka")
        assert before["error"]["code"] in ("unknown_participant", "call_not_open")
        backwards = await request(
            nc,
            cmd("open_call"),
            {"request_id": "backwards", "cycle_year": YEAR, "opens_at": "2031-04-30T12:00:00+07:00", "closes_at": "2031-03-01T08:00:00+07:00"},
        )
        assert backwards["error"]["code"] == "invalid_window"
        assert backwards["error"]["details"] == {"opens_at": "2031-04-30T12:00:00+07:00", "closes_at": "2031-03-01T08:00:00+07:00"}
        await setup_call(nc, quota=1)
        assert (await submit(nc, "NOPE", "Siapa"))["error"]["code"] == "unknown_participant"
        unit_under_unit = await request(
            nc,
            cmd("import_participants"),
            {"request_id": "bad-tree", "participants": [{"code": "KAB-MALANG-U01-X", "name": "Sub-unit", "kind": "upt", "parent_code": "KAB-MALANG-U01"}]},
        )
        assert unit_under_unit["error"]["code"] == "invalid_participant", unit_under_unit
        assert "KAB-MALANG-U01-X" in unit_under_unit["error"]["message"]
        gone = await request(nc, cmd("get_participant"), {"code": "KAB-MALANG-U01-X"})
        assert gone["error"]["code"] == "unknown_participant"
        demoted = await request(
            nc,
            cmd("import_participants"),
            {"request_id": "demote", "participants": [{"code": "KAB-MALANG", "name": "Kabupaten Malang", "kind": "upp", "parent_code": "OPD-DINKES"}]},
        )
        assert demoted["error"]["code"] == "invalid_participant", demoted
        assert demoted["error"]["details"]["problems"] == [
            "KAB-MALANG: has 60 unit(s) (KAB-MALANG-U00, KAB-MALANG-U01, KAB-MALANG-U02, …); an agency with units cannot become a unit (upp)"
        ]
        assert (await request(nc, cmd("get_participant"), {"code": "KAB-MALANG"}))["data"]["kind"] == "kabupaten"
        assert (await submit(nc, "KAB-MALANG", "Dinas bukan unit"))["error"]["code"] == "not_a_unit"
        first = await submit(nc, "KAB-MALANG-U01", "Antrian Online Puskesmas")
        assert first["ok"] and first["data"]["levels"] == {"unit": "submitted", "agency": "pending_review", "secretariat": "not_received"}
        pid = first["data"]["id"]
        dup = await submit(nc, "KAB-MALANG-U02", "  antrian online PUSKESMAS! ")
        assert dup["error"]["code"] == "duplicate_title" and dup["error"]["details"]["proposal_id"] == pid
        assert (await forward(nc, pid, agency="OPD-DINKES", rid="f-other-agency"))["error"]["code"] == "unit_not_under_agency"
        assert (await forward(nc, pid, agency="KAB-MALANG-U03", rid="f-by-unit"))["error"]["code"] == "not_an_agency"
        reused = await forward(nc, pid, agency="OPD-DINKES", rid="f-by-unit")
        assert reused["error"]["code"] == "conflict"  # one request_id, two different commands
        assert (await forward(nc, "P2031-99999"))["error"]["code"] == "not_found"
        big = await request(
            nc, cmd("submit_proposal"), {"request_id": "big", "cycle_year": YEAR, "unit_code": "KAB-MALANG-U04", "content": content("x" * 400)}
        )
        assert big["error"]["code"] == "validation_error" and big["error"]["details"][0]["field"] == "content.title"
        missing = content("Tanpa ringkasan")
        del missing["summary"]
        r = await request(nc, cmd("submit_proposal"), {"request_id": "miss", "cycle_year": YEAR, "unit_code": "KAB-MALANG-U04", "content": missing})
        assert r["error"]["code"] == "validation_error" and r["error"]["details"][0]["field"] == "content.summary"

        # returned → resubmitted → forwarded; a second forward is an invalid transition.
        ret = await request(
            nc, cmd("return_proposal"), {"request_id": "ret", "cycle_year": YEAR, "agency_code": "KAB-MALANG", "proposal_id": pid, "reason": "Lengkapi data"}
        )
        assert ret["ok"] and ret["data"]["levels"]["unit"] == "revising"
        assert (await forward(nc, pid, rid="f-returned"))["error"]["code"] == "invalid_transition"
        again = await request(
            nc,
            cmd("submit_proposal"),
            {"request_id": "resub", "cycle_year": YEAR, "unit_code": "KAB-MALANG-U01", "proposal_id": pid, "content": content("Antrian Online Puskesmas")},
        )
        assert again["ok"] and again["data"]["status"] == "submitted"
        assert (await forward(nc, pid, rid="f-ok"))["ok"]
        assert (await forward(nc, pid, rid="f-twice"))["error"]["code"] == "invalid_transition"

        other = await submit(nc, "KAB-MALANG-U05", "Posyandu Digital")
        over = await forward(nc, other["data"]["id"])
        assert over["error"]["code"] == "quota_exceeded" and over["error"]["details"]["forwarded"] == [pid]

        listing = await request(nc, cmd("list_proposals"), {"cycle_year": YEAR, "status": "forwarded"})
        assert [p["id"] for p in listing["data"]["items"]] == [pid]

        closed = await request(nc, cmd("close_call"), {"request_id": "close", "cycle_year": YEAR, "at": "2031-04-30T12:00:00+07:00"})
        again_closed = await request(nc, cmd("close_call"), {"request_id": "close-2", "cycle_year": YEAR, "at": "2031-04-30T12:00:01+07:00"})
        assert closed["data"] == again_closed["data"]
        late = await forward(nc, other["data"]["id"], rid="f-late")
        assert late["error"]["code"] == "call_closed"
        assert (await submit(nc, "KAB-MALANG-U06", "Terlambat"))["error"]["code"] == "call_closed"


async def test_events_are_published_once_even_when_the_service_restarts(nats_url, nc, js, sqlite_db):
    app = create_app()
    await start_with_relay_down(app, nats_url, sqlite_db)
    assert app.relay is not None
    await setup_call(nc)
    for i in range(3):
        r = await submit(nc, f"KAB-MALANG-U{i:02d}", f"Inovasi {i}")
        await forward(nc, r["data"]["id"])
    await app.stop()  # the final flush publishes what is pending…
    again = create_app()
    async with running(again, nats_url, sqlite_db):  # …and the next start finds nothing left to send twice
        await eventually(lambda: _events(js, ProposalForwarded.subject(), 3))
    msgs = await stream_messages(js, subjects.events_of("registration"))
    types = [json.loads(m.data)["type"] for m in msgs]
    assert types.count("registration.proposal_forwarded.v1") == 3
    assert types.count("registration.proposal_submitted.v1") == 3
    assert types.count("registration.call_opened.v1") == 1


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_participant_files_and_the_default_data_set(tmp_path, kind):
    from bfest.files.participants import load_default_participants, read_participants_file

    default = load_default_participants()
    agencies = [p for p in default if p.parent_code is None]
    assert sum(1 for p in agencies if p.kind == "kabupaten") == 29
    assert sum(1 for p in agencies if p.kind == "kota") == 9
    assert len(default) - len(agencies) == 1071
    path = tmp_path / f"p.{kind}"
    if kind == "json":
        path.write_text(json.dumps(AGENCIES + UNITS[:2]))
    else:
        path.write_text("code,name,kind,parent_code,active\nKAB-X,Kabupaten X,kabupaten,,true\nKAB-X-U1,Puskesmas X,upp,KAB-X,false\n")
    read = read_participants_file(path)
    assert read[-1].parent_code is not None
    bad = tmp_path / f"bad.{kind}"
    bad.write_text('[{"code": "A", "name": "A", "kind": "planet"}]' if kind == "json" else "code,name,kind\nA,A,planet\n")
    with pytest.raises(ValueError, match="kind"):
        read_participants_file(bad)


async def test_two_replicas_forwarding_at_once_still_accept_exactly_the_quota(nats_url, nc, database_url):
    """Two service replicas on one database (the queue group splits the requests between them):
    the quota holds by the database's guarantees, not by anything in one process."""
    first, second = create_app(), create_app()
    async with running(first, nats_url, database_url), running(second, nats_url, database_url):
        await setup_call(nc, quota=3)
        ids = await submit_fifty(nc, "Inovasi replika")
        replies = await asyncio.gather(*(forward(nc, pid) for pid in ids))
        assert sum(1 for r in replies if r["ok"]) == 3
        assert {r["error"]["code"] for r in replies if not r["ok"]} == {"quota_exceeded"}
        page = await request(nc, cmd("list_proposals"), {"request_id": "l", "cycle_year": YEAR, "status": "forwarded"})
        assert page["data"]["total"] == 3


async def test_open_call_again_may_move_the_closing_hour_but_not_the_quota(nats_url, nc, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        await setup_call(nc)
        body = {"cycle_year": YEAR, "opens_at": "2031-03-01T08:00:00+07:00", "closes_at": "2031-04-30T12:00:00+07:00", "quota_per_agency": 3}
        same = await request(nc, cmd("open_call"), {**body, "request_id": "open-again"})
        assert same["ok"] and same["data"]["state"] == "open", same
        later = await request(nc, cmd("open_call"), {**body, "request_id": "open-later", "closes_at": "2031-05-07T12:00:00+07:00"})
        assert later["ok"] and later["data"]["closes_at"] == "2031-05-07T12:00:00+07:00", later
        fewer = await request(nc, cmd("open_call"), {**body, "request_id": "open-fewer", "closes_at": "2031-05-07T12:00:00+07:00", "quota_per_agency": 1})
        assert fewer["error"]["code"] == "invalid_transition", fewer
        assert fewer["error"]["details"]["quota_per_agency"] == 3
        call = (await request(nc, cmd("get_call"), {"cycle_year": YEAR}))["data"]
        assert (call["quota_per_agency"], call["closes_at"]) == (3, "2031-05-07T12:00:00+07:00")
        await request(nc, cmd("close_call"), {"request_id": "close", "cycle_year": YEAR, "at": "2031-05-07T12:00:00+07:00"})
        # A closed call stays closed (a cycle started again goes on to its frozen summary).
        reopened = await request(nc, cmd("open_call"), {**body, "request_id": "open-after-close", "closes_at": "2031-06-01T12:00:00+07:00"})
        assert reopened["ok"] and reopened["data"]["state"] == "closed" and reopened["data"]["closes_at"] == "2031-05-07T12:00:00+07:00", reopened
        assert (await submit(nc, "KAB-MALANG-U05", "Sesudah Tutup"))["error"]["code"] == "call_closed"


async def test_a_call_its_cancelled_cycle_left_is_opened_again_when_the_year_starts_again(nats_url, nc, js, sqlite_db):
    from contracts.cycle import CycleCancelled

    async with running(create_app(), nats_url, sqlite_db):
        await setup_call(nc)
        first = await submit(nc, "KAB-MALANG-U01", "Sebelum Batal")
        assert (await forward(nc, first["data"]["id"], rid="f-before"))["ok"]
        cancelled = CycleCancelled(event_id="bfest-cycle-2031:run1:cancelled", occurred_at=dt.datetime.now(dt.UTC), cycle_year=YEAR, phase="call_open")
        await js.publish(cancelled.subject(), cancelled.model_dump_json().encode())

        async def is_cancelled():  # type: ignore[no-untyped-def]
            return (await request(nc, cmd("get_call"), {"cycle_year": YEAR}))["data"]["state"] == "cancelled"

        await eventually(is_cancelled)
        assert (await submit(nc, "KAB-MALANG-U02", "Saat Batal"))["error"]["code"] == "call_closed"
        body = {"request_id": "open-restart", "cycle_year": YEAR, "opens_at": "2031-03-01T08:00:00+07:00", "closes_at": "2031-05-15T12:00:00+07:00", "quota_per_agency": 3}
        again = await request(nc, cmd("open_call"), body)
        assert again["ok"] and again["data"]["state"] == "open" and again["data"]["closes_at"] == "2031-05-15T12:00:00+07:00", again
        assert (await submit(nc, "KAB-MALANG-U02", "Setelah Dibuka Lagi"))["ok"]
        assert (await request(nc, cmd("get_proposal"), {"proposal_id": first["data"]["id"]}))["data"]["status"] == "forwarded"  # nothing lost


async def test_a_call_closing_while_two_replicas_forward_counts_every_accepted_forward(nats_url, nc, database_url):
    """Forwards race the call's close on two replicas (PostgreSQL: two sessions on one database):
    every forward answered ok is in the close's forwarded set, every other one was refused, and the
    set is the one the database holds. (A forward that had read the call open used to commit after
    the close had counted: a 72-against-71 stall at ``start_verification`` in the cluster's year.)"""
    agencies = [{"code": f"KAB-R{i:02d}", "name": f"Kabupaten {i}", "kind": "kabupaten"} for i in range(48)]
    units = [{"code": f"KAB-R{i:02d}-U", "name": f"Unit {i}", "kind": "upp", "parent_code": f"KAB-R{i:02d}"} for i in range(48)]
    first, second = create_app(), create_app()
    async with running(first, nats_url, database_url), running(second, nats_url, database_url):
        assert (await request(nc, cmd("import_participants"), {"request_id": "imp-race", "participants": agencies + units}))["ok"]
        for round_, year in enumerate((2041, 2042, 2043)):
            opened = await request(
                nc, cmd("open_call"), {"request_id": f"open-{year}", "cycle_year": year, "opens_at": f"{year}-03-01T08:00:00+07:00", "closes_at": f"{year}-04-30T12:00:00+07:00"}
            )
            assert opened["ok"], opened
            ids = []
            for i in range(48):
                body = {"request_id": f"s-{year}-{i}", "cycle_year": year, "unit_code": f"KAB-R{i:02d}-U", "content": content(f"Balapan {i}")}
                r = await request(nc, cmd("submit_proposal"), body)
                assert r["ok"], r
                ids.append((r["data"]["id"], f"KAB-R{i:02d}"))

            async def fwd(pid: str, agency: str) -> dict:  # type: ignore[type-arg]
                body = {"request_id": f"f-{pid}", "cycle_year": year, "agency_code": agency, "proposal_id": pid}
                return await request(nc, cmd("forward_proposal"), body)

            # The forwards go in waves of four; the close is sent after the third, fifth or seventh
            # wave, so it meets forwards in flight on both replicas.
            sent: list[asyncio.Task[dict]] = []  # type: ignore[type-arg]
            closing = None
            for wave in range(12):
                sent += [asyncio.create_task(fwd(pid, agency)) for pid, agency in ids[wave * 4 : wave * 4 + 4]]
                if wave == 3 + 2 * round_:
                    closing = asyncio.create_task(
                        request(nc, cmd("close_call"), {"request_id": f"close-{year}", "cycle_year": year, "at": f"{year}-04-30T12:00:00+07:00"})
                    )
                await asyncio.sleep(0.003)
            replies = await asyncio.gather(*sent)
            assert closing is not None
            closed = await closing
            assert closed["ok"], closed
            accepted = sorted(r["data"]["id"] for r in replies if r["ok"])
            assert all(r["error"]["code"] != "internal" for r in replies if not r["ok"]), replies
            summary = closed["data"]
            assert summary["forwarded"] == len(accepted) and summary["forwarded_digest"] == digest_ids(accepted), (round_, summary, accepted)
            page = await request(nc, cmd("list_proposals"), {"request_id": f"l-{year}", "cycle_year": year, "status": "forwarded"})
            assert page["data"]["total"] == len(accepted)
