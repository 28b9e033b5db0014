"""deploy/ as the code reads it, checked offline: compose.yaml against the Compose specification,
the Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate ships them), and
what the cluster proved — migrations before every process, readiness healthchecks and probes, a
non-root image, pinned images, a lock file covering pyproject's dependencies, secrets as files,
Temporal's server image with its own schema tool (never auto-setup)."""

from __future__ import annotations

import asyncio
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import subjects
from services.common.settings import Settings, nats_servers

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
PROCESSES = (*subjects.SERVICES, "worker", "portal")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def ours(services: dict[str, Any]) -> list[str]:
    """The long-running bfest processes (services, worker, portal)."""
    return [n for n, s in services.items() if s.get("command", [""])[0] in ("service", "worker", "portal")]


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def pinned(image: str) -> bool:
    """``name:version`` (a release number, PostgreSQL's ``16.6`` or ``1.31.2``, never ``latest`` or
    a bare major) or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and re.fullmatch(r"v?\d+\.\d+(\.\d+)?([.-][\w.-]+)?", tag) is not None


# --- compose ---------------------------------------------------------------------------------


def test_compose_follows_the_compose_specification():
    """The Compose specification's JSON schema as check-jsonschema ships it (no network)."""
    builtin = pytest.importorskip("check_jsonschema.builtin_schemas", reason="check-jsonschema (dev extra) is not installed")
    import jsonschema

    schema = builtin.get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(COMPOSE.read_text()))]
    assert errors == []


def test_the_migration_job_runs_before_every_service_on_each_ones_database():
    services = compose()
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert set(PROCESSES) <= set(ours(services))
    for name in ours(services):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    for name in (*subjects.SERVICES, "portal"):
        key = f"BFEST_{name.upper()}_DATABASE_URL"
        assert migrate["environment"][key] == services[name]["environment"][key], key


def test_every_process_is_healthy_only_when_its_readiness_endpoint_says_so():
    services = compose()
    for name in ours(services):
        spec = services[name]
        port = spec["environment"]["BFEST_PORTAL_PORT" if name == "portal" else "BFEST_HTTP_PORT"]
        test = spec["healthcheck"]["test"]
        assert test[0] == "CMD" and f"http://127.0.0.1:{port}/readyz" in " ".join(test), name
        if name != "portal":
            assert spec["environment"]["BFEST_HTTP_HOST"] == "0.0.0.0", name
        assert spec["deploy"]["replicas"] >= 2, name
        # and it waits for the engines to be healthy, not merely started
        for engine in ("nats-1", "nats-2", "nats-3", "postgres", "temporal"):
            assert spec["depends_on"][engine] == {"condition": "service_healthy"}, (name, engine)
    for engine in ("nats-1", "nats-2", "nats-3", "postgres", "temporal"):
        assert services[engine]["healthcheck"]["test"], engine
    assert services["worker"]["depends_on"]["temporal-namespace"] == {"condition": "service_completed_successfully"}


async def test_the_healthcheck_command_follows_a_real_services_readiness(nats_url, nc, tmp_path):
    """The compose healthcheck's own command, run against a real registration service (real NATS,
    its database): healthy while its outbox drains, unhealthy once an event cannot be published
    for longer than BFEST_READY_OUTBOX_MAX_AGE, healthy again when the relay catches up."""
    from services.registration.app import create_app
    from tests.registration.test_service import forward, setup_call, submit
    from tests.support import eventually, sqlite_url, start_with_relay_down

    app = create_app(Settings(ready_outbox_max_age=0.3))
    app.http_port = 0
    await start_with_relay_down(app, nats_url, sqlite_url(tmp_path, "reg"))
    test = compose()["registration"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert app.http is not None
    code = test[3].replace("127.0.0.1:9000", f"127.0.0.1:{app.http.port}")

    async def healthcheck() -> int:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        return await proc.wait()

    try:
        assert await healthcheck() == 0
        await setup_call(nc)
        reply = await submit(nc, "KAB-MALANG-U00", "Inovasi 0")
        assert (await forward(nc, reply["data"]["id"]))["ok"]

        async def unhealthy() -> bool | None:
            return True if await healthcheck() != 0 else None

        assert await eventually(unhealthy)  # events stuck in the outbox: not ready
        assert app.relay is not None
        await app.relay.flush()
        assert await healthcheck() == 0
    finally:
        await app.stop()


def test_every_process_gets_every_nats_node_and_streams_at_three_replicas():
    services = compose()
    nodes = sorted(name for name, spec in services.items() if spec.get("image", "").startswith("nats:"))
    assert len(nodes) == 3
    for name in [*ours(services), "migrate"]:
        env = services[name]["environment"]
        assert nats_servers(env["BFEST_NATS_URL"]) == [f"nats://{n}:4222" for n in nodes], name
        assert env["BFEST_STREAM_REPLICAS"] == "3", name
    for node in nodes:
        assert services[node]["volumes"][0] == "./nats-cluster.conf:/etc/nats/nats.conf:ro"
    assert (DEPLOY / "nats-cluster.conf").exists()


def test_every_compose_image_is_pinned_and_ours_is_built_from_the_lock():
    services = compose()
    for name, spec in services.items():
        assert pinned(re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", spec["image"])), (name, spec["image"])
    for name in [*ours(services), "migrate", "nats-auth"]:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile", name


def test_temporal_runs_the_server_image_after_its_schema_job_never_auto_setup():
    services = compose()
    images = {name: spec["image"] for name, spec in services.items()}
    assert not any("auto-setup" in image for image in images.values())
    temporal, schema = services["temporal"], services["temporal-schema"]
    assert temporal["image"].startswith("temporalio/server:")
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert schema["image"].split(":")[1] == temporal["image"].split(":")[1]  # the tool of the server's version
    assert temporal["depends_on"]["temporal-schema"] == {"condition": "service_completed_successfully"}
    assert temporal["environment"]["DB"] == "postgres12"
    script = (DEPLOY / schema["volumes"][0].split(":")[0]).read_text()
    for step in ("create-database", "setup-schema -v 0.0", "update-schema"):
        assert f"temporal-sql-tool --db \"$db\" {step}" in script
    assert "postgresql/v12" in script and "temporal_visibility:visibility" in script


def test_secrets_reach_the_containers_as_files_never_as_values():
    services = compose()
    declared = yaml.safe_load(COMPOSE.read_text())["secrets"]
    assert all(set(spec) == {"file"} for spec in declared.values())
    for name, spec in services.items():
        for key, value in (spec.get("environment") or {}).items():
            if key.endswith("_FILE"):
                if str(value).startswith("/run/secrets/"):
                    assert str(value).split("/")[3] in spec.get("secrets", []), (name, key)
            elif re.search(r"PASSWORD|SECRET|_KEY$|SEED$|PWD$", key):
                pytest.fail(f"{name}: {key} holds a secret as a value")
            assert "bfest:bfest@" not in str(value), (name, key)
    assert services["awards"]["environment"]["BFEST_CERTIFICATE_KEY_FILE"] == "/run/secrets/certificate_key"
    assert services["portal"]["environment"]["BFEST_PORTAL_SECRET_FILE"] == "/run/secrets/portal_secret"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert services["worker"]["secrets"] == []  # no database, no password


# --- the image and its lock -----------------------------------------------------------------


def test_the_image_runs_as_an_unprivileged_user_on_a_pinned_base_and_installs_from_the_lock():
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert bases and pinned(bases[0]) and "slim" in bases[0]
    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in text
    assert "pip install --no-deps --no-build-isolation ." in text  # the project resolves nothing


def _locked(path: Path) -> dict[str, str]:
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(), re.M))
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins.items()}


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes():
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = DEPLOY / "requirements.lock"
    locked = _locked(lock)
    for line in project["project"]["dependencies"]:
        req = Requirement(line)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in locked, f"{req.name} is not in deploy/requirements.lock: regenerate it (deploy/README.md)"
        assert Version(locked[name]) in req.specifier, f"{req.name}=={locked[name]} does not satisfy {req.specifier}"
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text().strip())
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)
    build = _locked(DEPLOY / "build-requirements.lock")
    assert {"setuptools", "wheel"} <= set(build)
    assert Version(build["setuptools"]) >= Version("69")


# --- Kubernetes -----------------------------------------------------------------------------


def test_the_manifests_follow_the_kubernetes_api_schemas():
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (dev extra) is not installed")
    for doc in manifests():
        kv.validate(doc, "1.32.0", strict=True)  # raises on any unknown or wrong field


def test_every_workload_runs_two_non_root_replicas_with_liveness_and_readiness_probes():
    docs = manifests()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"bfest-{p}" for p in PROCESSES}
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    for name, d in deployments.items():
        assert d["spec"]["replicas"] >= 2, name
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], name
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        assert str(port) == config["BFEST_PORTAL_PORT" if name == "bfest-portal" else "BFEST_HTTP_PORT"], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert c["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]


def test_the_migration_job_runs_db_upgrade_before_install_and_upgrade_with_every_database():
    docs = manifests()
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["db", "upgrade"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    for name in (*subjects.SERVICES, "portal"):
        assert config["data"][f"BFEST_{name.upper()}_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
    assert nats_servers(config["data"]["BFEST_NATS_URL"]) == [f"nats://nats-{i}.nats-headless:4222" for i in range(3)]
    assert config["data"]["BFEST_STREAM_REPLICAS"] == "3"


def test_every_secret_is_a_mounted_file_and_each_process_sees_only_its_own_nats_seed():
    docs = manifests()
    assert not [d for d in docs if d["kind"] == "Secret"]  # made by the operator, never committed
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert not [k for k in config if re.search(r"PASSWORD$|SECRET$|_KEY$|SEED$", k)]
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        secret_volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        for c in pod["containers"]:
            assert not [e for e in c.get("env", []) if "valueFrom" in e], doc["metadata"]["name"]
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            files = {e["value"] for e in c.get("env", []) if e["name"].endswith("_FILE")}
            if doc["metadata"]["name"] != "bfest-worker":  # every process with a database
                files.add(config["BFEST_DATABASE_PASSWORD_FILE"])
            for path in files:
                directory, _, key = path.rpartition("/")
                volume = secret_volumes[mounts[directory]]
                assert [i["key"] for i in volume["items"]] == [key], (doc["metadata"]["name"], path)
        if doc["kind"] == "Deployment":
            identity = doc["metadata"]["name"].removeprefix("bfest-")
            assert [i["key"] for i in secret_volumes["nats-seed"]["items"]] == [f"{identity}.nk"]
    worker = next(d for d in docs if d["metadata"]["name"] == "bfest-worker")
    assert {v["name"] for v in worker["spec"]["template"]["spec"]["volumes"] if "secret" in v} == {"nats-seed"}


def test_the_engines_come_from_their_official_charts_at_pinned_versions():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    charts = {c["name"]: c for c in kustomization["helmCharts"]}
    assert charts["nats"]["repo"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert charts["temporal"]["repo"] == "https://go.temporal.io/helm-charts"
    for chart in charts.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"]), chart["name"]
    assert {i["name"]: i["newTag"] for i in kustomization["images"]} == {"bfest": "0.1.0"}
    nats = yaml.safe_load((K8S / charts["nats"]["valuesFile"]).read_text())
    assert nats["config"]["cluster"] == {"enabled": True, "replicas": 3} and nats["config"]["jetstream"]["enabled"]
    temporal = yaml.safe_load((K8S / charts["temporal"]["valuesFile"]).read_text())
    for store in temporal["server"]["config"]["persistence"]["datastores"].values():
        sql = store["sql"]
        assert sql["pluginName"] == "postgres12" and sql["manageSchema"] and "password" not in sql
        assert sql["existingSecret"] == "bfest-postgres"
    images = [
        f"{v['repository']}:{v['tag']}"
        for values in (nats, temporal)
        for v in _walk(values)
        if isinstance(v, dict) and "repository" in v and "tag" in v
    ]
    assert len(images) >= 6 and all(pinned(i) for i in images), images
    assert not any("auto-setup" in i for i in images)
    for doc in manifests():
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert pinned(c["image"]), c["image"]


def test_compose_and_kubernetes_run_the_same_engine_versions():
    services = compose()
    nats = yaml.safe_load((K8S / "values" / "nats.yaml").read_text())
    temporal = yaml.safe_load((K8S / "values" / "temporal.yaml").read_text())
    k8s = {
        "nats": f"nats:{nats['container']['image']['tag']}",
        "server": f"{temporal['server']['image']['repository']}:{temporal['server']['image']['tag']}",
        "admin-tools": f"{temporal['admintools']['image']['repository']}:{temporal['admintools']['image']['tag']}",
        "ui": f"{temporal['web']['image']['repository']}:{temporal['web']['image']['tag']}",
    }
    assert services["nats-1"]["image"] == k8s["nats"]
    assert services["temporal"]["image"] == k8s["server"]
    assert services["temporal-schema"]["image"] == services["temporal-namespace"]["image"] == k8s["admin-tools"]
    assert services["temporal-ui"]["image"] == k8s["ui"]


def _walk(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found
