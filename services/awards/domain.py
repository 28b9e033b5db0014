"""Awards' rules, free of I/O: validating award rules, choosing winners (certificates are signed in signing.py)."""

from __future__ import annotations

from typing import Any

from contracts.awards import AwardRule, CategoryResult, Winner, award_rule_problems


def rule_problems(rules: list[AwardRule]) -> list[dict[str, str]]:
    """Every problem of a cycle's award rules, each with its field path (the contract's rules, so
    ``bfest cycle start --check`` finds the same)."""
    return [{"field": field, "problem": problem} for field, problem in award_rule_problems(rules, "rules")]


def _winner(key: str, rank: int, row: dict[str, Any]) -> Winner:
    return Winner(
        award_key=key,
        rank=rank,
        proposal_id=row["proposal_id"],
        title=row.get("title"),
        unit_code=row["unit_code"],
        unit_name=row.get("unit_name") or row["unit_code"],
        agency_code=row.get("agency_code"),
        agency_name=row.get("agency_name") or row.get("agency_code"),
        group=row.get("group"),
        score=row.get("score"),
    )


def _grade(row: dict[str, Any]) -> float:
    """What a passing grade is compared with: the mean raw weighted total, on the criteria's scale
    (the normalised score is relative to the other jurors and may even leave the scale); a row
    from before raw scores were kept falls back to its score."""
    grade = row.get("raw_score")
    if grade is None:
        grade = row.get("score")
    return float("-inf") if grade is None else float(grade)


def determine(rules: list[AwardRule], shortlist: list[dict[str, Any]], wbk_layak: list[dict[str, Any]]) -> list[CategoryResult]:
    """The winners of every category (a category without a winner says why)."""
    ranked = sorted(shortlist, key=lambda r: r["rank"])
    out = []
    for rule in rules:
        winners: list[Winner] = []
        empty = None
        if rule.rule in ("top_n", "best_of_group"):
            rows = [r for r in ranked if rule.min_score is None or _grade(r) >= rule.min_score]
            if rule.rule == "best_of_group":
                rows = [r for r in rows if r.get("group") == rule.group][: rule.n or 1]
            elif rule.per_group:
                by_group: dict[str, list[dict[str, Any]]] = {}
                for r in rows:
                    by_group.setdefault(r.get("group") or "", []).append(r)
                rows = sorted((r for g in by_group.values() for r in g[: rule.n]), key=lambda r: r["rank"])
            else:
                rows = rows[: rule.n]
            winners = [_winner(rule.key, i, r) for i, r in enumerate(rows, start=1)]
            if not winners:
                empty = (
                    f"no proposal of group {rule.group} on the final shortlist"
                    if rule.rule == "best_of_group"
                    else "no proposal reached the passing grade" if rule.min_score is not None else "the final shortlist is empty"
                )
        elif rule.rule == "layak_wbk":
            # Every unit decided layak_wbk wins; they are listed best total first (a unit decided
            # by a verifier's override without a total last), ties by unit code.
            def by_total(u: dict[str, Any]) -> tuple[bool, float, str]:
                return (u.get("total") is None, -(u.get("total") or 0.0), u["unit_code"])

            for i, u in enumerate(sorted(wbk_layak, key=by_total), start=1):
                winners.append(
                    Winner(
                        award_key=rule.key,
                        rank=i,
                        unit_code=u["unit_code"],
                        unit_name=u.get("unit_name") or u["unit_code"],
                        agency_code=u.get("agency_code"),
                        agency_name=u.get("agency_name") or u.get("agency_code"),
                        score=u.get("total"),
                    )
                )
            if not winners:
                empty = "no unit was decided layak_wbk"
        out.append(CategoryResult(key=rule.key, name_id=rule.name_id, name_en=rule.name_en, rule=rule.rule, winners=winners, empty_reason=empty))
    return out


MONTHS_ID = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober", "November", "Desember"]


def tanggal(value: Any) -> str:
    """A date the Indonesian way: 19 November 2026."""
    return f"{value.day} {MONTHS_ID[value.month - 1]} {value.year}"
