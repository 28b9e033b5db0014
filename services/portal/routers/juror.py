"""The juror's pages: their own assignments only, and a scoring form per proposal showing each
criterion's scale and weight. A score is the juror's ``submit_score`` (revisable until the stage
closes); a conflict of interest declared on the same page (``declare_conflict``, with a reason)
gives the assignment back. The juror id comes from the session, never from the form."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.base import Reply
from contracts.scoring import DeclareConflict, JurorAssignments, SubmitScore
from services.portal.accounts import Person, Role
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/juror", tags=["juror"], include_in_schema=False)
api = APIRouter(prefix="/api/juror", tags=["juror"])
juror_only = require_role(Role.JUROR)


async def assignments(request: Request, person: Person, stage: str | None = None) -> Reply:
    cmd = JurorAssignments(cycle_year=year(request), juror_id=person.subject_id, stage=stage)
    return await gateway(request).send(cmd, person.actor())


def _find(view: dict[str, Any], stage: str, proposal_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for s in view.get("stages", []):
        if s["stage"] == stage:
            for a in s["assignments"]:
                if a["proposal_id"] == proposal_id:
                    return s, a
    return None


@router.get("")
async def juror_home(request: Request, person: Person = Depends(juror_only)) -> Response:
    reply = await assignments(request, person)
    notice = request.query_params.get("notice", "")
    moved = notice[len("conflict:") :] if notice.startswith("conflict:") else None
    return render(request, "juror/assignments.html", view=reply.data if reply.ok else None, error=None if reply.ok else refusal(reply), conflict_declared=moved)


async def _form(request: Request, person: Person, stage: str, proposal_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    reply = await assignments(request, person, stage)
    if not reply.ok:
        r = refusal(reply)
        raise HTTPException(503 if reply.error and reply.error.code == "unavailable" else 400, f"{r.id} / {r.en}")
    found = _find(reply.data, stage, proposal_id)
    if found is None:
        # Not theirs (or no such assignment): the same answer either way, so nothing leaks.
        raise HTTPException(404, "Penugasan tidak ditemukan / no such assignment of yours")
    return found


@router.get("/{stage}/{proposal_id}")
async def score_form(request: Request, stage: str, proposal_id: str, person: Person = Depends(juror_only)) -> Response:
    st, a = await _form(request, person, stage, proposal_id)
    values = {k: _show(v) for k, v in (a.get("scores") or {}).items()}
    return render(request, "juror/score.html", stage=st, a=a, values=values, comment=a.get("comment") or "", errors={}, error=None, saved=request.query_params.get("saved") == "1", conflict_reason="", conflict_error=None)


def _show(value: float) -> str:
    return f"{value:g}"


@router.post("/{stage}/{proposal_id}")
async def score_submit(request: Request, stage: str, proposal_id: str, person: Person = Depends(juror_only)) -> Response:
    st, a = await _form(request, person, stage, proposal_id)
    form = await request.form()
    values = {c["key"]: str(form.get(f"score__{c['key']}", "")).strip() for c in st["criteria"]}
    comment = str(form.get("comment", "")).strip()
    errors: dict[str, tuple[str, str]] = {}
    marks: dict[str, float] = {}
    for c in st["criteria"]:
        raw = values[c["key"]].replace(",", ".")
        try:
            mark = float(raw)
        except ValueError:
            errors[c["key"]] = ("Isi dengan angka.", "Enter a number.")
            continue
        if not c["scale_min"] <= mark <= c["scale_max"]:
            errors[c["key"]] = (f"Nilai harus antara {c['scale_min']:g} dan {c['scale_max']:g}.", f"Must be between {c['scale_min']:g} and {c['scale_max']:g}.")
        marks[c["key"]] = mark
    error: Refusal | None = None
    if not errors:
        reply = await send_score(request, person, stage, proposal_id, marks, comment or None)
        if reply.ok:
            return Response(status_code=303, headers={"location": f"/juror/{stage}/{proposal_id}?saved=1"})
        error = refusal(reply)
    return render(request, "juror/score.html", status_code=400 if errors else 409, stage=st, a=a, values=values, comment=comment, errors=errors, error=error, saved=False, conflict_reason="", conflict_error=None)


@router.post("/{stage}/{proposal_id}/conflict")
async def conflict_submit(request: Request, stage: str, proposal_id: str, reason: str = Form(""), person: Person = Depends(juror_only)) -> Response:
    """Declare a conflict of interest with this assignment (the reason required): scoring gives
    it to another conflict-free juror of the pool. A refusal shows next to the reason, kept."""
    st, a = await _form(request, person, stage, proposal_id)
    reason = reason.strip()
    reply = await send_conflict(request, person, stage, proposal_id, reason)
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/juror?notice=conflict:{proposal_id}"})
    error = refusal(reply)
    if reply.error and reply.error.code == "validation_error":
        error = Refusal("Tuliskan alasan konflik kepentingan (minimal 3 karakter).", "Give the reason for the conflict of interest (at least 3 characters).", "reason")
    elif reply.error and reply.error.code == "unavailable":
        error = Refusal("Layanan penilaian belum tersedia untuk pernyataan konflik kepentingan; coba lagi nanti.", "The scoring service does not take conflict declarations yet; try again later.", None, error.detail)
    values = {k: _show(v) for k, v in (a.get("scores") or {}).items()}
    return render(request, "juror/score.html", status_code=400 if error.field else 409, stage=st, a=a, values=values, comment=a.get("comment") or "", errors={}, error=None, saved=False, conflict_reason=reason, conflict_error=error)


async def send_conflict(request: Request, person: Person, stage: str, proposal_id: str, reason: str) -> Reply:
    try:
        cmd = DeclareConflict(
            request_id=request_id("conflict"),
            cycle_year=year(request),
            stage=stage,
            juror_id=person.subject_id,  # the session's juror, never a form field
            proposal_id=proposal_id,
            reason=reason,
        )
    except ValidationError as exc:
        return Reply.failure("validation_error", str(exc))
    return await gateway(request).send(cmd, person.actor())


async def send_score(request: Request, person: Person, stage: str, proposal_id: str, marks: dict[str, float], comment: str | None) -> Reply:
    try:
        cmd = SubmitScore(
            request_id=request_id("score"),
            cycle_year=year(request),
            stage=stage,
            juror_id=person.subject_id,  # the session's juror, never a form field
            proposal_id=proposal_id,
            scores=marks,
            comment=comment,
        )
    except ValidationError as exc:
        return Reply.failure("validation_error", str(exc))
    return await gateway(request).send(cmd, person.actor())


# --------------------------------------------------------------------------- JSON API


@api.get("/assignments")
async def api_assignments(request: Request, person: Person = Depends(juror_only)) -> Any:
    """The signed-in juror's assignments, stage by stage, with each stage's criteria."""
    return (await assignments(request, person)).model_dump()


@api.post("/conflicts/{stage}/{proposal_id}")
async def api_conflict(request: Request, stage: str, proposal_id: str, body: dict[str, Any], person: Person = Depends(juror_only)) -> Any:
    """Declare a conflict of interest with an assignment: ``{"reason": …}``; the envelope of the
    scoring service's reply (the replacement juror, if one was free)."""
    reason = body.get("reason")
    return (await send_conflict(request, person, stage, proposal_id, reason if isinstance(reason, str) else "")).model_dump()


@api.post("/scores/{stage}/{proposal_id}")
async def api_score(request: Request, stage: str, proposal_id: str, body: dict[str, Any], person: Person = Depends(juror_only)) -> Any:
    """Score (or revise) an assignment: ``{"scores": {criterion: mark}, "comment": …}``; the
    envelope of the scoring service's reply."""
    marks = body.get("scores")
    if not isinstance(marks, dict):
        return Reply.failure("validation_error", "scores: an object of criterion → mark").model_dump()
    comment = body.get("comment")
    return (await send_score(request, person, stage, proposal_id, marks, comment if isinstance(comment, str) else None)).model_dump()
