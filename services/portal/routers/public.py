"""Pages anyone may open: the home page, the certificate check the QR code opens, the results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from contracts.awards import GetResults, VerifyCertificate
from services.portal.accounts import Person
from services.portal.gateway import request_id
from services.portal.messages import refusal
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
    return render(request, "results.html", results=reply.data if reply.ok else None, error=None if reply.ok else refusal(reply))


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


@api.get("/results")
async def api_results(request: Request) -> Any:
    """The year's results (``?year=``), as the envelope of the awards service's reply."""
    return (await gateway(request).send(GetResults(request_id=request_id("results"), cycle_year=year(request)))).model_dump()
