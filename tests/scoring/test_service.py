"""The scoring service over a real nats-server: entrants from verification's events, assignment,
refusals, divergence, full scoring, ranking and an upheld objection."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime as dt_

from contracts import subjects
from contracts.base import digest_ids
from contracts.verification import (
    ProposalVerified,
    VerificationClosed,
    VerificationClosedSummary,
    VerifiedProposal,
)
from services.scoring.app import create_app
from tests.support import eventually, request, running, stream_messages

YEAR = 2033


def cmd(name: str) -> str:
    return subjects.command("scoring", name)


PROPOSALS = [
    ("P1", "umum", "KAB-A"),
    ("P2", "umum", "KAB-B"),
    ("P3", "replikasi", "KAB-C"),
    ("P4", "replikasi", "KAB-D"),
    ("P5", "umum", "KAB-A"),
]
JURORS = [{"id": f"J{i}", "name": f"Juri {i}", "affiliation": aff, "conflicts": conf} for i, aff, conf in (
    (1, "KAB-A", []), (2, "UNAIR", ["P3"]), (3, "ITS", []), (4, "UB", []), (5, "UM", [])
)]  # fmt: skip
CRITERIA = [{"key": "mutu", "name": "Mutu", "weight": 0.5, "scale_min": 1, "scale_max": 10}, {"key": "dampak", "name": "Dampak", "weight": 0.5, "scale_min": 1, "scale_max": 10}]


async def feed(js) -> None:  # type: ignore[no-untyped-def]
    for pid, group, agency in PROPOSALS:
        evt = ProposalVerified(
            cycle_year=YEAR,
            proposal=VerifiedProposal(id=pid, title=f"Inovasi {pid}", group=group, category="kesehatan", unit_code=f"{agency}-U1", unit_name="Unit", agency_code=agency, agency_name=agency),
        )
        await js.publish(evt.subject(), evt.model_dump_json().encode())
    ids = [p[0] for p in PROPOSALS]
    closed = VerificationClosed(
        cycle_year=YEAR,
        summary=VerificationClosedSummary(cycle_year=YEAR, eligible=len(ids), disqualified=0, overridden=0, eligible_digest=digest_ids(ids)),
        eligible_ids=ids,
    )
    await js.publish(closed.subject(), closed.model_dump_json().encode())


def open_body(advance: int = 3) -> dict:
    ids = [p[0] for p in PROPOSALS]
    return {
        "request_id": "open-desk",
        "cycle_year": YEAR,
        "stage": "desk",
        "entrants": {"source": "verification", "expected": {"count": len(ids), "digest": digest_ids(ids)}},
        "criteria": CRITERIA,
        "jurors_per_proposal": 2,
        "advance": advance,
        "group_proportions": {"umum": 0.67, "replikasi": 0.33},
        "divergence_threshold": 3.0,
        "deadline": "2033-06-12T16:00:00+07:00",
        "seed": 1,
        "at": "2033-05-20T08:00:00+07:00",
    }


async def test_a_stage_from_assignment_to_an_upheld_objection(nats_url, nc, js, sqlite_db):
    app = create_app()
    async with running(app, nats_url, sqlite_db):
        assert (await request(nc, cmd("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
        lopsided = [{**CRITERIA[0], "weight": 0.5}, {**CRITERIA[1], "weight": 0.4, "scale_min": 10, "scale_max": 1}]
        bad = await request(nc, cmd("open_stage"), {**open_body(), "request_id": "open-bad", "criteria": lopsided, "group_proportions": {"umum": 0.8, "replikasi": 0.4}})
        assert bad["error"]["code"] == "validation_error", bad
        assert bad["error"]["message"].endswith(
            "criteria: weights sum to 0.9, must sum to 1; criteria[1]: scale_min must be below scale_max; group_proportions: must be non-negative and sum to 1"
        ), bad["error"]["message"]
        early = await request(nc, cmd("open_stage"), open_body())
        assert early["error"]["code"] == "not_ready"
        await feed(js)

        async def opened():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("open_stage"), {**open_body(), "request_id": "open-2"})
            return r if r["ok"] else None

        summary = (await eventually(opened))["data"]
        assert summary["proposals"] == 5 and summary["assignments"] == 10
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk", "per_juror": True}))["data"]
        plan = {j["juror_id"]: j["missing"] for j in status["per_juror"]}
        assert "P1" not in plan.get("J1", []) and "P5" not in plan.get("J1", [])  # own agency
        assert "P3" not in plan.get("J2", [])  # declared conflict
        loads = [len(v) for v in plan.values()]
        assert max(loads) - min(loads) <= 1

        outsider = next(j for j in plan if "P1" not in plan[j])
        refused = await request(
            nc, cmd("submit_score"), {"request_id": "x", "cycle_year": YEAR, "stage": "desk", "juror_id": outsider, "proposal_id": "P1", "scores": {"mutu": 5, "dampak": 5}}
        )
        assert refused["error"]["code"] == "not_assigned"
        off = await request(
            nc, cmd("submit_score"), {"request_id": "off", "cycle_year": YEAR, "stage": "desk", "juror_id": plan_first(plan), "proposal_id": plan[plan_first(plan)][0], "scores": {"mutu": 50, "dampak": 5}}
        )
        assert off["error"]["code"] == "off_scale"
        for wrong in (True, "7", "NaN"):  # a mark is a JSON number
            typed = await request(
                nc, cmd("submit_score"), {"request_id": f"typed-{wrong}", "cycle_year": YEAR, "stage": "desk", "juror_id": plan_first(plan), "proposal_id": plan[plan_first(plan)][0], "scores": {"mutu": wrong, "dampak": 5}}
            )
            assert typed["error"]["code"] == "validation_error" and typed["error"]["details"][0]["field"] == "scores.mutu", typed

        quality = {"P1": 9, "P2": 7, "P3": 8, "P4": 6, "P5": 5}
        added = None
        for juror, pids in sorted(plan.items()):
            for pid in pids:
                value = quality[pid]
                if pid == "P4" and added is None:
                    value = 1 if juror == sorted(j for j in plan if "P4" in plan[j])[0] else 9  # the jurors disagree
                r = await request(
                    nc, cmd("submit_score"), {"request_id": f"s-{juror}-{pid}", "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": value, "dampak": value}}
                )
                assert r["ok"], r
                added = added or r["data"]["juror_added"]
        assert added is not None  # divergence on P4 brought in a third juror
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status["assignments"] == 11 and not status["fully_scored"]
        r = await request(
            nc, cmd("submit_score"), {"request_id": "third", "cycle_year": YEAR, "stage": "desk", "juror_id": added, "proposal_id": "P4", "scores": {"mutu": 6, "dampak": 6}}
        )
        assert r["ok"]
        await eventually(lambda: _n(js, subjects.event("scoring", "stage_fully_scored", 1), 1))

        closed = await request(
            nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00", "objection_window_until": "2033-06-06T08:00:00+07:00"}
        )
        assert closed["ok"] and closed["data"]["announcement_no"] == f"001/PANSEL-KOVABLIK/{YEAR}"
        assert (closed["data"]["assignments"], closed["data"]["scores"]) == (11, 11)  # the juror added on divergence counts
        short = (await request(nc, cmd("get_shortlist"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        ids = [r["proposal_id"] for r in short["rows"]]
        groups = {r["proposal_id"]: r["group"] for r in short["rows"]}
        assert sorted(groups.values()) == ["replikasi", "umum", "umum"]  # seats in proportion
        assert [r["rank"] for r in short["rows"]] == sorted(r["rank"] for r in short["rows"])
        assert all(r["explanation"]["jurors"] for r in short["rows"])
        replica = next(p for p in ids if groups[p] == "replikasi")
        other_replica = ({"P3", "P4"} - {replica}).pop()
        late_score = await request(
            nc, cmd("submit_score"), {"request_id": "late", "cycle_year": YEAR, "stage": "desk", "juror_id": added, "proposal_id": "P4", "scores": {"mutu": 9, "dampak": 9}}
        )
        assert late_score["error"]["code"] == "stage_closed"

        obj = await request(
            nc, cmd("file_objection"), {"request_id": "o1", "cycle_year": YEAR, "stage": "desk", "proposal_id": replica, "filer": "Warga", "reason": "Sudah menang tahun lalu", "at": "2033-06-02T08:00:00+07:00"}
        )
        assert obj["ok"]
        stranger = await request(
            nc, cmd("file_objection"), {"request_id": "o-x", "cycle_year": YEAR, "stage": "desk", "proposal_id": other_replica, "filer": "Warga", "reason": "Tidak lolos", "at": "2033-06-02T09:00:00+07:00"}
        )
        assert stranger["error"]["code"] == "not_on_shortlist", stranger
        nowhere = await request(nc, cmd("get_shortlist"), {"cycle_year": YEAR, "stage": "gala"})
        assert nowhere["error"]["code"] == "unknown_stage" and nowhere["error"]["details"] == {"stage": "gala"}
        assert (await request(nc, cmd("finalize_shortlist"), {"request_id": "f0", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-06T09:00:00+07:00"}))["error"]["code"] == "not_ready"
        late = await request(
            nc, cmd("file_objection"), {"request_id": "o2", "cycle_year": YEAR, "stage": "desk", "proposal_id": "P1", "filer": "Warga", "reason": "Terlambat diajukan", "at": "2033-06-07T08:00:00+07:00"}
        )
        assert late["error"]["code"] == "objection_window_closed"
        real_clock = app.clock
        app.clock = lambda: dt_.fromisoformat("2033-06-07T08:00:00+07:00")  # the window has passed
        backdated = await request(
            nc, cmd("file_objection"), {"request_id": "o3", "cycle_year": YEAR, "stage": "desk", "proposal_id": "P1", "filer": "Warga", "reason": "Tanggal dimundurkan", "at": "2033-06-02T08:00:00+07:00"}
        )
        assert backdated["error"]["code"] == "objection_window_closed"  # a filer cannot backdate into it
        app.clock = real_clock
        early = await request(nc, cmd("finalize_shortlist"), {"request_id": "f-early", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-05T08:00:00+07:00"})
        assert early["error"]["code"] == "objection_window_open" and early["error"]["details"]["window_until"].startswith("2033-06-06")
        decided = await request(
            nc, cmd("decide_objection"), {"request_id": "d1", "cycle_year": YEAR, "stage": "desk", "objection_id": obj["data"]["id"], "decision": "upheld", "reason": "Terbukti", "decided_by": "TPI-1"}
        )
        assert decided["ok"]
        redecided = await request(
            nc, cmd("decide_objection"), {"request_id": "d2", "cycle_year": YEAR, "stage": "desk", "objection_id": obj["data"]["id"], "decision": "rejected", "reason": "Berubah pikiran", "decided_by": "TPI-2"}
        )
        assert redecided["error"]["code"] == "already_decided" and redecided["error"]["details"] == {"decision": "upheld"}
        final = await request(nc, cmd("finalize_shortlist"), {"request_id": "f1", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-06T09:00:00+07:00"})
        assert final["ok"] and final["data"]["removed"] == [replica] and final["data"]["promoted"] == [other_replica]
        msgs = await eventually(lambda: _n(js, subjects.event("scoring", "shortlist_final", 1), 1))
        rows = json.loads(msgs[0].data)["rows"]
        assert other_replica in [r["proposal_id"] for r in rows] and replica not in [r["proposal_id"] for r in rows]
        assert [r["rank"] for r in rows] == [1, 2, 3]


def plan_first(plan: dict) -> str:
    return sorted(j for j in plan if plan[j])[0]


async def _n(js, subject: str, n: int):  # type: ignore[no-untyped-def]
    msgs = await stream_messages(js, subject)
    return msgs if len(msgs) >= n else None


async def open_desk_stage(nc, js) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Jurors imported, the proposals fed, the desk stage opened (no extra juror on divergence):
    its (juror, proposal) assignments."""
    assert (await request(nc, cmd("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
    await feed(js)

    async def opened():  # type: ignore[no-untyped-def]
        r = await request(nc, cmd("open_stage"), {**open_body(), "divergence_threshold": 9.5})
        return r if r["ok"] else None

    await eventually(opened)
    status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk", "per_juror": True}))["data"]
    return [(j["juror_id"], pid) for j in status["per_juror"] for pid in j["missing"]]


async def test_a_burst_of_scores_is_group_committed_and_counted_once(nats_url, nc, js, database_url):
    """Every assignment scored at once (one pair twice, one juror scoring what is not theirs): each
    answer is its own, revisions follow the order of arrival, and the stage is fully scored once."""
    async with running(create_app(), nats_url, database_url) as app:
        pairs = await open_desk_stage(nc, js)
        twice = pairs[0]
        outsider = next(j["id"] for j in JURORS if (j["id"], "P2") not in pairs)

        def body(juror: str, pid: str, value: float, rid: str) -> dict:
            return {"request_id": rid, "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": value, "dampak": value}}

        bodies = [body(j, p, 6, f"s-{j}-{p}") for j, p in pairs]
        bodies.insert(3, body(*twice, 8, "again"))
        bodies.insert(5, body(outsider, "P2", 5, "outsider"))
        bodies.append(bodies[1])  # a retry within the burst answers as its first
        replies = await asyncio.gather(*(request(nc, cmd("submit_score"), b) for b in bodies))

        by_id = {b["request_id"]: r for b, r in zip(bodies, replies, strict=True)}
        assert by_id["outsider"]["error"]["code"] == "not_assigned"
        assert replies[-1] == replies[1] and replies[1]["ok"]
        first, again = by_id[f"s-{twice[0]}-{twice[1]}"]["data"], by_id["again"]["data"]
        assert sorted([first["revision"], again["revision"]]) == [1, 2]
        assert all(r["ok"] for b, r in by_id.items() if b != "outsider")
        await eventually(lambda: _n(js, subjects.event("scoring", "stage_fully_scored", 1), 1))
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status["fully_scored"] and status["scored"] == status["assignments"] == len(pairs)
        closed = await request(nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00"})
        assert closed["ok"]
        short = (await request(nc, cmd("get_shortlist"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert short["rows"]
        assert app.relay is not None
        await app.relay.flush()
        assert len(await stream_messages(js, subjects.event("scoring", "stage_fully_scored", 1))) == 1
        scored = await stream_messages(js, subjects.event("scoring", "score_submitted", 1))
        assert len(scored) == len(pairs) + 1  # the retry and the refusal emitted nothing
        assert sorted(json.loads(m.data)["revision"] for m in scored).count(2) == 1


async def test_two_replicas_scoring_one_stage_at_once_count_every_score_once(nats_url, nc, js, database_url):
    """Two scoring replicas on one database share the command queue group: the stage row lock
    keeps revisions, the unscored count and "fully scored" exact across them."""
    async with running(create_app(), nats_url, database_url), running(create_app(), nats_url, database_url):
        pairs = await open_desk_stage(nc, js)

        def body(juror: str, pid: str, value: float, rid: str) -> dict:
            return {"request_id": rid, "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": value, "dampak": value}}

        # Every pair scored three times, all at once: whichever replica takes which, each pair ends
        # with revisions 1, 2 and 3 exactly once.
        bodies = [body(j, p, 4 + k, f"s-{j}-{p}-{k}") for k in range(3) for j, p in pairs]
        replies = await asyncio.gather(*(request(nc, cmd("submit_score"), b) for b in bodies))
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:1]
        revisions: dict[tuple[str, str], list[int]] = {}
        for r in replies:
            revisions.setdefault((r["data"]["juror_id"], r["data"]["proposal_id"]), []).append(r["data"]["revision"])
        assert {k: sorted(v) for k, v in revisions.items()} == {p: [1, 2, 3] for p in pairs}
        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]
        assert status["fully_scored"] and status["scored"] == status["assignments"] == len(pairs)
        await eventually(lambda: _n(js, subjects.event("scoring", "stage_fully_scored", 1), 1))
        assert len(await stream_messages(js, subjects.event("scoring", "stage_fully_scored", 1))) == 1


async def test_a_stage_opened_before_the_count_was_kept_is_counted_once(nats_url, nc, js, sqlite_db):
    import sqlalchemy as sa

    async with running(create_app(), nats_url, sqlite_db) as app:
        pairs = await open_desk_stage(nc, js)

        def body(juror: str, pid: str) -> dict:
            return {"request_id": f"s-{juror}-{pid}", "cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": 6, "dampak": 6}}

        assert (await request(nc, cmd("submit_score"), body(*pairs[0])))["ok"]
        async with app.db.sessions() as session, session.begin():  # as an earlier version left it
            await session.execute(sa.text("UPDATE sco_stage SET unscored = NULL"))
        for pair in pairs[1:-1]:
            assert (await request(nc, cmd("submit_score"), body(*pair)))["ok"]
        await app.relay.flush()
        assert await stream_messages(js, subjects.event("scoring", "stage_fully_scored", 1)) == []
        assert (await request(nc, cmd("submit_score"), body(*pairs[-1])))["ok"]
        await eventually(lambda: _n(js, subjects.event("scoring", "stage_fully_scored", 1), 1))


async def test_a_reminder_names_the_deadline_as_the_operator_extended_it(nats_url, nc, js, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        assignments = await open_desk_stage(nc, js)
        extended = "2033-06-19T16:00:00+07:00"  # a week past open_stage's deadline
        body = {"request_id": "remind-1", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-16T16:00:00+07:00", "deadline": extended}
        reminded = await request(nc, cmd("remind_jurors"), body)
        assert reminded["ok"] and reminded["data"]["reminded"] == len({j for j, _ in assignments}), reminded
        subject = subjects.event("scoring", "reminder_due", 1)
        msgs = await eventually(lambda: _n(js, subject, 1))
        deadlines = {json.loads(m.data)["deadline"] for m in msgs}
        assert [dt_.fromisoformat(d) for d in deadlines] == [dt_.fromisoformat(extended)]


async def test_a_cancelled_cycle_takes_no_more_scores_until_the_year_starts_again(nats_url, nc, js, sqlite_db):
    from contracts.cycle import CycleCancelled

    async with running(create_app(), nats_url, sqlite_db):
        assignments = await open_desk_stage(nc, js)
        juror, pid = assignments[0]
        cancelled = CycleCancelled(event_id="bfest-cycle-2033:run1:cancelled", occurred_at=dt_.now().astimezone(), cycle_year=YEAR, phase="jury", stage="desk")
        await js.publish(cancelled.subject(), cancelled.model_dump_json().encode())

        async def is_cancelled():  # type: ignore[no-untyped-def]
            return (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "desk"}))["data"]["state"] == "cancelled"

        await eventually(is_cancelled)
        body = {"cycle_year": YEAR, "stage": "desk", "juror_id": juror, "proposal_id": pid, "scores": {"mutu": 7, "dampak": 7}}
        refused = await request(nc, cmd("submit_score"), {**body, "request_id": "s-cancelled"})
        assert refused["error"]["code"] == "stage_closed", refused
        again = await request(nc, cmd("open_stage"), {**open_body(), "request_id": "open-again", "divergence_threshold": 9.5})
        assert again["ok"] and again["data"]["state"] == "open" and again["data"]["assignments"] == len(assignments), again
        assert (await request(nc, cmd("submit_score"), {**body, "request_id": "s-again"}))["ok"]


async def test_a_cancelled_cycle_takes_no_objections_until_the_year_starts_again(nats_url, nc, js, sqlite_db):
    from contracts.cycle import CycleCancelled

    async with running(create_app(), nats_url, sqlite_db):
        await open_desk_stage(nc, js)
        closed = await request(nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00", "objection_window_until": "2999-06-06T08:00:00+07:00"})
        assert closed["ok"], closed
        cancelled = CycleCancelled(event_id="bfest-cycle-2033:run2:cancelled", occurred_at=dt_.now().astimezone(), cycle_year=YEAR, phase="jury", stage="desk")
        await js.publish(cancelled.subject(), cancelled.model_dump_json().encode())
        body = {"cycle_year": YEAR, "stage": "desk", "proposal_id": "P1", "filer": "Warga", "reason": "Sudah menang tahun lalu"}

        async def refused():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("file_objection"), {**body, "request_id": f"o-{dt_.now().timestamp()}"})
            return r if (r["error"].get("details") or {}).get("cancelled") else None

        assert (await eventually(refused))["error"]["code"] == "objection_window_closed"
        assert (await request(nc, cmd("open_stage"), {**open_body(), "request_id": "open-again", "divergence_threshold": 9.5}))["ok"]
        again = await request(nc, cmd("file_objection"), {**body, "request_id": "o-again"})
        assert again["error"]["code"] == "not_on_shortlist", again  # the window takes objections again (P1 was not shortlisted)


async def test_a_close_the_service_gets_late_still_gives_the_whole_objection_window(nats_url, nc, js, sqlite_db):
    """close_stage asked for at 08:00 with a five-day window, handled at 08:10 (scoring was down
    and the command was retried): the public gets five days from the publication, and the
    shortlist event, the stored window and finalize_shortlist all agree."""
    app = create_app()
    async with running(app, nats_url, sqlite_db):
        await open_desk_stage(nc, js)
        app.clock = lambda: dt_.fromisoformat("2033-06-01T08:10:00+07:00")
        closed = await request(nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00", "objection_window_until": "2033-06-06T08:00:00+07:00"})
        assert closed["ok"], closed
        assert dt_.fromisoformat(closed["data"]["objection_window_until"]) == dt_.fromisoformat("2033-06-06T08:10:00+07:00")
        published = await eventually(lambda: stream_messages(js, subjects.event("scoring", "shortlist_published", 1)))
        assert dt_.fromisoformat(json.loads(published[-1].data)["objection_window_until"]) == dt_.fromisoformat("2033-06-06T08:10:00+07:00")
        early = await request(nc, cmd("finalize_shortlist"), {"request_id": "f-early", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-06T08:05:00+07:00"})
        assert early["error"]["code"] == "objection_window_open", early
        again = await request(nc, cmd("close_stage"), {"request_id": "close", "cycle_year": YEAR, "stage": "desk", "at": "2033-06-01T08:00:00+07:00", "objection_window_until": "2033-06-06T08:00:00+07:00"})
        assert again["data"]["objection_window_until"] == closed["data"]["objection_window_until"]  # a retry answers as it ended
