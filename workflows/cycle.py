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
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():

    from contracts.awards import (
        AnnounceAwards,
        AnnouncementView,
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
        CycleInput,
        CycleResult,
        CycleStageChanged,
        CycleStarted,
        CycleStatus,
        ExtendDeadline,
        StageOutcome,
        StageStatusView,
        stage_workflow_id,
    )
    from contracts.registration import CallClosedSummary, CallView, CloseCall, OpenCall
    from contracts.verification import (
        CloseVerification,
        StartVerification,
        VerificationClosedSummary,
        VerificationCounts,
    )
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


@workflow.defn(name="CycleWorkflow")
class CycleWorkflow:
    def __init__(self) -> None:
        self.config: Any = None
        self.phase = CyclePhase.STARTING
        self.stage: str | None = None
        self.deadlines: dict[str, datetime] = {}
        self.close_now: dict[str, CloseStageNow] = {}
        self.done: set[str] = set()
        self.running: str | None = None
        self.counts: dict[str, int] = {}
        self.outcomes: dict[str, StageOutcome] = {}
        self.awards: dict[str, list[str]] = {}
        self.actions: list[dict[str, Any]] = []
        self.verification_completed = False
        self.child: Any = None
        self.error: str | None = None
        self.attention: dict[str, str] = {}
        self.warnings: list[str] = []

    # ------------------------------------------------------------------ the year

    @workflow.run
    async def run(self, raw: Any = None) -> CycleResult:
        """``raw`` is a :class:`CycleInput` (see :func:`read_input`)."""
        inp = read_input(CycleInput, raw, "cycle", '{"config": <cycle config>} (bfest cycle start does)')
        cfg = self.config = inp.config
        self.deadlines = {CALL: cfg.call.closes, VERIFICATION: cfg.verification.deadline}
        self.deadlines.update({s.key: s.deadline for s in cfg.stages})
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
            phase = self.phase.value
            await self._cancelled(year)
            raise CancelledError(f"cycle {year} cancelled in phase {phase}") from exc

    async def _cancelled(self, year: int) -> None:
        workflow.logger.warning("cycle %s cancelled in phase %s", year, self.phase.value)
        phase, stage = self.phase, self.stage
        self.phase = CyclePhase.CANCELLED
        # Cancellation was delivered once; the clean-up below still runs.
        await self._publish(CycleCancelled(**self._event_base("cancelled"), phase=phase, stage=stage))
        self._search(CyclePhase.CANCELLED.value)

    async def _run(self, inp: CycleInput) -> CycleResult:
        cfg = inp.config
        year = cfg.year
        wid = workflow.info().workflow_id
        rid = request_prefix()
        self._search("starting")
        workflow.upsert_memo({"config": cfg.summary()})

        await self._command("validate_awards", ValidateAwards(request_id=f"{rid}:validate_awards", cycle_year=year, rules=cfg.awards), list[str])
        await self._publish(CycleStarted(**self._event_base("started"), config_summary=cfg.summary()))

        # ---------------------------------------------------------- call for proposals
        if workflow.now() < cfg.call.opens:
            await self._enter(CyclePhase.WAITING_FOR_CALL, None, cfg.call.opens)
            await sleep_until(cfg.call.opens, "until the call for proposals opens")
        call: CallView = await self._command(
            "open_call",
            OpenCall(
                request_id=f"{rid}:open_call",
                cycle_year=year,
                opens_at=cfg.call.opens,
                closes_at=self.deadlines[CALL],
                quota_per_agency=cfg.call.quota_per_agency,
            ),
            CallView,
        )
        await self._enter(CyclePhase.CALL_OPEN, None, self.deadlines[CALL])
        self.running = CALL
        # A year started again after its call closed goes on to the frozen summary at once.
        if not (call.state == "closed" and workflow.patched("closed-call-is-not-waited-for")):
            await self._wait(CALL, lambda: False, "call for proposals closes")
        closed: CallClosedSummary = await self._command(
            "close_call", CloseCall(request_id=f"{rid}:close_call", cycle_year=year, at=workflow.now()), CallClosedSummary
        )
        self._finish(CALL)
        self.counts["forwarded"] = closed.forwarded

        # ---------------------------------------------------------- verification
        await self._enter(CyclePhase.VERIFICATION, None, self.deadlines[VERIFICATION])
        self.running = VERIFICATION
        started: VerificationCounts = await self._command(
            "start_verification",
            StartVerification(
                request_id=f"{rid}:start_verification",
                cycle_year=year,
                expected=SetRef(count=closed.forwarded, digest=closed.forwarded_digest),
                call_closed_at=workflow.now(),
                deadline=self.deadlines[VERIFICATION],
                rules=cfg.verification.rules,
                at=workflow.now(),
            ),
            VerificationCounts,
        )
        if started.pending == 0:
            self.verification_completed = True
        await self._wait(VERIFICATION, lambda: self.verification_completed, "verification deadline")
        verified: VerificationClosedSummary = await self._command(
            "close_verification",
            CloseVerification(request_id=f"{rid}:close_verification", cycle_year=year, at=workflow.now()),
            VerificationClosedSummary,
        )
        self._finish(VERIFICATION)
        self.counts.update(eligible=verified.eligible, disqualified=verified.disqualified, wbk_layak=verified.wbk_layak)

        # ---------------------------------------------------------- jury stages
        entrants = SetRef(count=verified.eligible, digest=verified.eligible_digest)
        source, previous = "verification", None
        for stage_cfg in cfg.stages:
            key = stage_cfg.key
            await self._enter(CyclePhase.JURY, key, self.deadlines[key])
            self.running = key
            stage_input = StageInput(
                year=year,
                stage=stage_cfg.model_copy(update={"deadline": self.deadlines[key]}),
                source=source,
                previous_stage=previous,
                entrants=entrants,
                ceremony_date=cfg.ceremony.date,
                seed=cfg.seed,
                parent_id=wid,
            )
            self.child = await workflow.start_child_workflow(
                JuryStageWorkflow.run,
                stage_input,
                id=stage_workflow_id(year, key),
                result_type=StageResult,
                search_attributes=workflow.info().typed_search_attributes.updated(SearchAttributePair(BFEST_STAGE, key)),
            )
            # An operator's early close that arrived before the child existed.
            if key in self.close_now:
                await self.child.signal(JuryStageWorkflow.on_close_now, _close(self.close_now[key]))
            try:
                result: StageResult = await self.child
            except ChildWorkflowError as exc:
                self._refused(f"stage {key}", exc)
                if is_cancelled_exception(exc) and workflow.cancellation_reason() is None:
                    self.phase = CyclePhase.FAILED
                    self.error = f"stage {key} was cancelled on its own, not with its cycle; start the year again to run it"
                raise
            self.child = None
            self.outcomes[key] = result.outcome
            self._finish(key)
            self.counts[f"{key}_shortlisted"] = result.shortlist.count
            entrants, source, previous = result.shortlist, "stage", key

        # ---------------------------------------------------------- ceremony
        if workflow.now() < cfg.ceremony.date:
            await self._enter(CyclePhase.WAITING_FOR_CEREMONY, None, cfg.ceremony.date)
            await sleep_until(cfg.ceremony.date, f"until the ceremony at {cfg.ceremony.venue}")
        await self._enter(CyclePhase.CEREMONY, None, None)
        determined: AwardsSummary = await self._command(
            "determine_awards",
            DetermineAwards(
                request_id=f"{rid}:determine_awards",
                cycle_year=year,
                rules=cfg.awards,
                final_stage=cfg.stages[-1].key,
                expected_shortlist=entrants,
                expected_wbk_layak=verified.wbk_layak,
                ceremony=cfg.ceremony,
                at=workflow.now(),
            ),
            AwardsSummary,
        )
        announced: AnnouncementView = await self._command(
            "announce_awards",
            AnnounceAwards(request_id=f"{rid}:announce_awards", cycle_year=year, ceremony=cfg.ceremony, at=workflow.now()),
            AnnouncementView,
        )
        self.awards = await self._command(
            "award_winners", GetResults(request_id=f"{rid}:results", cycle_year=year), dict[str, list[str]]
        )
        self.counts["certificates"] = determined.certificates
        self.warnings = _award_warnings(cfg, determined, self.awards, self.outcomes)
        for warning in self.warnings:
            workflow.logger.warning("cycle %s: %s", year, warning)
        self.phase = CyclePhase.COMPLETED
        self._search(CyclePhase.COMPLETED.value)
        await self._publish(CycleCompleted(**self._event_base("completed"), awards=self.awards, counts=self.counts))
        workflow.logger.info("cycle %s completed: %s", year, {k: len(v) for k, v in self.awards.items()})
        return CycleResult(
            year=year,
            phase=CyclePhase.COMPLETED,
            counts=self.counts,
            stages=[self.outcomes[s.key] for s in cfg.stages],
            awards=self.awards,
            announcement_no=announced.announcement_no,
            warnings=self.warnings,
        )

    # ------------------------------------------------------------------ signals, updates, query

    @workflow.signal(name="verification_completed")
    def on_verification_completed(self) -> None:
        self.verification_completed = True

    @workflow.signal(name="stage_attention")
    def on_stage_attention(self, note: StageAttention) -> None:
        """A stage waits for the operator (``message``) or goes on again (``None``)."""
        if note.message:
            self.attention[note.stage] = note.message
        else:
            self.attention.pop(note.stage, None)

    @workflow.query(name="status")
    def status(self) -> CycleStatus:
        cfg = self.config
        ended = self.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.FAILED)
        stages = []
        if cfg is not None:
            for s in cfg.stages:
                state = "done" if s.key in self.done else "running" if self.running == s.key else "pending"
                if state == "running" and ended:  # the stage it ran when it was cancelled or failed
                    state = self.phase.value
                stages.append(
                    StageStatusView(key=s.key, state=state, deadline=self.deadlines[s.key], outcome=self.outcomes.get(s.key))
                )
        current = self.running if self.running in self.deadlines and self.running not in self.done else None
        return CycleStatus(
            year=cfg.year if cfg else 0,
            phase=self.phase,
            stage=self.stage,
            deadline=None if ended else self.deadlines.get(current) if current else self._next_moment(),
            counts=self.counts,
            stages=stages,
            awards=self.awards,
            operator_actions=self.actions,
            cancelled=self.phase == CyclePhase.CANCELLED,
            error=self.error,
            attention=None if ended else "; ".join(self.attention.values()) or None,
            warnings=self.warnings,
        )

    def _local_now(self) -> datetime:
        """The cycle's time in the zone its config is written in (Asia/Jakarta), for what people read."""
        now = workflow.now()
        return now.astimezone(self.config.call.opens.tzinfo) if self.config else now

    def _next_moment(self) -> datetime | None:
        """Between deadlines, the moment the cycle waits for: the call's opening, the ceremony."""
        cfg = self.config
        if cfg is None:
            return None
        if self.phase == CyclePhase.WAITING_FOR_CALL:
            return cfg.call.opens
        if self.phase == CyclePhase.WAITING_FOR_CEREMONY:
            return cfg.ceremony.date
        return None

    @workflow.update(name="extend_deadline")
    async def extend_deadline(self, change: ExtendDeadline) -> str:
        key = change.stage
        # The running stage first: if it cannot be told, the update fails and nothing changes.
        await self._tell_stage(key, JuryStageWorkflow.on_extend, StageDeadline(until=change.until, reason=change.reason, operator=change.operator))
        self.deadlines[key] = change.until
        self.actions.append(
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
        if self.child is None or self.running != key or self.config is None:
            return
        try:
            await self.child.signal(signal, arg)
        except Exception:  # noqa: BLE001 - not this run's child (a reset): by id
            try:
                await workflow.get_external_workflow_handle(stage_workflow_id(self.config.year, key)).signal(signal, arg)
            except Exception as exc:  # noqa: BLE001 - refuse the update rather than half-apply it
                raise ApplicationError(f"stage {key} could not be reached ({exc}); nothing was changed", non_retryable=True) from exc

    @extend_deadline.validator
    def _validate_extend(self, change: ExtendDeadline) -> None:
        key = self._check_stage(change.stage)
        now = self._local_now()
        if change.until <= now:
            raise ValueError(f"the new deadline {change.until.isoformat()} is in the past (cycle time is {now.isoformat()})")
        if change.until >= self.config.ceremony.date:
            raise ValueError(f"the new deadline must be before the ceremony ({self.config.ceremony.date.isoformat()})")
        if change.until <= self.deadlines[key]:
            raise ValueError(f"{key} already ends {self.deadlines[key].isoformat()}: an extension must be later")
        # The steps run in order: a deadline moved past the next one would leave that step no time
        # (it would open already past its deadline and close with nothing done).
        order = list(self.deadlines)
        window = next((timedelta(days=s.objection_days) for s in self.config.stages if s.key == key), timedelta(0))
        then = " with its objection window" if window else ""
        if key != order[-1]:
            after = order[order.index(key) + 1]
            if change.until + window >= self.deadlines[after]:
                raise ValueError(
                    f"{key} must end{then} before {after}, which ends {self.deadlines[after].isoformat()}: extend {after} first"
                )
        elif window and change.until + window >= self.config.ceremony.date:
            raise ValueError(f"{key} must end{then} before the ceremony ({self.config.ceremony.date.isoformat()})")

    @workflow.update(name="close_stage_now")
    async def close_stage_now(self, close: CloseStageNow) -> str:
        key = close.stage
        await self._tell_stage(key, JuryStageWorkflow.on_close_now, _close(close))
        self.close_now[key] = close
        self.actions.append(
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
        if key != self.running:
            raise ValueError(f"{key} is not running now (running: {self.running or 'nothing'}); only a running stage can be closed early")
        if key in self.close_now:
            raise ValueError(f"{key} is already closing")

    def _check_stage(self, key: str) -> str:
        if self.config is None:
            raise ValueError("the cycle has not started yet")
        if key not in self.deadlines:
            known = ", ".join([CALL, VERIFICATION, *[s.key for s in self.config.stages]])
            raise ValueError(f"unknown stage {key!r}; known: {known}")
        if key in self.done:
            raise ValueError(f"{key} is already finished")
        if self.phase in (CyclePhase.COMPLETED, CyclePhase.CANCELLED, CyclePhase.CEREMONY):
            raise ValueError(f"the cycle is {self.phase.value}")
        return key

    # ------------------------------------------------------------------ helpers

    async def _wait(self, key: str, done: Any, summary: str) -> None:
        """Wait until ``done()``, an operator's early close, or the (extendable) deadline."""
        await wait_for_deadline(lambda: self.deadlines[key], lambda: done() or key in self.close_now, summary)

    async def _enter(self, phase: CyclePhase, stage: str | None, deadline: datetime | None) -> None:
        self.phase, self.stage = phase, stage
        label = stage or phase.value
        self._search(label)
        workflow.logger.info("cycle %s → %s", self.config.year, label)
        await self._publish(
            CycleStageChanged(**self._event_base(f"phase:{label}"), phase=phase, stage=stage, deadline=deadline)
        )

    def _finish(self, key: str) -> None:
        self.done.add(key)
        if self.running == key:
            self.running = None

    def _search(self, stage: str) -> None:
        workflow.upsert_search_attributes([BFEST_YEAR.value_set(self.config.year), BFEST_STAGE.value_set(stage)])

    def _event_base(self, name: str) -> dict[str, Any]:
        return {"event_id": f"{request_prefix()}:{name}", "occurred_at": workflow.now(), "cycle_year": self.config.year}

    async def _publish(self, event: Event) -> None:
        await workflow.execute_activity(
            "publish_cycle_event",
            PublishEvent(subject=event.subject(), event_id=event.event_id, payload=event.model_dump_json()),
            start_to_close_timeout=COMMAND_TIMEOUT,
            retry_policy=COMMAND_RETRY,
        )

    async def _command(self, name: str, cmd: Any, result_type: Any = None) -> Any:
        try:
            return await workflow.execute_activity(
                name,
                cmd,
                result_type=result_type,
                start_to_close_timeout=COMMAND_TIMEOUT,
                retry_policy=COMMAND_RETRY,
            )
        except Exception as exc:
            self._refused(name, exc)
            raise

    def _refused(self, step: str, exc: BaseException) -> None:
        """If a service refused ``step`` (an ApplicationError somewhere in the failure's causes: an
        activity's, or a stage workflow's activity's), the cycle cannot go on: it fails saying
        why, and the status query says so too (it answers after the run ended)."""
        cause: BaseException | None = getattr(exc, "cause", None)
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = getattr(cause, "cause", None)
        if isinstance(cause, ApplicationError):
            self.phase, self.error = CyclePhase.FAILED, f"{step} failed: {cause.message}"
            raise ApplicationError(self.error, type=cause.type, non_retryable=True) from exc


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
