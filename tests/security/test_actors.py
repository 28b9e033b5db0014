"""Verified actors over a real nats-server with the generated authorization: a person's command
carries the acting person (header ``Bfest-Actor``, which only the portal and the operator may
send), the payload must name that person, and a service refuses an actor who may not do the act,
each with its own code, changing nothing."""

from __future__ import annotations

import asyncio
import json

import pytest

from contracts import catalogue, subjects
from contracts.base import ACTOR_HEADER, COMMANDS, Actor, Role
from contracts.examples import example
from services.common import authz
from services.common.actors import check_actor
from services.common.errors import DomainError
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.registration.test_service import YEAR as REG_YEAR
from tests.registration.test_service import content, forward, setup_call, submit
from tests.scoring.test_service import JURORS, feed, open_body
from tests.scoring.test_service import YEAR as SCORING_YEAR
from tests.support import connect_as, eventually, request, running, stream_messages
from tests.verification.test_verification import YEAR as VER_YEAR
from tests.verification.test_verification import publish_forwarded, snapshot, start_body


def reg(name: str) -> str:
    return subjects.command("registration", name)


def unit(code: str) -> dict[str, str]:
    return {"id": code, "role": "unit"}


def agency(code: str) -> dict[str, str]:
    return {"id": code, "role": "agency"}


async def test_a_unit_and_an_agency_admin_act_only_for_themselves(nats_url, nc, js, sqlite_db):
    async with running(registration_app(), nats_url, sqlite_db):
        await setup_call(nc)
        mine = await submit(nc, "KAB-MALANG-U01", "Antrian Online Puskesmas")
        pid = mine["data"]["id"]

        body = {"request_id": "s-other", "cycle_year": REG_YEAR, "unit_code": "KAB-MALANG-U01", "content": content("Atas Nama Unit Lain")}
        as_other = await request(nc, reg("submit_proposal"), body, actor=unit("KAB-MALANG-U02"))
        assert as_other["error"]["code"] == "not_your_unit", as_other
        anonymous = await request(nc, reg("submit_proposal"), body, actor=None)
        assert anonymous["error"]["code"] == "actor_required"
        garbled = await nc.request(reg("submit_proposal"), json.dumps(body).encode(), headers={ACTOR_HEADER: '{"id": "X"}'}, timeout=5)
        assert json.loads(garbled.data)["error"]["code"] == "invalid_actor"
        as_juror = await request(nc, reg("submit_proposal"), body, actor={"id": "KAB-MALANG-U01", "role": "juror"})
        assert as_juror["error"]["code"] == "not_your_unit"

        # An agency admin forwarding another agency's proposal: as that agency, or as itself.
        fwd = {"request_id": "f-x", "cycle_year": REG_YEAR, "agency_code": "KAB-MALANG", "proposal_id": pid}
        assert (await request(nc, reg("forward_proposal"), fwd, actor=agency("OPD-DINKES")))["error"]["code"] == "not_your_agency"
        own_name = {**fwd, "request_id": "f-y", "agency_code": "OPD-DINKES"}
        assert (await request(nc, reg("forward_proposal"), own_name, actor=agency("OPD-DINKES")))["error"]["code"] == "unit_not_under_agency"
        assert (await request(nc, reg("forward_proposal"), fwd, actor=unit("KAB-MALANG")))["error"]["code"] == "not_your_agency"
        ret = {"request_id": "r-x", "cycle_year": REG_YEAR, "agency_code": "KAB-MALANG", "proposal_id": pid, "reason": "bukan urusan saya"}
        assert (await request(nc, reg("return_proposal"), ret, actor=agency("OPD-DINKES")))["error"]["code"] == "not_your_agency"
        wd = {"request_id": "w-x", "cycle_year": REG_YEAR, "unit_code": "KAB-MALANG-U01", "proposal_id": pid}
        assert (await request(nc, reg("withdraw_proposal"), wd, actor=unit("KAB-MALANG-U02")))["error"]["code"] == "not_your_unit"

        # Nothing changed: one proposal, still submitted, no event but its submission.
        page = await request(nc, reg("list_proposals"), {"cycle_year": REG_YEAR})
        assert [(p["id"], p["status"]) for p in page["data"]["items"]] == [(pid, "submitted")]
        async def proposal_events() -> list[str]:
            return [m.subject for m in await stream_messages(js, "bfest.evt.registration.>") if ".proposal_" in m.subject]

        assert await eventually(proposal_events) == ["bfest.evt.registration.proposal_submitted.v1"]
        # The agency itself forwards, and the forward records it.
        done = await forward(nc, pid, agency="KAB-MALANG", rid="f-own")
        assert done["ok"] and done["data"]["status"] == "forwarded"
        # A proposal names its contact person: read for a juror or the public, it is refused.
        for role, ok in (("juror", False), ("public", False), ("agency", True), ("secretariat", True)):
            seen = await request(nc, reg("get_proposal"), {"proposal_id": pid}, actor={"id": "x", "role": role})
            assert seen["ok"] is ok and (ok or seen["error"]["code"] == "not_allowed_to_read"), (role, seen)
        listed = await request(nc, reg("list_proposals"), {"cycle_year": REG_YEAR}, actor={"id": "x", "role": "juror"})
        assert listed["error"]["code"] == "not_allowed_to_read"


async def test_a_non_verifier_may_not_override_and_nothing_changes(nats_url, nc, js, sqlite_db):
    async with running(verification_app(), nats_url, sqlite_db):
        snaps = [snapshot("P1", "Posyandu Digital"), snapshot("P2", "Terlalu Muda", started_on="2032-01-01")]
        for s in snaps:
            await publish_forwarded(js, s, event_id=f"fwd-{s['id']}")
        body = start_body([s["id"] for s in snaps])
        body["rules"]["verifiers"] = ["V1", "V2"]

        async def started():  # type: ignore[no-untyped-def]
            r = await request(nc, subjects.command("verification", "start_verification"), body)
            return r if r["ok"] else None

        await eventually(started)
        before = await request(nc, subjects.command("verification", "get_decision"), {"cycle_year": VER_YEAR, "proposal_id": "P2"})
        assert before["data"]["final"] == "disqualified"
        override = {"request_id": "ov", "cycle_year": VER_YEAR, "proposal_id": "P2", "decision": "eligible", "reason": "looks fine to me", "verifier_id": "NOT-A-VERIFIER", "at": "2032-05-01T09:00:00+07:00"}
        subject = subjects.command("verification", "override_decision")
        outsider = await request(nc, subject, override, actor={"id": "NOT-A-VERIFIER", "role": "verifier"})
        assert outsider["error"]["code"] == "not_a_verifier", outsider
        a_juror = await request(nc, subject, {**override, "verifier_id": "J1"}, actor={"id": "J1", "role": "juror"})
        assert a_juror["error"]["code"] == "not_a_verifier"
        for_another = await request(nc, subject, {**override, "verifier_id": "V1"}, actor={"id": "V2", "role": "verifier"})
        assert for_another["error"]["code"] == "actor_mismatch"
        after = await request(nc, subject.replace("override_decision", "get_decision"), {"cycle_year": VER_YEAR, "proposal_id": "P2"})
        assert after["data"] == before["data"]
        assert await stream_messages(js, "bfest.evt.verification.decision_overridden.v1") == []
        listed = await request(nc, subject, {**override, "request_id": "ov-2", "verifier_id": "V1"}, actor={"id": "V1", "role": "verifier"})
        assert listed["ok"] and listed["data"]["final"] == "eligible"
        [event] = await stream_messages(js, "bfest.evt.verification.decision_overridden.v1")
        assert json.loads(event.data)["verifier_id"] == "V1"  # the actor is stored with the decision


async def test_a_juror_scores_only_as_themselves_and_only_what_is_theirs(nats_url, nc, js, sqlite_db):
    async with running(scoring_app(), nats_url, sqlite_db):
        sc = lambda name: subjects.command("scoring", name)  # noqa: E731
        assert (await request(nc, sc("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
        await feed(js)

        async def opened():  # type: ignore[no-untyped-def]
            r = await request(nc, sc("open_stage"), {**open_body(), "request_id": "open-2"})
            return r if r["ok"] else None

        await eventually(opened)
        status = (await request(nc, sc("stage_status"), {"cycle_year": SCORING_YEAR, "stage": "desk", "per_juror": True}))["data"]
        plan = {j["juror_id"]: j["missing"] for j in status["per_juror"]}
        owner = next(j for j in plan if plan[j])
        pid = plan[owner][0]
        other = next(j for j in plan if pid not in plan[j])
        score = {"request_id": "s", "cycle_year": SCORING_YEAR, "stage": "desk", "juror_id": owner, "proposal_id": pid, "scores": {"mutu": 7, "dampak": 7}}
        as_other = await request(nc, sc("submit_score"), score, actor={"id": other, "role": "juror"})
        assert as_other["error"]["code"] == "actor_mismatch", as_other  # a juror acting for another juror
        not_theirs = await request(nc, sc("submit_score"), {**score, "request_id": "s-other", "juror_id": other}, actor={"id": other, "role": "juror"})
        assert not_theirs["error"]["code"] == "not_assigned"
        a_unit = await request(nc, sc("submit_score"), score, actor={"id": owner, "role": "unit"})
        assert a_unit["error"]["code"] == "not_a_juror"
        after = (await request(nc, sc("stage_status"), {"cycle_year": SCORING_YEAR, "stage": "desk"}))["data"]
        assert after["scored"] == 0
        assert await stream_messages(js, "bfest.evt.scoring.score_submitted.v1") == []
        # Who may see the jurors' loads and assignments: the secretariat and the operator.
        for role, code in (("juror", "not_allowed_to_read"), ("public", "not_allowed_to_read"), ("secretariat", None)):
            seen = await request(nc, sc("stage_status"), {"cycle_year": SCORING_YEAR, "stage": "desk", "per_juror": True}, actor={"id": "x", "role": role})
            assert (seen["error"]["code"] if not seen["ok"] else None) == code
            pool = await request(nc, sc("list_jurors"), {}, actor={"id": "x", "role": role})
            assert (pool["error"]["code"] if not pool["ok"] else None) == code
        ok = await request(nc, sc("submit_score"), score, actor={"id": owner, "role": "juror"})
        assert ok["ok"], ok


async def test_only_the_portal_and_the_operator_may_send_a_persons_command(nats_url):
    """The server's permissions are what make the header trustworthy: any other identity's
    person command is refused before it reaches a service."""
    for identity in authz.IDENTITIES:
        errors: list[str] = []

        async def on_error(exc: Exception, errors: list[str] = errors) -> None:
            errors.append(str(exc))

        client = await connect_as(nats_url, identity, error_cb=on_error)
        try:
            await client.publish(reg("forward_proposal"), b"{}", headers={ACTOR_HEADER: json.dumps(agency("KAB-MALANG"))})
            await client.flush()
            await asyncio.sleep(0.2)  # the server's -ERR follows the PONG closely
            await client.flush()
            refused = any("forward_proposal" in e for e in errors)
            assert refused == (identity not in authz.ACTOR_SENDERS), identity
        finally:
            await client.close()




_ = catalogue
PERSON_COMMANDS = sorted(s for s, spec in COMMANDS.items() if spec.model.ACTING is not None)


def test_the_person_commands_are_exactly_the_ones_only_the_portal_and_operator_send():
    assert set(PERSON_COMMANDS) == set(authz.commands(authz.Kind.PERSON))


@pytest.mark.parametrize("subject", PERSON_COMMANDS)
def test_every_persons_command_refuses_a_missing_wrong_or_other_actor(subject):
    model = COMMANDS[subject].model
    rule = model.ACTING
    assert rule is not None
    cmd = model.model_validate(example(model))
    named = getattr(cmd, rule.field) if rule.field else "anyone"
    with pytest.raises(DomainError) as missing:
        check_actor(cmd, None)
    assert missing.value.code == "actor_required"
    check_actor(cmd, Actor(id=named, role=rule.roles[0]))  # the person the payload names
    outsiders = [r for r in Role if r not in rule.roles]
    for role in outsiders:
        with pytest.raises(DomainError) as wrong_role:
            check_actor(cmd, Actor(id=named, role=role))
        assert wrong_role.value.code == rule.role_refusal
    if rule.field:
        with pytest.raises(DomainError) as other:
            check_actor(cmd, Actor(id=named + "-OTHER", role=rule.roles[0]))
        assert other.value.code == rule.mismatch_refusal
        assert other.value.details["payload"] == named
