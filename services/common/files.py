"""Reading records (participants, jurors) from an operator's JSON or CSV file."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


def read_records(path: Path | str, adapter: TypeAdapter[list[T]], from_csv_row: Callable[[dict[str, str]], dict[str, Any]]) -> list[T]:
    """A JSON list, or a CSV whose rows ``from_csv_row`` turns into dicts; every entry validated.
    Raises ``ValueError`` with the count of invalid entries and the first one's place."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        if path.suffix.lower() == ".json":
            return adapter.validate_json(text)
        return adapter.validate_python([from_csv_row(row) for row in csv.DictReader(text.splitlines())])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{exc.error_count()} invalid entries; first at {where}: {first['msg']}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


def truthy(value: str | None, default: bool = True) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("false", "0", "no", "tidak")
