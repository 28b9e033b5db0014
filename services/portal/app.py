"""The portal's edge: one FastAPI app joined to the NATS broker through FastStream's FastAPI
integration (one app, one lifespan: the broker connects and the database is made when the app
starts; its schema must be at its migrations' head), the signed session cookie, the CSRF check, and the routers of each area."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from faststream.nats.fastapi import NatsRouter
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from services.common import authz, telemetry
from services.common.credentials import nats_options as identity_options
from services.common.db import Database
from services.common.migrations import require_current
from services.common.settings import Settings, get_settings, nats_servers
from services.portal import oidc
from services.portal.accounts import Accounts
from services.portal.config import PortalSettings, session_secret
from services.portal.documents import Documents
from services.portal.gateway import Gateway
from services.portal.routers import (
    agency,
    auth,
    documents,
    evaluator,
    juror,
    kbk,
    objections,
    operator,
    public,
    reviewer,
    unit,
    verifier,
)
from services.portal.store import Base
from services.portal.web import LoginRequired, csrf_check, is_api, render

SERVICE = "portal"


def create_app(
    settings: Settings | None = None,
    portal: PortalSettings | None = None,
    nats_url: str | None = None,
    database_url: str | None = None,
    nats_options: dict[str, Any] | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    telemetry.configure_from_env(SERVICE)  # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT names a collector
    portal = portal or PortalSettings()
    secret = session_secret(portal, settings)  # refuses a production start without one
    db = Database(database_url or settings.database_url(SERVICE), Base.metadata, SERVICE)
    broker_router = _broker_router(settings, nats_url, nats_options)
    app = FastAPI(
        title="Bureaucracy Fest portal",
        description="Portal Bureaucracy Fest (KOVABLIK, WBK, SAKIP, RB, CETTAR, KBK): the web door for units, agency admins, verifiers, jurors, evaluators, reviewers, work-culture groups, operators and the public.",
        lifespan=_lifespan(db),
        dependencies=[Depends(csrf_check)],
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.accounts = Accounts(db, portal)
    app.state.db = db
    app.state.documents = Documents(broker_router.broker, db, portal.document_max_bytes(), portal.document_replicas)
    app.state.oidc = oidc.client(portal)  # None: OpenID Connect is not configured
    app.state.gateway = Gateway(broker_router.broker, timeout=settings.command_timeout)
    app.state.year = portal.cycle_year()
    app.state.temporal_ui_url = settings.temporal_ui_url
    app.state.settings = settings
    app.state.portal = portal
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="bfest_session",
        max_age=int(portal.session_hours * 3600),
        same_site="lax",
        https_only=settings.production,
    )
    app.include_router(broker_router)  # the broker's lifespan (connect, close) joins the app's
    if telemetry.enabled():  # a click's trace: the HTTP request's span, then its command's
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.provider(), excluded_urls="livez,readyz,healthz,static")
    for module in (public, objections, auth, juror, unit, agency, verifier, operator, documents, evaluator, reviewer, kbk):
        app.include_router(module.router)
        if hasattr(module, "api"):
            app.include_router(module.api)
    _add_health(app, db, broker_router)
    _add_error_pages(app)
    return app


def _broker_router(settings: Settings, nats_url: str | None, nats_options: dict[str, Any] | None) -> NatsRouter:
    """The broker, connected as the portal's own identity, which may send only the commands people make."""
    options = {**identity_options(authz.PORTAL, settings), **(nats_options or {})}
    tls = options.pop("tls", None)
    if tls is not None:
        from faststream.security import BaseSecurity

        options["security"] = BaseSecurity(ssl_context=tls)
    return NatsRouter(
        nats_servers(nats_url or settings.nats_url),  # every node of a cluster
        name="bfest-portal",
        schema_url=None,
        include_in_schema=False,
        **options,
    )


def _lifespan(db: Database) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Like every service, the portal never changes its schema itself: on one older than its
        # code it refuses to start, naming `bfest db upgrade --service portal`.
        await require_current(db.engine, SERVICE)
        try:
            yield
        finally:
            await db.dispose()

    return lifespan


def _add_health(app: FastAPI, db: Database, broker_router: NatsRouter) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "database": await db.ping()}

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, bool]:
        return {"live": True}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Ready when its database answers and its NATS connection is up (what a load balancer
        asks before sending people here). The portal serves the public, so it publishes no
        /metrics page here."""
        reasons = []
        if (database := await db.ping()) != "ok":
            reasons.append(f"database: {database}")
        connection = getattr(broker_router.broker, "_connection", None)
        if connection is None or not connection.is_connected:
            reasons.append("nats: not connected")
        return JSONResponse({"ready": not reasons, "reasons": reasons}, status_code=503 if reasons else 200)


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "login required / harus masuk"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        if not hasattr(request.state, "person"):
            request.state.person = None
        return render(request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail)
