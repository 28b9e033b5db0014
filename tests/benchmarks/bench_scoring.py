"""Ranking 60,000 scores and assigning 20,000 proposals × 3 jurors from a pool of 300, with a
baseline (a plain sort of the same totals) measured in the same run. Prints figures only."""

from __future__ import annotations

import random
import time

from contracts.scoring import Criterion
from services.scoring import domain


def test_ranking_and_assignment_at_national_scale():
    rng = random.Random(1)
    crit = [Criterion(key="a", name="A", weight=0.6), Criterion(key="b", name="B", weight=0.4)]
    entrants = [domain.Entrant(f"P{i:05d}", f"AG{i % 500}", rng.choice(["umum", "khusus", "replikasi"]), "x", f"2026-04-{1 + i % 28:02d}") for i in range(20_000)]
    jurors = [domain.JurorInfo(f"J{j:03d}", f"UNIV{j % 40}", frozenset({"x"}) if j % 3 else frozenset(), frozenset({f"AG{j}"})) for j in range(300)]

    t = time.perf_counter()
    plan = domain.assign(entrants, jurors, 3, seed=7)
    assign_s = time.perf_counter() - t

    scores = []
    for e in entrants:
        for jid in plan[e.id]:
            v = {"a": rng.uniform(1, 10), "b": rng.uniform(1, 10)}
            scores.append(domain.Score(jid, e.id, domain.weighted_total(v, crit), v))
    t = time.perf_counter()
    rows = domain.rank(entrants, scores, crit)
    rank_s = time.perf_counter() - t
    t = time.perf_counter()
    sorted((s.total, s.proposal) for s in scores)
    base_s = time.perf_counter() - t
    loads = {}
    for js in plan.values():
        for j in js:
            loads[j] = loads.get(j, 0) + 1
    print(
        f"\n[bench scoring] assignment 20,000 × 3 over 300 jurors: {assign_s:.2f} s (load {min(loads.values())}–{max(loads.values())})"
        f"\n[bench scoring] ranking {len(scores):,} scores: {rank_s:.2f} s; baseline plain sort {base_s:.3f} s; ratio {rank_s / base_s:.1f}×"
        f"\n[bench scoring] top: {rows[0].proposal} {rows[0].score:.3f}"
    )
