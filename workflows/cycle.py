"""CycleWorkflow (``bfest-cycle-<year>``, task queue ``bfest-cycle``): one Bureaucracy Fest year,
from the call for proposals to the award ceremony.

validate awards → wait for the call to open → open the call → wait until it closes (durable timer,
extendable) → close the call → verification (until ``verification_completed`` or the deadline) →
one child JuryStageWorkflow per jury stage, each stage's final shortlist feeding the next → wait
for the ceremony → determine and announce the awards → archive the year → complete with a summary.

A year with tracks (``[tracks]`` in its config) starts one child workflow per enabled track right
after ``cycle_started`` (:mod:`workflows.tracks`: SAKIP, RB and CETTAR evaluations, the KBK
competition, whose call, check and stages are KOVABLIK's own steps, :mod:`workflows.competition`)
and waits for all of them before ``determine_awards``, which gets each track's expectations.

Operators steer it with the updates ``extend_deadline`` and ``close_stage_now`` (validated before
anything reaches the history) and cancellation; admins read it with the query ``status``, the
search attributes ``BfestYear``/``BfestStage`` (``BfestTrack`` on the tracks) and the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    is_cancelled_exception,
)
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():

    from contracts.awards import (
        AnnounceAwards,
        AwardsSummary,
        DetermineAwards,
        GetResults,
        TrackAwardsInput,
        ValidateAwards,
    )
    from contracts.base import Competition, CyclePhase, EvaluationKind, Event, SetRef, Track
    from contracts.cycle import (
        KBK_CALL,
        KBK_VERIFICATION,
        CloseStageNow,
        CycleCancelled,
        CycleCompleted,
        CycleConfig,
        CycleInput,
        CycleResult,
        CycleStageChanged,
        CycleStarted,
        CycleStatus,
        ExtendDeadline,
        StageConfig,
        StageOutcome,
        StageStatusView,
        TrackStatusView,
        stage_workflow_id,
        track_workflow_id,
    )
    from contracts.registration import ArchiveYear
    from contracts.verification import VerificationClosedSummary
    from workflows.activities import CycleActivities
    from workflows.competition import (
        BFEST_STAGE,
        BFEST_TRACK,
        BFEST_YEAR,
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
        PublishEvent,
        StageAttention,
        StageDeadline,
        TrackCloseNow,
        TrackDeadline,
        TrackResult,
        read_input,
    )
    from workflows.policy import COMMAND_RETRY, COMMAND_TIMEOUT, request_prefix
    from workflows.stage import JuryStageWorkflow
    from workflows.timing import sleep_until
    from workflows.tracks import TRACK_PROGRESS, EvaluationTrackWorkflow, KbkTrackWorkflow

__all__ = ["BFEST_STAGE", "BFEST_TRACK", "BFEST_YEAR", "CycleWorkflow"]

C = TypeVar("C")
R = TypeVar("R")
KBK_STEP_OF = {KBK_CALL: CALL, KBK_VERIFICATION: VERIFICATION}
"""The KBK track's own names for the steps the cycle's operators call kbk_call, kbk_verification."""


@dataclass
class CycleState(CompetitionState):
    """What the cycle keeps between its steps (KOVABLIK's, the tracks'); the status query and the
    updates read it."""

    config: CycleConfig | None = None
    awards: dict[str, list[str]] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)  # the operators' updates, for the auditor
    attention: dict[str, str] = field(default_factory=dict)  # stage -> why it waits for the operator
    warnings: list[str] = field(default_factory=list)
    tracks: dict[str, TrackStatusView] = field(default_factory=dict)  # as each track last told
    track_handles: dict[str, ChildWorkflowHandle[Any, TrackResult]] = field(default_factory=dict)
    track_deadlines: dict[str, datetime] = field(default_factory=dict)  # sakip, rb, cettar, kbk_call, kbk_verification, KBK's stages


@workflow.defn(name="CycleWorkflow")
class CycleWorkflow(CompetitionSteps):
    state: CycleState

    def __init__(self) -> None:
        self.state = CycleState()

    @property
    def cfg(self) -> CycleConfig:
        """The year's config (set as the run starts; updates and queries before it are refused)."""
        if self.state.config is None:
            raise ValueError("the cycle has not started yet")
        return self.state.config

    # ------------------------------------------------------------------ the year

    @workflow.run
    async def run(self, raw: Any = None) -> CycleResult:
        """``raw`` is a :class:`CycleInput` (see :func:`read_input`)."""
        inp = read_input(CycleInput, raw, "cycle", '{"config": <cycle config>} (bfest cycle start does)')
        cfg = self.state.config = inp.config
        self.state.deadlines = {CALL: cfg.call.closes, VERIFICATION: cfg.verification.deadline}
        self.state.deadlines.update({s.key: s.deadline for s in cfg.stages})
        try:
            return await self._run_year(inp)
        except Exception:
            await self._end_tracks()  # a year that failed leaves no track running (cancelled: done)
            raise

    async def _run_year(self, inp: CycleInput) -> CycleResult:
        year = inp.config.year
        try:
            return await self._run(inp)
        except (asyncio.CancelledError, CancelledError):
            await self._cancelled(year)
            raise
        except (ActivityError, ChildWorkflowError) as exc:
            # A cancel of the cycle that comes while a command or a jury stage runs reaches it as
            # that step's cancellation (cycles recorded before this ended there, without the clean-up).
            cancelled = is_cancelled_exception(exc) and workflow.cancellation_reason() is not None
            if not cancelled or not workflow.patched("cancel-during-a-step"):
                raise
            phase = self.state.phase.value
            await self._cancelled(year)
            raise CancelledError(f"cycle {year} cancelled in phase {phase}") from exc

    async def _cancelled(self, year: int) -> None:
        workflow.logger.warning("cycle %s cancelled in phase %s", year, self.state.phase.value)
        phase, stage = self.state.phase, self.state.stage
        self.state.phase = CyclePhase.CANCELLED
        # Cancellation was delivered once; the clean-up below still runs.
        await self._publish(CycleCancelled(**self._event_base("cancelled"), phase=phase, stage=stage))
        self._search(CyclePhase.CANCELLED.value)
        await self._end_tracks()

    async def _run(self, inp: CycleInput) -> CycleResult:
        cfg = inp.config
        self._search("starting")
        workflow.upsert_memo({"config": cfg.summary()})
        await self._command(
            CycleActivities.validate_awards,
            ValidateAwards(request_id=f"{request_prefix()}:validate_awards", cycle_year=cfg.year, rules=cfg.awards),
        )
        await self._publish(CycleStarted(**self._event_base("started"), config_summary=cfg.summary()))
        await self._start_tracks(cfg)  # none in a year without tracks: its commands are as before
        plan = CompetitionPlan(
            year=cfg.year,
            track=Competition.KOVABLIK,
            call=cfg.call,
            verification=cfg.verification,
            stages=cfg.stages,
            ceremony_date=cfg.ceremony.date,
            seed=cfg.seed,
            attention_to=workflow.info().workflow_id,
        )
        closed = await self._call_for_proposals(plan)
        verified = await self._verification(plan, closed)
        finalists = await self._jury_stages(plan, verified)
        return await self._ceremony(cfg, finalists, verified)

    async def _ceremony(self, cfg: CycleConfig, finalists: SetRef, verified: VerificationClosedSummary) -> CycleResult:
        """Wait for the ceremony, determine and announce the awards, complete the year."""
        rid, year = request_prefix(), cfg.year
        if workflow.now() < cfg.ceremony.date:
            await self._enter(CyclePhase.WAITING_FOR_CEREMONY, None, cfg.ceremony.date)
            await sleep_until(cfg.ceremony.date, f"until the ceremony at {cfg.ceremony.venue}")
        tracks = await self._tracks_finished()  # every track joins the one ceremony
        await self._enter(CyclePhase.CEREMONY, None, None)
        determined = await self._command(
            CycleActivities.determine_awards,
            DetermineAwards(
                request_id=f"{rid}:determine_awards",
                cycle_year=year,
                rules=cfg.awards,
                final_stage=cfg.stages[-1].key,
                expected_shortlist=finalists,
                expected_wbk_layak=verified.wbk_layak,
                ceremony=cfg.ceremony,
                at=workflow.now(),
                tracks=_awards_input(tracks),
            ),
        )
        announced = await self._command(
            CycleActivities.announce_awards,
            AnnounceAwards(request_id=f"{rid}:announce_awards", cycle_year=year, ceremony=cfg.ceremony, at=workflow.now()),
        )
        # The year's proposals join the public archive (cycles recorded before it ended without).
        if workflow.patched("archive-year"):
            await self._command(
                CycleActivities.archive_year,
                ArchiveYear(
                    request_id=f"{rid}:archive_year",
                    cycle_year=year,
                    expected_winners=sum(determined.categories.values()),
                    at=workflow.now(),
                ),
            )
        state = self.state
        state.awards = await self._command(CycleActivities.award_winners, GetResults(request_id=f"{rid}:results", cycle_year=year))
        state.counts["certificates"] = determined.certificates
        state.warnings = _award_warnings(cfg, determined, state.awards, state.outcomes)
        for warning in state.warnings:
            workflow.logger.warning("cycle %s: %s", year, warning)
        state.phase = CyclePhase.COMPLETED
        self._search(CyclePhase.COMPLETED.value)
        await self._publish(CycleCompleted(**self._event_base("completed"), awards=state.awards, counts=state.counts))
        workflow.logger.info("cycle %s completed: %s", year, {k: len(v) for k, v in state.awards.items()})
        return CycleResult(
            year=year,
            phase=CyclePhase.COMPLETED,
            counts=state.counts,
            stages=[state.outcomes[s.key] for s in cfg.stages],
            awards=state.awards,
            announcement_no=announced.announcement_no,
            warnings=state.warnings,
        )

    # ------------------------------------------------------------------ the tracks

    async def _start_tracks(self, cfg: CycleConfig) -> None:
        """One child workflow per enabled track (SAKIP, RB, CETTAR, KBK), running beside KOVABLIK
        until the ceremony; the cycle closing (cancelled, failed) cancels them."""
        me = workflow.info().workflow_id
        tracks = cfg.tracks
        for name, ev in tracks.evaluations().items():
            self.state.track_deadlines[name] = ev.deadline
            inp: Any = EvaluationTrackInput(year=cfg.year, kind=EvaluationKind(name), config=ev, parent_id=me)
            await self._start_track(cfg, name, EvaluationTrackWorkflow.run, inp, ev.deadline)
        if tracks.kbk is not None:
            kbk = tracks.kbk
            self.state.track_deadlines.update({KBK_CALL: kbk.call.closes, KBK_VERIFICATION: kbk.verification.deadline})
            self.state.track_deadlines.update({s.key: s.deadline for s in kbk.stages})
            inp = KbkTrackInput(year=cfg.year, config=kbk, ceremony_date=cfg.ceremony.date, seed=cfg.seed, parent_id=me)
            await self._start_track(cfg, Track.KBK.value, KbkTrackWorkflow.run, inp, kbk.call.closes)

    async def _start_track(self, cfg: CycleConfig, name: str, run: Any, inp: Any, deadline: datetime) -> None:
        wid = track_workflow_id(cfg.year, name)
        attributes = workflow.info().typed_search_attributes.updated(
            SearchAttributePair(BFEST_YEAR, cfg.year), SearchAttributePair(BFEST_TRACK, name), SearchAttributePair(BFEST_STAGE, name)
        )
        self.state.tracks[name] = TrackStatusView(track=name, workflow_id=wid, state="pending", deadline=deadline)
        self.state.track_handles[name] = await workflow.start_child_workflow(
            run, inp, id=wid, search_attributes=attributes, parent_close_policy=ParentClosePolicy.REQUEST_CANCEL
        )
        workflow.logger.info("cycle %s: track %s started (%s)", cfg.year, name, wid)

    async def _tracks_finished(self) -> dict[str, TrackResult]:
        """Wait for every track; one that failed fails the cycle saying why."""
        results: dict[str, TrackResult] = {}
        for name, handle in self.state.track_handles.items():
            try:
                result: TrackResult = await handle
            except ChildWorkflowError as exc:
                self._refused(f"track {name}", exc)
                raise
            results[name] = result
            view = self.state.tracks[name]
            self.state.tracks[name] = view.model_copy(update={"state": "done", "phase": None, "deadline": None, "counts": result.counts})
            prefixed = {k if k.startswith(f"{name}_") else f"{name}_{k}": v for k, v in result.counts.items() if not k.startswith("grade_")}
            self.state.counts.update(prefixed)  # e.g. sakip_approved, kbk_forwarded, kbk_final_shortlisted
        return results

    async def _end_tracks(self) -> None:
        """Cancel the tracks still running, once (the year was cancelled or failed). The server
        would too, by the children's parent-close policy; saying it here does not depend on that."""
        handles, self.state.track_handles = self.state.track_handles, {}
        for name, handle in handles.items():
            if self.state.tracks[name].state in ("done", "failed"):
                continue
            try:
                await workflow.get_external_workflow_handle(handle.id).cancel()
            except Exception as exc:  # noqa: BLE001 - it ended meanwhile
                workflow.logger.info("track %s was not cancelled: %s", name, exc)

    @workflow.signal(name=TRACK_PROGRESS)
    def on_track_progress(self, view: TrackStatusView) -> None:
        if view.track in self.state.tracks and self.state.tracks[view.track].state != "done":
            self.state.tracks[view.track] = view

    # ------------------------------------------------------------------ signals, updates, query

    @workflow.signal(name="verification_completed")
    def on_verification_completed(self) -> None:
        self.state.verification_completed = True

    @workflow.signal(name="stage_attention")
    def on_stage_attention(self, note: StageAttention) -> None:
        """A stage waits for the operator (``message``) or goes on again (``None``)."""
        if note.message:
            self.state.attention[note.stage] = note.message
        else:
            self.state.attention.pop(note.stage, None)

    @workflow.query(name="status")
    def status(self) -> CycleStatus:
        cfg = self.state.config
        ended = self.state.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.FAILED)
        stages = []
        if cfg is not None:
            for s in cfg.stages:
                state = "done" if s.key in self.state.done else "running" if self.state.running == s.key else "pending"
                if state == "running" and ended:  # the stage it ran when it was cancelled or failed
                    state = self.state.phase.value
                stages.append(
                    StageStatusView(key=s.key, state=state, deadline=self.state.deadlines[s.key], outcome=self.state.outcomes.get(s.key))
                )
        current = self.state.running if self.state.running in self.state.deadlines and self.state.running not in self.state.done else None
        return CycleStatus(
            year=cfg.year if cfg else 0,
            phase=self.state.phase,
            stage=self.state.stage,
            deadline=None if ended else self.state.deadlines.get(current) if current else self._next_moment(),
            counts=self.state.counts,
            stages=stages,
            awards=self.state.awards,
            operator_actions=self.state.actions,
            cancelled=self.state.phase == CyclePhase.CANCELLED,
            error=self.state.error,
            attention=None if ended else "; ".join(self.state.attention.values()) or None,
            warnings=self.state.warnings,
            tracks=[self._track_view(v, ended) for v in self.state.tracks.values()],
        )

    def _track_view(self, view: TrackStatusView, ended: bool) -> TrackStatusView:
        """A track as it last told, ended with its cycle when that was cancelled or failed."""
        if ended and view.state in ("pending", "running") and self.state.phase != CyclePhase.COMPLETED:
            return view.model_copy(update={"state": self.state.phase.value})
        return view

    def _local_now(self) -> datetime:
        """The cycle's time in the zone its config is written in (Asia/Jakarta), for what people read."""
        now = workflow.now()
        return now.astimezone(self.cfg.call.opens.tzinfo) if self.state.config else now

    def _next_moment(self) -> datetime | None:
        """Between deadlines, the moment the cycle waits for: the call's opening, the ceremony."""
        cfg = self.state.config
        if cfg is None:
            return None
        if self.state.phase == CyclePhase.WAITING_FOR_CALL:
            return cfg.call.opens
        if self.state.phase == CyclePhase.WAITING_FOR_CEREMONY:
            return cfg.ceremony.date
        return None

    @workflow.update(name="extend_deadline")
    async def extend_deadline(self, change: ExtendDeadline) -> str:
        key = change.stage
        if key in self.state.track_deadlines:  # a track's: the track first, as a running stage
            track, step = _track_of(key)
            await self._tell_track(track, "extend_deadline", TrackDeadline(step=step, until=change.until, reason=change.reason, operator=change.operator))
            self.state.track_deadlines[key] = change.until
        else:
            # The running stage first: if it cannot be told, the update fails and nothing changes.
            await self._tell_stage(key, JuryStageWorkflow.on_extend, StageDeadline(until=change.until, reason=change.reason, operator=change.operator))
            self.state.deadlines[key] = change.until
        self.state.actions.append(
            {
                "action": "extend_deadline",
                "stage": key,
                "until": change.until.isoformat(),
                "reason": change.reason,
                "operator": change.operator,
                "at": self._local_now().isoformat(),
            }
        )
        workflow.logger.info("%s deadline extended to %s by %s: %s", key, change.until, change.operator, change.reason)
        return f"{key} deadline is now {change.until.isoformat()}"

    async def _tell_stage(self, key: str, signal: Any, arg: Any) -> None:
        """Signal the running jury stage ``key``. After a reset of the cycle its stage workflow may
        be the old run's child, which this run's child handle cannot reach: then by its id."""
        if self.state.child is None or self.state.running != key or self.state.config is None:
            return
        try:
            await self.state.child.signal(signal, arg)
        except Exception:  # noqa: BLE001 - not this run's child (a reset): by id
            try:
                await workflow.get_external_workflow_handle(stage_workflow_id(self.cfg.year, key)).signal(signal, arg)
            except Exception as exc:  # noqa: BLE001 - refuse the update rather than half-apply it
                raise ApplicationError(f"stage {key} could not be reached ({exc}); nothing was changed", non_retryable=True) from exc

    async def _tell_track(self, track: str, signal: str, arg: Any) -> None:
        try:
            await self.state.track_handles[track].signal(signal, arg)
        except Exception as exc:  # noqa: BLE001 - refuse the update rather than half-apply it
            raise ApplicationError(f"track {track} could not be reached ({exc}); nothing was changed", non_retryable=True) from exc

    @extend_deadline.validator
    def _validate_extend(self, change: ExtendDeadline) -> None:
        if change.stage in self.state.track_deadlines:
            self._validate_track_extend(change)
            return
        key = self._check_stage(change.stage)
        self._check_until(key, change.until, self.state.deadlines[key])
        # The steps run in order: a deadline moved past the next one would leave that step no time
        # (it would open already past its deadline and close with nothing done).
        _in_order(key, change.until, self.state.deadlines, self.cfg.stages, self.cfg.ceremony.date)

    def _check_until(self, key: str, until: datetime, current: datetime) -> None:
        now = self._local_now()
        if until <= now:
            raise ValueError(f"the new deadline {until.isoformat()} is in the past (cycle time is {now.isoformat()})")
        if until >= self.cfg.ceremony.date:
            raise ValueError(f"the new deadline must be before the ceremony ({self.cfg.ceremony.date.isoformat()})")
        if until <= current:
            raise ValueError(f"{key} already ends {current.isoformat()}: an extension must be later")

    def _validate_track_extend(self, change: ExtendDeadline) -> None:
        """A track's deadline: an evaluation's (sakip, rb, cettar: SAKIP's and RB's before
        CETTAR's, which reads them), or a step of KBK's (kbk_call, kbk_verification, a KBK stage),
        in order like KOVABLIK's."""
        key, deadlines = self._check_track_step(change.stage), self.state.track_deadlines
        self._check_until(key, change.until, deadlines[key])
        track, _ = _track_of(key)
        if track == Track.KBK.value:
            kbk = self.cfg.tracks.kbk
            assert kbk is not None
            order = [KBK_CALL, KBK_VERIFICATION, *[s.key for s in kbk.stages]]
            _in_order(key, change.until, {k: deadlines[k] for k in order}, kbk.stages, self.cfg.ceremony.date)
        elif track != Track.CETTAR.value and Track.CETTAR.value in deadlines and change.until >= deadlines[Track.CETTAR.value]:
            cettar = deadlines[Track.CETTAR.value]
            raise ValueError(f"{key} must end before cettar, which reads its results and ends {cettar.isoformat()}: extend cettar first")

    def _check_track_step(self, key: str) -> str:
        """``key`` names a step of a running track that has not finished yet."""
        if self.state.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.FAILED, CyclePhase.CEREMONY):
            raise ValueError(f"the cycle is {self.state.phase.value}")
        track, _ = _track_of(key)
        view = self.state.tracks[track]
        if view.state not in ("pending", "running"):
            raise ValueError(f"{key} is already finished (track {track} is {view.state})")
        kbk = self.cfg.tracks.kbk
        if track == Track.KBK.value and kbk is not None and view.phase in self.state.track_deadlines:
            order = [KBK_CALL, KBK_VERIFICATION, *[s.key for s in kbk.stages]]
            if order.index(key) < order.index(view.phase):
                raise ValueError(f"{key} is already finished")
        return key

    @workflow.update(name="close_stage_now")
    async def close_stage_now(self, close: CloseStageNow) -> str:
        key = close.stage
        if key in self.state.track_deadlines:  # a step of KBK's
            track, step = _track_of(key)
            await self._tell_track(track, "close_now", TrackCloseNow(step=step, reason=close.reason, operator=close.operator))
        else:
            await self._tell_stage(key, JuryStageWorkflow.on_close_now, _close(close))
        self.state.close_now[key] = close
        self.state.actions.append(
            {
                "action": "close_stage_now",
                "stage": key,
                "reason": close.reason,
                "operator": close.operator,
                "at": self._local_now().isoformat(),
            }
        )
        workflow.logger.info("%s closed early by %s: %s", key, close.operator, close.reason)
        return f"{key} is closing now"

    @close_stage_now.validator
    def _validate_close(self, close: CloseStageNow) -> None:
        if close.stage in self.state.track_deadlines:
            key = self._check_track_step(close.stage)
            view = self.state.tracks[_track_of(key)[0]]
            if view.track != Track.KBK.value or view.phase != key:
                raise ValueError(f"{key} is not running now (track {view.track}: {view.phase or view.state}); only a running KBK step can be closed early")
            if key in self.state.close_now:
                raise ValueError(f"{key} is already closing")
            return
        key = self._check_stage(close.stage)
        if key != self.state.running:
            raise ValueError(f"{key} is not running now (running: {self.state.running or 'nothing'}); only a running stage can be closed early")
        if key in self.state.close_now:
            raise ValueError(f"{key} is already closing")

    def _check_stage(self, key: str) -> str:
        cfg = self.cfg  # refuses an update before the cycle has started
        if key not in self.state.deadlines:
            known = ", ".join([CALL, VERIFICATION, *[s.key for s in cfg.stages], *self.state.track_deadlines])
            raise ValueError(f"unknown stage {key!r}; known: {known}")
        if key in self.state.done:
            raise ValueError(f"{key} is already finished")
        if self.state.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.CEREMONY):
            raise ValueError(f"the cycle is {self.state.phase.value}")
        return key

    # ------------------------------------------------------------------ helpers

    async def _enter(self, phase: CyclePhase, stage: str | None, deadline: datetime | None) -> None:
        self.state.phase, self.state.stage = phase, stage
        label = stage or phase.value
        self._search(label)
        workflow.logger.info("cycle %s → %s", self.cfg.year, label)
        await self._publish(
            CycleStageChanged(**self._event_base(f"phase:{label}"), phase=phase, stage=stage, deadline=deadline)
        )

    def _search(self, stage: str) -> None:
        workflow.upsert_search_attributes([BFEST_YEAR.value_set(self.cfg.year), BFEST_STAGE.value_set(stage)])

    def _event_base(self, name: str) -> dict[str, Any]:
        return {"event_id": f"{request_prefix()}:{name}", "occurred_at": workflow.now(), "cycle_year": self.cfg.year}

    async def _publish(self, event: Event) -> None:
        await workflow.execute_activity_method(
            CycleActivities.publish_cycle_event,
            PublishEvent(subject=event.subject(), event_id=event.event_id, payload=event.model_dump_json()),
            start_to_close_timeout=COMMAND_TIMEOUT,
            retry_policy=COMMAND_RETRY,
        )

    async def _command(self, activity: Callable[[CycleActivities, C], Awaitable[R]], cmd: C) -> R:
        """Send a service's command through its activity; a refusal fails the cycle saying why."""
        try:
            return await workflow.execute_activity_method(
                activity, cmd, start_to_close_timeout=COMMAND_TIMEOUT, retry_policy=COMMAND_RETRY
            )
        except Exception as exc:
            self._refused(activity.__name__, exc)
            raise

    def _refused(self, step: str, exc: BaseException) -> None:
        """If a service refused ``step`` (an ApplicationError somewhere in the failure's causes: an
        activity's, or a stage workflow's activity's), the cycle cannot go on: it fails saying
        why, and the status query says so too (it answers after the run ended)."""
        cause: BaseException | None = getattr(exc, "cause", None)
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = getattr(cause, "cause", None)
        if isinstance(cause, ApplicationError):
            self.state.phase, self.state.error = CyclePhase.FAILED, f"{step} failed: {cause.message}"
            raise ApplicationError(self.state.error, type=cause.type, non_retryable=True) from exc


def _track_of(key: str) -> tuple[str, str]:
    """The track an operator's step key belongs to, and the track's own name for the step."""
    if key in (Track.SAKIP.value, Track.RB.value, Track.CETTAR.value):
        return key, "deadline"
    return Track.KBK.value, KBK_STEP_OF.get(key, key)


def _in_order(key: str, until: datetime, deadlines: dict[str, datetime], stages: list[StageConfig], ceremony: datetime) -> None:
    """A step's new deadline keeps the steps (``deadlines``, in their order) in order: before the
    next step's, its objection window included, and the last one's window before the ceremony."""
    order = list(deadlines)
    window = next((timedelta(days=s.objection_days) for s in stages if s.key == key), timedelta(0))
    then = " with its objection window" if window else ""
    if key != order[-1]:
        after = order[order.index(key) + 1]
        if until + window >= deadlines[after]:
            raise ValueError(f"{key} must end{then} before {after}, which ends {deadlines[after].isoformat()}: extend {after} first")
    elif window and until + window >= ceremony:
        raise ValueError(f"{key} must end{then} before the ceremony ({ceremony.isoformat()})")


def _awards_input(tracks: dict[str, TrackResult]) -> dict[Track, TrackAwardsInput]:
    """What the ceremony expects of each track: KBK's final shortlist, the evaluations' approved
    results."""
    out: dict[Track, TrackAwardsInput] = {}
    for name, result in tracks.items():
        if result.shortlist is not None:
            out[Track(name)] = TrackAwardsInput(final_stage=result.final_stage, expected_shortlist=result.shortlist)
        else:
            out[Track(name)] = TrackAwardsInput(expected_results=result.expected_results)
    return out


def _award_warnings(
    cfg: Any, determined: AwardsSummary, awards: dict[str, list[str]], outcomes: dict[str, StageOutcome]
) -> list[str]:
    """Award categories the ceremony leaves empty or short of what their rule asks, each with why,
    so a year never reads "completed" with a gap nobody was told of."""
    warnings, kovablik = [], []
    for rule in cfg.awards:
        got = len(awards.get(rule.key, [])) if rule.key in awards else determined.categories.get(rule.key, 0)
        wanted = None if rule.per_group or getattr(rule, "per_category", False) else rule.n
        if got == 0:
            warning = f"award {rule.key} ({rule.name_id}) has no winner"
        elif wanted and got < wanted:
            warning = f"award {rule.key} ({rule.name_id}) has {got} of {wanted} winners"
        else:
            continue
        warnings.append(warning)
        kovablik.append(rule.award_track() == "kovablik")
    # KOVABLIK's stages explain its awards' gaps (the other tracks' have their own reasons).
    if any(kovablik):
        notes = [f"{o.stage}: {o.note}" for o in outcomes.values() if o.note]
        last = outcomes.get(cfg.stages[-1].key) if cfg.stages else None
        if last is not None:
            notes.append(f"the final stage {last.stage} shortlisted {last.shortlisted} of {last.entrants}")
        warnings = [f"{w} ({'; '.join(notes)})" if notes and ours else w for w, ours in zip(warnings, kovablik, strict=True)]
    return warnings
