"""Reading a juror pool from a file (JSON list, or CSV with id,name,affiliation,expertise,conflicts
where the list columns are separated by ';')."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from contracts.scoring import Juror
from services.common.files import read_records, truthy

_ADAPTER = TypeAdapter(list[Juror])


def _split(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(";") if x.strip()]


def _row(row: dict[str, str]) -> dict[str, object]:
    return {
        "id": (row.get("id") or "").strip(),
        "name": (row.get("name") or "").strip(),
        "affiliation": (row.get("affiliation") or "").strip(),
        "expertise": _split(row.get("expertise")),
        "conflicts": _split(row.get("conflicts")),
        "active": truthy(row.get("active")),
    }


def read_jurors_file(path: Path | str) -> list[Juror]:
    return read_records(path, _ADAPTER, _row)
