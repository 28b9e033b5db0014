"""Reading a juror pool from a file (JSON list, or CSV with id,name,affiliation,expertise,conflicts
where the list columns are separated by ';')."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from contracts.scoring import Juror

_ADAPTER = TypeAdapter(list[Juror])


def read_jurors_file(path: Path | str) -> list[Juror]:
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        if path.suffix.lower() == ".json":
            return _ADAPTER.validate_json(text)
        rows = []
        for row in csv.DictReader(text.splitlines()):
            rows.append(
                {
                    "id": (row.get("id") or "").strip(),
                    "name": (row.get("name") or "").strip(),
                    "affiliation": (row.get("affiliation") or "").strip(),
                    "expertise": [x.strip() for x in (row.get("expertise") or "").split(";") if x.strip()],
                    "conflicts": [x.strip() for x in (row.get("conflicts") or "").split(";") if x.strip()],
                    "active": (row.get("active") or "true").strip().lower() not in ("false", "0", "no"),
                }
            )
        return _ADAPTER.validate_python(rows)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{exc.error_count()} invalid entries; first at {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
