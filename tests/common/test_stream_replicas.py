"""Stream replicas on a real 3-node NATS cluster (nats-server from its PyPI package, one
configuration per node from bfest/natscluster.py): BFEST_STREAM_REPLICAS=3 makes the streams with
three copies, and a start with one replica (every service's default) never lowers a stream an
operator raised to three. deploy/nats-cluster.conf is what the same code writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bfest.natscluster import deploy_config, running_cluster
from contracts import subjects
from services.common.messaging import DLQ_STREAM, EVENTS_STREAM, ensure_streams
from services.common.settings import Settings
from tests.support import HARNESS, authorization_config, binary, connect_as, eventually

ROOT = Path(__file__).resolve().parents[2]


async def replicas(js, name: str = subjects.STREAM) -> int:  # type: ignore[no-untyped-def]
    info = await js.stream_info(name)
    return int(info.config.num_replicas)


async def test_a_start_with_one_replica_never_lowers_a_stream_an_operator_raised(tmp_path):
    with running_cluster(tmp_path / "cluster", authorization_config(), binary("nats-server")) as cluster:
        nc = await connect_as(cluster.url.split(",")[0], HARNESS)
        try:
            js = nc.jetstream()

            async def meta_leader() -> bool:
                try:
                    await js.account_info()
                    return True
                except Exception:  # noqa: BLE001 - the cluster is still electing its meta leader
                    return False

            await eventually(meta_leader, timeout=30, interval=0.3)
            # A start with the default (one copy) creates the streams with one copy …
            await ensure_streams(js, Settings())
            assert await replicas(js) == 1
            # … the operator raises them to three (as `bfest dev up --cluster` does) …
            await ensure_streams(js, Settings(stream_replicas=3))
            assert (await replicas(js), await replicas(js, DLQ_STREAM.name)) == (3, 3)
            info = await js.stream_info(EVENTS_STREAM.name)
            assert info.cluster is not None
            peers = {p.name for p in info.cluster.replicas or []} | ({info.cluster.leader} if info.cluster.leader else set())
            assert peers == {"nats-1", "nats-2", "nats-3"}  # a copy on every node
            # … and every service replica's start (one copy, managing or not) leaves them at three.
            await ensure_streams(js, Settings(), manage=True)
            await ensure_streams(js, Settings(), manage=False)
            assert (await replicas(js), await replicas(js, DLQ_STREAM.name)) == (3, 3)
            # An operator's higher count by hand is kept by a start that asks for less.
            await js.update_stream(dataclasses.replace((await js.stream_info(DLQ_STREAM.name)).config, num_replicas=1))
            await ensure_streams(js, Settings(stream_replicas=3))
            assert await replicas(js, DLQ_STREAM.name) == 3  # ours raise a lower one
        finally:
            await nc.close()


def test_the_deploy_cluster_config_is_the_one_the_code_writes():
    assert (ROOT / "deploy" / "nats-cluster.conf").read_text() == deploy_config()
