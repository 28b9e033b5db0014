"""The AsyncAPI 3.0 document of every subject, generated from the contracts catalogue so the
docs cannot drift from the code, and the JSON Schema snapshots that guard contract stability.

``python -m services.common.asyncapi`` (or ``bfest contracts asyncapi``) writes
``docs/asyncapi.yaml``; ``python -m services.common.asyncapi --snapshot`` refreshes
``contracts/schemas/`` (only for a compatible change or a new version)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts import catalogue, subjects
from contracts.base import ACTOR_HEADER, COMMANDS, EVENTS, ErrorBody, ErrorCode, Query
from contracts.examples import example

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "contracts" / "schemas"
DOC = ROOT / "docs" / "asyncapi.yaml"
VERSION = "1.0.0"


class DeadLetter(BaseModel):
    """What ``bfest.dlq.<service>`` carries: an event a service could not process, and why."""

    service: str
    subject: str
    reason: str
    error: str
    details: Any = None
    payload: str
    at: str


def _ident(subject: str) -> str:
    return subject.replace("bfest.", "").replace(".", "_")


def _schemas() -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    models: list[type[BaseModel]] = [spec.model for spec in COMMANDS.values()]
    models += [spec.reply for spec in COMMANDS.values() if spec.reply is not None and issubclass(spec.reply, BaseModel)]
    models += [spec.model for spec in EVENTS.values()]
    models += [ErrorBody, DeadLetter]
    unique = list(dict.fromkeys(models))
    refs, top = models_json_schema([(m, "validation") for m in unique], ref_template="#/components/schemas/{model}")
    return {(m, mode): schema for (m, mode), schema in refs.items() if isinstance(m, type) and issubclass(m, BaseModel)}, dict(top.get("$defs", {}))


def _domain_codes(service: str) -> list[str]:
    """The error codes a service's contract module declares (its ``<Name>Error`` class)."""
    module = importlib.import_module(f"contracts.{service}")
    codes: list[str] = []
    for name, value in vars(module).items():
        if isinstance(value, type) and name.endswith("Error") and value.__module__ == module.__name__:
            codes += [v for k, v in vars(value).items() if k.isupper() and isinstance(v, str)]
    return list(dict.fromkeys(codes))


def _service_doc(service: str) -> str:
    """The contract module's docstring as CommonMark: paragraphs joined, RST literals as code spans."""
    doc = (importlib.import_module(f"contracts.{service}").__doc__ or service).strip().replace("``", "`")
    return "\n\n".join(" ".join(line.strip() for line in para.splitlines()) for para in doc.split("\n\n"))


def _examples(model: type[BaseModel], summary: str) -> dict[str, Any]:
    payload = example(model)
    return {"examples": [{"name": "example", "summary": summary, "payload": payload}]} if payload else {}


def _actor_headers(model: type[Any]) -> dict[str, Any]:
    """A person's command names the acting person in a header (set by the portal or the operator's
    CLI, the only identities that may send it); its payload's actor field must name the same."""
    rule = model.ACTING
    if rule is None:
        return {}
    named = f" `{rule.field}` must be this actor's id." if rule.field else ""
    return {
        "headers": {
            "type": "object",
            "required": [ACTOR_HEADER],
            "properties": {
                ACTOR_HEADER: {
                    "type": "string",
                    "description": 'The acting person, JSON {"id": …, "role": …}; role one of: '
                    + ", ".join(r.value for r in rule.roles)
                    + f".{named} Refusals: {rule.role_refusal}, {rule.mismatch_refusal}, actor_required.",
                }
            },
        }
    }


class _Document:
    """The AsyncAPI document being built: its channels, operations, messages and schemas."""

    def __init__(self) -> None:
        _ = catalogue  # every contract module registered
        self.refs, self.schemas = _schemas()
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.codes = ", ".join(c.value for c in ErrorCode)
        self.domain_codes = {service: ", ".join(_domain_codes(service)) or "none" for service in subjects.SERVICES}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        return self.refs[(model, "validation")]

    def add_command(self, subject: str) -> None:
        spec = COMMANDS[subject]
        ident = _ident(subject)
        req, rep = f"{ident}_request", f"{ident}_reply"
        reply_schema = f"{ident}_reply_envelope"
        self.schemas[reply_schema] = self._reply_envelope(spec)
        summary = spec.doc.splitlines()[0] if spec.doc else spec.name
        self.messages[req] = {
            "name": spec.model.__name__,
            "title": f"{spec.service}: {spec.name}",
            "summary": summary,
            "description": spec.doc or spec.name,
            "contentType": "application/json",
            **_actor_headers(spec.model),
            "payload": self.ref(spec.model),
            **_examples(spec.model, f"A well-formed {spec.name}"),
        }
        self.messages[rep] = {
            "name": f"{spec.model.__name__}Reply",
            "title": f"{spec.service}: {spec.name} reply",
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{reply_schema}"},
        }
        self.channels[ident] = {
            "address": subject,
            "title": subject,
            "description": f"Request/reply, served by queue group `{subjects.queue_group(spec.service)}`."
            + (" A read-only query." if issubclass(spec.model, Query) else " Idempotent by `request_id`."),
            "messages": {req: {"$ref": f"#/components/messages/{req}"}},
        }
        self.channels[f"{ident}_reply"] = {
            "address": None,
            "description": f"The requester's reply inbox for {subject}.",
            "messages": {rep: {"$ref": f"#/components/messages/{rep}"}},
        }
        self.operations[ident] = {
            "action": "receive",
            "title": f"{spec.service} handles {spec.name}",
            "summary": summary,
            "channel": {"$ref": f"#/channels/{ident}"},
            "messages": [{"$ref": f"#/channels/{ident}/messages/{req}"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{ident}_reply"},
                "messages": [{"$ref": f"#/channels/{ident}_reply/messages/{rep}"}],
            },
            "tags": [{"name": spec.service}, {"name": "command"}],
        }

    def _reply_envelope(self, spec: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.ref(spec.reply) if spec.reply is not None and issubclass(spec.reply, BaseModel) else {}
        return {
            "title": f"Reply to {spec.name}",
            "type": "object",
            "description": 'The envelope: {"ok": true, "data": …} or {"ok": false, "error": {code, message, details}}. '
            f"Runtime error codes: {self.codes}. Domain error codes of {spec.service}: {self.domain_codes[spec.service]}.",
            "properties": {
                "ok": {"type": "boolean"},
                "data": {"anyOf": [data, {"type": "null"}]} if data else {},
                "error": {"anyOf": [self.ref(ErrorBody), {"type": "null"}]},
            },
            "required": ["ok"],
        }

    def add_event(self, subject: str) -> None:
        espec = EVENTS[subject]
        ident = _ident(subject)
        msg = f"{ident}_event"
        self.messages[msg] = {
            "name": espec.model.__name__,
            "title": espec.model.type_tag(),
            "summary": espec.doc.splitlines()[0] if espec.doc else espec.name,
            "description": (espec.doc or espec.name) + f"\n\nJetStream stream `{subjects.STREAM}`; `Nats-Msg-Id` = `event_id`.",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "description": "= event_id (de-duplication)"}},
            },
            "payload": self.ref(espec.model),
            **_examples(espec.model, f"A {espec.name} event"),
        }
        self.channels[ident] = {
            "address": subject,
            "title": subject,
            "description": f"Event of {espec.service}, version {espec.version}.",
            "messages": {msg: {"$ref": f"#/components/messages/{msg}"}},
        }
        self.operations[f"publish_{ident}"] = {
            "action": "send",
            "title": f"{espec.service} publishes {espec.name}",
            "channel": {"$ref": f"#/channels/{ident}"},
            "messages": [{"$ref": f"#/channels/{ident}/messages/{msg}"}],
            "tags": [{"name": espec.service}, {"name": "event"}],
        }

    def add_dead_letters(self, service: str) -> None:
        ident = _ident(subjects.dlq(service))
        msg = f"{ident}_entry"
        self.messages[msg] = {
            "name": "DeadLetter",
            "title": f"{service}: dead letter",
            "contentType": "application/json",
            "payload": self.ref(DeadLetter),
        }
        self.channels[ident] = {
            "address": subjects.dlq(service),
            "description": f"Poison events {service} could not process (stream BFEST_DLQ).",
            "messages": {msg: {"$ref": f"#/components/messages/{msg}"}},
        }
        self.operations[f"dead_letter_{service}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{ident}"},
            "messages": [{"$ref": f"#/channels/{ident}/messages/{msg}"}],
            "tags": [{"name": service}, {"name": "dlq"}],
        }

    def document(self) -> dict[str, Any]:
        return {
            "asyncapi": "3.1.0",
            "info": _info(),
            "defaultContentType": "application/json",
            "servers": {
                "local": {
                    "host": "127.0.0.1:4222",
                    "protocol": "nats",
                    "description": "The embedded stack (`bfest dev up`).",
                }
            },
            "channels": self.channels,
            "operations": self.operations,
            "components": {"messages": self.messages, "schemas": dict(sorted(self.schemas.items()))},
        }


def _info() -> dict[str, Any]:
    return {
        "title": "Bureaucracy Fest platform",
        "version": VERSION,
        "description": "Commands (NATS request/reply on `bfest.<service>.cmd.<name>`) and events (JetStream stream "
        "`BFEST_EVENTS` on `bfest.evt.<service>.<event>.v<N>`) of the KOVABLIK / WBK award cycle. "
        "Generated from `contracts/` by `bfest contracts asyncapi`.",
        "tags": [{"name": service, "description": _service_doc(service)} for service in subjects.SERVICES]
        + [
            {"name": "command", "description": "Request/reply; the reply is the envelope {ok, data, error}."},
            {"name": "event", "description": f"Published to JetStream stream `{subjects.STREAM}` through the outbox."},
            {"name": "dlq", "description": "Poison events a service could not process, with the reason."},
        ],
    }


def build_asyncapi() -> dict[str, Any]:
    doc = _Document()
    for subject in sorted(COMMANDS):
        doc.add_command(subject)
    for subject in sorted(EVENTS):
        doc.add_event(subject)
    for service in subjects.SERVICES:
        doc.add_dead_letters(service)
    return doc.document()


def asyncapi_yaml() -> str:
    return str(yaml.safe_dump(build_asyncapi(), sort_keys=False, allow_unicode=True, width=120))


def write_asyncapi(path: Path | str = DOC) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(asyncapi_yaml(), encoding="utf-8")


# --------------------------------------------------------------------------- schema snapshots


def current_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for subject, spec in COMMANDS.items():
        out[subject] = spec.model.model_json_schema()
    for subject, event_spec in EVENTS.items():
        out[subject] = event_spec.model.model_json_schema()
    return out


def write_snapshots(directory: Path = SNAPSHOTS) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for subject, schema in current_schemas().items():
        (directory / f"{subject}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(root.get("$defs", {}).get(ref.split("/")[-1], {}))
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return set().union(*(_types(s, root) for s in schema["anyOf"]))
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    if "enum" in schema or "const" in schema:
        return {"enum"}
    if "properties" in schema:
        return {"object"}
    return {"any"}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a consumer or producer of the old schema would trip over in the new one."""
    problems: list[str] = []

    def walk(o: dict[str, Any], n: dict[str, Any], path: str, seen: set[str]) -> None:
        o_r, n_r = _resolve(o, old), _resolve(n, new)
        key = path + json.dumps(o.get("$ref", ""))
        if key in seen:
            return
        seen = seen | {key}
        ot, nt = _types(o, old), _types(n, new)
        if "any" not in nt and not ot <= nt:
            problems.append(f"{path or '(root)'}: type changed from {sorted(ot)} to {sorted(nt)}")
            return
        if "enum" in o_r and "enum" in n_r:
            lost = set(map(str, o_r["enum"])) - set(map(str, n_r["enum"]))
            if lost:
                problems.append(f"{path}: enum values removed: {sorted(lost)}")
        for bound in ("maxLength", "maximum"):
            if bound in n_r and (bound not in o_r or n_r[bound] < o_r[bound]):
                problems.append(f"{path}: {bound} narrowed")
        for bound in ("minLength", "minimum"):
            if bound in n_r and (bound not in o_r or n_r[bound] > o_r[bound]):
                problems.append(f"{path}: {bound} narrowed")
        o_props, n_props = o_r.get("properties", {}), n_r.get("properties", {})
        for name in o_props:
            if name not in n_props:
                problems.append(f"{path}.{name}: removed".lstrip("."))
            else:
                walk(o_props[name], n_props[name], f"{path}.{name}".lstrip("."), seen)
        added_required = set(n_r.get("required", [])) - set(o_r.get("required", []))
        for name in sorted(added_required):
            problems.append(f"{path}.{name}: newly required".lstrip("."))
        if "items" in o_r and "items" in n_r:
            walk(o_r["items"], n_r["items"], f"{path}[]", seen)
        if "anyOf" in o_r and "anyOf" in n_r and len(o_r["anyOf"]) == len(n_r["anyOf"]):
            for i, (a, b) in enumerate(zip(o_r["anyOf"], n_r["anyOf"], strict=True)):
                walk(a, b, f"{path}<{i}>", seen)

    walk(old, new, "", set())
    return problems


if __name__ == "__main__":
    if "--snapshot" in sys.argv:
        write_snapshots()
        print(f"wrote {SNAPSHOTS}")
    else:
        write_asyncapi(DOC)
        print(f"wrote {DOC}")
