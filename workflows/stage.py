"""JuryStageWorkflow (``bfest-cycle-<year>-<stage>``): one jury stage, from assignment to the final
shortlist. A child of CycleWorkflow.

open stage and assign → remind jurors before the deadline → wait for ``fully_scored`` (signal from
the bridge), the deadline, or an operator's early close → close and rank → objection window
(optional) → final shortlist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.base import SetRef
    from contracts.cycle import StageOutcome
    from contracts.scoring import (
        CloseStage,
        EntrantsRef,
        FinalizeShortlist,
        FinalShortlistSummary,
        OpenStage,
        RemindJurors,
        StageClosedSummary,
        StageStatus,
        StageStatusView,
        StageSummary,
    )
    from workflows.activities import CycleActivities
    from workflows.models import (
        StageAttention,
        StageCloseNow,
        StageDeadline,
        StageInput,
        StageResult,
        read_input,
    )
    from workflows.policy import COMMAND_RETRY, COMMAND_TIMEOUT, request_prefix
    from workflows.timing import sleep_until, wait_for

C = TypeVar("C")
R = TypeVar("R")
SHORT_OF_SCORES_WAITS = "a-stage-short-of-scores-waits-for-the-operator"
NO_REMINDER_BURST = "no-reminders-that-fell-due-before-the-stage-opened"


@workflow.defn(name="JuryStageWorkflow")
class JuryStageWorkflow:
    def __init__(self) -> None:
        self.fully_scored = False
        self.close_now: StageCloseNow | None = None
        self.deadline: datetime | None = None
        self.deadline_version = 0
        self.state = "opening"
        self.outcome: StageOutcome | None = None
        self.attention: str | None = None

    @property
    def due(self) -> datetime:
        """The stage's deadline, extensions included (set as the run starts)."""
        if self.deadline is None:
            raise ValueError("the stage has not started yet")
        return self.deadline

    # ------------------------------------------------------------------ signals & queries

    @workflow.signal(name="fully_scored")
    def on_fully_scored(self) -> None:
        self.fully_scored = True

    @workflow.signal(name="extend_deadline")
    def on_extend(self, change: StageDeadline) -> None:
        # Validated by the parent's update validator before it is sent.
        self.deadline = change.until
        self.deadline_version += 1

    @workflow.signal(name="close_now")
    def on_close_now(self, close: StageCloseNow) -> None:
        self.close_now = close

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "fully_scored": self.fully_scored,
            "attention": self.attention,
            "outcome": self.outcome.model_dump(mode="json") if self.outcome else None,
        }

    # ------------------------------------------------------------------ the stage

    @workflow.run
    async def run(self, raw: Any = None) -> StageResult:
        """``raw`` is a :class:`StageInput` (see :func:`read_input`)."""
        inp = read_input(StageInput, raw, "stage", "a StageInput (the cycle workflow starts its stages)")
        cfg = inp.stage
        self.deadline = cfg.deadline
        rid = request_prefix()
        outcome = StageOutcome(stage=cfg.key)
        self.outcome = outcome

        opened: StageSummary = await _command(
            CycleActivities.open_stage,
            OpenStage(
                request_id=f"{rid}:open",
                cycle_year=inp.year,
                stage=cfg.key,
                entrants=EntrantsRef(source=inp.source, track=inp.track, stage=inp.previous_stage, expected=inp.entrants),
                criteria=cfg.criteria,
                jurors_per_proposal=cfg.jurors_per_proposal,
                advance=cfg.advance,
                group_proportions=cfg.group_proportions,
                divergence_threshold=cfg.divergence_threshold,
                deadline=cfg.deadline,
                seed=inp.seed,
                at=workflow.now(),
            ),
        )
        outcome.entrants = opened.proposals
        outcome.assignments = opened.assignments
        # Nothing left to score: no entrants (every one fell out before), or a stage a run before
        # this one (the year started again, a reset) took to its end. It does not wait for its
        # deadline, nor for a fully-scored signal that went to that other run.
        done = opened.state != "open" or opened.scored >= opened.assignments  # 0 entrants: 0 assignments
        if done and workflow.patched("stage-with-nothing-to-score-closes-at-once"):
            workflow.logger.warning("stage %s has nothing to score (%d entrants, state %s): it closes at once", cfg.key, opened.proposals, opened.state)
            self.fully_scored = True
        self.state = "scoring"
        workflow.logger.info("stage %s open: %d proposals, %d assignments", cfg.key, opened.proposals, opened.assignments)

        await self._score_until_closed(inp)
        outcome.closed_early = self.close_now is not None or (self.fully_scored and workflow.now() < self.due)
        # A stage that reaches its deadline without the scores its rule needs does not hand an empty
        # or short list on: it waits for the operator to extend it, close it anyway, or cancel.
        while not (self.fully_scored or self.close_now is not None) and workflow.patched(SHORT_OF_SCORES_WAITS):
            short = await self._short_of_scores(inp)
            if short is None:
                break
            await self._wait_for_operator(inp, short)
            if self.close_now is not None:
                outcome.closed_early = False
                outcome.note = (
                    f"closed short of scores by {self.close_now.operator}: {self.close_now.reason} ({short})"
                )
                break
            await self._score_until_closed(inp)
            outcome.closed_early = self.close_now is not None or (self.fully_scored and workflow.now() < self.due)

        self.state = "ranking"
        # The service measures the window from when it publishes the shortlist (a close that
        # succeeds only after retries still gives the public the whole window) and answers it.
        window_until = workflow.now() + timedelta(days=cfg.objection_days) if cfg.objection_days else None
        closed: StageClosedSummary = await _command(
            CycleActivities.close_stage,
            CloseStage(
                request_id=f"{rid}:close",
                cycle_year=inp.year,
                stage=cfg.key,
                at=workflow.now(),
                objection_window_until=window_until,
            ),
        )
        # Assignments, as while the stage ran (jurors added on divergence included); a service
        # without these fields answered proposals scored.
        outcome.assignments = closed.assignments if closed.assignments is not None else outcome.assignments
        outcome.scored = closed.scores if closed.scores is not None else closed.ranked - closed.unscored
        outcome.shortlisted = closed.shortlist.count
        outcome.announcement_no = closed.announcement_no
        workflow.logger.info("stage %s closed: shortlist %s", cfg.key, closed.announcement_no)

        if window_until is not None:
            self.state = "objections"
            # The window the stage was closed with: a run after the one that closed it (the year
            # started again, a reset) waits out what is left of it, not a fresh one.
            if closed.objection_window_until is not None and workflow.patched("the-window-the-stage-was-closed-with"):
                window_until = closed.objection_window_until
            await sleep_until(window_until, f"{cfg.key}: public objection window")

        self.state = "finalising"
        # Waits (the activity asks again while objections are undecided: not_ready) until every
        # objection is decided.
        final: FinalShortlistSummary = await _command(
            CycleActivities.finalize_shortlist,
            FinalizeShortlist(request_id=f"{rid}:finalize", cycle_year=inp.year, stage=cfg.key, at=workflow.now()),
        )
        outcome.objections_upheld = list(final.removed)
        outcome.final_announcement_no = final.announcement_no
        outcome.shortlisted = final.shortlist.count
        self.state = "done"
        return StageResult(outcome=outcome, shortlist=SetRef(count=final.shortlist.count, digest=final.shortlist.digest))

    async def _score_until_closed(self, inp: StageInput) -> None:
        """Wait for full scoring, the deadline or an early close, sending reminders on the way.
        Reminders are relative to the current deadline, so an extension moves them too; one whose
        moment had passed before the stage opened (it opened late) is not sent at all, rather than
        every juror being reminded at once of a deadline they only just heard of."""
        cfg = inp.stage
        rid = request_prefix()
        sent: set[float] = set()
        if workflow.patched(NO_REMINDER_BURST):
            opened = workflow.now()
            sent = {offset.total_seconds() for offset in cfg.reminders if self.due - offset <= opened}
        while True:
            if self.fully_scored or self.close_now is not None:
                return
            now = workflow.now()
            if now >= self.due:
                return
            due = sorted(
                (self.due - offset, offset.total_seconds())
                for offset in cfg.reminders
                if offset.total_seconds() not in sent
            )
            past = [(when, key) for when, key in due if when <= now]
            if past:
                for _, key in past:
                    sent.add(key)
                await _command(
                    CycleActivities.remind_jurors,
                    RemindJurors(
                        request_id=f"{rid}:remind:{int(past[-1][1])}:{self.deadline_version}",
                        cycle_year=inp.year,
                        stage=cfg.key,
                        at=now,
                        deadline=self.due,
                    ),
                )
                continue
            next_at = min([when for when, _ in due] + [self.due])
            version = self.deadline_version
            await wait_for(
                lambda: self.fully_scored or self.close_now is not None or self.deadline_version != version,
                next_at,
                f"{cfg.key}: next reminder or deadline",
            )

    async def _short_of_scores(self, inp: StageInput) -> str | None:
        """Why the stage cannot rank what its rule needs (too few proposals scored), or None."""
        cfg = inp.stage
        view: StageStatusView = await _command(
            CycleActivities.stage_status,
            StageStatus(request_id=f"{request_prefix()}:status:{self.deadline_version}", cycle_year=inp.year, stage=cfg.key),
        )
        if view.state != "open" or view.proposals == 0:
            return None
        have = view.proposals_scored if view.proposals_scored is not None else (view.proposals if view.scored else 0)
        need = min(cfg.advance, view.proposals)
        if have >= need:
            return None
        return (
            f"{cfg.key} reached its deadline with {have} of {view.proposals} proposal(s) scored "
            f"({view.scored} of {view.assignments} assignments); ranking its {cfg.advance} needs {need}"
        )

    async def _wait_for_operator(self, inp: StageInput, why: str) -> None:
        """Pause, visibly (this stage's and the cycle's status, the cycle's history), until the
        operator extends the stage or closes it anyway; a cancel of the year ends the wait too."""
        key = inp.stage.key
        self.state, self.attention = "waiting_for_operator", why
        workflow.logger.warning("stage %s waits for the operator: %s", key, why)
        hint = (
            f"{why}: extend it (bfest cycle extend --year {inp.year} --stage {key} --until …), close it anyway "
            f"(bfest cycle close-stage --year {inp.year} --stage {key} --reason …) or cancel the year"
        )
        await self._tell_cycle(inp, StageAttention(stage=key, message=hint))
        version = self.deadline_version
        await workflow.wait_condition(lambda: self.close_now is not None or self.deadline_version != version)
        self.state, self.attention = "scoring", None
        await self._tell_cycle(inp, StageAttention(stage=key, message=None))

    async def _tell_cycle(self, inp: StageInput, note: StageAttention) -> None:
        try:
            await workflow.get_external_workflow_handle(inp.parent_id).signal("stage_attention", note)
        except Exception as exc:  # noqa: BLE001 - a stage started on its own has no cycle to tell
            workflow.logger.warning("stage %s could not tell its cycle %s: %s", inp.stage.key, inp.parent_id, exc)


async def _command(activity: Callable[[CycleActivities, C], Awaitable[R]], cmd: C) -> R:
    """Send a scoring command through its activity (retried until the service answers; a refusal
    fails the stage, and its cycle says why)."""
    return await workflow.execute_activity_method(activity, cmd, start_to_close_timeout=COMMAND_TIMEOUT, retry_policy=COMMAND_RETRY)
