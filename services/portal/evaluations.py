"""What the evaluator's and reviewer's pages need to know of the evaluation tracks, without the
verification service's code: each track's names, and the fields of its sheet by the rubric keys
the contracts document (``contracts.verification.EnterEvaluation``: SAKIP's four components,
RB's ``index``, CETTAR's ``work_culture``). A component's name and maximum are the rubric's, as
the service returns them on a sheet it has computed (``EvaluationView.parts``); the portal never
holds the rubric itself, so no band, weight or maximum is decided here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from contracts.base import AGENCY_KINDS, EvaluationKind


@dataclass(frozen=True)
class SheetField:
    key: str
    label_id: str
    label_en: str
    max: float | None = None


TRACKS: dict[EvaluationKind, tuple[str, str]] = {
    EvaluationKind.SAKIP: ("SAKIP — Sistem Akuntabilitas Kinerja Instansi Pemerintah", "Performance accountability (SAKIP)"),
    EvaluationKind.RB: ("Indeks Reformasi Birokrasi", "Bureaucratic reform index (RB)"),
    EvaluationKind.CETTAR: ("Budaya kerja CETTAR", "CETTAR work-culture rating"),
}
SHEET_FIELDS: dict[EvaluationKind, tuple[SheetField, ...]] = {
    EvaluationKind.SAKIP: (
        SheetField("planning", "Perencanaan kinerja", "Performance planning"),
        SheetField("measurement", "Pengukuran kinerja", "Performance measurement"),
        SheetField("reporting", "Pelaporan kinerja", "Performance reporting"),
        SheetField("internal_evaluation", "Evaluasi akuntabilitas kinerja internal", "Internal evaluation"),
    ),
    EvaluationKind.RB: (SheetField("index", "Nilai indeks RB", "RB index value"),),
    EvaluationKind.CETTAR: (SheetField("work_culture", "Nilai budaya kerja", "Work-culture score"),),
}
SUBJECT_KINDS = sorted(k.value for k in AGENCY_KINDS)
"""Who a sheet evaluates: an agency, regency or city (the registry's agency kinds)."""
STATE_ID = {"entered": "menunggu telaah", "approved": "disetujui", "returned": "dikembalikan"}


def track(kind: str) -> EvaluationKind:
    """The evaluation track a URL names (another word is a page that does not exist)."""
    try:
        return EvaluationKind(kind)
    except ValueError:
        raise HTTPException(404, "Jalur evaluasi tidak dikenal / no such evaluation track") from None


def sheet_fields(kind: EvaluationKind, sheets: list[dict[str, Any]]) -> list[SheetField]:
    """The track's fields, each with the name and maximum the service's rubric gives it on any
    computed sheet of the year (before the first sheet: the documented key's name, no maximum)."""
    known: dict[str, dict[str, Any]] = {}
    for sheet in sheets:
        for part in sheet.get("parts", []):
            known.setdefault(part["key"], part)
    out = []
    for f in SHEET_FIELDS[kind]:
        part = known.get(f.key)
        out.append(SheetField(f.key, f.label_id, part["name"] if part else f.label_en, part.get("max") if part else None))
    return out


def parse_values(kind: EvaluationKind, form: dict[str, str]) -> tuple[dict[str, float], dict[str, tuple[str, str]]]:
    """The sheet's values from the form (a decimal comma allowed), and what cannot be a number."""
    values: dict[str, float] = {}
    errors: dict[str, tuple[str, str]] = {}
    for f in SHEET_FIELDS[kind]:
        text = form.get(f.key, "").strip().replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            errors[f.key] = ("Isikan angka (mis. 24,5).", "Enter a number (e.g. 24.5).")
            continue
        if number != number or number in (float("inf"), float("-inf")):
            errors[f.key] = ("Isikan angka (mis. 24,5).", "Enter a number (e.g. 24.5).")
            continue
        values[f.key] = number
    return values, errors


def refused_field(kind: EvaluationKind, message: str, details: Any) -> str | None:
    """The sheet field a refusal of the sheet names (in its details or its message), if any."""
    keys = [f.key for f in SHEET_FIELDS[kind]]
    if isinstance(details, dict):
        for name in ("key", "field", "component", "part"):
            if details.get(name) in keys:
                return str(details[name])
    return next((k for k in sorted(keys, key=len, reverse=True) if k in message), None)
