"""Pages anyone may open: the home page, the certificate check the QR code opens, the results of
every track, and the innovation archive (rumah inovasi): a search across years, and each
innovation's page with the innovation it replicates and where it was replicated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from contracts.awards import GetResults, VerifyCertificate
from contracts.base import Group, Reply
from contracts.registration import GetArchived, SearchArchive
from services.portal.accounts import Person
from services.portal.gateway import request_id
from services.portal.messages import refusal
from services.portal.tracks import TRACK_NAMES, by_track
from services.portal.web import current_person, gateway, render, year

router = APIRouter(tags=["public"])
api = APIRouter(prefix="/api", tags=["public"])


@router.get("/", include_in_schema=False)
async def home(request: Request, person: Person | None = Depends(current_person)) -> Response:
    return render(request, "home.html")


@router.get("/verify", include_in_schema=False)
async def verify_form(request: Request, code: str = "", person: Person | None = Depends(current_person)) -> Response:
    code = code.strip()
    if code:
        return RedirectResponse(request.url_for("verify_page", code=code), status_code=303)
    return render(request, "verify.html", code="", result=None, error=None)


@router.get("/verify/{code}", include_in_schema=False, name="verify_page")
async def verify_page(request: Request, code: str, person: Person | None = Depends(current_person)) -> Response:
    reply = await gateway(request).send(VerifyCertificate(code=code[:100]))
    if not reply.ok:
        return render(request, "verify.html", status_code=503 if reply.error and reply.error.code == "unavailable" else 200, code=code, result=None, error=refusal(reply))
    return render(request, "verify.html", code=code, result=reply.data, error=None)


@router.get("/results", include_in_schema=False)
async def results(request: Request, person: Person | None = Depends(current_person)) -> Response:
    reply = await gateway(request).send(GetResults(request_id=request_id("results"), cycle_year=year(request)))
    results = reply.data if reply.ok else None
    return render(
        request, "results.html", results=results, tracks=by_track(results) if results else [], track_names=TRACK_NAMES,
        error=None if reply.ok else refusal(reply),
    )  # fmt: skip


ARCHIVE_PAGE = 20
"""Archived innovations shown per page of a search."""
FILTERS = ("text", "year", "category", "group", "region")


def _search(params: dict[str, str]) -> tuple[SearchArchive | None, dict[str, tuple[str, str]]]:
    """The search the form asks for (blank fields are no filter), or what in it is not valid."""
    asked: dict[str, Any] = {k: v.strip() for k, v in params.items() if k in FILTERS and v.strip()}
    if str(asked.get("year", "")).isdigit():
        asked["year"] = int(asked["year"])
    offset = params.get("offset", "0")
    try:
        return SearchArchive(**asked, offset=int(offset) if offset.isdigit() else 0, limit=ARCHIVE_PAGE), {}
    except ValidationError as exc:
        fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        return None, {f: ("Isian pencarian tidak valid.", "Invalid search input.") for f in fields}


@router.get("/archive", include_in_schema=False)
async def archive(request: Request, person: Person | None = Depends(current_person)) -> Response:
    params = dict(request.query_params)
    query, errors = _search(params)
    reply = await gateway(request).send(query) if query else None
    return render(
        request, "archive/search.html", status_code=400 if errors else 200, values={k: v for k, v in params.items() if k in FILTERS}, errors=errors, groups=[g.value for g in Group],
        page=reply.data if reply and reply.ok else None, error=refusal(reply) if reply and not reply.ok else None,
        offset=query.offset if query else 0, limit=ARCHIVE_PAGE,
    )  # fmt: skip


async def _archived(request: Request, entry_id: str) -> Reply:
    try:
        query = GetArchived(id=entry_id)
    except ValidationError:
        return Reply.failure("not_found", f"no archived innovation {entry_id[:100]!r}")
    return await gateway(request).send(query)


@router.get("/archive/{entry_id}", include_in_schema=False)
async def archived(request: Request, entry_id: str, person: Person | None = Depends(current_person)) -> Response:
    reply = await _archived(request, entry_id)
    if not reply.ok:
        unavailable = reply.error is not None and reply.error.code == "unavailable"
        raise HTTPException(503 if unavailable else 404, "Inovasi tidak ada di rumah inovasi / no such archived innovation")
    return render(request, "archive/entry.html", entry=reply.data)


# --------------------------------------------------------------------------- JSON API


@api.get("/me")
async def api_me(person: Person | None = Depends(current_person)) -> dict[str, Any]:
    """Who the session is: ``null`` for the anonymous public."""
    if person is None:
        return {"person": None}
    return {"person": {"login": person.login, "role": person.role.value, "id": person.subject_id, "name": person.display_name}}


@api.get("/verify/{code}")
async def api_verify(request: Request, code: str) -> Any:
    """The certificate check, as the envelope of the awards service's reply."""
    return (await gateway(request).send(VerifyCertificate(code=code[:100]))).model_dump()


@api.get("/archive")
async def api_archive(request: Request) -> Any:
    """Search the archive (``?text=&year=&category=&group=&region=&offset=``)."""
    query, errors = _search(dict(request.query_params))
    if query is None:
        return {"ok": False, "error": {"code": "validation_error", "message": f"invalid: {', '.join(sorted(errors))}", "details": None}}
    return (await gateway(request).send(query)).model_dump()


@api.get("/archive/{entry_id}")
async def api_archived(request: Request, entry_id: str) -> Any:
    """One archived innovation with its replicates link and its replications."""
    return (await _archived(request, entry_id)).model_dump()


@api.get("/results")
async def api_results(request: Request) -> Any:
    """The year's results (``?year=``), as the envelope of the awards service's reply."""
    return (await gateway(request).send(GetResults(request_id=request_id("results"), cycle_year=year(request)))).model_dump()
