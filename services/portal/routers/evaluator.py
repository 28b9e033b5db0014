"""The evaluator's pages: per evaluation track (SAKIP, RB, CETTAR) the year's sheets and the form
to enter one, or correct it until a reviewer approves it (``enter_evaluation``, the evaluator id
from the session). After an entry the sheet's page shows what the service computed: its total,
grade and every part with its source (for CETTAR, the SAKIP, RB and Zona Integritas parts too)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.base import Reply
from contracts.registration import GetParticipant, ListParticipants
from contracts.verification import EnterEvaluation, EvaluationStatus, GetEvaluation, ListEvaluations
from services.portal.accounts import Person, Role
from services.portal.evaluations import (
    STATE_ID,
    SUBJECT_KINDS,
    TRACKS,
    parse_values,
    refused_field,
    sheet_fields,
    track,
)
from services.portal.gateway import request_id
from services.portal.messages import refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/evaluator", tags=["evaluator"], include_in_schema=False)
api = APIRouter(prefix="/api/evaluator", tags=["evaluator"])
evaluator_only = require_role(Role.EVALUATOR)
SUBJECT = ("subject_code", "subject_name", "subject_kind", "note")


@router.get("")
async def evaluator_home(request: Request, person: Person = Depends(evaluator_only)) -> Response:
    g = gateway(request)
    windows = {kind: await g.send(EvaluationStatus(cycle_year=year(request), kind=kind), person.actor()) for kind in TRACKS}
    return render(request, "evaluator/home.html", tracks=TRACKS, windows={k.value: r.data if r.ok else None for k, r in windows.items()}, state_id=STATE_ID)


async def _sheets(request: Request, person: Person, kind: str) -> Reply:
    cmd = ListEvaluations(cycle_year=year(request), kind=track(kind), limit=1000)
    return await gateway(request).send(cmd, person.actor())


async def _track_page(request: Request, person: Person, kind: str, status_code: int = 200, **context: Any) -> Response:
    listing = await _sheets(request, person, kind)
    sheets = listing.data["items"] if listing.ok else []
    context.setdefault("values", {"subject_kind": "opd"})
    context.setdefault("errors", {})
    context.setdefault("error", None if listing.ok else refusal(listing))
    return render(
        request, "evaluator/track.html", status_code=status_code, kind=track(kind), names=TRACKS[track(kind)], sheets=sheets,
        fields=sheet_fields(track(kind), sheets), subject_kinds=SUBJECT_KINDS, state_id=STATE_ID, participants=await _participants(request, person), **context,
    )  # fmt: skip


@router.get("/{kind}")
async def track_page(request: Request, kind: str, person: Person = Depends(evaluator_only)) -> Response:
    return await _track_page(request, person, kind)


@router.get("/{kind}/{subject_code}")
async def sheet_page(request: Request, kind: str, subject_code: str, person: Person = Depends(evaluator_only)) -> Response:
    """One sheet as the service computed it, with the form to correct it."""
    reply = await gateway(request).send(GetEvaluation(cycle_year=year(request), kind=track(kind), subject_code=subject_code), person.actor())
    if not reply.ok:
        raise HTTPException(404 if reply.error and reply.error.code != "unavailable" else 503, "Lembar evaluasi tidak ditemukan / no such sheet")
    sheet = reply.data
    values = {"subject_code": sheet["subject_code"], "subject_name": sheet["subject_name"], "subject_kind": sheet.get("subject_kind") or "", "note": sheet.get("note") or ""}
    values |= {p["key"]: f"{p['value']:g}" for p in sheet["parts"]}
    notice = request.query_params.get("notice")
    return await _track_page(request, person, kind, sheet=sheet, values=values, notice=notice)


def _command(request: Request, person: Person, kind: str, subject: dict[str, str], values: dict[str, float]) -> EnterEvaluation:
    return EnterEvaluation(
        request_id=request_id("evaluation"), cycle_year=year(request), kind=track(kind), subject_code=subject["subject_code"],
        subject_name=subject["subject_name"], subject_kind=subject["subject_kind"] or None, values=values,
        evaluator_id=person.subject_id, note=subject["note"] or None,
    )  # fmt: skip


async def _registered(request: Request, person: Person, subject: dict[str, str]) -> dict[str, str]:
    """A subject given by its registry code alone: its name and kind as the registry has them."""
    if subject["subject_name"] or not subject["subject_code"]:
        return subject
    try:
        reply = await gateway(request).send(GetParticipant(code=subject["subject_code"]), person.actor())
    except ValidationError:
        return subject
    if reply.ok and reply.data["kind"] in SUBJECT_KINDS:
        return {**subject, "subject_name": reply.data["name"], "subject_kind": reply.data["kind"]}
    return subject


async def _participants(request: Request, person: Person) -> list[dict[str, Any]]:
    """The registry's agencies, regencies and cities, offered as the subject's code (none if the
    registry does not answer: the code is then typed)."""
    reply = await gateway(request).send(ListParticipants(limit=1000), person.actor())
    return [p for p in reply.data["items"] if p["kind"] in SUBJECT_KINDS] if reply.ok else []


def _invalid(exc: ValidationError) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for e in exc.errors():
        name = str(e["loc"][0]) if e["loc"] else ""
        if name in SUBJECT:
            out[name] = ("Isian tidak valid: " + e["msg"], e["msg"])
    return out or {"values": ("Isian tidak valid.", "Some input is invalid.")}


@router.post("/{kind}")
async def enter(request: Request, kind: str, person: Person = Depends(evaluator_only)) -> Response:
    form = {k: str(v).strip() for k, v in (await request.form()).items()}
    subject = await _registered(request, person, {k: form.get(k, "") for k in SUBJECT})
    values, errors = parse_values(track(kind), form)
    try:
        cmd = _command(request, person, kind, subject, values)
    except ValidationError as exc:
        errors = _invalid(exc) | errors
    if errors:
        return await _track_page(request, person, kind, 400, values=form, errors=errors)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/evaluator/{kind}/{cmd.subject_code}?notice=entered"})
    return await _track_page(request, person, kind, 409, values=form, errors=_refused(kind, reply), error=refusal(reply))


def _refused(kind: str, reply: Reply) -> dict[str, tuple[str, str]]:
    """A refusal shown next to its field: the sheet's value it names, else the form's values."""
    error = refusal(reply)
    assert reply.error is not None
    if error.field != "values":
        return {}
    field = refused_field(track(kind), reply.error.message, reply.error.details) or "values"
    details = reply.error.details if isinstance(reply.error.details, dict) else {}
    if field != "values" and details.get("max") is not None:  # the rubric's range, as the service names it
        top = f"{float(details['max']):g}"
        return {field: (f"Nilai harus antara 0 dan {top} menurut rubrik.", f"The value must be between 0 and {top} by the rubric.")}
    return {field: (error.id, error.en)}


# --------------------------------------------------------------------------- JSON API


@api.get("/{kind}")
async def api_sheets(request: Request, kind: str, person: Person = Depends(evaluator_only)) -> Any:
    """The year's sheets of a track (the envelope of verification's reply)."""
    return (await _sheets(request, person, kind)).model_dump()


@api.post("/{kind}")
async def api_enter(request: Request, kind: str, sheet: dict[str, Any] = Body(...), person: Person = Depends(evaluator_only)) -> Any:
    """Enter or correct a sheet: ``{"subject_code", "subject_name", "subject_kind", "values": {key: number}, "note"}``."""
    try:
        cmd = EnterEvaluation(
            request_id=request_id("evaluation"), cycle_year=year(request), kind=track(kind), evaluator_id=person.subject_id,
            **{k: sheet.get(k) for k in ("subject_code", "subject_name", "subject_kind", "values", "note") if sheet.get(k) is not None},
        )  # fmt: skip
    except ValidationError as exc:
        return Reply.failure("validation_error", "invalid sheet", exc.errors(include_url=False, include_context=False, include_input=False)).model_dump()
    return (await gateway(request).send(cmd, person.actor())).model_dump()

