"""The administrative check: every reason a forwarded proposal is not eligible, one rule a function."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from contracts.base import Group, title_key
from contracts.verification import AdminRules, DisqualificationReason, Reasoned, VerifiedProposal

CYCLE_ZONE = ZoneInfo("Asia/Jakarta")
MIN_ANSWER_CHARS = 20  # shorter answers are "careless": the proposal is incomplete
ANSWERS = ("summary", "problem", "solution", "impact")


def months_between(start: dt.date, end: dt.date) -> int:
    months = (end.year - start.year) * 12 + (end.month - start.month)
    return months - (1 if end.day < start.day else 0)


@dataclass(slots=True)
class _Case:
    """One proposal under check, with what the rules compare it to."""

    proposal: Mapping[str, Any]
    content: Mapping[str, Any]
    rules: AdminRules
    closed_at: dt.datetime
    duplicates: list[str]


def _incomplete(case: _Case) -> Reasoned | None:
    short = [f for f in ANSWERS if len((case.content.get(f) or "").strip()) < MIN_ANSWER_CHARS]
    if not short:
        return None
    names = ", ".join(short)
    return Reasoned(
        code=DisqualificationReason.INCOMPLETE,
        message=f"Isian tidak lengkap: {names} (incomplete or careless answers: {names})",
    )


def _missing_document(case: _Case) -> Reasoned | None:
    kinds = {d["kind"] for d in case.content.get("documents", [])}
    missing = [k for k in case.rules.required_documents if k not in kinds]
    if not missing:
        return None
    names = ", ".join(missing)
    return Reasoned(
        code=DisqualificationReason.MISSING_DOCUMENT,
        message=f"Dokumen wajib tidak ada: {names} (required document missing: {names})",
    )


def _too_young(case: _Case) -> Reasoned | None:
    started = dt.date.fromisoformat(case.content["started_on"])
    # The call closes on a Jakarta date (a 06:00 WIB close is the day before in UTC).
    months = months_between(started, case.closed_at.astimezone(CYCLE_ZONE).date())
    least = case.rules.min_running_months
    if months >= least:
        return None
    return Reasoned(
        code=DisqualificationReason.TOO_YOUNG,
        message=(
            f"Inovasi baru berjalan {months} bulan, minimal {least} bulan "
            f"(the innovation has run {months} months, at least {least} are required)"
        ),
    )


def _invalid_group(case: _Case) -> Reasoned | None:
    group = case.content["group"]
    if group in [g.value for g in case.rules.groups]:
        return None
    return Reasoned(code=DisqualificationReason.INVALID_GROUP, message=f"Kelompok {group} tidak dibuka (group not open)")


def _invalid_category(case: _Case) -> Reasoned | None:
    category = case.content["category"]
    if case.rules.categories is None or category in case.rules.categories:
        return None
    return Reasoned(code=DisqualificationReason.INVALID_CATEGORY, message=f"Kategori {category} tidak dikenal (unknown category)")


def _duplicate_title(case: _Case) -> Reasoned | None:
    if not case.duplicates:
        return None
    names = ", ".join(case.duplicates)
    return Reasoned(code=DisqualificationReason.DUPLICATE_TITLE, message=f"Judul sama dengan proposal {names} (same title as {names})")


def _past_top_winner(case: _Case) -> Reasoned | None:
    if case.content["group"] != Group.UMUM:
        return None
    key = title_key(case.content["title"])
    for winner in case.rules.past_winners:
        # A winner named with its agency is that agency's innovation, not every namesake.
        if title_key(winner.title) == key and winner.agency_code in (None, case.proposal.get("agency_code")):
            return Reasoned(
                code=DisqualificationReason.PAST_TOP_WINNER,
                message=(
                    f"Pemenang utama {winner.year} tidak boleh masuk kelompok umum lagi "
                    f"(a top winner of {winner.year} may not enter the general group again)"
                ),
            )
    return None


RULES: tuple[Callable[[_Case], Reasoned | None], ...] = (
    _incomplete,
    _missing_document,
    _too_young,
    _invalid_group,
    _invalid_category,
    _duplicate_title,
    _past_top_winner,
)
"""The administrative rules, in the order their reasons are listed."""


def check_proposal(
    proposal: Mapping[str, Any], rules: AdminRules, closed_at: dt.datetime, duplicates: list[str]
) -> list[Reasoned]:
    """Every reason this proposal fails the administrative check (empty: eligible)."""
    case = _Case(proposal, proposal["content"], rules, closed_at, duplicates)
    return [reason for rule in RULES if (reason := rule(case)) is not None]


def verified_proposal(snapshot: Mapping[str, Any]) -> VerifiedProposal:
    """What the jury stages need of a proposal, from verification's copy of it."""
    c = snapshot["content"]
    return VerifiedProposal(
        id=snapshot["id"],
        title=c["title"],
        group=c["group"],
        category=c["category"],
        unit_code=snapshot["unit_code"],
        unit_name=snapshot["unit_name"],
        agency_code=snapshot["agency_code"],
        agency_name=snapshot["agency_name"],
        forwarded_at=snapshot.get("forwarded_at"),
        track=snapshot.get("track", "kovablik"),
        group_code=snapshot.get("group_code"),
    )
