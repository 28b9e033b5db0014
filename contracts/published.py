"""How published results show their values: the one rounding of a score and the group labels.

Every output people read (the results page, the CSV tables, the certificate, the announcement
events, the CLI tables) rounds a score here, one declared way: **half-up to two decimals, on the
decimal the score is written as**. A score is a binary float, so 73.005 is stored as
73.00499999999999…; formatting it with ``:.2f`` gives 73.00 while 97.055 gives 97.06. Rounding
the shortest decimal that names the float (``str(73.005) == "73.005"``) gives 73.01, as a person
rounding the printed figure would.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from contracts.base import Group

SCORE_QUANTUM = Decimal("0.01")
"""Published scores have two decimals."""


def published_score(value: float | int | Decimal | str | None) -> Decimal | None:
    """A score as published: rounded half-up to two decimals (None stays None)."""
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(f"a published score must be a finite number, not {value!r}")
    return exact.quantize(SCORE_QUANTUM, rounding=ROUND_HALF_UP)


def score_text(value: float | int | Decimal | str | None) -> str:
    """A score as text for a page, a table or a certificate ("73.01"; "" when there is none)."""
    score = published_score(value)
    return "" if score is None else f"{score:.2f}"


GROUP_LABELS: dict[str, tuple[str, str]] = {
    Group.UMUM.value: ("Umum", "General"),
    Group.KHUSUS.value: ("Khusus", "Special"),
    Group.REPLIKASI.value: ("Replikasi", "Replication"),
}
"""Each group's name in Indonesian and in English."""


def group_label(group: str | None) -> str:
    """A group as people read it: "Umum / General" (an unknown key is shown as it is)."""
    if not group:
        return ""
    names = GROUP_LABELS.get(str(group))
    return f"{names[0]} / {names[1]}" if names else str(group)
