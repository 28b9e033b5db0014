"""The reviewer's page: every track's entered sheets waiting for review, each with what the
service computed; approve one, or return it to its evaluator with a reason
(``review_evaluation``, the reviewer id from the session). A reviewer never approves a sheet they
entered: the service refuses it (``own_sheet``), and the page says so beside that sheet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.base import Reply
from contracts.verification import ListEvaluations, ReviewEvaluation
from services.portal.accounts import Person, Role
from services.portal.evaluations import STATE_ID, TRACKS, track
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/reviewer", tags=["reviewer"], include_in_schema=False)
api = APIRouter(prefix="/api/reviewer", tags=["reviewer"])
reviewer_only = require_role(Role.REVIEWER)


async def _pending(request: Request, person: Person) -> tuple[dict[str, list[dict[str, Any]]], Reply | None]:
    """Each track's sheets waiting for review, and the first failed reply (if a track did not answer)."""
    out: dict[str, list[dict[str, Any]]] = {}
    failed: Reply | None = None
    for kind in TRACKS:
        reply = await gateway(request).send(ListEvaluations(cycle_year=year(request), kind=kind, state="entered", limit=1000), person.actor())
        out[kind.value] = reply.data["items"] if reply.ok else []
        failed = failed or (None if reply.ok else reply)
    return out, failed


async def _page(request: Request, person: Person, status_code: int = 200, error: Refusal | None = None, failed: str | None = None, reason: str = "") -> Response:
    pending, unanswered = await _pending(request, person)
    rows = {f"{kind}-{ev['subject_code']}" for kind, sheets in pending.items() for ev in sheets}
    return render(
        request, "reviewer/pending.html", status_code=status_code, tracks=TRACKS, pending=pending, state_id=STATE_ID,
        error=error, unavailable=refusal(unanswered) if unanswered else None, failed=failed, reason=reason,
        failed_shown=failed in rows, notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.get("")
async def reviewer_home(request: Request, person: Person = Depends(reviewer_only)) -> Response:
    return await _page(request, person)


def _command(request: Request, person: Person, kind: str, subject_code: str, decision: str, reason: str) -> ReviewEvaluation:
    if decision not in ("approve", "return"):
        raise ValueError(decision)
    return ReviewEvaluation(
        request_id=request_id("review"), cycle_year=year(request), kind=track(kind), subject_code=subject_code,
        approve=decision == "approve", reason=reason or None, reviewer_id=person.subject_id,
    )  # fmt: skip


@router.post("/{kind}/{subject_code}/review")
async def review(request: Request, kind: str, subject_code: str, decision: str = Form(""), reason: str = Form(""), person: Person = Depends(reviewer_only)) -> Response:
    row = f"{kind}-{subject_code}"
    try:
        cmd = _command(request, person, kind, subject_code, decision, reason.strip())
        if not cmd.approve and cmd.reason is None:
            raise ValueError("a return needs its reason")
    except (ValidationError, ValueError):
        error = Refusal("Pilih setujui atau kembalikan; pengembalian perlu alasan (minimal 3 karakter).", "Approve or return; a return needs its reason (at least 3 characters).", "reason")
        return await _page(request, person, 400, error, failed=row, reason=reason)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/reviewer?notice={'approved' if cmd.approve else 'returned'}:{row}"})
    return await _page(request, person, 409, refusal(reply), failed=row, reason=reason)


# --------------------------------------------------------------------------- JSON API


@api.get("/pending")
async def api_pending(request: Request, person: Person = Depends(reviewer_only)) -> Any:
    """Every track's sheets waiting for review: ``{"sakip": [...], "rb": [...], "cettar": [...]}``."""
    pending, failed = await _pending(request, person)
    return failed.model_dump() if failed else Reply.success(pending).model_dump()


@api.post("/{kind}/{subject_code}")
async def api_review(request: Request, kind: str, subject_code: str, body: dict[str, Any] = Body(...), person: Person = Depends(reviewer_only)) -> Any:
    """Approve (``{"approve": true}``) or return (``{"approve": false, "reason": …}``) a sheet."""
    try:
        cmd = _command(request, person, kind, subject_code, "approve" if body.get("approve") is True else "return", str(body.get("reason") or ""))
    except ValidationError as exc:
        return Reply.failure("validation_error", "invalid review", exc.errors(include_url=False, include_context=False, include_input=False)).model_dump()
    return (await gateway(request).send(cmd, person.actor())).model_dump()
