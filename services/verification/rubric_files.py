"""The rubrics (SAKIP, RB index, CETTAR) as versioned data files, ``data/rubrics/<key>.json``, each
naming its source and whether it is confirmed against the regulation; the pure evaluation in
:mod:`services.verification.rubrics` gets a rubric as data and never reads a file itself."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from contracts.verification import VerificationError
from services.common.errors import DomainError

RUBRICS_DIR = Path(__file__).parent / "data" / "rubrics"
KINDS = ("sakip", "rb", "cettar")


def known(kind: str | None = None) -> list[str]:
    return sorted(p.stem for p in RUBRICS_DIR.glob("*.json") if kind is None or _read(p)["kind"] == kind)


@lru_cache
def rubric(key: str, kind: str) -> dict[str, Any]:
    """The rubric ``key`` of ``kind``; an unknown key (or one of another kind) is refused naming the
    known ones."""
    path = RUBRICS_DIR / f"{key}.json"
    if not re.fullmatch(r"[a-z0-9-]+", key) or not path.exists() or _read(path)["kind"] != kind:
        names = known(kind)
        raise DomainError(
            VerificationError.UNKNOWN_RUBRIC,
            f"unknown {kind} rubric {key!r}; known: {', '.join(names)}",
            {"known": names},
        )
    return _read(path)


def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))
