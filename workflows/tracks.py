"""The tracks beside KOVABLIK and WBK, each a child of CycleWorkflow (``bfest-cycle-<year>-<track>``,
search attributes ``BfestYear``, ``BfestTrack`` and ``BfestStage``), all joining at the ceremony.

EvaluationTrackWorkflow (SAKIP, RB, CETTAR): wait for the window to open → ``open_evaluation`` →
evaluators enter sheets and reviewers approve them until the (extendable) deadline →
``close_evaluation`` → the approved results' summary, which the ceremony expects.

KbkTrackWorkflow (the work-culture groups' competition): its own call for risalah, administrative
check (woken early by ``verification_completed`` for track kbk, through the bridge) and jury stages,
the very steps KOVABLIK runs (:mod:`workflows.competition`) → its final shortlist.

Each tells its cycle of its progress (signal ``track_progress``), so the cycle's ``status`` query
shows every track; the cycle sends them the operators' extensions and early closes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.base import Competition, CyclePhase, Track
    from contracts.cycle import KBK_CALL, KBK_VERIFICATION, CloseStageNow, TrackStatusView, track_workflow_id
    from contracts.verification import CloseEvaluation, OpenEvaluation
    from workflows.activities import CycleActivities
    from workflows.competition import (
        BFEST_STAGE,
        CALL,
        VERIFICATION,
        CompetitionPlan,
        CompetitionState,
        CompetitionSteps,
        _close,
    )
    from workflows.models import (
        EvaluationTrackInput,
        KbkTrackInput,
        StageDeadline,
        TrackCloseNow,
        TrackDeadline,
        TrackResult,
        read_input,
    )
    from workflows.policy import COMMAND_RETRY, COMMAND_TIMEOUT, request_prefix
    from workflows.stage import JuryStageWorkflow
    from workflows.timing import sleep_until, wait_for_deadline

C = TypeVar("C")
R = TypeVar("R")
TRACK_PROGRESS = "track_progress"

KBK_STEPS = {CALL: KBK_CALL, VERIFICATION: KBK_VERIFICATION}
"""KBK's call and check as the cycle's operators name them (its stages go by their own keys)."""


async def _command(activity: Callable[[CycleActivities, C], Awaitable[R]], cmd: C) -> R:
    return await workflow.execute_activity_method(activity, cmd, start_to_close_timeout=COMMAND_TIMEOUT, retry_policy=COMMAND_RETRY)


async def _tell_cycle(parent_id: str, view: TrackStatusView) -> None:
    try:
        await workflow.get_external_workflow_handle(parent_id).signal(TRACK_PROGRESS, view)
    except Exception as exc:  # noqa: BLE001 - a track started on its own has no cycle to tell
        workflow.logger.warning("track %s could not tell its cycle %s: %s", view.track, parent_id, exc)


def _refusal(step: str, exc: BaseException) -> ApplicationError | None:
    """A service's refusal somewhere in ``exc``'s causes, as the track's own failure saying why."""
    cause: BaseException | None = exc if isinstance(exc, ApplicationError) else getattr(exc, "cause", None)
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None)
    if isinstance(cause, ApplicationError):
        return ApplicationError(f"{step} failed: {cause.message}", type=cause.type, non_retryable=True)
    return None


@workflow.defn(name="EvaluationTrackWorkflow")
class EvaluationTrackWorkflow:
    def __init__(self) -> None:
        self.inp: EvaluationTrackInput | None = None
        self.deadline: datetime | None = None
        self.phase = "pending"
        self.counts: dict[str, int] = {}

    @workflow.run
    async def run(self, raw: Any = None) -> TrackResult:
        """``raw`` is an :class:`EvaluationTrackInput`."""
        inp = self.inp = read_input(EvaluationTrackInput, raw, "evaluation track", "an EvaluationTrackInput (the cycle workflow starts its tracks)")
        cfg, kind, rid = inp.config, inp.kind, request_prefix()
        self.deadline = cfg.deadline
        if workflow.now() < cfg.opens:
            await self._enter("waiting")
            await sleep_until(cfg.opens, f"until the {kind.value} evaluation opens")
        try:
            await _command(
                CycleActivities.open_evaluation,
                OpenEvaluation(
                    request_id=f"{rid}:open_evaluation",
                    cycle_year=inp.year,
                    kind=kind,
                    rubric=cfg.rubric,
                    deadline=self.deadline,
                    evaluators=cfg.evaluators,
                    reviewers=cfg.reviewers,
                    at=workflow.now(),
                ),
            )
            await self._enter("evaluation")
            await wait_for_deadline(lambda: self.due, lambda: False, f"{kind.value} evaluation deadline")
            await self._enter("closing")
            closed = await _command(
                CycleActivities.close_evaluation,
                CloseEvaluation(request_id=f"{rid}:close_evaluation", cycle_year=inp.year, kind=kind, at=workflow.now()),
            )
        except Exception as exc:
            refused = _refusal(f"track {kind.value}", exc)
            if refused is None:
                raise
            await self._enter("failed")
            raise refused from exc
        self.counts = {"approved": closed.approved, "unapproved": closed.unapproved, **{f"grade_{g}": n for g, n in closed.grades.items()}}
        await self._enter("done")
        return TrackResult(track=Track(kind.value), counts=self.counts, expected_results=closed.approved)

    @property
    def due(self) -> datetime:
        if self.deadline is None:
            raise ValueError("the track has not started yet")
        return self.deadline

    @workflow.signal(name="extend_deadline")
    def on_extend(self, change: TrackDeadline) -> None:
        # Validated by the cycle's update validator before it is sent.
        self.deadline = change.until
        workflow.logger.info("evaluation deadline extended to %s by %s: %s", change.until, change.operator, change.reason)

    @workflow.query(name="status")
    def status(self) -> TrackStatusView:
        inp = self.inp
        track = inp.kind.value if inp else "?"
        state = self.phase if self.phase in ("pending", "done", "failed") else "running"
        return TrackStatusView(
            track=track,
            workflow_id=track_workflow_id(inp.year, track) if inp else "",
            state=state,
            phase=None if state != "running" else self.phase,
            deadline=self.deadline,
            counts=self.counts,
        )

    async def _enter(self, phase: str) -> None:
        assert self.inp is not None
        self.phase = phase
        workflow.upsert_search_attributes([BFEST_STAGE.value_set(phase)])
        await _tell_cycle(self.inp.parent_id, self.status())


@workflow.defn(name="KbkTrackWorkflow")
class KbkTrackWorkflow(CompetitionSteps):
    def __init__(self) -> None:
        self.state = CompetitionState()
        self.inp: KbkTrackInput | None = None

    @workflow.run
    async def run(self, raw: Any = None) -> TrackResult:
        """``raw`` is a :class:`KbkTrackInput`."""
        inp = self.inp = read_input(KbkTrackInput, raw, "kbk track", "a KbkTrackInput (the cycle workflow starts its tracks)")
        cfg = inp.config
        self.state.deadlines = {CALL: cfg.call.closes, VERIFICATION: cfg.verification.deadline}
        self.state.deadlines.update({s.key: s.deadline for s in cfg.stages})
        plan = CompetitionPlan(
            year=inp.year,
            track=Competition.KBK,
            call=cfg.call,
            verification=cfg.verification,
            stages=cfg.stages,
            ceremony_date=inp.ceremony_date,
            seed=inp.seed,
            attention_to=inp.parent_id,
        )
        try:
            closed = await self._call_for_proposals(plan)
            verified = await self._verification(plan, closed)
            shortlist = await self._jury_stages(plan, verified)
        except ApplicationError:
            if self.state.phase == CyclePhase.FAILED:  # a refusal: the cycle's status says so now
                await _tell_cycle(inp.parent_id, self.status())
            raise
        self.state.phase = CyclePhase.COMPLETED
        await _tell_cycle(inp.parent_id, self.status())
        return TrackResult(
            track=Track.KBK,
            counts=self.state.counts,
            final_stage=cfg.stages[-1].key,
            shortlist=shortlist,
            stages=[self.state.outcomes[s.key] for s in cfg.stages],
        )

    # ------------------------------------------------------------------ signals & query

    @workflow.signal(name="verification_completed")
    def on_verification_completed(self) -> None:
        self.state.verification_completed = True

    @workflow.signal(name="extend_deadline")
    async def on_extend(self, change: TrackDeadline) -> None:
        # Validated by the cycle's update validator before it is sent; the running stage first.
        if self.state.child is not None and self.state.running == change.step:
            await self.state.child.signal(JuryStageWorkflow.on_extend, StageDeadline(until=change.until, reason=change.reason, operator=change.operator))
        self.state.deadlines[change.step] = change.until

    @workflow.signal(name="close_now")
    async def on_close_now(self, close: TrackCloseNow) -> None:
        now = CloseStageNow(stage=close.step, reason=close.reason, operator=close.operator)
        if self.state.child is not None and self.state.running == close.step:
            await self.state.child.signal(JuryStageWorkflow.on_close_now, _close(now))
        self.state.close_now[close.step] = now

    @workflow.query(name="status")
    def status(self) -> TrackStatusView:
        year = self.inp.year if self.inp else 0
        phase = self.state.phase
        state = {CyclePhase.STARTING: "pending", CyclePhase.COMPLETED: "done", CyclePhase.FAILED: "failed", CyclePhase.CANCELLED: "cancelled"}.get(phase, "running")
        running = self.state.running if self.state.running not in self.state.done else None
        return TrackStatusView(
            track=Track.KBK.value,
            workflow_id=track_workflow_id(year, Track.KBK.value),
            state=state,
            phase=(KBK_STEPS.get(running, running) if running else phase.value) if state == "running" else None,
            deadline=self.state.deadlines.get(running) if running else None,
            counts=self.state.counts,
        )

    # ------------------------------------------------------------------ the steps' hooks

    async def _enter(self, phase: CyclePhase, stage: str | None, deadline: datetime | None) -> None:
        assert self.inp is not None
        self.state.phase, self.state.stage = phase, stage
        workflow.upsert_search_attributes([BFEST_STAGE.value_set(stage or phase.value)])
        workflow.logger.info("kbk %s → %s", self.inp.year, stage or phase.value)
        # The step starts running just after it is entered: say which one to the cycle.
        step = stage or {CyclePhase.CALL_OPEN: CALL, CyclePhase.VERIFICATION: VERIFICATION}.get(phase)
        view = self.status()
        if step is not None and view.state == "running":
            view = view.model_copy(update={"phase": KBK_STEPS.get(step, step), "deadline": self.state.deadlines.get(step, deadline)})
        await _tell_cycle(self.inp.parent_id, view)

    async def _command(self, activity: Callable[[CycleActivities, C], Awaitable[R]], cmd: C) -> R:
        try:
            return await _command(activity, cmd)
        except Exception as exc:
            self._refused(activity.__name__, exc)
            raise

    def _refused(self, step: str, exc: BaseException) -> None:
        refused = _refusal(f"track kbk: {step}", exc)
        if refused is not None:
            self.state.phase, self.state.error = CyclePhase.FAILED, refused.message
            raise refused from exc
