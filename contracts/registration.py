"""Registration: participants, the call for proposals, the three-level submission chain, quota.

Domain error codes: ``unknown_participant``, ``not_a_unit``, ``not_an_agency``,
``unit_not_under_agency``, ``call_not_open``, ``call_closed``, ``quota_exceeded``,
``duplicate_title``, ``invalid_participant`` (an import whose kinds and parents do not fit),
``invalid_transition``, ``invalid_window``, ``not_found``, ``not_a_group`` (a KBK risalah from a
code that is not a work-culture group), ``unknown_original`` (a replication naming an innovation the
archive does not hold), plus the runtime's codes.

Two competitions run the same chain: KOVABLIK's innovations (``track`` kovablik, the default) and
the work-culture groups' risalah (``track`` kbk, submitted by the group with ``submit_risalah``);
a call, its quota and its closing summary are per (year, track). After the ceremony a year's
proposals join the public innovation archive (``search_archive``, ``get_archived``)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from contracts.base import (
    Acting,
    Code,
    Command,
    Competition,
    Count,
    Day,
    Digest,
    ErrorCode,
    Event,
    Group,
    Health,
    Instant,
    Name,
    ParticipantKind,
    PositiveInt,
    ProposalStatus,
    Query,
    Reason,
    Role,
    Text,
    Title,
    WorkflowCommand,
    Year,
    acting,
    command,
    event,
)

SERVICE = "registration"

PROPOSAL_READERS = frozenset({Role.SECRETARIAT, Role.OPERATOR, Role.VERIFIER, Role.UNIT, Role.AGENCY, Role.KBK_GROUP})
"""Who may read proposals (with their contact details) when reading for a person."""


class RegistrationError:
    UNKNOWN_PARTICIPANT = "unknown_participant"
    NOT_A_UNIT = "not_a_unit"
    NOT_AN_AGENCY = "not_an_agency"
    UNIT_NOT_UNDER_AGENCY = "unit_not_under_agency"
    CALL_NOT_OPEN = "call_not_open"
    CALL_CLOSED = "call_closed"
    QUOTA_EXCEEDED = "quota_exceeded"
    DUPLICATE_TITLE = "duplicate_title"
    INVALID_TRANSITION = "invalid_transition"
    INVALID_WINDOW = "invalid_window"
    INVALID_PARTICIPANT = "invalid_participant"
    NOT_A_GROUP = "not_a_group"
    UNKNOWN_ORIGINAL = "unknown_original"
    NOT_FOUND = "not_found"


# --------------------------------------------------------------------------- values


class Participant(BaseModel):
    code: Code
    name: Name
    kind: ParticipantKind
    parent_code: Code | None = Field(default=None, description="The agency a unit belongs to; none for agencies.")
    active: bool = True


class Contact(BaseModel):
    model_config = {"extra": "forbid"}
    name: Name
    email: str = Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40)


class DocumentRef(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Code = Field(description="e.g. proposal, video, sk_inovasi, data_dukung")
    uri: str = Field(min_length=1, max_length=1000)


class ProposalContent(BaseModel):
    """What a unit writes. Every field is required except documents' optional extras."""

    model_config = {"extra": "forbid"}
    title: Title
    group: Group
    category: Code = Field(description="Innovation category, e.g. kesehatan, pendidikan, tata_kelola.")
    summary: Text
    problem: Text
    solution: Text
    impact: Text
    started_on: Day = Field(description="When the innovation started running.")
    documents: list[DocumentRef] = Field(default_factory=list, max_length=50)
    contact: Contact
    replicates: Code | None = Field(
        default=None,
        description="A replication (group replikasi) names the innovation it replicates: its archive id (see search_archive).",
    )


class ProposalView(BaseModel):
    id: Code
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    group_code: Code | None = Field(default=None, description="The work-culture group that submitted a KBK risalah.")
    unit_code: Code
    agency_code: Code
    content: ProposalContent
    status: ProposalStatus
    levels: dict[str, str] = Field(description="Status per level: unit / agency / secretariat.")
    submitted_at: Instant | None = None
    forwarded_at: Instant | None = None
    returned_reason: str | None = None
    updated_at: Instant


class CallView(BaseModel):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    state: str = Field(description="open | closed")
    opens_at: Instant
    closes_at: Instant
    quota_per_agency: PositiveInt


class CallClosedSummary(BaseModel):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    forwarded: Count
    forwarded_digest: Digest = Field(description="sha256 of the sorted forwarded proposal ids (contracts.base.digest_ids).")
    by_level: dict[str, int] = Field(
        description="Where the proposals that were not withdrawn stopped: unit (never left it, or returned to it), agency (awaiting its admin), secretariat (forwarded)."
    )
    by_status: dict[str, int] = Field(description="Every proposal of the call by status, withdrawn included.")
    by_agency: dict[str, int] = Field(description="Forwarded proposals per agency.")
    by_group: dict[str, int] = Field(description="Forwarded proposals per group.")


class ImportSummary(BaseModel):
    created: Count
    updated: Count
    total: Count


class ParticipantPage(BaseModel):
    items: list[Participant]
    total: Count
    offset: Count


class ProposalPage(BaseModel):
    items: list[ProposalView]
    total: Count
    offset: Count


# --------------------------------------------------------------------------- commands


@command(SERVICE, "health", reply=Health)
class RegistrationHealth(Query):
    """Liveness and readiness of the registration service."""


@command(SERVICE, "import_participants", reply=ImportSummary)
class ImportParticipants(Command):
    """Create or update participants (agencies before their units). Idempotent by code."""

    participants: list[Participant] = Field(min_length=1, max_length=5000)


@command(SERVICE, "get_participant", reply=Participant)
class GetParticipant(Query):
    """One participant by code."""

    code: Code


@command(SERVICE, "list_participants", reply=ParticipantPage)
class ListParticipants(Query):
    """Participants, paged, filterable by kind and parent agency."""

    kind: ParticipantKind | None = None
    parent_code: Code | None = None
    offset: Count = 0
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


@command(SERVICE, "open_call", reply=CallView)
class OpenCall(WorkflowCommand):
    """Open the call for proposals of a cycle (sent by the cycle workflow). Idempotent."""

    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    opens_at: Instant
    closes_at: Instant
    quota_per_agency: PositiveInt = 3


@command(SERVICE, "close_call", reply=CallClosedSummary)
class CloseCall(WorkflowCommand):
    """Close the call: the set of forwarded proposals is frozen. Idempotent: a second close
    returns the same summary."""

    cycle_year: Year
    track: Competition = Competition.KOVABLIK
    at: Instant = Field(description="The cycle's clock (workflow.now()) at closing.")


@command(SERVICE, "get_call", reply=CallView)
class GetCall(Query):
    cycle_year: Year
    track: Competition = Competition.KOVABLIK


@command(SERVICE, "submit_proposal", reply=ProposalView)
class SubmitProposal(Command):
    """A unit submits a new proposal (or resubmits a returned one by giving its id) to its agency admin."""
    ACTING: ClassVar[Acting | None] = acting(Role.UNIT, "unit_code", ErrorCode.NOT_YOUR_UNIT, ErrorCode.NOT_YOUR_UNIT)


    cycle_year: Year
    unit_code: Code
    proposal_id: Code | None = Field(default=None, description="Set to resubmit a returned proposal.")
    content: ProposalContent


@command(SERVICE, "submit_risalah", reply=ProposalView)
class SubmitRisalah(Command):
    """A work-culture group (KBK) submits its risalah — the written report of a problem it solved,
    with its document — to its unit's agency admin (or resubmits a returned one by its id). It
    then goes the proposals' way: forwarded within the KBK call's quota, checked, judged."""

    ACTING: ClassVar[Acting | None] = acting(Role.KBK_GROUP, "group_code", ErrorCode.NOT_YOUR_GROUP, ErrorCode.NOT_YOUR_GROUP)

    cycle_year: Year
    group_code: Code
    proposal_id: Code | None = Field(default=None, description="Set to resubmit a returned risalah.")
    content: ProposalContent = Field(description="The risalah; ``category`` is the group's cluster.")


@command(SERVICE, "forward_proposal", reply=ProposalView)
class ForwardProposal(Command):
    """The agency admin forwards a submitted proposal to the secretariat; counts against the quota."""
    ACTING: ClassVar[Acting | None] = acting(Role.AGENCY, "agency_code", ErrorCode.NOT_YOUR_AGENCY, ErrorCode.NOT_YOUR_AGENCY)


    cycle_year: Year
    agency_code: Code
    proposal_id: Code


@command(SERVICE, "return_proposal", reply=ProposalView)
class ReturnProposal(Command):
    """The agency admin returns a submitted proposal to its unit for revision."""
    ACTING: ClassVar[Acting | None] = acting(Role.AGENCY, "agency_code", ErrorCode.NOT_YOUR_AGENCY, ErrorCode.NOT_YOUR_AGENCY)


    cycle_year: Year
    agency_code: Code
    proposal_id: Code
    reason: Reason


@command(SERVICE, "withdraw_proposal", reply=ProposalView)
class WithdrawProposal(Command):
    """The unit withdraws its proposal before the call closes; a forwarded one frees its quota slot."""
    ACTING: ClassVar[Acting | None] = acting(Role.UNIT, "unit_code", ErrorCode.NOT_YOUR_UNIT, ErrorCode.NOT_YOUR_UNIT)


    cycle_year: Year
    unit_code: Code
    proposal_id: Code
    reason: Reason | None = None


@command(SERVICE, "get_proposal", reply=ProposalView)
class GetProposal(Query):
    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        return PROPOSAL_READERS  # a proposal names its contact person

    proposal_id: Code


@command(SERVICE, "list_proposals", reply=ProposalPage)
class ListProposals(Query):
    """Proposals of a cycle, paged, filterable by agency, unit, status and group."""
    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        return PROPOSAL_READERS  # a proposal names its contact person


    cycle_year: Year
    track: Competition | None = Field(default=None, description="One competition's proposals; none means both.")
    agency_code: Code | None = None
    unit_code: Code | None = None
    group_code: Code | None = None
    status: ProposalStatus | None = None
    group: Group | None = None
    offset: Count = 0
    limit: int = Field(default=100, ge=1, le=1000, strict=True)


# --------------------------------------------------------------------------- events


class ProposalSnapshot(BaseModel):
    """Everything downstream services need to know of a proposal, carried in the events so
    their read models never depend on event order or on registration's tables."""

    id: Code
    track: Competition = Competition.KOVABLIK
    group_code: Code | None = None
    group_name: str | None = None
    unit_code: Code
    unit_name: str
    agency_code: Code
    agency_name: str
    content: ProposalContent
    status: ProposalStatus
    submitted_at: Instant | None = None
    forwarded_at: Instant | None = None


@event(SERVICE, "call_opened")
class CallOpened(Event):
    """The call for proposals of a cycle is open."""

    track: Competition = Competition.KOVABLIK
    opens_at: Instant
    closes_at: Instant
    quota_per_agency: PositiveInt


@event(SERVICE, "proposal_submitted")
class ProposalSubmitted(Event):
    """A unit submitted (or resubmitted) a proposal to its agency admin."""

    proposal: ProposalSnapshot


@event(SERVICE, "proposal_forwarded")
class ProposalForwarded(Event):
    """An agency forwarded a proposal to the secretariat."""

    proposal: ProposalSnapshot
    quota_used: Count
    quota_per_agency: PositiveInt


@event(SERVICE, "proposal_returned")
class ProposalReturned(Event):
    """An agency admin returned a proposal to its unit."""

    proposal: ProposalSnapshot
    reason: str


@event(SERVICE, "proposal_withdrawn")
class ProposalWithdrawn(Event):
    """A unit withdrew a proposal; if it had been forwarded, its quota slot is free again."""

    proposal: ProposalSnapshot
    reason: str | None = None


@event(SERVICE, "call_closed")
class CallClosed(Event):
    """The call is closed; the forwarded set is frozen."""

    summary: CallClosedSummary



# --------------------------------------------------------------------------- the innovation archive (rumah inovasi)


class ArchiveRef(BaseModel):
    id: Code
    year: Year
    title: str
    unit_name: str
    agency_name: str
    region: str | None = None


class ArchiveEntry(BaseModel):
    """A finished year's proposal as the public reads it (no contact details)."""

    id: Code = Field(description="The proposal's id; an imported earlier year's row keeps the id its CSV gives.")
    year: Year
    track: Competition = Competition.KOVABLIK
    title: str
    unit_code: Code | None = None
    unit_name: str
    agency_code: Code | None = None
    agency_name: str
    region: str | None = Field(default=None, description="The regency or city (or 'Provinsi Jawa Timur' for provincial agencies).")
    category: str
    group: str
    summary: str
    stage_reached: str | None = Field(default=None, description="verification | the key of the last jury stage it entered | none if it stopped before")
    award: str | None = Field(default=None, description="The awards it won, by name, comma-separated.")
    replicates: ArchiveRef | None = None
    replications: list[ArchiveRef] = Field(default_factory=list, description="Where it was replicated (on get_archived).")
    imported: bool = False


class ArchivePage(BaseModel):
    items: list[ArchiveEntry]
    total: Count
    next_offset: int | None = None


class ArchiveYearSummary(BaseModel):
    cycle_year: Year
    entries: Count
    awarded: Count


class ArchiveImportRow(BaseModel):
    model_config = {"extra": "forbid"}
    id: Code
    year: Year
    title: Title
    unit_name: Name
    agency_name: Name
    region: Name | None = None
    category: Code
    group: Group
    summary: Text
    stage_reached: Name | None = None
    award: Name | None = None
    replicates: Code | None = None


@command(SERVICE, "search_archive", reply=ArchivePage)
class SearchArchive(Query):
    """Search the public archive across years: words in the title and summary, and filters."""

    text: str | None = Field(default=None, max_length=200)
    year: Year | None = None
    category: Code | None = None
    group: Group | None = None
    region: Name | None = None
    agency_code: Code | None = None
    awarded_only: bool = False
    offset: Count = 0
    limit: int = Field(default=50, ge=1, le=500, strict=True)


@command(SERVICE, "get_archived", reply=ArchiveEntry)
class GetArchived(Query):
    """One archived innovation with the innovation it replicates and its replications."""

    id: Code


@command(SERVICE, "archive_year", reply=ArchiveYearSummary)
class ArchiveYear(WorkflowCommand):
    """After the ceremony (sent by the workflow): the year's forwarded proposals become public in
    the archive with the stage each reached and its awards. Answers ``not_ready`` while the
    service has not yet seen the awards determined for the year. Idempotent."""

    cycle_year: Year
    expected_winners: Count = Field(description="How many winners the ceremony named (AwardsSummary's categories, summed).")
    at: Instant


@command(SERVICE, "import_archive", reply=ImportSummary)
class ImportArchive(Command):
    """The operator imports earlier years' proposals into the archive (``bfest archive import FILE.csv``).
    Idempotent per id: a row already held is replaced by the same row, refused if it differs in year.
    Like ``import_participants``, only the operator's identity may send it (NATS permissions)."""

    rows: list[ArchiveImportRow] = Field(min_length=1, max_length=5000)
