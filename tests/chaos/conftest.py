"""The chaos suite runs on the cluster stack and PostgreSQL (127.0.0.1:5432, or the server of
BFEST_TEST_POSTGRES_URL). `make test` runs its short subset (``chaos_ci``); `make chaos` sets
BFEST_CHAOS=all for the rest (``chaos_full``)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BFEST_CHAOS") == "all":
        return
    skip = pytest.mark.skip(reason="the full chaos suite runs with `make chaos` (BFEST_CHAOS=all)")
    for item in items:
        if item.get_closest_marker("chaos_full"):
            item.add_marker(skip)
