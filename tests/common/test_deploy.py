"""deploy/compose.yaml as the code reads it: the migration job runs `bfest db upgrade` on every
service's database before any service or worker starts, and BFEST_NATS_URL lists every node."""

from __future__ import annotations

from pathlib import Path

import yaml

from contracts import subjects
from services.common.settings import nats_servers

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"


def test_the_migration_job_runs_before_every_service_on_each_ones_database():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    ours = [name for name, spec in services.items() if "command" in spec and spec["command"][0] in ("service", "worker")]
    assert set(subjects.SERVICES) | {"worker"} <= set(ours)
    for name in ours:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    for name in subjects.SERVICES:
        key = f"BFEST_{name.upper()}_DATABASE_URL"
        assert migrate["environment"][key] == services[name]["environment"][key], key


def test_every_process_gets_every_nats_node():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    nodes = sorted(name for name, spec in services.items() if spec.get("image", "").startswith("nats:"))
    assert nats_servers(services["registration"]["environment"]["BFEST_NATS_URL"]) == [f"nats://{n}:4222" for n in nodes]
