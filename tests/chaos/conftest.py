"""The chaos suite runs on the cluster stack and PostgreSQL (127.0.0.1:5432, or the server of
BFEST_TEST_POSTGRES_URL). Its years run when asked: `make chaos` (BFEST_CHAOS=all) runs every
fault; BFEST_CHAOS=ci the short subset (``chaos_ci``: the undisturbed year and the leader kill),
which `make test` (and so CI) runs beside the rest of the suite, in a pytest of its own, with
3.5-minute years (the machine is busy with the suite meanwhile). Without BFEST_CHAOS the years are
skipped; the other tests here (the patient people, the comparison) always run."""

from __future__ import annotations

import os

import pytest


def chosen() -> str:
    """all, ci or none: BFEST_CHAOS, else none (`make test` and CI skip the years)."""
    return os.environ.get("BFEST_CHAOS") or "none"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    subset = chosen()
    if subset == "all":
        return
    skip = pytest.mark.skip(reason="the chaos suite's years run with `make chaos` (BFEST_CHAOS=all), =ci for the subset")
    for item in items:
        if item.get_closest_marker("chaos_full") or (subset != "ci" and item.get_closest_marker("chaos_ci")):
            item.add_marker(skip)
