"""Verification's rules, free of I/O: the administrative check and the WBK evaluation."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from contracts.base import SakipGrade, WbkDecision, title_key
from contracts.verification import (
    AdminRules,
    DisqualificationReason,
    Lke,
    Reasoned,
    ThresholdCheck,
    VerificationError,
)
from services.common.errors import DomainError

CYCLE_ZONE = ZoneInfo("Asia/Jakarta")
MIN_ANSWER_CHARS = 20  # shorter answers are "careless": the proposal is incomplete




def months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + (end.month - start.month)
    return months - (1 if end.day < start.day else 0)


def check_proposal(
    proposal: dict[str, Any], rules: AdminRules, closed_at: dt.datetime, duplicates: list[str]
) -> list[Reasoned]:
    """Every reason this proposal fails the administrative check (empty: eligible)."""
    content = proposal["content"]
    reasons: list[Reasoned] = []
    short = [f for f in ("summary", "problem", "solution", "impact") if len((content.get(f) or "").strip()) < MIN_ANSWER_CHARS]
    if short:
        reasons.append(
            Reasoned(
                code=DisqualificationReason.INCOMPLETE,
                message=f"Isian tidak lengkap: {', '.join(short)} (incomplete or careless answers: {', '.join(short)})",
            )
        )
    kinds = {d["kind"] for d in content.get("documents", [])}
    missing = [k for k in rules.required_documents if k not in kinds]
    if missing:
        reasons.append(
            Reasoned(
                code=DisqualificationReason.MISSING_DOCUMENT,
                message=f"Dokumen wajib tidak ada: {', '.join(missing)} (required document missing: {', '.join(missing)})",
            )
        )
    started = dt.date.fromisoformat(content["started_on"])
    # The call closes on a Jakarta date (a 06:00 WIB close is the day before in UTC).
    months = months_between(started, closed_at.astimezone(CYCLE_ZONE).date())
    if months < rules.min_running_months:
        reasons.append(
            Reasoned(
                code=DisqualificationReason.TOO_YOUNG,
                message=(
                    f"Inovasi baru berjalan {months} bulan, minimal {rules.min_running_months} bulan "
                    f"(the innovation has run {months} months, at least {rules.min_running_months} are required)"
                ),
            )
        )
    if content["group"] not in [g.value for g in rules.groups]:
        reasons.append(
            Reasoned(code=DisqualificationReason.INVALID_GROUP, message=f"Kelompok {content['group']} tidak dibuka (group not open)")
        )
    if rules.categories is not None and content["category"] not in rules.categories:
        reasons.append(
            Reasoned(
                code=DisqualificationReason.INVALID_CATEGORY,
                message=f"Kategori {content['category']} tidak dikenal (unknown category)",
            )
        )
    if duplicates:
        reasons.append(
            Reasoned(
                code=DisqualificationReason.DUPLICATE_TITLE,
                message=f"Judul sama dengan proposal {', '.join(duplicates)} (same title as {', '.join(duplicates)})",
            )
        )
    if content["group"] == "umum":
        key = title_key(content["title"])
        for winner in rules.past_winners:
            # A winner named with its agency is that agency's innovation, not every namesake.
            if title_key(winner.title) == key and winner.agency_code in (None, proposal.get("agency_code")):
                reasons.append(
                    Reasoned(
                        code=DisqualificationReason.PAST_TOP_WINNER,
                        message=(
                            f"Pemenang utama {winner.year} tidak boleh masuk kelompok umum lagi "
                            f"(a top winner of {winner.year} may not enter the general group again)"
                        ),
                    )
                )
                break
    return reasons


# --------------------------------------------------------------------------- WBK


def _exact(value: float) -> Decimal:
    """A value as it was written (0.1 is 0.1, not its binary neighbour)."""
    return Decimal(str(value))


def _r2(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check_lke_ranges(lke: Lke, rules: dict[str, Any]) -> None:
    problems = []
    areas = rules["areas"]
    for name in lke.areas:
        if name not in areas:
            problems.append({"field": f"areas.{name}", "problem": f"unknown area; known: {', '.join(areas)}"})
    for name, spec in areas.items():
        score = lke.areas.get(name)
        if score is None:
            problems.append({"field": f"areas.{name}", "problem": "missing"})
            continue
        half = spec["weight"] / 2
        for part in ("fulfilment", "reform"):
            value = getattr(score, part)
            if value > half:
                problems.append({"field": f"areas.{name}.{part}", "problem": f"{value} exceeds the part's weight {half:g}"})
    for name, maximum in rules["result_maxima"].items():
        value = getattr(lke.results, name)
        if value > maximum:
            problems.append({"field": f"results.{name}", "problem": f"{value} exceeds its maximum {maximum:g}"})
    if problems:
        raise DomainError(
            VerificationError.LKE_OUT_OF_RANGE,
            f"the LKE has {len(problems)} value(s) out of range: {problems[0]['field']} {problems[0]['problem']}",
            problems,
        )


def evaluate_lke(lke: Lke, rules: dict[str, Any]) -> tuple[WbkDecision, float, float, list[ThresholdCheck]]:
    """Score an LKE against a threshold set (``rules``, loaded by ``thresholds.threshold_set``): the
    decision, total, leverage total and every check. Values are compared at two decimals: exactly at
    a minimum passes, a hundredth below fails."""
    check_lke_ranges(lke, rules)
    minimum = rules["minimum"]
    checks: list[ThresholdCheck] = []

    def check(name: str, value: Decimal, floor: float, exact: bool = False) -> None:
        # Sums are exact (the parts as written), rounded once here: rounding each of fifteen
        # parts first could lift a 74.925 to 75.00.
        v = value if exact else _r2(value)
        checks.append(ThresholdCheck(name=name, value=float(v), minimum=floor, passed=v >= _r2(floor)))

    areas = {name: _exact(a.fulfilment) + _exact(a.reform) for name, a in lke.areas.items()}
    leverage = sum(areas.values(), Decimal(0))
    results = lke.results
    anti, performance, service = (_exact(results.anti_corruption_survey), _exact(results.performance), _exact(results.service_survey))
    total = leverage + anti + performance + service
    check("total", total, minimum["total"])
    check("leverage_total", leverage, minimum["leverage_total"])
    for name, spec in rules["areas"].items():
        floor = float(_r2(spec["weight"] * minimum["area_share"]))
        check(f"area.{name}", areas[name], floor)
    check("clean_accountable", anti + performance, minimum["clean_accountable"])
    check("anti_corruption_survey", anti, minimum["anti_corruption_survey"])
    check("performance", performance, minimum["performance"])
    check("service_survey", service, minimum["service_survey"])
    pre = lke.preconditions
    # "100% complete" means complete: 99.995 is not rounded up into a pass.
    check("precondition.audit_followup_pct", _exact(pre.audit_followup_pct), minimum["audit_followup_pct"], exact=True)
    grade_floor = SakipGrade(minimum["sakip_grade"])
    checks.append(
        ThresholdCheck(
            name=f"precondition.sakip_grade_at_least_{grade_floor.value}",
            value=float(pre.sakip_grade.rank),
            minimum=float(grade_floor.rank),
            passed=pre.sakip_grade.rank >= grade_floor.rank,
        )
    )
    checks.append(
        ThresholdCheck(
            name="precondition.asset_declaration_compliant",
            value=1.0 if pre.asset_declaration_compliant else 0.0,
            minimum=1.0,
            passed=pre.asset_declaration_compliant,
        )
    )
    decision = WbkDecision.LAYAK_WBK if all(c.passed for c in checks) else WbkDecision.BELUM_LAYAK
    return decision, float(_r2(total)), float(_r2(leverage)), checks
