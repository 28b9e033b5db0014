"""Awards: award rules, the ceremony results, certificates (piagam) and the results document.

Domain error codes: ``invalid_award_rules``, ``not_determined``, ``ceremony_mismatch``, plus the runtime's codes
(``not_ready`` while a final shortlist, a WBK decision or a track's closed evaluation the command
names has not arrived yet).

One ceremony covers every enabled track: KOVABLIK's and KBK's jury results (``top_n``,
``best_of_group`` with ``track``), WBK (``layak_wbk``), and the evaluation tracks: ``grade`` (every
subject of a track with one of ``grades``, e.g. every SAKIP AA, every "Sangat Cettar"),
``best_of_grade`` (the best ``n`` by total among ``grades``, e.g. the best SAKIP A),
``most_improved`` (SAKIP: the ``n`` agencies that gained most grades against last year) and
``sakip_result`` (every approved SAKIP result handed over: a certificate of its own kind).
``verify_certificate`` answers an unknown, unsigned or altered code with ``valid: false`` and the
``reason``, not an error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from contracts.base import (
    Code,
    Count,
    Event,
    Group,
    Health,
    Instant,
    Name,
    Query,
    SetRef,
    StageKey,
    Track,
    WorkflowCommand,
    WorkflowQuery,
    Year,
    command,
    event,
)
from contracts.published import score_text

SERVICE = "awards"

KNOWN_RULES = ("top_n", "best_of_group", "layak_wbk", "grade", "best_of_grade", "most_improved", "sakip_result")
"""Award rule kinds: ``top_n`` (TOP N of the final shortlist, optionally per group or per category),
``best_of_group`` (the best N of one group), ``layak_wbk`` (every unit decided layak_wbk, overrides
included, listed by WBK total, best first); for the evaluation tracks (sakip, rb, cettar) ``grade``,
``best_of_grade``, ``most_improved`` (sakip) and ``sakip_result`` (sakip)."""

RULE_TRACKS: dict[str, tuple[str, ...]] = {
    "top_n": ("kovablik", "kbk"),
    "best_of_group": ("kovablik", "kbk"),
    "layak_wbk": ("wbk",),
    "grade": ("sakip", "rb", "cettar"),
    "best_of_grade": ("sakip", "rb", "cettar"),
    "most_improved": ("sakip",),
    "sakip_result": ("sakip",),
}
"""The tracks each rule kind can award in."""


class AwardsError:
    INVALID_RULES = "invalid_award_rules"
    NOT_DETERMINED = "not_determined"
    CEREMONY_MISMATCH = "ceremony_mismatch"


class AwardRule(BaseModel):
    """One award category, from the cycle config. ``rule`` is checked by ``validate_awards`` so an
    unknown kind is reported by name, not as a schema error."""

    model_config = {"extra": "forbid"}
    key: Code
    rule: str = Field(min_length=1, max_length=64)
    name_id: Name = Field(description="Display name in Indonesian, e.g. 'Inovasi Terpuji'.")
    name_en: Name = Field(description="Display name in English.")
    n: int | None = Field(default=None, ge=1, le=1000, strict=True)
    per_group: bool = False
    group: Group | None = None
    min_score: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Passing grade, if any, on the last stage's scale: compared with a proposal's mean raw weighted total.",
    )
    track: Track | None = Field(
        default=None,
        description="The track it awards in; none means the rule kind's first (kovablik for top_n and best_of_group, wbk for layak_wbk).",
    )
    grades: list[Code] | None = Field(default=None, max_length=10, description="grade / best_of_grade: the grades it awards (e.g. ['AA'], ['sangat_cettar']).")
    per_category: bool = Field(default=False, description="top_n: the TOP N of each category (KBK: each cluster).")

    def award_track(self) -> str:
        return self.track.value if self.track is not None else RULE_TRACKS.get(self.rule, ("kovablik",))[0]


def award_rule_problems(rules: list[AwardRule], path: str) -> list[tuple[str, str]]:
    """Every problem of a cycle's award rules, as (field path under ``path``, problem)."""
    problems: list[tuple[str, str]] = []

    def bad(i: int, field: str, problem: str) -> None:
        problems.append((f"{path}[{i}].{field}", problem))

    seen: set[str] = set()
    for i, r in enumerate(rules):
        if r.key in seen:
            bad(i, "key", f"duplicate award key {r.key!r}")
        seen.add(r.key)
        if r.rule not in KNOWN_RULES:
            bad(i, "rule", f"unknown rule {r.rule!r}; known: {', '.join(KNOWN_RULES)}")
            continue
        track = r.award_track()
        if track not in RULE_TRACKS[r.rule]:
            bad(i, "track", f"{r.rule} awards in {', '.join(RULE_TRACKS[r.rule])}, not {track}")
        if r.rule in ("grade", "best_of_grade") and not r.grades:
            bad(i, "grades", f"{r.rule} needs the grades it awards, e.g. ['AA']")
        if r.rule != "top_n" and r.per_category:
            bad(i, "per_category", f"per_category applies to top_n only, not {r.rule}")
        if r.rule == "top_n" and r.n is None:
            bad(i, "n", "top_n needs n (how many winners)")
        if r.rule == "top_n" and r.group is not None:
            bad(i, "group", "top_n ranks the whole shortlist; use per_group or best_of_group")
        if r.rule == "best_of_group" and r.group is None:
            bad(i, "group", "best_of_group needs the group (umum, khusus or replikasi)")
        if r.rule != "top_n" and r.per_group:
            bad(i, "per_group", f"per_group applies to top_n only, not {r.rule}")
        if r.rule == "layak_wbk":
            for field in ("n", "group", "min_score"):
                if getattr(r, field) is not None:
                    bad(i, field, "layak_wbk awards every unit decided layak_wbk; it takes no " + field)
    return problems


class Ceremony(BaseModel):
    model_config = {"extra": "forbid"}
    date: Instant
    venue: Name
    signed_by: Name = Field(default="Gubernur Jawa Timur", description="The office that signs the certificates")
    signer_name: Name | None = Field(default=None, description="The signer's name, printed under the signature line")


class Winner(BaseModel):
    award_key: str
    track: str = "kovablik"
    rank: int
    proposal_id: Code | None = None
    title: str | None = None
    unit_code: Code
    unit_name: str
    agency_code: Code | None = None
    agency_name: str | None = None
    group: Group | None = None
    score: float | None = None
    score_published: str | None = Field(
        default=None,
        description="The score as published: rounded half-up to two decimals (contracts.published), e.g. '73.01'; always derived from score.",
    )
    certificate_code: str | None = None
    certificate_path: str | None = None
    certificate_kind: str = Field(default="award", description="award | sakip_result (the handover of an agency's SAKIP result)")
    grade: str | None = Field(default=None, description="The evaluation tracks: the grade the winner holds.")
    grade_label: str | None = None

    @model_validator(mode="after")
    def _publish(self) -> Winner:
        self.score_published = score_text(self.score) or None
        return self


class CategoryResult(BaseModel):
    key: str
    track: str = "kovablik"
    name_id: str
    name_en: str
    rule: str
    winners: list[Winner]
    empty_reason: str | None = Field(default=None, description="Why a category has no winner.")


class AwardsSummary(BaseModel):
    cycle_year: Year
    categories: dict[str, int] = Field(description="Winners per category key.")
    certificates: Count
    results_dir: str | None = None


class TrackAwardsInput(BaseModel):
    """What the ceremony expects of one track beyond KOVABLIK and WBK (so ``determine_awards``
    answers ``not_ready`` until it has arrived)."""

    model_config = {"extra": "forbid"}
    final_stage: StageKey | None = Field(default=None, description="KBK: its last jury stage.")
    expected_shortlist: SetRef | None = Field(default=None, description="KBK: that stage's final shortlist.")
    expected_results: Count | None = Field(default=None, description="sakip, rb, cettar: the approved results its close counted.")


class ResultsView(BaseModel):
    cycle_year: Year
    ceremony: Ceremony | None = None
    announcement_no: str | None = None
    categories: list[CategoryResult]
    evaluations: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="Every approved result of each evaluation track (sakip, rb, cettar), as handed over at the ceremony, with its parts.",
    )
    rankings: list[dict[str, Any]] = Field(default_factory=list, description="The final stage's ranking with explanations.")
    files: dict[str, str] = Field(default_factory=dict)


class CertificateView(BaseModel):
    """A certificate's verification: ``valid`` only when its record carries a good Ed25519
    signature by the awards service's key (``key_id``); then the award and the winner it names."""

    valid: bool
    code: str
    cycle_year: Year | None = None
    award_key: str | None = None
    award_name: str | None = None
    recipient: str | None = None
    title: str | None = None
    issued_at: Instant | None = None
    key_id: str | None = Field(default=None, description="The signer's public key id (ed25519:<16 hex>), as in certificate-public-key.pem.")
    unit_code: Code | None = None
    proposal_id: Code | None = None
    verify_url: str | None = Field(default=None, description="The public verification page the certificate's QR code opens.")
    reason: str | None = Field(default=None, description="Why a code does not verify: unknown, unsigned, another key, or altered.")
    certificate_kind: str | None = Field(default=None, description="award | sakip_result (the handover of an agency's SAKIP result).")
    track: str | None = Field(default=None, description="The track the certificate was given in.")
    grade: str | None = Field(default=None, description="The evaluation tracks: the grade the certificate names.")
    score: str | None = Field(default=None, description="The evaluation tracks: the total the certificate names, as published.")


class AnnouncementView(BaseModel):
    cycle_year: Year
    announcement_no: str
    ceremony: Ceremony


# --------------------------------------------------------------------------- commands


@command(SERVICE, "health", reply=Health)
class AwardsHealth(Query):
    """Liveness and readiness of the awards service."""


@command(SERVICE, "validate_awards")
class ValidateAwards(WorkflowCommand):
    """Check a cycle's award rules before the cycle starts: every problem is reported at once."""

    cycle_year: Year
    rules: list[AwardRule] = Field(min_length=1, max_length=50)


@command(SERVICE, "determine_awards", reply=AwardsSummary)
class DetermineAwards(WorkflowCommand):
    """Compute the winners at the ceremony (sent by the workflow). Idempotent. Answers
    ``not_ready`` while the final shortlist or the WBK decisions it names have not arrived."""

    cycle_year: Year
    rules: list[AwardRule] = Field(min_length=1, max_length=50)
    final_stage: StageKey
    expected_shortlist: SetRef
    expected_wbk_layak: Count | None = None
    ceremony: Ceremony
    at: Instant
    tracks: dict[Track, TrackAwardsInput] = Field(default_factory=dict, description="The other enabled tracks (kbk, sakip, rb, cettar).")


@command(SERVICE, "announce_awards", reply=AnnouncementView)
class AnnounceAwards(WorkflowCommand):
    """Publish the numbered announcement of the awards (sent by the workflow). Idempotent."""

    cycle_year: Year
    ceremony: Ceremony
    at: Instant


@command(SERVICE, "get_results", reply=ResultsView)
class GetResults(WorkflowQuery):
    cycle_year: Year


@command(SERVICE, "verify_certificate", reply=CertificateView)
class VerifyCertificate(Query):
    """Resolve a certificate's verification code; a forged code is refused."""

    code: str = Field(min_length=1, max_length=100)


# --------------------------------------------------------------------------- events


@event(SERVICE, "awards_determined")
class AwardsDetermined(Event):
    categories: list[CategoryResult]


@event(SERVICE, "awards_announced")
class AwardsAnnounced(Event):
    announcement_no: str
    ceremony: Ceremony
    winners: Count


@event(SERVICE, "certificate_issued")
class CertificateIssued(Event):
    code: str
    award_key: str
    recipient: str
    title: str | None = None
    path: str
    key_id: str | None = Field(default=None, description="The public key id of the Ed25519 key that signed the certificate.")
    verify_url: str | None = Field(default=None, description="BFEST_PUBLIC_URL/verify/<code>: what the QR code holds.")


