"""The dev stack and NATS servers it did not start: one on the default address is left alone (the
stack starts its own on a free port and says so); one named on purpose is reused, recorded in
``var/dev/stack.json``, and what the stack added to it is removed when the stack stops."""

from __future__ import annotations

import asyncio
import json

from bfest.devstack import DevStack, StackInfo, _listening
from services.common.messaging import ensure_streams
from services.common.settings import Settings
from tests.support import HARNESS, connect_as, nats_server_process


async def inventory(url: str) -> dict[str, list[str]]:
    nc = await connect_as(url, HARNESS)
    try:
        js = nc.jetstream()
        return {s.config.name: sorted(c.name for c in await js.consumers_info(s.config.name)) for s in await js.streams_info()}
    finally:
        await nc.close()


def test_a_nats_on_the_default_address_is_left_alone(tmp_path):
    said: list[str] = []
    with nats_server_process() as theirs:
        # The address is the default one (nobody named it): someone else's server answers there.
        settings = Settings.model_construct(_fields_set={"var_dir"}, nats_url=theirs, var_dir=tmp_path)
        stack = DevStack(settings, say=said.append)
        info = stack.info = StackInfo(settings.nats_url, settings.temporal_address, settings.temporal_ui_url)
        try:
            stack._start_nats(info)
            assert info.nats_url != theirs
            assert [(c.name, c.state) for c in info.components] == [("nats", "started")]
            assert any(theirs.removeprefix("nats://") in line and info.nats_url in line for line in said), said
            state = json.loads(stack.state_file.read_text())
            assert state["nats_url"] == info.nats_url and state["components"][0]["state"] == "started"
        finally:
            stack.stop()
        port = int(info.nats_url.rsplit(":", 1)[1])
        assert not _listening("127.0.0.1", port) and not stack.state_file.exists()


async def test_a_named_nats_is_reused_and_what_the_stack_added_is_removed(tmp_path):
    with nats_server_process() as theirs:
        nc = await connect_as(theirs, HARNESS)
        js = nc.jetstream()
        await js.add_stream(name="THEIRS", subjects=["theirs.>"])
        await js.add_consumer("THEIRS", durable_name="their-reader")
        settings = Settings(nats_url=theirs, var_dir=tmp_path)
        stack = DevStack(settings, say=lambda text: None)
        info = stack.info = StackInfo(settings.nats_url, settings.temporal_address, settings.temporal_ui_url)
        await asyncio.to_thread(stack._start_nats, info)
        stack._save()
        assert [(c.name, c.state) for c in info.components] == [("nats", "reused")]
        state = json.loads(stack.state_file.read_text())
        assert state["components"][0]["state"] == "reused" and state["nats_before"] == {}
        # What the services do on it: the BFEST streams and a durable consumer.
        await ensure_streams(js)
        await js.add_consumer("BFEST_EVENTS", durable_name="scoring--registration")
        await nc.close()
        assert set(await inventory(theirs)) == {"THEIRS", "BFEST_EVENTS", "BFEST_DLQ"}
        await asyncio.to_thread(stack.stop)
        assert await inventory(theirs) == {"THEIRS": ["their-reader"]}
        assert not stack.state_file.exists()
