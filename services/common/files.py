"""Reading records (participants, jurors) from an operator's JSON or CSV file."""

from __future__ import annotations

import csv
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
    is_json = path.suffix.lower() == ".json"
    try:
        if is_json:
            return adapter.validate_json(text)
        return adapter.validate_python([from_csv_row(row) for row in csv.DictReader(text.splitlines())])
    except ValidationError as exc:
        raise ValueError(_explain(exc, is_json)) from None


def _explain(exc: ValidationError, is_json: bool) -> str:
    """One line: how many entries are invalid, and where and why the first one is (a CSV entry by
    its line in the file, header included)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"not valid JSON: {first['msg'].removeprefix('Invalid JSON: ')}"
    entries = {e["loc"][0] for e in errors if e["loc"] and isinstance(e["loc"][0], int)}
    if not entries:  # the file as a whole has the wrong shape
        return f"expected a list of entries: {first['msg']}"
    index, *field = first["loc"]
    assert isinstance(index, int)
    place = f"entry {index + 1}" if is_json else f"line {index + 2}"
    noun = "entry" if len(entries) == 1 else "entries"
    return f"{len(entries)} invalid {noun}; the first, {place}, {'.'.join(map(str, field)) or 'itself'}: {first['msg']}"


def truthy(value: str | None, default: bool = True) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("false", "0", "no", "tidak")


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP's CSV-injection list)."""


def csv_cell(value: Any) -> Any:
    """A value made safe for a CSV that people open in a spreadsheet: text starting like a
    formula gets a leading single quote, so ``=HYPERLINK(…)`` in a title shows as text and runs
    nothing. Numbers (ints, floats, Decimals) are written as they are: a negative score is data."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    """Every cell of a row through :func:`csv_cell`."""
    return [csv_cell(v) for v in values]
