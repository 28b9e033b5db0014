"""The submit form a unit's proposal and a work-culture group's risalah share: its fields, its PDF
uploads into the cycle's Object Store bucket (recorded as ``nats-os://`` references), the
refusals shown next to their fields with the input kept. Who submits (``unit_code`` or
``group_code``) comes from the session, in the command the caller's ``make`` builds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from contracts.base import Command
from contracts.registration import GetProposal
from services.portal.accounts import Person
from services.portal.documents import KIND, DocumentRefused, Documents, StoredDocument, check_pdf, parse_uri
from services.portal.messages import Refusal, refusal
from services.portal.web import gateway, render, year

FIELDS = ("title", "group", "category", "summary", "problem", "solution", "impact", "started_on", "document_uri", "contact_name", "contact_email", "replicates")


@dataclass(frozen=True)
class FormKind:
    """What differs between the two forms: where they live, and what the form calls things."""

    home: str  # the list page, e.g. /unit
    risalah: bool = False  # a KBK risalah: no innovation group (always umum), a cluster, no replication


UNIT_FORM = FormKind("/unit")
RISALAH_FORM = FormKind("/kbk", risalah=True)


async def own_filing(request: Request, person: Person, kind: FormKind, proposal_id: str) -> dict[str, Any]:
    """The person's own proposal (a unit's) or risalah (a group's); another's answers as if there
    were none."""
    owner, missing = ("group_code", "Risalah tidak ditemukan / no such risalah of your group") if kind.risalah else (
        "unit_code",
        "Proposal tidak ditemukan / no such proposal of your unit",
    )
    reply = await gateway(request).send(GetProposal(proposal_id=proposal_id), person.actor())
    if not reply.ok or reply.data.get(owner) != person.subject_id:
        raise HTTPException(404, missing)
    return reply.data  # type: ignore[no-any-return]


def documents(request: Request) -> Documents:
    return request.app.state.documents  # type: ignore[no-any-return]


def render_form(request: Request, kind: FormKind, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("error", None)
    context.setdefault("attached", [])
    context.setdefault("proposal_id", None)
    max_mb = request.app.state.portal.document_max_mb
    return render(request, "unit/new.html", status_code=status_code, max_mb=f"{max_mb:g}", form=kind, **context)


async def edit_values(request: Request, person: Person, p: dict[str, Any]) -> tuple[dict[str, str], list[StoredDocument]]:
    """A returned proposal's content as the form's values, and its PDFs the submitter uploaded."""
    c = p["content"]
    refs = c.get("documents", [])
    link = next((d["uri"] for d in refs if d["kind"] == "proposal" and parse_uri(d["uri"]) is None), "")
    attached = await documents(request).uploaded_by(person.subject_id, [d["uri"] for d in refs if parse_uri(d["uri"])])
    values = {**{k: str(c.get(k) or "") for k in FIELDS}, "document_uri": link, "contact_name": c["contact"]["name"], "contact_email": c["contact"]["email"]}
    return values, attached


def field_errors(exc: ValidationError) -> dict[str, tuple[str, str]]:
    names = {"contact": "contact_email", "documents": "document_uri"}
    out: dict[str, tuple[str, str]] = {}
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        key = loc[1] if len(loc) > 1 and loc[0] == "content" else (loc[0] if loc else "")
        if key == "contact" and len(loc) > 2:
            key = f"contact_{loc[2]}"
        out[names.get(key, key)] = ("Isian tidak valid: " + e["msg"], e["msg"])
    return out


async def _documents(request: Request, person: Person, form: Any) -> tuple[list[StoredDocument], tuple[str, str] | None]:
    """The PDFs the form attaches: those kept from an earlier try (only the submitter's own
    uploads) and the newly uploaded files, each checked and stored; the first refusal, if any."""
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


def content_of(values: dict[str, str], attached: list[StoredDocument], kind: FormKind) -> dict[str, Any]:
    refs = [{"kind": KIND, "uri": d.uri} for d in attached]
    content: dict[str, Any] = {k: values[k] for k in ("title", "group", "category", "summary", "problem", "solution", "impact", "started_on")}
    content["documents"] = refs + ([{"kind": KIND, "uri": values["document_uri"]}] if values["document_uri"] else [])
    content["contact"] = {"name": values["contact_name"], "email": values["contact_email"]}
    if kind.risalah:
        content["group"] = "umum"
    elif values["replicates"]:
        content["replicates"] = values["replicates"]
    return content


async def submit(request: Request, person: Person, kind: FormKind, proposal_id: str | None, make: Callable[[dict[str, Any]], Command]) -> Response:
    """Send the form as ``make(content)`` builds it: to the list page when it is accepted, else the
    form again with every refusal next to its field."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    attached, refused = await _documents(request, person, form)
    error: Refusal | None = None
    errors: dict[str, tuple[str, str]] = {}
    try:
        cmd = make(content_of(values, attached, kind))
    except ValidationError as exc:
        errors = field_errors(exc)
    if refused:  # a refused file: nothing is sent; the rest of the form (and the kept PDFs) stays
        errors["documents"] = refused
    elif not errors:
        reply = await gateway(request).send(cmd, person.actor())
        if reply.ok:
            return Response(status_code=303, headers={"location": f"{kind.home}?notice=submitted:{reply.data['id']}"})
        error = refusal(reply)
        if error.field:
            errors[error.field] = (error.id, error.en)
    return render_form(request, kind, status_code=409 if error else 400, values=values, errors=errors, error=error, proposal_id=proposal_id, attached=attached)
