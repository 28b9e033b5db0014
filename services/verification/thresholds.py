"""The WBK threshold sets, kept as versioned data files (``data/wbk_thresholds/<key>.json``, each
naming its regulation); the domain gets a set as data and never reads a file itself."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from contracts.verification import VerificationError
from services.common.errors import DomainError

THRESHOLDS_DIR = Path(__file__).parent / "data" / "wbk_thresholds"


@lru_cache
def threshold_set(key: str) -> dict[str, Any]:
    """The threshold set ``key``; an unknown key is refused naming the known ones."""
    path = THRESHOLDS_DIR / f"{key}.json"
    if not re.fullmatch(r"[a-z0-9-]+", key) or not path.exists():
        known = sorted(p.stem for p in THRESHOLDS_DIR.glob("*.json"))
        raise DomainError(
            VerificationError.UNKNOWN_THRESHOLD_SET, f"unknown threshold set {key!r}; known: {', '.join(known)}", {"known": known}
        )
    return dict(json.loads(path.read_text()))
