"""Registration's rules, free of I/O: the call for proposals, the submission chain, the agencies'
quota and the participants' tree. Aggregates change themselves and return the events they cause;
every refusal is raised here, with its code from ``contracts.registration``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.base import AGENCY_KINDS, UNIT_KINDS, Event, ParticipantKind, ProposalStatus, digest_ids
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
from services.common.errors import DomainError, NotFound

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
    """The incoming participants that are (or would become) units."""
    return [p.code for p in incoming if p.kind not in AGENCY_KINDS]


def _demotions(incoming: Mapping[str, Participant], children: Iterable[tuple[str, str]]) -> list[str]:
    """An agency whose units stay under it cannot become a unit: they could no longer be forwarded.
    ``children`` are the (code, parent_code) already filed under the incoming units."""
    kept: dict[str, list[str]] = {}
    for code, parent in children:
        moved = incoming.get(code)
        if moved is None or moved.parent_code == parent:
            kept.setdefault(parent, []).append(code)
    return [
        f"{code}: has {len(kids)} unit(s) ({', '.join(sorted(kids)[:3])}{', …' if len(kids) > 3 else ''}); "
        f"an agency with units cannot become a unit ({incoming[code].kind.value})"
        for code, kids in sorted(kept.items())
    ]


def check_import(
    incoming: list[Participant],
    known_kinds: Mapping[str, ParticipantKind],
    children: Iterable[tuple[str, str]],
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
    """A cycle's call for proposals: its window, the agencies' quota and the proposals' numbering."""

    cycle_year: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    quota_per_agency: int
    state: CallState = CallState.OPEN
    next_seq: int = 1
    closed_at: dt.datetime | None = None
    summary: CallClosedSummary | None = None

    @classmethod
    def open(
        cls, filed: Call | None, cycle_year: int, opens_at: dt.datetime, closes_at: dt.datetime, quota: int
    ) -> tuple[Call, list[CallOpened]]:
        """``open_call``: a new call, or the one ``filed`` for the year opened again."""
        check_window(opens_at, closes_at)
        if filed is not None:
            return filed, filed.reopen(opens_at, closes_at, quota)
        call = cls(cycle_year, opens_at, closes_at, quota)
        return call, [call._opened()]

    def _opened(self) -> CallOpened:
        return CallOpened(
            cycle_year=self.cycle_year,
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
                f"the call for proposals {self.cycle_year} opened {self.opens_at.isoformat()} with a quota of "
                f"{self.quota_per_agency} per agency; its opening and quota cannot change",
                {
                    "cycle_year": self.cycle_year,
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
                f"the call for proposals {self.cycle_year} is {self.state} (closed {closed})".strip(),
                {"cycle_year": self.cycle_year, "state": self.state.value},
            )
        return self

    def take_number(self) -> str:
        """The id of the call's next new proposal."""
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return f"P{self.cycle_year}-{seq:05d}"

    def close(self, at: dt.datetime, filed: Iterable[Filed]) -> tuple[CallClosedSummary, list[CallClosed]]:
        """Freeze the forwarded set; closing again answers the first summary and changes nothing."""
        if self.summary is not None:
            return self.summary, []
        assert self.state in CALL_TRANSITIONS["close"]
        self.summary = _summary(self.cycle_year, list(filed))
        self.state, self.closed_at = CallState.CLOSED, at
        return self.summary, [CallClosed(cycle_year=self.cycle_year, summary=self.summary)]


def accepting(call: Call | None, year: int) -> Call:
    """The year's call, refused unless it is open."""
    if call is None:
        raise DomainError(
            RegistrationError.CALL_NOT_OPEN,
            f"the call for proposals {year} is not open",
            {"cycle_year": year},
        )
    return call.ensure_open()


def existing_call(call: Call | None, year: int) -> Call:
    if call is None:
        raise NotFound(RegistrationError.NOT_FOUND, f"no call for proposals for {year}")
    return call


def _count(into: dict[str, int], key: str) -> None:
    into[key] = into.get(key, 0) + 1


def _summary(year: int, filed: list[Filed]) -> CallClosedSummary:
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

    @property
    def key(self) -> tuple[int, str]:
        return (self.cycle_year, self.agency_code)

    def full(self, limit: int) -> bool:
        return self.used >= limit

    def take(self, proposal_id: str, limit: int) -> None:
        if self.full(limit):
            forwarded = sorted(set(self.forwarded_before or []) | set(self.forwarded_now))
            raise DomainError(
                RegistrationError.QUOTA_EXCEEDED,
                f"agency {self.agency_code} has already forwarded {self.used} of its {limit} proposals this cycle; withdraw one to free a slot",
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
    ) -> tuple[Proposal, ProposalSubmitted]:
        """A unit's new proposal, numbered by the open ``call``, at its agency admin."""
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
        )
        return p, ProposalSubmitted(
            cycle_year=p.cycle_year, proposal=p.snapshot({unit.code: unit.name, agency.code: agency.name})
        )

    @property
    def holds_a_slot(self) -> bool:
        """Forwarded: it counts against its agency's quota."""
        return self.status == ProposalStatus.FORWARDED

    @property
    def levels(self) -> dict[str, str]:
        return levels(self.status, self.was_forwarded)

    def snapshot(self, names: Names) -> ProposalSnapshot:
        return ProposalSnapshot(
            id=self.id,
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
    ) -> ProposalSubmitted:
        self.owned_by(unit.code)._may("resubmit")
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
            assert quota is not None and quota.key == (self.cycle_year, self.agency_code)
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
    the state the earlier ones left."""

    calls: dict[int, Call]
    people: dict[str, Party]
    proposals: dict[str, Proposal]
    quotas: dict[tuple[int, str], AgencyQuota]
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {code: p.name for code, p in self.people.items()}

    def quota_to_explain(self, year: int, agency_code: str) -> AgencyQuota | None:
        """The quota a forward would be refused by whose earlier forwards are not read yet."""
        quota, call = self.quotas.get((year, agency_code)), self.calls.get(year)
        if quota is None or call is None or quota.forwarded_before is not None:
            return None
        return quota if quota.full(call.quota_per_agency) else None

    def forward(
        self, year: int, agency_code: str, proposal_id: str, now: dt.datetime
    ) -> tuple[Proposal, ProposalForwarded]:
        call = accepting(self.calls.get(year), year)
        agency = an_agency(self.people.get(agency_code), agency_code)
        proposal = found(self.proposals.get(proposal_id), year, proposal_id)
        return proposal, proposal.forward(call, agency, self.quotas[(year, agency_code)], now, self.names)
