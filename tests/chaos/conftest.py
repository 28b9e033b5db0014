"""The chaos suite runs on the cluster stack and PostgreSQL (127.0.0.1:5432, or the server of
BFEST_TEST_POSTGRES_URL). Its years run when asked: `make chaos` (BFEST_CHAOS=all) runs every
fault; BFEST_CHAOS=ci the short subset (``chaos_ci``: the undisturbed year and the leader kill:
6 min 35 s for tests/chaos on the 2-core machine, the cluster's start included), which is the default in CI (CI=true, as `.ci/run` and hosted CI set it), so CI's
`make test` runs it; BFEST_CHAOS=none skips the years there too. The other tests here (the
patient people, the comparison) always run."""

from __future__ import annotations

import os

import pytest


def chosen() -> str:
    """all, ci or none: BFEST_CHAOS, else ci in CI and none elsewhere (a developer's `make test`)."""
    default = "ci" if os.environ.get("CI", "").lower() in ("true", "1") else "none"
    return os.environ.get("BFEST_CHAOS") or default


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    subset = chosen()
    if subset == "all":
        return
    skip = pytest.mark.skip(reason="the chaos suite's years run with `make chaos` (BFEST_CHAOS=all), =ci for the subset (CI's default)")
    for item in items:
        if item.get_closest_marker("chaos_full") or (subset != "ci" and item.get_closest_marker("chaos_ci")):
            item.add_marker(skip)
