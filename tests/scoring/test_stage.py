"""The jury stage aggregate without NATS or a database: its state machine, every refusal code of
scoring raised by the domain, the events it returns; and the handlers over fake repositories."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.base import ObjectionDecision
from contracts.scoring import CloseStage, Criterion, DeclareConflict, SubmitScore
from services.common.errors import DomainError, NotReady
from services.scoring import handlers
from services.scoring.domain import (
    TRANSITIONS,
    Closing,
    Entrant,
    JurorInfo,
    Objection,
    Score,
    Stage,
    StageConfig,
    StageState,
    find_stage,
)

T0 = dt.datetime(2033, 6, 1, 8, tzinfo=dt.UTC)
CONFIG = StageConfig(
    criteria=(Criterion(key="mutu", name="Mutu", weight=0.5), Criterion(key="dampak", name="Dampak", weight=0.5)),
    jurors_per_proposal=2,
    advance=1,
    divergence_threshold=3.0,
    seed=1,
)
POOL = [JurorInfo("J1", "KAB-A"), JurorInfo("J2", "UNAIR"), JurorInfo("J3", "ITS"), JurorInfo("J4", "UB", conflicts=frozenset({"P1"}))]
P1, P2 = Entrant("P1", "KAB-A", "umum", "x"), Entrant("P2", "KAB-B", "umum", "x")
COPIES = {p: {"id": p, "title": f"Inovasi {p}", "group": "umum", "agency_code": a, "unit_code": f"{a}-U", "category": "x"} for p, a in (("P1", "KAB-A"), ("P2", "KAB-B"))}


def opened() -> Stage:
    stage, events = Stage.open(2033, "desk", CONFIG, ["P1", "P2"], T0, {"P1": ["J2", "J3"], "P2": ["J1", "J2"]})
    assert events[0].assignments == 4 and (events[0].load_min, events[0].load_max) == (1, 2)  # type: ignore[attr-defined]
    stage.assigned = {"P1": {"J2": False, "J3": False}, "P2": {"J1": False, "J2": False}}
    stage.loads = {"J1": 1, "J2": 2, "J3": 1}
    return stage


def code(exc: pytest.ExceptionInfo[DomainError]) -> str:
    return exc.value.code


def closed(window: dt.datetime | None = T0 + dt.timedelta(days=5)) -> Stage:
    stage = opened()
    scores = [Score("J2", "P1", 8.0, {"mutu": 8, "dampak": 8}), Score("J3", "P1", 7.0, {"mutu": 7, "dampak": 7}), Score("J1", "P2", 5.0, {"mutu": 5, "dampak": 5})]
    stage.close([P1, P2], scores, COPIES, Closing(T0, window, T0, 1, 4))
    return stage


def test_the_stored_states_move_only_forward():
    assert TRANSITIONS[StageState.OPEN] == {StageState.CLOSED} and TRANSITIONS[StageState.FINAL] == frozenset()
    stage = closed(window=None)
    summary, events = stage.finalize(T0, 0, 2)
    assert stage.state == StageState.FINAL and summary.announcement_no == "002/PANSEL-KOVABLIK/2033" and events
    again, none = stage.finalize(T0, 0, 3)
    assert again == summary and none == []  # a retry answers as it ended


def test_a_score_is_refused_for_an_unknown_juror_a_closed_stage_and_an_unassigned_proposal():
    stage = opened()
    with pytest.raises(DomainError) as e:
        stage.score("J9", "P1", {"mutu": 5, "dampak": 5}, None, T0, {"J1", "J2", "J3"})
    assert code(e) == "unknown_juror"
    with pytest.raises(DomainError) as e:
        stage.score("J1", "P1", {"mutu": 5, "dampak": 5}, None, T0, {"J1"})
    assert code(e) == "not_assigned" and e.value.details == {"juror_id": "J1", "proposal_id": "P1"}
    for values, expected in (({"mutu": 5}, "missing_criterion"), ({"mutu": 5, "dampak": 5, "x": 1}, "unknown_criterion"), ({"mutu": 50, "dampak": 5}, "off_scale")):
        with pytest.raises(DomainError) as e:
            stage.score("J2", "P1", values, None, T0, {"J2"})
        assert code(e) == expected
    stage.cancel()
    assert stage.status == StageState.CANCELLED and stage.state == StageState.OPEN
    with pytest.raises(DomainError) as e:
        stage.score("J2", "P1", {"mutu": 5, "dampak": 5}, None, T0, {"J2"})
    assert code(e) == "stage_closed"
    stage.reopen()
    entry, events = stage.score("J2", "P1", {"mutu": 5, "dampak": 5}, None, T0, {"J2"})
    assert entry.revision == 1 and stage.unscored == 3 and events[0].weighted_total == 5.0  # type: ignore[attr-defined]


def test_scores_revise_count_down_and_a_divergence_adds_one_free_juror_once():
    stage = opened()
    stage.score("J2", "P1", {"mutu": 2, "dampak": 2}, None, T0, {"J2", "J3"})
    again, _ = stage.score("J2", "P1", {"mutu": 1, "dampak": 1}, None, T0, {"J2", "J3"})
    assert again.revision == 2 and stage.unscored == 3 and [s.latest for s in stage.changes.new_scores] == [False, True]
    stage.score("J3", "P1", {"mutu": 9, "dampak": 9}, None, T0, {"J2", "J3"})
    spread = stage.needs_another_juror("P1")
    assert spread == 8.0
    added, events = stage.add_juror(P1, POOL, spread)
    assert added is None and events == []  # J1 is of P1's agency, J4 declared a conflict: no one left
    stage.assigned["P2"] = {"J1": False}
    stage.score("J1", "P2", {"mutu": 1, "dampak": 1}, None, T0, {"J1"})
    stage.assigned["P2"]["J2"] = False
    stage.latest["P2"]["J2"] = stage.latest["P2"]["J1"].__class__("J2", "P2", 1, 9.0, row_id=7)
    added, events = stage.add_juror(P2, POOL, stage.needs_another_juror("P2") or 0)
    assert added == "J4" and stage.assigned["P2"]["J4"] is True and ("P2", "J4", True) in stage.changes.assigned  # the least loaded
    assert stage.needs_another_juror("P2") is None  # once


def test_a_declared_conflict_moves_the_assignment_or_gives_it_to_no_one_and_is_refused_when_it_must():
    stage = opened()
    pool = [j for j in POOL if j.id != "J2"]
    replacement, events = stage.declare_conflict("J2", P2, "Saudara kandung", pool)
    assert replacement == "J4" and stage.assigned["P2"] == {"J1": False, "J4": False} and stage.unscored == 4
    assert stage.loads == {"J1": 1, "J2": 1, "J3": 1, "J4": 1}
    assert events[0].replacement_juror_id == "J4" and ("J2", "P2", "Saudara kandung", "J4") in stage.changes.conflicts  # type: ignore[attr-defined]
    with pytest.raises(DomainError) as e:
        stage.declare_conflict("J2", P2, "lagi", pool)
    assert code(e) == "not_assigned"
    none, _ = stage.declare_conflict("J3", P1, "Mantan pembimbing", [j for j in POOL if j.id != "J3"])
    assert none is None and stage.assigned["P1"] == {"J2": False} and stage.unscored == 3
    stage.score("J2", "P1", {"mutu": 5, "dampak": 5}, None, T0, {"J2"})
    with pytest.raises(DomainError) as e:
        stage.declare_conflict("J2", P1, "Terlambat", POOL)
    assert code(e) == "already_scored"
    stage.cancel()
    with pytest.raises(DomainError) as e:
        stage.declare_conflict("J1", P2, "Ditutup", POOL)
    assert code(e) == "stage_closed"


def test_fully_scored_is_said_once_when_nothing_is_left():
    stage = opened()
    for juror, pid in (("J2", "P1"), ("J3", "P1"), ("J1", "P2")):
        stage.score(juror, pid, {"mutu": 5, "dampak": 5}, None, T0, {juror})
    assert stage.fully_scored(4) == []
    stage.score("J2", "P2", {"mutu": 5, "dampak": 5}, None, T0, {"J2"})
    assert [e.assignments for e in stage.fully_scored(4)] == [4]  # type: ignore[attr-defined]
    assert stage.fully_scored(4) == []


def test_objections_are_refused_outside_their_window_off_the_shortlist_and_once_decided():
    stage = opened()
    with pytest.raises(DomainError) as e:
        stage.file_objection(1, "P1", "Warga", "Alasan", T0)
    assert code(e) == "objection_window_closed"  # still open for scores
    with pytest.raises(DomainError) as e:
        stage.require_shortlist()
    assert code(e) == "not_found"
    stage = closed()
    assert stage.shortlist == ["P1"] and stage.initial_shortlist == ["P1"] and stage.state == StageState.CLOSED
    with pytest.raises(DomainError) as e:
        stage.file_objection(1, "P2", "Warga", "Alasan", T0)
    assert code(e) == "not_on_shortlist"
    with pytest.raises(DomainError) as e:
        stage.file_objection(1, "P1", "Warga", "Alasan", T0 + dt.timedelta(days=6))
    assert code(e) == "objection_window_closed"
    stage.cancel()
    with pytest.raises(DomainError) as e:
        stage.file_objection(1, "P1", "Warga", "Alasan", T0)
    assert code(e) == "objection_window_closed" and e.value.details["cancelled"] is True
    stage.reopen()
    objection, _ = stage.file_objection(1, "P1", "Warga", "Alasan", T0)
    assert objection.id == "OBJ2033-0001"
    with pytest.raises(DomainError) as e:
        stage.decide_objection(None, "OBJ2033-0009", ObjectionDecision.UPHELD, "x", "TPI")
    assert code(e) == "not_found"
    with pytest.raises(DomainError) as e:
        stage.finalize(T0 + dt.timedelta(days=1), 1, 2)
    assert code(e) == "objection_window_open"
    with pytest.raises(NotReady):
        stage.finalize(T0 + dt.timedelta(days=6), 1, 2)
    stage.decide_objection(objection, objection.id, ObjectionDecision.UPHELD, "Terbukti", "TPI")
    assert stage.shortlist == ["P2"] and stage.removed == ["P1"]
    with pytest.raises(DomainError) as e:
        stage.decide_objection(objection, objection.id, ObjectionDecision.REJECTED, "x", "TPI")
    assert code(e) == "already_decided" and e.value.details == {"decision": "upheld"}
    summary, _ = stage.finalize(T0 + dt.timedelta(days=6), 0, 2)
    assert summary.removed == ["P1"] and summary.promoted == ["P2"]
    other = Objection("OBJ2033-0002", 2033, "desk", "P2", "Warga", "x", T0)
    with pytest.raises(DomainError) as e:
        stage.decide_objection(other, other.id, ObjectionDecision.REJECTED, "x", "TPI")
    assert code(e) == "stage_closed"  # final
    with pytest.raises(DomainError) as e:
        opened().finalize(T0, 0, 1)
    assert code(e) == "stage_closed"


def test_an_unknown_stage_is_refused():
    with pytest.raises(DomainError) as e:
        find_stage({}, 2033, "gala")
    assert code(e) == "unknown_stage" and e.value.details == {"stage": "gala"}


@pytest.mark.parametrize(
    ("proportions", "removed", "expected"),
    [
        (None, "B", ["A", "C"]),  # no proportions: the next ranked moves up, whatever its group
        ({"umum": 0.5, "khusus": 0.5}, "C", ["A", "B"]),  # khusus has no one left: the best remaining overall
        ({"umum": 0.5, "khusus": 0.5}, "A", ["B", "C"]),  # umum's seat goes to umum's next
    ],
)
def test_an_upheld_objection_draws_the_shortlist_again_by_the_stage_rule(proportions, removed, expected):
    ranking = [
        {"proposal_id": p, "group": g, "score": s}
        for p, g, s in (("A", "umum", 9.0), ("B", "umum", 8.0), ("C", "khusus", 7.0), ("D", "umum", 3.0), ("E", "umum", None))
    ]
    config = StageConfig(CONFIG.criteria, 2, 2, 3.0, 1, proportions)
    stage = Stage(2033, "desk", StageState.CLOSED, config, T0, ranking=ranking, shortlist=["A", "B"])
    assert stage.promote(removed) == expected
    assert stage.removed == [removed]


# --------------------------------------------------------------------------- handlers, fake repositories


class FakeStages:
    def __init__(self, stage: Stage | None) -> None:
        self.stage, self.saved = stage, 0

    async def get(self, year: int, key: str, lock: bool = False) -> Stage:
        return find_stage({} if self.stage is None else {(self.stage.cycle_year, self.stage.key): self.stage}, year, key)

    async def for_a_change_of_juror(self, year: int, key: str, proposal_id: str) -> Stage:
        return await self.get(year, key)

    async def save(self, stage: Stage) -> None:
        self.saved += 1

    async def assignments(self, stage: Stage) -> int:
        return sum(len(js) for js in stage.assigned.values())

    async def latest_scores(self, stage: Stage) -> list[Score]:
        return [Score("J2", "P1", 8.0, {"mutu": 8, "dampak": 8})]


class FakeJurors:
    async def pool(self, year: int) -> list[JurorInfo]:
        return POOL


class FakeProposals:
    async def copy(self, pid: str) -> dict[str, Any] | None:
        return COPIES.get(pid)

    async def copies(self, ids: list[str]) -> dict[str, Any]:
        return {i: COPIES[i] for i in ids}


class FakeCounters:
    async def next(self, year: int, name: str) -> int:
        return 7


class FakeUnit:
    def __init__(self, stage: Stage | None) -> None:
        self.now, self.events = T0, []  # type: ignore[var-annotated]
        self.stages, self.jurors, self.proposals, self.counters = FakeStages(stage), FakeJurors(), FakeProposals(), FakeCounters()

    def emit(self, events: Any) -> None:
        self.events.extend(events)


async def test_declare_conflict_handler_saves_and_emits_what_the_stage_returned():
    unit = FakeUnit(opened())
    cmd = DeclareConflict(request_id="r", cycle_year=2033, stage="desk", juror_id="J2", proposal_id="P2", reason="Saudara kandung")
    view = await handlers.declare_conflict(cmd, unit)  # type: ignore[arg-type]
    assert view.replacement_juror_id == "J4" and unit.stages.saved == 1
    assert [e.type for e in unit.events] == ["scoring.conflict_declared.v1"]
    with pytest.raises(DomainError) as e:
        await handlers.declare_conflict(cmd.model_copy(update={"stage": "gala"}), FakeUnit(None))  # type: ignore[arg-type]
    assert code(e) == "unknown_stage"


async def test_close_stage_handler_ranks_publishes_and_a_retry_answers_as_it_ended():
    unit = FakeUnit(opened())
    cmd = CloseStage(request_id="c", cycle_year=2033, stage="desk", at=T0, objection_window_until=T0 + dt.timedelta(days=5))
    summary = await handlers.close_stage(cmd, unit)  # type: ignore[arg-type]
    assert summary.announcement_no == "007/PANSEL-KOVABLIK/2033" and summary.assignments == 4 and summary.unscored == 1
    assert [e.type for e in unit.events] == ["scoring.stage_closed.v1", "scoring.shortlist_published.v1"]
    again = FakeUnit(unit.stages.stage)
    assert await handlers.close_stage(cmd, again) == summary and again.events == []  # type: ignore[arg-type]


async def test_submit_scores_handler_answers_each_score_of_a_batch():
    stage = opened()

    class Stages(FakeStages):
        async def for_scores(self, wanted: Any) -> dict[tuple[int, str], Stage]:
            return {(2033, "desk"): stage}

    class Jurors(FakeJurors):
        async def known(self, ids: Any) -> set[str]:
            return {"J1", "J2", "J3"}

    unit = FakeUnit(stage)
    unit.stages, unit.jurors = Stages(stage), Jurors()  # type: ignore[assignment]
    body = {"cycle_year": 2033, "stage": "desk", "scores": {"mutu": 6, "dampak": 6}}
    cmds = [SubmitScore(request_id=f"s{i}", juror_id=j, proposal_id=p, **body) for i, (j, p) in enumerate((("J2", "P1"), ("J9", "P1"), ("J1", "P1")))]
    ok, unknown, refused = await handlers.submit_scores(cmds, unit)  # type: ignore[arg-type]
    assert ok["revision"] == 1 and unknown.code == "unknown_juror" and refused.code == "not_assigned"
    assert [e.type for e in unit.events] == ["scoring.score_submitted.v1"] and stage.unscored == 3
