"""The WBK threshold sets, kept as versioned data files (``data/wbk_thresholds/<key>.json``, each
naming its regulation): read here, at the edge; the domain gets a set as data and never reads a
file itself."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.verification.domain import pick_threshold_set

THRESHOLDS_DIR = Path(__file__).parent / "data" / "wbk_thresholds"


@lru_cache
def threshold_sets() -> dict[str, dict[str, Any]]:
    """Every threshold set, by its key (the file's name)."""
    return {path.stem: dict(json.loads(path.read_text())) for path in sorted(THRESHOLDS_DIR.glob("*.json"))}


def threshold_set(key: str) -> dict[str, Any]:
    """The threshold set ``key``; an unknown key is refused naming the known ones."""
    return dict(pick_threshold_set(threshold_sets(), key))
