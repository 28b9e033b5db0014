"""Evaluations against versioned rubrics: SAKIP grades, the Reformasi Birokrasi index predicate
and the CETTAR work-culture rating (issue 26). Pure: a rubric arrives as data (the files under
``data/rubrics/``, read by :mod:`services.verification.rubric_files`), a sheet as numbers, and the
result names the rubric it used and shows its parts, so it can be recomputed from its inputs.

Numbers are decimals as written (``Decimal(str(x))``): a total is the sum of its parts rounded once,
half-up to two decimals, and a band is chosen on that published total. A band is either ``above``
an edge (exclusive, as PermenPANRB 88/2021 writes "AA > 90–100") or ``from`` an edge (inclusive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from contracts.verification import VerificationError
from services.common.errors import DomainError

QUANTUM = Decimal("0.01")
HUNDRED = Decimal(100)


def decimal_of(value: float | int | str | Decimal, what: str) -> Decimal:
    """A number as written, refused when it is not a finite number."""
    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        exact = Decimal("NaN")
    if isinstance(value, bool) or not exact.is_finite():
        raise DomainError(VerificationError.INVALID_SHEET, f"{what} must be a number, not {value!r}", {"field": what})
    return exact


def published(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


# ----------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class Band:
    grade: str
    label: str
    edge: Decimal
    inclusive: bool

    def holds(self, total: Decimal) -> bool:
        return total >= self.edge if self.inclusive else total > self.edge

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Band:
        inclusive = "from" in data
        return cls(str(data["grade"]), str(data["label"]), Decimal(str(data["from" if inclusive else "above"])), inclusive)


def bands_of(data: Mapping[str, Any]) -> tuple[Band, ...]:
    """The rubric's bands, highest first; the lowest must reach down to 0 inclusive."""
    bands = tuple(sorted((Band.of(b) for b in data["bands"]), key=lambda b: (b.edge, b.inclusive), reverse=True))
    if not bands or not (bands[-1].inclusive and bands[-1].edge == 0):
        raise ValueError(f"rubric {data.get('key')}: the lowest band must start from 0")
    return bands


def band_for(bands: tuple[Band, ...], total: Decimal) -> Band:
    for band in bands:
        if band.holds(total):
            return band
    raise DomainError(VerificationError.INVALID_SHEET, f"a total of {total} is below every band", {"total": str(total)})


def grade_order(bands: tuple[Band, ...]) -> dict[str, int]:
    """Each grade's rank, 0 the best: what "improved against last year" compares."""
    return {band.grade: i for i, band in enumerate(bands)}


# ----------------------------------------------------------------------------- SAKIP


@dataclass(frozen=True)
class SakipResult:
    rubric: str
    components: dict[str, Decimal]
    total: Decimal
    grade: str
    label: str
    previous_grade: str | None
    improvement: int | None
    """How many grades better than last year (negative: worse; None: no grade last year)."""


def evaluate_sakip(
    rubric: Mapping[str, Any], components: Mapping[str, float | int | str | Decimal], previous_grade: str | None = None
) -> SakipResult:
    """An agency's SAKIP sheet: every component of the rubric, each within 0..its maximum, summed
    and rounded once, graded by the rubric's bands; compared with last year's grade if known."""
    expected = rubric["components"]
    exactly(expected, components, "a SAKIP sheet has exactly the components")
    values = {name: _within(name, components[name], Decimal(str(spec["max"]))) for name, spec in expected.items()}
    total = published(sum(values.values(), Decimal(0)))
    bands = bands_of(rubric)
    band = band_for(bands, total)
    return SakipResult(
        rubric=str(rubric["key"]),
        components=values,
        total=total,
        grade=band.grade,
        label=band.label,
        previous_grade=previous_grade,
        improvement=_improvement(bands, previous_grade, band.grade),
    )


def exactly(expected: Mapping[str, Any], given: Mapping[str, Any], what: str) -> None:
    """``given`` names exactly the keys of ``expected``; else refused naming the missing and unknown."""
    missing, unknown = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing or unknown:
        raise DomainError(
            VerificationError.INVALID_SHEET,
            f"{what} {', '.join(expected)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else ""),
            {"missing": missing, "unknown": unknown},
        )


def _within(name: str, value: float | int | str | Decimal, maximum: Decimal) -> Decimal:
    exact = decimal_of(value, name)
    if not Decimal(0) <= exact <= maximum:
        raise DomainError(
            VerificationError.INVALID_SHEET,
            f"{name} is {exact}, outside 0..{maximum}",
            {"field": name, "value": str(exact), "max": str(maximum)},
        )
    return exact


def _improvement(bands: tuple[Band, ...], previous: str | None, grade: str) -> int | None:
    order = grade_order(bands)
    if previous is None:
        return None
    if previous not in order:
        raise DomainError(
            VerificationError.INVALID_SHEET, f"last year's grade {previous!r} is not one of {', '.join(order)}", {"field": "previous_grade"}
        )
    return order[previous] - order[grade]


# ----------------------------------------------------------------------------- RB index


@dataclass(frozen=True)
class IndexResult:
    rubric: str
    value: Decimal
    grade: str
    label: str


def evaluate_rb(rubric: Mapping[str, Any], value: float | int | str | Decimal) -> IndexResult:
    """An agency's Reformasi Birokrasi index value (0..max) and its predicate from the bands."""
    exact = published(_within("rb_index", value, Decimal(str(rubric["max"]))))
    band = band_for(bands_of(rubric), exact)
    return IndexResult(str(rubric["key"]), exact, band.grade, band.label)


# ----------------------------------------------------------------------------- CETTAR


@dataclass(frozen=True)
class CettarPart:
    name: str
    value: Decimal
    weight: Decimal
    contribution: Decimal


@dataclass(frozen=True)
class CettarResult:
    rubric: str
    parts: tuple[CettarPart, ...]
    composite: Decimal
    grade: str
    label: str


def evaluate_cettar(rubric: Mapping[str, Any], parts: Mapping[str, float | int | str | Decimal]) -> CettarResult:
    """A regency's or agency's CETTAR rating: the weighted composite of its parts (each 0..100),
    shown part by part, and the band it falls in. The weights must sum to 1."""
    spec = rubric["parts"]
    weights = {name: Decimal(str(p["weight"])) for name, p in spec.items()}
    if sum(weights.values(), Decimal(0)) != 1:
        raise ValueError(f"rubric {rubric.get('key')}: the CETTAR weights must sum to 1")
    exactly(spec, parts, "a CETTAR rating needs exactly the parts")
    shown = tuple(
        CettarPart(name, value, weights[name], value * weights[name])
        for name in spec
        for value in [_within(name, parts[name], HUNDRED)]
    )
    composite = published(sum((p.contribution for p in shown), Decimal(0)))
    band = band_for(bands_of(rubric), composite)
    return CettarResult(str(rubric["key"]), shown, composite, band.grade, band.label)
