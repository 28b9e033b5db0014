"""An operator's CSV of earlier years' innovations for the archive (``bfest archive import``):
every row validated on its own, each bad row named by its line in one line of its own."""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import ValidationError

from contracts.registration import ArchiveImportRow

COLUMNS = ("id", "year", "title", "unit_name", "agency_name", "region", "category", "group", "summary", "stage_reached", "award", "replicates")
REQUIRED = ("id", "year", "title", "unit_name", "agency_name", "category", "group", "summary")
OPTIONAL = frozenset(COLUMNS) - frozenset(REQUIRED)


class ArchiveFileError(ValueError):
    """The file's problems, one line per bad row (``line N: field: why``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _row(row: dict[str, str | None]) -> dict[str, object]:
    out: dict[str, object] = {}
    for column in COLUMNS:
        value = (row.get(column) or "").strip()
        if value or column not in OPTIONAL:
            out[column] = int(value) if column == "year" and value.isdigit() else value
    return out


def _problem(line: int, exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    field = ".".join(map(str, first["loc"])) or "row"
    more = len(exc.errors()) - 1
    return f"line {line}: {field}: {first['msg']}" + (f" (and {more} more)" if more else "")


def read_archive_file(path: Path | str) -> list[ArchiveImportRow]:
    """CSV with columns id,year,title,unit_name,agency_name,region,category,group,summary,
    stage_reached,award,replicates (region, stage_reached, award and replicates may be empty).
    Raises :class:`ArchiveFileError` naming every bad row, or a missing column, or a repeated id."""
    text = Path(path).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ArchiveFileError([f"line 1: missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})"])
    rows: list[ArchiveImportRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(reader):
        line = i + 2  # the header is line 1
        try:
            row = ArchiveImportRow.model_validate(_row(raw))
        except ValidationError as exc:
            problems.append(_problem(line, exc))
            continue
        if row.id in seen:
            problems.append(f"line {line}: id: {row.id} is already on line {seen[row.id]}")
            continue
        seen[row.id] = line
        rows.append(row)
    if problems:
        raise ArchiveFileError(problems)
    if not rows:
        raise ArchiveFileError(["the file has no rows"])
    return rows


CHUNK = 500


async def import_archive(path: Path) -> tuple[int, int, int]:
    """``bfest archive import FILE.csv``: read the file, send ``import_archive`` in chunks over NATS.
    Returns (created, updated, total held). Refusals are the operator's one-line errors."""
    from bfest.loading import _client
    from bfest.operator import OperatorError
    from contracts.registration import ImportArchive, ImportSummary
    from services.common.messaging import CommandError

    try:
        rows = read_archive_file(path)
    except FileNotFoundError:
        raise OperatorError(f"no such file: {path}") from None
    except ArchiveFileError as exc:
        raise OperatorError("\n".join(f"{path}: {p}" for p in exc.problems)) from None
    # Originals before their replications, so a chunk never names a row a later chunk brings.
    rows.sort(key=lambda r: (r.replicates is not None, r.year, r.id))
    client = await _client()
    created = updated = total = 0
    try:
        for i in range(0, len(rows), CHUNK):
            summary = ImportSummary.model_validate(await client.call(ImportArchive(rows=rows[i : i + CHUNK])))
            created, updated, total = created + summary.created, updated + summary.updated, summary.total
    except CommandError as exc:
        raise OperatorError(f"import refused: {exc.message}") from None
    finally:
        await client.close()
    return created, updated, total
