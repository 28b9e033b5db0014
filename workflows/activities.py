"""Activities: thin adapters that send the services' NATS commands and return small summaries.

Each activity takes the contract command itself (built by the workflow with a deterministic
``request_id``, so a retried activity is an idempotent command) and returns the service's reply
model, or a trimmed summary of it, so the workflow history grows with the number of stages, not
the number of proposals.

Failures: ``not_ready`` (a read model still catching up with events) is asked again within the
activity every second for up to ``NOT_READY_PATIENCE`` before the activity gives up, so a service
working through tens of thousands of events is waited for, not hammered by retries; a retryable
reply (``not_ready`` after that, ``internal_error``, a timeout, no responders) raises an ordinary
error and Temporal retries with backoff; a domain refusal (``invalid_award_rules``,
``infeasible_assignment``, …) raises a non-retryable ``ApplicationError`` whose type is the error
code, so it surfaces clearly in the history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.awards import (
    AnnounceAwards,
    AnnouncementView,
    AwardsSummary,
    DetermineAwards,
    GetResults,
    ValidateAwards,
)
from contracts.base import Command, ErrorCode
from contracts.registration import (
    ArchiveYear,
    ArchiveYearSummary,
    CallClosedSummary,
    CallView,
    CloseCall,
    OpenCall,
)
from contracts.scoring import (
    CloseStage,
    FinalizeShortlist,
    FinalShortlistSummary,
    OpenStage,
    RemindJurors,
    StageClosedSummary,
    StageStatus,
    StageStatusView,
    StageSummary,
)
from contracts.verification import (
    CloseEvaluation,
    CloseVerification,
    EvaluationClosedSummary,
    EvaluationWindow,
    OpenEvaluation,
    StartVerification,
    VerificationClosedSummary,
    VerificationCounts,
)
from services.common import telemetry
from services.common.messaging import CommandClient, CommandError, dumps
from workflows.models import PublishEvent

M = TypeVar("M", bound=BaseModel)


NOT_READY_PATIENCE = 30.0
"""Seconds an activity keeps asking a command that answers ``not_ready`` before it fails."""


class CycleActivities:
    """Holds the NATS connection; one instance per worker process."""

    def __init__(self, client: CommandClient) -> None:
        self.client = client

    async def _send(self, command: Command) -> Any:
        patience = time.monotonic() + NOT_READY_PATIENCE
        while True:
            try:
                return await self.client.call(command)
            except CommandError as exc:
                if exc.code == ErrorCode.NOT_READY and time.monotonic() < patience:
                    await asyncio.sleep(1)
                    continue
                self._raise(command, exc)

    @staticmethod
    def _raise(command: Command, exc: CommandError) -> NoReturn:
        if exc.retryable:
            activity.logger.info("%s not ready yet (%s): %s", command.NAME, exc.code, exc.message)
            raise RuntimeError(f"{exc.code}: {exc.message}") from None
        raise ApplicationError(f"{command.NAME} refused: {exc.message}", exc.details, type=exc.code, non_retryable=True) from None

    async def _typed(self, command: Command, model: type[M]) -> M:
        return model.model_validate(await self._send(command))

    # --------------------------------------------------------------- registration

    @activity.defn(name="open_call")
    async def open_call(self, cmd: OpenCall) -> CallView:
        return await self._typed(cmd, CallView)

    @activity.defn(name="close_call")
    async def close_call(self, cmd: CloseCall) -> CallClosedSummary:
        return await self._typed(cmd, CallClosedSummary)

    @activity.defn(name="archive_year")
    async def archive_year(self, cmd: ArchiveYear) -> ArchiveYearSummary:
        return await self._typed(cmd, ArchiveYearSummary)

    # --------------------------------------------------------------- verification

    @activity.defn(name="start_verification")
    async def start_verification(self, cmd: StartVerification) -> VerificationCounts:
        return await self._typed(cmd, VerificationCounts)

    @activity.defn(name="close_verification")
    async def close_verification(self, cmd: CloseVerification) -> VerificationClosedSummary:
        return await self._typed(cmd, VerificationClosedSummary)

    @activity.defn(name="open_evaluation")
    async def open_evaluation(self, cmd: OpenEvaluation) -> EvaluationWindow:
        return await self._typed(cmd, EvaluationWindow)

    @activity.defn(name="close_evaluation")
    async def close_evaluation(self, cmd: CloseEvaluation) -> EvaluationClosedSummary:
        return await self._typed(cmd, EvaluationClosedSummary)

    # --------------------------------------------------------------- scoring

    @activity.defn(name="open_stage")
    async def open_stage(self, cmd: OpenStage) -> StageSummary:
        return await self._typed(cmd, StageSummary)

    @activity.defn(name="stage_status")
    async def stage_status(self, cmd: StageStatus) -> StageStatusView:
        view = await self._typed(cmd, StageStatusView)
        return view.model_copy(update={"per_juror": []})

    @activity.defn(name="remind_jurors")
    async def remind_jurors(self, cmd: RemindJurors) -> int:
        data = await self._send(cmd)
        if isinstance(data, dict):
            return int(data.get("reminded", data.get("jurors", 0)) or 0)
        return int(data or 0)

    @activity.defn(name="close_stage")
    async def close_stage(self, cmd: CloseStage) -> StageClosedSummary:
        return await self._typed(cmd, StageClosedSummary)

    @activity.defn(name="finalize_shortlist")
    async def finalize_shortlist(self, cmd: FinalizeShortlist) -> FinalShortlistSummary:
        return await self._typed(cmd, FinalShortlistSummary)

    # --------------------------------------------------------------- awards

    @activity.defn(name="validate_awards")
    async def validate_awards(self, cmd: ValidateAwards) -> list[str]:
        data = await self._send(cmd)
        return list(data.get("categories", [])) if isinstance(data, dict) else []

    @activity.defn(name="determine_awards")
    async def determine_awards(self, cmd: DetermineAwards) -> AwardsSummary:
        return await self._typed(cmd, AwardsSummary)

    @activity.defn(name="announce_awards")
    async def announce_awards(self, cmd: AnnounceAwards) -> AnnouncementView:
        return await self._typed(cmd, AnnouncementView)

    @activity.defn(name="award_winners")
    async def award_winners(self, cmd: GetResults) -> dict[str, list[str]]:
        """Winners per category, trimmed to ids (unit codes or proposal ids) for the history."""
        data = await self._send(cmd)
        out: dict[str, list[str]] = {}
        for category in data.get("categories", []):
            out[category["key"]] = [w.get("proposal_id") or w["unit_code"] for w in category.get("winners", [])]
        return out

    # --------------------------------------------------------------- lifecycle events

    @activity.defn(name="publish_cycle_event")
    async def publish_cycle_event(self, cmd: PublishEvent) -> None:
        """Publish a lifecycle event straight to JetStream; the deterministic event id is the
        ``Nats-Msg-Id``, so a retried activity publishes once."""
        js = self.client.nc.jetstream()
        # The activity's trace goes on with the event to its consumers.
        headers = telemetry.headers({"Nats-Msg-Id": cmd.event_id})
        await js.publish(cmd.subject, cmd.payload.encode(), headers=headers)

    def all(self) -> list[Any]:
        return [
            self.open_call,
            self.close_call,
            self.archive_year,
            self.start_verification,
            self.close_verification,
            self.open_evaluation,
            self.close_evaluation,
            self.open_stage,
            self.stage_status,
            self.remind_jurors,
            self.close_stage,
            self.finalize_shortlist,
            self.validate_awards,
            self.determine_awards,
            self.announce_awards,
            self.award_winners,
            self.publish_cycle_event,
        ]


__all__ = ["CycleActivities", "dumps"]
