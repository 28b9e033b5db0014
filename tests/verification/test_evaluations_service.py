"""The SAKIP, RB and CETTAR evaluations and the check per track, through the verification service
on a real nats-server and database: band edges decide the grade, last year's grade is remembered,
a CETTAR rating shows its parts and is rated again at closing, every result is rebuilt from its
events, and KOVABLIK's and KBK's administrative checks keep apart."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from contracts import subjects
from contracts.base import SakipGrade, digest_ids
from contracts.verification import (
    EvaluationClosed,
    EvaluationEntered,
    EvaluationReviewed,
    EvaluationView,
    ProposalVerified,
    VerificationClosed,
    VerificationCompleted,
)
from services.verification import domain, rubric_files
from services.verification.app import create_app
from tests.support import eventually, request, running, stream_messages
from tests.verification.test_evaluations import RUBRICS
from tests.verification.test_rubrics import SAKIP_EDGES, sheet
from tests.verification.test_verification import YEAR, lke, publish_forwarded, snapshot, start_body

DEADLINE = f"{YEAR}-09-30T16:00:00+07:00"
ACTS = itertools.count()
"""Each act its own request id (a retry with the same id would get the first answer)."""


def cmd(name: str) -> str:
    return subjects.command("verification", name)


async def ok(nc: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await request(nc, cmd(name), body)
    assert reply["ok"], reply
    data: dict[str, Any] = reply["data"]
    return data


async def refused(nc: Any, name: str, body: dict[str, Any]) -> str:
    reply = await request(nc, cmd(name), body)
    assert not reply["ok"], reply
    code: str = reply["error"]["code"]
    return code


def open_body(kind: str, year: int = YEAR, **lists: list[str]) -> dict[str, Any]:
    return {"request_id": f"open-{kind}-{year}", "cycle_year": year, "kind": kind, "rubric": RUBRICS[kind], "deadline": DEADLINE, "at": f"{year}-08-01T08:00:00+07:00", **lists}  # type: ignore[index]


def enter_body(kind: str, subject: str, values: dict[str, Any], year: int = YEAR, evaluator: str = "E1", rid: str | None = None) -> dict[str, Any]:
    return {
        "request_id": rid or f"enter-{next(ACTS)}",
        "cycle_year": year, "kind": kind, "subject_code": subject, "subject_name": f"Pemerintah {subject}",
        "values": values, "evaluator_id": evaluator,
    }  # fmt: skip


def review_body(kind: str, subject: str, year: int = YEAR, reviewer: str = "R1", approve: bool = True, reason: str | None = None) -> dict[str, Any]:
    return {
        "request_id": f"review-{next(ACTS)}",
        "cycle_year": year, "kind": kind, "subject_code": subject, "approve": approve, "reason": reason, "reviewer_id": reviewer,
    }  # fmt: skip


def floats(values: dict[str, str]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}


async def test_sakip_and_rb_band_edges_decide_through_the_service(nats_url, nc, sqlite_db):  # type: ignore[no-untyped-def]
    """Each band's exact lower edge (a hundredth above the regulation's "> edge") and 0.01 below it."""
    order = [g.value for g in SakipGrade]
    async with running(create_app(), nats_url, sqlite_db):
        await ok(nc, "open_evaluation", open_body("sakip"))
        await ok(nc, "open_evaluation", open_body("rb"))
        for grade, edge in SAKIP_EDGES:
            lowest, below = Decimal(edge) + Decimal("0.01"), Decimal(edge)
            subject = f"OPD-{grade}"
            at = await ok(nc, "enter_evaluation", enter_body("sakip", subject, floats(sheet(lowest))))
            assert (at["total"], at["grade"]) == (float(lowest), grade), at
            under = await ok(nc, "enter_evaluation", enter_body("sakip", subject, floats(sheet(below))))
            assert (under["total"], under["grade"]) == (float(below), order[order.index(grade) + 1]), under
            rb_at = await ok(nc, "enter_evaluation", enter_body("rb", subject, {"index": float(lowest)}))
            rb_under = await ok(nc, "enter_evaluation", enter_body("rb", subject, {"index": float(below)}))
            assert (rb_at["grade"], rb_under["grade"]) == (grade, order[order.index(grade) + 1])
        zero = await ok(nc, "enter_evaluation", enter_body("sakip", "OPD-NOL", floats(sheet(Decimal(0)))))
        assert (zero["grade"], zero["label"]) == ("D", "Sangat Kurang")
        assert rb_under["rubric"] == "rb-index-permenpanrb-26-2020" and rb_under["parts"][0]["key"] == "index"
        status = await ok(nc, "evaluation_status", {"cycle_year": YEAR, "kind": "sakip"})
        assert (status["state"], status["entered"], status["approved"], status["rubric"]) == ("open", 7, 0, RUBRICS["sakip"])
        page = await ok(nc, "list_evaluations", {"cycle_year": YEAR, "kind": "sakip", "limit": 5})
        assert page["total"] == 7 and len(page["items"]) == 5 and page["next_offset"] == 5
        assert [i["subject_code"] for i in page["items"]] == sorted(i["subject_code"] for i in page["items"])


async def test_last_years_grade_is_remembered_and_refusals_are_answered(nats_url, nc, js, sqlite_db):  # type: ignore[no-untyped-def]
    bb = {"planning": 22, "measurement": 22, "reporting": 11, "internal_evaluation": 20}  # 75: BB
    a = {"planning": 27.5, "measurement": 25, "reporting": 12.5, "internal_evaluation": 20}  # 85: A
    async with running(create_app(), nats_url, sqlite_db):
        assert await refused(nc, "enter_evaluation", enter_body("sakip", "KAB-X", bb, YEAR - 1)) == "evaluation_not_open"
        before = await ok(nc, "evaluation_status", {"cycle_year": YEAR - 1, "kind": "sakip"})
        assert before["state"] == "not_open"
        bad = {**open_body("sakip", YEAR - 1), "rubric": "sakip-2099", "request_id": "bad-rubric"}
        assert await refused(nc, "open_evaluation", bad) == "unknown_rubric"
        await ok(nc, "open_evaluation", open_body("sakip", YEAR - 1, evaluators=["E1"], reviewers=["R1"]))
        assert await refused(nc, "enter_evaluation", enter_body("sakip", "KAB-X", bb, YEAR - 1, evaluator="E9")) == "not_an_evaluator"
        assert await refused(nc, "enter_evaluation", enter_body("sakip", "KAB-X", {"planning": 31, "measurement": 0, "reporting": 0, "internal_evaluation": 0}, YEAR - 1)) == "invalid_sheet"
        first = await ok(nc, "enter_evaluation", enter_body("sakip", "KAB-X", bb, YEAR - 1))
        assert first["previous_grade"] is None and first["grade"] == "BB"
        assert await refused(nc, "review_evaluation", review_body("sakip", "KAB-X", YEAR - 1, reviewer="R9")) == "not_a_reviewer"
        assert await refused(nc, "review_evaluation", review_body("sakip", "KAB-Y", YEAR - 1)) == "not_found"
        await ok(nc, "review_evaluation", review_body("sakip", "KAB-X", YEAR - 1))
        assert await refused(nc, "enter_evaluation", enter_body("sakip", "KAB-X", a, YEAR - 1)) == "already_approved"
        summary = await ok(nc, "close_evaluation", {"request_id": "close-last", "cycle_year": YEAR - 1, "kind": "sakip", "at": DEADLINE})
        assert (summary["approved"], summary["grades"], summary["digest"]) == (1, {"BB": 1}, digest_ids(["KAB-X"]))
        assert await refused(nc, "enter_evaluation", enter_body("sakip", "KAB-Z", bb, YEAR - 1)) == "evaluation_closed"

        await ok(nc, "open_evaluation", open_body("sakip"))
        now = await ok(nc, "enter_evaluation", enter_body("sakip", "KAB-X", a, evaluator="E1"))
        assert (now["previous_grade"], now["grade"], now["improvement"]) == ("BB", "A", 1)
        assert await refused(nc, "review_evaluation", review_body("sakip", "KAB-X", reviewer="E1")) == "own_sheet"
        got = await ok(nc, "get_evaluation", {"cycle_year": YEAR, "kind": "sakip", "subject_code": "KAB-X"})
        assert got == now
        events = await eventually(lambda: _n(js, EvaluationEntered.subject(), 2))
        assert [json.loads(m.data)["evaluation"]["cycle_year"] for m in events] == [YEAR - 1, YEAR]
        [closed] = await eventually(lambda: _n(js, EvaluationClosed.subject(), 1))
        assert [r["subject_code"] for r in json.loads(closed.data)["results"]] == ["KAB-X"]


async def _n(js: Any, subject: str, n: int) -> list[Any] | None:
    msgs = await stream_messages(js, subject)
    return msgs if len(msgs) >= n else None


def lke_body(unit: str, agency: str, **results: float) -> dict[str, Any]:
    body = {"request_id": f"lke-{unit}", "cycle_year": YEAR, "unit_code": unit, "agency_code": agency}
    return {**body, "lke": json.loads(lke(**results).model_dump_json())}


async def test_a_cettar_rating_shows_its_parts_is_rated_again_at_closing_and_rebuilt_from_its_events(nats_url, nc, js, sqlite_db):  # type: ignore[no-untyped-def]
    full = {"planning": 30, "measurement": 30, "reporting": 15, "internal_evaluation": 25}
    async with running(create_app(), nats_url, sqlite_db):
        await ok(nc, "submit_lke", lke_body("U1", "KAB-X"))  # 90
        await ok(nc, "submit_lke", lke_body("U2", "KAB-X", performance=2.0))  # 88
        await ok(nc, "submit_lke", lke_body("U3", "KAB-OTHER"))
        for kind in ("sakip", "rb", "cettar"):
            await ok(nc, "open_evaluation", open_body(kind))
        await ok(nc, "enter_evaluation", enter_body("sakip", "KAB-X", full))
        await ok(nc, "review_evaluation", review_body("sakip", "KAB-X"))
        await ok(nc, "enter_evaluation", enter_body("rb", "KAB-X", {"index": 80.5}))  # not approved yet
        rating = await ok(nc, "enter_evaluation", enter_body("cettar", "KAB-X", {"work_culture": 80}))
        parts = {p["key"]: (p["value"], p["weight"], p["source"]) for p in rating["parts"]}
        assert parts["sakip"] == (100.0, 0.3, f"sakip {YEAR} (approved, sakip-permenpanrb-88-2021)")
        assert parts["rb"] == (0.0, 0.3, "missing: counted as 0")
        assert parts["zona_integritas"][:2] == (89.0, 0.2) and "(U1, U2)" in parts["zona_integritas"][2]
        assert parts["work_culture"] == (80.0, 0.2, "sheet")
        assert (rating["total"], rating["grade"], rating["label"]) == (63.8, "cukup_cettar", "Cukup Cettar")
        assert rating["rubric"] == "cettar-platform-default-2027" and "NOT from a regulation" in rating["rubric_source"]
        await ok(nc, "review_evaluation", review_body("cettar", "KAB-X", reviewer="R2", approve=False, reason="Lampiran kurang"))
        await ok(nc, "enter_evaluation", enter_body("cettar", "KAB-X", {"work_culture": 85}, evaluator="E2"))
        approved = await ok(nc, "review_evaluation", review_body("cettar", "KAB-X"))
        assert (approved["state"], approved["evaluator_id"], approved["reviewer_id"]) == ("approved", "E2", "R1")

        # Rebuilt from its events: the entries scored again from their sheets, the reviews applied.
        entered = await eventually(lambda: _n(js, EvaluationEntered.subject(), 4))
        reviewed = await eventually(lambda: _n(js, EvaluationReviewed.subject(), 3))
        history = sorted(
            [EvaluationEntered.model_validate_json(m.data) for m in entered] + [EvaluationReviewed.model_validate_json(m.data) for m in reviewed],
            key=lambda e: (e.occurred_at, isinstance(e, EvaluationReviewed)),
        )
        for kind in ("sakip", "rb", "cettar"):
            mine = [e for e in history if e.evaluation.kind == kind]
            stored = await ok(nc, "get_evaluation", {"cycle_year": YEAR, "kind": kind, "subject_code": "KAB-X"})
            assert domain.replay(mine, rubric_files.rubric(RUBRICS[kind], kind)) == EvaluationView.model_validate(stored), kind

        await ok(nc, "review_evaluation", review_body("rb", "KAB-X"))  # approved after the rating: counted at closing
        summary = await ok(nc, "close_evaluation", {"request_id": "close-cettar", "cycle_year": YEAR, "kind": "cettar", "at": DEADLINE})
        assert (summary["approved"], summary["unapproved"], summary["grades"]) == (1, 0, {"sangat_cettar": 1})
        final = await ok(nc, "get_evaluation", {"cycle_year": YEAR, "kind": "cettar", "subject_code": "KAB-X"})
        assert {p["key"]: p["value"] for p in final["parts"]}["rb"] == 80.5
        assert {p["key"]: p["source"] for p in final["parts"]}["rb"] == f"rb {YEAR} (approved, rb-index-permenpanrb-26-2020)"
        # 100*0.3 + 80.5*0.3 + 89*0.2 + 85*0.2: the RB index approved since counts now
        assert (final["total"], final["grade"], final["label"]) == (88.95, "sangat_cettar", "Sangat Cettar")
        [closed] = await eventually(lambda: _n(js, EvaluationClosed.subject(), 1))
        [result] = EvaluationClosed.model_validate_json(closed.data).results
        assert result == EvaluationView.model_validate(final)
        assert domain.recompute(result, rubric_files.rubric(RUBRICS["cettar"], "cettar")) == result


# --------------------------------------------------------------------------- the check per track


def risalah(pid: str, title: str, **content: object) -> dict[str, Any]:
    return {**snapshot(pid, title, **{"category": "budaya_kerja", **content}), "track": "kbk", "group_code": f"KBK-{pid}", "group_name": f"KBK {pid}"}


def kbk_start(ids: list[str], rid: str = "start-kbk", review: bool = False) -> dict[str, Any]:
    body = start_body(ids, rid=rid, review=review)
    return {**body, "track": "kbk", "rules": {"categories": ["budaya_kerja"], "review_required": review, "verifiers": ["VK"]}}


async def test_kovablik_and_kbk_are_checked_apart_each_with_its_rules(nats_url, nc, js, sqlite_db):  # type: ignore[no-untyped-def]
    async with running(create_app(), nats_url, sqlite_db):
        innovations = [snapshot("P1", "Posyandu Digital"), snapshot("P2", "Layanan Budaya", category="budaya_kerja")]
        groups = [risalah("K1", "Posyandu Digital"), risalah("K2", "Antrian Tertib", category="kesehatan")]
        for s in innovations + groups:
            await publish_forwarded(js, s)

        async def started(body: dict[str, Any]) -> dict[str, Any] | None:
            r = await request(nc, cmd("start_verification"), body)
            return r["data"] if r["ok"] else None

        kovablik = await eventually(lambda: started(start_body(["P1", "P2"])))
        kbk = await eventually(lambda: started(kbk_start(["K1", "K2"], review=True)))
        # KOVABLIK's rules take kesehatan only; KBK's take budaya_kerja only. The same title in
        # both competitions is no duplicate.
        assert (kovablik["track"], kovablik["eligible"], kovablik["disqualified"], kovablik["state"]) == ("kovablik", 1, 1, "completed")
        assert (kbk["track"], kbk["total"], kbk["pending"], kbk["state"]) == ("kbk", 2, 2, "open")
        status = await ok(nc, "verification_status", {"cycle_year": YEAR, "track": "kbk", "list_pending": True})
        assert status["pending_ids"] == ["K1", "K2"]
        k2 = await ok(nc, "get_decision", {"cycle_year": YEAR, "proposal_id": "K2"})
        assert [r["code"] for r in k2["reasons"]] == ["invalid_category"]
        override = {"request_id": "ov-k1", "cycle_year": YEAR, "proposal_id": "K1", "decision": "eligible", "reason": "Risalah lengkap", "verifier_id": "V1"}
        assert await refused(nc, "override_decision", override) == "not_a_verifier"  # KBK's own verifier list
        await ok(nc, "override_decision", {**override, "request_id": "ov-k1b", "verifier_id": "VK"})
        await ok(nc, "override_decision", {**override, "request_id": "ov-k2", "proposal_id": "K2", "decision": "disqualified", "verifier_id": "VK"})
        completed = await eventually(lambda: _n(js, VerificationCompleted.subject(), 2))
        assert sorted(json.loads(m.data)["counts"]["track"] for m in completed) == ["kbk", "kovablik"]

        closing = {"request_id": "close-kbk", "cycle_year": YEAR, "track": "kbk", "at": "2032-05-15T16:00:00+07:00"}
        kbk_closed = await ok(nc, "close_verification", closing)
        assert (kbk_closed["track"], kbk_closed["eligible"], kbk_closed["eligible_digest"]) == ("kbk", 1, digest_ids(["K1"]))
        assert await refused(nc, "override_decision", {**override, "request_id": "ov-late", "verifier_id": "VK"}) == "verification_closed"
        open_kovablik = await ok(nc, "verification_status", {"cycle_year": YEAR})
        assert open_kovablik["state"] == "completed"  # KOVABLIK's run is not closed by KBK's
        kovablik_closed = await ok(nc, "close_verification", {**closing, "request_id": "close", "track": "kovablik"})
        assert (kovablik_closed["track"], kovablik_closed["eligible_digest"]) == ("kovablik", digest_ids(["P1"]))
        verified = [ProposalVerified.model_validate_json(m.data) for m in await eventually(lambda: _n(js, ProposalVerified.subject(), 2))]
        assert {(v.proposal.id, v.proposal.track, v.proposal.group_code) for v in verified} == {("P1", "kovablik", None), ("K1", "kbk", "KBK-K1")}
        closed = await eventually(lambda: _n(js, VerificationClosed.subject(), 2))
        assert sorted((json.loads(m.data)["summary"]["track"], tuple(json.loads(m.data)["eligible_ids"])) for m in closed) == [("kbk", ("K1",)), ("kovablik", ("P1",))]
