"""``bfest portal``: run the web portal, and issue one-time set-password links for the accounts
that come from the participant and juror imports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bfest.operator import OperatorError
from contracts.base import AGENCY_KINDS, UNIT_KINDS, ParticipantKind
from contracts.registration import GetParticipant
from contracts.scoring import ListJurors
from services.common.settings import get_settings


def run() -> None:
    """Serve the portal with uvicorn until Ctrl-C."""
    import uvicorn

    from services.portal.app import create_app
    from services.portal.config import MissingSecret, PortalSettings

    portal = PortalSettings()
    try:
        app = create_app(portal=portal)
    except MissingSecret as exc:
        raise OperatorError(str(exc)) from None
    asyncio.run(_schema_current())  # refused in one line before serving, not as a lifespan traceback
    uvicorn.run(app, host=portal.host, port=portal.port, log_level="warning", proxy_headers=True)


async def _schema_current() -> None:
    """Refuse (one line naming `bfest db upgrade --service portal`) a portal database whose schema
    is older than this code."""
    from services.common.migrations import migration_engine, schema_problem
    from services.portal.app import SERVICE

    engine = migration_engine(get_settings().database_url(SERVICE))
    try:
        async with engine.connect() as conn:
            problem = await conn.run_sync(schema_problem, SERVICE)
    finally:
        await engine.dispose()
    if problem:
        raise OperatorError(problem)


@dataclass
class Invitation:
    login: str
    role: str
    name: str
    url: str
    token: str


async def _registered_name(role: str, subject: str) -> str:
    """The name the registry (participants) or the juror pool gives ``subject``, checked over NATS:
    an account is only made for someone the imports know."""
    from bfest.loading import _client

    client = await _client()
    try:
        if role in ("unit", "agency", "kbk_group"):
            reply = await client.request(GetParticipant(code=subject))
            if not reply.ok:
                raise OperatorError(f"{subject} is not an imported participant ({reply.error.code if reply.error else '?'}); run `bfest participants import` first")
            kinds, what = {"unit": (UNIT_KINDS, "a unit"), "agency": (AGENCY_KINDS, "an agency"), "kbk_group": (frozenset({ParticipantKind.KBK}), "a work-culture group (kbk)")}[role]
            if reply.data["kind"] not in {k.value for k in kinds}:
                raise OperatorError(f"{subject} is a {reply.data['kind']}, not {what}")
            return str(reply.data["name"])
        if role == "juror":
            offset = 0
            while True:
                page = await client.call(ListJurors(offset=offset, limit=1000))
                items = page["items"] if isinstance(page, dict) else page
                for j in items:
                    if j["id"] == subject:
                        return str(j["name"])
                if len(items) < 1000:
                    raise OperatorError(f"{subject} is not in the juror pool; run `bfest jurors import FILE` first")
                offset += 1000
        return subject
    finally:
        await client.close()


async def invite(role: str, subject: str, name: str | None, check: bool, oidc_id: str | None = None, login: str | None = None) -> Invitation:
    from services.common.db import Database
    from services.portal.accounts import AccountError, Accounts, Role
    from services.portal.app import SERVICE
    from services.portal.config import PortalSettings
    from services.portal.store import Base

    try:
        r = Role(role)
    except ValueError:
        raise OperatorError(f"unknown role {role!r}; choose one of: {', '.join(x.value for x in Role)}") from None
    if check and not name:
        name = await _registered_name(r.value, subject)
    settings = get_settings()
    await _schema_current()
    db = Database(settings.database_url(SERVICE), Base.metadata, SERVICE)
    try:
        accounts = Accounts(db, PortalSettings())
        try:
            person = await accounts.ensure_account(r, subject, name or "", login=login)
            if oidc_id:
                await accounts.link_oidc(person.login, oidc_id)
            token = await accounts.invite(person.login)
        except AccountError as exc:
            raise OperatorError(str(exc)) from None
    finally:
        await db.dispose()
    return Invitation(person.login, r.value, person.display_name, f"{settings.public_url.rstrip('/')}/set-password/{token}", token)


def invite_sync(role: str, subject: str, name: str | None, check: bool, oidc_id: str | None = None, login: str | None = None) -> Invitation:
    return asyncio.run(invite(role, subject, name, check, oidc_id, login))
