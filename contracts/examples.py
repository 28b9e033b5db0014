"""An example payload for every catalogued command and event, for the AsyncAPI document.

Built from each model's JSON Schema with the domain's own values (East Java participant codes,
Asia/Jakarta times, the default jury stages), then validated by the model itself, so an example
is always a payload the service accepts: a client that sends it gets a domain answer (perhaps
``call_not_open`` or ``unknown_juror`` on an empty stack), never a ``validation_error``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

# Values by field name: what a real message of the 2026 cycle carries.
BY_NAME: dict[str, Any] = {
    "request_id": "3f6c2a1e-7d4b-4c55-9e0a-2026c0ffee01",
    "event_id": "0b8e5c1e-6f1d-4c2a-9d7e-2026e0e00001",
    "cycle_year": 2026,
    "quota_per_agency": 3,
    "year": 2026,
    "unit_code": "KAB-MALANG-U01",
    "agency_code": "KAB-MALANG",
    "parent_code": "KAB-MALANG",
    "code": "KAB-MALANG-U01",
    "proposal_id": "P2026-00001",
    "juror_id": "J001",
    "verifier_id": "V01",
    "objection_id": "OBJ2026-0001",
    "decided_by": "V01",
    "stage": "desk",
    "final_stage": "field",
    "title": "Antrian Online Puskesmas Terpadu",
    "name": "Puskesmas Kepanjen",
    "unit_name": "Puskesmas Kepanjen",
    "name_id": "Inovasi Terpuji",
    "name_en": "Commendable Innovation",
    "summary": "Antrian daring untuk semua puskesmas kabupaten.",
    "problem": "Warga menunggu berjam-jam di loket pendaftaran.",
    "solution": "Pendaftaran daring dan notifikasi giliran lewat WhatsApp.",
    "impact": "Waktu tunggu turun 60 persen dalam enam bulan.",
    "reason": "Dokumen pendukung belum lengkap; mohon lampirkan SK inovasi.",
    "comment": "Inovasi relevan dan sudah berjalan dua tahun.",
    "category": "kesehatan",
    "kind": "upp",
    "group": "umum",
    "rule": "top_n",
    "venue": "Graha Pancasila, Balai Kota Among Tani, Kota Batu",
    "email": "inovasi@malangkab.go.id",
    "phone": "+62341123456",
    "uri": "https://portal.example/kovablik/2026/P2026-00001.pdf",
    "affiliation": "Universitas Brawijaya",
    "filer": "Warga Kabupaten Malang",
    "started_on": "2024-01-15",
    "opens_at": "2026-03-02T08:00:00+07:00",
    "closes_at": "2026-04-30T12:00:00+07:00",
    "call_closed_at": "2026-04-30T12:00:00+07:00",
    "deadline": "2026-06-12T16:00:00+07:00",
    "objection_window_until": "2026-06-17T16:00:00+07:00",
    "at": "2026-05-04T09:30:00+07:00",
    "date": "2026-11-19T19:00:00+07:00",
    "occurred_at": "2026-05-04T09:30:00+07:00",
    "threshold_set": "permenpanrb-90-2021",
    "source": "verification",
    "digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # of the empty set
    "count": 0,
    "expected": {"count": 0, "digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    "scores": {"kebaruan": 8, "efektivitas": 7.5},
    "weight": 1.0,
    "limit": 20,
    "offset": 0,
    "n": 3,
    "Criterion.key": "kebaruan",
    "Criterion.name": "Kebaruan (novelty)",
    "Juror.id": "J001",
    "Juror.name": "Dr. Siti Rahmawati",
    "Juror.expertise": "pelayanan_kesehatan",
    "Juror.conflicts": "KAB-MALANG",
    "Juror.affiliation": "UNIV-BRAWIJAYA",
    "Participant.name": "Puskesmas Kepanjen",
    "AwardRule.key": "top_inovasi",
    "Contact.name": "Admin Puskesmas Kepanjen",
    "DocumentRef.kind": "proposal",
    "VerifyCertificate.code": "BF26-2ZRR-P5K5-S2PN",
    "ImportParticipants.participants": [
        {"code": "KAB-MALANG", "name": "Kabupaten Malang", "kind": "kabupaten"},
        # As in the shipped East Java data set, so sending the example to a running stack changes nothing.
        {"code": "KAB-MALANG-U01", "name": "Dispendukcapil Loket Malang 1", "kind": "upp", "parent_code": "KAB-MALANG"},
    ],
    # A strong LKE (PermenPANRB 90/2021): 90% of every leverage area's points, results above the thresholds.
    "Lke.areas": {
        "change_management": {"fulfilment": 3.6, "reform": 3.6},
        "business_process": {"fulfilment": 3.15, "reform": 3.15},
        "hr_management": {"fulfilment": 4.5, "reform": 4.5},
        "accountability": {"fulfilment": 4.5, "reform": 4.5},
        "supervision": {"fulfilment": 6.75, "reform": 6.75},
        "public_service": {"fulfilment": 4.5, "reform": 4.5},
    },
    "Lke.results": {"anti_corruption_survey": 16.5, "performance": 4.0, "service_survey": 15.5},
    # A SAKIP sheet (PermenPANRB 88/2021): the four components by the rubric's keys, total 84.5 (A).
    "EnterEvaluation.values": {"planning": 26.0, "measurement": 25.5, "reporting": 12.5, "internal_evaluation": 20.5},
    "EnterEvaluation.kind": "sakip",
    "subject_code": "KAB-MALANG",
    "subject_name": "Kabupaten Malang",
    "rubric": "sakip-permenpanrb-88-2021",
    "evaluator_id": "E01",
    "reviewer_id": "R01",
    "group_code": "KAB-MALANG-U01-KBK1",
    "Lke.preconditions": {"audit_followup_pct": 100, "sakip_grade": "BB", "asset_declaration_compliant": True},
}
_DATE_TIME = "2026-05-04T09:30:00+07:00"
# Fields with a generated default (a new id, the time now) are shown with a fixed value instead.
ALWAYS_SHOWN = {"request_id", "event_id", "occurred_at"}
# Optional fields an example shows anyway, by model: what a real message of that kind carries.
OPTIONAL_SHOWN: dict[str, set[str]] = {
    "Participant": {"parent_code"},
    "Juror": {"expertise", "conflicts"},
    "ProposalContent": {"documents"},
    "AwardRule": {"n"},
}


def example(model: type[BaseModel]) -> dict[str, Any] | None:
    """A payload ``model`` accepts, or None when the schema alone cannot make one."""
    schema = model.model_json_schema()
    value = _value(schema, schema.get("$defs", {}), "", 0)
    try:
        return model.model_validate(value).model_dump(mode="json", exclude_defaults=True) | _required(model, value)
    except ValidationError:
        return None


def _required(model: type[BaseModel], value: dict[str, Any]) -> dict[str, Any]:
    """Required fields stay in the example even when they equal a default of a nested model."""
    return {k: value[k] for k, f in model.model_fields.items() if f.is_required() and k in value}


def _value(schema: dict[str, Any], defs: dict[str, Any], name: str, depth: int, owner: str = "") -> Any:
    if "$ref" in schema:
        return _value(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name, depth, owner)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _value(options[0], defs, name, depth, owner) if options else None
    for key in (f"{owner}.{name}", name):
        if key in BY_NAME and _fits(BY_NAME[key], schema):
            return BY_NAME[key]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        title = schema.get("title", "")
        wanted = set(schema.get("required", [])) | ALWAYS_SHOWN | OPTIONAL_SHOWN.get(title, set())
        out = {k: _value(s, defs, k, depth + 1, title) for k, s in props.items() if k in wanted}
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and depth < 6:
            out = {"kebaruan": _value(extra, defs, "", depth + 1)}
        return out
    if kind == "array":
        item = _value(schema.get("items", {}), defs, name, depth + 1, owner)
        return [item] * max(1, schema.get("minItems", 1))
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if kind == "string":
        if schema.get("format") == "date-time":
            return _DATE_TIME
        if schema.get("format") == "date":
            return _DATE_TIME[:10]
        if schema.get("format") == "email":
            return BY_NAME["email"]
        pattern = schema.get("pattern", "")
        if pattern:
            return _matching(pattern)
        return "contoh".ljust(schema.get("minLength", 1), "o")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return max(float(schema.get("minimum", 1)), 1.0)
    if kind == "boolean":
        return True
    return None


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    if isinstance(value, str):
        return schema.get("type") in (None, "string") and (
            "pattern" not in schema or re.fullmatch(schema["pattern"], value) is not None
        ) and ("enum" not in schema or value in schema["enum"])
    if isinstance(value, dict):
        return schema.get("type") in (None, "object")
    if isinstance(value, bool):
        return schema.get("type") == "boolean"
    if isinstance(value, int | float):
        return schema.get("type") in ("integer", "number") and not (schema.get("type") == "integer" and isinstance(value, float))
    return True


def _matching(pattern: str) -> str:
    for candidate in ("desk", "KAB-MALANG-U01", "verification", "0" * 64):
        if re.fullmatch(pattern, candidate):
            return candidate
    return "contoh"
