"""The jury stage aggregate: its state machine (open → closed → final, suspended while its cycle is
cancelled), its assignments, scores, divergence, declared conflicts, ranking, shortlist and public
objections. Pure: the repositories load what a command needs and save what changed; every method
raises its refusal or returns the events it causes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.base import Event, ObjectionDecision, SetRef, digest_ids
from contracts.scoring import (
    ConflictDeclared,
    Criterion,
    FinalShortlistSummary,
    JurorAdded,
    JurorsAssigned,
    ObjectionDecided,
    ObjectionFiled,
    ObjectionView,
    RankedRow,
    ScoreSubmitted,
    ScoringError,
    ShortlistFinal,
    ShortlistPublished,
    StageClosed,
    StageClosedSummary,
    StageFullyScored,
)
from services.common.errors import DomainError, NotFound, NotReady
from services.scoring.domain.rules import (
    Entrant,
    JurorInfo,
    Row,
    Score,
    check_scores,
    choose_juror,
    diverges,
    objection_window,
    rank,
    shortlist,
    weighted_total,
)


class StageState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # ranked, shortlist published, objections heard
    FINAL = "final"  # the shortlist is final
    CANCELLED = "cancelled"  # shown for an open stage whose cycle was cancelled; never stored


TRANSITIONS: dict[StageState, frozenset[StageState]] = {
    StageState.OPEN: frozenset({StageState.CLOSED}),
    StageState.CLOSED: frozenset({StageState.FINAL}),
    StageState.FINAL: frozenset(),
}
"""Where each stored state may go. A cancelled cycle suspends an open or closed stage (the
``cancelled`` mark) without changing its state; the year started again lifts the mark."""


def unknown_stage(year: int, key: str) -> DomainError:
    return DomainError(ScoringError.UNKNOWN_STAGE, f"no stage {key!r} in cycle {year}", {"stage": key})


def unknown_juror(juror_id: str) -> DomainError:
    return DomainError(ScoringError.UNKNOWN_JUROR, f"no juror {juror_id}", {"juror_id": juror_id})


def not_assigned(stage: str, juror_id: str, proposal_id: str) -> DomainError:
    return DomainError(
        ScoringError.NOT_ASSIGNED,
        f"juror {juror_id} is not assigned to proposal {proposal_id} in stage {stage}",
        {"juror_id": juror_id, "proposal_id": proposal_id},
    )


def find_stage(stages: Mapping[tuple[int, str], Stage], year: int, key: str) -> Stage:
    stage = stages.get((year, key))
    if stage is None:
        raise unknown_stage(year, key)
    return stage


@dataclass(frozen=True)
class StageConfig:
    """What the operator opened the stage with."""

    criteria: tuple[Criterion, ...]
    jurors_per_proposal: int
    advance: int
    divergence_threshold: float
    seed: int
    group_proportions: dict[str, float] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageConfig:
        return cls(
            criteria=tuple(Criterion.model_validate(c) for c in data["criteria"]),
            jurors_per_proposal=data["jurors_per_proposal"],
            advance=data["advance"],
            divergence_threshold=data["divergence_threshold"],
            seed=data["seed"],
            group_proportions=data.get("group_proportions"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "criteria": [c.model_dump(mode="json") for c in self.criteria],
            "jurors_per_proposal": self.jurors_per_proposal,
            "advance": self.advance,
            "group_proportions": self.group_proportions,
            "divergence_threshold": self.divergence_threshold,
            "seed": self.seed,
        }


@dataclass
class ScoreEntry:
    """A (juror, proposal)'s latest score: stored (``row_id``) or added by this unit of work."""

    juror_id: str
    proposal_id: str
    revision: int
    total: float
    values: dict[str, float] = field(default_factory=dict)
    comment: str | None = None
    at: dt.datetime | None = None
    latest: bool = True
    row_id: int | None = None


@dataclass
class Objection:
    id: str
    cycle_year: int
    stage: str
    proposal_id: str
    filer: str
    reason: str
    filed_at: dt.datetime
    decision: ObjectionDecision | None = None
    decision_reason: str | None = None
    decided_by: str | None = None

    def view(self) -> ObjectionView:
        return ObjectionView(
            id=self.id,
            stage=self.stage,
            proposal_id=self.proposal_id,
            filer=self.filer,
            reason=self.reason,
            filed_at=self.filed_at,
            decision=self.decision,
            decision_reason=self.decision_reason,
            decided_by=self.decided_by,
        )


@dataclass
class Changes:
    """What a unit of work did to a stage beyond its own fields, for the repository to write."""

    new_scores: list[ScoreEntry] = field(default_factory=list)
    demoted: list[int] = field(default_factory=list)  # stored score rows no longer the latest
    assigned: list[tuple[str, str, bool]] = field(default_factory=list)  # (proposal, juror, extra)
    unassigned: list[tuple[str, str]] = field(default_factory=list)  # (proposal, juror)
    conflicts: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # (juror, proposal, reason, replacement)


@dataclass
class Stage:
    cycle_year: int
    key: str
    state: StageState
    config: StageConfig
    deadline: dt.datetime
    proposals: list[str] = field(default_factory=list)
    unscored: int | None = None  # assignments without a score (None: opened before it was kept)
    fully_scored_sent: bool = False
    cancelled: bool = False
    ranking: list[dict[str, Any]] | None = None
    shortlist: list[str] | None = None
    initial_shortlist: list[str] | None = None
    removed: list[str] = field(default_factory=list)
    announcement_no: str | None = None
    closed_summary: dict[str, Any] | None = None
    window_until: dt.datetime | None = None
    final_rows: list[dict[str, Any]] | None = None
    final_summary: dict[str, Any] | None = None
    # What the repository loaded for this command: proposal → juror → extra (added on divergence),
    # proposal → juror → latest score, juror → assignments in the stage (when a juror is chosen).
    assigned: dict[str, dict[str, bool]] = field(default_factory=dict)
    latest: dict[str, dict[str, ScoreEntry]] = field(default_factory=dict)
    loads: dict[str, int] | None = None
    changes: Changes = field(default_factory=Changes)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def open(
        cls, year: int, key: str, config: StageConfig, proposals: list[str], deadline: dt.datetime, plan: Mapping[str, Sequence[str]]
    ) -> tuple[Stage, list[Event]]:
        """A new stage with the assignment plan (see ``rules.assign``)."""
        stage = cls(year, key, StageState.OPEN, config, deadline, proposals=proposals)
        loads: dict[str, int] = {}
        for pid, jurors in plan.items():
            for jid in jurors:
                stage.changes.assigned.append((pid, jid, False))
                loads[jid] = loads.get(jid, 0) + 1
        stage.unscored = len(stage.changes.assigned)
        event = JurorsAssigned(
            cycle_year=year,
            stage=key,
            proposals=len(proposals),
            jurors=len(loads),
            assignments=len(stage.changes.assigned),
            load_min=min(loads.values(), default=0),
            load_max=max(loads.values(), default=0),
            proposal_ids=sorted(proposals),
        )
        return stage, [event]

    @property
    def status(self) -> StageState:
        """The state as shown: an open stage of a cancelled cycle is ``cancelled``."""
        return StageState.CANCELLED if self.cancelled and self.state == StageState.OPEN else self.state

    def _move(self, target: StageState) -> None:
        if target not in TRANSITIONS[self.state]:
            raise DomainError(ScoringError.STAGE_CLOSED, f"stage {self.key} is {self.status}; it cannot become {target}", {"stage": self.key})
        self.state = target

    def cancel(self) -> None:
        """Its cycle was cancelled: an open stage takes no more scores, a closed one no more objections."""
        if self.state in (StageState.OPEN, StageState.CLOSED):
            self.cancelled = True

    def reopen(self) -> None:
        """The year's cycle started again: its jurors go on, its public may object again."""
        self.cancelled = False

    def _require_open(self, what: str) -> None:
        if self.status != StageState.OPEN:
            raise DomainError(ScoringError.STAGE_CLOSED, f"stage {self.key} is {self.status}; {what}", {"stage": self.key})

    def _require_assigned(self, juror_id: str, proposal_id: str) -> None:
        if juror_id not in self.assigned.get(proposal_id, {}):
            raise not_assigned(self.key, juror_id, proposal_id)

    # ------------------------------------------------------------------ scores

    def score(
        self, juror_id: str, proposal_id: str, values: dict[str, float], comment: str | None, at: dt.datetime, jurors: Collection[str]
    ) -> tuple[ScoreEntry, list[Event]]:
        """A juror's (re)score of an assigned proposal; ``jurors`` are the known jurors."""
        if juror_id not in jurors:
            raise unknown_juror(juror_id)
        self._require_open("scores can no longer change")
        self._require_assigned(juror_id, proposal_id)
        check_scores(values, self.config.criteria)
        total = weighted_total(values, self.config.criteria)
        scores = self.latest.setdefault(proposal_id, {})
        previous = scores.get(juror_id)
        if previous is None:
            self.unscored = (self.unscored or 0) - 1
        elif previous.row_id is None:
            previous.latest = False
        else:
            self.changes.demoted.append(previous.row_id)
        entry = ScoreEntry(juror_id, proposal_id, 1 if previous is None else previous.revision + 1, total, dict(values), comment, at)
        scores[juror_id] = entry
        self.changes.new_scores.append(entry)
        event = ScoreSubmitted(
            cycle_year=self.cycle_year, stage=self.key, juror_id=juror_id, proposal_id=proposal_id, weighted_total=total, revision=entry.revision
        )
        return entry, [event]

    def needs_another_juror(self, proposal_id: str) -> float | None:
        """The spread of a proposal's totals when its jurors disagree beyond the threshold and no
        juror was added for it yet (once per proposal)."""
        spread = diverges((s.total for s in self.latest.get(proposal_id, {}).values()), self.config.divergence_threshold)
        if spread is None or any(self.assigned.get(proposal_id, {}).values()):
            return None
        return spread

    def add_juror(self, entrant: Entrant, pool: Iterable[JurorInfo], spread: float) -> tuple[str | None, list[Event]]:
        """One more juror for a divergent proposal, chosen by the rule (``choose_juror``)."""
        pick = self._assign_another(entrant, pool, extra=True)
        if pick is None:
            return None, []
        return pick, [JurorAdded(cycle_year=self.cycle_year, stage=self.key, proposal_id=entrant.id, juror_id=pick, spread=round(spread, 4))]

    def _assign_another(self, entrant: Entrant, pool: Iterable[JurorInfo], extra: bool) -> str | None:
        loads = self.loads if self.loads is not None else {}
        assigned = self.assigned.setdefault(entrant.id, {})
        pick = choose_juror(entrant, pool, assigned, loads)
        if pick is None:
            return None
        assigned[pick.id] = extra
        loads[pick.id] = loads.get(pick.id, 0) + 1
        self.unscored = (self.unscored or 0) + 1
        self.changes.assigned.append((entrant.id, pick.id, extra))
        return pick.id

    def declare_conflict(self, juror_id: str, entrant: Entrant, reason: str, pool: Iterable[JurorInfo]) -> tuple[str | None, list[Event]]:
        """A juror gives back an assignment they have a conflict of interest with, before scoring
        it: it goes to the juror the rule chooses (``pool`` already bars the declared conflict),
        or to no one if none is left."""
        self._require_open("assignments can no longer change")
        self._require_assigned(juror_id, entrant.id)
        if juror_id in self.latest.get(entrant.id, {}):
            raise DomainError(
                ScoringError.ALREADY_SCORED,
                f"juror {juror_id} has already scored proposal {entrant.id} in stage {self.key}; a conflict is declared before scoring",
                {"juror_id": juror_id, "proposal_id": entrant.id},
            )
        extra = self.assigned[entrant.id].pop(juror_id)
        self.changes.unassigned.append((entrant.id, juror_id))
        if self.loads is not None:
            self.loads[juror_id] -= 1
        self.unscored = (self.unscored or 0) - 1
        replacement = self._assign_another(entrant, pool, extra)
        self.changes.conflicts.append((juror_id, entrant.id, reason, replacement))
        event = ConflictDeclared(
            cycle_year=self.cycle_year, stage=self.key, proposal_id=entrant.id, juror_id=juror_id, replacement_juror_id=replacement, reason=reason
        )
        return replacement, [event]

    def fully_scored(self, assignments: int) -> list[Event]:
        """Once every assignment has a score, say so, once (``assignments``: the stage's count)."""
        if not self.may_be_fully_scored or not assignments:
            return []
        self.fully_scored_sent = True
        return [StageFullyScored(cycle_year=self.cycle_year, stage=self.key, assignments=assignments)]

    @property
    def may_be_fully_scored(self) -> bool:
        return not self.fully_scored_sent and self.status == StageState.OPEN and self.unscored == 0

    # ------------------------------------------------------------------ close and shortlist

    def close(self, entrants: Sequence[Entrant], scores: Sequence[Score], copies: Mapping[str, Mapping[str, Any]], closing: Closing) -> tuple[StageClosedSummary, list[Event]]:
        """Rank, draw the shortlist by the stage's rule, publish it with its objection window."""
        if self.closed_summary is not None:  # a retry answers as it ended
            return StageClosedSummary.model_validate(self.closed_summary), []
        ranked = rank(entrants, scores, self.config.criteria)
        rows = ranked_rows(ranked, copies)
        window_until = objection_window(closing.at, closing.window_until, closing.now)
        groups = {p: copies[p]["group"] for p in self.proposals}
        chosen = shortlist(ranked, groups, self.config.advance, self.config.group_proportions)
        summary = StageClosedSummary(
            cycle_year=self.cycle_year,
            stage=self.key,
            ranked=len(rows),
            unscored=sum(1 for r in ranked if r.score is None),
            shortlist=SetRef(count=len(chosen), digest=digest_ids(chosen)),
            announcement_no=announcement(closing.number, self.cycle_year),
            assignments=closing.assignments,
            scores=len(scores),
            objection_window_until=window_until,
        )
        self._move(StageState.CLOSED)
        self.cancelled = False  # as it always was: a close ends a suspension
        self.ranking, self.shortlist, self.initial_shortlist, self.announcement_no = rows, chosen, chosen, summary.announcement_no
        self.window_until, self.closed_summary = window_until, summary.model_dump(mode="json")
        by_id = {r["proposal_id"]: r for r in rows}
        published = ShortlistPublished(
            cycle_year=self.cycle_year,
            stage=self.key,
            announcement_no=summary.announcement_no,
            rows=[RankedRow.model_validate(by_id[p]) for p in chosen],
            objection_window_until=window_until,
        )
        return summary, [StageClosed(cycle_year=self.cycle_year, summary=summary), published]

    def require_shortlist(self) -> None:
        if self.ranking is None or self.shortlist is None:
            raise DomainError(ScoringError.NOT_FOUND, f"stage {self.key} has no shortlist yet (it is {self.status})")

    # ------------------------------------------------------------------ objections

    def file_objection(self, number: int, proposal_id: str, filer: str, reason: str, at: dt.datetime) -> tuple[Objection, list[Event]]:
        until = self.window_until.isoformat() if self.window_until else "no window"
        if self.cancelled and self.state == StageState.CLOSED:
            raise DomainError(
                ScoringError.OBJECTION_WINDOW_CLOSED,
                f"objections to stage {self.key} are not accepted: its cycle was cancelled",
                {"window_until": until, "cancelled": True},
            )
        if self.status != StageState.CLOSED or self.window_until is None or at > self.window_until:
            raise DomainError(
                ScoringError.OBJECTION_WINDOW_CLOSED,
                f"objections to stage {self.key} are not accepted now (window: {until}, stage {self.status})",
                {"window_until": until},
            )
        if proposal_id not in (self.shortlist or []):
            raise DomainError(ScoringError.NOT_ON_SHORTLIST, f"proposal {proposal_id} is not on the {self.key} shortlist")
        objection = Objection(f"OBJ{self.cycle_year}-{number:04d}", self.cycle_year, self.key, proposal_id, filer, reason, at)
        return objection, [ObjectionFiled(cycle_year=self.cycle_year, objection=objection.view())]

    def decide_objection(self, objection: Objection | None, objection_id: str, decision: ObjectionDecision, reason: str, by: str) -> list[Event]:
        if objection is None or objection.stage != self.key or objection.cycle_year != self.cycle_year:
            raise NotFound(ScoringError.NOT_FOUND, f"no objection {objection_id} in stage {self.key}")
        if self.state == StageState.FINAL:
            raise DomainError(ScoringError.STAGE_CLOSED, f"the {self.key} shortlist is final")
        if self.cancelled:
            raise DomainError(ScoringError.STAGE_CLOSED, f"stage {self.key}'s cycle was cancelled; objections are decided once it is started again")
        if objection.decision is not None:
            raise DomainError(
                ScoringError.ALREADY_DECIDED, f"objection {objection.id} was already decided ({objection.decision})", {"decision": objection.decision}
            )
        objection.decision, objection.decision_reason, objection.decided_by = decision, reason, by
        if decision == ObjectionDecision.UPHELD and self.shortlist and objection.proposal_id in self.shortlist:
            self.shortlist = self.promote(objection.proposal_id)
        return [ObjectionDecided(cycle_year=self.cycle_year, objection=objection.view())]

    def promote(self, removed: str) -> list[str]:
        """Remove a proposal and draw the shortlist again from the ranking without it (and without any
        removed before), by the stage's own rule: without proportions the next ranked proposal moves
        up, whatever its group; with them the group's next, or the best remaining overall if the
        group has none left."""
        ranking = self.ranking or []
        excluded = set(self.removed) | {removed}
        self.removed = sorted(excluded)
        rows = [Row(r["proposal_id"], r["score"], 0) for r in ranking if r["proposal_id"] not in excluded]
        groups = {r["proposal_id"]: r["group"] for r in ranking}
        return shortlist(rows, groups, self.config.advance, self.config.group_proportions)

    def finalize(self, at: dt.datetime, pending: int, number: int) -> tuple[FinalShortlistSummary, list[Event]]:
        """The shortlist made final once its window has passed and every objection is decided."""
        if self.final_summary is not None:
            return FinalShortlistSummary.model_validate(self.final_summary), []
        if self.status != StageState.CLOSED:
            raise DomainError(ScoringError.STAGE_CLOSED, f"stage {self.key} is {self.status}; close it before finalising")
        if self.window_until is not None and at < self.window_until:
            until = self.window_until.isoformat()
            raise DomainError(
                ScoringError.OBJECTION_WINDOW_OPEN,
                f"the objection window of stage {self.key} is open until {until}; the shortlist is final only after it",
                {"window_until": until},
            )
        if pending:
            raise NotReady(message=f"{pending} objection(s) to stage {self.key} are not decided yet", details={"pending": pending})
        by_id = {r["proposal_id"]: r for r in self.ranking or []}
        chosen = list(self.shortlist or [])
        first = set(self.initial_shortlist or [])
        summary = FinalShortlistSummary(
            cycle_year=self.cycle_year,
            stage=self.key,
            shortlist=SetRef(count=len(chosen), digest=digest_ids(chosen)),
            removed=sorted(set(self.removed)),
            promoted=sorted(p for p in chosen if p not in first),
            announcement_no=announcement(number, self.cycle_year),
        )
        self._move(StageState.FINAL)
        self.final_rows = [{**by_id[p], "rank": i} for i, p in enumerate(chosen, start=1)]
        self.final_summary = summary.model_dump(mode="json")
        final = ShortlistFinal(
            cycle_year=self.cycle_year,
            stage=self.key,
            announcement_no=summary.announcement_no,
            rows=[RankedRow.model_validate(r) for r in self.final_rows],
            digest=summary.shortlist.digest,
        )
        return summary, [final]


@dataclass(frozen=True)
class Closing:
    """What a close needs besides the scores: when it was asked for and handled, the window asked
    for, the announcement's number and the stage's assignment count."""

    at: dt.datetime
    window_until: dt.datetime | None
    now: dt.datetime
    number: int
    assignments: int


def announcement(number: int, year: int) -> str:
    return f"{number:03d}/PANSEL-KOVABLIK/{year}"


def ranked_rows(ranked: Sequence[Row], copies: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ranking as published: each row with its proposal's title, unit and agency."""
    out = []
    for i, r in enumerate(ranked, start=1):
        d = copies[r.proposal]
        out.append(
            RankedRow(
                rank=i,
                proposal_id=r.proposal,
                title=d["title"],
                group=d["group"],
                agency_code=d["agency_code"],
                unit_code=d["unit_code"],
                unit_name=d.get("unit_name"),
                agency_name=d.get("agency_name"),
                category=d.get("category"),
                score=None if r.score is None else round(r.score, 4),
                raw_score=None if r.raw is None else round(r.raw, 4),
                jurors=r.jurors,
                explanation=r.explanation,
            ).model_dump(mode="json")
        )
    return out


def entrant(data: Mapping[str, Any]) -> Entrant:
    """A proposal as scoring's rules see it, from its copy of the verified proposal."""
    return Entrant(id=data["id"], agency=data["agency_code"], group=data["group"], category=data["category"], forwarded_at=data.get("forwarded_at") or "")
