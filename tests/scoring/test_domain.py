"""Scoring's rules without NATS or a database: assignment never violates a conflict and balances
load (property-based), normalisation, tie-breaks, proportional shortlists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.scoring import Criterion
from services.common.errors import DomainError
from services.scoring import domain
from services.scoring.domain import Entrant, JurorInfo, Score

CRIT = [Criterion(key="mutu", name="Mutu", weight=0.6), Criterion(key="dampak", name="Dampak", weight=0.4)]


@st.composite
def pools(draw):  # type: ignore[no-untyped-def]
    agencies = [f"A{i}" for i in range(draw(st.integers(2, 6)))]
    n_jurors = draw(st.integers(4, 25))
    jurors = []
    for j in range(n_jurors):
        conflicts = draw(st.lists(st.sampled_from(agencies), max_size=2))
        jurors.append(JurorInfo(f"J{j:02d}", draw(st.sampled_from([*agencies, "UNIV", "UNIV2"])), frozenset({"kesehatan"}), frozenset(conflicts)))
    entrants = [
        Entrant(f"P{i:03d}", draw(st.sampled_from(agencies)), "umum", draw(st.sampled_from(["kesehatan", "pendidikan"])))
        for i in range(draw(st.integers(1, 40)))
    ]
    return entrants, jurors, draw(st.integers(1, 3)), draw(st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(pools())
def test_assignment_never_violates_a_conflict_and_balances_load(pool):
    entrants, jurors, k, seed = pool
    try:
        plan = domain.assign(entrants, jurors, k, seed)
    except DomainError as exc:
        assert exc.code == "infeasible_assignment"
        uncovered = set(exc.details["proposals"])
        assert uncovered and all(sum(domain.may_judge(j, e) for j in jurors) < k for e in entrants if e.id in uncovered)
        return
    by_id = {j.id: j for j in jurors}
    loads = dict.fromkeys(by_id, 0)
    for e in entrants:
        chosen = plan[e.id]
        assert len(chosen) == len(set(chosen)) == k
        for jid in chosen:
            assert domain.may_judge(by_id[jid], e)
            loads[jid] += 1
    # Where every juror may judge everything, the load is balanced to within one.
    if all(domain.may_judge(j, e) for j in jurors for e in entrants):
        assert max(loads.values()) - min(loads.values()) <= 1
    assert domain.assign(entrants, jurors, k, seed) == plan  # deterministic for a seed


def test_the_same_seed_draws_the_same_juries_in_any_year():
    """The draw depends on the seed and the proposals, not on the year in their ids: a rehearsal
    (the demo run again in another year) with the same seed gets the same juries."""
    jurors = [JurorInfo(f"J{j:02d}", f"U{j % 4}", frozenset({"kesehatan"}), frozenset()) for j in range(12)]

    def plan(year: int, seed: int) -> dict[str, list[str]]:
        entrants = [Entrant(f"P{year}-{i:05d}", f"A{i % 5}", "umum", ["kesehatan", "pendidikan"][i % 2]) for i in range(1, 30)]
        return {pid.split("-")[1]: js for pid, js in domain.assign(entrants, jurors, 3, seed).items()}

    assert plan(2026, 1) == plan(2061, 1)
    assert plan(2026, 1) != plan(2026, 2)  # the seed still draws


def test_an_infeasible_pool_fails_naming_the_proposals():
    entrants = [Entrant("P1", "A", "umum", "x"), Entrant("P2", "B", "umum", "x")]
    jurors = [JurorInfo("J1", "A"), JurorInfo("J2", "A"), JurorInfo("J3", "C", conflicts=frozenset({"P2"}))]
    with pytest.raises(DomainError) as err:
        domain.assign(entrants, jurors, 2, 0)
    assert err.value.code == "infeasible_assignment" and err.value.details["proposals"] == ["P1"]  # P2 still has J1 and J2


def test_expertise_is_preferred():
    entrants = [Entrant("P1", "A", "umum", "kesehatan")]
    jurors = [JurorInfo("J1", "U"), JurorInfo("J2", "U", expertise=frozenset({"kesehatan"})), JurorInfo("J3", "U")]
    assert domain.assign(entrants, jurors, 1, 0) == {"P1": ["J2"]}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(20, 90).map(lambda x: x / 10), min_size=3, max_size=12, unique=True), st.floats(0.5, 2.5), st.floats(-2, 2))
def test_a_harsh_and_a_lenient_juror_with_the_same_ordering_rank_alike(quality, spread, shift):
    """Two panels: the same ordering, one juror scoring low and narrow, one high and wide."""
    entrants = [Entrant(f"P{i:02d}", "A", "umum", "x") for i in range(len(quality))]
    harsh = [Score("H", e.id, 1 + q * 0.5, {"mutu": q, "dampak": q}) for e, q in zip(entrants, quality, strict=True)]
    lenient = [Score("L", e.id, q * spread + shift + 5, {"mutu": q, "dampak": q}) for e, q in zip(entrants, quality, strict=True)]
    by_harsh = [r.proposal for r in domain.rank(entrants, harsh, CRIT)]
    by_lenient = [r.proposal for r in domain.rank(entrants, lenient, CRIT)]
    assert by_harsh == by_lenient
    mixed = [r.proposal for r in domain.rank(entrants, harsh + lenient, CRIT)]
    assert mixed == by_harsh


def test_missing_scores_never_count_as_zero_and_unscored_rank_last():
    entrants = [Entrant("P1", "A", "umum", "x"), Entrant("P2", "A", "umum", "x"), Entrant("P3", "A", "umum", "x")]
    scores = [Score("J1", "P1", 6.0, {"mutu": 6, "dampak": 6}), Score("J1", "P2", 8.0, {"mutu": 8, "dampak": 8}), Score("J2", "P1", 7.0, {"mutu": 7, "dampak": 7})]
    rows = domain.rank(entrants, scores, CRIT)
    assert [r.proposal for r in rows] == ["P2", "P1", "P3"]
    assert rows[-1].score is None and rows[-1].explanation["flags"] == ["unscored"]
    assert rows[1].jurors == 2
    assert any(j["flag"] for j in rows[1].explanation["jurors"])  # J2 has a single score: flagged
    assert rows[1].explanation["method"].endswith("jurors with fewer than 2 scores count with their raw totals")
    assert rows[0].explanation["method"] == "mean over jurors of per-juror z-scores mapped to the stage scale"
    alone = domain.rank(entrants[:1], [Score("J9", "P1", 6.0, {"mutu": 6, "dampak": 6})], CRIT)
    assert alone[0].explanation["method"].startswith("mean of the jurors' raw weighted totals")


def test_ties_break_by_top_criterion_then_earlier_forward_then_id():
    entrants = [
        Entrant("P3", "A", "umum", "x", "2026-04-02T00:00:00+07:00"),
        Entrant("P1", "A", "umum", "x", "2026-04-02T00:00:00+07:00"),
        Entrant("P2", "A", "umum", "x", "2026-04-01T00:00:00+07:00"),
        Entrant("P4", "A", "umum", "x", "2026-04-01T00:00:00+07:00"),
    ]
    # One juror scoring all four with the same total: P4 wins on the top criterion (mutu),
    # then P2 (earlier forward) before P1 and P3 (same forward time: by id).
    scores = [
        Score("J1", "P1", 7.0, {"mutu": 7, "dampak": 7}),
        Score("J1", "P2", 7.0, {"mutu": 7, "dampak": 7}),
        Score("J1", "P3", 7.0, {"mutu": 7, "dampak": 7}),
        Score("J1", "P4", 7.0, {"mutu": 8, "dampak": 5.5}),
    ]
    rows = domain.rank(entrants, scores, CRIT)
    assert [r.proposal for r in rows] == ["P4", "P2", "P1", "P3"]
    assert "mutu" in rows[1].explanation["tie_break"]
    assert "earlier forward" in rows[2].explanation["tie_break"]
    assert "proposal id" in rows[3].explanation["tie_break"]


def test_each_side_of_a_tie_names_the_proposal_it_tied_with_never_itself():
    entrants = [Entrant(p, "A", "umum", "x", "2026-04-02T00:00:00+07:00") for p in ("P1", "P2", "P3")]
    scores = [
        Score("J1", "P1", 7.0, {"mutu": 7, "dampak": 7}),
        Score("J1", "P2", 7.0, {"mutu": 8, "dampak": 5.5}),
        Score("J1", "P3", 7.0, {"mutu": 7, "dampak": 7}),
        Score("J2", "P1", 6.0, {"mutu": 6, "dampak": 6}),
        Score("J2", "P2", 6.0, {"mutu": 6, "dampak": 6}),
        Score("J2", "P3", 6.0, {"mutu": 6, "dampak": 6}),
    ]
    rows = domain.rank(entrants, scores, CRIT)
    assert [r.proposal for r in rows] == ["P2", "P1", "P3"]
    winner, middle, last = (r.explanation for r in rows)
    assert winner["tie_break"] == "tie on score with P1: broken by the mean on mutu"
    assert "P2" not in winner["tie_break"]
    assert winner["ties"] == [{"with": "P1", "broken_by": "top_criterion", "ranked": "ahead", "criterion": "mutu"}]
    # tied above and below: both named, never itself
    assert middle["tie_break"] == "tie on score with P2: broken by the mean on mutu; tie with P3: broken by proposal id"
    assert [t["with"] for t in middle["ties"]] == ["P2", "P3"] and "P1" not in middle["tie_break"]
    assert last["tie_break"] == "tie with P1: broken by proposal id" and last["ties"][0]["ranked"] == "behind"


def test_proportional_shortlist_and_unused_seats():
    rows = [domain.Row(f"P{i}", 10 - i, 1) for i in range(10)]
    groups = {f"P{i}": ("umum" if i < 7 else "replikasi") for i in range(10)}
    assert domain.shortlist(rows, groups, 4, {"umum": 0.5, "replikasi": 0.5}) == ["P0", "P1", "P7", "P8"]
    # khusus has no proposals: its seat goes to the best remaining overall.
    assert domain.shortlist(rows, groups, 4, {"umum": 0.5, "khusus": 0.25, "replikasi": 0.25}) == ["P0", "P1", "P2", "P7"]
    assert domain.shortlist(rows, groups, 3, None) == ["P0", "P1", "P2"]


def test_divergence_and_score_checks():
    assert domain.diverges([5, 9], 2) == 4 and domain.diverges([5, 6], 2) is None and domain.diverges([5], 0.1) is None
    for values, code in (
        ({"mutu": 5}, "missing_criterion"),
        ({"mutu": 5, "dampak": 5, "gaya": 1}, "unknown_criterion"),
        ({"mutu": 11, "dampak": 5}, "off_scale"),
        ({"mutu": 0, "dampak": 5}, "off_scale"),
    ):
        with pytest.raises(DomainError) as err:
            domain.check_scores(values, CRIT)
        assert err.value.code == code


DESK = [
    Criterion(key=k, name=k, weight=w)
    for k, w in (("kebaruan", 0.20), ("efektivitas", 0.25), ("kemanfaatan", 0.20), ("keberlanjutan", 0.15), ("replikasi", 0.20))
]


def _desk(juror: str, proposal: str, values: tuple[int, ...]) -> Score:
    marks = dict(zip([c.key for c in DESK], map(float, values), strict=True))
    return Score(juror, proposal, domain.weighted_total(marks, DESK), marks)


def test_equal_totals_are_equal_whatever_the_float_noise_and_the_tie_break_decides():
    # 5.7 and 5.700000000000001 in floating point: the same total, so efektivitas (6 vs 4) decides.
    a, b = (5, 6, 6, 4, 7), (6, 4, 6, 6, 7)
    assert domain.weighted_total(dict(zip([c.key for c in DESK], a, strict=True)), DESK) == 5.7
    entrants = [Entrant("PA", "X", "umum", "k", "2026-04-02T00:00:00Z"), Entrant("PB", "Y", "umum", "k", "2026-04-01T00:00:00Z"), Entrant("PZ", "W", "umum", "k")]
    scores = [s for j in ("J1", "J2") for s in (_desk(j, "PB", b), _desk(j, "PA", a), _desk(j, "PZ", (3, 3, 3, 3, 3)))]
    rows = domain.rank(entrants, scores, DESK)
    assert [r.proposal for r in rows] == ["PA", "PB", "PZ"]
    assert rows[0].score == rows[1].score
    assert rows[0].raw == rows[1].raw == 5.7 and rows[2].raw == 3.0  # the jurors' own grade, for a passing grade
    assert rows[1].explanation["tie_break"] == "tie on score with PA: broken by the mean on efektivitas"


def test_a_juror_whose_totals_are_all_equal_maps_each_to_the_pooled_mean():
    scores = [_desk("J1", "PA", (5, 6, 6, 4, 7)), _desk("J1", "PB", (6, 4, 6, 6, 7)), _desk("J2", "PA", (9, 9, 9, 9, 9)), _desk("J2", "PB", (1, 1, 1, 1, 1))]
    normalised, _ = domain.normalise(scores)
    assert normalised[("J1", "PA")] == normalised[("J1", "PB")] == round((5.7 * 2 + 9 + 1) / 4, 9)


def test_the_earlier_forward_is_compared_as_an_instant_not_as_text():
    # As text "…:00Z" sorts after "…:00.500000Z", though it is half a second earlier.
    entrants = [Entrant("P1", "A", "umum", "x", "2026-04-01T05:00:00.500000Z"), Entrant("P2", "A", "umum", "x", "2026-04-01T05:00:00Z")]
    scores = [Score("J1", p, 7.0, {"mutu": 7, "dampak": 7}) for p in ("P1", "P2")]
    rows = domain.rank(entrants, scores, CRIT)
    assert [r.proposal for r in rows] == ["P2", "P1"]
    assert "earlier forward" in rows[1].explanation["tie_break"]


def test_rebalancing_tries_every_less_busy_juror_when_the_idlest_is_barred():
    # j1 may judge only P1 and P3; the busiest juror's work goes to the next idlest instead.
    entrants = [Entrant("P0", "A2", "umum", "k"), Entrant("P1", "A3", "umum", "k"), Entrant("P2", "A2", "umum", "k"), Entrant("P3", "A1", "umum", "k"), Entrant("P4", "A0", "umum", "k")]
    jurors = [
        JurorInfo("j0", "A1", frozenset(), frozenset()),
        JurorInfo("j1", "A3", frozenset(), frozenset({"P0", "P2", "P4"})),
        JurorInfo("j2", "UNI", frozenset(), frozenset({"P4"})),
        JurorInfo("j3", "UNI", frozenset(), frozenset()),
    ]
    plan = domain.assign(entrants, jurors, 2, seed=6)
    loads = {j.id: sum(j.id in js for js in plan.values()) for j in jurors}
    assert max(loads.values()) == 3, loads  # 10 assignments; j1 can take at most 1 (P1 is its own agency's)
    assert all(domain.may_judge(next(j for j in jurors if j.id == jid), next(e for e in entrants if e.id == pid)) for pid, js in plan.items() for jid in js)


def test_the_objection_window_runs_from_the_shortlist_publication():
    import datetime as dt

    at = dt.datetime(2033, 6, 1, 8, tzinfo=dt.UTC)
    until = at + dt.timedelta(days=5)
    assert domain.objection_window(at, until, at - dt.timedelta(hours=1)) == until  # a clock behind (time-skipped): as asked
    assert domain.objection_window(at, until, at + dt.timedelta(seconds=12)) == until + dt.timedelta(seconds=12)
    assert domain.objection_window(at, None, at + dt.timedelta(days=1)) is None


def test_choose_juror_takes_the_least_loaded_free_juror_and_none_when_none_is_left():
    entrant = Entrant("P1", "KAB-A", "umum", "kesehatan")
    pool = [
        JurorInfo("J1", "KAB-A"),  # its own agency
        JurorInfo("J2", "UNAIR", conflicts=frozenset({"P1"})),  # a conflict (listed or declared)
        JurorInfo("J3", "ITS"),
        JurorInfo("J4", "UB", expertise=frozenset({"kesehatan"})),
        JurorInfo("J5", "UM"),
    ]
    loads = {"J1": 0, "J2": 0, "J3": 2, "J4": 2, "J5": 1}
    assert domain.choose_juror(entrant, pool, {"J9"}, loads) == pool[4]  # least loaded
    assert domain.choose_juror(entrant, pool, {"J5"}, loads) == pool[3]  # then matching expertise
    assert domain.choose_juror(entrant, pool, {"J5", "J4"}, loads) == pool[2]
    assert domain.choose_juror(entrant, pool, {"J3", "J4", "J5"}, loads) is None  # J1, J2 may not judge it
    assert domain.choose_juror(entrant, list(reversed(pool)), {"J4"}, {}) == pool[2]  # ties by id, whatever the order
