"""The unit's pages: its proposals with their status per level, and the form to submit one
(``submit_proposal``, the unit code from the session) with its PDF documents, uploaded into the
cycle's Object Store bucket and recorded in the proposal as ``nats-os://`` references."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from contracts.registration import ListProposals, SubmitProposal, WithdrawProposal
from services.portal.accounts import Person, Role
from services.portal.gateway import request_id
from services.portal.messages import refusal
from services.portal.proposal_form import FIELDS, UNIT_FORM, edit_values, own_filing, render_form
from services.portal.proposal_form import submit as submit_form
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/unit", tags=["unit"], include_in_schema=False)
api = APIRouter(prefix="/api/unit", tags=["unit"])
unit_only = require_role(Role.UNIT)


async def _list(request: Request, person: Person) -> Any:
    reply = await gateway(request).send(ListProposals(cycle_year=year(request), unit_code=person.subject_id), person.actor())
    return reply


@router.get("")
async def unit_home(request: Request, person: Person = Depends(unit_only)) -> Response:
    reply = await _list(request, person)
    return render(request, "unit/proposals.html", page=reply.data if reply.ok else None, error=None if reply.ok else refusal(reply), notice=request.query_params.get("notice"))


@router.get("/new")
async def new_form(request: Request, person: Person = Depends(unit_only)) -> Response:
    return render_form(request, UNIT_FORM, values=dict.fromkeys(FIELDS, ""))


@router.get("/proposals/{proposal_id}/edit")
async def edit_form(request: Request, proposal_id: str, person: Person = Depends(unit_only)) -> Response:
    """A returned proposal, to revise and resubmit."""
    p = await own_filing(request, person, UNIT_FORM, proposal_id)
    values, attached = await edit_values(request, person, p)
    return render_form(request, UNIT_FORM, values=values, attached=attached, proposal_id=proposal_id, returned_reason=p.get("returned_reason"))


def _maker(request: Request, person: Person, proposal_id: str | None) -> Any:
    def make(content: dict[str, Any]) -> SubmitProposal:
        return SubmitProposal(request_id=request_id("submit"), cycle_year=year(request), unit_code=person.subject_id, proposal_id=proposal_id, content=content)

    return make


@router.post("/new")
async def submit(request: Request, person: Person = Depends(unit_only)) -> Response:
    return await submit_form(request, person, UNIT_FORM, None, _maker(request, person, None))


@router.post("/proposals/{proposal_id}/edit")
async def resubmit(request: Request, proposal_id: str, person: Person = Depends(unit_only)) -> Response:
    await own_filing(request, person, UNIT_FORM, proposal_id)
    return await submit_form(request, person, UNIT_FORM, proposal_id, _maker(request, person, proposal_id))


@router.post("/proposals/{proposal_id}/withdraw")
async def withdraw(request: Request, proposal_id: str, person: Person = Depends(unit_only)) -> Response:
    cmd = WithdrawProposal(request_id=request_id("withdraw"), cycle_year=year(request), unit_code=person.subject_id, proposal_id=proposal_id)
    reply = await gateway(request).send(cmd, person.actor())
    if reply.ok:
        return Response(status_code=303, headers={"location": f"/unit?notice=withdrawn:{proposal_id}"})
    listing = await _list(request, person)
    return render(request, "unit/proposals.html", status_code=409, page=listing.data if listing.ok else None, error=refusal(reply), notice=None)


@api.get("/proposals")
async def api_proposals(request: Request, person: Person = Depends(unit_only)) -> Any:
    """The unit's proposals with their status per level."""
    return (await _list(request, person)).model_dump()
