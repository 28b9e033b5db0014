"""`bfest demo --seed 1`, the main job, run as a user runs it (real processes that bring up their own
NATS and Temporal dev server on free ports):

- the README's first-hour block, run line by line as written (``make demo`` is the demo left
  running, ``Y`` the year it printed): reading the demo's cycle, checking the next cycle's config,
  steering a practice cycle, and ``bfest dev down`` stopping the demo's stack;
- the same seed in another year gives the same awards, on a stack from ``bfest dev up`` that reuses
  a NATS server of someone else's: ``bfest demo --exit`` leaves that stack running (and its
  ``var/dev/stack.json``), ``bfest dev down`` stops it, and nothing the stack added stays on that
  NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import HARNESS, connect_as, eventually, free_port, nats_server_process

ROOT = Path(__file__).resolve().parents[2]
BFEST = str(Path(sys.executable).parent / "bfest")
DEMO = ["--seed", "1", "--json", "--minutes", "1.2"]


def fresh_stack(var: Path) -> dict[str, str]:
    return {
        "BFEST_NATS_URL": f"nats://127.0.0.1:{free_port()}",
        "BFEST_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "BFEST_TEMPORAL_UI_URL": f"http://127.0.0.1:{free_port()}",
        "BFEST_VAR_DIR": str(var),
        "BFEST_PORTAL_PORT": str(free_port()),
    }


def listening(address: str) -> bool:
    port = int(address.rsplit(":", 1)[1])
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def first_hour_block() -> list[str]:
    """The README's first-hour commands, in order, as written."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- first-hour", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


async def sh(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, f"{line}\n{out.stdout}{out.stderr}"
    assert "Traceback" not in out.stdout + out.stderr
    return out


async def start_demo(args: list[str], env: dict[str, str]) -> tuple[asyncio.subprocess.Process, dict[str, Any], str]:
    """A demo left running: its process, its summary, and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        BFEST, "demo", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    printed = ""
    summary = None
    while summary is None:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=400)
        assert line, "the demo ended before printing its summary: " + printed[-2000:]
        printed += line.decode()
        if line.startswith(b"{"):
            summary = json.loads(line)
    while "Try, in another terminal" not in printed or "Temporal UI:" not in printed.rsplit("Try, in another terminal", 1)[1]:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line, printed[-2000:]
        printed += line.decode()
    return proc, summary, printed


def fits_80(text: str) -> None:
    for line in text.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line


async def walk_the_first_hour(env: dict[str, str]) -> dict[str, Any]:
    demo: asyncio.subprocess.Process | None = None
    summary: dict[str, Any] = {}
    ran: list[str] = []
    try:
        for line in first_hour_block():
            ran.append(line)
            if line == "make demo":
                demo, summary, printed = await start_demo(DEMO, env)
                assert summary["year"] == dt.date.today().year  # a fresh stack: this year
                # The demo's closing lines name a bfest that works from here, with its year.
                assert f"\n  .venv/bin/bfest cycle status --year {summary['year']}\n" in printed
                assert "bfest cycle start --year 2099 --config cycles/2027.toml --minutes 30" in printed
                continue
            if re.fullmatch(r"Y=\d{4}", line):
                env = {**env, "Y": str(summary["year"])}
                continue
            out = await sh(line, env)
            args = shlex.split(line)[1:]
            if args[:2] == ["cycle", "status"] and args[-1] == "$Y":
                assert "completed" in out.stdout
            if args[:2] == ["cycle", "status"] and args[-1] == "2099":
                assert re.search("waiting_for_call|call_open", out.stdout), out.stdout
                fits_80(out.stdout)
                header = next(x for x in out.stdout.splitlines() if x.startswith("stage"))
                assert header.split() == ["stage", "state", "deadline", "(WIB)", "entrants", "scored", "shortlist"]
                for row in (x for x in out.stdout.splitlines() if x.split()[:1] in (["desk"], ["interview"], ["field"])):
                    assert re.search(r" \d\d \w{3} \d{4} \d\d:\d\d:\d\d ", row), row  # the whole deadline on its row
            if args[:2] == ["cycle", "extend"]:
                assert "call deadline is now" in out.stdout
            if args[:2] == ["cycle", "history"]:
                fits_80(out.stdout)
            if args[:2] == ["cycle", "history"] and args[-1] == "2099":
                words = " ".join(out.stdout.split())  # as read, across the wrapped lines
                assert re.search(r"extend_deadline call until \S+ by \S+: portal outage", words), out.stdout
                assert re.search(r"close_stage_now call by \S+: enough proposals", words), out.stdout
            if args[:2] == ["cycle", "list"]:
                fits_80(out.stdout)
                assert "canceled" not in out.stdout
                assert re.search(rf"^{summary['year']}\s+completed\s+\d\d \w{{3}} \d{{4}} \d\d:\d\d\s+\d\d \w{{3}}", out.stdout, re.M), out.stdout
            if args[:2] == ["cycle", "list"] and "2099" in out.stdout:  # after the cancel (it takes a moment to end)

                async def cancelled(line: str = line) -> bool:
                    listed = (await sh(line, env)).stdout
                    assert "canceled" not in listed
                    return bool(re.search(r"^2099\s+cancelled\s", listed, re.M))

                await eventually(cancelled, timeout=30)
            if args[:2] == ["dev", "down"]:
                assert demo is not None
                assert await asyncio.wait_for(demo.wait(), timeout=60) == 0  # the demo's stack stopped
        assert ran[0] == "make demo" and re.fullmatch(r"Y=\d{4}", ran[1]) and ran[-1] == ".venv/bin/bfest dev down", ran
        assert demo is not None and demo.returncode == 0
    finally:
        if demo is not None and demo.returncode is None:
            demo.send_signal(signal.SIGINT)
            await asyncio.wait_for(demo.wait(), timeout=60)
    return summary


async def bfest_streams(url: str) -> dict[str, list[str]]:
    nc = await connect_as(url, HARNESS)
    try:
        js = nc.jetstream()
        return {s.config.name: sorted(c.name for c in await js.consumers_info(s.config.name)) for s in await js.streams_info()}
    finally:
        await nc.close()


async def test_first_hour_then_the_same_seed_in_another_year_on_a_reused_nats(tmp_path):
    # 1. The README's first hour, on a fresh stack.
    env = {**os.environ, **fresh_stack(tmp_path / "var"), "COLUMNS": "80"}
    first = await walk_the_first_hour(env)
    assert first["counts"]["forwarded"] > 20 and first["counts"]["certificates"] > 0
    assert first["awards"]["top_inovasi"] and first["awards"]["layak_wbk"]
    assert set(first["stages"]) == {"desk", "interview", "field"}
    assert list((tmp_path / "var" / "results" / str(first["year"]) / "certificates").glob("*.pdf"))
    for key in ("BFEST_NATS_URL", "BFEST_TEMPORAL_ADDRESS"):
        assert not listening(env[key])
    assert not (tmp_path / "var" / "dev" / "stack.json").exists()
    assert "already exists" not in (tmp_path / "var" / "logs" / "temporal.log").read_text()

    # 2. Someone else's NATS, named on purpose; `bfest dev up` reuses it, the demo runs on that stack.
    with nats_server_process() as theirs:
        nc = await connect_as(theirs, HARNESS)
        js = nc.jetstream()
        await js.add_stream(name="THEIRS", subjects=["theirs.>"])
        await js.add_consumer("THEIRS", durable_name="their-reader")
        await nc.close()
        var = tmp_path / "again"
        env = {**os.environ, **fresh_stack(var), "BFEST_NATS_URL": theirs, "COLUMNS": "100"}
        up = await asyncio.create_subprocess_exec(
            BFEST, "dev", "up", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
        )
        try:
            assert up.stdout is not None
            said = ""
            while "Ctrl-C stops everything" not in said:
                line = await asyncio.wait_for(up.stdout.readline(), timeout=120)
                assert line, said
                said += line.decode()
            assert "reusing nats at " + theirs in said and re.search(r"nats\s+reused\s+" + re.escape(theirs), said), said
            state = json.loads((var / "dev" / "stack.json").read_text())
            assert {c["name"]: c["state"] for c in state["components"]}["nats"] == "reused"
            portal = f"http://127.0.0.1:{env['BFEST_PORTAL_PORT']}"  # the portal: a component with its URL
            assert {c["name"]: c["address"] for c in state["components"]}["portal"] == portal and f"Portal: {portal}" in said, said

            out = await asyncio.to_thread(
                subprocess.run, [BFEST, "demo", "--exit", *DEMO, "--year", str(first["year"] + 35)],
                cwd=ROOT, capture_output=True, text=True, env=env, timeout=400,
            )  # fmt: skip
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
            assert "using the dev stack started by `bfest dev up`" in out.stdout
            second = json.loads(next(x for x in out.stdout.splitlines() if x.startswith("{")))
            assert second["year"] == first["year"] + 35
            assert second["awards"] == first["awards"]  # the same seed, another year: the same awards
            assert second["counts"] == first["counts"]
            # --exit left the stack it did not start running, and its record with it.
            assert (var / "dev" / "stack.json").exists() and up.returncode is None
            assert "BFEST_EVENTS" in await bfest_streams(theirs)

            down = await asyncio.to_thread(
                subprocess.run, [BFEST, "dev", "down"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
            )
            assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
            assert await asyncio.wait_for(up.wait(), timeout=60) == 0
        finally:
            if up.returncode is None:
                up.send_signal(signal.SIGINT)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(up.wait(), timeout=60)
        assert not listening(env["BFEST_TEMPORAL_ADDRESS"]) and not (var / "dev" / "stack.json").exists()
        # Nothing the stack added stays on their server; what they had is untouched.
        assert await bfest_streams(theirs) == {"THEIRS": ["their-reader"]}
