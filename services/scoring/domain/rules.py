"""Scoring's rules, free of I/O: conflict-aware juror assignment, weighted totals, per-juror
normalisation, ranking with stated tie-breaks, proportional shortlists, divergence."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.scoring import Criterion, ScoringError
from services.common.errors import DomainError


@dataclass(frozen=True)
class Entrant:
    id: str
    agency: str
    group: str
    category: str
    forwarded_at: str = ""


@dataclass(frozen=True)
class JurorInfo:
    id: str
    affiliation: str
    expertise: frozenset[str] = frozenset()
    conflicts: frozenset[str] = frozenset()


def may_judge(juror: JurorInfo, entrant: Entrant) -> bool:
    """Never a juror from the proposal's own agency or with a declared conflict."""
    return juror.affiliation != entrant.agency and entrant.id not in juror.conflicts and entrant.agency not in juror.conflicts


def choose_juror(entrant: Entrant, pool: Iterable[JurorInfo], taken: Collection[str], loads: Mapping[str, int]) -> JurorInfo | None:
    """The juror to give ``entrant`` one more assignment (a divergence, a declared conflict's
    replacement): one who may judge it and is not ``taken`` (already on it), the least loaded,
    matching expertise preferred, then by id; none when the pool has no one left."""
    candidates = [j for j in pool if j.id not in taken and may_judge(j, entrant)]
    return min(candidates, key=lambda j: (loads.get(j.id, 0), entrant.category not in j.expertise, j.id), default=None)


def _tiebreak(seed: int, *parts: str) -> int:
    return int.from_bytes(hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()[:8], "big")


_YEAR_PREFIX = re.compile(r"^P\d{4}-")


def _in_year(proposal_id: str) -> str:
    """A proposal's id without its year (P2027-00012 → 00012): the draw of juries depends on the
    seed and on the proposals' order, not on the year, so a rehearsal in another year (the demo
    run again) with the same seed gets the same juries."""
    return _YEAR_PREFIX.sub("", proposal_id)


def assign(entrants: Sequence[Entrant], jurors: Sequence[JurorInfo], per_proposal: int, seed: int) -> dict[str, list[str]]:
    """Give every entrant exactly ``per_proposal`` eligible jurors, loads balanced, matching
    expertise preferred, deterministic for a seed. Raises ``infeasible_assignment`` naming every
    proposal that cannot be covered, before assigning anything."""
    eligible = {e.id: [j for j in jurors if may_judge(j, e)] for e in entrants}
    short = sorted(e.id for e in entrants if len(eligible[e.id]) < per_proposal)
    if short:
        raise DomainError(
            ScoringError.INFEASIBLE_ASSIGNMENT,
            f"{len(short)} proposal(s) cannot get {per_proposal} jurors without a conflict: {', '.join(short[:10])}",
            {"proposals": short, "jurors_per_proposal": per_proposal, "pool": len(jurors)},
        )
    load = {j.id: 0 for j in jurors}
    order = sorted(entrants, key=lambda e: (len(eligible[e.id]), _tiebreak(seed, _in_year(e.id))))
    out: dict[str, list[str]] = {}
    for e in order:
        ranked = sorted(
            eligible[e.id],
            key=lambda j: (load[j.id], e.category not in j.expertise, _tiebreak(seed, _in_year(e.id), j.id)),
        )
        chosen = [j.id for j in ranked[:per_proposal]]
        for jid in chosen:
            load[jid] += 1
        out[e.id] = chosen
    _rebalance(out, {e.id: e for e in entrants}, {j.id: j for j in jurors}, load)
    return {pid: sorted(js) for pid, js in sorted(out.items())}


def _rebalance(out: dict[str, list[str]], entrants: dict[str, Entrant], jurors: dict[str, JurorInfo], load: dict[str, int]) -> None:
    """Move assignments from the busiest jurors to less busy ones while that is allowed and helps:
    the idlest first, then the next idlest, since a conflict may bar one but not another."""
    if not load:
        return
    by_juror: dict[str, list[str]] = {j: [] for j in load}
    for pid, js in sorted(out.items()):
        for j in js:
            by_juror[j].append(pid)
    for _ in range(10 * len(load) + 100):
        top = max(load.values())
        busiest = sorted(j for j in load if load[j] == top)
        idle = sorted(load, key=lambda j: (load[j], j))
        move = next(
            (
                (hi, lo, pid)
                for hi in busiest
                for lo in idle
                if top - load[lo] >= 2
                for pid in by_juror[hi]
                if lo not in out[pid] and may_judge(jurors[lo], entrants[pid])
            ),
            None,
        )
        if move is None:
            return  # the pool's conflicts do not allow a better balance
        hi, lo, pid = move
        out[pid][out[pid].index(hi)] = lo
        by_juror[hi].remove(pid)
        by_juror[lo].append(pid)
        load[hi] -= 1
        load[lo] += 1


# Totals and scores are compared at this many decimals: weights such as 0.15 make equal totals
# differ in the last binary digit (5.7 vs 5.700000000000001), which must not decide a rank.
PLACES = 9


def weighted_total(values: dict[str, float], criteria: Sequence[Criterion]) -> float:
    """Σ weight × value, on the criteria's scale (weights sum to 1), free of float noise."""
    return round(sum(c.weight * values[c.key] for c in criteria), PLACES)


def check_scores(values: dict[str, float], criteria: Sequence[Criterion]) -> None:
    keys = {c.key for c in criteria}
    unknown = sorted(set(values) - keys)
    if unknown:
        raise DomainError(ScoringError.UNKNOWN_CRITERION, f"unknown criteria: {', '.join(unknown)}", {"unknown": unknown, "criteria": sorted(keys)})
    missing = sorted(keys - set(values))
    if missing:
        raise DomainError(ScoringError.MISSING_CRITERION, f"missing criteria: {', '.join(missing)}", {"missing": missing})
    for c in criteria:
        v = values[c.key]
        if not math.isfinite(v) or v < c.scale_min or v > c.scale_max:
            raise DomainError(
                ScoringError.OFF_SCALE,
                f"{c.key} = {v} is off the scale {c.scale_min:g}–{c.scale_max:g}",
                {"criterion": c.key, "value": v, "min": c.scale_min, "max": c.scale_max},
            )


def diverges(totals: Iterable[float], threshold: float) -> float | None:
    """The spread of a proposal's weighted totals when it exceeds the threshold."""
    values = list(totals)
    if len(values) < 2:
        return None
    spread = max(values) - min(values)
    return spread if spread > threshold else None


@dataclass
class Score:
    juror: str
    proposal: str
    total: float
    values: dict[str, float]


@dataclass
class Row:
    proposal: str
    score: float | None
    jurors: int
    explanation: dict[str, Any] = field(default_factory=dict)
    raw: float | None = None  # mean raw weighted total: what a passing grade is compared with


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _sd(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


def normalise(scores: Sequence[Score]) -> tuple[dict[tuple[str, str], float], set[str]]:
    """Per-juror z-scores mapped back to the stage's scale (pooled mean and spread of all raw
    totals), so a harsh and a lenient juror count alike. Jurors with fewer than 2 scores keep
    their raw totals and are flagged."""
    if not scores:
        return {}, set()
    raw = [round(s.total, PLACES) for s in scores]
    mu, sigma = _mean(raw), _sd(raw)
    by_juror: dict[str, list[Score]] = {}
    for s in scores:
        by_juror.setdefault(s.juror, []).append(s)
    out: dict[tuple[str, str], float] = {}
    flagged: set[str] = set()
    for juror, own in by_juror.items():
        totals = [round(s.total, PLACES) for s in own]
        if len(own) < 2:
            flagged.add(juror)
            for s in own:
                out[(juror, s.proposal)] = s.total
            continue
        m, sd = _mean(totals), _sd(totals)
        for s, total in zip(own, totals, strict=True):
            # A juror who gave every proposal the same total says nothing about their order.
            z = (total - m) / sd if sd > 10**-PLACES else 0.0
            out[(juror, s.proposal)] = round(mu + z * sigma, PLACES)
    return out, flagged


def rank(
    entrants: Sequence[Entrant], scores: Sequence[Score], criteria: Sequence[Criterion]
) -> list[Row]:
    """Rank by the mean normalised total over the jurors who scored (missing never counts as
    zero; unscored proposals last, flagged). Ties: higher mean on the highest-weighted criterion,
    then earlier forward, then proposal id. Every row says how it was computed."""
    normalised, flagged = normalise(scores)
    top = max(criteria, key=lambda c: (c.weight, c.key))
    by_proposal: dict[str, list[Score]] = {}
    for s in scores:
        by_proposal.setdefault(s.proposal, []).append(s)
    rows = []
    for e in entrants:
        own = sorted(by_proposal.get(e.id, []), key=lambda s: s.juror)
        if own:
            values = [normalised[(s.juror, e.id)] for s in own]
            score: float | None = round(_mean(values), PLACES)
            raw: float | None = round(_mean([s.total for s in own]), PLACES)
            top_mean = round(_mean([s.values[top.key] for s in own]), PLACES)
        else:
            score, raw, top_mean = None, None, float("-inf")
        explanation = {
            "jurors": [
                {
                    "juror_id": s.juror,
                    "raw_total": round(s.total, 4),
                    "normalised": round(normalised[(s.juror, e.id)], 4),
                    "flag": "juror_has_fewer_than_2_scores" if s.juror in flagged else None,
                }
                for s in own
            ],
            "method": _method(own, flagged),
            "method_code": _method_code(own, flagged),
            "top_criterion": top.key,
            "top_criterion_mean": None if not own else round(top_mean, 4),
            "flags": [] if own else ["unscored"],
        }
        rows.append((e, Row(e.id, score, len(own), explanation, raw), top_mean))

    def key(item: tuple[Entrant, Row, float]) -> tuple[Any, ...]:
        e, row, top_mean = item
        return (row.score is None, -(row.score or 0.0), -top_mean, _instant(e.forwarded_at), e.id)

    rows.sort(key=key)
    ordered = [r for _, r, _ in rows]
    for i, (e, row, top_mean) in enumerate(rows):
        if i == 0:
            continue
        prev_e, prev, prev_top = rows[i - 1]
        if row.score is not None and prev.score is not None and row.score == prev.score:
            if top_mean != prev_top:
                by, phrase = "top_criterion", "tie on score with {other}: broken by the mean on " + top.key
            elif _instant(e.forwarded_at) != _instant(prev_e.forwarded_at):
                by, phrase = "earlier_forward", "tie on score and " + top.key + " with {other}: broken by the earlier forward"
            else:
                by, phrase = "proposal_id", "tie with {other}: broken by proposal id"
            # Each side of a tie names the other: the one ranked ahead and the one ranked behind.
            _note_tie(prev, row.proposal, by, "ahead", phrase, top.key)
            _note_tie(row, prev.proposal, by, "behind", phrase, top.key)
    return ordered


def _note_tie(row: Row, other: str, by: str, ranked: str, phrase: str, criterion: str) -> None:
    """Record a tie on ``row``'s explanation: ``ties`` (structured, one entry per proposal it tied
    with) and ``tie_break`` (the same in words; a row tied above and below names both)."""
    ties = row.explanation.setdefault("ties", [])
    ties.append({"with": other, "broken_by": by, "ranked": ranked, "criterion": criterion if by == "top_criterion" else None})
    text = phrase.format(other=other)
    row.explanation["tie_break"] = f"{row.explanation['tie_break']}; {text}" if "tie_break" in row.explanation else text


def _method_code(own: Sequence[Score], flagged: set[str]) -> str:
    """``_method`` as a key a results page can show in its own words: normalised, raw or mixed."""
    raw = sum(1 for s in own if s.juror in flagged)
    return "normalised" if not own or raw == 0 else "raw" if raw == len(own) else "mixed"


def _method(own: Sequence[Score], flagged: set[str]) -> str:
    """How this row's score was computed, in words: normalised, raw, or both."""
    raw = sum(1 for s in own if s.juror in flagged)
    if not own or raw == 0:
        return "mean over jurors of per-juror z-scores mapped to the stage scale"
    if raw == len(own):
        return "mean of the jurors' raw weighted totals: none of them scored 2 or more proposals, so none could be normalised"
    return "mean over jurors of per-juror z-scores mapped to the stage scale; jurors with fewer than 2 scores count with their raw totals"


def _instant(stamp: str) -> dt.datetime:
    """A forward's time for the tie-break (ISO strings do not sort as instants: ``…:00Z`` after
    ``…:00.5Z``); never forwarded sorts last."""
    if not stamp:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)


def shortlist(rows: Sequence[Row], groups: dict[str, str], advance: int, proportions: dict[str, float] | None) -> list[str]:
    """The top ``advance`` (scored) proposals; with proportions, seats per group by largest
    remainder, and seats a group cannot fill go to the best remaining overall."""
    scored = [r.proposal for r in rows if r.score is not None]
    if not proportions:
        return scored[:advance]
    quotas = {g: advance * share for g, share in proportions.items()}
    seats = {g: int(q) for g, q in quotas.items()}
    rest = advance - sum(seats.values())
    for g in sorted(quotas, key=lambda g: (-(quotas[g] - seats[g]), g))[:rest]:
        seats[g] += 1
    chosen: list[str] = []
    for pid in scored:
        g = groups[pid]
        if seats.get(g, 0) > 0:
            chosen.append(pid)
            seats[g] -= 1
    for pid in scored:
        if len(chosen) >= advance:
            break
        if pid not in chosen:
            chosen.append(pid)
    order = {pid: i for i, pid in enumerate(scored)}
    return sorted(chosen[:advance], key=order.__getitem__)


def rng_for(seed: int) -> random.Random:
    return random.Random(seed)


def objection_window(closed_at: dt.datetime, until: dt.datetime | None, published_at: dt.datetime) -> dt.datetime | None:
    """The public's objection window, measured from when the shortlist is actually published: a
    close asked for at ``closed_at`` with a window ``until`` that the service only gets to later
    (it was down, the command was retried) still gives the whole window from its publication."""
    if until is None:
        return None
    return max(until, published_at + (until - closed_at))
