"""The verifier's pages: the results waiting for a verifier; confirm or override one with a
reason (``override_decision``, the verifier id from the session)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.verification import GetDecision, OverrideDecision, VerificationStatus
from services.portal.accounts import Person, Role
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/verifier", tags=["verifier"], include_in_schema=False)
api = APIRouter(prefix="/api/verifier", tags=["verifier"])
verifier_only = require_role(Role.VERIFIER)
PAGE = 50
"""Pending results shown at once, each with its automatic decision and reasons."""


async def _page(request: Request, person: Person, status_code: int = 200, error: Refusal | None = None, failed: str | None = None, reason: str = "") -> Response:
    g = gateway(request)
    reply = await g.send(VerificationStatus(cycle_year=year(request), list_pending=True), person.actor())
    decisions = {}
    for pid in ((reply.data or {}).get("pending_ids") or [])[:PAGE] if reply.ok else []:
        d = await g.send(GetDecision(cycle_year=year(request), proposal_id=pid), person.actor())
        if d.ok:
            decisions[pid] = d.data
    return render(
        request,
        "verifier/pending.html",
        status_code=status_code,
        status=reply.data if reply.ok else None,
        decisions=decisions,
        error=error or (None if reply.ok else refusal(reply)),
        failed=failed,
        reason=reason,
        notice=request.query_params.get("notice"),
    )


@router.get("")
async def verifier_home(request: Request, person: Person = Depends(verifier_only)) -> Response:
    return await _page(request, person)


@router.post("/{proposal_id}/decide")
async def decide(request: Request, proposal_id: str, decision: str = Form(""), reason: str = Form(""), person: Person = Depends(verifier_only)) -> Response:
    try:
        cmd = OverrideDecision(
            request_id=request_id("override"), cycle_year=year(request), proposal_id=proposal_id,
            decision=decision, reason=reason, verifier_id=person.subject_id,
        )
    except ValidationError:
        error = Refusal("Pilih keputusan dan tuliskan alasannya (minimal 3 karakter).", "Choose a decision and give its reason (at least 3 characters).", "reason")
        return await _page(request, person, 400, error, failed=proposal_id, reason=reason)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/verifier?notice={decision}:{proposal_id}"})
    return await _page(request, person, 409, refusal(reply), failed=proposal_id, reason=reason)


@api.get("/pending")
async def api_pending(request: Request, person: Person = Depends(verifier_only)) -> Any:
    """The verification counts with the proposals waiting for a verifier."""
    cmd = VerificationStatus(cycle_year=year(request), list_pending=True)
    return (await gateway(request).send(cmd, person.actor())).model_dump()
