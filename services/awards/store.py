"""Awards' tables (final shortlists and WBK decisions received by events, results, certificates)
and the repositories that load and save them.

One way to reach the database: SQLAlchemy Core statements on the tables below, through the
transaction of the runtime's unit of work. A handler gets a :class:`Unit`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from contracts.awards import AwardsSummary
from contracts.awards import Ceremony as CeremonyDetails
from contracts.base import Event, WbkDecision
from services.awards.domain import Ceremony, Certificate
from services.common.db import UtcDateTime
from services.common.runtime import UnitOfWork


class Base:
    """What the runtime and the migrations read: the service's tables (its own database)."""

    metadata = sa.MetaData()


_Col = sa.Column
SHORTLISTS = sa.Table(
    "awd_shortlist",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("stage", sa.String(32), primary_key=True),
    _Col("announcement_no", sa.String(), nullable=False),
    _Col("digest", sa.String(), nullable=False),
    _Col("rows", sa.JSON(), nullable=False),
)
WBK = sa.Table(
    "awd_wbk",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("unit_code", sa.String(64), primary_key=True),
    _Col("unit_name", sa.String(), nullable=True),
    _Col("agency_code", sa.String(), nullable=True),
    _Col("agency_name", sa.String(), nullable=True),
    _Col("decision", sa.String(), nullable=False),
    _Col("total", sa.Float(), nullable=True),
)
RESULTS = sa.Table(
    "awd_result",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("categories", sa.JSON(), nullable=False),
    _Col("rankings", sa.JSON(), nullable=False),
    _Col("ceremony", sa.JSON(), nullable=False),
    _Col("files", sa.JSON(), nullable=False),
    _Col("summary", sa.JSON(), nullable=False),
    _Col("announcement_no", sa.String(), nullable=True),
    # The tracks beside KOVABLIK and WBK (revision awards_0003): evaluations' approved results and
    # the other competitions' final rankings, by track; none for a ceremony before them.
    _Col("evaluations", sa.JSON(), nullable=True),
    _Col("track_rankings", sa.JSON(), nullable=True),
)
CERTIFICATES = sa.Table(
    "awd_certificate",
    Base.metadata,
    _Col("code", sa.String(40), primary_key=True),
    _Col("cycle_year", sa.Integer(), nullable=False, index=True),
    _Col("award_key", sa.String(), nullable=False),
    _Col("award_name", sa.String(), nullable=False),
    _Col("recipient", sa.String(), nullable=False),
    _Col("title", sa.String(), nullable=True),
    _Col("path", sa.String(), nullable=False),
    _Col("unit_code", sa.String(), nullable=True),
    _Col("proposal_id", sa.String(), nullable=True),
    _Col("key_id", sa.String(), nullable=True),
    # Ed25519 signature (base64) of the certificate record; none before signing.
    _Col("signature", sa.String(), nullable=True),
    _Col("issued_at", UtcDateTime(), nullable=False),
    # Revision awards_0003: the track, the certificate's kind (award | sakip_result), and an
    # evaluation's grade and total as published (certificates before it: KOVABLIK awards).
    _Col("track", sa.String(16), nullable=False, server_default="kovablik"),
    _Col("kind", sa.String(16), nullable=False, server_default="award"),
    _Col("grade", sa.String(), nullable=True),
    _Col("score", sa.String(), nullable=True),
)
EVALUATIONS = sa.Table(
    "awd_evaluation",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("track", sa.String(16), primary_key=True),
    _Col("summary", sa.JSON(), nullable=False),
    _Col("results", sa.JSON(), nullable=False),
)
COUNTERS = sa.Table(
    "awd_counter",
    Base.metadata,
    _Col("cycle_year", sa.Integer(), primary_key=True),
    _Col("announcements", sa.Integer(), nullable=False),
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


class Shortlists(_Repository):
    async def rows(self, year: int, stage: str) -> list[dict[str, Any]] | None:
        """The final shortlist's rows, or None until it arrived."""
        s = SHORTLISTS.c
        r = await self._one(sa.select(s.rows).where(s.cycle_year == year, s.stage == stage))
        return None if r is None else list(r.rows)

    async def put(
        self, year: int, stage: str, announcement_no: str, digest: str, rows: list[dict[str, Any]]
    ) -> None:
        """The stage's final shortlist as last received (a later one replaces it)."""
        s = SHORTLISTS.c
        values = {"announcement_no": announcement_no, "digest": digest, "rows": rows}
        done = await self._rows(
            sa.update(SHORTLISTS).where(s.cycle_year == year, s.stage == stage).values(**values)
        )
        if not cast(sa.CursorResult[Any], done).rowcount:
            await self._rows(sa.insert(SHORTLISTS).values(cycle_year=year, stage=stage, **values))


class WbkDecisions(_Repository):
    async def put(
        self, year: int, unit_code: str, decision: str, total: float | None, names: dict[str, str | None]
    ) -> None:
        """A unit's WBK decision as last received; a name not given keeps the one received before."""
        w = WBK.c
        where = (w.cycle_year == year, w.unit_code == unit_code)
        filed = await self._one(sa.select(WBK).where(*where))
        kept = {k: v or (getattr(filed, k) if filed is not None else None) for k, v in names.items()}
        values = {"decision": decision, "total": total, **kept}
        if filed is None:
            await self._rows(sa.insert(WBK).values(cycle_year=year, unit_code=unit_code, **values))
        else:
            await self._rows(sa.update(WBK).where(*where).values(**values))

    async def layak(self, year: int) -> list[dict[str, Any]]:
        """The units of ``year`` decided layak_wbk."""
        w = WBK.c
        stmt = sa.select(w.unit_code, w.unit_name, w.agency_code, w.agency_name, w.total, w.decision).where(
            w.cycle_year == year
        )
        return [
            {
                "unit_code": r.unit_code,
                "unit_name": r.unit_name,
                "agency_code": r.agency_code,
                "agency_name": r.agency_name,
                "total": r.total,
            }
            for r in await self._rows(stmt)
            if r.decision == WbkDecision.LAYAK_WBK
        ]


class Evaluations(_Repository):
    async def put(self, year: int, track: str, summary: dict[str, Any], results: list[dict[str, Any]]) -> None:
        """A track's closed evaluation as last received (a later close replaces it)."""
        e = EVALUATIONS.c
        where = (e.cycle_year == year, e.track == track)
        done = await self._rows(sa.update(EVALUATIONS).where(*where).values(summary=summary, results=results))
        if not cast(sa.CursorResult[Any], done).rowcount:
            await self._rows(sa.insert(EVALUATIONS).values(cycle_year=year, track=track, summary=summary, results=results))

    async def results(self, year: int, track: str) -> list[dict[str, Any]] | None:
        """The approved results of a track's closed evaluation, or None until it arrived."""
        e = EVALUATIONS.c
        r = await self._one(sa.select(e.results).where(e.cycle_year == year, e.track == track))
        return None if r is None else list(r.results)


def _ceremony(r: Any) -> Ceremony:
    return Ceremony(
        cycle_year=r.cycle_year,
        details=CeremonyDetails.model_validate(r.ceremony),
        categories=r.categories,
        rankings=r.rankings,
        files=r.files,
        summary=AwardsSummary.model_validate(r.summary),
        announcement_no=r.announcement_no,
        evaluations=r.evaluations or {},
        track_rankings=r.track_rankings or {},
    )


def _ceremony_row(c: Ceremony) -> dict[str, Any]:
    return {
        "categories": c.categories,
        "rankings": c.rankings,
        "ceremony": c.details.model_dump(mode="json"),
        "files": c.files,
        "summary": c.summary.model_dump(mode="json"),
        "announcement_no": c.announcement_no,
        "evaluations": c.evaluations or None,
        "track_rankings": c.track_rankings or None,
    }


class Ceremonies(_Repository):
    async def get(self, year: int) -> Ceremony | None:
        r = await self._one(sa.select(RESULTS).where(RESULTS.c.cycle_year == year))
        return None if r is None else _ceremony(r)

    async def add(self, c: Ceremony) -> None:
        await self._rows(sa.insert(RESULTS).values(cycle_year=c.cycle_year, **_ceremony_row(c)))

    async def save(self, c: Ceremony) -> None:
        await self._rows(
            sa.update(RESULTS).where(RESULTS.c.cycle_year == c.cycle_year).values(**_ceremony_row(c))
        )

    async def next_announcement(self, year: int) -> int:
        """The year's next announcement number (counted apart from the results, locked until commit)."""
        n = COUNTERS.c
        filed = await self._one(sa.select(n.announcements).where(n.cycle_year == year), lock=True)
        if filed is None:
            await self._rows(sa.insert(COUNTERS).values(cycle_year=year, announcements=1))
            return 1
        await self._rows(
            sa.update(COUNTERS).where(n.cycle_year == year).values(announcements=filed.announcements + 1)
        )
        return int(filed.announcements) + 1


_CERTIFICATE_COLUMNS = [c.name for c in CERTIFICATES.columns]


class Certificates(_Repository):
    async def get(self, code: str) -> Certificate | None:
        r = await self._one(sa.select(CERTIFICATES).where(CERTIFICATES.c.code == code))
        return None if r is None else Certificate(**r._mapping)

    async def add(self, certificates: list[Certificate]) -> None:
        if certificates:
            await self._rows(
                sa.insert(CERTIFICATES),
                [{k: getattr(c, k) for k in _CERTIFICATE_COLUMNS} for c in certificates],
            )


class Unit:
    """What an awards handler gets: the runtime's transaction seen through the repositories, its
    clock, and ``emit`` for the events that commit with it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.now: dt.datetime = uow.now
        self._emit = uow.emit
        self.shortlists = Shortlists(uow)
        self.wbk = WbkDecisions(uow)
        self.evaluations = Evaluations(uow)
        self.ceremonies = Ceremonies(uow)
        self.certificates = Certificates(uow)

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
