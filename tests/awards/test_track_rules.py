"""The award rules of the tracks beside KOVABLIK and WBK, as pure functions (issue 26): grade,
best_of_grade, most_improved, sakip_result, KBK's top_n per cluster, what a category without a
track's results says, when the ceremony waits, and what a certificate's signed record attests
(a KOVABLIK or WBK certificate's record is exactly as before)."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.awards import AwardRule
from services.awards import domain, signing
from services.common.errors import NotReady


def rule(key: str, kind: str, **extra: Any) -> AwardRule:
    return AwardRule.model_validate({"key": key, "rule": kind, "name_id": key, "name_en": key, **extra})


def result(code: str, grade: str, total: float, improvement: int | None = None) -> dict[str, Any]:
    return {"subject_code": code, "subject_name": f"Instansi {code}", "grade": grade, "label": grade, "total": total, "improvement": improvement, "parts": []}


SAKIP = [
    result("A1", "AA", 91.0, 0),
    result("A2", "A", 85.5, 1),
    result("A3", "A", 86.0, 2),
    result("A4", "BB", 74.0, 2),
    result("A5", "B", 61.0, -1),
    result("A6", "AA", 91.0, None),  # no grade last year: not "improved"
]


def winners(r: AwardRule, evaluations: dict[str, list[dict[str, Any]]] | None = None, **kw: Any) -> list[tuple[str, ...]]:
    [category] = domain.determine([r], [], [], evaluations=evaluations if evaluations is not None else {"sakip": SAKIP}, **kw)
    return [(w.unit_code, w.grade or "", w.certificate_kind) for w in category.winners]


def test_grade_awards_every_result_with_one_of_its_grades_best_total_first_ties_by_code():
    assert winners(rule("aa", "grade", track="sakip", grades=["AA"])) == [("A1", "AA", "award"), ("A6", "AA", "award")]
    assert [c for c, *_ in winners(rule("a", "grade", track="sakip", grades=["a", "BB"]))] == ["A3", "A2", "A4"]
    assert [c for c, *_ in winners(rule("a", "grade", track="sakip", grades=["A"], min_score=86))] == ["A3"]


def test_best_of_grade_awards_the_best_n_among_its_grades():
    assert [c for c, *_ in winners(rule("best_a", "best_of_grade", track="sakip", grades=["A"]))] == ["A3"]
    assert [c for c, *_ in winners(rule("best", "best_of_grade", track="sakip", grades=["A", "BB"], n=2))] == ["A3", "A2"]
    [empty] = domain.determine([rule("cc", "best_of_grade", track="sakip", grades=["CC"])], [], [], evaluations={"sakip": SAKIP})
    assert empty.winners == [] and empty.empty_reason == "no SAKIP result with grade CC"


def test_most_improved_counts_grades_gained_and_breaks_ties_by_total():
    assert [c for c, *_ in winners(rule("up", "most_improved", track="sakip"))] == ["A3"]  # A3 and A4 gained 2: A3 has the higher total
    assert [c for c, *_ in winners(rule("up", "most_improved", track="sakip", n=3))] == ["A3", "A4", "A2"]
    flat = [result("X1", "A", 80, 0), result("X2", "B", 60, -2), result("X3", "AA", 95, None)]
    [none] = domain.determine([rule("up", "most_improved", track="sakip")], [], [], evaluations={"sakip": flat})
    assert none.winners == [] and none.empty_reason == "no SAKIP result gained a grade against last year"


def test_every_approved_sakip_result_is_handed_over_on_a_certificate_of_its_own_kind():
    handed = winners(rule("handover", "sakip_result", track="sakip"))
    assert [c for c, *_ in handed] == ["A1", "A6", "A3", "A2", "A4", "A5"]
    assert {k for *_, k in handed} == {"sakip_result"}
    [category] = domain.determine([rule("handover", "sakip_result", track="sakip")], [], [], evaluations={"sakip": SAKIP})
    assert category.track == "sakip" and {w.track for w in category.winners} == {"sakip"}
    assert category.winners[0].score == 91.0 and category.winners[0].score_published == "91.00"


def test_a_track_that_is_not_part_of_the_ceremony_says_so():
    [rb] = domain.determine([rule("rb", "grade", track="rb", grades=["baik"])], [], [], evaluations={"sakip": SAKIP})
    assert rb.winners == [] and rb.empty_reason == "the Reformasi Birokrasi evaluation is not part of this ceremony"
    [kbk] = domain.determine([rule("kbk", "top_n", track="kbk", n=3)], [], [])
    assert kbk.winners == [] and kbk.empty_reason == "the KBK track is not part of this ceremony"


def kbk_row(rank: int, cluster: str) -> dict[str, Any]:
    return {"rank": rank, "proposal_id": f"R{rank}", "title": f"Risalah {rank}", "unit_code": f"U{rank}", "group": "umum", "category": cluster, "score": 90.0 - rank}


def test_kbk_ranks_its_own_final_shortlist_per_cluster():
    kbk = [kbk_row(3, "b"), kbk_row(1, "a"), kbk_row(2, "a"), kbk_row(4, "c"), kbk_row(5, "b")]
    innovations = [{**kbk_row(1, "x"), "proposal_id": "P1"}]
    rules = [rule("per", "top_n", track="kbk", n=1, per_category=True), rule("two", "top_n", track="kbk", n=2, per_category=True), rule("kov", "top_n", n=1)]
    per, two, kov = domain.determine(rules, innovations, [], shortlists={"kbk": kbk})
    assert [w.proposal_id for w in per.winners] == ["R1", "R3", "R4"] and per.track == "kbk"
    assert [w.proposal_id for w in two.winners] == ["R1", "R2", "R3", "R4", "R5"]
    assert [w.rank for w in two.winners] == [1, 2, 3, 4, 5]
    assert [w.proposal_id for w in kov.winners] == ["P1"] and kov.track == "kovablik"


def test_the_ceremony_waits_for_a_track_s_closed_evaluation_with_the_count_it_names():
    with pytest.raises(NotReady) as nothing:
        domain.evaluation_ready("cettar", None, 2)
    assert nothing.value.details == {"track": "cettar"} and "CETTAR" in nothing.value.message
    with pytest.raises(NotReady) as fewer:
        domain.evaluation_ready("sakip", SAKIP[:2], 6)
    assert fewer.value.details == {"track": "sakip", "have": 2, "expected": 6}
    assert domain.evaluation_ready("sakip", SAKIP, 6) == SAKIP and domain.evaluation_ready("rb", [], None) == []
    with pytest.raises(NotReady):
        domain.competition_ready("kbk_final", None, None)
    assert domain.competition_ready("kbk_final", [kbk_row(1, "a")], None) == [kbk_row(1, "a")]


def test_a_kovablik_or_wbk_certificate_signs_the_record_it_always_did():
    before = {
        "v": 1,
        "year": 2030,
        "award": {"key": "top", "name": "TOP 3"},
        "winner": {"unit_code": "U1", "unit_name": "Unit", "proposal_id": "P1", "title": "T"},
    }
    for track in ("kovablik", "wbk"):
        attests = signing.attested(track, "award", None, None)
        assert attests is None
        assert signing.certificate_record(2030, "top", "TOP 3", "U1", "Unit", "P1", "T", attests=attests) == before
    handover = signing.attested("sakip", "sakip_result", "AA", "92.40")
    assert handover == {"track": "sakip", "kind": "sakip_result", "grade": "AA", "score": "92.40"}
    assert signing.attested("kbk", "award", None, None) == {"track": "kbk", "kind": "award"}
    assert signing.certificate_record(2030, "s", "S", "A1", "Instansi", None, None, attests=handover)["attests"] == handover
