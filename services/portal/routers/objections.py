"""Uji publik: during a stage's objection window anyone may object to a proposal on its shortlist
(name, contact, reason). Rate-limited per client address, with a hidden trap field that a person
leaves empty and a form-filling robot does not: a spam guard that needs no outside service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from contracts.base import Actor, Role
from contracts.scoring import FileObjection, GetShortlist, ObjectionsStatus
from services.portal.accounts import Person
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import accounts, current_person, gateway, render, year

router = APIRouter(prefix="/objections", tags=["public"], include_in_schema=False)
TRAP = "website"
FIELDS = ("proposal_id", "name", "contact", "reason")
PUBLIC_ACTOR = Actor(id="public", role=Role.PUBLIC)
"""Who files when nobody is signed in: the anonymous public."""


async def open_windows(request: Request) -> list[dict[str, Any]]:
    """The stages whose objection window is open now, each with its shortlist."""
    g = gateway(request)
    now = dt.datetime.now(dt.UTC)
    out = []
    for stage in request.app.state.portal.stage_keys():
        status = await g.send(ObjectionsStatus(cycle_year=year(request), stage=stage))
        until = status.data.get("window_until") if status.ok else None
        if not until or dt.datetime.fromisoformat(until) <= now:
            continue
        shortlist = await g.send(GetShortlist(cycle_year=year(request), stage=stage))
        if shortlist.ok:
            out.append({"stage": stage, "until": until, "shortlist": shortlist.data})
    return out


@router.get("")
async def objections(request: Request, person: Person | None = Depends(current_person)) -> Response:
    return render(request, "objections.html", windows=await open_windows(request), values={}, errors={}, error=None, stage=None, filed=request.query_params.get("filed"))


@router.post("/{stage}")
async def file_objection(request: Request, stage: str, person: Person | None = Depends(current_person)) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    address = request.client.host if request.client else "unknown"
    errors: dict[str, tuple[str, str]] = {}
    error: Refusal | None = None
    portal = request.app.state.portal
    if str(form.get(TRAP, "")).strip():
        error = Refusal("Formulir ini tidak dapat dikirim.", "This form cannot be sent.")
    elif await accounts(request).over_limit((f"objection:{address}",), portal.objections_per_hour, 3600):
        error = Refusal("Terlalu banyak sanggahan dari alamat ini; coba lagi nanti.", "Too many objections from this address; try again later.")
    else:
        if len(values["name"]) < 2:
            errors["name"] = ("Tuliskan nama Anda.", "Give your name.")
        if len(values["contact"]) < 5:
            errors["contact"] = ("Tuliskan email atau nomor telepon.", "Give an email or phone number.")
        if len(values["reason"]) < 10:
            errors["reason"] = ("Jelaskan alasan sanggahan (minimal 10 karakter).", "Explain the objection (at least 10 characters).")
        if not errors:
            filer = f"{values['name']} <{values['contact']}>"[:200]
            try:
                cmd = FileObjection(request_id=request_id("objection"), cycle_year=year(request), stage=stage, proposal_id=values["proposal_id"], filer=filer, reason=values["reason"])
            except ValidationError:
                errors["proposal_id"] = ("Pilih proposal dari daftar.", "Choose a proposal from the list.")
            else:
                reply = await gateway(request).send(cmd, person.actor() if person else PUBLIC_ACTOR)
                if reply.ok:
                    await accounts(request).count_attempt(f"objection:{address}")
                    return Response(status_code=303, headers={"location": f"/objections?filed={reply.data['id']}"})
                error = refusal(reply)
                if error.field:
                    errors[error.field] = (error.id, error.en)
    status = 429 if error and error.en.startswith("Too many") else (409 if error else 400)
    return render(request, "objections.html", status_code=status, windows=await open_windows(request), values=values, errors=errors, error=error, stage=stage, filed=None)
