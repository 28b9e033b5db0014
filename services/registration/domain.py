"""Registration's rules, free of I/O: the call for proposals, the submission chain, the agencies'
quota and the participants' tree. Aggregates change themselves and return the events they cause;
every refusal is raised here, with its code from ``contracts.registration``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.base import (
    AGENCY_KINDS,
    UNIT_KINDS,
    Competition,
    ErrorCode,
    Event,
    ParticipantKind,
    ProposalStatus,
    digest_ids,
)
from contracts.registration import (
    CallClosed,
    CallClosedSummary,
    CallOpened,
    Participant,
    ProposalContent,
    ProposalForwarded,
    ProposalReturned,
    ProposalSnapshot,
    ProposalSubmitted,
    ProposalWithdrawn,
    RegistrationError,
)
from services.common.errors import DomainError, NotFound, NotReady

Names = Mapping[str, str]
"""A participant's name by its code (a snapshot falls back to the code)."""

# --------------------------------------------------------------------------- participants


@dataclass(slots=True)
class Party:
    """A participant as the rules see it: an agency (opd, kabupaten, kota, bumd) or a unit under one."""

    code: str
    name: str
    kind: ParticipantKind
    parent_code: str | None = None
    active: bool = True

    @property
    def is_agency(self) -> bool:
        return self.kind in AGENCY_KINDS


def known(party: Party | None, code: str) -> Party:
    """``party``, refused when it is unknown or inactive."""
    if party is None or not party.active:
        state = "inactive" if party is not None else "unknown"
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT, f"{state} participant {code}", {"code": code}
        )
    return party


def an_agency(party: Party | None, code: str) -> Party:
    agency = known(party, code)
    if not agency.is_agency:
        raise DomainError(
            RegistrationError.NOT_AN_AGENCY,
            f"{code} is a unit ({agency.kind.value}); only an agency admin forwards or returns",
            {"code": code},
        )
    return agency


def a_unit(party: Party | None, code: str) -> Party:
    unit = known(party, code)
    if unit.kind not in UNIT_KINDS or unit.parent_code is None:
        raise DomainError(
            RegistrationError.NOT_A_UNIT,
            f"{code} is an agency ({unit.kind.value}); proposals are submitted by units (upt, upp)",
            {"code": code},
        )
    return unit


def a_group(party: Party | None, code: str) -> Party:
    """A work-culture group (KBK): a participant of kind ``kbk`` filed under its unit."""
    group = known(party, code)
    if group.kind != ParticipantKind.KBK or group.parent_code is None:
        raise DomainError(
            RegistrationError.NOT_A_GROUP,
            f"{code} is not a work-culture group ({group.kind.value}); a risalah is submitted by a KBK group",
            {"code": code},
        )
    return group


def existing_participant(party: Party | None, code: str) -> Party:
    """``party``, active or not; refused when there is none."""
    if party is None:
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT, f"no participant with code {code}", {"code": code}
        )
    return party


def check_participant_tree(
    kind: ParticipantKind, parent_kind: ParticipantKind | None, code: str
) -> str | None:
    """A problem with a participant's place in the tree, or None."""
    if kind in AGENCY_KINDS and parent_kind is not None:
        return f"{code}: an agency ({kind.value}) has no parent"
    if kind in UNIT_KINDS:
        if parent_kind is None:
            return f"{code}: a unit ({kind.value}) needs a parent agency"
        if parent_kind not in AGENCY_KINDS:
            return f"{code}: the parent of a unit must be an agency, not a {parent_kind.value}"
    if kind == ParticipantKind.KBK:
        if parent_kind is None:
            return f"{code}: a work-culture group (kbk) needs a parent unit"
        if parent_kind not in UNIT_KINDS:
            return f"{code}: the parent of a work-culture group must be a unit (upt, upp), not a {parent_kind.value}"
    return None


def _tree_problems(incoming: list[Participant], known_kinds: Mapping[str, ParticipantKind]) -> list[str]:
    given = {p.code: p.kind for p in incoming}
    problems = []
    for p in incoming:
        parent_kind = None
        if p.parent_code:
            parent_kind = given.get(p.parent_code) or known_kinds.get(p.parent_code)
            if parent_kind is None:
                problems.append(f"{p.code}: parent {p.parent_code} is not a known participant")
                continue
        problem = check_participant_tree(p.kind, parent_kind, p.code)
        if problem:
            problems.append(problem)
    return problems


def would_be_units(incoming: list[Participant]) -> list[str]:
    """The incoming participants whose filed children must still fit under them: any of them may
    become a unit (an agency's units would be orphaned) or stop being one (a unit's groups)."""
    return [p.code for p in incoming]


def _demotions(incoming: Mapping[str, Participant], children: Iterable[tuple[str, ...]]) -> list[str]:
    """An agency whose units stay under it cannot become a unit: they could no longer be forwarded
    (nor a unit whose work-culture groups stay under it anything but a unit). ``children`` are the
    (code, parent_code[, kind]) already filed under the incoming participants."""
    kept: dict[str, list[str]] = {}
    groups: set[str] = set()
    for code, parent, *kind in children:
        moved = incoming.get(code)
        child_kind = ParticipantKind(kind[0]) if kind else ParticipantKind.UPT
        if moved is not None and moved.parent_code != parent:
            continue
        if check_participant_tree(moved.kind if moved else child_kind, incoming[parent].kind, code) is None:
            continue
        kept.setdefault(parent, []).append(code)
        if (moved.kind if moved else child_kind) == ParticipantKind.KBK:
            groups.add(parent)
    out = []
    for code, kids in sorted(kept.items()):
        listed = f"{len(kids)} {{}} ({', '.join(sorted(kids)[:3])}{', …' if len(kids) > 3 else ''})"
        if code in groups:
            out.append(f"{code}: has {listed.format('work-culture group(s)')}; a unit with groups cannot become a {incoming[code].kind.value}")
        else:
            out.append(f"{code}: has {listed.format('unit(s)')}; an agency with units cannot become a unit ({incoming[code].kind.value})")
    return out


def check_import(
    incoming: list[Participant],
    known_kinds: Mapping[str, ParticipantKind],
    children: Iterable[tuple[str, ...]],
) -> None:
    """An import is taken whole or refused whole: every parent known (given or filed), every
    participant in its place in the tree, no agency with units turned into a unit."""
    problems = _tree_problems(incoming, known_kinds) + _demotions({p.code: p for p in incoming}, children)
    if problems:
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT
            if any("not a known" in p for p in problems)
            else RegistrationError.INVALID_PARTICIPANT,
            f"{len(problems)} participant(s) refused, nothing imported: {problems[0]}",
            {"problems": problems[:100]},
        )


def merge_import(incoming: list[Participant], filed: Mapping[str, Party]) -> tuple[list[Party], list[Party]]:
    """The participants an import creates and the filed ones it changes (changed in place)."""
    created, updated = [], []
    for p in incoming:
        party = filed.get(p.code)
        if party is None:
            created.append(Party(p.code, p.name, p.kind, p.parent_code, p.active))
        elif (party.name, party.kind, party.parent_code, party.active) != (
            p.name,
            p.kind,
            p.parent_code,
            p.active,
        ):
            party.name, party.kind, party.parent_code, party.active = p.name, p.kind, p.parent_code, p.active
            updated.append(party)
    return created, updated


# --------------------------------------------------------------------------- the call


class CallState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # its summary froze the forwarded set
    CANCELLED = "cancelled"  # its cycle was cancelled; opened again when the year starts again


CALL_TRANSITIONS: dict[str, set[CallState]] = {
    "reopen": {CallState.CANCELLED},
    "move_closing": {CallState.OPEN},
    "cancel": {CallState.OPEN},
    "close": {CallState.OPEN, CallState.CANCELLED},
}


def check_window(opens_at: dt.datetime, closes_at: dt.datetime) -> None:
    if opens_at >= closes_at:
        raise DomainError(
            RegistrationError.INVALID_WINDOW,
            f"opens_at ({opens_at.isoformat()}) must be before closes_at ({closes_at.isoformat()})",
            {"opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()},
        )


@dataclass(slots=True)
class Filed:
    """What closing a call counts of one of its proposals."""

    id: str
    status: ProposalStatus
    agency_code: str
    group: str


@dataclass(slots=True)
class Call:
    """A cycle's call for proposals of one competition (KOVABLIK's innovations or KBK's risalah):
    its window, the agencies' quota and the proposals' numbering."""

    cycle_year: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    quota_per_agency: int
    state: CallState = CallState.OPEN
    next_seq: int = 1
    closed_at: dt.datetime | None = None
    summary: CallClosedSummary | None = None
    track: Competition = Competition.KOVABLIK

    @property
    def key(self) -> tuple[int, Competition]:
        return (self.cycle_year, self.track)

    @property
    def label(self) -> str:
        """How messages name it: the year, and the track unless it is KOVABLIK's."""
        return call_label(self.cycle_year, self.track)

    @classmethod
    def open(
        cls,
        filed: Call | None,
        cycle_year: int,
        opens_at: dt.datetime,
        closes_at: dt.datetime,
        quota: int,
        track: Competition = Competition.KOVABLIK,
    ) -> tuple[Call, list[CallOpened]]:
        """``open_call``: a new call, or the one ``filed`` for the year and track opened again."""
        check_window(opens_at, closes_at)
        if filed is not None:
            return filed, filed.reopen(opens_at, closes_at, quota)
        call = cls(cycle_year, opens_at, closes_at, quota, track=track)
        return call, [call._opened()]

    def _opened(self) -> CallOpened:
        return CallOpened(
            cycle_year=self.cycle_year,
            track=self.track,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            quota_per_agency=self.quota_per_agency,
        )

    def reopen(self, opens_at: dt.datetime, closes_at: dt.datetime, quota: int) -> list[CallOpened]:
        """As when a year's cycle is started again: the opening and quota are fixed once it opened
        (forwards were counted against them); an open call may move its closing hour; a call its
        cancelled cycle left is opened again; a closed call stays closed (its summary froze the
        forwarded set) and is answered as it is."""
        if (quota, opens_at) != (self.quota_per_agency, self.opens_at):
            raise DomainError(
                RegistrationError.INVALID_TRANSITION,
                f"the call for proposals {self.label} opened {self.opens_at.isoformat()} with a quota of "
                f"{self.quota_per_agency} per agency; its opening and quota cannot change",
                {
                    "cycle_year": self.cycle_year,
                    **self._track_detail(),
                    "opens_at": self.opens_at.isoformat(),
                    "quota_per_agency": self.quota_per_agency,
                },
            )
        if self.state in CALL_TRANSITIONS["reopen"]:
            self.state, self.closed_at, self.closes_at = CallState.OPEN, None, closes_at
            return [self._opened()]
        if self.state in CALL_TRANSITIONS["move_closing"]:
            self.closes_at = closes_at
        return []

    def _track_detail(self) -> dict[str, str]:
        return track_detail(self.track)

    def cancel(self, at: dt.datetime) -> list[Event]:
        """Its cycle was cancelled: an open call accepts no more submissions (no event: the
        cycle's cancellation is the event)."""
        if self.state in CALL_TRANSITIONS["cancel"]:
            self.state, self.closed_at = CallState.CANCELLED, at
        return []

    def ensure_open(self) -> Call:
        if self.state != CallState.OPEN:
            closed = self.closed_at.isoformat() if self.closed_at else ""
            raise DomainError(
                RegistrationError.CALL_CLOSED,
                f"the call for proposals {self.label} is {self.state} (closed {closed})".strip(),
                {"cycle_year": self.cycle_year, **self._track_detail(), "state": self.state.value},
            )
        return self

    def take_number(self) -> str:
        """The id of the call's next new proposal: ``P<year>-<n>`` for an innovation, ``K<year>-<n>``
        for a KBK risalah (one numbering per call, so the prefix keeps the ids apart)."""
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        prefix = "K" if self.track == Competition.KBK else "P"
        return f"{prefix}{self.cycle_year}-{seq:05d}"

    def close(self, at: dt.datetime, filed: Iterable[Filed]) -> tuple[CallClosedSummary, list[CallClosed]]:
        """Freeze the forwarded set; closing again answers the first summary and changes nothing."""
        if self.summary is not None:
            return self.summary, []
        assert self.state in CALL_TRANSITIONS["close"]
        self.summary = _summary(self.cycle_year, list(filed), self.track)
        self.state, self.closed_at = CallState.CLOSED, at
        return self.summary, [CallClosed(cycle_year=self.cycle_year, summary=self.summary)]


def call_label(year: int, track: Competition) -> str:
    return f"{year}" if track == Competition.KOVABLIK else f"{year} ({track.value})"


def track_detail(track: Competition) -> dict[str, str]:
    """A refusal's details name the track when it is not KOVABLIK's (whose details stay as they were)."""
    return {} if track == Competition.KOVABLIK else {"track": track.value}


def accepting(call: Call | None, year: int, track: Competition = Competition.KOVABLIK) -> Call:
    """The year's call of ``track``, refused unless it is open."""
    if call is None:
        raise DomainError(
            RegistrationError.CALL_NOT_OPEN,
            f"the call for proposals {call_label(year, track)} is not open",
            {"cycle_year": year, **track_detail(track)},
        )
    return call.ensure_open()


def existing_call(call: Call | None, year: int, track: Competition = Competition.KOVABLIK) -> Call:
    if call is None:
        raise NotFound(RegistrationError.NOT_FOUND, f"no call for proposals for {call_label(year, track)}")
    return call


def _count(into: dict[str, int], key: str) -> None:
    into[key] = into.get(key, 0) + 1


def _summary(year: int, filed: list[Filed], track: Competition = Competition.KOVABLIK) -> CallClosedSummary:
    forwarded = [p for p in filed if p.status == ProposalStatus.FORWARDED]
    by_level: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for p in filed:
        if p.status != ProposalStatus.WITHDRAWN:
            _count(by_level, level_of(p.status))
        _count(by_status, p.status.value)
    by_agency: dict[str, int] = {}
    by_group: dict[str, int] = {}
    for p in forwarded:
        _count(by_agency, p.agency_code)
        _count(by_group, p.group)
    return CallClosedSummary(
        cycle_year=year,
        track=track,
        forwarded=len(forwarded),
        forwarded_digest=digest_ids(p.id for p in forwarded),
        by_level=by_level,
        by_status=by_status,
        by_agency=dict(sorted(by_agency.items())),
        by_group=by_group,
    )


# --------------------------------------------------------------------------- the quota


@dataclass(slots=True)
class AgencyQuota:
    """How many proposals an agency has forwarded this cycle (a withdrawal frees a slot).
    ``forwarded_before`` (the ids forwarded before this unit of work) is read only to explain a
    refusal."""

    cycle_year: int
    agency_code: str
    used: int = 0
    forwarded_before: list[str] | None = None
    forwarded_now: list[str] = field(default_factory=list)
    track: Competition = Competition.KOVABLIK

    @property
    def key(self) -> tuple[int, Competition, str]:
        """One quota per (year, competition, agency): KBK's risalah have a quota of their own."""
        return (self.cycle_year, self.track, self.agency_code)

    def full(self, limit: int) -> bool:
        return self.used >= limit

    def take(self, proposal_id: str, limit: int) -> None:
        if self.full(limit):
            forwarded = sorted(set(self.forwarded_before or []) | set(self.forwarded_now))
            raise DomainError(
                RegistrationError.QUOTA_EXCEEDED,
                f"agency {self.agency_code} has already forwarded {self.used} of its {limit} "
                f"{'risalah' if self.track == Competition.KBK else 'proposals'} this cycle; withdraw one to free a slot",
                {"agency_code": self.agency_code, "quota_per_agency": limit, "forwarded": forwarded},
            )
        self.used += 1
        self.forwarded_now.append(proposal_id)

    def release(self) -> None:
        self.used -= 1


# --------------------------------------------------------------------------- the chain

# Which status may move to which, and by whose hand.
TRANSITIONS: dict[str, set[ProposalStatus]] = {
    "forward": {ProposalStatus.SUBMITTED},
    "return": {ProposalStatus.SUBMITTED},
    "resubmit": {ProposalStatus.RETURNED},
    "withdraw": {ProposalStatus.SUBMITTED, ProposalStatus.RETURNED, ProposalStatus.FORWARDED},
}


def check_transition(action: str, status: str, proposal_id: str) -> None:
    if ProposalStatus(status) not in TRANSITIONS[action]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[action]))
        raise DomainError(
            RegistrationError.INVALID_TRANSITION,
            f"cannot {action} proposal {proposal_id}: it is {status} (only from {allowed})",
            {"proposal_id": proposal_id, "status": status, "action": action},
        )


def levels(status: str, was_forwarded: bool) -> dict[str, str]:
    """Status per level of the chain: where the proposal stands for the unit, its agency's admin,
    and the secretariat — so operators see what never left a unit."""
    s = ProposalStatus(status)
    if s == ProposalStatus.SUBMITTED:
        return {"unit": "submitted", "agency": "pending_review", "secretariat": "not_received"}
    if s == ProposalStatus.RETURNED:
        return {"unit": "revising", "agency": "returned", "secretariat": "not_received"}
    if s == ProposalStatus.FORWARDED:
        return {"unit": "submitted", "agency": "forwarded", "secretariat": "received"}
    if s == ProposalStatus.WITHDRAWN:
        return {
            "unit": "withdrawn",
            "agency": "withdrawn",
            "secretariat": "withdrawn" if was_forwarded else "not_received",
        }
    return {"unit": "draft", "agency": "not_received", "secretariat": "not_received"}


def level_of(status: str) -> str:
    """The level a proposal is at now."""
    return {
        ProposalStatus.SUBMITTED: "agency",
        ProposalStatus.FORWARDED: "secretariat",
    }.get(ProposalStatus(status), "unit")


def unique_title(holder: str | None, agency_code: str) -> None:
    """``holder``: the agency's other live proposal with the same title key this cycle, if any."""
    if holder:
        raise DomainError(
            RegistrationError.DUPLICATE_TITLE,
            f"agency {agency_code} already has proposal {holder} with the same title this cycle",
            {"proposal_id": holder},
        )


@dataclass(slots=True)
class Proposal:
    """A unit's proposal on its way through the chain: unit → agency admin → secretariat."""

    id: str
    cycle_year: int
    unit_code: str
    agency_code: str
    title_key: str
    group: str
    content: ProposalContent
    status: ProposalStatus
    updated_at: dt.datetime
    was_forwarded: bool = False
    submitted_at: dt.datetime | None = None
    forwarded_at: dt.datetime | None = None
    returned_reason: str | None = None
    track: Competition = Competition.KOVABLIK
    group_code: str | None = None

    @classmethod
    def submit(
        cls,
        call: Call,
        unit: Party,
        agency: Party,
        content: ProposalContent,
        key: str,
        holder: str | None,
        now: dt.datetime,
        group: Party | None = None,
    ) -> tuple[Proposal, ProposalSubmitted]:
        """A unit's new proposal (or, with ``group``, a KBK group's risalah), numbered by the open
        ``call``, at its agency admin."""
        unique_title(holder, agency.code)
        p = cls(
            id=call.take_number(),
            cycle_year=call.cycle_year,
            unit_code=unit.code,
            agency_code=agency.code,
            title_key=key,
            group=content.group.value,
            content=content,
            status=ProposalStatus.SUBMITTED,
            submitted_at=now,
            updated_at=now,
            track=call.track,
            group_code=group.code if group else None,
        )
        names = {unit.code: unit.name, agency.code: agency.name, **({group.code: group.name} if group else {})}
        return p, ProposalSubmitted(cycle_year=p.cycle_year, proposal=p.snapshot(names))

    @property
    def holds_a_slot(self) -> bool:
        """Forwarded: it counts against its agency's quota."""
        return self.status == ProposalStatus.FORWARDED

    @property
    def levels(self) -> dict[str, str]:
        return levels(self.status, self.was_forwarded)

    @property
    def quota_key(self) -> tuple[int, Competition, str]:
        return (self.cycle_year, self.track, self.agency_code)

    def snapshot(self, names: Names) -> ProposalSnapshot:
        return ProposalSnapshot(
            id=self.id,
            track=self.track,
            group_code=self.group_code,
            group_name=names.get(self.group_code, self.group_code) if self.group_code else None,
            unit_code=self.unit_code,
            unit_name=names.get(self.unit_code, self.unit_code),
            agency_code=self.agency_code,
            agency_name=names.get(self.agency_code, self.agency_code),
            content=self.content,
            status=self.status,
            submitted_at=self.submitted_at,
            forwarded_at=self.forwarded_at,
        )

    def _may(self, action: str) -> None:
        check_transition(action, self.status, self.id)

    def owned_by(self, unit_code: str) -> Proposal:
        """Only its own unit resubmits or withdraws a proposal (another's is as good as missing)."""
        if self.unit_code != unit_code:
            raise DomainError(
                RegistrationError.NOT_FOUND,
                f"proposal {self.id} is not {unit_code}'s",
                {"proposal_id": self.id},
            )
        return self

    def of_group(self, group_code: str | None) -> Proposal:
        """A risalah is resubmitted by its own group only, an innovation by its unit only (through
        ``submit_proposal``): the other's is as good as missing."""
        if self.group_code != group_code:
            raise DomainError(
                RegistrationError.NOT_FOUND,
                f"proposal {self.id} is not {group_code or self.unit_code}'s",
                {"proposal_id": self.id},
            )
        return self

    def under(self, agency_code: str) -> Proposal:
        """Only the admin of its unit's agency forwards or returns a proposal."""
        if self.agency_code != agency_code:
            raise DomainError(
                RegistrationError.UNIT_NOT_UNDER_AGENCY,
                f"proposal {self.id} comes from unit {self.unit_code}, which is not under agency {agency_code}",
                {"proposal_id": self.id, "unit_code": self.unit_code, "agency_code": self.agency_code},
            )
        return self

    def resubmit(
        self,
        unit: Party,
        agency: Party,
        content: ProposalContent,
        key: str,
        holder: str | None,
        now: dt.datetime,
        names: Names,
        group: Party | None = None,
    ) -> ProposalSubmitted:
        self.owned_by(unit.code).of_group(group.code if group else None)._may("resubmit")
        unique_title(holder, agency.code)
        self.content, self.title_key, self.group = content, key, content.group.value
        self.status, self.submitted_at, self.updated_at, self.returned_reason = (
            ProposalStatus.SUBMITTED,
            now,
            now,
            None,
        )
        return ProposalSubmitted(cycle_year=self.cycle_year, proposal=self.snapshot(names))

    def forward(
        self, call: Call, agency: Party, quota: AgencyQuota, now: dt.datetime, names: Names
    ) -> ProposalForwarded:
        """To the secretariat, against the agency's quota."""
        self.under(agency.code)._may("forward")
        quota.take(self.id, call.quota_per_agency)
        self.status, self.forwarded_at, self.updated_at, self.was_forwarded = (
            ProposalStatus.FORWARDED,
            now,
            now,
            True,
        )
        return ProposalForwarded(
            cycle_year=self.cycle_year,
            proposal=self.snapshot(names),
            quota_used=quota.used,
            quota_per_agency=call.quota_per_agency,
        )

    def return_to_unit(self, agency: Party, reason: str, now: dt.datetime, names: Names) -> ProposalReturned:
        self.under(agency.code)._may("return")
        self.status, self.returned_reason, self.updated_at = ProposalStatus.RETURNED, reason, now
        return ProposalReturned(cycle_year=self.cycle_year, proposal=self.snapshot(names), reason=reason)

    def withdraw(
        self, unit: Party, quota: AgencyQuota | None, reason: str | None, now: dt.datetime, names: Names
    ) -> ProposalWithdrawn:
        """By its unit; a forwarded proposal frees its agency's slot (``quota``, locked by the caller)."""
        self.owned_by(unit.code)._may("withdraw")
        if self.holds_a_slot:
            assert quota is not None and quota.key == self.quota_key
            quota.release()
        self.status, self.updated_at = ProposalStatus.WITHDRAWN, now
        return ProposalWithdrawn(cycle_year=self.cycle_year, proposal=self.snapshot(names), reason=reason)


def found(proposal: Proposal | None, year: int, proposal_id: str) -> Proposal:
    """The proposal of ``year`` with this id, refused when there is none."""
    if proposal is None or proposal.cycle_year != year:
        raise NotFound(
            RegistrationError.NOT_FOUND,
            f"no proposal {proposal_id} in cycle {year}",
            {"proposal_id": proposal_id},
        )
    return proposal


def any_proposal(proposal: Proposal | None, proposal_id: str) -> Proposal:
    if proposal is None:
        raise NotFound(
            RegistrationError.NOT_FOUND, f"no proposal {proposal_id}", {"proposal_id": proposal_id}
        )
    return proposal


@dataclass
class Forwarding:
    """What a batch of forwards reads at once: each forward is decided, in arrival order, against
    the state the earlier ones left. A forward counts against the call and quota of its
    proposal's competition (a risalah: KBK's)."""

    calls: dict[tuple[int, Competition], Call]
    people: dict[str, Party]
    proposals: dict[str, Proposal]
    quotas: dict[tuple[int, Competition, str], AgencyQuota]
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {code: p.name for code, p in self.people.items()}

    def track_of(self, proposal_id: str) -> Competition:
        """The competition whose call a forward of ``proposal_id`` is decided by (KOVABLIK's when
        the proposal is not there: the refusal then names KOVABLIK's call, as it always did)."""
        proposal = self.proposals.get(proposal_id)
        return proposal.track if proposal is not None else Competition.KOVABLIK

    def quota_to_explain(self, year: int, agency_code: str, proposal_id: str = "") -> AgencyQuota | None:
        """The quota a forward would be refused by whose earlier forwards are not read yet."""
        track = self.track_of(proposal_id)
        quota, call = self.quotas.get((year, track, agency_code)), self.calls.get((year, track))
        if quota is None or call is None or quota.forwarded_before is not None:
            return None
        return quota if quota.full(call.quota_per_agency) else None

    def forward(
        self, year: int, agency_code: str, proposal_id: str, now: dt.datetime
    ) -> tuple[Proposal, ProposalForwarded]:
        track = self.track_of(proposal_id)
        call = accepting(self.calls.get((year, track)), year, track)
        agency = an_agency(self.people.get(agency_code), agency_code)
        proposal = found(self.proposals.get(proposal_id), year, proposal_id)
        return proposal, proposal.forward(call, agency, self.quotas[(year, track, agency_code)], now, self.names)


# --------------------------------------------------------------------------- the innovation archive (rumah inovasi)

PROVINCE = "Provinsi Jawa Timur"
"""The region of a provincial agency's (OPD, BUMD) innovation in the archive."""
VERIFICATION = "verification"
"""The stage an eligible proposal reached when it entered no jury stage."""
REGION_KINDS = frozenset({ParticipantKind.KABUPATEN, ParticipantKind.KOTA})


def region_of(agency: Party | None, agency_name: str) -> str:
    """The archive's region: the regency or city itself, else the province. An imported row's
    agency is known by its name only: a name that starts with "Kabupaten " or "Kota " is its region."""
    if agency is not None:
        return agency.name if agency.kind in REGION_KINDS else PROVINCE
    return agency_name if agency_name.startswith(("Kabupaten ", "Kota ")) else PROVINCE


def check_original(replicates: str | None, held: bool) -> None:
    """A replication names an innovation the archive holds."""
    if replicates and not held:
        raise DomainError(
            RegistrationError.UNKNOWN_ORIGINAL,
            f"the archive holds no innovation {replicates}; a replication names the archive id of the original",
            {"replicates": replicates},
        )


def stage_reached(seen: Mapping[str, dt.datetime]) -> str | None:
    """The last jury stage a proposal entered (by when it was first seen there), else
    ``verification`` if it was eligible, else none."""
    jury = {stage: at for stage, at in seen.items() if stage != VERIFICATION}
    if jury:
        return max(jury, key=lambda stage: (jury[stage], stage))
    return VERIFICATION if VERIFICATION in seen else None


@dataclass(slots=True)
class AwardsSeen:
    """The awards determined for a year, as awards' ``awards_determined`` event told them."""

    cycle_year: int
    winners: int
    awards: dict[str, list[str]]
    """The award names (Indonesian) each proposal won, in the order of the categories."""

    @classmethod
    def of(cls, cycle_year: int, categories: Iterable[Any]) -> AwardsSeen:
        awards: dict[str, list[str]] = {}
        winners = 0
        for category in categories:
            for winner in category.winners:
                winners += 1
                if winner.proposal_id:
                    awards.setdefault(winner.proposal_id, []).append(category.name_id)
        return cls(cycle_year, winners, awards)


def ready_to_archive(seen: AwardsSeen | None, year: int, expected_winners: int) -> AwardsSeen:
    """The year's awards as the ceremony named them, or ``not_ready`` (retryable) while the event
    has not arrived (or an earlier determination with another count is all there is)."""
    if seen is None or seen.winners != expected_winners:
        have = "none" if seen is None else f"{seen.winners} winner(s)"
        raise NotReady(
            message=f"the awards of {year} have not arrived yet (expected {expected_winners} winner(s), have {have})",
            details={"cycle_year": year, "expected_winners": expected_winners, "have": None if seen is None else seen.winners},
        )
    return seen


@dataclass(slots=True)
class Archived:
    """An innovation in the public archive: a finished year's forwarded proposal, or an earlier
    year's imported row. Never a contact detail."""

    id: str
    year: int
    title: str
    unit_name: str
    agency_name: str
    category: str
    group: str
    summary: str
    track: Competition = Competition.KOVABLIK
    unit_code: str | None = None
    agency_code: str | None = None
    region: str | None = None
    stage_reached: str | None = None
    award: str | None = None
    replicates: str | None = None
    imported: bool = False


def archive_entry(p: Proposal, people: Mapping[str, Party], seen: Mapping[str, dt.datetime], awards: AwardsSeen) -> Archived:
    """What the public reads of one finished proposal: its content without the contact, where it
    was made, how far it went and what it won."""
    unit, agency = people.get(p.unit_code), people.get(p.agency_code)
    agency_name = agency.name if agency else p.agency_code
    won = awards.awards.get(p.id)
    return Archived(
        id=p.id,
        year=p.cycle_year,
        title=p.content.title,
        unit_name=unit.name if unit else p.unit_code,
        agency_name=agency_name,
        category=p.content.category,
        group=p.group,
        summary=p.content.summary,
        track=p.track,
        unit_code=p.unit_code,
        agency_code=p.agency_code,
        region=region_of(agency, agency_name),
        stage_reached=stage_reached(seen),
        award=", ".join(won) if won else None,
        replicates=p.content.replicates,
    )


def merge_archive_import(
    rows: list[Any], held: Mapping[str, Archived], known_ids: Iterable[str]
) -> tuple[list[Archived], list[Archived]]:
    """The entries an import creates and the held ones it changes. Idempotent per id: a row
    already imported is replaced by it; refused whole if a row's id is a platform proposal's or
    an imported row of another year, or it replicates an innovation neither the file nor the
    archive holds."""
    given = {r.id for r in rows}
    knowable = given | set(known_ids)
    problems = []
    for r in rows:
        old = held.get(r.id)
        if old is not None and (not old.imported or old.year != r.year):
            what = "a proposal of the platform" if not old.imported else f"an imported row of {old.year}"
            problems.append(f"{r.id}: the archive already holds it as {what}")
    if problems:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"{len(problems)} row(s) refused, nothing imported: {problems[0]}",
            {"problems": problems[:100]},
        )
    for r in rows:
        check_original(r.replicates, r.replicates in knowable)
    created, updated = [], []
    for r in rows:
        entry = Archived(
            id=r.id, year=r.year, title=r.title, unit_name=r.unit_name, agency_name=r.agency_name,
            category=r.category, group=r.group.value, summary=r.summary,
            region=r.region or region_of(None, r.agency_name), stage_reached=r.stage_reached,
            award=r.award, replicates=r.replicates, imported=True,
        )  # fmt: skip
        if r.id not in held:
            created.append(entry)
        elif held[r.id] != entry:
            updated.append(entry)
    return created, updated


def archived(entry: Archived | None, entry_id: str) -> Archived:
    if entry is None:
        raise NotFound(RegistrationError.NOT_FOUND, f"the archive holds no innovation {entry_id}", {"id": entry_id})
    return entry
