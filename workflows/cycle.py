"""CycleWorkflow (``bfest-cycle-<year>``, task queue ``bfest-cycle``): one Bureaucracy Fest year,
from the call for proposals to the award ceremony.

validate awards → wait for the call to open → open the call → wait until it closes (durable timer,
extendable) → close the call → verification (until ``verification_completed`` or the deadline) →
one child JuryStageWorkflow per jury stage, each stage's final shortlist feeding the next → wait
for the ceremony → determine and announce the awards → complete with a summary.

Operators steer it with the updates ``extend_deadline`` and ``close_stage_now`` (validated before
anything reaches the history) and cancellation; admins read it with the query ``status``, the
search attributes ``BfestYear``/``BfestStage`` and the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    is_cancelled_exception,
)
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():

    from contracts.awards import (
        AnnounceAwards,
        AwardsSummary,
        DetermineAwards,
        GetResults,
        ValidateAwards,
    )
    from contracts.base import CyclePhase, Event, SetRef
    from contracts.cycle import (
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
        stage_workflow_id,
    )
    from contracts.registration import CallClosedSummary, CloseCall, OpenCall
    from contracts.verification import (
        CloseVerification,
        StartVerification,
        VerificationClosedSummary,
    )
    from workflows.activities import CycleActivities
    from workflows.models import (
        PublishEvent,
        StageAttention,
        StageCloseNow,
        StageDeadline,
        StageInput,
        StageResult,
        read_input,
    )
    from workflows.policy import COMMAND_RETRY, COMMAND_TIMEOUT, request_prefix
    from workflows.stage import JuryStageWorkflow
    from workflows.timing import sleep_until, wait_for_deadline

BFEST_YEAR = SearchAttributeKey.for_int("BfestYear")
BFEST_STAGE = SearchAttributeKey.for_keyword("BfestStage")

CALL, VERIFICATION = "call", "verification"
C = TypeVar("C")
R = TypeVar("R")


@dataclass
class CycleState:
    """What the cycle keeps between its steps; the status query and the updates read it."""

    config: CycleConfig | None = None
    phase: CyclePhase = CyclePhase.STARTING
    stage: str | None = None  # the jury stage running now
    deadlines: dict[str, datetime] = field(default_factory=dict)  # call, verification, each stage: extendable
    close_now: dict[str, CloseStageNow] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    running: str | None = None  # the step (call, verification or a stage) waiting for its deadline
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    awards: dict[str, list[str]] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)  # the operators' updates, for the auditor
    verification_completed: bool = False
    child: ChildWorkflowHandle[JuryStageWorkflow, StageResult] | None = None
    error: str | None = None
    attention: dict[str, str] = field(default_factory=dict)  # stage -> why it waits for the operator
    warnings: list[str] = field(default_factory=list)


@workflow.defn(name="CycleWorkflow")
class CycleWorkflow:
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
        year = cfg.year
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

    async def _run(self, inp: CycleInput) -> CycleResult:
        cfg = inp.config
        self._search("starting")
        workflow.upsert_memo({"config": cfg.summary()})
        await self._command(
            CycleActivities.validate_awards,
            ValidateAwards(request_id=f"{request_prefix()}:validate_awards", cycle_year=cfg.year, rules=cfg.awards),
        )
        await self._publish(CycleStarted(**self._event_base("started"), config_summary=cfg.summary()))
        closed = await self._call_for_proposals(cfg)
        verified = await self._verification(cfg, closed)
        finalists = await self._jury_stages(cfg, verified)
        return await self._ceremony(cfg, finalists, verified)

    async def _call_for_proposals(self, cfg: CycleConfig) -> CallClosedSummary:
        """Wait for the call to open, open it, wait for its (extendable) close, close it."""
        rid = request_prefix()
        if workflow.now() < cfg.call.opens:
            await self._enter(CyclePhase.WAITING_FOR_CALL, None, cfg.call.opens)
            await sleep_until(cfg.call.opens, "until the call for proposals opens")
        call = await self._command(
            CycleActivities.open_call,
            OpenCall(
                request_id=f"{rid}:open_call",
                cycle_year=cfg.year,
                opens_at=cfg.call.opens,
                closes_at=self.state.deadlines[CALL],
                quota_per_agency=cfg.call.quota_per_agency,
            ),
        )
        await self._enter(CyclePhase.CALL_OPEN, None, self.state.deadlines[CALL])
        self.state.running = CALL
        # A year started again after its call closed goes on to the frozen summary at once.
        if not (call.state == "closed" and workflow.patched("closed-call-is-not-waited-for")):
            await self._wait(CALL, lambda: False, "call for proposals closes")
        closed = await self._command(
            CycleActivities.close_call, CloseCall(request_id=f"{rid}:close_call", cycle_year=cfg.year, at=workflow.now())
        )
        self._finish(CALL)
        self.state.counts["forwarded"] = closed.forwarded
        return closed

    async def _verification(self, cfg: CycleConfig, closed: CallClosedSummary) -> VerificationClosedSummary:
        """Verify the forwarded set until every result is decided or the (extendable) deadline."""
        rid = request_prefix()
        await self._enter(CyclePhase.VERIFICATION, None, self.state.deadlines[VERIFICATION])
        self.state.running = VERIFICATION
        started = await self._command(
            CycleActivities.start_verification,
            StartVerification(
                request_id=f"{rid}:start_verification",
                cycle_year=cfg.year,
                expected=SetRef(count=closed.forwarded, digest=closed.forwarded_digest),
                call_closed_at=workflow.now(),
                deadline=self.state.deadlines[VERIFICATION],
                rules=cfg.verification.rules,
                at=workflow.now(),
            ),
        )
        if started.pending == 0:
            self.state.verification_completed = True
        await self._wait(VERIFICATION, lambda: self.state.verification_completed, "verification deadline")
        verified = await self._command(
            CycleActivities.close_verification,
            CloseVerification(request_id=f"{rid}:close_verification", cycle_year=cfg.year, at=workflow.now()),
        )
        self._finish(VERIFICATION)
        self.state.counts.update(eligible=verified.eligible, disqualified=verified.disqualified, wbk_layak=verified.wbk_layak)
        return verified

    async def _jury_stages(self, cfg: CycleConfig, verified: VerificationClosedSummary) -> SetRef:
        """One child JuryStageWorkflow per stage, each stage's final shortlist the next one's
        entrants; the last one's is the ceremony's."""
        entrants = SetRef(count=verified.eligible, digest=verified.eligible_digest)
        source, previous = "verification", None
        for stage_cfg in cfg.stages:
            result = await self._jury_stage(cfg, stage_cfg, source, previous, entrants)
            entrants, source, previous = result.shortlist, "stage", stage_cfg.key
        return entrants

    async def _jury_stage(
        self, cfg: CycleConfig, stage_cfg: StageConfig, source: str, previous: str | None, entrants: SetRef
    ) -> StageResult:
        key = stage_cfg.key
        await self._enter(CyclePhase.JURY, key, self.state.deadlines[key])
        self.state.running = key
        stage_input = StageInput(
            year=cfg.year,
            stage=stage_cfg.model_copy(update={"deadline": self.state.deadlines[key]}),
            source=source,
            previous_stage=previous,
            entrants=entrants,
            ceremony_date=cfg.ceremony.date,
            seed=cfg.seed,
            parent_id=workflow.info().workflow_id,
        )
        child = self.state.child = await workflow.start_child_workflow(
            JuryStageWorkflow.run,
            stage_input,
            id=stage_workflow_id(cfg.year, key),
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

    async def _ceremony(self, cfg: CycleConfig, finalists: SetRef, verified: VerificationClosedSummary) -> CycleResult:
        """Wait for the ceremony, determine and announce the awards, complete the year."""
        rid, year = request_prefix(), cfg.year
        if workflow.now() < cfg.ceremony.date:
            await self._enter(CyclePhase.WAITING_FOR_CEREMONY, None, cfg.ceremony.date)
            await sleep_until(cfg.ceremony.date, f"until the ceremony at {cfg.ceremony.venue}")
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
            ),
        )
        announced = await self._command(
            CycleActivities.announce_awards,
            AnnounceAwards(request_id=f"{rid}:announce_awards", cycle_year=year, ceremony=cfg.ceremony, at=workflow.now()),
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
        )

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

    @extend_deadline.validator
    def _validate_extend(self, change: ExtendDeadline) -> None:
        key = self._check_stage(change.stage)
        now = self._local_now()
        if change.until <= now:
            raise ValueError(f"the new deadline {change.until.isoformat()} is in the past (cycle time is {now.isoformat()})")
        if change.until >= self.cfg.ceremony.date:
            raise ValueError(f"the new deadline must be before the ceremony ({self.cfg.ceremony.date.isoformat()})")
        if change.until <= self.state.deadlines[key]:
            raise ValueError(f"{key} already ends {self.state.deadlines[key].isoformat()}: an extension must be later")
        # The steps run in order: a deadline moved past the next one would leave that step no time
        # (it would open already past its deadline and close with nothing done).
        order = list(self.state.deadlines)
        window = next((timedelta(days=s.objection_days) for s in self.cfg.stages if s.key == key), timedelta(0))
        then = " with its objection window" if window else ""
        if key != order[-1]:
            after = order[order.index(key) + 1]
            if change.until + window >= self.state.deadlines[after]:
                raise ValueError(
                    f"{key} must end{then} before {after}, which ends {self.state.deadlines[after].isoformat()}: extend {after} first"
                )
        elif window and change.until + window >= self.cfg.ceremony.date:
            raise ValueError(f"{key} must end{then} before the ceremony ({self.cfg.ceremony.date.isoformat()})")

    @workflow.update(name="close_stage_now")
    async def close_stage_now(self, close: CloseStageNow) -> str:
        key = close.stage
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
        key = self._check_stage(close.stage)
        if key != self.state.running:
            raise ValueError(f"{key} is not running now (running: {self.state.running or 'nothing'}); only a running stage can be closed early")
        if key in self.state.close_now:
            raise ValueError(f"{key} is already closing")

    def _check_stage(self, key: str) -> str:
        cfg = self.cfg  # refuses an update before the cycle has started
        if key not in self.state.deadlines:
            known = ", ".join([CALL, VERIFICATION, *[s.key for s in cfg.stages]])
            raise ValueError(f"unknown stage {key!r}; known: {known}")
        if key in self.state.done:
            raise ValueError(f"{key} is already finished")
        if self.state.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.CEREMONY):
            raise ValueError(f"the cycle is {self.state.phase.value}")
        return key

    # ------------------------------------------------------------------ helpers

    async def _wait(self, key: str, done: Any, summary: str) -> None:
        """Wait until ``done()``, an operator's early close, or the (extendable) deadline."""
        await wait_for_deadline(lambda: self.state.deadlines[key], lambda: done() or key in self.state.close_now, summary)

    async def _enter(self, phase: CyclePhase, stage: str | None, deadline: datetime | None) -> None:
        self.state.phase, self.state.stage = phase, stage
        label = stage or phase.value
        self._search(label)
        workflow.logger.info("cycle %s → %s", self.cfg.year, label)
        await self._publish(
            CycleStageChanged(**self._event_base(f"phase:{label}"), phase=phase, stage=stage, deadline=deadline)
        )

    def _finish(self, key: str) -> None:
        self.state.done.add(key)
        if self.state.running == key:
            self.state.running = None

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


def _close(close: CloseStageNow) -> StageCloseNow:
    return StageCloseNow(reason=close.reason, operator=close.operator)


def _award_warnings(
    cfg: Any, determined: AwardsSummary, awards: dict[str, list[str]], outcomes: dict[str, StageOutcome]
) -> list[str]:
    """Award categories the ceremony leaves empty or short of what their rule asks, each with why,
    so a year never reads "completed" with a gap nobody was told of."""
    warnings = []
    for rule in cfg.awards:
        got = len(awards.get(rule.key, [])) if rule.key in awards else determined.categories.get(rule.key, 0)
        wanted = None if rule.per_group else rule.n
        if got == 0:
            warnings.append(f"award {rule.key} ({rule.name_id}) has no winner")
        elif wanted and got < wanted:
            warnings.append(f"award {rule.key} ({rule.name_id}) has {got} of {wanted} winners")
    if warnings:
        notes = [f"{o.stage}: {o.note}" for o in outcomes.values() if o.note]
        last = outcomes.get(cfg.stages[-1].key) if cfg.stages else None
        if last is not None:
            notes.append(f"the final stage {last.stage} shortlisted {last.shortlisted} of {last.entrants}")
        warnings = [f"{w} ({'; '.join(notes)})" if notes else w for w in warnings]
    return warnings
