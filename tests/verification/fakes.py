"""An in-memory unit of work for verification's handlers: the repositories as dictionaries, a
fixed clock, the emitted events in a list. For unit tests only; the service's own tests run it
over NATS and a real database."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from contracts.base import Competition, EvaluationKind, Event
from services.verification.domain import (
    Decision,
    Evaluation,
    EvaluationRound,
    Snapshot,
    Verification,
    WbkEvaluation,
)

KOVABLIK = Competition.KOVABLIK


class FakeRuns:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, Competition], Verification] = {}

    async def get(self, cycle_year: int, track: Competition = KOVABLIK) -> Verification | None:
        return copy.deepcopy(self.rows.get((cycle_year, track)))

    async def for_year(self, cycle_year: int) -> list[Verification]:
        return [copy.deepcopy(r) for (year, _), r in self.rows.items() if year == cycle_year]

    async def save(self, run: Verification) -> None:
        self.rows[(run.cycle_year, run.track)] = copy.deepcopy(run)


class FakeDecisions:
    def __init__(self) -> None:
        self.rows: dict[str, Decision] = {}

    async def get(self, proposal_id: str) -> Decision | None:
        return copy.deepcopy(self.rows.get(proposal_id))

    async def for_year(self, cycle_year: int, track: Competition = KOVABLIK) -> list[Decision]:
        return [copy.deepcopy(d) for d in self.rows.values() if d.cycle_year == cycle_year and d.track == track]

    async def add_all(self, decisions: Sequence[Decision]) -> None:
        for d in decisions:
            assert d.proposal_id not in self.rows, f"{d.proposal_id} inserted twice"
            self.rows[d.proposal_id] = copy.deepcopy(d)

    async def save(self, *decisions: Decision) -> None:
        for d in decisions:
            assert d.proposal_id in self.rows, f"{d.proposal_id} saved before it was added"
            self.rows[d.proposal_id] = copy.deepcopy(d)

    async def tally(self, cycle_year: int, track: Competition = KOVABLIK) -> list[tuple[str | None, str, int]]:
        groups: dict[tuple[str | None, str], int] = {}
        for d in self.rows.values():
            if d.cycle_year == cycle_year and d.track == track:
                key = (None if d.final is None else d.final.value, d.automatic.value)
                groups[key] = groups.get(key, 0) + 1
        return [(f, a, n) for (f, a), n in groups.items()]

    async def pending_ids(self, cycle_year: int, limit: int, track: Competition = KOVABLIK) -> list[str]:
        return sorted(d.proposal_id for d in self.rows.values() if d.cycle_year == cycle_year and d.track == track and d.pending)[:limit]


class FakeCopies:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, bool, dict[str, Any]]] = {}

    async def remember(self, cycle_year: int, snapshot: dict[str, Any], forwarded: bool) -> None:
        self.rows[snapshot["id"]] = (cycle_year, forwarded, snapshot)

    async def forwarded(self, cycle_year: int, track: Competition = KOVABLIK) -> list[tuple[str, Snapshot]]:
        return [(pid, s) for pid, (year, fwd, s) in self.rows.items() if year == cycle_year and fwd and s.get("track", "kovablik") == track]

    async def snapshots(self, ids: Iterable[str]) -> dict[str, Snapshot]:
        return {pid: self.rows[pid][2] for pid in ids if pid in self.rows}


class FakeWbk:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], WbkEvaluation] = {}

    async def get(self, cycle_year: int, unit_code: str) -> WbkEvaluation | None:
        return copy.deepcopy(self.rows.get((cycle_year, unit_code)))

    async def for_year(self, cycle_year: int) -> list[WbkEvaluation]:
        return [copy.deepcopy(e) for (year, _), e in self.rows.items() if year == cycle_year]

    async def save(self, evaluation: WbkEvaluation) -> None:
        self.rows[(evaluation.cycle_year, evaluation.unit_code)] = copy.deepcopy(evaluation)


class FakeRounds:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, EvaluationKind], EvaluationRound] = {}

    async def get(self, cycle_year: int, kind: EvaluationKind) -> EvaluationRound | None:
        return copy.deepcopy(self.rows.get((cycle_year, kind)))

    async def save(self, found: EvaluationRound) -> None:
        self.rows[(found.cycle_year, found.kind)] = copy.deepcopy(found)


class FakeEvaluations:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, EvaluationKind, str], Evaluation] = {}

    async def get(self, cycle_year: int, kind: EvaluationKind, subject_code: str) -> Evaluation | None:
        return copy.deepcopy(self.rows.get((cycle_year, kind, subject_code)))

    async def for_round(self, cycle_year: int, kind: EvaluationKind) -> list[Evaluation]:
        return [copy.deepcopy(e) for (y, k, _), e in sorted(self.rows.items()) if (y, k) == (cycle_year, kind)]

    async def page(self, cycle_year: int, kind: EvaluationKind, state: str | None, offset: int, limit: int) -> tuple[list[Evaluation], int]:
        found = [e for e in await self.for_round(cycle_year, kind) if state is None or e.view.state == state]
        return found[offset : offset + limit], len(found)

    async def tally(self, cycle_year: int, kind: EvaluationKind) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in await self.for_round(cycle_year, kind):
            out[e.view.state] = out.get(e.view.state, 0) + 1
        return out

    async def save(self, *evaluations: Evaluation) -> None:
        for e in evaluations:
            self.rows[(e.view.cycle_year, e.view.kind, e.view.subject_code)] = copy.deepcopy(e)


class FakeUnit:
    """Satisfies ``services.verification.store.VerificationUnit``."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.runs = FakeRuns()
        self.decisions = FakeDecisions()
        self.copies = FakeCopies()
        self.wbk = FakeWbk()
        self.rounds = FakeRounds()
        self.evaluations = FakeEvaluations()
        self.now = now or dt.datetime(2032, 5, 1, 2, 0, tzinfo=dt.UTC)
        self.events: list[Event] = []

    def emit(self, *events: Event) -> None:
        self.events.extend(events)

    def emitted(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
