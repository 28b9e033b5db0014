"""The unit's pages: its proposals with their status per level, and the form to submit one
(``submit_proposal``, the unit code from the session) with its PDF documents, uploaded into the
cycle's Object Store bucket and recorded in the proposal as ``nats-os://`` references."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import Response

from contracts.registration import GetProposal, ListProposals, SubmitProposal, WithdrawProposal
from services.portal.accounts import Person, Role
from services.portal.documents import KIND, DocumentRefused, Documents, StoredDocument, check_pdf, parse_uri
from services.portal.gateway import request_id
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/unit", tags=["unit"], include_in_schema=False)
api = APIRouter(prefix="/api/unit", tags=["unit"])
unit_only = require_role(Role.UNIT)

FIELDS = ("title", "group", "category", "summary", "problem", "solution", "impact", "started_on", "document_uri", "contact_name", "contact_email")


async def _list(request: Request, person: Person) -> Any:
    reply = await gateway(request).send(ListProposals(cycle_year=year(request), unit_code=person.subject_id), person.actor())
    return reply


@router.get("")
async def unit_home(request: Request, person: Person = Depends(unit_only)) -> Response:
    reply = await _list(request, person)
    return render(request, "unit/proposals.html", page=reply.data if reply.ok else None, error=None if reply.ok else refusal(reply), notice=request.query_params.get("notice"))


def documents(request: Request) -> Documents:
    return request.app.state.documents  # type: ignore[no-any-return]


def _form(request: Request, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("error", None)
    context.setdefault("attached", [])
    context.setdefault("proposal_id", None)
    max_mb = request.app.state.portal.document_max_mb
    return render(request, "unit/new.html", status_code=status_code, max_mb=f"{max_mb:g}", **context)


@router.get("/new")
async def new_form(request: Request, person: Person = Depends(unit_only)) -> Response:
    return _form(request, values=dict.fromkeys(FIELDS, ""))


async def _own(request: Request, person: Person, proposal_id: str) -> dict[str, Any]:
    """The unit's own proposal (another unit's answers as if there were none)."""
    reply = await gateway(request).send(GetProposal(proposal_id=proposal_id), person.actor())
    if not reply.ok or reply.data["unit_code"] != person.subject_id:
        raise HTTPException(404, "Proposal tidak ditemukan / no such proposal of your unit")
    return reply.data  # type: ignore[no-any-return]


@router.get("/proposals/{proposal_id}/edit")
async def edit_form(request: Request, proposal_id: str, person: Person = Depends(unit_only)) -> Response:
    """A returned proposal, to revise and resubmit."""
    p = await _own(request, person, proposal_id)
    c = p["content"]
    refs = c.get("documents", [])
    link = next((d["uri"] for d in refs if d["kind"] == "proposal" and parse_uri(d["uri"]) is None), "")
    attached = await documents(request).uploaded_by(person.subject_id, [d["uri"] for d in refs if parse_uri(d["uri"])])
    values = {**{k: str(c.get(k) or "") for k in FIELDS}, "document_uri": link, "contact_name": c["contact"]["name"], "contact_email": c["contact"]["email"]}
    return _form(request, values=values, attached=attached, proposal_id=proposal_id, returned_reason=p.get("returned_reason"))


def _field_errors(exc: ValidationError) -> dict[str, tuple[str, str]]:
    names = {"contact": "contact_email", "documents": "document_uri"}
    out: dict[str, tuple[str, str]] = {}
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        key = loc[1] if len(loc) > 1 and loc[0] == "content" else (loc[0] if loc else "")
        if key == "contact" and len(loc) > 2:
            key = f"contact_{loc[2]}"
        out[names.get(key, key)] = ("Isian tidak valid: " + e["msg"], e["msg"])
    return out


@router.post("/new")
async def submit(request: Request, person: Person = Depends(unit_only)) -> Response:
    return await _submit(request, person, None)


@router.post("/proposals/{proposal_id}/edit")
async def resubmit(request: Request, proposal_id: str, person: Person = Depends(unit_only)) -> Response:
    await _own(request, person, proposal_id)
    return await _submit(request, person, proposal_id)


async def _documents(request: Request, person: Person, form: Any) -> tuple[list[StoredDocument], tuple[str, str] | None]:
    """The PDFs the form attaches: those kept from an earlier try (only this unit's own uploads)
    and the newly uploaded files, each checked and stored; the first refusal, if any."""
    store = documents(request)
    attached = await store.uploaded_by(person.subject_id, [str(v) for v in form.getlist("document_kept")])
    refused: tuple[str, str] | None = None
    for upload in form.getlist("documents"):
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        name = upload.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        try:
            if upload.size is not None and upload.size > store.max_bytes:  # refused before reading it
                check_pdf(name, await upload.read(len(b"%PDF-")), store.max_bytes, size=upload.size)
            attached.append(await store.put(year(request), person.subject_id, name, await upload.read()))
        except DocumentRefused as exc:
            refused = refused or (exc.message_id, exc.message_en)
    return attached, refused


async def _submit(request: Request, person: Person, proposal_id: str | None) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    attached, refused = await _documents(request, person, form)
    refs = [{"kind": KIND, "uri": d.uri} for d in attached]
    content: dict[str, Any] = {
        "title": values["title"],
        "group": values["group"],
        "category": values["category"],
        "summary": values["summary"],
        "problem": values["problem"],
        "solution": values["solution"],
        "impact": values["impact"],
        "started_on": values["started_on"],
        "documents": refs + ([{"kind": KIND, "uri": values["document_uri"]}] if values["document_uri"] else []),
        "contact": {"name": values["contact_name"], "email": values["contact_email"]},
    }
    error: Refusal | None = None
    errors: dict[str, tuple[str, str]] = {}
    try:
        cmd = SubmitProposal(request_id=request_id("submit"), cycle_year=year(request), unit_code=person.subject_id, proposal_id=proposal_id, content=content)
    except ValidationError as exc:
        errors = _field_errors(exc)
    if refused:  # a refused file: nothing is sent; the rest of the form (and the kept PDFs) stays
        errors["documents"] = refused
    elif not errors:
        reply = await gateway(request).send(cmd, person.actor())
        if reply.ok:
            return Response(status_code=303, headers={"location": f"/unit?notice=submitted:{reply.data['id']}"})
        error = refusal(reply)
        if error.field:
            errors[error.field] = (error.id, error.en)
    return _form(request, status_code=409 if error else 400, values=values, errors=errors, error=error, proposal_id=proposal_id, attached=attached)


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
