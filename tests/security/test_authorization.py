"""The trust boundary on a real nats-server with the generated authorization: anonymous clients
are refused, and every identity may publish and subscribe exactly where the permission table says
(checked against the policy written out here, subject by subject of docs/asyncapi.yaml), and the
server refuses it everywhere else."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import nats
import pytest
import yaml

from contracts import catalogue, subjects
from contracts.base import CyclePhase, new_request_id
from contracts.cycle import CycleCancelled
from contracts.registration import GetCall, OpenCall
from services.common import authz
from services.common.authz import Kind
from services.common.messaging import CommandClient
from services.registration.app import create_app as registration_app
from tests.support import HARNESS, connect_as, request, running, stream_messages

ASYNCAPI = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def catalogue_subjects() -> tuple[list[str], list[str]]:
    doc = yaml.safe_load(ASYNCAPI.read_text())
    addresses = [c["address"] for c in doc["channels"].values() if c.get("address")]
    commands = sorted(a for a in addresses if ".cmd." in a)
    events = sorted(a for a in addresses if a.startswith("bfest.evt."))
    return commands, events


COMMANDS, EVENTS = catalogue_subjects()

# The policy, written independently of the table it checks.
SENDERS = {
    Kind.STEP: {"worker"},
    Kind.PERSON: {"portal", "cli"},
    Kind.QUERY: {"worker", "portal", "cli", "auditor"},
    Kind.ADMIN: {"cli"},
}


def may_publish(identity: str, subject: str) -> bool:
    if subject.startswith("bfest.evt."):
        owner = subject.split(".")[2]
        return identity == (authz.WORKER if owner == subjects.CYCLE else owner)
    service = subject.split(".")[1]
    if identity == service and subject.endswith(".cmd.health"):
        return True  # a service asks its own readiness at start
    return identity in SENDERS[authz.command_kind(subject)]


def may_subscribe(identity: str, subject: str, queue: str) -> bool:
    """Core subscriptions: a command only by its service in its queue group; events (live) only
    by the operator and the auditor. Services read events through their durable consumers."""
    if ".cmd." in subject:
        service = subject.split(".")[1]
        return identity == service and queue == service
    return identity in (authz.CLI, authz.AUDITOR) and queue == ""


def test_the_catalogue_and_asyncapi_agree_and_every_command_has_a_kind():
    assert set(COMMANDS) == set(catalogue.COMMANDS) == set(authz.COMMAND_KINDS)
    assert set(EVENTS) == set(catalogue.EVENTS)
    assert len(COMMANDS) >= 40 and len(EVENTS) >= 25


async def test_an_anonymous_connection_is_refused(nats_url):
    with pytest.raises(nats.errors.Error) as refused:
        await nats.connect(nats_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    assert "authorization" in str(refused.value).lower() or isinstance(refused.value, nats.errors.NoServersError)


async def test_a_key_the_server_does_not_know_is_refused(nats_url, tmp_path):
    seed = tmp_path / "stranger.nk"
    seed.write_bytes(authz.new_user_seed())
    with pytest.raises(nats.errors.Error):
        await nats.connect(nats_url, nkeys_seed=str(seed), allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


def _denied(errors: list[str], kind: str) -> set[tuple[str, str]]:
    """(subject, queue) of the server's permission violations of a kind (Publish/Subscription)."""
    out = set()
    for text in errors:
        m = re.search(rf'permissions violation for {kind} to "([^"]+)"(?: using queue "([^"]*)")?', text, re.IGNORECASE)
        if m:
            out.add((m.group(1), m.group(2) or ""))
    return out


async def _connect_recording(url: str, identity: str) -> tuple[nats.aio.client.Client, list[str]]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect_as(url, identity, error_cb=on_error, allow_reconnect=False)
    return nc, errors


async def _settle(nc: nats.aio.client.Client) -> None:
    await nc.flush()
    await asyncio.sleep(0.2)  # the server's -ERR lines follow the PONG closely
    await nc.flush()


@pytest.mark.parametrize("identity", authz.IDENTITIES)
async def test_each_identity_publishes_exactly_where_the_table_says(nats_url, identity):
    nc, errors = await _connect_recording(nats_url, identity)
    try:
        for subject in [*COMMANDS, *EVENTS]:
            await nc.publish(subject, b"{}")
        await _settle(nc)
        denied = {s for s, _ in _denied(errors, "Publish")}
        for subject in [*COMMANDS, *EVENTS]:
            assert (subject not in denied) == may_publish(identity, subject), (identity, subject)
        assert nc.is_connected  # refused, not disconnected
    finally:
        await nc.close()


@pytest.mark.parametrize("identity", authz.IDENTITIES)
async def test_each_identity_subscribes_exactly_where_the_table_says(nats_url, identity):
    nc, errors = await _connect_recording(nats_url, identity)
    tried: list[tuple[str, str]] = []
    try:
        for subject in [*COMMANDS, *EVENTS]:
            queues = ["", subject.split(".")[1]] if ".cmd." in subject else [""]
            for queue in queues:
                await nc.subscribe(subject, queue=queue)
                tried.append((subject, queue))
        await _settle(nc)
        denied = _denied(errors, "Subscription")
        for subject, queue in tried:
            assert ((subject, queue) not in denied) == may_subscribe(identity, subject, queue), (identity, subject, queue)
    finally:
        await nc.close()


async def test_no_identity_reads_another_ones_replies(nats_url):
    nc, errors = await _connect_recording(nats_url, authz.AUDITOR)
    try:
        await nc.subscribe("_INBOX.portal.>")
        await nc.subscribe("_INBOX.>")
        await nc.subscribe(authz.inbox_prefix(authz.AUDITOR) + ".>")
        await _settle(nc)
        assert {s for s, _ in _denied(errors, "Subscription")} == {"_inbox.portal.>", "_inbox.>"}  # nats-py lowercases the error
    finally:
        await nc.close()


async def test_the_auditor_reads_the_stream_and_cannot_touch_a_services_consumer(nats_url, js):
    await js.publish(subjects.event("cycle", "cycle_started", 1), b'{"cycle_year": 2090}')
    nc, errors = await _connect_recording(nats_url, authz.AUDITOR)
    try:
        seen = await stream_messages(nc.jetstream(), subjects.EVENTS_ALL)
        assert [m.subject for m in seen] == ["bfest.evt.cycle.cycle_started.v1"]
        with pytest.raises(nats.errors.Error):
            await nc.jetstream().pull_subscribe(
                subjects.events_of("cycle"), durable="registration--cycle", stream=subjects.STREAM
            )
        with pytest.raises(nats.errors.Error):
            await nc.jetstream().delete_stream(subjects.STREAM)
        await _settle(nc)
        assert _denied(errors, "Publish")
    finally:
        await nc.close()


async def test_a_forged_event_is_refused_by_the_server_and_changes_nothing(nats_url, nc, js, sqlite_db):
    """The attack of issue 21: a cycle_cancelled published straight into the stream closed an open
    call. Now only the worker may publish cycle events; anyone else's is refused."""
    async with running(registration_app(), nats_url, sqlite_db):
        worker = await CommandClient.connect(nats_url, identity=authz.WORKER)
        try:
            opened = await worker.call(
                OpenCall(
                    request_id="o-2091", cycle_year=2091,
                    opens_at="2091-03-01T08:00:00+07:00", closes_at="2091-04-30T12:00:00+07:00",  # type: ignore[arg-type]
                )
            )  # fmt: skip
            assert opened["state"] == "open"
        finally:
            await worker.close()
        forged = CycleCancelled(event_id="forged-cancel", occurred_at="2091-03-02T08:00:00+07:00", cycle_year=2091, reason="forged", phase=CyclePhase.CALL_OPEN)  # type: ignore[arg-type]
        for identity in authz.IDENTITIES:
            if identity == authz.WORKER:
                continue
            client, errors = await _connect_recording(nats_url, identity)
            try:
                with pytest.raises(nats.errors.Error):
                    await client.jetstream().publish(forged.subject(), forged.model_dump_json().encode(), timeout=1)
                await _settle(client)
                assert (forged.subject(), "") in _denied(errors, "Publish"), identity
            finally:
                await client.close()
        assert await stream_messages(js, forged.subject()) == []
        call = await request(nc, GetCall.subject(), {"cycle_year": 2091})
        assert call["data"]["state"] == "open"


def test_the_generated_server_config_names_every_identity_once(tmp_path):
    config = authz.write_server_config(tmp_path).read_text()
    for identity in authz.IDENTITIES:
        assert config.count(f"# {identity}\n") == 1
    assert "no_auth_user" not in config
    seeds = sorted(p.name for p in tmp_path.glob("*.nk"))
    assert seeds == sorted(f"{i}.nk" for i in authz.IDENTITIES)
    assert all((tmp_path / s).stat().st_mode & 0o077 == 0 for s in seeds)  # the owner's alone
    again = authz.write_server_config(tmp_path).read_text()
    assert again == config  # a restart keeps the keys
    rotated = authz.rotate(tmp_path, "portal").read_text()
    assert rotated != config and rotated.count("nkey:") == len(authz.IDENTITIES)


def test_the_harness_identity_is_not_in_the_stacks_table():
    assert HARNESS not in authz.IDENTITIES


async def test_a_client_the_server_refuses_hears_it_at_once_not_after_a_timeout(nats_url):
    portal = await CommandClient.connect(nats_url, identity=authz.PORTAL, timeout=30)
    try:
        started = asyncio.get_running_loop().time()
        reply = await portal.request(
            OpenCall(request_id=new_request_id(), cycle_year=2091, opens_at="2091-03-01T08:00:00+07:00", closes_at="2091-04-30T12:00:00+07:00")  # type: ignore[arg-type]
        )
        assert reply.error is not None and reply.error.code == "forbidden", reply
        assert "bfest.registration.cmd.open_call" in reply.error.message
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await portal.close()


async def test_a_process_without_credentials_is_told_so_in_one_line(nats_url):
    from services.common.messaging import connect_jetstream

    with pytest.raises(RuntimeError, match="refused this client \\(without credentials\\)"):
        await connect_jetstream(nats_url, "bfest-stranger", timeout=4)


def test_the_deployment_runs_with_the_same_authorization():
    """deploy/compose.yaml (checked by reading: CI has no container engine) generates the table's
    authorization, includes it in every NATS node, and gives each process its own identity."""
    root = ASYNCAPI.parents[1] / "deploy"
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    services = compose["services"]
    for name in (*authz.SERVICES, authz.WORKER):
        env = services[name]["environment"]
        assert env["BFEST_NATS_NKEY_SEED_FILE"] == f"/auth/{name}.nk", name
    assert services["nats-auth"]["entrypoint"][-1] == "services.common.authz"
    for node in ("nats-1", "nats-2", "nats-3"):
        assert any(v.startswith("nats-authz:") for v in services[node]["volumes"])
    assert "include ./authz/authorization.conf" in (root / "nats-cluster.conf").read_text()


def test_the_command_line_writes_seeds_and_the_config_and_rotates_one_key(tmp_path):
    config = tmp_path / "authz" / "authorization.conf"
    assert authz.main([str(tmp_path / "seeds"), "--config", str(config)]) == 0
    before = config.read_text()
    assert authz.main([str(tmp_path / "seeds"), "--config", str(config), "--rotate", "auditor"]) == 0
    changed = [line for line in config.read_text().splitlines() if line not in before.splitlines()]
    assert len(changed) == 1 and "nkey:" in changed[0]
