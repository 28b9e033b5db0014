"""The commands (and lifecycle events) a workflow builds are deterministic: built in code, each
must name its ``request_id`` (an event its ``event_id`` and ``occurred_at``) and its timestamps
(nothing defaults to ``uuid4()`` or ``now()``), so a replayed workflow builds the very same
message. On the wire they stay as they were: a hand-sent message without a ``request_id`` is
still accepted, and the published schema does not require one."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from contracts import catalogue, subjects
from contracts.base import (
    COMMANDS,
    EVENTS,
    Command,
    Event,
    Query,
    WorkflowCommand,
    WorkflowEvent,
    WorkflowQuery,
    new_request_id,
)
from contracts.examples import example
from services.verification.app import create_app as verification_app
from tests.support import request, running

ROOT = Path(__file__).parents[2]
_ = catalogue
BY_NAME: dict[str, type[Command]] = {spec.model.__name__: spec.model for spec in COMMANDS.values()}
EVENTS_BY_NAME: dict[str, type[Event]] = {spec.model.__name__: spec.model for spec in EVENTS.values()}


def built_by_workflows(names: dict[str, type] = BY_NAME) -> dict[str, list[ast.Call]]:  # type: ignore[type-arg]
    """Every catalogued command (or event) the workflow code constructs, with its call sites."""
    found: dict[str, list[ast.Call]] = {}
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                found.setdefault(node.func.id, []).append(node)
    return found


WORKFLOW_BUILT = sorted(built_by_workflows())
WORKFLOW_EVENTS = sorted(built_by_workflows(EVENTS_BY_NAME))


def test_the_workflows_build_commands_and_each_is_a_workflow_command():
    assert {"StartVerification", "CloseVerification", "OpenStage", "GetResults"} <= set(WORKFLOW_BUILT)
    wrong = [name for name in WORKFLOW_BUILT if not issubclass(BY_NAME[name], WorkflowCommand)]
    assert wrong == [], f"built by a workflow but may default its request_id: {wrong}"
    reads = [name for name in WORKFLOW_BUILT if issubclass(BY_NAME[name], Query)]
    assert reads and all(issubclass(BY_NAME[n], WorkflowQuery) for n in reads)


def test_every_workflow_call_site_names_the_request_id():
    for name, calls in built_by_workflows().items():
        for call in calls:
            assert "request_id" in {k.arg for k in call.keywords}, f"{name} at line {call.lineno} of a workflow"


def _payload(model: type[BaseModel]) -> dict:
    payload = example(model)
    assert payload is not None and "request_id" in payload
    return payload


@pytest.mark.parametrize("name", WORKFLOW_BUILT)
def test_a_workflow_command_cannot_be_built_without_its_request_id(name):
    model = BY_NAME[name]
    payload = _payload(model)
    built = model(**payload)  # with it: fine
    assert built.request_id == payload["request_id"]
    without = {k: v for k, v in payload.items() if k != "request_id"}
    with pytest.raises(ValidationError) as err:
        model(**without)
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [(("request_id",), "missing")]
    with pytest.raises(ValidationError):
        model.model_validate(without)  # a dict in code is no way around it


@pytest.mark.parametrize("name", WORKFLOW_BUILT)
def test_nothing_in_a_workflow_command_defaults_to_a_fresh_value(name):
    """Every default is the same on every build: no ``uuid4()``, no ``now()``; each timestamp
    the command carries is named by its builder (the workflow: ``workflow.now()``)."""
    model = BY_NAME[name]
    for field_name, field in model.model_fields.items():
        if field.default_factory is not None:
            first, second = field.default_factory(), field.default_factory()  # type: ignore[call-arg]
            assert first == second, f"{name}.{field_name} defaults to a fresh value"
        if field.annotation is dt.datetime or "datetime" in str(field.annotation):
            assert field.is_required() or field.default is None, f"{name}.{field_name} defaults to a time"
    twice = [model(**_payload(model)) for _ in range(2)]
    assert twice[0] == twice[1]


@pytest.mark.parametrize("name", WORKFLOW_BUILT)
def test_on_the_wire_the_request_id_stays_optional(name):
    model = BY_NAME[name]
    assert "request_id" not in model.model_json_schema().get("required", [])
    without = {k: v for k, v in _payload(model).items() if k != "request_id"}
    first, second = (model.model_validate_json(json.dumps(without)) for _ in range(2))
    assert first.request_id and first.request_id != second.request_id  # the receiver's own key
    assert model.model_validate_json(json.dumps({**without, "request_id": "wf-1:step"})).request_id == "wf-1:step"


def test_people_name_a_fresh_key_explicitly():
    first, second = new_request_id(), new_request_id()
    assert first != second and len(first) == 36
    person_made = [spec.model for spec in COMMANDS.values() if spec.model.ACTING is not None]
    assert person_made and not any(issubclass(m, WorkflowCommand) for m in person_made)


async def test_a_hand_sent_workflow_command_without_a_request_id_still_gets_a_domain_answer(nats_url, nc, sqlite_db):
    async with running(verification_app(), nats_url, sqlite_db):
        subject = subjects.command("verification", "close_verification")
        reply = await request(nc, subject, {"cycle_year": 2044, "at": "2044-05-15T16:00:00+07:00"})
        assert reply["error"]["code"] == "verification_not_started", reply


def test_the_lifecycle_events_a_workflow_builds_name_their_id_and_time():
    assert {"CycleStarted", "CycleCancelled", "CycleCompleted", "CycleStageChanged"} <= set(WORKFLOW_EVENTS)
    for name in WORKFLOW_EVENTS:
        model = EVENTS_BY_NAME[name]
        assert issubclass(model, WorkflowEvent), f"{name} is built by a workflow but may default its id or time"
        payload = example(model)
        assert payload is not None
        assert model(**payload).event_id == payload["event_id"]
        for missing in ("event_id", "occurred_at"):
            without = {k: v for k, v in payload.items() if k != missing}
            with pytest.raises(ValidationError) as err:
                model(**without)
            assert [(e["loc"], e["type"]) for e in err.value.errors()] == [((missing,), "missing")]
            # A consumer reads one from the wire as any event, as before.
            assert model.model_validate_json(json.dumps(without))
            assert missing not in model.model_json_schema().get("required", [])
