"""The service runtime against a real nats-server: envelope replies for every kind of bad input,
idempotent commands, the transactional outbox across a crash, the inbox, and the DLQ."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from nats.js.errors import NoStreamResponseError
from sqlmodel import Field

from contracts import subjects
from contracts.awards import AwardsAnnounced, ValidateAwards
from contracts.registration import CallOpened
from services.common.db import make_base
from services.common.errors import DomainError
from services.common.messaging import ensure_streams
from services.common.runtime import ServiceApp, UnitOfWork
from tests.support import eventually, request, running, start_with_relay_down, stream_messages

Base = make_base("toy")


class Counter(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "toy_counter"
    name: str = Field(primary_key=True)
    value: int = 0


async def bump(uow: UnitOfWork, name: str) -> int:
    row = await uow.session.get(Counter, name)
    if row is None:
        row = Counter(name=name, value=0)
        uow.session.add(row)
    row.value += 1
    await uow.session.flush()
    return row.value


async def count_and_announce(uow: UnitOfWork, year: int) -> int:
    """Count a handled ValidateAwards and emit an event numbered by the count."""
    calls = await bump(uow, "validate")
    uow.emit(
        AwardsAnnounced(
            cycle_year=year,
            announcement_no=f"{calls}",
            ceremony={"date": "2026-11-20T19:00:00+07:00", "venue": "Kota Batu"},
            winners=0,
        )
    )
    return calls


def toy_app() -> ServiceApp:
    app = ServiceApp("awards", Base.metadata, migrations=False)  # a toy schema, created at start

    @app.command(ValidateAwards)
    async def validate(cmd: ValidateAwards, uow: UnitOfWork) -> dict:
        if cmd.rules[0].rule == "explode":
            raise RuntimeError("unexpected")
        if cmd.rules[0].rule == "refuse":
            raise DomainError("invalid_award_rules", "rule 'refuse' is not known", {"rule": "refuse"})
        return {"calls": await count_and_announce(uow, cmd.cycle_year)}

    @app.on_event(CallOpened)
    async def on_call_opened(evt: CallOpened, uow: UnitOfWork) -> None:
        if evt.quota_per_agency == 99:
            raise DomainError("poison", "quota 99 is poison for this test")
        await bump(uow, "call_opened")

    return app


def validate_body(rule: str = "top_n", request_id: str = "r-1") -> dict:
    return {
        "request_id": request_id,
        "cycle_year": 2026,
        "rules": [{"key": "top", "rule": rule, "name_id": "Terpuji", "name_en": "Commendable"}],
    }


SUBJECT = ValidateAwards.subject()


async def counter(app: ServiceApp, name: str) -> int:
    assert app.db is not None
    async with app.db.session() as s:
        row = await s.get(Counter, name)
        return row.value if row else 0


async def test_bad_input_gets_a_specific_envelope_and_the_service_keeps_running(nats_url, nc, sqlite_db):
    async with running(toy_app(), nats_url, sqlite_db):
        bad = await request(nc, SUBJECT, b"{not json")
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_json"

        empty = await request(nc, SUBJECT, b"")
        assert empty["error"]["code"] == "validation_error"

        not_object = await request(nc, SUBJECT, b"[1, 2]")
        assert not_object["error"]["code"] == "validation_error"

        wrong_type = validate_body() | {"cycle_year": "2026"}
        reply = await request(nc, SUBJECT, wrong_type)
        assert reply["error"]["code"] == "validation_error"
        assert any(d["field"] == "cycle_year" for d in reply["error"]["details"])

        extra = validate_body() | {"surprise": 1}
        reply = await request(nc, SUBJECT, extra)
        assert reply["error"]["code"] == "validation_error"
        assert reply["error"]["details"][0]["field"] == "surprise"

        reply = await request(nc, SUBJECT, validate_body("refuse", "r-refuse"))
        assert reply == {
            "ok": False,
            "data": None,
            "error": {"code": "invalid_award_rules", "message": "rule 'refuse' is not known", "details": {"rule": "refuse"}},
        }

        reply = await request(nc, SUBJECT, validate_body("explode", "r-explode"))
        assert reply["error"]["code"] == "internal_error"

        health = await request(nc, subjects.command("awards", "health"), {})
        assert health["ok"] is True and health["data"]["database"] == "ok"
        reply = await request(nc, SUBJECT, validate_body())
        assert reply == {"ok": True, "data": {"calls": 1}, "error": None}


async def test_a_retried_request_id_returns_the_first_reply_and_changes_nothing(nats_url, nc, database_url):
    app = toy_app()
    async with running(app, nats_url, database_url):
        first = await request(nc, SUBJECT, validate_body(request_id="same"))
        again = await request(nc, SUBJECT, validate_body(request_id="same"))
        assert first == again == {"ok": True, "data": {"calls": 1}, "error": None}
        assert await counter(app, "validate") == 1

        other = await request(nc, SUBJECT, validate_body(request_id="other"))
        assert other["data"] == {"calls": 2}

        reused = validate_body(request_id="same")
        reused["rules"][0]["key"] = "different"
        conflict = await request(nc, SUBJECT, reused)
        assert conflict["error"]["code"] == "conflict"
        assert await counter(app, "validate") == 2


async def test_outbox_survives_a_crash_between_commit_and_publish_and_publishes_once(nats_url, nc, js, database_url):
    app = toy_app()
    # The crash: the relay is gone before it could publish what the command committed.
    await start_with_relay_down(app, nats_url, database_url)
    assert app.relay is not None
    for i in range(3):
        assert (await app.dispatch(ValidateAwards.model_validate(validate_body(request_id=f"c-{i}")))).ok
    assert await app.relay.pending() == 3
    assert await stream_messages(js, AwardsAnnounced.subject()) == []
    # A relay that published one row but died before marking it: JetStream de-duplicates.
    assert app.db is not None
    async with app.db.session() as s:
        row = (await s.execute(sa.select(app.db.outbox).order_by(app.db.outbox.c.seq).limit(1))).one()
    await js.publish(row.subject, row.payload.encode(), headers={"Nats-Msg-Id": row.event_id})
    await app.stop()

    restarted = toy_app()
    async with running(restarted, nats_url, database_url):
        assert restarted.relay is not None
        await eventually(lambda: restarted.relay.pending() if False else _zero(restarted))
    msgs = await stream_messages(js, AwardsAnnounced.subject())
    numbers = sorted(json.loads(m.data)["announcement_no"] for m in msgs)
    assert numbers == ["1", "2", "3"]
    assert all(m.headers and m.headers.get("Nats-Msg-Id") == json.loads(m.data)["event_id"] for m in msgs)


async def test_a_relay_that_jetstream_does_not_answer_keeps_its_rows_and_publishes_them_once_it_does(nats_url, nc, js, sqlite_db):
    app = toy_app()
    await start_with_relay_down(app, nats_url, sqlite_db)
    assert app.relay is not None
    try:
        for i in range(2):
            assert (await app.dispatch(ValidateAwards.model_validate(validate_body(request_id=f"j-{i}")))).ok
        await js.delete_stream(subjects.STREAM)
        with pytest.raises(NoStreamResponseError):
            await app.relay.flush()
        assert await app.relay.pending() == 2
        assert app.relay.js.publish_async_pending() == 0  # nothing left waiting for an ack
        await ensure_streams(js)
        assert await app.relay.flush() == 2
        assert await app.relay.pending() == 0
        assert len(await stream_messages(js, AwardsAnnounced.subject())) == 2
    finally:
        await ensure_streams(js)
        await app.stop()


async def _zero(app: ServiceApp) -> bool:
    assert app.relay is not None
    return await app.relay.pending() == 0


def call_opened(quota: int = 3, event_id: str | None = None) -> bytes:
    evt = CallOpened(
        cycle_year=2026,
        opens_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        closes_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
        quota_per_agency=quota,
        **({"event_id": event_id} if event_id else {}),
    )
    return evt.model_dump_json().encode()


async def test_inbox_drops_duplicates_and_poison_goes_to_the_dlq_then_the_next_event_is_processed(
    nats_url, nc, js, sqlite_db
):
    app = toy_app()
    async with running(app, nats_url, sqlite_db):
        subject = CallOpened.subject()
        same = call_opened(event_id="evt-1")
        # Two deliveries of one event (different Nats-Msg-Id, so JetStream keeps both).
        await js.publish(subject, same, headers={"Nats-Msg-Id": "a"})
        await js.publish(subject, same, headers={"Nats-Msg-Id": "b"})
        await js.publish(subject, b"{this is not json", headers={"Nats-Msg-Id": "c"})
        await js.publish(subject, json.dumps({"cycle_year": "x"}).encode(), headers={"Nats-Msg-Id": "d"})
        await js.publish(subject, call_opened(quota=99), headers={"Nats-Msg-Id": "e"})
        await js.publish(subject, call_opened(event_id="evt-2"), headers={"Nats-Msg-Id": "f"})

        await eventually(lambda: _counter_is(app, "call_opened", 2))
        dead = await eventually(lambda: _dlq(js, 3))
        reasons = [json.loads(m.data)["reason"] for m in dead]
        assert reasons == ["invalid_json", "validation_error", "poison"]
        assert all(json.loads(m.data)["subject"] == subject for m in dead)
    assert await counter(app, "call_opened") == 2 if app.db else True


async def _counter_is(app: ServiceApp, name: str, value: int) -> bool:
    return await counter(app, name) == value


async def _dlq(js, n: int):  # type: ignore[no-untyped-def]
    msgs = await stream_messages(js, subjects.dlq("awards"))
    return msgs if len(msgs) >= n else None


@pytest.mark.parametrize("body", [b"null", b"42", b'"text"'])
async def test_non_object_bodies_are_refused(nats_url, nc, sqlite_db, body):
    async with running(toy_app(), nats_url, sqlite_db):
        reply = await request(nc, SUBJECT, body)
        assert reply["ok"] is False and reply["error"]["code"] in {"validation_error", "invalid_json"}


def batch_app() -> ServiceApp:
    """The toy service with ValidateAwards group-committed: 'refuse' is refused in its place,
    'explode' breaks the whole batch call (a bug), everything else bumps a counter and emits."""
    app = ServiceApp("awards", Base.metadata, migrations=False)  # a toy schema, created at start

    @app.command_batch(ValidateAwards)
    async def validate(cmds: list[ValidateAwards], uow: UnitOfWork) -> list[object]:
        if any(c.rules[0].rule == "explode" for c in cmds):
            raise RuntimeError("unexpected")
        out: list[object] = []
        for c in cmds:
            if c.rules[0].rule == "refuse":
                out.append(DomainError("invalid_award_rules", "rule 'refuse' is not known", {"rule": "refuse"}))
                continue
            out.append({"calls": await count_and_announce(uow, c.cycle_year), "request_id": c.request_id})
        return out

    return app


async def test_a_group_committed_burst_answers_each_request_as_if_alone(nats_url, nc, js, database_url):
    app = batch_app()
    async with running(app, nats_url, database_url):
        sizes: list[int] = []
        handle = app.batches.handle

        async def spy(model, fn, batch):  # type: ignore[no-untyped-def]
            sizes.append(len(batch))
            return await handle(model, fn, batch)

        app.batches.handle = spy  # type: ignore[method-assign]
        bodies = [validate_body(request_id=f"b-{i}") for i in range(40)]
        bodies += [validate_body("refuse", "b-refused"), validate_body(request_id="b-7")]  # a refusal; a retry of b-7
        conflicting = validate_body(request_id="b-8")
        conflicting["rules"][0]["key"] = "other"
        bodies.append(conflicting)  # b-8 again with another payload
        bodies.append(validate_body("explode", "b-explode"))  # a bug in the middle of the burst
        replies = await asyncio.gather(*(request(nc, SUBJECT, b) for b in bodies))
        by_id = {b["request_id"]: r for b, r in zip(bodies, replies, strict=True) if b is not conflicting}

        assert max(sizes) > 1, "the burst was group-committed"
        accepted = [by_id[f"b-{i}"] for i in range(40)]
        assert all(r["ok"] for r in accepted)
        assert sorted(r["data"]["calls"] for r in accepted) == list(range(1, 41))  # each counted once
        assert replies[41] == by_id["b-7"]  # the retry answers as the first
        assert replies[42]["error"]["code"] == "conflict"
        assert by_id["b-refused"]["error"] == {
            "code": "invalid_award_rules",
            "message": "rule 'refuse' is not known",
            "details": {"rule": "refuse"},
        }
        assert by_id["b-explode"]["error"]["code"] == "internal_error"
        assert await counter(app, "validate") == 40
        msgs = await eventually(lambda: _n_messages(js, AwardsAnnounced.subject(), 40))
        assert sorted(int(json.loads(m.data)["announcement_no"]) for m in msgs) == list(range(1, 41))

        # Later retries answer from what was stored, refusals included; nothing changes.
        assert await request(nc, SUBJECT, validate_body(request_id="b-3")) == by_id["b-3"]
        assert await request(nc, SUBJECT, validate_body("refuse", "b-refused")) == by_id["b-refused"]
        assert await counter(app, "validate") == 40


async def _n_messages(js, subject: str, n: int):  # type: ignore[no-untyped-def]
    msgs = await stream_messages(js, subject)
    return msgs if len(msgs) >= n else None
