"""A juror's declared conflict of interest, over a real nats-server: the assignment moves to the
least loaded conflict-free juror, the conflict is remembered (replacements, divergence, a
reopened stage), refusals are specific, and a retry answers as the first."""

from __future__ import annotations

import json
from datetime import datetime as dt_

from contracts import subjects
from contracts.cycle import CycleCancelled
from tests.scoring.test_service import JURORS, YEAR, _n, cmd, open_body, open_desk_stage
from tests.support import eventually, request, running, stream_messages

AGENCY = {j["id"]: j["affiliation"] for j in JURORS}
LISTED = {j["id"]: set(j["conflicts"]) for j in JURORS}
PROPOSAL_AGENCY = {"P1": "KAB-A", "P2": "KAB-B", "P3": "KAB-C", "P4": "KAB-D", "P5": "KAB-A"}
CONFLICTED = subjects.event("scoring", "conflict_declared", 1)


def declare(juror: str, pid: str, rid: str, reason: str = "Saudara kandung kepala unit") -> dict:
    return {"request_id": rid, "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "reason": reason}


def score(juror: str, pid: str, value: float, rid: str) -> dict:
    return {"request_id": rid, "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": value, "dampak": value}}


async def plan(nc) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """juror → every proposal assigned to them (scored or not), from stage_status."""
    status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk", "per_juror": True}))["data"]
    out: dict[str, list[str]] = {}
    for j in status["per_juror"]:
        out[j["juror_id"]] = list(j["missing"])
    return out


def free_for(pid: str, taken: set[str], declared: set[str]) -> set[str]:
    return {j for j in AGENCY if AGENCY[j] != PROPOSAL_AGENCY[pid] and pid not in LISTED[j] and j not in taken | declared}


async def test_a_declared_conflict_moves_the_assignment_to_the_least_loaded_free_juror(nats_url, nc, js, database_url):
    async with running(create_app_(), nats_url, database_url) as app:
        await open_desk_stage(nc, js)
        before = await plan(nc)
        holders = sorted(j for j, ps in before.items() if "P1" in ps)
        leaving = holders[0]
        loads = {j: len(ps) for j, ps in before.items()}
        free = free_for("P1", set(holders), set())
        expected = min(free, key=lambda j: (loads.get(j, 0), j))

        reply = await request(nc, cmd("declare_conflict"), declare(leaving, "P1", "coi-1"))
        assert reply["ok"], reply
        assert reply["data"] == {"stage": "desk", "proposal_id": "P1", "juror_id": leaving, "replacement_juror_id": expected}
        again = await request(nc, cmd("declare_conflict"), declare(leaving, "P1", "coi-1"))
        assert again == reply  # a retry answers as the first and changes nothing

        after = await plan(nc)
        assert "P1" not in after.get(leaving, []) and "P1" in after[expected]
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status["assignments"] == sum(loads.values())  # moved, not lost
        await app.relay.flush()
        events = [json.loads(m.data) for m in await stream_messages(js, CONFLICTED)]
        assert [(e["juror_id"], e["proposal_id"], e["replacement_juror_id"], e["reason"]) for e in events] == [
            (leaving, "P1", expected, "Saudara kandung kepala unit")
        ]

        # No longer theirs: they cannot score it nor declare again.
        refused = await request(nc, cmd("submit_score"), score(leaving, "P1", 7, "s-gone"))
        assert refused["error"]["code"] == "not_assigned"
        twice = await request(nc, cmd("declare_conflict"), declare(leaving, "P1", "coi-1b"))
        assert twice["error"]["code"] == "not_assigned" and twice["error"]["details"] == {"juror_id": leaving, "proposal_id": "P1"}

        # Someone else's assignment, declared in their name by another juror: refused by who acts.
        other = await request(nc, cmd("declare_conflict"), declare(expected, "P1", "coi-x"), actor={"id": leaving, "role": "juror"})
        assert other["error"]["code"] == "actor_mismatch", other
        assert "P1" in (await plan(nc))[expected]

        # Scored already: too late to declare.
        mine = sorted(p for p in after[expected] if p != "P1")[0]
        assert (await request(nc, cmd("submit_score"), score(expected, mine, 6, "s-mine")))["ok"]
        late = await request(nc, cmd("declare_conflict"), declare(expected, mine, "coi-late"))
        assert late["error"]["code"] == "already_scored", late
        status2 = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status2["assignments"] == status["assignments"]

        unknown = await request(nc, cmd("declare_conflict"), {**declare(expected, "P1", "coi-u"), "stage": "gala"})
        assert unknown["error"]["code"] == "unknown_stage"

        closed = await request(nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00"})
        assert closed["ok"]
        shut = await request(nc, cmd("declare_conflict"), declare(expected, "P1", "coi-closed"))
        assert shut["error"]["code"] == "stage_closed", shut


async def test_when_no_free_juror_is_left_the_assignment_goes_to_no_one_and_the_stage_can_still_be_fully_scored(nats_url, nc, js, database_url):
    async with running(create_app_(), nats_url, database_url) as app:
        await open_desk_stage(nc, js)
        declared: set[str] = set()
        replacements = []
        for n in range(3):  # P1's four possible jurors (J1 is of its agency): the third finds no one
            holders = {j for j, ps in (await plan(nc)).items() if "P1" in ps}
            leaving = sorted(holders)[0]
            reply = await request(nc, cmd("declare_conflict"), declare(leaving, "P1", f"coi-{n}"))
            assert reply["ok"], reply
            declared.add(leaving)
            replacement = reply["data"]["replacement_juror_id"]
            if free_for("P1", holders, declared - {leaving}) - {leaving}:
                assert replacement is not None and replacement not in declared and AGENCY[replacement] != "KAB-A"
            else:
                assert replacement is None
            replacements.append(replacement)
        assert replacements[-1] is None and all(replacements[:2])
        now = await plan(nc)
        assert len([j for j, ps in now.items() if "P1" in ps]) == 1  # one juror left on it
        assert not declared & {j for j, ps in now.items() if "P1" in ps}
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status["assignments"] == 9  # 5 proposals × 2, one given back to no one

        for juror, pids in sorted(now.items()):
            for pid in pids:
                assert (await request(nc, cmd("submit_score"), score(juror, pid, 6, f"s-{juror}-{pid}")))["ok"]
        await eventually(lambda: _n(js, subjects.event("scoring", "stage_fully_scored", 1), 1))
        fully = json.loads((await stream_messages(js, subjects.event("scoring", "stage_fully_scored", 1)))[0].data)
        assert fully["assignments"] == 9
        await app.relay.flush()
        assert [json.loads(m.data)["replacement_juror_id"] for m in await stream_messages(js, CONFLICTED)] == replacements


async def test_a_declared_conflict_is_remembered_by_divergence_and_a_reopened_stage(nats_url, nc, js, sqlite_db):
    async with running(create_app_(), nats_url, sqlite_db):
        assert (await request(nc, cmd("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
        from tests.scoring.test_service import feed

        await feed(js)

        async def opened():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("open_stage"), open_body())  # divergence threshold 3
            return r if r["ok"] else None

        await eventually(opened)
        holders = sorted(j for j, ps in (await plan(nc)).items() if "P1" in ps)
        leaving = holders[0]
        moved = (await request(nc, cmd("declare_conflict"), declare(leaving, "P1", "coi-1")))["data"]["replacement_juror_id"]
        now = await plan(nc)
        on_p1 = sorted(j for j, ps in now.items() if "P1" in ps)
        assert leaving not in on_p1 and moved in on_p1
        # The one who left is now the least loaded, yet the divergence's extra juror is someone else.
        assert len(now.get(leaving, [])) == min(len(ps) for ps in now.values())
        first = await request(nc, cmd("submit_score"), score(on_p1[0], "P1", 1, "s-a"))
        second = await request(nc, cmd("submit_score"), score(on_p1[1], "P1", 9, "s-b"))
        assert first["ok"] and second["ok"]
        added = second["data"]["juror_added"]
        assert added is not None and added != leaving and added not in on_p1
        assert AGENCY[added] != "KAB-A"

        cancelled = CycleCancelled(event_id="bfest-cycle-2033:coi:cancelled", occurred_at=dt_.now().astimezone(), cycle_year=YEAR, phase="jury", stage="desk")
        await js.publish(cancelled.subject(), cancelled.model_dump_json().encode())

        async def is_cancelled():  # type: ignore[no-untyped-def]
            return (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]["state"] == "cancelled"

        await eventually(is_cancelled)
        refused = await request(nc, cmd("declare_conflict"), declare(moved, "P1", "coi-cancelled"))
        assert refused["error"]["code"] == "stage_closed"
        assert (await request(nc, cmd("open_stage"), {**open_body(), "request_id": "open-again"}))["ok"]
        reopened = await plan(nc)
        assert "P1" not in reopened.get(leaving, [])


def create_app_():  # type: ignore[no-untyped-def]
    from services.scoring.app import create_app

    return create_app()
