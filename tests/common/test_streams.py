"""The streams' limits on a real nats-server: age, size and the largest message come from
settings; a stream an operator gave higher limits keeps them; an oversized event is refused."""

from __future__ import annotations

import dataclasses

import pytest
from nats.js.errors import APIError

from contracts import subjects
from services.common.messaging import DLQ_STREAM, EVENTS_STREAM, ensure_streams
from services.common.settings import Settings

MIB = 1024**2
DAY = 86400


def limited(**overrides: float) -> Settings:
    return Settings(**{"events_max_age_days": 30, "events_max_bytes": 64 * MIB, "max_message_bytes": 64 * 1024, **overrides})


async def config(js, name: str = subjects.STREAM):  # type: ignore[no-untyped-def]
    return (await js.stream_info(name)).config


async def test_streams_take_their_limits_from_settings_and_refuse_an_oversized_event(nc):
    js = nc.jetstream()
    await ensure_streams(js, limited())
    events = await config(js)
    assert (events.max_age, events.max_bytes, events.max_msg_size) == (30 * DAY, 64 * MIB, 64 * 1024)
    dlq = await config(js, DLQ_STREAM.name)
    assert (dlq.max_age, dlq.max_bytes, dlq.max_msg_size) == (90 * DAY, 64 * MIB, 64 * 1024)  # the DLQ keeps its own age
    await js.publish("bfest.evt.awards.awards_announced.v1", b"{}" + b" " * 1000)
    with pytest.raises(APIError, match="(?i)message size exceeds"):
        await js.publish("bfest.evt.awards.awards_announced.v1", b" " * (64 * 1024 + 1))


async def test_a_limit_an_operator_raised_is_never_lowered_and_an_old_unlimited_stream_gets_ours(nc):
    js = nc.jetstream()
    # A stream as an earlier version made it: no limits at all.
    await js.add_stream(EVENTS_STREAM)
    await ensure_streams(js, limited())
    assert (await config(js)).max_bytes == 64 * MIB
    # The operator raises the size and age limits by hand (the nats CLI, say).
    raised = dataclasses.replace(await config(js), max_bytes=512 * MIB, max_age=400 * DAY)
    await js.update_stream(raised)
    await ensure_streams(js, limited())  # every service replica's start
    after = await config(js)
    assert (after.max_bytes, after.max_age, after.max_msg_size) == (512 * MIB, 400 * DAY, 64 * 1024)
    # Settings raised above the operator's: ours apply; 0 in a setting means no limit.
    await ensure_streams(js, limited(events_max_bytes=1024 * MIB, events_max_age_days=0))
    after = await config(js)
    assert (after.max_bytes, after.max_age) == (1024 * MIB, 0)


def test_the_defaults_are_deliberate():
    s = Settings()
    assert s.max_message_bytes == MIB  # NATS's own payload default: nothing bigger is ever stored
    assert s.events_max_age_days >= 365 and s.events_max_bytes >= 1024 * MIB
