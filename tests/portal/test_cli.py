"""``bfest portal invite`` and ``bfest portal run`` as an operator runs them: a set-password link
for an imported juror (an unknown one refused in one line), the portal served on its port, and a
production start without the cookie secret refused in one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from services.scoring.app import create_app as scoring_app
from tests.scoring.test_service import JURORS, cmd
from tests.support import eventually, free_port, request, running

BFEST = str(Path(sys.executable).parent / "bfest")


def bfest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BFEST, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60)


async def test_invite_issues_a_one_time_link_for_an_imported_juror(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    env = {"BFEST_VAR_DIR": str(tmp_path), "BFEST_NATS_URL": nats_url, "BFEST_PUBLIC_URL": "https://bfest.jatimprov.go.id"}
    async with running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"):
        assert (await request(nc, cmd("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
        behind = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "juror", "--id", "J2")
        assert behind.returncode == 1 and behind.stderr.strip().splitlines() == [
            "error: the portal database has no schema yet (this code needs revision portal_0002): run `bfest db upgrade --service portal`"
        ]
        assert (await asyncio.to_thread(bfest, env, "db", "upgrade", "--service", "portal")).returncode == 0
        done = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "juror", "--id", "J2")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("juror J2 (Juri 2): https://bfest.jatimprov.go.id/set-password/"), done.stdout
        unknown = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "juror", "--id", "J99")
        assert unknown.returncode == 1 and unknown.stderr.strip().splitlines()[-1].startswith("error: J99 is not in the juror pool")
        assert "Traceback" not in unknown.stderr
    clash = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "unit", "--id", "J2", "--no-check")
    assert clash.returncode == 1 and "already exists as juror J2" in clash.stderr
    wrong = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "boss", "--id", "X", "--no-check")
    assert wrong.returncode == 1 and "unknown role 'boss'" in wrong.stderr


async def test_the_portal_runs_as_its_own_process_and_refuses_production_without_a_secret(nats_url, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "BFEST_VAR_DIR": str(tmp_path), "BFEST_NATS_URL": nats_url, "BFEST_PORTAL_PORT": str(port)}
    refused = await asyncio.to_thread(bfest, env, "portal", "run")  # no schema yet: refused before serving
    assert refused.returncode == 1 and refused.stderr.strip().endswith("run `bfest db upgrade --service portal`") and "Traceback" not in refused.stderr
    assert (await asyncio.to_thread(bfest, env, "db", "upgrade", "--service", "portal")).returncode == 0
    proc = await asyncio.create_subprocess_exec(BFEST, "portal", "run", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

            async def up() -> bool:
                try:
                    return (await c.get("/healthz")).json()["status"] == "ok"
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=30)
            assert (await c.get("/livez")).json() == {"live": True}
            assert (await c.get("/readyz")).json() == {"ready": True, "reasons": []}
            page = await c.get("/verify")
            assert page.status_code == 200 and "Cek keaslian piagam" in page.text
            assert "httponly" in page.headers["set-cookie"].lower()
        assert (tmp_path / "keys" / "portal-secret").stat().st_mode & 0o077 == 0  # the dev secret, owner-only
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    prod = await asyncio.to_thread(bfest, {"BFEST_VAR_DIR": str(tmp_path / "prod"), "BFEST_PROFILE": "production", "BFEST_NATS_URL": nats_url}, "portal", "run")
    assert prod.returncode == 1
    assert prod.stderr.strip() == "error: BFEST_PORTAL_SECRET is required with BFEST_PROFILE=production (it signs the session cookies)"


async def test_invite_issues_links_for_the_tracks_roles(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    """Evaluators and reviewers are named by the secretariat (like verifiers); a work-culture group
    is checked against the registry: a participant of kind kbk, never a unit."""
    from services.registration.app import create_app as registration_app
    from tests.registration import test_service as reg

    env = {"BFEST_VAR_DIR": str(tmp_path), "BFEST_NATS_URL": nats_url, "BFEST_PUBLIC_URL": "https://bfest.jatimprov.go.id"}
    assert (await asyncio.to_thread(bfest, env, "db", "upgrade", "--service", "portal")).returncode == 0
    for role, subject in (("evaluator", "E01"), ("reviewer", "R01")):
        done = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", role, "--id", subject, "--name", f"Nama {subject}")
        assert done.returncode == 0 and done.stdout.startswith(f"{role} {subject} (Nama {subject}): https://bfest.jatimprov.go.id/set-password/"), done.stderr
    both = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "reviewer", "--id", "E01", "--login", "E01-penelaah", "--name", "Nama E01")
    assert both.returncode == 0 and both.stdout.startswith("reviewer E01-penelaah (Nama E01): "), both.stderr  # one person, two roles
    async with running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        group = {"code": "KAB-MALANG-U01-KBK1", "name": "KBK Gugus Melati", "kind": "kbk", "parent_code": "KAB-MALANG-U01"}
        assert (await request(nc, reg.cmd("import_participants"), {"request_id": "imp", "participants": [*reg.AGENCIES, *reg.UNITS, group]}))["ok"]
        done = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "kbk_group", "--id", "KAB-MALANG-U01-KBK1")
        assert done.returncode == 0 and done.stdout.startswith("kbk_group KAB-MALANG-U01-KBK1 (KBK Gugus Melati): "), done.stderr
        unit = await asyncio.to_thread(bfest, env, "portal", "invite", "--role", "kbk_group", "--id", "KAB-MALANG-U02")
        assert unit.returncode == 1 and unit.stderr.strip().splitlines()[-1] == "error: KAB-MALANG-U02 is a upp, not a work-culture group (kbk)"
