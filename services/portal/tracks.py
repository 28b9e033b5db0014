"""How the results page lays out one ceremony across tracks: the award categories of each track
(KOVABLIK, WBK, KBK, and the evaluation tracks' awards), then every approved evaluation result of
SAKIP, RB and CETTAR with its grade and parts, as ``get_results`` returns them."""

from __future__ import annotations

from typing import Any

TRACK_NAMES: dict[str, tuple[str, str]] = {
    "kovablik": ("KOVABLIK — Kompetisi Inovasi Pelayanan Publik", "Public service innovation competition"),
    "wbk": ("Layak Berpredikat WBK (Zona Integritas)", "Worthy of the WBK predicate"),
    "kbk": ("KBK — Kelompok Budaya Kerja", "Work-culture groups"),
    "sakip": ("SAKIP — Akuntabilitas Kinerja", "Performance accountability"),
    "rb": ("Reformasi Birokrasi", "Bureaucratic reform"),
    "cettar": ("Budaya Kerja CETTAR", "CETTAR work culture"),
}
ORDER = tuple(TRACK_NAMES)


def by_track(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each track that has a category or an evaluation result, in the ceremony's order (a track
    this portal does not know yet comes last, under its own key)."""
    categories: dict[str, list[dict[str, Any]]] = {}
    for cat in results.get("categories", []):
        categories.setdefault(str(cat.get("track") or "kovablik"), []).append(cat)
    evaluations = results.get("evaluations") or {}
    keys = [k for k in ORDER if k in categories or evaluations.get(k)]
    keys += sorted(k for k in {*categories, *evaluations} if k not in ORDER and (k in categories or evaluations.get(k)))
    return [
        {
            "track": k,
            "names": TRACK_NAMES.get(k, (k, k)),
            "categories": categories.get(k, []),
            "evaluations": sorted(evaluations.get(k) or [], key=lambda e: (-float(e.get("total") or 0), str(e.get("subject_name")))),
        }
        for k in keys
    ]
