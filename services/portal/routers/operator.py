"""The operator's read-only dashboard: the cycle's ``status`` query (workflow
``bfest-cycle-<year>``) and a link to the Temporal UI. Steering stays in the CLI."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from services.portal.accounts import Person, Role
from services.portal.web import render, require_role, year

router = APIRouter(prefix="/operator", tags=["operator"], include_in_schema=False)
api = APIRouter(prefix="/api/operator", tags=["operator"])
operator_only = require_role(Role.OPERATOR)


async def cycle_status(request: Request) -> tuple[dict[str, Any] | None, str | None]:
    """The workflow's status, or why it cannot be read (Temporal down, no such cycle)."""
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    settings = request.app.state.settings
    client: Client | None = getattr(request.app.state, "temporal", None)
    try:
        if client is None:
            client = await asyncio.wait_for(
                Client.connect(settings.temporal_address, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter),
                timeout=3,
            )
            request.app.state.temporal = client
        handle = client.get_workflow_handle(f"bfest-cycle-{year(request)}")
        status = await asyncio.wait_for(handle.query("status"), timeout=5)
    except Exception as exc:  # noqa: BLE001 - the page says what is wrong instead of failing
        if "not found" in str(exc).lower():
            return None, f"Belum ada siklus {year(request)} (workflow bfest-cycle-{year(request)} tidak ditemukan) · no cycle {year(request)} yet"
        return None, f"{exc.__class__.__name__}: {exc}"
    return (status.model_dump(mode="json") if hasattr(status, "model_dump") else status), None


@router.get("")
async def dashboard(request: Request, person: Person = Depends(operator_only)) -> Response:
    status, problem = await cycle_status(request)
    workflow_url = f"{request.app.state.temporal_ui_url}/namespaces/{request.app.state.settings.temporal_namespace}/workflows/bfest-cycle-{year(request)}"
    return render(request, "operator/dashboard.html", status=status, problem=problem, workflow_url=workflow_url)


@api.get("/status")
async def api_status(request: Request, person: Person = Depends(operator_only)) -> Any:
    """The cycle's ``status`` query, as JSON."""
    status, problem = await cycle_status(request)
    return {"ok": status is not None, "data": status, "error": problem}
