"""Who may do what on NATS: the identities, the kind of every command, and the permission table
they make, generated into nats-server's own authorization (users with nkeys).

This module is the one place the permissions are written. nats-server enforces them: a client
publishing or subscribing outside its identity's grants gets a "Permissions Violation" and its
message goes nowhere. A fixed set of identities with nkeys in the server's configuration needs no
operator, account JWTs or resolver to run; rotating a key is editing one line and a reload.

- a service (``registration``, ``verification``, ``scoring``, ``awards``) serves its own
  ``bfest.<service>.cmd.*`` in its queue group, answers only the requests it received
  (``allow_responses``), publishes only its own events ``bfest.evt.<service>.>`` and its dead
  letters ``bfest.dlq.<service>``, and calls only the JetStream API its durable consumers
  (``<service>--<upstream>``) and its outbox relay need;
- ``worker`` (the Temporal worker and the event→signal bridge) alone sends the commands of the
  cycle's steps, publishes ``bfest.evt.cycle.>`` and reads what it needs to decide;
- ``portal`` (the people's door) sends only the commands people make, and reads;
- ``cli`` (the operator) loads participants and jurors, may act for a person (with the actor it
  names), reads, watches the streams, and manages the two streams' configuration;
- ``auditor`` reads (query commands, the streams) and changes nothing;
- anonymous connections are refused (every user has an nkey; there is no ``no_auth_user``).

Every identity receives replies on its own inbox prefix (``_INBOX.<identity>.``), so no identity
can read the answers sent to another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from contracts import catalogue, subjects

# --------------------------------------------------------------------------- identities

SERVICES: tuple[str, ...] = subjects.SERVICES
WORKER = "worker"
PORTAL = "portal"
CLI = "cli"
AUDITOR = "auditor"
IDENTITIES: tuple[str, ...] = (*SERVICES, WORKER, PORTAL, CLI, AUDITOR)

ACTOR_SENDERS = frozenset({PORTAL, CLI})
"""The identities that may name the acting person (header ``Bfest-Actor``): only they may publish
person commands, so the server guarantees who set the actor."""


class Kind(StrEnum):
    """Who a command is for."""

    STEP = "step"  # a step of the cycle: sent by the workflow's activities (worker)
    PERSON = "person"  # an act of a person (unit, agency, verifier, juror, secretariat): portal, cli
    QUERY = "query"  # a read: changes nothing
    ADMIN = "admin"  # the operator's loading of reference data: cli


def _kinds() -> dict[str, Kind]:
    s, p, q, a = Kind.STEP, Kind.PERSON, Kind.QUERY, Kind.ADMIN
    table: dict[str, dict[str, Kind]] = {
        "registration": {
            "health": q, "import_participants": a, "get_participant": q, "list_participants": q,
            "open_call": s, "close_call": s, "get_call": q,
            "submit_proposal": p, "forward_proposal": p, "return_proposal": p, "withdraw_proposal": p,
            "get_proposal": q, "list_proposals": q,
        },
        "verification": {
            "health": q, "start_verification": s, "verification_status": q, "get_decision": q,
            "override_decision": p, "close_verification": s, "submit_lke": p, "override_wbk": p,
            "get_wbk_result": q,
        },
        "scoring": {
            "health": q, "import_jurors": a, "list_jurors": q, "open_stage": s, "submit_score": p, "declare_conflict": p,
            "stage_status": q, "juror_assignments": q, "remind_jurors": s, "close_stage": s, "get_shortlist": q,
            "file_objection": p, "decide_objection": p, "objections_status": q, "finalize_shortlist": s,
        },
        "awards": {
            "health": q, "validate_awards": s, "determine_awards": s, "announce_awards": s,
            "get_results": q, "verify_certificate": q,
        },
    }  # fmt: skip
    return {subjects.command(svc, name): kind for svc, names in table.items() for name, kind in names.items()}


COMMAND_KINDS: dict[str, Kind] = _kinds()
"""Every command subject and its kind (a test checks the catalogue has no other)."""


def command_kind(subject: str) -> Kind:
    try:
        return COMMAND_KINDS[subject]
    except KeyError:
        raise KeyError(f"{subject} has no kind in services/common/authz.py: classify it") from None


def commands(*kinds: Kind) -> list[str]:
    return sorted(s for s, k in COMMAND_KINDS.items() if k in kinds)


# --------------------------------------------------------------------------- durable names

EVENTS_STREAM = subjects.STREAM
DLQ_STREAM = "BFEST_DLQ"
STREAMS = (EVENTS_STREAM, DLQ_STREAM)
UPSTREAMS: tuple[str, ...] = (*SERVICES, subjects.CYCLE)


def service_durable(service: str, upstream: str) -> str:
    """The durable consumer through which ``service`` reads ``upstream``'s events."""
    return f"{service}--{upstream}"


BRIDGE_EVENTS: tuple[str, ...] = (
    subjects.event("verification", "verification_completed", 1),
    subjects.event("scoring", "stage_fully_scored", 1),
)
"""The events the worker's bridge turns into workflow signals."""


def bridge_durable(event_subject: str) -> str:
    return "bridge--" + event_subject.replace(".", "_")


def inbox_prefix(identity: str) -> str:
    """Where an identity receives its replies: nobody else may subscribe there."""
    return f"_INBOX.{identity}"


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Grants:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False
    notes: tuple[str, ...] = field(default=())


def _js(*parts: str) -> str:
    return "$JS.API." + ".".join(parts)


def _durable_api(durable: str) -> list[str]:
    """What a durable pull consumer needs: look it up, create it (either API form), fetch, ack."""
    return [
        _js("CONSUMER.INFO", EVENTS_STREAM, durable),
        _js("CONSUMER.DURABLE.CREATE", EVENTS_STREAM, durable),
        _js("CONSUMER.CREATE", EVENTS_STREAM, durable),
        _js("CONSUMER.CREATE", EVENTS_STREAM, durable, ">"),
        _js("CONSUMER.MSG.NEXT", EVENTS_STREAM, durable),
        f"$JS.ACK.{EVENTS_STREAM}.{durable}.>",
    ]


def _streams_exist() -> list[str]:
    """Look the two streams up and create them if missing (never change an existing one)."""
    return [_js(op, name) for name in STREAMS for op in ("STREAM.INFO", "STREAM.CREATE")]


def _stream_reads() -> list[str]:
    """Read the streams with ephemeral (ordered) consumers; no durable consumer, no change."""
    out = [_js("INFO"), _js("STREAM.NAMES"), _js("STREAM.LIST")]
    for name in STREAMS:
        out += [
            _js("STREAM.INFO", name),
            _js("STREAM.MSG.GET", name),
            _js("DIRECT.GET", name),
            _js("CONSUMER.CREATE", name),  # an ephemeral consumer: the server names it
            _js("CONSUMER.INFO", name, "*"),
        ]
    out.append("$JS.FC.>")  # flow-control answers of a push consumer
    return out


DOCUMENT_YEARS = range(2020, 2100)
"""The cycles whose document buckets the portal may use (a permission names a stream whole: a
wildcard cannot match part of ``OBJ_bfest-docs-2031``, and ``*`` there would reach the events)."""


def document_bucket(year: int) -> str:
    """The JetStream Object Store bucket of one cycle's proposal documents (PDFs the units upload)."""
    return f"bfest-docs-{year}"


def _document_stores() -> list[str]:
    """What the portal needs of each year's document bucket and nothing more: its objects'
    subjects, make and look up its stream, read the last meta of an object, read its chunks with
    an ordered (ephemeral) consumer, and purge the chunks of an object it replaces. No other
    stream: the events and dead letters stay out of its reach."""
    out = [_js("STREAM.NAMES")]  # reading an object finds its stream by subject
    for year in DOCUMENT_YEARS:
        bucket = document_bucket(year)
        stream = f"OBJ_{bucket}"
        out += [
            f"$O.{bucket}.>",
            _js("STREAM.INFO", stream),
            _js("STREAM.CREATE", stream),
            _js("STREAM.MSG.GET", stream),
            _js("DIRECT.GET", stream, ">"),
            _js("STREAM.PURGE", stream),
            _js("CONSUMER.CREATE", stream),
            _js("CONSUMER.CREATE", stream, ">"),
            _js("CONSUMER.DELETE", stream, "*"),
        ]
    return out


def grants(identity: str) -> Grants:
    inbox = inbox_prefix(identity) + ".>"
    if identity in SERVICES:
        svc = identity
        publish = [
            subjects.events_of(svc),
            subjects.dlq(svc),
            subjects.command(svc, "health"),  # its own readiness check at start
            *_streams_exist(),
        ]
        for upstream in UPSTREAMS:
            publish += _durable_api(service_durable(svc, upstream))
        return Grants(
            tuple(publish),
            (f"{subjects.commands_of(svc)} {subjects.queue_group(svc)}", inbox),
            allow_responses=True,
        )
    if identity == WORKER:
        publish = [*commands(Kind.STEP, Kind.QUERY), subjects.events_of(subjects.CYCLE), *_streams_exist()]
        for event in BRIDGE_EVENTS:
            publish += _durable_api(bridge_durable(event))
        return Grants(tuple(publish), (inbox,))
    if identity == PORTAL:
        return Grants(tuple([*commands(Kind.PERSON, Kind.QUERY), *_document_stores()]), (inbox,))
    if identity == CLI:
        manage = [_js(op, name) for name in STREAMS for op in ("STREAM.CREATE", "STREAM.UPDATE")]
        # The dev stack, as the operator, removes from a NATS it reused (not its own) the streams
        # and consumers it added there when it stops.
        manage += [_js(op, name) for name in STREAMS for op in ("STREAM.DELETE", "CONSUMER.LIST", "CONSUMER.NAMES")]
        manage += [_js("CONSUMER.DELETE", name, "*") for name in STREAMS]
        return Grants(
            tuple([*commands(Kind.ADMIN, Kind.PERSON, Kind.QUERY), *manage, *_stream_reads()]),
            (subjects.EVENTS_ALL, subjects.DLQ_ALL, inbox),
        )
    if identity == AUDITOR:
        return Grants(
            tuple([*commands(Kind.QUERY), *_stream_reads()]),
            (subjects.EVENTS_ALL, subjects.DLQ_ALL, inbox),
        )
    raise KeyError(f"unknown identity {identity!r}")


# --------------------------------------------------------------------------- credentials


SEED_SUFFIX = ".nk"
SERVER_CONFIG = "authorization.conf"


def seed_path(directory: Path, identity: str) -> Path:
    return directory / f"{identity}{SEED_SUFFIX}"


def new_user_seed() -> bytes:
    import nkeys

    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed: bytes) -> str:
    import nkeys

    kp = nkeys.from_seed(bytearray(seed.strip()))
    try:
        return str(kp.public_key.decode())
    finally:
        kp.wipe()


def ensure_credentials(directory: Path, identities: tuple[str, ...] = IDENTITIES) -> dict[str, Path]:
    """Each identity's nkey seed file under ``directory`` (made, readable by the owner only, if
    missing; an existing one is kept, so restarting changes nothing). Returns the seed files."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    out: dict[str, Path] = {}
    for identity in identities:
        path = seed_path(directory, identity)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(new_user_seed() + b"\n")
        out[identity] = path
    return out


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def server_config(public_keys: dict[str, str], extra: dict[str, Grants] | None = None) -> str:
    """The ``authorization`` block of nats-server's configuration: one nkey user per identity,
    with its grants. ``extra`` adds users (the test harness's)."""
    lines = [
        "# Generated by services/common/authz.py from the permission table: do not edit by hand.",
        "authorization {",
        "  users = [",
    ]
    table = {identity: grants(identity) for identity in public_keys if identity in IDENTITIES}
    table.update({name: g for name, g in (extra or {}).items() if name in public_keys})
    for identity, g in table.items():
        lines.append(f"    # {identity}")
        lines.append("    {")
        lines.append(f"      nkey: {_quote(public_keys[identity])}")
        lines.append("      permissions: {")
        lines.append(f"        publish: {{ allow: {_list(g.publish)} }}")
        lines.append(f"        subscribe: {{ allow: {_list(g.subscribe)} }}")
        if g.allow_responses:
            lines.append("        allow_responses: true")
        lines.append("      }")
        lines.append("    }")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write_server_config(
    directory: Path, extra: dict[str, Grants] | None = None, filename: str = SERVER_CONFIG, to: Path | None = None
) -> Path:
    """Make any missing credentials under ``directory`` and (re)write the server's authorization
    from the table and the identities' public keys (to ``to``, default ``directory/filename``).
    Returns the configuration file."""
    names = (*IDENTITIES, *(extra or {}))
    seeds = ensure_credentials(directory, names)
    keys = {name: public_key(path.read_bytes()) for name, path in seeds.items()}
    path = to or directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(server_config(keys, extra))
    os.chmod(tmp, 0o644)  # public keys and permissions only: the server may run as another user
    tmp.replace(path)
    return path


def rotate(directory: Path, identity: str) -> Path:
    """Give ``identity`` a new key (the old one stops working once the server reloads the
    configuration this rewrites)."""
    if identity not in IDENTITIES:
        raise KeyError(f"unknown identity {identity!r}")
    seed_path(directory, identity).unlink(missing_ok=True)
    return write_server_config(directory)


def catalogued_commands() -> set[str]:
    return set(catalogue.COMMANDS)


def main(argv: list[str] | None = None) -> int:
    """``python -m services.common.authz DIR [--config FILE] [--rotate IDENTITY]``: make the
    identities' seeds under DIR (kept if present), optionally give one identity a new key, and
    write nats-server's authorization (default DIR/authorization.conf)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m services.common.authz", description=main.__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--config", type=Path, default=None, help="where to write the authorization block")
    parser.add_argument("--rotate", choices=IDENTITIES, default=None, help="give this identity a new key first")
    args = parser.parse_args(argv)
    if args.rotate:
        seed_path(args.directory, args.rotate).unlink(missing_ok=True)
    config = write_server_config(args.directory, to=args.config)
    print(f"wrote {config}; seeds under {args.directory}: " + ", ".join(f"{i}{SEED_SUFFIX}" for i in IDENTITIES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "ACTOR_SENDERS",
    "COMMAND_KINDS",
    "IDENTITIES",
    "Grants",
    "Kind",
    "command_kind",
    "ensure_credentials",
    "grants",
    "inbox_prefix",
    "rotate",
    "server_config",
    "write_server_config",
]
