"""Awards' rules, free of I/O: validating award rules, choosing winners, and the cycle's
:class:`Ceremony` — determined once for one ceremony, then announced under its number
(certificates are signed in signing.py and printed in documents.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from contracts.awards import (
    AwardRule,
    AwardsAnnounced,
    AwardsDetermined,
    AwardsError,
    AwardsSummary,
    CategoryResult,
    CertificateIssued,
    CertificateView,
    ResultsView,
    Winner,
    award_rule_problems,
)
from contracts.awards import Ceremony as CeremonyDetails
from contracts.base import Event, SetRef, digest_ids
from services.common.errors import DomainError, NotReady

JAKARTA = ZoneInfo("Asia/Jakarta")


def rule_problems(rules: list[AwardRule]) -> list[dict[str, str]]:
    """Every problem of a cycle's award rules, each with its field path (the contract's rules, so
    ``bfest cycle start --check`` finds the same)."""
    return [{"field": field, "problem": problem} for field, problem in award_rule_problems(rules, "rules")]


def check_rules(rules: list[AwardRule]) -> None:
    problems = rule_problems(rules)
    if problems:
        raise DomainError(
            AwardsError.INVALID_RULES,
            f"{len(problems)} problem(s) in the award rules: "
            + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            problems,
        )


EVALUATION_TRACKS = ("sakip", "rb", "cettar")
"""The tracks whose winners come from a closed evaluation (verification's ``evaluation_closed``)."""
NEW_TRACKS = ("kbk", *EVALUATION_TRACKS)
"""The tracks a ceremony of KOVABLIK and WBK alone does not have (issue 26)."""
TRACK_NAMES: dict[str, tuple[str, str]] = {
    "kovablik": ("KOVABLIK", "Kompetisi Inovasi Pelayanan Publik Jawa Timur"),
    "wbk": ("Zona Integritas", "Layak Berpredikat Wilayah Bebas dari Korupsi (WBK)"),
    "kbk": ("KBK", "Kelompok Budaya Kerja"),
    "sakip": ("SAKIP", "Sistem Akuntabilitas Kinerja Instansi Pemerintah"),
    "rb": ("Reformasi Birokrasi", "Indeks Reformasi Birokrasi"),
    "cettar": ("CETTAR", "Budaya Kerja CETTAR"),
}
"""Each track as the results and the certificates name it: (short name, full name)."""


def _winner(key: str, rank: int, row: dict[str, Any], track: str = "kovablik") -> Winner:
    return Winner(
        award_key=key,
        track=track,
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


def determine(
    rules: list[AwardRule],
    shortlist: list[dict[str, Any]],
    wbk_layak: list[dict[str, Any]],
    shortlists: dict[str, list[dict[str, Any]]] | None = None,
    evaluations: dict[str, list[dict[str, Any]]] | None = None,
) -> list[CategoryResult]:
    """The winners of every category (a category without a winner says why): KOVABLIK's from
    ``shortlist``, the other competitions' from ``shortlists`` (by track: kbk), WBK's from
    ``wbk_layak``, the evaluation tracks' from ``evaluations`` (by track: each approved result)."""
    ranked = {"kovablik": shortlist, **(shortlists or {})}
    ranked = {track: sorted(rows, key=lambda r: r["rank"]) for track, rows in ranked.items()}
    out = []
    for rule in rules:
        track = rule.award_track()
        winners: list[Winner] = []
        empty = None
        if rule.rule in ("top_n", "best_of_group"):
            if track in ranked:
                winners, empty = _from_shortlist(rule, ranked[track], track)
            else:
                empty = f"the {TRACK_NAMES[track][0]} track is not part of this ceremony"
        elif rule.rule == "layak_wbk":
            winners = _layak_wbk(rule, wbk_layak)
            empty = None if winners else "no unit was decided layak_wbk"
        else:
            winners, empty = _from_evaluations(rule, track, (evaluations or {}).get(track))
        out.append(
            CategoryResult(
                key=rule.key,
                track=track,
                name_id=rule.name_id,
                name_en=rule.name_en,
                rule=rule.rule,
                winners=winners,
                empty_reason=empty,
            )
        )
    return out


def _best_of_each(rows: list[dict[str, Any]], field: str, n: int | None) -> list[dict[str, Any]]:
    """The best ``n`` of each value of ``field`` (a group, a category), in rank order."""
    by_value: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_value.setdefault(r.get(field) or "", []).append(r)
    return sorted((r for g in by_value.values() for r in g[:n]), key=lambda r: r["rank"])


def _from_shortlist(rule: AwardRule, ranked: list[dict[str, Any]], track: str = "kovablik") -> tuple[list[Winner], str | None]:
    """A ``top_n`` or ``best_of_group`` category's winners, or why it has none."""
    rows = [r for r in ranked if rule.min_score is None or _grade(r) >= rule.min_score]
    if rule.rule == "best_of_group":
        rows = [r for r in rows if r.get("group") == rule.group][: rule.n or 1]
    elif rule.per_group:
        rows = _best_of_each(rows, "group", rule.n)
    elif rule.per_category:
        rows = _best_of_each(rows, "category", rule.n)
    else:
        rows = rows[: rule.n]
    winners = [_winner(rule.key, i, r, track) for i, r in enumerate(rows, start=1)]
    if winners:
        return winners, None
    return winners, (
        f"no proposal of group {rule.group} on the final shortlist"
        if rule.rule == "best_of_group"
        else "no proposal reached the passing grade"
        if rule.min_score is not None
        else "the final shortlist is empty"
    )


def _by_total(result: dict[str, Any]) -> tuple[float, str]:
    return (-float(result["total"]), str(result["subject_code"]))


def _from_evaluations(
    rule: AwardRule, track: str, results: list[dict[str, Any]] | None
) -> tuple[list[Winner], str | None]:
    """A category of an evaluation track: ``grade`` (every result with one of ``grades``, best
    total first), ``best_of_grade`` (the best ``n``, default 1, of those), ``most_improved`` (the
    ``n`` that gained most grades against last year; ties by total, then code) and
    ``sakip_result`` (every approved result, handed over: best total first)."""
    name = TRACK_NAMES[track][0]
    if results is None:
        return [], f"the {name} evaluation is not part of this ceremony"
    rows = sorted((r for r in results if rule.min_score is None or r["total"] >= rule.min_score), key=_by_total)
    grades = {g.casefold() for g in rule.grades or ()}
    if rule.rule in ("grade", "best_of_grade"):
        rows = [r for r in rows if str(r["grade"]).casefold() in grades]
        rows = rows[: rule.n or 1] if rule.rule == "best_of_grade" else rows[: rule.n]
        empty = f"no {name} result with grade {', '.join(rule.grades or ())}"
    elif rule.rule == "most_improved":
        gained = [r for r in rows if (r.get("improvement") or 0) > 0]
        rows = sorted(gained, key=lambda r: (-int(r["improvement"]), *_by_total(r)))[: rule.n or 1]
        empty = f"no {name} result gained a grade against last year"
    else:
        rows = rows[: rule.n]
        empty = f"no approved {name} result"
    kind = "sakip_result" if rule.rule == "sakip_result" else "award"
    winners = [
        Winner(
            award_key=rule.key,
            track=track,
            rank=i,
            unit_code=r["subject_code"],
            unit_name=r.get("subject_name") or r["subject_code"],
            score=r["total"],
            certificate_kind=kind,
            grade=r["grade"],
            grade_label=r.get("label"),
        )
        for i, r in enumerate(rows, start=1)
    ]
    return winners, None if winners else empty


def _layak_wbk(rule: AwardRule, wbk_layak: list[dict[str, Any]]) -> list[Winner]:
    """Every unit decided layak_wbk wins; they are listed best total first (a unit decided by a
    verifier's override without a total last), ties by unit code."""

    def by_total(u: dict[str, Any]) -> tuple[bool, float, str]:
        return (u.get("total") is None, -(u.get("total") or 0.0), u["unit_code"])

    return [
        Winner(
            award_key=rule.key,
            track="wbk",
            rank=i,
            unit_code=u["unit_code"],
            unit_name=u.get("unit_name") or u["unit_code"],
            agency_code=u.get("agency_code"),
            agency_name=u.get("agency_name") or u.get("agency_code"),
            score=u.get("total"),
        )
        for i, u in enumerate(sorted(wbk_layak, key=by_total), start=1)
    ]


MONTHS_ID = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]


def tanggal(value: Any) -> str:
    """A date the Indonesian way: 19 November 2026."""
    return f"{value.day} {MONTHS_ID[value.month - 1]} {value.year}"


# --------------------------------------------------------------------------- the ceremony


def ready(
    stage: str,
    shortlist: list[dict[str, Any]] | None,
    expected: SetRef,
    layak: list[dict[str, Any]],
    expected_layak: int | None,
) -> list[dict[str, Any]]:
    """The final shortlist, once what the command names has arrived (the read models are fed by
    events: until then the caller is told to retry)."""
    if shortlist is None:
        raise NotReady(
            message=f"the final shortlist of stage {stage} has not arrived yet", details={"stage": stage}
        )
    ids = [r["proposal_id"] for r in shortlist]
    if (len(ids), digest_ids(ids)) != (expected.count, expected.digest):
        raise NotReady(
            message="the final shortlist received differs from the one expected",
            details={"have": len(ids), "expected": expected.count},
        )
    if expected_layak is not None and len(layak) != expected_layak:
        raise NotReady(
            message=f"{len(layak)} WBK decisions received, {expected_layak} expected",
            details={"have": len(layak)},
        )
    return shortlist


def competition_ready(stage: str, shortlist: list[dict[str, Any]] | None, expected: SetRef | None) -> list[dict[str, Any]]:
    """Another competition's (KBK's) final shortlist, once the one the command names arrived."""
    if expected is None and shortlist is not None:
        return shortlist
    return ready(stage, shortlist, expected or SetRef(count=0, digest=digest_ids([])), [], None)


def evaluation_ready(track: str, closed: list[dict[str, Any]] | None, expected: int | None) -> list[dict[str, Any]]:
    """A track's approved results, once its ``evaluation_closed`` has arrived with as many as the
    command names (until then the caller is told to retry)."""
    name = TRACK_NAMES[track][0]
    if closed is None:
        raise NotReady(message=f"the closed {name} evaluation has not arrived yet", details={"track": track})
    if expected is not None and len(closed) != expected:
        raise NotReady(
            message=f"{len(closed)} approved {name} results received, {expected} expected",
            details={"track": track, "have": len(closed), "expected": expected},
        )
    return closed


@dataclass(slots=True)
class Certificate:
    """A signed certificate (piagam) of one winner."""

    code: str
    cycle_year: int
    award_key: str
    award_name: str
    recipient: str
    title: str | None
    path: str
    issued_at: dt.datetime
    unit_code: str | None = None
    proposal_id: str | None = None
    key_id: str | None = None
    signature: str | None = None
    verify_url: str | None = None
    track: str = "kovablik"
    kind: str = "award"  # award | sakip_result (the handover of an agency's SAKIP result)
    grade: str | None = None
    score: str | None = None  # a result's total as published, for the evaluation tracks

    def verdict(
        self, key_id: str, signature_holds: Callable[[Certificate], bool], verify_url: str
    ) -> CertificateView:
        """Whether the certificate verifies against the service's key ``key_id``: only a record
        signed by it that still says what was signed (``signature_holds``) does."""
        if self.signature is None or self.unit_code is None:
            return CertificateView(
                valid=False,
                code=self.code,
                reason="issued before certificates were signed: it cannot be verified",
            )
        if self.key_id != key_id:
            reason = f"signed by key {self.key_id}, not by this service's key {key_id}"
            return CertificateView(valid=False, code=self.code, key_id=self.key_id, reason=reason)
        if not signature_holds(self):
            reason = "the certificate's record does not match its signature: it was altered"
            return CertificateView(valid=False, code=self.code, key_id=self.key_id, reason=reason)
        return CertificateView(
            valid=True,
            code=self.code,
            cycle_year=self.cycle_year,
            award_key=self.award_key,
            award_name=self.award_name,
            recipient=self.recipient,
            title=self.title,
            issued_at=self.issued_at,
            key_id=self.key_id,
            unit_code=self.unit_code,
            proposal_id=self.proposal_id,
            verify_url=verify_url,
            certificate_kind=self.kind,
            track=self.track,
            grade=self.grade,
            score=self.score,
        )

    def issued(self) -> CertificateIssued:
        return CertificateIssued(
            cycle_year=self.cycle_year,
            code=self.code,
            award_key=self.award_key,
            recipient=self.recipient,
            title=self.title,
            path=self.path,
            key_id=self.key_id,
            verify_url=self.verify_url,
        )


@dataclass(slots=True)
class TrackResults:
    """What the tracks beside KOVABLIK and WBK bring to the ceremony: the competitions' final
    rankings (kbk) and the evaluation tracks' approved results (sakip, rb, cettar), by track."""

    rankings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class CeremonyState(StrEnum):
    DETERMINED = "determined"  # winners chosen, certificates printed, for one ceremony
    ANNOUNCED = "announced"  # numbered announcement published


CEREMONY_TRANSITIONS: dict[str, set[CeremonyState]] = {"announce": {CeremonyState.DETERMINED}}


def announcement_number(seq: int, year: int) -> str:
    return f"{seq:03d}/PENGHARGAAN-BFEST/{year}"


@dataclass(slots=True)
class Ceremony:
    """A cycle's awards: determined once, for one ceremony, then announced under a number."""

    cycle_year: int
    details: CeremonyDetails
    categories: list[dict[str, Any]]
    rankings: list[dict[str, Any]]
    files: dict[str, str]
    summary: AwardsSummary
    announcement_no: str | None = None
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # track -> approved results
    track_rankings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kbk -> its final ranking

    @classmethod
    def determine(
        cls,
        year: int,
        details: CeremonyDetails,
        categories: list[CategoryResult],
        rankings: list[dict[str, Any]],
        files: dict[str, str],
        certificates: list[Certificate],
        results_dir: str,
        tracks: TrackResults | None = None,
    ) -> tuple[Ceremony, list[Event]]:
        summary = AwardsSummary(
            cycle_year=year,
            categories={c.key: len(c.winners) for c in categories},
            certificates=len(certificates),
            results_dir=results_dir,
        )
        cats = [c.model_dump(mode="json") for c in categories]
        events: list[Event] = [c.issued() for c in certificates]
        events.append(AwardsDetermined(cycle_year=year, categories=categories))
        tracks = tracks or TrackResults()
        return cls(year, details, cats, rankings, files, summary, None, tracks.evaluations, tracks.rankings), events

    @property
    def state(self) -> CeremonyState:
        return CeremonyState.DETERMINED if self.announcement_no is None else CeremonyState.ANNOUNCED

    def same(self, given: CeremonyDetails) -> Ceremony:
        """The awards were determined, and the certificates printed, for one ceremony: a command
        naming another (a year started again with a changed ceremony, say) is refused, not
        answered as if."""
        if given != self.details:
            when = self.details.date.astimezone(JAKARTA)
            raise DomainError(
                AwardsError.CEREMONY_MISMATCH,
                f"the awards of {self.cycle_year} were determined for the ceremony at {self.details.venue} on "
                f"{when:%d %b %Y %H:%M} WIB, and their certificates printed; this names another",
                {
                    "determined_for": self.details.model_dump(mode="json"),
                    "given": given.model_dump(mode="json"),
                },
            )
        return self

    def announce(self, given: CeremonyDetails, seq: int) -> list[AwardsAnnounced]:
        """Number the announcement (``seq``: the year's next); announcing again changes nothing."""
        self.same(given)
        if self.state not in CEREMONY_TRANSITIONS["announce"]:
            return []
        self.announcement_no = announcement_number(seq, self.cycle_year)
        winners = sum(len(c["winners"]) for c in self.categories)
        return [
            AwardsAnnounced(
                cycle_year=self.cycle_year,
                announcement_no=self.announcement_no,
                ceremony=given,
                winners=winners,
            )
        ]

    def results(self) -> ResultsView:
        return ResultsView(
            cycle_year=self.cycle_year,
            ceremony=self.details,
            announcement_no=self.announcement_no,
            categories=[CategoryResult.model_validate(c) for c in self.categories],
            evaluations=self.evaluations,
            rankings=self.rankings,
            files=self.files,
        )


def unknown_certificate(code: str) -> CertificateView:
    return CertificateView(valid=False, code=code, reason="unknown code: no certificate was issued with it")


def determined(ceremony: Ceremony | None, year: int) -> Ceremony:
    if ceremony is None:
        raise DomainError(AwardsError.NOT_DETERMINED, f"the awards of {year} have not been determined yet")
    return ceremony
