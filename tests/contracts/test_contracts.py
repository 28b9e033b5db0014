"""Contract stability: the AsyncAPI document is valid and in sync with the code, the committed
JSON Schema snapshots are honoured (no incompatible change without a new version), and command
models are strict."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from contracts import catalogue, subjects
from contracts.base import COMMANDS, EVENTS, ErrorCode, Query
from services.common.asyncapi import (
    DOC,
    SNAPSHOTS,
    _domain_codes,
    asyncapi_yaml,
    breaking_changes,
    build_asyncapi,
    current_schemas,
)
from services.common.errors import DomainError

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]
_ = catalogue


def test_the_asyncapi_document_is_in_sync_with_the_code():
    assert DOC.read_text(encoding="utf-8") == asyncapi_yaml(), "docs/asyncapi.yaml is stale: run `make asyncapi`"


def test_every_message_has_an_example_its_own_schema_accepts():
    doc = build_asyncapi()
    schemas = doc["components"]["schemas"]
    by_name = {m.__name__: m for m in [s.model for s in COMMANDS.values()] + [s.model for s in EVENTS.values()]}
    checked = 0
    for key, message in doc["components"]["messages"].items():
        if not key.endswith(("_request", "_event")):
            continue
        [ex] = message["examples"]
        model = by_name[message["name"]]
        model.model_validate(ex["payload"])  # the service's own parsing
        schema = {**schemas[message["payload"]["$ref"].rsplit("/", 1)[-1]], "components": {"schemas": schemas}}
        jsonschema.validate(ex["payload"], schema)  # and the published JSON Schema, as a client reads it
        checked += 1
    assert checked == len(COMMANDS) + len(EVENTS)


def test_the_asyncapi_document_is_valid_asyncapi_3_1():
    schema = json.loads((DATA / "asyncapi-3.1.0.schema.json").read_text())
    doc = yaml.safe_load(DOC.read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    assert errors == [], errors[0].message if errors else ""
    broken = {**doc, "operations": {"x": {"action": "sideways"}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_every_subject_is_in_the_document():
    doc = build_asyncapi()
    addresses = {c["address"] for c in doc["channels"].values() if c["address"]}
    assert set(COMMANDS) | set(EVENTS) <= addresses
    assert {f"bfest.dlq.{s}" for s in ("registration", "verification", "scoring", "awards")} <= addresses


def test_every_reply_names_the_domain_error_codes_its_service_answers():
    doc = build_asyncapi()
    schemas = doc["components"]["schemas"]
    forward = schemas["registration_cmd_forward_proposal_reply_envelope"]["description"]
    assert "quota_exceeded" in forward and "call_closed" in forward and "invalid_json" in forward
    score = schemas["scoring_cmd_submit_score_reply_envelope"]["description"]
    assert "not_assigned" in score and "quota_exceeded" not in score
    tags = {t["name"]: t["description"] for t in doc["info"]["tags"]}
    assert {"registration", "verification", "scoring", "awards"} <= set(tags)
    assert "`verification_not_started`" in tags["verification"] and "``" not in tags["verification"]


def test_snapshots_cover_every_subject_and_changes_are_compatible():
    current = current_schemas()
    snapshots = {p.stem: json.loads(p.read_text()) for p in SNAPSHOTS.glob("*.json")}
    missing = sorted(set(current) - set(snapshots))
    assert not missing, f"no schema snapshot for {missing}: run `python -m services.common.asyncapi --snapshot`"
    gone = sorted(set(snapshots) - set(current))
    assert not gone, f"subjects removed without a new version: {gone}"
    problems = {s: breaking_changes(snapshots[s], current[s]) for s in current}
    problems = {s: p for s, p in problems.items() if p}
    assert not problems, f"incompatible contract changes (publish a .v<N+1> subject instead): {problems}"


def test_the_checker_catches_breaking_changes():
    old = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "k": {"enum": ["x", "y"]}}, "required": ["a"]}
    assert breaking_changes(old, old) == []
    added = {**old, "properties": {**old["properties"], "c": {"type": "string"}}}
    assert breaking_changes(old, added) == []
    removed = {**old, "properties": {"a": {"type": "string"}, "k": {"enum": ["x", "y"]}}}
    assert breaking_changes(old, removed) == ["b: removed"]
    required = {**added, "required": ["a", "c"]}
    assert breaking_changes(old, required) == ["c: newly required"]
    retyped = {**old, "properties": {**old["properties"], "b": {"type": "string"}}}
    assert "type changed" in breaking_changes(old, retyped)[0]
    narrowed = {**old, "properties": {**old["properties"], "k": {"enum": ["x"]}}}
    assert "enum values removed" in breaking_changes(old, narrowed)[0]


@pytest.mark.parametrize("subject", sorted(COMMANDS))
def test_commands_are_strict(subject):
    model = COMMANDS[subject].model
    with pytest.raises(ValidationError) as err:
        model.model_validate({"request_id": "r", "surprise": 1})
    assert "extra_forbidden" in {e["type"] for e in err.value.errors()}
    if "cycle_year" in model.model_fields:
        with pytest.raises(ValidationError) as err:
            model.model_validate({"request_id": "r", "cycle_year": "2026"})
        assert any(e["loc"] == ("cycle_year",) and e["type"] == "int_type" for e in err.value.errors())
    if "at" in model.model_fields and not issubclass(model, Query):
        with pytest.raises(ValidationError) as err:
            model.model_validate({"request_id": "r", "at": 1700000000})
        assert any(e["loc"] == ("at",) for e in err.value.errors())
    with pytest.raises(ValidationError):
        model.model_validate({"request_id": "x" * 500})


@pytest.mark.parametrize("subject", sorted(EVENTS))
def test_events_carry_identity_time_year_and_their_type_tag(subject):
    model = EVENTS[subject].model
    for field in ("event_id", "occurred_at", "cycle_year", "type"):
        assert field in model.model_fields
    schema = model.model_json_schema()
    assert schema["properties"]["type"]["const"] == model.type_tag() == subject.removeprefix("bfest.evt.")


def _documented_codes(service: str) -> set[str]:
    """The codes a contract module's docstring lists between "Domain error codes:" and "plus the
    runtime's codes"."""
    doc = importlib.import_module(f"contracts.{service}").__doc__ or ""
    listed = doc.split("Domain error codes:", 1)[1].split("plus the runtime's codes", 1)[0]
    return set(re.findall(r"``([a-z_]+)``", listed))


REFUSALS = {cls.__name__ for cls in (DomainError, *DomainError.__subclasses__())}


def _codes_raised(service: str) -> tuple[set[str], set[str]]:
    """What a service's code passes as an error code: ``<Name>Error.X`` / ``ErrorCode.X`` attribute
    names, and bare string literals (which no contract declares)."""
    attributes, literals = set(), set()
    for path in (ROOT / "services" / service).rglob("*.py"):  # a domain may be a package
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
                continue
            if node.func.id not in REFUSALS:
                continue
            arg = node.args[0]
            for branch in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                if isinstance(branch, ast.Attribute) and isinstance(branch.value, ast.Name):
                    attributes.add(f"{branch.value.id}.{branch.attr}")
                elif isinstance(branch, ast.Constant):
                    literals.add(branch.value)
    return attributes, literals


@pytest.mark.parametrize("service", subjects.SERVICES)
def test_each_service_documents_declares_and_raises_the_same_error_codes(service):
    runtime = {c.value for c in ErrorCode}
    declared = set(_domain_codes(service))
    assert _documented_codes(service) - runtime == declared - runtime, "the contract docstring and its *Error class differ"
    attributes, literals = _codes_raised(service)
    assert literals == set(), f"{service} raises codes no contract declares: {literals}"
    module = importlib.import_module(f"contracts.{service}")
    resolved = set()
    for ref in attributes:
        owner, name = ref.split(".")
        holder = ErrorCode if owner == "ErrorCode" else getattr(module, owner)
        resolved.add(str(getattr(holder, name)))
    unused = declared - resolved
    assert unused == set(), f"{service} declares codes it never raises: {unused}"
