"""The WBK (Zona Integritas) evaluation: an LKE scored against a threshold set handed in as data,
and the aggregate that keeps a unit's result with its verifiers' overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from contracts.base import Event, SakipGrade, WbkDecision
from contracts.verification import (
    DecisionOverridden,
    Lke,
    OverrideWbk,
    SubmitLke,
    ThresholdCheck,
    VerificationError,
    WbkEvaluated,
    WbkResult,
)
from services.common.errors import DomainError

ThresholdSet = Mapping[str, Any]
"""One versioned threshold set (``data/wbk_thresholds/<key>.json``, loaded by the adapter)."""


def pick_threshold_set(sets: Mapping[str, ThresholdSet], key: str) -> ThresholdSet:
    """The set named ``key``; an unknown key is refused naming the known ones."""
    if key not in sets:
        known = sorted(sets)
        raise DomainError(
            VerificationError.UNKNOWN_THRESHOLD_SET, f"unknown threshold set {key!r}; known: {', '.join(known)}", {"known": known}
        )
    return sets[key]


def _exact(value: float) -> Decimal:
    """A value as it was written (0.1 is 0.1, not its binary neighbour)."""
    return Decimal(str(value))


def _r2(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _range_problems(lke: Lke, rules: ThresholdSet) -> list[dict[str, str]]:
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
    return problems


def check_lke_ranges(lke: Lke, rules: ThresholdSet) -> None:
    """Refuse an LKE with a value outside what its threshold set allows, naming every one."""
    problems = _range_problems(lke, rules)
    if problems:
        raise DomainError(
            VerificationError.LKE_OUT_OF_RANGE,
            f"the LKE has {len(problems)} value(s) out of range: {problems[0]['field']} {problems[0]['problem']}",
            problems,
        )


def _check(name: str, value: Decimal, floor: float, exact: bool = False) -> ThresholdCheck:
    # Sums are exact (the parts as written), rounded once here: rounding each of fifteen
    # parts first could lift a 74.925 to 75.00.
    v = value if exact else _r2(value)
    return ThresholdCheck(name=name, value=float(v), minimum=floor, passed=v >= _r2(floor))


def _score_checks(lke: Lke, rules: ThresholdSet) -> tuple[Decimal, Decimal, list[ThresholdCheck]]:
    """The total, the leverage total, and the checks of every sum against its minimum."""
    minimum = rules["minimum"]
    areas = {name: _exact(a.fulfilment) + _exact(a.reform) for name, a in lke.areas.items()}
    leverage = sum(areas.values(), Decimal(0))
    r = lke.results
    anti, performance, service = _exact(r.anti_corruption_survey), _exact(r.performance), _exact(r.service_survey)
    total = leverage + anti + performance + service
    checks = [_check("total", total, minimum["total"]), _check("leverage_total", leverage, minimum["leverage_total"])]
    for name, spec in rules["areas"].items():
        checks.append(_check(f"area.{name}", areas[name], float(_r2(spec["weight"] * minimum["area_share"]))))
    checks += [
        _check("clean_accountable", anti + performance, minimum["clean_accountable"]),
        _check("anti_corruption_survey", anti, minimum["anti_corruption_survey"]),
        _check("performance", performance, minimum["performance"]),
        _check("service_survey", service, minimum["service_survey"]),
    ]
    return total, leverage, checks


def _precondition_checks(lke: Lke, rules: ThresholdSet) -> list[ThresholdCheck]:
    pre, minimum = lke.preconditions, rules["minimum"]
    grade_floor = SakipGrade(minimum["sakip_grade"])
    return [
        # "100% complete" means complete: 99.995 is not rounded up into a pass.
        _check("precondition.audit_followup_pct", _exact(pre.audit_followup_pct), minimum["audit_followup_pct"], exact=True),
        ThresholdCheck(
            name=f"precondition.sakip_grade_at_least_{grade_floor.value}",
            value=float(pre.sakip_grade.rank),
            minimum=float(grade_floor.rank),
            passed=pre.sakip_grade.rank >= grade_floor.rank,
        ),
        ThresholdCheck(
            name="precondition.asset_declaration_compliant",
            value=1.0 if pre.asset_declaration_compliant else 0.0,
            minimum=1.0,
            passed=pre.asset_declaration_compliant,
        ),
    ]


def evaluate_lke(lke: Lke, rules: ThresholdSet) -> tuple[WbkDecision, float, float, list[ThresholdCheck]]:
    """Score an LKE against a threshold set: the decision, total, leverage total and every check.
    Values are compared at two decimals: exactly at a minimum passes, a hundredth below fails."""
    check_lke_ranges(lke, rules)
    total, leverage, checks = _score_checks(lke, rules)
    checks += _precondition_checks(lke, rules)
    decision = WbkDecision.LAYAK_WBK if all(c.passed for c in checks) else WbkDecision.BELUM_LAYAK
    return decision, float(_r2(total)), float(_r2(leverage)), checks


@dataclass
class WbkEvaluation:
    """A unit's WBK result in a cycle: its scored LKE (a new LKE replaces it, overrides and all)
    and the verifiers' overrides of the decision."""

    cycle_year: int
    unit_code: str
    result: WbkResult
    unit_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def evaluate(cls, cmd: SubmitLke, thresholds: ThresholdSet) -> tuple[WbkEvaluation, list[Event]]:
        decision, total, leverage, checks = evaluate_lke(cmd.lke, thresholds)
        result = WbkResult(
            unit_code=cmd.unit_code,
            cycle_year=cmd.cycle_year,
            threshold_set=cmd.threshold_set,
            total=total,
            leverage_total=leverage,
            automatic=decision,
            final=decision,
            failed=[c for c in checks if not c.passed],
            checks=checks,
        )
        evaluation = cls(cmd.cycle_year, cmd.unit_code, result, cmd.unit_name, cmd.agency_code, cmd.agency_name)
        return evaluation, [evaluation._evaluated()]

    def override(self, cmd: OverrideWbk, at: dt.datetime) -> list[Event]:
        """A verifier's decision replaces the automatic one (the checks stay as scored)."""
        self.result = self.result.model_copy(update={"final": cmd.decision, "overridden": True})
        record = {"decision": cmd.decision.value, "reason": cmd.reason, "verifier_id": cmd.verifier_id, "at": at.isoformat()}
        self.overrides = [*self.overrides, record]
        overridden = DecisionOverridden(
            cycle_year=self.cycle_year,
            subject_kind="wbk",
            subject_id=self.unit_code,
            automatic=self.result.automatic.value,
            decision=cmd.decision.value,
            reason=cmd.reason,
            verifier_id=cmd.verifier_id,
        )
        return [overridden, self._evaluated()]

    @property
    def layak(self) -> bool:
        return self.result.final == WbkDecision.LAYAK_WBK

    def _evaluated(self) -> WbkEvaluated:
        return WbkEvaluated(
            cycle_year=self.cycle_year,
            result=self.result,
            unit_name=self.unit_name,
            agency_code=self.agency_code,
            agency_name=self.agency_name,
        )


def known_evaluation(evaluation: WbkEvaluation | None, cycle_year: int, unit_code: str) -> WbkEvaluation:
    """The unit's evaluation, or ``not_found`` when it never sent an LKE that cycle."""
    if evaluation is None:
        raise DomainError(VerificationError.NOT_FOUND, f"no LKE of {unit_code} in {cycle_year}")
    return evaluation
