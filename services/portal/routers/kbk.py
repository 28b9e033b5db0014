"""The work-culture group's (KBK) pages: its risalah with their status per level, and the form to
submit one, or resubmit a returned one, with its PDF (``submit_risalah``, the group code from the
session); the same form and document upload as a unit's proposal."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from contracts.base import Competition
from contracts.registration import GetCall, ListProposals, SubmitRisalah
from services.portal.accounts import Person, Role
from services.portal.gateway import request_id
from services.portal.messages import refusal
from services.portal.proposal_form import FIELDS, RISALAH_FORM, edit_values, own_filing, render_form, submit
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/kbk", tags=["kbk"], include_in_schema=False)
api = APIRouter(prefix="/api/kbk", tags=["kbk"])
group_only = require_role(Role.KBK_GROUP)


async def _list(request: Request, person: Person) -> Any:
    cmd = ListProposals(cycle_year=year(request), track=Competition.KBK, group_code=person.subject_id)
    return await gateway(request).send(cmd, person.actor())


@router.get("")
async def group_home(request: Request, person: Person = Depends(group_only)) -> Response:
    reply = await _list(request, person)
    call = await gateway(request).send(GetCall(cycle_year=year(request), track=Competition.KBK), person.actor())
    return render(
        request, "kbk/risalah.html", page=reply.data if reply.ok else None, call=call.data if call.ok else None,
        error=None if reply.ok else refusal(reply), notice=request.query_params.get("notice"),
    )  # fmt: skip


@router.get("/new")
async def new_form(request: Request, person: Person = Depends(group_only)) -> Response:
    return render_form(request, RISALAH_FORM, values=dict.fromkeys(FIELDS, ""))


@router.get("/risalah/{proposal_id}/edit")
async def edit_form(request: Request, proposal_id: str, person: Person = Depends(group_only)) -> Response:
    """A returned risalah, to revise and resubmit."""
    p = await own_filing(request, person, RISALAH_FORM, proposal_id)
    values, attached = await edit_values(request, person, p)
    return render_form(request, RISALAH_FORM, values=values, attached=attached, proposal_id=proposal_id, returned_reason=p.get("returned_reason"))


def _maker(request: Request, person: Person, proposal_id: str | None) -> Any:
    def make(content: dict[str, Any]) -> SubmitRisalah:
        return SubmitRisalah(request_id=request_id("risalah"), cycle_year=year(request), group_code=person.subject_id, proposal_id=proposal_id, content=content)

    return make


@router.post("/new")
async def submit_new(request: Request, person: Person = Depends(group_only)) -> Response:
    return await submit(request, person, RISALAH_FORM, None, _maker(request, person, None))


@router.post("/risalah/{proposal_id}/edit")
async def resubmit(request: Request, proposal_id: str, person: Person = Depends(group_only)) -> Response:
    await own_filing(request, person, RISALAH_FORM, proposal_id)
    return await submit(request, person, RISALAH_FORM, proposal_id, _maker(request, person, proposal_id))


@api.get("/risalah")
async def api_risalah(request: Request, person: Person = Depends(group_only)) -> Any:
    """The group's risalah with their status per level."""
    return (await _list(request, person)).model_dump()
