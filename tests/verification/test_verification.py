"""Verification: each disqualification reason, WBK thresholds to the hundredth, and the service
over a real nats-server fed by registration's events."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from contracts import subjects
from contracts.base import digest_ids
from contracts.cycle import CycleCancelled
from contracts.registration import ProposalForwarded, ProposalSnapshot, ProposalWithdrawn
from contracts.verification import AdminRules, Lke, PastWinner, VerificationClosed, VerificationCompleted
from services.common.errors import DomainError
from services.verification import domain
from services.verification.app import create_app
from services.verification.thresholds import threshold_set
from tests.support import eventually, request, running, stream_messages

YEAR = 2032
CLOSED = dt.datetime(2032, 4, 30, 5, 0, tzinfo=dt.UTC)
TEXT = "Jawaban yang cukup panjang untuk dinilai."


def snapshot(pid: str, title: str, **content: object) -> dict:
    base = {
        "title": title,
        "group": "umum",
        "category": "kesehatan",
        "summary": TEXT,
        "problem": TEXT,
        "solution": TEXT,
        "impact": TEXT,
        "started_on": "2030-01-10",
        "documents": [{"kind": "proposal", "uri": "https://x/p.pdf"}],
        "contact": {"name": "Admin", "email": "a@b.go.id"},
    }
    base.update(content)
    return {
        "id": pid,
        "unit_code": f"U-{pid}",
        "unit_name": f"Puskesmas {pid}",
        "agency_code": "KAB-JEMBER",
        "agency_name": "Kabupaten Jember",
        "content": base,
        "status": "forwarded",
        "forwarded_at": "2032-04-01T10:00:00+07:00",
    }


RULES = AdminRules(
    categories=["kesehatan", "pendidikan"],
    past_winners=[PastWinner(title="Ambulans Desa Siaga", year=2029)],
)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"summary": "singkat"}, "incomplete"),
        ({"documents": []}, "missing_document"),
        ({"started_on": "2031-06-01"}, "running_less_than_minimum"),
        ({"category": "astrologi"}, "invalid_category"),
        ({"title": "Ambulans Desa Siaga!"}, "past_top_winner_in_general_group"),
    ],
)
def test_each_disqualification_reason(changes, code):
    title = str(changes.pop("title", "Posyandu Digital"))
    reasons = domain.check_proposal(snapshot("P1", title, **changes), RULES, CLOSED, [])
    assert [r.code for r in reasons] == [code]
    assert reasons[0].message


def test_a_clean_proposal_is_eligible_and_a_past_winner_may_enter_replikasi():
    assert domain.check_proposal(snapshot("P1", "Posyandu Digital"), RULES, CLOSED, []) == []
    replica = snapshot("P2", "Ambulans Desa Siaga", group="replikasi")
    assert domain.check_proposal(replica, RULES, CLOSED, []) == []
    exactly_12 = snapshot("P3", "Tepat Dua Belas Bulan", started_on="2031-04-30")
    assert domain.check_proposal(exactly_12, RULES, CLOSED, []) == []


def test_the_running_time_counts_to_the_closing_day_in_jakarta():
    # 30 Apr 2032 06:00 WIB is still 29 Apr in UTC: an innovation started 30 Apr 2031 has run 12 months.
    closed = dt.datetime(2032, 4, 29, 23, 0, tzinfo=dt.UTC)
    year_old = snapshot("P1", "Tepat Setahun", started_on="2031-04-30")
    assert domain.check_proposal(year_old, RULES, closed, []) == []


def test_a_past_winner_named_with_its_agency_bars_only_that_agency():
    rules = AdminRules(past_winners=[PastWinner(title="Posyandu Digital", year=2030, agency_code="KAB-MALANG")])
    assert domain.check_proposal(snapshot("P1", "Posyandu Digital"), rules, CLOSED, []) == []  # KAB-JEMBER's namesake
    malang = snapshot("P2", "Posyandu Digital") | {"agency_code": "KAB-MALANG"}
    assert [r.code for r in domain.check_proposal(malang, rules, CLOSED, [])] == ["past_top_winner_in_general_group"]


AREAS = {
    "change_management": 8,
    "business_process": 7,
    "hr_management": 10,
    "accountability": 10,
    "supervision": 15,
    "public_service": 10,
}


def lke(share: float = 0.9, **results: float) -> Lke:
    return Lke.model_validate(
        {
            "areas": {a: {"fulfilment": round(w / 2 * share, 2), "reform": round(w / 2 * share, 2)} for a, w in AREAS.items()},
            "results": {"anti_corruption_survey": 16.5, "performance": 4.0, "service_survey": 15.5, **results},
            "preconditions": {"audit_followup_pct": 100, "sakip_grade": "BB", "asset_declaration_compliant": True},
        }
    )


def test_wbk_a_strong_unit_is_layak():
    decision, total, leverage, checks = domain.evaluate_lke(lke(), threshold_set("permenpanrb-90-2021"))
    assert decision == "layak_wbk" and leverage == pytest.approx(54.0) and total == pytest.approx(90.0)
    assert all(c.passed for c in checks)


@pytest.mark.parametrize(
    ("field", "minimum", "check"),
    [
        ("anti_corruption_survey", 15.75, "anti_corruption_survey"),
        ("performance", 2.5, "performance"),
        ("service_survey", 14.0, "service_survey"),
    ],
)
def test_wbk_exactly_at_a_threshold_passes_and_a_hundredth_below_fails(field, minimum, check):
    at = lke(**{field: minimum, **({"anti_corruption_survey": 16.0} if field == "performance" else {})})
    passed = {c.name: c.passed for c in domain.evaluate_lke(at, threshold_set("permenpanrb-90-2021"))[3]}
    assert passed[check] is True
    below = lke(**{field: round(minimum - 0.01, 2), **({"anti_corruption_survey": 16.0} if field == "performance" else {})})
    decision, _, _, checks = domain.evaluate_lke(below, threshold_set("permenpanrb-90-2021"))
    failed = [c for c in checks if not c.passed]
    assert decision == "belum_layak"
    assert check in [c.name for c in failed]
    named = next(c for c in failed if c.name == check)
    assert named.value == round(minimum - 0.01, 2) and named.minimum == minimum


def test_wbk_area_share_and_total_thresholds():
    weak = lke(share=0.59)  # every area below 60% of its weight
    decision, total, leverage, checks = domain.evaluate_lke(weak, threshold_set("permenpanrb-90-2021"))
    failed = {c.name for c in checks if not c.passed}
    assert decision == "belum_layak"
    assert {f"area.{a}" for a in AREAS} <= failed and "leverage_total" in failed


def test_wbk_out_of_range_and_unknown_set_are_refused():
    bad = lke()
    bad.areas["supervision"].fulfilment = 9.0  # the part's weight is 7.5
    with pytest.raises(DomainError) as err:
        domain.evaluate_lke(bad, threshold_set("permenpanrb-90-2021"))
    assert err.value.code == "lke_out_of_range" and err.value.details[0]["field"] == "areas.supervision.fulfilment"
    with pytest.raises(DomainError) as err:
        threshold_set("permenpanrb-01-2099")
    assert err.value.code == "unknown_threshold_set"


def cmd(name: str) -> str:
    return subjects.command("verification", name)


async def publish_forwarded(js, snap: dict, event_id: str | None = None) -> None:  # type: ignore[no-untyped-def]
    evt = ProposalForwarded(
        cycle_year=YEAR, proposal=ProposalSnapshot.model_validate(snap), quota_used=1, quota_per_agency=3, **({"event_id": event_id} if event_id else {})
    )
    await js.publish(evt.subject(), evt.model_dump_json().encode(), headers={"Nats-Msg-Id": evt.event_id + str(id(snap))})


def start_body(ids: list[str], rid: str = "start", review: bool = False) -> dict:
    return {
        "request_id": rid,
        "cycle_year": YEAR,
        "expected": {"count": len(ids), "digest": digest_ids(ids)},
        "call_closed_at": "2032-04-30T12:00:00+07:00",
        "deadline": "2032-05-15T16:00:00+07:00",
        "rules": {"categories": ["kesehatan"], "review_required": review},
        "at": "2032-04-30T12:00:00+07:00",
    }


async def test_service_waits_for_its_copy_then_decides_and_completes(nats_url, nc, js, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        snaps = [
            snapshot("P1", "Posyandu Digital"),
            snapshot("P2", "Antrian Online"),
            snapshot("P3", "antrian  ONLINE"),  # duplicate title of P2
            snapshot("P4", "Terlalu Muda", started_on="2032-01-01"),
        ]
        ids = [s["id"] for s in snaps]
        early = await request(nc, cmd("start_verification"), start_body(ids))
        assert early["error"]["code"] == "not_ready" and early["error"]["details"] == {"have": 0, "expected": 4}
        too_soon = await request(nc, cmd("get_decision"), {"cycle_year": YEAR, "proposal_id": "P1"})
        assert too_soon["error"]["code"] == "verification_not_started", too_soon
        for s in snaps:
            await publish_forwarded(js, s, event_id=f"fwd-{s['id']}")
        await publish_forwarded(js, snaps[0], event_id="fwd-P1")  # a duplicate delivery changes nothing
        extra = snapshot("P5", "Ditarik")
        await publish_forwarded(js, extra)
        withdrawn = ProposalWithdrawn(cycle_year=YEAR, proposal=ProposalSnapshot.model_validate({**extra, "status": "withdrawn"}))
        await js.publish(withdrawn.subject(), withdrawn.model_dump_json().encode())

        async def started():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("start_verification"), start_body(ids, rid="start-2"))
            return r if r["ok"] else None

        reply = await eventually(started)
        counts = reply["data"]
        assert (counts["eligible"], counts["disqualified"], counts["pending"], counts["state"]) == (1, 3, 0, "completed")
        p3 = await request(nc, cmd("get_decision"), {"cycle_year": YEAR, "proposal_id": "P3"})
        assert [r["code"] for r in p3["data"]["reasons"]] == ["duplicate_title"]
        stranger = await request(nc, cmd("get_decision"), {"cycle_year": YEAR, "proposal_id": "P9"})
        assert stranger["error"]["code"] == "unknown_proposal", stranger

        ov = await request(
            nc,
            cmd("override_decision"),
            {"request_id": "ov", "cycle_year": YEAR, "proposal_id": "P2", "decision": "eligible", "reason": "P3 is a copy of P2", "verifier_id": "V1", "at": "2032-05-01T09:00:00+07:00"},
        )
        assert ov["ok"] and ov["data"]["automatic"] == "disqualified" and ov["data"]["final"] == "eligible"
        # Past the deadline start_verification named: verification takes overrides until the
        # workflow closes it, at the deadline as an operator may have extended it.
        extended = await request(
            nc,
            cmd("override_decision"),
            {"request_id": "late", "cycle_year": YEAR, "proposal_id": "P4", "decision": "disqualified", "reason": "checked again in the extra week", "verifier_id": "V1", "at": "2032-05-16T09:00:00+07:00"},
        )
        assert extended["ok"] and extended["data"]["final"] == "disqualified", extended

        closed = await request(nc, cmd("close_verification"), {"request_id": "close", "cycle_year": YEAR, "at": "2032-05-15T16:00:00+07:00"})
        assert closed["data"]["eligible"] == 2 and closed["data"]["eligible_digest"] == digest_ids(["P1", "P2"])
        after = await request(
            nc,
            cmd("override_decision"),
            {"request_id": "after", "cycle_year": YEAR, "proposal_id": "P4", "decision": "eligible", "reason": "closed already", "verifier_id": "V1"},
        )
        assert after["error"]["code"] == "verification_closed"
        done = await eventually(lambda: _n(js, VerificationClosed.subject(), 1))
        assert json.loads(done[0].data)["eligible_ids"] == ["P1", "P2"]
        completed = await stream_messages(js, VerificationCompleted.subject())
        assert len(completed) == 1


async def _n(js, subject: str, n: int):  # type: ignore[no-untyped-def]
    msgs = await stream_messages(js, subject)
    return msgs if len(msgs) >= n else None


async def test_review_required_waits_for_every_verifier(nats_url, nc, js, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        snaps = [snapshot("P1", "Satu Layanan"), snapshot("P2", "Dua Layanan")]
        for s in snaps:
            await publish_forwarded(js, s)

        async def started():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("start_verification"), start_body(["P1", "P2"], review=True))
            return r if r["ok"] else None

        counts = (await eventually(started))["data"]
        assert counts["pending"] == 2 and counts["state"] == "open"
        # The cycle is cancelled: no more overrides, until the year is started again.
        cancelled = CycleCancelled(event_id="bfest-cycle-2032:run1:cancelled", occurred_at=dt.datetime.now(dt.UTC), cycle_year=YEAR, phase="verification")
        await js.publish(cancelled.subject(), cancelled.model_dump_json().encode())

        async def is_cancelled():  # type: ignore[no-untyped-def]
            return (await request(nc, cmd("verification_status"), {"cycle_year": YEAR}))["data"]["state"] == "cancelled"

        await eventually(is_cancelled)
        refused = await request(nc, cmd("override_decision"), {"request_id": "c-cancelled", "cycle_year": YEAR, "proposal_id": "P1", "decision": "eligible", "reason": "checked", "verifier_id": "V1"})
        assert refused["error"]["code"] == "verification_closed" and refused["error"]["details"] == {"state": "cancelled"}, refused
        again = await request(nc, cmd("start_verification"), start_body(["P1", "P2"], rid="start-again", review=True))
        assert again["data"]["state"] == "open" and again["data"]["pending"] == 2, again
        waiting = await request(nc, cmd("verification_status"), {"cycle_year": YEAR, "list_pending": True})
        assert waiting["data"]["pending_ids"] == ["P1", "P2"], waiting
        p1 = await request(nc, cmd("get_decision"), {"cycle_year": YEAR, "proposal_id": "P1"})
        assert p1["data"]["pending"] is True and p1["data"]["final"] == p1["data"]["automatic"]
        for pid in ("P1", "P2"):
            r = await request(
                nc,
                cmd("override_decision"),
                {"request_id": f"c-{pid}", "cycle_year": YEAR, "proposal_id": pid, "decision": "eligible", "reason": "checked", "verifier_id": "V1", "at": "2032-05-01T09:00:00+07:00"},
            )
            assert r["ok"]
        status = await request(nc, cmd("verification_status"), {"cycle_year": YEAR, "list_pending": True})
        assert status["data"]["pending"] == 0 and status["data"]["state"] == "completed" and status["data"]["pending_ids"] == []
        await eventually(lambda: _n(js, VerificationCompleted.subject(), 1))


async def test_lke_over_nats(nats_url, nc, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        body = {"request_id": "lke", "cycle_year": YEAR, "unit_code": "KAB-JEMBER-U01", "lke": json.loads(lke(performance=2.49).model_dump_json())}
        r = await request(nc, cmd("submit_lke"), body)
        assert r["ok"] and r["data"]["final"] == "belum_layak"
        assert [f["name"] for f in r["data"]["failed"]] == ["performance"]
        bad = json.loads(lke().model_dump_json())
        bad["areas"]["planet"] = {"fulfilment": 1, "reform": 1}
        r = await request(nc, cmd("submit_lke"), {**body, "request_id": "bad", "lke": bad})
        assert r["error"]["code"] == "lke_out_of_range" and r["error"]["details"][0]["field"] == "areas.planet"
        neg = json.loads(lke().model_dump_json())
        neg["results"]["performance"] = -1
        r = await request(nc, cmd("submit_lke"), {**body, "request_id": "neg", "lke": neg})
        assert r["error"]["code"] == "validation_error"
        ov = await request(
            nc,
            cmd("override_wbk"),
            {"request_id": "ovw", "cycle_year": YEAR, "unit_code": "KAB-JEMBER-U01", "decision": "layak_wbk", "reason": "survey re-run accepted", "verifier_id": "V2"},
        )
        assert ov["data"]["final"] == "layak_wbk" and ov["data"]["automatic"] == "belum_layak" and ov["data"]["overridden"]


def test_wbk_sums_the_parts_as_written_and_rounds_once():
    # Each part ends in 5 thousandths: rounded one by one they would add up to 75.00; as written
    # the total is 74.925, below 75.
    parts = {"change_management": 2.905, "business_process": 2.805, "hr_management": 3.005, "accountability": 3.005, "supervision": 5.805, "public_service": 3.805}
    sheet = Lke.model_validate(
        {
            "areas": {a: {"fulfilment": v, "reform": v} for a, v in parts.items()},
            "results": {"anti_corruption_survey": 15.755, "performance": 2.505, "service_survey": 14.005},
            "preconditions": {"audit_followup_pct": 100, "sakip_grade": "B", "asset_declaration_compliant": True},
        }
    )
    decision, total, _, checks = domain.evaluate_lke(sheet, threshold_set("permenpanrb-90-2021"))
    assert decision == "belum_layak" and total == 74.93
    assert [c.name for c in checks if not c.passed] == ["total"]


def test_wbk_audit_follow_up_must_be_complete_not_rounded_up():
    sheet = lke().model_copy(deep=True)
    sheet.preconditions.audit_followup_pct = 99.995
    decision, _, _, checks = domain.evaluate_lke(sheet, threshold_set("permenpanrb-90-2021"))
    assert decision == "belum_layak"
    assert [c.name for c in checks if not c.passed] == ["precondition.audit_followup_pct"]
