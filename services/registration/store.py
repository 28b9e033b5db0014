"""Registration's tables (its own database) and the repositories that load and save its aggregates.

One way to reach the database: SQLAlchemy Core statements on the tables below, through the
transaction of the runtime's unit of work. A handler gets a :class:`Unit` — the clock, ``emit``
and the four repositories — and never writes SQL itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contracts.base import Competition, Event, ParticipantKind, ProposalStatus
from contracts.registration import CallClosedSummary, ProposalContent
from services.common.db import UtcDateTime
from services.common.runtime import UnitOfWork
from services.registration.domain import (
    AgencyQuota,
    Archived,
    AwardsSeen,
    Call,
    CallState,
    Filed,
    Party,
    Proposal,
)


class Base:
    """What the runtime and the migrations read: the service's tables (its own database)."""

    metadata = sa.MetaData()


_Col = sa.Column
CALLS = sa.Table(
    "reg_call",
    Base.metadata,
    # One call per (year, competition): KOVABLIK's innovations and KBK's risalah.
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("track", sa.String(16), primary_key=True),
    _Col("state", sa.String(), nullable=False),
    _Col("opens_at", UtcDateTime(), nullable=False),
    _Col("closes_at", UtcDateTime(), nullable=False),
    _Col("quota_per_agency", sa.Integer(), nullable=False),
    _Col("next_seq", sa.Integer(), nullable=False),
    _Col("closed_at", UtcDateTime(), nullable=True),
    _Col("summary", sa.JSON(), nullable=True),
)
PARTICIPANTS = sa.Table(
    "reg_participant",
    Base.metadata,
    _Col("code", sa.String(64), primary_key=True),
    _Col("name", sa.String(), nullable=False),
    _Col("kind", sa.String(16), nullable=False),
    _Col("parent_code", sa.String(64), nullable=True, index=True),
    _Col("active", sa.Boolean(), nullable=False),
)
PROPOSALS = sa.Table(
    "reg_proposal",
    Base.metadata,
    _Col("id", sa.String(64), primary_key=True),
    _Col("cycle_year", sa.Integer(), nullable=False, index=True),
    _Col("unit_code", sa.String(64), nullable=False, index=True),
    _Col("agency_code", sa.String(64), nullable=False),
    _Col("title_key", sa.String(), nullable=False),
    _Col("group", sa.String(16), nullable=False),
    _Col("content", sa.JSON(), nullable=False),
    _Col("status", sa.String(16), nullable=False),
    _Col("was_forwarded", sa.Boolean(), nullable=False),
    _Col("submitted_at", UtcDateTime(), nullable=True),
    _Col("forwarded_at", UtcDateTime(), nullable=True),
    _Col("returned_reason", sa.String(), nullable=True),
    _Col("updated_at", UtcDateTime(), nullable=False),
    _Col("track", sa.String(16), nullable=False, server_default="kovablik"),
    _Col("group_code", sa.String(64), nullable=True),
    sa.Index("ix_reg_proposal_agency", "cycle_year", "agency_code", "status"),
)
QUOTAS = sa.Table(
    "reg_quota",
    Base.metadata,
    # One row per (cycle, competition, agency): locked while a forward or withdrawal changes
    # ``used``, so the quota holds exactly under concurrent forwards from any number of replicas.
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("track", sa.String(16), primary_key=True),
    _Col("agency_code", sa.String(64), primary_key=True),
    _Col("used", sa.Integer(), nullable=False),
)
ARCHIVE = sa.Table(
    "reg_archive",
    Base.metadata,
    # The public innovation archive (rumah inovasi): finished years' proposals and imported rows.
    _Col("id", sa.String(64), primary_key=True),
    _Col("year", sa.Integer(), nullable=False, index=True),
    _Col("track", sa.String(16), nullable=False),
    _Col("title", sa.String(), nullable=False),
    _Col("unit_code", sa.String(64), nullable=True),
    _Col("unit_name", sa.String(), nullable=False),
    _Col("agency_code", sa.String(64), nullable=True),
    _Col("agency_name", sa.String(), nullable=False),
    _Col("region", sa.String(), nullable=True),
    _Col("category", sa.String(64), nullable=False),
    _Col("group", sa.String(16), nullable=False),
    _Col("summary", sa.Text(), nullable=False),
    _Col("stage_reached", sa.String(), nullable=True),
    _Col("award", sa.String(), nullable=True),
    _Col("replicates", sa.String(64), nullable=True, index=True),
    _Col("imported", sa.Boolean(), nullable=False),
    _Col("search_text", sa.Text(), nullable=False),  # lower(title + summary): LIKE on both databases
)
STAGES_SEEN = sa.Table(
    "reg_stage_seen",
    Base.metadata,
    # Where each proposal went after the call (verification's and scoring's events): the archive's
    # stage reached.
    _Col("proposal_id", sa.String(64), primary_key=True),
    _Col("stage", sa.String(64), primary_key=True),
    _Col("cycle_year", sa.Integer(), nullable=False, index=True),
    _Col("seen_at", UtcDateTime(), nullable=False),
)
AWARDS_SEEN = sa.Table(
    "reg_awards_seen",
    Base.metadata,
    # The awards determined per year (awards' awards_determined): the archive's awards.
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("winners", sa.Integer(), nullable=False),
    _Col("awards", sa.JSON(), nullable=False),
)
ARCHIVED_YEARS = sa.Table(
    "reg_archived_year",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("entries", sa.Integer(), nullable=False),
    _Col("awarded", sa.Integer(), nullable=False),
    _Col("archived_at", UtcDateTime(), nullable=False),
)


class _Repository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.db = uow.db

    async def _rows(self, stmt: Any, params: Any = None) -> sa.Result[Any]:
        result: sa.Result[Any] = await self.session.execute(stmt, params)
        return result

    async def _one(self, stmt: Any, lock: bool = False) -> Any:
        return (await self._rows(self.db.for_update(stmt) if lock else stmt)).first()

    async def _count(self, table: sa.Table, where: Sequence[Any]) -> int:
        return int(
            (await self._rows(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()
        )


# --------------------------------------------------------------------------- participants


def _party(r: Any) -> Party:
    return Party(r.code, r.name, ParticipantKind(r.kind), r.parent_code, r.active)


def _party_row(p: Party) -> dict[str, Any]:
    return {
        "code": p.code,
        "name": p.name,
        "kind": p.kind.value,
        "parent_code": p.parent_code,
        "active": p.active,
    }


class Participants(_Repository):
    async def get(self, code: str) -> Party | None:
        r = await self._one(sa.select(PARTICIPANTS).where(PARTICIPANTS.c.code == code))
        return None if r is None else _party(r)

    async def many(self, codes: Iterable[str]) -> dict[str, Party]:
        stmt = sa.select(PARTICIPANTS).where(PARTICIPANTS.c.code.in_(sorted(set(codes))))
        return {r.code: _party(r) for r in await self._rows(stmt)}

    async def names(self, *codes: str) -> dict[str, str]:
        stmt = sa.select(PARTICIPANTS.c.code, PARTICIPANTS.c.name).where(
            PARTICIPANTS.c.code.in_(sorted(set(codes)))
        )
        return {r.code: r.name for r in await self._rows(stmt)}

    async def children_of(self, parents: list[str]) -> list[tuple[str, str, str]]:
        """(code, parent_code, kind) of the participants filed under ``parents``."""
        if not parents:
            return []
        c = PARTICIPANTS.c
        return [
            (r.code, r.parent_code, r.kind)
            for r in await self._rows(sa.select(c.code, c.parent_code, c.kind).where(c.parent_code.in_(parents)))
        ]

    async def add(self, parties: list[Party]) -> None:
        if parties:
            await self._rows(sa.insert(PARTICIPANTS), [_party_row(p) for p in parties])

    async def save(self, parties: list[Party]) -> None:
        if parties:
            stmt = sa.update(PARTICIPANTS).where(PARTICIPANTS.c.code == sa.bindparam("pcode"))
            await self._rows(stmt, [{"pcode": p.code, **_party_row(p)} for p in parties])

    async def page(
        self, kind: ParticipantKind | None, parent_code: str | None, offset: int, limit: int
    ) -> tuple[list[Party], int]:
        c = PARTICIPANTS.c
        where = ([c.kind == kind.value] if kind else []) + (
            [c.parent_code == parent_code] if parent_code else []
        )
        rows = await self._rows(
            sa.select(PARTICIPANTS).where(*where).order_by(c.code).offset(offset).limit(limit)
        )
        return [_party(r) for r in rows], await self._count(PARTICIPANTS, where)

    async def count(self) -> int:
        return await self._count(PARTICIPANTS, [])


# --------------------------------------------------------------------------- calls


def _call(r: Any) -> Call:
    return Call(
        cycle_year=r.cycle_year,
        opens_at=r.opens_at,
        closes_at=r.closes_at,
        quota_per_agency=r.quota_per_agency,
        state=CallState(r.state),
        next_seq=r.next_seq,
        closed_at=r.closed_at,
        summary=None if r.summary is None else CallClosedSummary.model_validate(r.summary),
        track=Competition(r.track),
    )


def _call_row(call: Call) -> dict[str, Any]:
    return {
        "cycle_year": call.cycle_year,
        "track": call.track.value,
        "state": call.state.value,
        "opens_at": call.opens_at,
        "closes_at": call.closes_at,
        "quota_per_agency": call.quota_per_agency,
        "next_seq": call.next_seq,
        "closed_at": call.closed_at,
        "summary": None if call.summary is None else call.summary.model_dump(mode="json"),
    }


class Calls(_Repository):
    async def get(self, year: int, lock: bool = False, track: Competition = Competition.KOVABLIK, shared: bool = False) -> Call | None:
        """The year's call of ``track``; with ``lock``, locked until commit; with ``shared``, kept
        from closing until commit (a step that changes the forwarded set holds it, so
        ``close_call``'s lock waits for the step and its summary counts it)."""
        stmt = sa.select(CALLS).where(CALLS.c.cycle_year == year, CALLS.c.track == track.value)
        r = await self._one(self.db.for_share(stmt) if shared and not lock else stmt, lock)
        return None if r is None else _call(r)

    async def many(self, keys: Iterable[tuple[int, Competition]]) -> dict[tuple[int, Competition], Call]:
        """The calls of these (year, track), kept from closing until commit (see :meth:`get`)."""
        years = sorted({y for y, _ in keys})
        stmt = sa.select(CALLS).where(CALLS.c.cycle_year.in_(years)).order_by(CALLS.c.cycle_year, CALLS.c.track)
        calls = [_call(r) for r in await self._rows(self.db.for_share(stmt))]
        return {call.key: call for call in calls}

    async def add(self, call: Call) -> None:
        await self._rows(sa.insert(CALLS), [_call_row(call)])

    async def save(self, call: Call) -> None:
        values = _call_row(call)
        del values["cycle_year"], values["track"]
        where = (CALLS.c.cycle_year == call.cycle_year, CALLS.c.track == call.track.value)
        await self._rows(sa.update(CALLS).where(*where).values(**values))


# --------------------------------------------------------------------------- proposals


def _proposal(r: Any) -> Proposal:
    return Proposal(
        id=r.id,
        cycle_year=r.cycle_year,
        unit_code=r.unit_code,
        agency_code=r.agency_code,
        title_key=r.title_key,
        group=r.group,
        content=ProposalContent.model_validate(r.content),
        status=ProposalStatus(r.status),
        updated_at=r.updated_at,
        was_forwarded=r.was_forwarded,
        submitted_at=r.submitted_at,
        forwarded_at=r.forwarded_at,
        returned_reason=r.returned_reason,
        track=Competition(r.track),
        group_code=r.group_code,
    )


def _state(p: Proposal) -> dict[str, Any]:
    """The columns a step of the chain changes."""
    return {
        "status": p.status.value,
        "was_forwarded": p.was_forwarded,
        "submitted_at": p.submitted_at,
        "forwarded_at": p.forwarded_at,
        "returned_reason": p.returned_reason,
        "updated_at": p.updated_at,
    }


def _content(p: Proposal) -> dict[str, Any]:
    return {"title_key": p.title_key, "group": p.group, "content": p.content.model_dump(mode="json")}


# Built once: building an expression costs more than running it, and these run on every command.
_P = PROPOSALS.c
_SAME_TITLE = sa.select(_P.id).where(
    _P.cycle_year == sa.bindparam("y"),
    _P.track == sa.bindparam("t"),
    _P.agency_code == sa.bindparam("a"),
    _P.title_key == sa.bindparam("k"),
    _P.status != ProposalStatus.WITHDRAWN.value,
    _P.id != sa.bindparam("own"),
)
_SAVE_STATE = sa.update(PROPOSALS).where(_P.id == sa.bindparam("pid"))


class Proposals(_Repository):
    async def get(self, proposal_id: str, lock: bool = False) -> Proposal | None:
        r = await self._one(sa.select(PROPOSALS).where(_P.id == proposal_id), lock)
        return None if r is None else _proposal(r)

    async def many_locked(self, ids: Iterable[str]) -> dict[str, Proposal]:
        """The proposals with these ids, locked until commit (in id order: no deadlock between replicas)."""
        stmt = self.db.for_update(sa.select(PROPOSALS).where(_P.id.in_(sorted(set(ids)))).order_by(_P.id))
        return {r.id: _proposal(r) for r in await self._rows(stmt)}

    async def title_holder(
        self, year: int, agency_code: str, key: str, own_id: str | None, track: Competition = Competition.KOVABLIK
    ) -> str | None:
        """The agency's live proposal of the competition this cycle (other than ``own_id``) with the
        title key ``key``."""
        params = {"y": year, "t": track.value, "a": agency_code, "k": key, "own": own_id or ""}
        clash = (await self._rows(_SAME_TITLE, params)).first()
        return None if clash is None else str(clash[0])

    async def filed(self, year: int, track: Competition = Competition.KOVABLIK) -> list[Filed]:
        stmt = sa.select(_P.id, _P.status, _P.agency_code, _P.group).where(
            _P.cycle_year == year, _P.track == track.value
        )
        return [Filed(r.id, ProposalStatus(r.status), r.agency_code, r.group) for r in await self._rows(stmt)]

    async def forwarded_ids(self, year: int, track: Competition, agency_code: str) -> list[str]:
        stmt = sa.select(_P.id).where(
            _P.cycle_year == year,
            _P.track == track.value,
            _P.agency_code == agency_code,
            _P.status == ProposalStatus.FORWARDED.value,
        )
        return sorted(r[0] for r in await self._rows(stmt))

    async def forwarded(self, year: int) -> list[Proposal]:
        """The year's forwarded proposals of every competition (what a finished year archives)."""
        stmt = sa.select(PROPOSALS).where(_P.cycle_year == year, _P.status == ProposalStatus.FORWARDED.value)
        return [_proposal(r) for r in await self._rows(stmt.order_by(_P.id))]

    async def add(self, p: Proposal) -> None:
        row = {"id": p.id, "cycle_year": p.cycle_year, "unit_code": p.unit_code, "agency_code": p.agency_code}
        row |= {"track": p.track.value, "group_code": p.group_code}
        await self._rows(sa.insert(PROPOSALS), [{**row, **_content(p), **_state(p)}])

    async def save(self, p: Proposal, content: bool = False) -> None:
        """Write what a step changed: its state, and with ``content`` what the unit wrote."""
        await self._rows(_SAVE_STATE, [{"pid": p.id, **_state(p), **(_content(p) if content else {})}])

    async def save_forwarded(self, forwarded: list[Proposal]) -> None:
        """A batch's forwards in one statement (only the columns a forward changes)."""
        if forwarded:
            rows = [
                {
                    "pid": p.id,
                    "status": p.status.value,
                    "was_forwarded": True,
                    "forwarded_at": p.forwarded_at,
                    "updated_at": p.updated_at,
                }
                for p in forwarded
            ]
            await self._rows(_SAVE_STATE, rows)

    async def page(
        self, year: int, filters: dict[str, str | None], offset: int, limit: int
    ) -> tuple[list[Proposal], int]:
        """A page of the year's proposals, in id order; ``filters``: column → value (None: any)."""
        where = [_P.cycle_year == year] + [PROPOSALS.c[k] == v for k, v in filters.items() if v]
        rows = await self._rows(
            sa.select(PROPOSALS).where(*where).order_by(_P.id).offset(offset).limit(limit)
        )
        return [_proposal(r) for r in rows], await self._count(PROPOSALS, where)


# --------------------------------------------------------------------------- quotas


QuotaKey = tuple[int, Competition, str]


class Quotas(_Repository):
    async def lock(self, keys: Iterable[QuotaKey]) -> dict[QuotaKey, AgencyQuota]:
        """The agencies' quotas per (year, competition, agency), their rows created if missing and
        locked until commit (in key order, so concurrent batches on several replicas cannot
        deadlock each other)."""
        keys = sorted({(y, Competition(t), a) for y, t, a in keys})
        if not keys:
            return {}
        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        await self._rows(
            insert(QUOTAS).on_conflict_do_nothing(),
            [{"cycle_year": y, "track": t.value, "agency_code": a, "used": 0} for y, t, a in keys],
        )
        q = QUOTAS.c
        stmt = self.db.for_update(
            sa.select(q.cycle_year, q.track, q.agency_code, q.used)
            .where(sa.tuple_(q.cycle_year, q.track, q.agency_code).in_([(y, t.value, a) for y, t, a in keys]))
            .order_by(q.cycle_year, q.track, q.agency_code),
        )
        quotas = [
            AgencyQuota(r.cycle_year, r.agency_code, r.used, track=Competition(r.track)) for r in await self._rows(stmt)
        ]
        return {quota.key: quota for quota in quotas}

    async def save(self, quotas: Iterable[AgencyQuota]) -> None:
        rows = [{"y": q.cycle_year, "t": q.track.value, "a": q.agency_code, "used": q.used} for q in quotas]
        if rows:
            q = QUOTAS.c
            stmt = sa.update(QUOTAS).where(
                q.cycle_year == sa.bindparam("y"), q.track == sa.bindparam("t"), q.agency_code == sa.bindparam("a")
            )
            await self._rows(stmt, rows)


# --------------------------------------------------------------------------- the archive


def _archived(r: Any) -> Archived:
    return Archived(
        id=r.id, year=r.year, title=r.title, unit_name=r.unit_name, agency_name=r.agency_name,
        category=r.category, group=r.group, summary=r.summary, track=Competition(r.track),
        unit_code=r.unit_code, agency_code=r.agency_code, region=r.region, stage_reached=r.stage_reached,
        award=r.award, replicates=r.replicates, imported=r.imported,
    )  # fmt: skip


def _archive_row(a: Archived) -> dict[str, Any]:
    row = {name: getattr(a, name) for name in Archived.__slots__}
    row["track"] = a.track.value
    row["search_text"] = f"{a.title}\n{a.summary}".lower()
    return row


def _like(word: str) -> str:
    """A LIKE pattern matching ``word`` anywhere (its own % and _ taken literally)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_A = ARCHIVE.c


class Archive(_Repository):
    """The public innovation archive, and what registration learned on the way to it: the stages
    each proposal reached, the awards of each year, the years archived."""

    async def get(self, entry_id: str) -> Archived | None:
        r = await self._one(sa.select(ARCHIVE).where(_A.id == entry_id))
        return None if r is None else _archived(r)

    async def many(self, ids: Iterable[str]) -> dict[str, Archived]:
        rows = await self._rows(sa.select(ARCHIVE).where(_A.id.in_(sorted(set(ids)))))
        return {r.id: _archived(r) for r in rows}

    async def holds(self, entry_id: str) -> bool:
        return (await self._one(sa.select(_A.id).where(_A.id == entry_id))) is not None

    async def known_ids(self, ids: Iterable[str]) -> set[str]:
        return {r[0] for r in await self._rows(sa.select(_A.id).where(_A.id.in_(sorted(set(ids)))))}

    async def put(self, entries: list[Archived]) -> None:
        """Write these entries, replacing any held with the same id."""
        if entries:
            await self._rows(sa.delete(ARCHIVE).where(_A.id.in_([e.id for e in entries])))
            await self._rows(sa.insert(ARCHIVE), [_archive_row(e) for e in entries])

    async def count(self) -> int:
        return await self._count(ARCHIVE, [])

    async def replications(self, entry_id: str) -> list[Archived]:
        rows = await self._rows(sa.select(ARCHIVE).where(_A.replicates == entry_id).order_by(_A.year, _A.id))
        return [_archived(r) for r in rows]

    async def search(self, text: str | None, filters: dict[str, Any], awarded_only: bool, offset: int, limit: int) -> tuple[list[Archived], int]:
        """Every word of ``text`` in the title or summary (case aside), the filters (column →
        value, None: any); newest year first."""
        where = [_A[k] == v for k, v in filters.items() if v is not None]
        where += [_A.search_text.like(_like(word), escape="\\") for word in (text or "").lower().split()]
        if awarded_only:
            where.append(_A.award.is_not(None))
        stmt = sa.select(ARCHIVE).where(*where).order_by(_A.year.desc(), _A.id).offset(offset).limit(limit)
        return [_archived(r) for r in await self._rows(stmt)], await self._count(ARCHIVE, where)

    # ------------------------------------------------------------------ on the way to it

    async def seen(self, year: int, stage: str, ids: Iterable[str], at: dt.datetime) -> None:
        """Proposals seen in ``stage`` (first seen kept)."""
        rows = [{"proposal_id": i, "stage": stage, "cycle_year": year, "seen_at": at} for i in sorted(set(ids))]
        if rows:
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            await self._rows(insert(STAGES_SEEN).on_conflict_do_nothing(), rows)

    async def stages_of(self, year: int) -> dict[str, dict[str, dt.datetime]]:
        s = STAGES_SEEN.c
        out: dict[str, dict[str, dt.datetime]] = {}
        for r in await self._rows(sa.select(s.proposal_id, s.stage, s.seen_at).where(s.cycle_year == year)):
            out.setdefault(r.proposal_id, {})[r.stage] = r.seen_at
        return out

    async def awards(self, year: int) -> AwardsSeen | None:
        r = await self._one(sa.select(AWARDS_SEEN).where(AWARDS_SEEN.c.cycle_year == year))
        return None if r is None else AwardsSeen(r.cycle_year, r.winners, dict(r.awards))

    async def put_awards(self, seen: AwardsSeen) -> None:
        """The year's awards as last determined."""
        await self._rows(sa.delete(AWARDS_SEEN).where(AWARDS_SEEN.c.cycle_year == seen.cycle_year))
        await self._rows(sa.insert(AWARDS_SEEN), [{"cycle_year": seen.cycle_year, "winners": seen.winners, "awards": seen.awards}])

    async def archived_year(self, year: int) -> tuple[int, int] | None:
        """(entries, awarded) of a year already archived."""
        y = ARCHIVED_YEARS.c
        r = await self._one(sa.select(y.entries, y.awarded).where(y.cycle_year == year))
        return None if r is None else (r.entries, r.awarded)

    async def mark_archived(self, year: int, entries: int, awarded: int, at: dt.datetime) -> None:
        row = {"cycle_year": year, "entries": entries, "awarded": awarded, "archived_at": at}
        await self._rows(sa.insert(ARCHIVED_YEARS), [row])


# --------------------------------------------------------------------------- the unit of work


class Unit:
    """What a registration handler gets: the runtime's transaction seen through the repositories,
    its clock, and ``emit`` for the events that commit with it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.now: dt.datetime = uow.now
        self._emit = uow.emit
        self.participants = Participants(uow)
        self.calls = Calls(uow)
        self.proposals = Proposals(uow)
        self.quotas = Quotas(uow)
        self.archive = Archive(uow)

    def emit(self, *events: Event) -> None:
        for event in events:
            self._emit(event)


C = TypeVar("C")
R = TypeVar("R")


def bind(handler: Callable[[C, Unit], Awaitable[R]]) -> Callable[[C, UnitOfWork], Awaitable[R]]:
    """The runtime's handler for ``handler``: the same function, given the service's :class:`Unit`."""

    async def run(cmd: C, uow: UnitOfWork) -> R:
        return await handler(cmd, Unit(uow))

    run.__name__ = run.__qualname__ = getattr(handler, "__name__", "handler")
    run.__doc__ = handler.__doc__
    return run
