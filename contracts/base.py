"""The building blocks every contract uses: base command and event models, the reply envelope,
shared value types, and the registry that makes the catalogue.

Commands are strict (unknown fields refused, no silent coercion of wrong types, bounded strings);
events are tolerant readers (fields are only ever added within a version, so consumers ignore what
they do not know).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from contracts import subjects

# --------------------------------------------------------------------------- value types


def _no_number_for_time(value: Any) -> Any:
    # pydantic would read 1700000000 as a timestamp; a command must say what it means.
    if isinstance(value, bool | int | float):
        raise ValueError("expected an ISO 8601 date-time string with a time zone, e.g. 2026-05-31T12:00:00+07:00")
    return value


def _no_number_for_date(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError("expected an ISO 8601 date string, e.g. 2025-01-31")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_no_number_for_time)]
"""A moment in time with its time zone (the cycle's dates are Asia/Jakarta)."""
Day = Annotated[dt.date, BeforeValidator(_no_number_for_date)]

Code = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
"""A stable identifier: participant code, proposal id, juror id, award key."""
RequestId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200)]
Title = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=3, max_length=300)]
Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=10_000)]
Reason = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=3, max_length=2_000)]
Year = Annotated[int, Field(strict=True, ge=2000, le=2100)]
Count = Annotated[int, Field(strict=True, ge=0)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Score = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Digest = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-f]{64}$")]


class ParticipantKind(StrEnum):
    OPD = "opd"  # perangkat daerah: provincial agency
    KABUPATEN = "kabupaten"  # regency
    KOTA = "kota"  # city
    BUMD = "bumd"  # regional enterprise
    UPT = "upt"  # technical unit of an agency
    UPP = "upp"  # public service unit
    KBK = "kbk"  # a work-culture group (Kelompok Budaya Kerja), registered under its unit


AGENCY_KINDS = frozenset({ParticipantKind.OPD, ParticipantKind.KABUPATEN, ParticipantKind.KOTA, ParticipantKind.BUMD})
UNIT_KINDS = frozenset({ParticipantKind.UPT, ParticipantKind.UPP})


class Track(StrEnum):
    """The Bureaucracy Fest's tracks. KOVABLIK and WBK run in the cycle workflow itself; the others
    each run in a child workflow ``bfest-cycle-<year>-<track>`` and meet at the one ceremony."""

    KOVABLIK = "kovablik"  # the innovation competition (call, verification, jury stages)
    WBK = "wbk"  # Zona Integritas: "Layak Berpredikat WBK" (LKE, during verification)
    SAKIP = "sakip"  # performance accountability evaluation, grade AA..D per agency
    RB = "rb"  # Reformasi Birokrasi index and predicate per agency
    CETTAR = "cettar"  # the CETTAR work-culture rating (composite) per region / agency
    KBK = "kbk"  # the work-culture group competition (risalah, check, jury stages)


class Competition(StrEnum):
    """The tracks that run the competition machinery (a call, the administrative check, jury
    stages): registration, verification and scoring key their work by (year, competition)."""

    KOVABLIK = "kovablik"
    KBK = "kbk"


class EvaluationKind(StrEnum):
    """The tracks that are evaluations against a versioned rubric (the verification service's)."""

    SAKIP = "sakip"
    RB = "rb"
    CETTAR = "cettar"


class Group(StrEnum):
    UMUM = "umum"  # general
    KHUSUS = "khusus"  # special: regions with special conditions
    REPLIKASI = "replikasi"  # replications


class Level(StrEnum):
    """Where a proposal stands in the submission chain."""

    UNIT = "unit"
    AGENCY = "agency"
    SECRETARIAT = "secretariat"


class ProposalStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # at the agency admin
    RETURNED = "returned"  # back at the unit for revision
    FORWARDED = "forwarded"  # at the secretariat, counts against the agency's quota
    WITHDRAWN = "withdrawn"


class AdminDecision(StrEnum):
    ELIGIBLE = "eligible"
    DISQUALIFIED = "disqualified"


class WbkDecision(StrEnum):
    LAYAK_WBK = "layak_wbk"
    BELUM_LAYAK = "belum_layak"


class SakipGrade(StrEnum):
    AA = "AA"
    A = "A"
    BB = "BB"
    B = "B"
    CC = "CC"
    C = "C"
    D = "D"

    @property
    def rank(self) -> int:
        return ["D", "C", "CC", "B", "BB", "A", "AA"].index(self.value)


class Role(StrEnum):
    """What an acting person is, as the portal's session (or the operator) vouches for."""

    UNIT = "unit"  # a unit's admin (UPT/UPP): submits, withdraws, sends its LKE
    AGENCY = "agency"  # an agency's admin: forwards or returns its units' proposals
    VERIFIER = "verifier"  # confirms or overrides a verification result
    JUROR = "juror"  # scores what is assigned to them
    SECRETARIAT = "secretariat"  # the award secretariat: decides objections
    OPERATOR = "operator"  # the platform's operator (CLI)
    PUBLIC = "public"  # anyone signed in at the portal: files objections
    EVALUATOR = "evaluator"  # enters SAKIP / RB / CETTAR evaluation sheets
    REVIEWER = "reviewer"  # approves (or returns) an evaluator's sheet; never their own
    KBK_GROUP = "kbk_group"  # a work-culture group: submits its risalah


class ObjectionDecision(StrEnum):
    UPHELD = "upheld"  # the proposal is removed from the shortlist
    REJECTED = "rejected"  # the proposal stays


StageKey = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DEFAULT_STAGES: tuple[str, ...] = ("desk", "interview", "field")


class CyclePhase(StrEnum):
    STARTING = "starting"
    WAITING_FOR_CALL = "waiting_for_call"
    CALL_OPEN = "call_open"
    VERIFICATION = "verification"
    JURY = "jury"
    WAITING_FOR_CEREMONY = "waiting_for_ceremony"
    CEREMONY = "ceremony"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


# --------------------------------------------------------------------------- errors


class ErrorCode(StrEnum):
    """The error vocabulary every service shares. Services add domain codes of their own
    (documented in their contracts module); these are the ones the runtime itself produces."""

    INVALID_JSON = "invalid_json"
    VALIDATION_ERROR = "validation_error"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_TRANSITION = "invalid_transition"
    NOT_READY = "not_ready"  # retryable: a read model is behind what the command expects
    INTERNAL_ERROR = "internal_error"  # retryable: something unexpected; logged with its trace
    # Verified actors (a person's command carries the acting person in the Bfest-Actor header):
    ACTOR_REQUIRED = "actor_required"  # a person's command without the header
    INVALID_ACTOR = "invalid_actor"  # a header that is not {"id", "role"}
    ACTOR_MISMATCH = "actor_mismatch"  # the payload names another person than the actor
    NOT_YOUR_UNIT = "not_your_unit"  # a unit acting for another unit, or not a unit
    NOT_YOUR_AGENCY = "not_your_agency"  # an agency admin acting for another agency, or not one
    NOT_A_VERIFIER = "not_a_verifier"  # not a verifier, or not in the cycle's verifier list
    NOT_A_JUROR = "not_a_juror"
    NOT_SECRETARIAT = "not_secretariat"  # deciding an objection is the secretariat's (or operator's)
    NOT_ALLOWED_TO_READ = "not_allowed_to_read"  # a read a person in that role may not see
    NOT_AN_EVALUATOR = "not_an_evaluator"  # not an evaluator, or not in the track's evaluator list
    NOT_A_REVIEWER = "not_a_reviewer"  # not a reviewer, or not in the track's reviewer list
    NOT_YOUR_GROUP = "not_your_group"  # a work-culture group acting for another group, or not one


RETRYABLE_CODES = frozenset({ErrorCode.NOT_READY.value, ErrorCode.INTERNAL_ERROR.value})


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class Reply(BaseModel):
    """The envelope of every command reply: ``{"ok": true, "data": …}`` or
    ``{"ok": false, "error": {"code", "message", "details"}}``."""

    ok: bool
    data: Any = None
    error: ErrorBody | None = None

    @classmethod
    def success(cls, data: Any) -> Reply:
        return cls(ok=True, data=data)

    @classmethod
    def failure(cls, code: str, message: str, details: Any = None) -> Reply:
        return cls(ok=False, error=ErrorBody(code=code, message=message, details=details))

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.code in RETRYABLE_CODES


# --------------------------------------------------------------------------- acting person

ACTOR_HEADER = "Bfest-Actor"
"""The NATS header naming the acting person of a command, as JSON ``{"id": …, "role": …}``. Only
the portal's and the operator's identities may publish the commands people make, so the server
guarantees who set it."""


class Actor(BaseModel):
    """The person acting, set by the authenticated sender (the portal from its session, the CLI
    from the operator), never by the payload's author."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Code
    role: Role


@dataclass(frozen=True)
class Acting:
    """Who may make a person's command: the roles that may, the payload field that names the
    actor (it must name this actor), and the codes of the two refusals."""

    roles: tuple[Role, ...]
    field: str | None
    role_refusal: str
    mismatch_refusal: str = ErrorCode.ACTOR_MISMATCH

    def actor_for(self, cmd: Any) -> Actor:
        """The actor a payload names (for clients acting as the person the payload names: the
        demo's simulated people, tests)."""
        return Actor(id=getattr(cmd, self.field) if self.field else "anonymous", role=self.roles[0])


# --------------------------------------------------------------------------- base models


REQUEST_ID_DOC = "Idempotency key: a retry with the same id returns the first answer and changes nothing."


def new_request_id() -> str:
    """A fresh idempotency key, for a client that is a person's (the CLI, the portal, tests): one
    per act, kept for its retries. Workflow code never calls it: its keys derive from its id."""
    return str(uuid.uuid4())


class Command(BaseModel):
    """A request to one service, sent as NATS request/reply on ``bfest.<service>.cmd.<name>``.

    ``request_id`` is the idempotency key: a retried command returns the first result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    SERVICE: ClassVar[str]
    NAME: ClassVar[str]
    REPLY: ClassVar[type[BaseModel] | None]
    ACTING: ClassVar[Acting | None] = None
    """Set on the commands people make: who may act, and which field names them."""

    request_id: RequestId = Field(default_factory=new_request_id, description=REQUEST_ID_DOC)

    @classmethod
    def subject(cls) -> str:
        return subjects.command(cls.SERVICE, cls.NAME)

    @classmethod
    def restricted_readers(cls, cmd: Any) -> frozenset[Role] | None:
        """The roles a person must have to see this read's answer, when it exposes assignments
        or personal data; ``None``: anyone who may send it."""
        return None


class Query(Command):
    """A command that only reads; its request_id is optional and not recorded."""


def _request_id_optional_on_the_wire(schema: dict[str, Any]) -> None:
    required = [name for name in schema.get("required", []) if name != "request_id"]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)


class WorkflowCommand(Command):
    """A command a workflow builds (and sends through an activity). Built in code, it must name
    its ``request_id`` — derived from the workflow's id and step — and its timestamps
    (``workflow.now()``): nothing in it defaults to ``uuid4()`` or ``now()``, so replaying the
    workflow builds the very same command and a retried activity is the same idempotent request.
    People's clients that send one too (the CLI, the portal, tests) name a fresh key with
    :func:`new_request_id`.

    On the wire nothing changes: ``request_id`` stays optional in the published schema, and a
    command parsed from JSON without one gets a fresh key from the receiving service, as before."""

    model_config = ConfigDict(json_schema_extra=_request_id_optional_on_the_wire)

    request_id: RequestId = Field(description=REQUEST_ID_DOC)

    @model_validator(mode="before")
    @classmethod
    def _fresh_key_for_a_hand_sent_message(cls, data: Any, info: ValidationInfo) -> Any:
        if info.mode == "json" and isinstance(data, dict) and "request_id" not in data:
            return {**data, "request_id": new_request_id()}
        return data


class WorkflowQuery(WorkflowCommand, Query):
    """A read a workflow makes: like :class:`WorkflowCommand`, it names its ``request_id``."""

    request_id: RequestId = Field(description=REQUEST_ID_DOC)


STAFF = frozenset({Role.SECRETARIAT, Role.OPERATOR})
"""Who may see juror loads, assignments and contact details."""


def acting(roles: Role | tuple[Role, ...], field: str | None, role_refusal: str, mismatch_refusal: str = ErrorCode.ACTOR_MISMATCH) -> Acting:
    return Acting(roles if isinstance(roles, tuple) else (roles,), field, role_refusal, mismatch_refusal)


class Event(BaseModel):
    """Something that happened, published to JetStream stream ``BFEST_EVENTS`` on
    ``bfest.evt.<service>.<event>.v<N>`` with ``Nats-Msg-Id`` = ``event_id``."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra=lambda s, cls: _event_schema(s, cls))

    SERVICE: ClassVar[str]
    NAME: ClassVar[str]
    VERSION: ClassVar[int]

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    type: str = Field(default="", description="Type tag: <service>.<event>.v<N>")
    occurred_at: Instant = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    cycle_year: Year

    @classmethod
    def type_tag(cls) -> str:
        return f"{cls.SERVICE}.{cls.NAME}.v{cls.VERSION}"

    @classmethod
    def subject(cls) -> str:
        return subjects.event(cls.SERVICE, cls.NAME, cls.VERSION)

    @model_validator(mode="after")
    def _tag(self) -> Event:
        expected = self.type_tag()
        if not self.type:
            object.__setattr__(self, "type", expected)
        elif self.type != expected:
            raise ValueError(f"type is {self.type!r}, expected {expected!r}")
        return self


def _event_schema(schema: dict[str, Any], cls: Any) -> None:
    tag = getattr(cls, "type_tag", None)
    if tag is not None and hasattr(cls, "SERVICE"):
        schema.setdefault("properties", {}).setdefault("type", {})["const"] = tag()


def _workflow_event_schema(schema: dict[str, Any], cls: Any) -> None:
    _event_schema(schema, cls)
    required = [name for name in schema.get("required", []) if name not in ("event_id", "occurred_at")]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)


class WorkflowEvent(Event):
    """An event a workflow builds (the cycle's lifecycle events). Built in code, it must name its
    ``event_id`` (derived from the workflow's id, so JetStream de-duplicates a retried publish)
    and its ``occurred_at`` (``workflow.now()``): neither defaults to ``uuid4()`` or ``now()``.
    A consumer reading one from the wire reads it as any event (the schema is unchanged)."""

    model_config = ConfigDict(json_schema_extra=lambda s, cls: _workflow_event_schema(s, cls))

    event_id: str = Field(min_length=1, max_length=200)
    occurred_at: Instant

    @model_validator(mode="before")
    @classmethod
    def _read_as_any_event(cls, data: Any, info: ValidationInfo) -> Any:
        if info.mode == "json" and isinstance(data, dict) and not {"event_id", "occurred_at"} <= data.keys():
            return {"event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.UTC), **data}
        return data


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class CommandSpec:
    service: str
    name: str
    model: type[Command]
    reply: type[BaseModel] | None
    doc: str

    @property
    def subject(self) -> str:
        return subjects.command(self.service, self.name)


@dataclass(frozen=True)
class EventSpec:
    service: str
    name: str
    version: int
    model: type[Event]
    doc: str

    @property
    def subject(self) -> str:
        return subjects.event(self.service, self.name, self.version)


COMMANDS: dict[str, CommandSpec] = {}
EVENTS: dict[str, EventSpec] = {}

C = TypeVar("C", bound=type[Command])
E = TypeVar("E", bound=type[Event])


def command(service: str, name: str, reply: type[BaseModel] | None = None) -> Callable[[C], C]:
    """Register a command model under ``bfest.<service>.cmd.<name>``."""

    def register(cls: C) -> C:
        cls.SERVICE, cls.NAME, cls.REPLY = service, name, reply
        spec = CommandSpec(service, name, cls, reply, (cls.__doc__ or "").strip())
        if spec.subject in COMMANDS and COMMANDS[spec.subject].model is not cls:
            raise RuntimeError(f"command subject {spec.subject} registered twice")
        COMMANDS[spec.subject] = spec
        return cls

    return register


def event(service: str, name: str, version: int = 1) -> Callable[[E], E]:
    """Register an event model under ``bfest.evt.<service>.<name>.v<version>``."""

    def register(cls: E) -> E:
        cls.SERVICE, cls.NAME, cls.VERSION = service, name, version
        spec = EventSpec(service, name, version, cls, (cls.__doc__ or "").strip())
        if spec.subject in EVENTS and EVENTS[spec.subject].model is not cls:
            raise RuntimeError(f"event subject {spec.subject} registered twice")
        EVENTS[spec.subject] = spec
        cls.model_rebuild(force=True)
        return cls

    return register


# --------------------------------------------------------------------------- shared replies


class Health(BaseModel):
    service: str
    status: str
    version: str
    database: str
    outbox_pending: int
    ready: bool = True
    """False when the service is not ready: its outbox does not drain, a consumer lags, its
    dead-letter subject is not empty, or NATS or its database is out of reach."""
    reasons: list[str] = Field(default_factory=list)
    """Why it is not ready, one line each."""


class SetRef(BaseModel):
    """A set of ids named by its size and a digest, so a command can say what it expects
    without carrying thousands of ids (and the workflow history stays small)."""

    count: Count
    digest: Digest


def digest_ids(ids: Any) -> str:
    """sha256 of the sorted, newline-joined ids: the digest in a :class:`SetRef`."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def title_key(title: str) -> str:
    """How titles compare across the platform (duplicates, past winners): without case, accents,
    punctuation or extra spaces."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())
