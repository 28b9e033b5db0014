"""The operator CLI as a person uses it: real `bfest` processes against a real Temporal dev
server, the four services and a worker, on a schedule compressed to seconds."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.awards.app import create_app as awards_app
from services.common.settings import Settings
from services.registration.app import create_app as registration_app
from services.scoring.app import create_app as scoring_app
from services.verification.app import create_app as verification_app
from tests.support import eventually, running
from workflows.worker import running_worker

BFEST = str(Path(sys.executable).parent / "bfest")
WIB = dt.timezone(dt.timedelta(hours=7))
# The compressed test cycle's call closes this many seconds after it starts: room for the few CLI
# calls (seconds each on a busy machine) the test makes before it extends the call.
CALL_CLOSES = 21


async def bfest(*args: str, env: dict[str, str], check: bool = True, columns: int = 200, stdin: str = "") -> subprocess.CompletedProcess[str]:
    # In a thread: the worker answering the CLI's queries runs on this event loop.
    out = await asyncio.to_thread(
        subprocess.run, [BFEST, *args], capture_output=True, text=True, input=stdin,
        env={**os.environ, **env, "COLUMNS": str(columns)}, timeout=60,
    )  # fmt: skip
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def toml_config(year: int, start: dt.datetime) -> str:
    def t(seconds: float) -> str:
        return (start + dt.timedelta(seconds=seconds)).isoformat()

    stages = ""
    for i, key in enumerate(("desk", "interview", "field")):
        stages += f"""
[[stages]]
key = "{key}"
name = "{key.title()}"
deadline = {t(30 + 3 * i)}
advance = {5 - i}
criteria = [{{ key = "mutu", name = "Mutu", weight = 1.0 }}]
"""
    return f"""year = {year}
[call]
opens = {t(1)}
closes = {t(CALL_CLOSES)}
[verification]
deadline = {t(27)}
{stages}
[ceremony]
date = {t(40)}
venue = "Kota Batu"
[[awards]]
key = "top"
rule = "top_n"
n = 3
name_id = "TOP 3"
name_en = "TOP 3"
"""


@pytest.fixture
async def stack(temporal_dev, nats_url, tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    apps = [registration_app(settings), verification_app(settings), scoring_app(settings), awards_app(settings)]
    async with (
        running(apps[0], nats_url, f"sqlite+aiosqlite:///{tmp_path}/r.db"),
        running(apps[1], nats_url, f"sqlite+aiosqlite:///{tmp_path}/v.db"),
        running(apps[2], nats_url, f"sqlite+aiosqlite:///{tmp_path}/s.db"),
        running(apps[3], nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"),
        running_worker(temporal_dev.client, nats_url),
    ):
        yield {"BFEST_TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host, "BFEST_NATS_URL": nats_url}


async def test_start_status_extend_history_complete_list(stack, tmp_path, temporal_dev):
    env = stack
    year = 2100 - uuid.uuid4().int % 60
    config = tmp_path / f"{year}.toml"
    start = dt.datetime.now(dt.UTC)
    config.write_text(toml_config(year, start))

    started = await bfest("cycle", "start", "--year", str(year), "--config", str(config), env=env)
    assert f"bfest-cycle-{year}" in started.stdout and "/namespaces/default/workflows/" in started.stdout
    again = await bfest("cycle", "start", "--year", str(year), "--config", str(config), env=env, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr

    async def call_open() -> bool:
        out = await bfest("cycle", "status", "--year", str(year), "--json", env=env)
        return json.loads(out.stdout)["phase"] == "call_open"

    await eventually(call_open, timeout=30)
    status = await bfest("cycle", "status", "--year", str(year), env=env)
    assert "call_open" in status.stdout and "desk" in status.stdout
    until = (start + dt.timedelta(seconds=CALL_CLOSES + 3)).isoformat()
    ext = await bfest("cycle", "extend", "--year", str(year), "--stage", "call", "--until", until, "--reason", "portal outage", "--operator", "biro-org", env=env)
    assert "call deadline is now" in ext.stdout
    past = await bfest("cycle", "extend", "--year", str(year), "--stage", "call", "--until", "2020-01-01T00:00", env=env, check=False)
    assert past.returncode == 1 and "in the past" in past.stderr and len(past.stderr.strip().splitlines()) == 1
    assert not re.search(r":\d\d\.\d", past.stderr), past.stderr  # instants to the second, no microseconds
    terse = await bfest("cycle", "extend", "--year", str(year), "--stage", "call", "--until", until, "--reason", "x", env=env, check=False)
    assert terse.returncode == 1 and len(terse.stderr.strip().splitlines()) == 1, terse.stderr
    assert "reason: String should have at least 3 characters" in terse.stderr and "Traceback" not in terse.stderr
    # In 80 columns (after the extension: the call of this compressed cycle closes in seconds).
    narrow = await bfest("cycle", "status", "--year", str(year), env=env, columns=80)
    fits_80(narrow.stdout)
    header = next(x for x in narrow.stdout.splitlines() if x.startswith("stage"))
    assert header.split() == ["stage", "state", "deadline", "(WIB)", "entrants", "scored", "shortlist"]
    rows = {x.split()[0]: x for x in narrow.stdout.splitlines() if x.split()[:1] in (["desk"], ["interview"], ["field"])}
    for key, seconds in (("desk", 30), ("interview", 33), ("field", 36)):  # each deadline whole, on its stage's row
        assert (start + dt.timedelta(seconds=seconds)).astimezone(WIB).strftime("%d %b %Y %H:%M:%S") in rows[key], narrow.stdout

    handle = temporal_dev.client.get_workflow_handle(f"bfest-cycle-{year}")
    result = await handle.result()
    assert result["phase"] == "completed"
    ended = await bfest("cycle", "extend", "--year", str(year), "--stage", "field", "--until", until, "--reason", "too late", env=env, check=False)
    assert ended.returncode == 1 and f"cycle {year} is completed, not running" in ended.stderr and len(ended.stderr.strip().splitlines()) == 1, ended.stderr

    history = json.loads((await bfest("cycle", "history", "--year", str(year), "--json", env=env)).stdout)
    updates = [e for e in history if e["kind"] == "update"]
    assert updates and updates[0]["input"]["reason"] == "portal outage" and updates[0]["input"]["operator"] == "biro-org"
    kinds = {e["kind"] for e in history}
    assert {"transition", "timer", "activity", "stage_started", "completed"} <= kinds
    assert {e["workflow"] for e in history} >= {"cycle", "desk", "interview", "field"}
    text = (await bfest("cycle", "history", "--year", str(year), env=env)).stdout
    assert "portal outage" in text and "biro-org" in text
    assert "+07:00 by biro-org: portal outage" in text  # the extension's time in WIB, like the rest of the history
    narrow_history = (await bfest("cycle", "history", "--year", str(year), env=env, columns=80)).stdout
    fits_80(narrow_history)
    for line in narrow_history.splitlines():  # a long entry wraps under its text, never under the date
        assert re.match(r"\d\d \w{3} \d{4} \d\d:\d\d:\d\d WIB  \w", line) or line.startswith(" " * 30), line

    async def listed() -> bool:
        rows = json.loads((await bfest("cycle", "list", "--json", env=env)).stdout)
        return any(r["year"] == year and r["state"] == "completed" for r in rows)

    await eventually(listed, timeout=30)
    table = (await bfest("cycle", "list", env=env, columns=80)).stdout
    fits_80(table)
    row = next(x for x in table.splitlines() if x.startswith(str(year)))
    began = next(r for r in json.loads((await bfest("cycle", "list", "--json", env=env)).stdout) if r["year"] == year)["started"]
    assert dt.datetime.fromisoformat(began).strftime("%d %b %Y %H:%M") in row, table  # whole dates


async def test_errors_are_one_line_and_non_zero(stack, tmp_path):
    env = stack
    unknown = await bfest("cycle", "status", "--year", "1999", env=env, check=False)
    assert unknown.returncode == 1 and "no cycle for year 1999" in unknown.stderr
    bad_date = await bfest("cycle", "extend", "--year", "1999", "--stage", "desk", "--until", "next tuesday", env=env, check=False)
    assert bad_date.returncode == 1 and "invalid date-time" in bad_date.stderr
    down = await bfest("cycle", "list", env={**env, "BFEST_TEMPORAL_ADDRESS": "127.0.0.1:1"}, check=False)
    assert down.returncode == 1 and "127.0.0.1:1" in down.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("year = 2026\n[call]\nopens = 2026-05-01T00:00:00+07:00\ncloses = 2026-04-01T00:00:00+07:00\n")
    invalid = await bfest("cycle", "start", "--year", "2026", "--config", str(bad), env=env, check=False)
    assert invalid.returncode == 1 and "verification" in invalid.stderr and "ceremony" in invalid.stderr
    last_year = tmp_path / "2026.toml"
    last_year.write_text(toml_config(2026, dt.datetime(2026, 3, 1, tzinfo=dt.UTC)))
    past = await bfest("cycle", "start", "--year", "2026", "--config", str(last_year), env=env, check=False)
    assert past.returncode == 1 and "already past" in past.stderr
    people = tmp_path / "people.csv"
    people.write_text("code,name,kind\nKAB-X,Kabupaten X,kabupaten\nKAB-X-U1,,upp\n")
    csv_row = await bfest("participants", "import", str(people), env=env, check=False)
    assert csv_row.returncode == 1 and "1 invalid entry; the first, line 3, name:" in csv_row.stderr
    jurors = tmp_path / "jurors.json"
    jurors.write_text('[{"id": "J1",')
    broken = await bfest("jurors", "import", str(jurors), env=env, check=False)
    assert broken.returncode == 1 and "not valid JSON" in broken.stderr
    not_a_year = await bfest("cycle", "status", "--year", "abc", env=env, check=False)
    assert not_a_year.returncode == 2 and "--year" in not_a_year.stderr and "╭" not in not_a_year.stderr
    missing = await bfest("cycle", "status", env=env, check=False)
    assert missing.returncode == 2 and "Missing option '--year'" in missing.stderr
    # Nothing to cancel: it says so at once, without asking first (stdin would answer "y").
    nothing = await bfest("cycle", "cancel", "--year", "1999", env=env, check=False, stdin="y\n")
    assert nothing.returncode == 1 and "no cycle for year 1999" in nothing.stderr and "Cancel the" not in nothing.stdout
    for out in (unknown, bad_date, down, invalid, past, csv_row, broken, not_a_year, missing, nothing):
        assert "Traceback" not in out.stderr + out.stdout
    for out in (unknown, bad_date, down, past, csv_row, broken, not_a_year, missing, nothing):  # an invalid config lists each problem
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


async def test_check_validates_and_prints_the_schedule_without_temporal(tmp_path):
    nowhere = {"BFEST_TEMPORAL_ADDRESS": "127.0.0.1:1"}  # --check must not need it
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    good = tmp_path / "good.toml"
    good.write_text(toml_config(2090, start))
    out = await bfest("cycle", "start", "--year", "2090", "--config", str(good), "--check", env=nowhere)
    assert "valid" in out.stdout and "would start cycle 2090" in out.stdout
    for step in ("call for proposals", "verification", "Desk", "Interview", "Field", "award ceremony", "top (top_n 3)"):
        assert step in out.stdout, step
    closes = (start + dt.timedelta(seconds=CALL_CLOSES)).astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%d %b %Y %H:%M:%S WIB")
    assert closes in out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(toml_config(2090, start).replace("advance = 4", "advance = 0"))
    refused = await bfest("cycle", "start", "--year", "2090", "--config", str(bad), "--check", env=nowhere, check=False)
    assert refused.returncode == 1 and "stages[1].advance" in refused.stderr and "valid:" not in refused.stdout
    wrong_year = await bfest("cycle", "start", "--year", "2091", "--config", str(good), "--check", env=nowhere, check=False)
    assert wrong_year.returncode == 1 and "is for 2090" in wrong_year.stderr


async def test_the_shipped_config_of_the_next_cycle_passes_check():
    from bfest.demo import shipped_config
    from workflows.config import load_config

    path = Path(shipped_config())
    cfg = load_config(path)
    assert cfg.year > dt.date.today().year or cfg.call.opens.date() > dt.date.today()  # the next cycle's
    out = await bfest("cycle", "start", "--year", str(cfg.year), "--config", str(path), "--check", env={"BFEST_TEMPORAL_ADDRESS": "127.0.0.1:1"}, columns=80)
    assert f"would start cycle {cfg.year}" in out.stdout
    # A practice cycle of its shape, compressed into minutes from now, for any year.
    practice = await bfest("cycle", "start", "--year", "2099", "--config", str(path), "--minutes", "30", "--check", env={"BFEST_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert "would start cycle 2099" in practice.stdout and dt.datetime.now(WIB).strftime("%d %b %Y") in practice.stdout


def fits_80(text: str) -> None:
    for line in text.splitlines():
        assert len(line) <= 80 and "…" not in line, line


async def test_status_shows_each_track_and_the_ui_finds_it_by_bfest_track(stack, tmp_path, temporal_dev):
    """A year with SAKIP and RB on the real dev server (which refuses a search attribute it does not
    know): each track's child workflow carries BfestYear, BfestTrack and BfestStage, and `bfest
    cycle status` shows a line per track."""
    env = stack
    year = 2041 + uuid.uuid4().int % 40
    start = dt.datetime.now(dt.UTC)
    hours = [(start + dt.timedelta(hours=h)).isoformat() for h in range(6)]
    config = tmp_path / f"{year}.toml"
    body = toml_config(year, start).replace(f"date = {(start + dt.timedelta(seconds=40)).isoformat()}", f"date = {hours[5]}")
    body += f"""
[tracks.sakip]
opens = {hours[1]}
deadline = {hours[3]}
[tracks.rb]
opens = {hours[1]}
deadline = {hours[4]}
"""
    config.write_text(body)
    await bfest("cycle", "start", "--year", str(year), "--config", str(config), env=env)

    async def tracks_waiting() -> bool:
        data = json.loads((await bfest("cycle", "status", "--year", str(year), "--json", env=env)).stdout)
        return {t["track"]: t["phase"] for t in data["tracks"]} == {"sakip": "waiting", "rb": "waiting"}

    try:
        await eventually(tracks_waiting, timeout=90)
        text = (await bfest("cycle", "status", "--year", str(year), env=env)).stdout
        rows = {x.split()[0]: x for x in text.splitlines() if x.split()[:1] in (["sakip"], ["rb"])}
        assert "running" in rows["sakip"] and "waiting" in rows["sakip"], text
        sakip_deadline = dt.datetime.fromisoformat(hours[3]).astimezone(WIB).strftime("%d %b %Y %H:%M:%S")
        assert sakip_deadline in rows["sakip"], text

        async def found() -> list[str]:
            return [w.id async for w in temporal_dev.client.list_workflows(f'BfestTrack = "sakip" AND BfestYear = {year}')]

        assert await eventually(lambda: _nonempty(found), timeout=60)
        assert await found() == [f"bfest-cycle-{year}-sakip"]
    finally:
        for wid in (f"bfest-cycle-{year}-sakip", f"bfest-cycle-{year}-rb", f"bfest-cycle-{year}"):
            with contextlib.suppress(Exception):
                await temporal_dev.client.get_workflow_handle(wid).terminate("test done")


async def _nonempty(ask) -> bool:  # type: ignore[no-untyped-def]
    return bool(await ask())
