"""Accounts and sessions: who a person is, what role they act in, and the rules of signing in
(argon2 password hashes, one-time set-password invitations, server-side sessions, a rate limit on
failed logins)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import col

from contracts.base import Actor
from contracts.base import Role as ActorRole
from services.common.db import Database
from services.portal.config import PortalSettings
from services.portal.store import AccountRow, AttemptRow, InviteRow, SessionRow

_hasher = PasswordHasher()
# Verifying against this when the account does not exist costs the same time as a real check, so
# the answer's timing does not tell which account names exist.
_DUMMY_HASH = _hasher.hash("no such account")
MIN_PASSWORD = 10


class Role(StrEnum):
    """The roles people sign in with (each is one of the actor header's roles)."""

    UNIT = "unit"
    AGENCY = "agency"
    VERIFIER = "verifier"
    JUROR = "juror"
    OPERATOR = "operator"
    EVALUATOR = "evaluator"
    REVIEWER = "reviewer"
    KBK_GROUP = "kbk_group"


ROLE_NAMES = {
    Role.UNIT: ("Unit layanan", "Service unit"),
    Role.AGENCY: ("Admin instansi", "Agency admin"),
    Role.VERIFIER: ("Verifikator", "Verifier"),
    Role.JUROR: ("Juri", "Juror"),
    Role.OPERATOR: ("Operator (sekretariat)", "Operator (secretariat)"),
    Role.EVALUATOR: ("Evaluator", "Evaluator"),
    Role.REVIEWER: ("Penelaah", "Reviewer"),
    Role.KBK_GROUP: ("Kelompok budaya kerja", "Work-culture group"),
}
HOME = {
    Role.UNIT: "/unit", Role.AGENCY: "/agency", Role.VERIFIER: "/verifier", Role.JUROR: "/juror", Role.OPERATOR: "/operator",
    Role.EVALUATOR: "/evaluator", Role.REVIEWER: "/reviewer", Role.KBK_GROUP: "/kbk",
}  # fmt: skip
"""Each role's own page (where a login lands, and the header's link)."""


@dataclass(frozen=True)
class Person:
    """The signed-in person, as every route sees them."""

    login: str
    role: Role
    subject_id: str
    display_name: str

    def actor(self) -> Actor:
        """The acting person for a command: who the session says, never what a form says."""
        return Actor(id=self.subject_id, role=ActorRole(self.role.value))


class AccountError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _person(row: AccountRow | sa.Row[Any]) -> Person:
    return Person(row.login, Role(row.role), row.subject_id, row.display_name or row.subject_id)


class Accounts:
    def __init__(self, db: Database, settings: PortalSettings) -> None:
        self.db = db
        self.settings = settings

    # ---------------------------------------------------------------- accounts and invitations

    async def ensure_account(self, role: Role, subject_id: str, display_name: str = "", login: str | None = None) -> Person:
        """The account acting as ``subject_id`` in ``role`` (made, without a password, if missing)."""
        login = (login or subject_id).strip()
        async with self.db.session() as s, s.begin():
            row = await s.get(AccountRow, login)
            if row is None:
                row = AccountRow(login=login, role=role.value, subject_id=subject_id, display_name=display_name, created_at=_now())
                s.add(row)
            elif row.role != role.value or row.subject_id != subject_id:
                raise AccountError("account_exists", f"account {login} already exists as {row.role} {row.subject_id}")
            elif display_name:
                row.display_name = display_name
            return _person(row)

    async def link_oidc(self, login: str, oidc_id: str) -> None:
        """Let the identity provider's claim ``oidc_id`` (an email, a NIP) sign ``login`` in."""
        oidc_id = oidc_id.strip()
        async with self.db.session() as s, s.begin():
            row = await s.get(AccountRow, login)
            if row is None:
                raise AccountError("unknown_account", f"no account {login}")
            taken = await s.scalar(sa.select(col(AccountRow.login)).where(col(AccountRow.oidc_id) == oidc_id, col(AccountRow.login) != login))
            if taken is not None:
                raise AccountError("oidc_id_taken", f"OpenID id {oidc_id} already signs in account {taken}")
            row.oidc_id = oidc_id

    async def by_oidc(self, value: str) -> Person | None:
        """The active account the provider's claim names: by its OpenID id, else by its account
        name; ``None`` for a person the secretariat has not issued an account to."""
        value = value.strip()
        if not value:
            return None
        async with self.db.session() as s:
            row = await s.scalar(sa.select(AccountRow).where(col(AccountRow.oidc_id) == value))
            if row is None:
                row = await s.get(AccountRow, value)
        return _person(row) if row is not None and row.active else None

    async def invite(self, login: str) -> str:
        """A one-time set-password token for ``login`` (earlier unused ones stop working)."""
        token = secrets.token_urlsafe(32)
        async with self.db.session() as s, s.begin():
            if await s.get(AccountRow, login) is None:
                raise AccountError("unknown_account", f"no account {login}")
            await s.execute(sa.delete(InviteRow).where(col(InviteRow.login) == login, col(InviteRow.used_at).is_(None)))
            s.add(InviteRow(token_hash=_digest(token), login=login, expires_at=_now() + dt.timedelta(hours=self.settings.invite_hours)))
        return token

    async def invited(self, token: str) -> Person | None:
        async with self.db.session() as s:
            invite = await s.get(InviteRow, _digest(token))
            if invite is None or invite.used_at is not None or invite.expires_at <= _now():
                return None
            row = await s.get(AccountRow, invite.login)
            return _person(row) if row is not None and row.active else None

    async def set_password(self, token: str, password: str) -> Person:
        if len(password) < MIN_PASSWORD:
            raise AccountError("password_too_short", f"at least {MIN_PASSWORD} characters")
        hashed = _hasher.hash(password)
        async with self.db.session() as s, s.begin():
            invite = await s.get(InviteRow, _digest(token))
            if invite is None or invite.used_at is not None or invite.expires_at <= _now():
                raise AccountError("invite_invalid", "this link is used, expired or unknown")
            row = await s.get(AccountRow, invite.login)
            if row is None or not row.active:
                raise AccountError("invite_invalid", "this link is used, expired or unknown")
            invite.used_at = _now()
            row.password_hash = hashed
            # A new password ends every session the account had.
            await s.execute(sa.delete(SessionRow).where(col(SessionRow.login) == row.login))
            return _person(row)

    # ---------------------------------------------------------------- signing in

    async def limited(self, login: str, address: str) -> bool:
        """Too many failed logins lately for this account name or this client address."""
        keys = (f"login:{login.lower()}", f"addr:{address}")
        return await self.over_limit(keys, self.settings.login_attempts, self.settings.login_window_seconds)

    async def over_limit(self, keys: tuple[str, ...], limit: int, window_seconds: int) -> bool:
        """Any of ``keys`` counted ``limit`` times within the last ``window_seconds``."""
        since = _now() - dt.timedelta(seconds=window_seconds)
        async with self.db.session() as s:
            for key in keys:
                count = await s.scalar(
                    sa.select(sa.func.count()).select_from(AttemptRow).where(col(AttemptRow.key) == key, col(AttemptRow.at) > since)
                )
                if (count or 0) >= limit:
                    return True
        return False

    async def count_attempt(self, *keys: str) -> None:
        async with self.db.session() as s, s.begin():
            for key in keys:
                s.add(AttemptRow(key=key, at=_now()))

    async def authenticate(self, login: str, password: str, address: str) -> Person:
        """The person, or :class:`AccountError` (``rate_limited``, ``bad_credentials``)."""
        login = login.strip()
        if await self.limited(login, address):
            raise AccountError("rate_limited", "too many failed logins; wait a few minutes")
        async with self.db.session() as s:
            row = await s.get(AccountRow, login)
        stored = row.password_hash if row is not None and row.active and row.password_hash else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
            ok = stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            await self.count_attempt(f"login:{login.lower()}", f"addr:{address}")
            raise AccountError("bad_credentials", "wrong account name or password")
        if stored and _hasher.check_needs_rehash(stored):
            async with self.db.session() as s, s.begin():
                fresh = await s.get(AccountRow, login)
                if fresh is not None:
                    fresh.password_hash = _hasher.hash(password)
        return _person(row)

    async def open_session(self, person: Person) -> str:
        sid = secrets.token_urlsafe(32)
        async with self.db.session() as s, s.begin():
            s.add(SessionRow(id_hash=_digest(sid), login=person.login, created_at=_now(), expires_at=_now() + dt.timedelta(hours=self.settings.session_hours)))
        return sid

    async def session_person(self, sid: str) -> Person | None:
        """The person of a live session whose account is active, in one read (every request of a
        signed-in person asks it)."""
        account, session = AccountRow.__table__.c, SessionRow.__table__.c  # type: ignore[attr-defined]
        query = (
            sa.select(account.login, account.role, account.subject_id, account.display_name)
            .select_from(SessionRow.__table__.join(AccountRow.__table__, session.login == account.login))  # type: ignore[attr-defined]
            .where(session.id_hash == _digest(sid), session.expires_at > _now(), account.active.is_(True))
        )
        async with self.db.session() as s:
            row = (await s.execute(query)).first()
        return None if row is None else _person(row)

    async def close_session(self, sid: str) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(sa.delete(SessionRow).where(col(SessionRow.id_hash) == _digest(sid)))
