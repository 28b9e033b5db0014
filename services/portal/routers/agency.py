"""The agency admin's pages: the agency's proposals and its work-culture groups' risalah, with each
competition's quota used and left; forward, or return with a reason (the agency code from the
session)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.base import Competition
from contracts.registration import ForwardProposal, GetCall, ListProposals, ReturnProposal
from services.portal.accounts import Person, Role
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/agency", tags=["agency"], include_in_schema=False)
api = APIRouter(prefix="/api/agency", tags=["agency"])
agency_only = require_role(Role.AGENCY)


def _forwarded(items: list[dict[str, Any]], track: Competition) -> int:
    """Forwarded proposals of one competition: KOVABLIK's and KBK's quotas are counted apart."""
    return sum(1 for p in items if p["status"] == "forwarded" and p.get("track", Competition.KOVABLIK.value) == track.value)


async def _page(request: Request, person: Person, status_code: int = 200, error: Refusal | None = None, failed: str | None = None, reason: str = "") -> Response:
    g = gateway(request)
    listing = await g.send(ListProposals(cycle_year=year(request), agency_code=person.subject_id, limit=1000), person.actor())
    call = await g.send(GetCall(cycle_year=year(request)), person.actor())
    kbk_call = await g.send(GetCall(cycle_year=year(request), track=Competition.KBK), person.actor())
    items = listing.data["items"] if listing.ok else []
    quota = call.data["quota_per_agency"] if call.ok else None
    used = _forwarded(items, Competition.KOVABLIK)
    kbk_quota = kbk_call.data["quota_per_agency"] if kbk_call.ok else None
    kbk_used = _forwarded(items, Competition.KBK)
    return render(
        request,
        "agency/proposals.html",
        status_code=status_code,
        items=items,
        call=call.data if call.ok else None,
        quota=quota,
        used=used,
        left=None if quota is None else max(0, quota - used),
        kbk_quota=kbk_quota,
        kbk_used=kbk_used,
        kbk_left=None if kbk_quota is None else max(0, kbk_quota - kbk_used),
        error=error or (None if listing.ok else refusal(listing)),
        failed=failed,
        reason=reason,
        notice=request.query_params.get("notice"),
    )


@router.get("")
async def agency_home(request: Request, person: Person = Depends(agency_only)) -> Response:
    return await _page(request, person)


@router.post("/proposals/{proposal_id}/forward")
async def forward(request: Request, proposal_id: str, person: Person = Depends(agency_only)) -> Response:
    cmd = ForwardProposal(request_id=request_id("forward"), cycle_year=year(request), agency_code=person.subject_id, proposal_id=proposal_id)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/agency?notice=forwarded:{proposal_id}"})
    return await _page(request, person, 409, refusal(reply), failed=proposal_id)


@router.post("/proposals/{proposal_id}/return")
async def return_(request: Request, proposal_id: str, reason: str = Form(""), person: Person = Depends(agency_only)) -> Response:
    try:
        cmd = ReturnProposal(request_id=request_id("return"), cycle_year=year(request), agency_code=person.subject_id, proposal_id=proposal_id, reason=reason)
    except ValidationError:
        error = Refusal("Tuliskan alasan pengembalian (minimal 3 karakter).", "Give the reason for returning it (at least 3 characters).", "reason")
        return await _page(request, person, 400, error, failed=proposal_id, reason=reason)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/agency?notice=returned:{proposal_id}"})
    return await _page(request, person, 409, refusal(reply), failed=proposal_id, reason=reason)


@api.get("/proposals")
async def api_proposals(request: Request, person: Person = Depends(agency_only)) -> Any:
    """The agency's proposals (the envelope of registration's reply)."""
    cmd = ListProposals(cycle_year=year(request), agency_code=person.subject_id, limit=1000)
    return (await gateway(request).send(cmd, person.actor())).model_dump()


@api.post("/proposals/{proposal_id}/forward")
async def api_forward(request: Request, proposal_id: str, person: Person = Depends(agency_only)) -> Any:
    """Forward a proposal to the secretariat (counts against the quota)."""
    cmd = ForwardProposal(request_id=request_id("forward"), cycle_year=year(request), agency_code=person.subject_id, proposal_id=proposal_id)
    return (await gateway(request).send(cmd, person.actor())).model_dump()
