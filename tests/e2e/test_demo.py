"""`bfest demo --seed 1`, the main job, run as a user runs it (a real process that brings up its
own NATS and Temporal dev server on free ports): it completes and leaves the stack running, where
`bfest cycle status` reads the finished cycle; Ctrl-C stops it all; a second run (`--exit`) with
the same seed gives the same awards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import free_port

BFEST = str(Path(sys.executable).parent / "bfest")


async def run_demo(env: dict[str, str], year: int) -> dict:
    out = await asyncio.to_thread(
        subprocess.run,
        [BFEST, "demo", "--exit", "--seed", "1", "--json", "--minutes", "1.2", "--year", str(year)],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "160"},
        timeout=400,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


async def run_demo_left_running(env: dict[str, str], year: int) -> tuple[dict, dict]:
    """The demo without ``--exit``: its summary, then what ``bfest cycle status`` says of the cycle
    on the stack it leaves running, then Ctrl-C."""
    proc = await asyncio.create_subprocess_exec(
        BFEST, "demo", "--seed", "1", "--json", "--minutes", "1.2", "--year", str(year),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **env, "COLUMNS": "160"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        summary = None
        while summary is None:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=400)
            assert line, "the demo ended before printing its summary"
            if line.startswith(b"{"):
                summary = json.loads(line)
        # the portal is a component of the stack, recorded with its URL
        components = json.loads((Path(env["BFEST_VAR_DIR"]) / "dev" / "stack.json").read_text())["components"]
        portal = next(c for c in components if c["name"] == "portal")
        assert portal["address"] == f"http://127.0.0.1:{env['BFEST_PORTAL_PORT']}"
        status = await asyncio.to_thread(
            subprocess.run,
            [BFEST, "cycle", "status", "--year", str(year), "--json"],
            capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
    return summary, json.loads(status.stdout)


def fresh_stack(var: Path) -> dict[str, str]:
    return {
        "BFEST_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "BFEST_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BFEST_TEMPORAL_UI_URL": f"http://127.0.0.1:{free_port()}",
        "BFEST_VAR_DIR": str(var),
        "BFEST_PORTAL_PORT": str(free_port()),
    }


async def test_the_demo_completes_and_repeats_with_the_same_seed(tmp_path):
    env = fresh_stack(tmp_path / "var")
    first, status = await run_demo_left_running(env, 2061)
    assert status["phase"] == "completed"
    assert {k: len(v) for k, v in status["awards"].items()} == {k: len(v) for k, v in first["awards"].items()}
    assert first["counts"]["forwarded"] > 20 and first["counts"]["certificates"] > 0
    assert first["awards"]["top_inovasi"] and first["awards"]["layak_wbk"]
    assert set(first["stages"]) == {"desk", "interview", "field"}
    second = await run_demo(fresh_stack(tmp_path / "again"), 2061)
    assert second["awards"] == first["awards"]
    assert second["counts"] == first["counts"]
    assert list((tmp_path / "var" / "results" / "2061" / "certificates").glob("*.pdf"))
    # --exit stopped what the demo started: nothing listens on the demo's ports any more.
    import socket

    for key in ("BFEST_NATS_URL", "BFEST_TEMPORAL_ADDRESS"):
        port = int(env[key].rsplit(":", 1)[1])
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
