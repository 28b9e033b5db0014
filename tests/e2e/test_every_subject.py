"""What an outside client sees: raw NATS requests, good and malformed, to every command subject
of the catalogue, against the four real services. Every one gets an envelope, never a timeout,
and the services keep serving."""

from __future__ import annotations

import pytest

from contracts import subjects
from contracts.base import COMMANDS
from services.awards.app import create_app as awards_app
from services.common.asyncapi import build_asyncapi
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import request, running

SERVICE_COMMANDS = sorted(s for s, spec in COMMANDS.items() if spec.service in subjects.SERVICES)


@pytest.fixture
async def all_services(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    apps = [registration_app(), verification_app(), scoring_app(), awards_app()]
    async with (
        running(apps[0], nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"),
        running(apps[1], nats_url, f"sqlite+aiosqlite:///{tmp_path}/v.db"),
        running(apps[2], nats_url, f"sqlite+aiosqlite:///{tmp_path}/s.db"),
        running(apps[3], nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"),
    ):
        yield apps


async def test_every_command_subject_answers_bad_input_with_a_specific_error(nc, all_services):
    assert len(SERVICE_COMMANDS) >= 40
    for subject in SERVICE_COMMANDS:
        for body, codes in (
            (b"\xff not json", {"invalid_json"}),
            (b"[]", {"validation_error"}),
            (b"", {"validation_error"}),
            (b'{"a":' * 5000 + b"1" + b"}" * 5000, {"invalid_json"}),  # deeper than any parser recurses
            (b'{"request_id": 12, "cycle_year": "twenty"}', {"validation_error"}),
        ):
            reply = await request(nc, subject, body, timeout=5)
            if subject.endswith(".health"):
                continue
            assert reply["ok"] is False, (subject, body, reply)
            assert reply["error"]["code"] in codes, (subject, body, reply)
            assert reply["error"]["message"]
    for service in subjects.SERVICES:
        health = await request(nc, subjects.command(service, "health"), {})
        assert health["ok"] and health["data"]["service"] == service


async def test_well_formed_commands_about_unknown_things_get_domain_errors(nc, all_services):
    cases = [
        ("registration", "get_participant", {"code": "NOPE"}, "unknown_participant"),
        ("registration", "forward_proposal", {"request_id": "a", "cycle_year": 2026, "agency_code": "X", "proposal_id": "P1"}, "call_not_open"),
        ("verification", "close_verification", {"request_id": "b", "cycle_year": 2026, "at": "2026-05-01T00:00:00+07:00"}, "verification_not_started"),
        ("scoring", "submit_score", {"request_id": "c", "cycle_year": 2026, "stage": "desk", "juror_id": "J1", "proposal_id": "P1", "scores": {"a": 1}}, "unknown_juror"),
        ("awards", "get_results", {"cycle_year": 2026}, "not_determined"),
        ("awards", "validate_awards", {"request_id": "d", "cycle_year": 2026, "rules": [{"key": "k", "rule": "lottery", "name_id": "Undian", "name_en": "Lottery"}]}, "invalid_award_rules"),
    ]
    for service, name, body, code in cases:
        reply = await request(nc, subjects.command(service, name), body)
        assert reply["ok"] is False and reply["error"]["code"] == code, (name, reply)


async def test_every_documented_example_gets_a_domain_answer(nc, all_services):
    """What a client copies from docs/asyncapi.yaml is accepted as a command: the answer is the
    data or a domain refusal (nothing is set up here), never a schema or internal error."""
    doc = build_asyncapi()
    answers = {}
    for channel in doc["channels"].values():
        subject = channel.get("address") or ""
        if subject not in COMMANDS or COMMANDS[subject].service not in subjects.SERVICES:
            continue
        [message] = channel["messages"].values()
        ref = message["$ref"].rsplit("/", 1)[-1]
        [example] = doc["components"]["messages"][ref]["examples"]
        reply = await request(nc, subject, example["payload"], timeout=5)
        answers[subject] = reply["data"] if reply["ok"] else reply["error"]["code"]
    assert set(answers) == set(SERVICE_COMMANDS)
    schema_or_bug = {k: v for k, v in answers.items() if v in ("validation_error", "invalid_json", "internal_error")}
    assert schema_or_bug == {}
    assert answers["bfest.registration.cmd.forward_proposal"] == "call_not_open"
    assert answers["bfest.registration.cmd.import_participants"]["created"] == 2
    assert answers["bfest.verification.cmd.submit_lke"]["final"] == "layak_wbk"
    assert answers["bfest.awards.cmd.verify_certificate"]["valid"] is False
