"""Recorded histories (committed JSON from a full run) replay through the current workflow code:
a change that would break running cycles fails here, and must go through ``workflow.patched``.
Refresh them with ``BFEST_RECORD_HISTORIES=1 pytest tests/workflows/test_cycle_logic.py -k a_year`` (a
year with every track: ``… tests/workflows/test_tracks.py -k every_track``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded():
    assert {p.stem for p in HISTORIES} >= {"cycle", "stage-desk", "stage-interview", "stage-field", "cycle-tracks", "track-sakip", "track-kbk"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays_on_current_code(path):
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json("bfest-replay", data)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
