"""The competition's steps, shared by KOVABLIK (in CycleWorkflow itself) and KBK (in its track's
child workflow, :class:`workflows.tracks.KbkTrackWorkflow`): the call for proposals, the
administrative check, and one child JuryStageWorkflow per jury stage, each stage's final shortlist
the next one's entrants.

A workflow using them keeps a :class:`CompetitionState` in ``self.state`` and provides the hooks
``_enter`` (a phase or stage begins), ``_command`` (an activity, a refusal failing it saying why)
and ``_refused``. The steps' commands are exactly the ones CycleWorkflow sent before they were
shared (their recorded histories replay), with ``track`` naming the competition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair
from temporalio.exceptions import ChildWorkflowError, is_cancelled_exception
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from contracts.base import Competition, CyclePhase, SetRef
    from contracts.cycle import (
        CallConfig,
        CloseStageNow,
        StageConfig,
        StageOutcome,
        VerificationConfig,
        stage_workflow_id,
    )
    from contracts.registration import CallClosedSummary, CloseCall, OpenCall
    from contracts.verification import CloseVerification, StartVerification, VerificationClosedSummary
    from workflows.activities import CycleActivities
    from workflows.models import StageCloseNow, StageInput, StageResult
    from workflows.policy import request_prefix
    from workflows.stage import JuryStageWorkflow
    from workflows.timing import sleep_until, wait_for_deadline

BFEST_YEAR = SearchAttributeKey.for_int("BfestYear")
BFEST_STAGE = SearchAttributeKey.for_keyword("BfestStage")
BFEST_TRACK = SearchAttributeKey.for_keyword("BfestTrack")

CALL, VERIFICATION = "call", "verification"
C = TypeVar("C")
R = TypeVar("R")


@dataclass
class CompetitionState:
    """What a competition keeps between its steps; the status query and the updates read it."""

    phase: CyclePhase = CyclePhase.STARTING
    stage: str | None = None  # the jury stage running now
    deadlines: dict[str, datetime] = field(default_factory=dict)  # call, verification, each stage: extendable
    close_now: dict[str, CloseStageNow] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    running: str | None = None  # the step (call, verification or a stage) waiting for its deadline
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    verification_completed: bool = False
    child: ChildWorkflowHandle[JuryStageWorkflow, StageResult] | None = None
    error: str | None = None


@dataclass
class CompetitionPlan:
    """One competition's part of the config: KOVABLIK's (the top of the cycle config) or KBK's
    (``tracks.kbk``)."""

    year: int
    track: Competition
    call: CallConfig
    verification: VerificationConfig
    stages: list[StageConfig]
    ceremony_date: datetime
    seed: int
    attention_to: str  # the workflow a stage waiting for the operator tells: the cycle


class CompetitionSteps:
    """The steps; a workflow class mixes them in (see the module's docstring)."""

    state: Any  # a CompetitionState (CycleState extends it)

    async def _enter(self, phase: CyclePhase, stage: str | None, deadline: datetime | None) -> None:
        raise NotImplementedError

    async def _command(self, activity: Callable[[CycleActivities, C], Awaitable[R]], cmd: C) -> R:
        raise NotImplementedError

    def _refused(self, step: str, exc: BaseException) -> None:
        raise NotImplementedError

    def _track_args(self, comp: CompetitionPlan) -> dict[str, Any]:
        """KOVABLIK's commands as they always were (the field's default); KBK's name their track."""
        return {} if comp.track == Competition.KOVABLIK else {"track": comp.track}

    async def _call_for_proposals(self, comp: CompetitionPlan) -> CallClosedSummary:
        """Wait for the call to open, open it, wait for its (extendable) close, close it."""
        rid, call_cfg = request_prefix(), comp.call
        if workflow.now() < call_cfg.opens:
            await self._enter(CyclePhase.WAITING_FOR_CALL, None, call_cfg.opens)
            await sleep_until(call_cfg.opens, "until the call for proposals opens")
        call = await self._command(
            CycleActivities.open_call,
            OpenCall(
                request_id=f"{rid}:open_call",
                cycle_year=comp.year,
                opens_at=call_cfg.opens,
                closes_at=self.state.deadlines[CALL],
                quota_per_agency=call_cfg.quota_per_agency,
                **self._track_args(comp),
            ),
        )
        await self._enter(CyclePhase.CALL_OPEN, None, self.state.deadlines[CALL])
        self.state.running = CALL
        # A year started again after its call closed goes on to the frozen summary at once.
        if not (call.state == "closed" and workflow.patched("closed-call-is-not-waited-for")):
            await self._wait(CALL, lambda: False, "call for proposals closes")
        closed = await self._command(
            CycleActivities.close_call,
            CloseCall(request_id=f"{rid}:close_call", cycle_year=comp.year, at=workflow.now(), **self._track_args(comp)),
        )
        self._finish(CALL)
        self.state.counts["forwarded"] = closed.forwarded
        return closed

    async def _verification(self, comp: CompetitionPlan, closed: CallClosedSummary) -> VerificationClosedSummary:
        """Verify the forwarded set until every result is decided or the (extendable) deadline."""
        rid = request_prefix()
        await self._enter(CyclePhase.VERIFICATION, None, self.state.deadlines[VERIFICATION])
        self.state.running = VERIFICATION
        started = await self._command(
            CycleActivities.start_verification,
            StartVerification(
                request_id=f"{rid}:start_verification",
                cycle_year=comp.year,
                expected=SetRef(count=closed.forwarded, digest=closed.forwarded_digest),
                call_closed_at=workflow.now(),
                deadline=self.state.deadlines[VERIFICATION],
                rules=comp.verification.rules,
                at=workflow.now(),
                **self._track_args(comp),
            ),
        )
        if started.pending == 0:
            self.state.verification_completed = True
        await self._wait(VERIFICATION, lambda: self.state.verification_completed, "verification deadline")
        verified = await self._command(
            CycleActivities.close_verification,
            CloseVerification(request_id=f"{rid}:close_verification", cycle_year=comp.year, at=workflow.now(), **self._track_args(comp)),
        )
        self._finish(VERIFICATION)
        self.state.counts.update(eligible=verified.eligible, disqualified=verified.disqualified)
        if comp.track == Competition.KOVABLIK:
            self.state.counts["wbk_layak"] = verified.wbk_layak
        return verified

    async def _jury_stages(self, comp: CompetitionPlan, verified: VerificationClosedSummary) -> SetRef:
        """One child JuryStageWorkflow per stage, each stage's final shortlist the next one's
        entrants; the last one's is the ceremony's."""
        entrants = SetRef(count=verified.eligible, digest=verified.eligible_digest)
        source, previous = "verification", None
        for stage_cfg in comp.stages:
            result = await self._jury_stage(comp, stage_cfg, source, previous, entrants)
            entrants, source, previous = result.shortlist, "stage", stage_cfg.key
        return entrants

    async def _jury_stage(
        self, comp: CompetitionPlan, stage_cfg: StageConfig, source: str, previous: str | None, entrants: SetRef
    ) -> StageResult:
        key = stage_cfg.key
        await self._enter(CyclePhase.JURY, key, self.state.deadlines[key])
        self.state.running = key
        stage_input = StageInput(
            year=comp.year,
            stage=stage_cfg.model_copy(update={"deadline": self.state.deadlines[key]}),
            source=source,
            previous_stage=previous,
            entrants=entrants,
            ceremony_date=comp.ceremony_date,
            seed=comp.seed,
            parent_id=comp.attention_to,
            **self._track_args(comp),
        )
        child = self.state.child = await workflow.start_child_workflow(
            JuryStageWorkflow.run,
            stage_input,
            id=stage_workflow_id(comp.year, key),
            search_attributes=workflow.info().typed_search_attributes.updated(SearchAttributePair(BFEST_STAGE, key)),
        )
        # An operator's early close that arrived before the child existed.
        if key in self.state.close_now:
            await child.signal(JuryStageWorkflow.on_close_now, _close(self.state.close_now[key]))
        try:
            result: StageResult = await child
        except ChildWorkflowError as exc:
            self._refused(f"stage {key}", exc)
            if is_cancelled_exception(exc) and workflow.cancellation_reason() is None:
                self.state.phase = CyclePhase.FAILED
                self.state.error = f"stage {key} was cancelled on its own, not with its cycle; start the year again to run it"
            raise
        self.state.child = None
        self.state.outcomes[key] = result.outcome
        self._finish(key)
        self.state.counts[f"{key}_shortlisted"] = result.shortlist.count
        return result

    async def _wait(self, key: str, done: Any, summary: str) -> None:
        """Wait until ``done()``, an operator's early close, or the (extendable) deadline."""
        await wait_for_deadline(lambda: self.state.deadlines[key], lambda: done() or key in self.state.close_now, summary)

    def _finish(self, key: str) -> None:
        self.state.done.add(key)
        if self.state.running == key:
            self.state.running = None


def _close(close: CloseStageNow) -> StageCloseNow:
    return StageCloseNow(reason=close.reason, operator=close.operator)
