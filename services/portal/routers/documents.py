"""A proposal's documents, for the people who may see the proposal: its unit, its agency's admin,
a verifier while it is under verification, a juror it is assigned to, and the operator. Anyone
else gets the same "not found" as for a proposal that does not exist, so nothing leaks.

The PDFs come from the cycle's Object Store bucket through the portal's NATS identity; who may
read them is decided here, from the same commands the pages use, as the person."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from starlette.responses import Response

from contracts.registration import GetProposal
from contracts.scoring import JurorAssignments
from contracts.verification import GetDecision
from services.portal.accounts import Person, Role
from services.portal.documents import Documents, parse_uri
from services.portal.web import gateway, render, require_role, year

router = APIRouter(prefix="/proposals", tags=["documents"], include_in_schema=False)
api = APIRouter(prefix="/api/proposals", tags=["documents"])
anyone_signed_in = require_role(*Role)
NOT_FOUND = "Dokumen tidak ditemukan / no such document you may see"


async def _assigned(request: Request, person: Person, proposal_id: str) -> bool:
    reply = await gateway(request).send(
        JurorAssignments(cycle_year=year(request), juror_id=person.subject_id), person.actor()
    )
    if not reply.ok:
        return False
    return any(
        a["proposal_id"] == proposal_id for s in reply.data.get("stages", []) for a in s["assignments"]
    )


async def visible_proposal(request: Request, person: Person, proposal_id: str) -> dict[str, Any]:
    """The proposal if ``person`` may see it (and so its documents), else 404."""
    g = gateway(request)
    if person.role == Role.JUROR:
        # Registration does not let a juror read a proposal (it names its contact person); the
        # portal reads it as itself once scoring confirms the assignment, and shows only the
        # title and the documents.
        if not await _assigned(request, person, proposal_id):
            raise HTTPException(404, NOT_FOUND)
        reply = await g.send(GetProposal(proposal_id=proposal_id))
    else:
        reply = await g.send(GetProposal(proposal_id=proposal_id), person.actor())
    if not reply.ok:
        raise HTTPException(503 if reply.error and reply.error.code == "unavailable" else 404, NOT_FOUND)
    p: dict[str, Any] = reply.data
    rules: dict[Role, Callable[[], bool | None]] = {
        Role.UNIT: lambda: p["unit_code"] == person.subject_id,
        Role.AGENCY: lambda: p["agency_code"] == person.subject_id,
        Role.OPERATOR: lambda: True,
        Role.JUROR: lambda: True,  # checked above
        Role.VERIFIER: lambda: None,
        Role.KBK_GROUP: lambda: p.get("group_code") == person.subject_id,
        Role.EVALUATOR: lambda: False,
        Role.REVIEWER: lambda: False,
    }
    allowed = rules[person.role]()
    if allowed is None:  # a verifier: while verification holds a decision on it
        decision = await g.send(
            GetDecision(cycle_year=p["cycle_year"], proposal_id=proposal_id), person.actor()
        )
        allowed = decision.ok
    if not allowed:
        raise HTTPException(404, NOT_FOUND)
    return p


def _documents(request: Request) -> Documents:
    return request.app.state.documents  # type: ignore[no-any-return]


async def _listing(request: Request, p: dict[str, Any]) -> list[dict[str, Any]]:
    refs = p["content"].get("documents", [])
    known = await _documents(request).described([d["uri"] for d in refs if parse_uri(d["uri"])])
    out = []
    for d in refs:
        parsed = parse_uri(d["uri"])
        if parsed is None:
            out.append(
                {"kind": d["kind"], "uri": d["uri"], "stored": False, "href": d["uri"], "filename": d["uri"]}
            )
            continue
        info = known.get(d["uri"])
        out.append({
            "kind": d["kind"], "uri": d["uri"], "stored": True, "href": f"/proposals/{p['id']}/documents/{parsed[1]}",
            "filename": info.filename if info else parsed[1], "size": info.size if info else None, "sha256": parsed[1][7:-4],
        })  # fmt: skip
    return out


@router.get("/{proposal_id}/documents")
async def documents_page(
    request: Request, proposal_id: str, person: Person = Depends(anyone_signed_in)
) -> Response:
    p = await visible_proposal(request, person, proposal_id)
    return render(request, "documents.html", proposal=p, documents=await _listing(request, p))


@router.get("/{proposal_id}/documents/{name}")
async def download(
    request: Request, proposal_id: str, name: str, person: Person = Depends(anyone_signed_in)
) -> Response:
    """The PDF itself, only if the proposal records it and ``person`` may see the proposal."""
    p = await visible_proposal(request, person, proposal_id)
    uri = next(
        (d["uri"] for d in p["content"].get("documents", []) if (parse_uri(d["uri"]) or ("", ""))[1] == name),
        None,
    )
    if uri is None:
        raise HTTPException(404, NOT_FOUND)
    try:
        data = await _documents(request).read(uri)
    except (ObjectNotFoundError, BucketNotFoundError, NotFoundError):
        raise HTTPException(404, NOT_FOUND) from None
    described = (await _documents(request).described([uri])).get(uri)
    filename = described.filename if described else name
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@api.get("/{proposal_id}/documents")
async def api_documents(
    request: Request, proposal_id: str, person: Person = Depends(anyone_signed_in)
) -> Any:
    """A proposal's documents (file name, size, sha256, download path) for one who may see it."""
    p = await visible_proposal(request, person, proposal_id)
    return {"proposal_id": proposal_id, "documents": await _listing(request, p)}
