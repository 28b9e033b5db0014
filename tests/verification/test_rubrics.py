"""SAKIP grades, the RB index predicate and the CETTAR rating from versioned rubric data (issue 26):
band edges decide exactly, sheets that do not fit their rubric are refused with ``invalid_sheet``,
and every result names its rubric and shows its parts. Pure: no server needed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts.base import SakipGrade
from contracts.verification import VerificationError
from services.common.errors import DomainError
from services.verification import rubric_files
from services.verification.rubrics import bands_of, evaluate_cettar, evaluate_rb, evaluate_sakip

SAKIP = rubric_files.rubric("sakip-permenpanrb-88-2021", "sakip")
RB = rubric_files.rubric("rb-index-permenpanrb-26-2020", "rb")
CETTAR = rubric_files.rubric("cettar-platform-default-2027", "cettar")


def sheet(total: Decimal) -> dict[str, str]:
    """Components that add up to ``total``, filled in the rubric's order within each maximum."""
    left, out = total, {}
    for name, spec in SAKIP["components"].items():
        part = min(left, Decimal(spec["max"]))
        out[name], left = str(part), left - part
    assert left == 0
    return out


# PermenPANRB 88/2021: AA > 90–100, A > 80–90, BB > 70–80, B > 60–70, CC > 50–60, C > 30–50, D 0–30.
SAKIP_EDGES = [("AA", "90"), ("A", "80"), ("BB", "70"), ("B", "60"), ("CC", "50"), ("C", "30")]


@pytest.mark.parametrize(("grade", "edge"), SAKIP_EDGES)
def test_a_sakip_total_on_a_band_edge_belongs_to_the_band_below_and_001_above_to_the_band(grade, edge):
    order = [g.value for g in SakipGrade]  # AA first
    lower = order[order.index(grade) + 1]
    assert evaluate_sakip(SAKIP, sheet(Decimal(edge))).grade == lower
    assert evaluate_sakip(SAKIP, sheet(Decimal(edge) + Decimal("0.01"))).grade == grade
    assert evaluate_sakip(SAKIP, sheet(Decimal(edge) - Decimal("0.01"))).grade == lower


def test_sakip_ends_are_d_at_zero_and_aa_at_full_marks():
    assert evaluate_sakip(SAKIP, sheet(Decimal(0))).grade == "D"
    full = evaluate_sakip(SAKIP, sheet(Decimal(100)))
    assert (full.grade, full.total, full.label) == ("AA", Decimal("100.00"), "Sangat Memuaskan")


def test_the_grades_of_the_rubric_are_the_contracts_sakip_grades_in_order():
    assert [b.grade for b in bands_of(SAKIP)] == [g.value for g in SakipGrade]
    assert [b.grade for b in bands_of(RB)] == [g.value for g in SakipGrade]


def test_a_sakip_total_is_the_parts_as_written_rounded_once():
    # 30 + 30 + 15 + 14.995 = 89.995 → 90.00 (A: 90 is not above 90); rounding each part first
    # would give the same here, but 20.004 + 20.004 + 10.004 + 10.004 = 60.016 → 60.02 (B), not 60.00 (CC).
    assert evaluate_sakip(SAKIP, {"planning": 30, "measurement": 30, "reporting": 15, "internal_evaluation": "14.995"}).total == Decimal("90.00")
    r = evaluate_sakip(SAKIP, {"planning": "20.004", "measurement": "20.004", "reporting": "10.004", "internal_evaluation": "10.004"})
    assert (r.total, r.grade) == (Decimal("60.02"), "B")


def test_the_result_names_its_rubric_and_compares_with_last_years_grade():
    r = evaluate_sakip(SAKIP, sheet(Decimal("85")), previous_grade="BB")
    assert (r.rubric, r.grade, r.previous_grade, r.improvement) == ("sakip-permenpanrb-88-2021", "A", "BB", 1)
    assert evaluate_sakip(SAKIP, sheet(Decimal("55")), previous_grade="A").improvement == -3
    assert evaluate_sakip(SAKIP, sheet(Decimal("55"))).improvement is None


@pytest.mark.parametrize(
    ("components", "field"),
    [
        ({"planning": 31, "measurement": 30, "reporting": 15, "internal_evaluation": 25}, "planning"),
        ({"planning": 30, "measurement": -1, "reporting": 15, "internal_evaluation": 25}, "measurement"),
        ({"planning": 30, "measurement": 30, "reporting": "banyak", "internal_evaluation": 25}, "reporting"),
        ({"planning": 30, "measurement": 30, "reporting": 15, "internal_evaluation": float("nan")}, "internal_evaluation"),
        ({"planning": 30, "measurement": 30, "reporting": True, "internal_evaluation": 25}, "reporting"),
    ],
)
def test_a_component_outside_its_maximum_or_not_a_number_is_refused_naming_it(components, field):
    with pytest.raises(DomainError) as refused:
        evaluate_sakip(SAKIP, components)
    assert refused.value.code == VerificationError.INVALID_SHEET and refused.value.details["field"] == field


def test_a_sheet_missing_or_adding_a_component_is_refused_naming_them():
    with pytest.raises(DomainError) as refused:
        evaluate_sakip(SAKIP, {"planning": 30, "measurement": 30, "reporting": 15, "innovation": 5})
    assert refused.value.code == VerificationError.INVALID_SHEET
    assert refused.value.details == {"missing": ["internal_evaluation"], "unknown": ["innovation"]}


def test_an_unknown_last_years_grade_is_refused():
    with pytest.raises(DomainError) as refused:
        evaluate_sakip(SAKIP, sheet(Decimal(70)), previous_grade="AAA")
    assert refused.value.code == VerificationError.INVALID_SHEET


@pytest.mark.parametrize(("grade", "edge"), SAKIP_EDGES)
def test_rb_index_band_edges_decide_the_predicate(grade, edge):
    exact = Decimal(edge)
    assert evaluate_rb(RB, exact).grade != grade
    assert evaluate_rb(RB, exact + Decimal("0.01")).grade == grade
    assert evaluate_rb(RB, str(exact - Decimal("0.01"))).grade == evaluate_rb(RB, exact).grade


def test_rb_index_outside_0_to_100_is_refused():
    for value in (-0.01, 100.01):
        with pytest.raises(DomainError) as refused:
            evaluate_rb(RB, value)
        assert refused.value.code == VerificationError.INVALID_SHEET


def test_a_cettar_rating_shows_each_part_its_weight_and_contribution():
    r = evaluate_cettar(CETTAR, {"sakip": 92, "rb": 81.5, "zona_integritas": 70, "work_culture": 88})
    assert [(p.name, p.value, p.weight, p.contribution) for p in r.parts] == [
        ("sakip", Decimal("92"), Decimal("0.3"), Decimal("27.6")),
        ("rb", Decimal("81.5"), Decimal("0.3"), Decimal("24.45")),
        ("zona_integritas", Decimal("70"), Decimal("0.2"), Decimal("14.0")),
        ("work_culture", Decimal("88"), Decimal("0.2"), Decimal("17.6")),
    ]
    assert (r.composite, r.grade, r.label, r.rubric) == (Decimal("83.65"), "cettar", "Cettar", "cettar-platform-default-2027")


@pytest.mark.parametrize(("composite", "grade"), [("85", "sangat_cettar"), ("84.99", "cettar"), ("70", "cettar"), ("69.99", "cukup_cettar"), ("0", "cukup_cettar")])
def test_cettar_cut_offs_are_inclusive_lower_edges(composite, grade):
    parts = dict.fromkeys(CETTAR["parts"], composite)
    assert evaluate_cettar(CETTAR, parts).grade == grade


def test_a_cettar_rating_missing_a_part_is_refused():
    with pytest.raises(DomainError) as refused:
        evaluate_cettar(CETTAR, {"sakip": 90, "rb": 90, "zona_integritas": 90})
    assert refused.value.code == VerificationError.INVALID_SHEET and refused.value.details["missing"] == ["work_culture"]


def test_every_rubric_file_names_its_source_and_whether_it_is_confirmed():
    for key in rubric_files.known():
        data = rubric_files._read(rubric_files.RUBRICS_DIR / f"{key}.json")
        assert data["key"] == key and data["kind"] in rubric_files.KINDS
        assert data["source"] and isinstance(data["confirmed"], bool)
        assert bands_of(data)  # the lowest band starts from 0


def test_an_unknown_rubric_or_one_of_another_kind_is_refused_naming_the_known_ones():
    for key, kind in (("sakip-2099", "sakip"), ("rb-index-permenpanrb-26-2020", "sakip"), ("../etc", "rb")):
        with pytest.raises(DomainError) as refused:
            rubric_files.rubric(key, kind)
        assert refused.value.details["known"] == rubric_files.known(kind)
