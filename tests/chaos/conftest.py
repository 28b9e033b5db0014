"""The chaos suite runs on the cluster stack and PostgreSQL (127.0.0.1:5432, or the server of
BFEST_TEST_POSTGRES_URL). Its years run only when asked: `make chaos` (BFEST_CHAOS=all) runs
every fault, BFEST_CHAOS=ci the short subset (``chaos_ci``: the undisturbed year and the leader
kill, about 6 minutes, which `make test` cannot afford within CI's budget yet). The patient
people's tests (no cluster) always run."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = os.environ.get("BFEST_CHAOS", "")
    if chosen == "all":
        return
    skip = pytest.mark.skip(reason="the chaos suite's years run with `make chaos` (BFEST_CHAOS=all, or =ci for the subset)")
    for item in items:
        if item.get_closest_marker("chaos_full") or (chosen != "ci" and item.get_closest_marker("chaos_ci")):
            item.add_marker(skip)
