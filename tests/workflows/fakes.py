"""Scripted activities with the real activity names, for testing the workflows' own logic
(timers, updates, signals, cancellation) on the time-skipping server. The full year against the
four real services is in test_full_year.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

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
from contracts.base import digest_ids
from contracts.cycle import CycleConfig
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
from workflows.models import PublishEvent

JKT = dt.timezone(dt.timedelta(hours=7))


def ref(n: int, prefix: str = "P") -> dict[str, Any]:
    return {"count": n, "digest": digest_ids(f"{prefix}{i}" for i in range(n))}


@dataclass
class Script:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    pending_verification: int = 0
    forwarded: int = 20
    refuse_awards: str | None = None  # validate_awards refuses with this message (once)
    refuse_stage: str | None = None  # open_stage of this stage refuses (infeasible_assignment)
    verification_behind: bool = False  # start_verification answers not_ready (retried) until cleared
    call_state: str = "open"  # what open_call answers ("closed": a year started again after its call)
    window_passed: bool = False  # close_stage answers a stage closed before, its objection window over
    unscored: set[str] = field(default_factory=set)  # stages whose jurors score nothing by the deadline
    close_fails: dict[str, int] = field(default_factory=dict)  # close_stage of a stage fails this many times first
    clock: Any = None  # async () -> now: the services' clock (the test server's), where a fake needs it
    winners: dict[str, list[str]] = field(default_factory=lambda: {"top": ["field0", "field1", "field2"]})
    slow: dict[str, float] = field(default_factory=dict)  # an activity (or a phase's publish) takes these real seconds
    approved: dict[str, int] = field(default_factory=lambda: {"sakip": 38, "rb": 36, "cettar": 38})  # close_evaluation's count
    refuse_evaluation: str | None = None  # open_evaluation of this kind refuses (unknown_rubric)

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def activities(self) -> list[Any]:
        s = self

        @activity.defn(name="validate_awards")
        async def validate_awards(cmd: ValidateAwards) -> list[str]:
            s.calls.append(("validate_awards", cmd))
            if s.refuse_awards:
                message, s.refuse_awards = s.refuse_awards, None
                raise ApplicationError(message, type="invalid_rule", non_retryable=True)
            return [r.key for r in cmd.rules]

        @activity.defn(name="open_call")
        async def open_call(cmd: OpenCall) -> CallView:
            s.calls.append(("open_call", cmd))
            return CallView(
                cycle_year=cmd.cycle_year, track=cmd.track, state=s.call_state, opens_at=cmd.opens_at, closes_at=cmd.closes_at, quota_per_agency=3
            )

        @activity.defn(name="close_call")
        async def close_call(cmd: CloseCall) -> CallClosedSummary:
            s.calls.append(("close_call", cmd))
            r = ref(s.forwarded)
            return CallClosedSummary(
                cycle_year=cmd.cycle_year,
                track=cmd.track,
                forwarded=r["count"],
                forwarded_digest=r["digest"],
                by_level={},
                by_status={},
                by_agency={},
                by_group={},
            )

        @activity.defn(name="start_verification")
        async def start_verification(cmd: StartVerification) -> VerificationCounts:
            s.calls.append(("start_verification", cmd))
            if s.verification_behind:
                raise ApplicationError("the copy of forwarded proposals is behind", type="not_ready")
            return VerificationCounts(
                cycle_year=cmd.cycle_year,
                state="open",
                total=s.forwarded,
                pending=s.pending_verification,
                eligible=s.forwarded - s.pending_verification,
                disqualified=0,
                overridden=0,
            )

        @activity.defn(name="close_verification")
        async def close_verification(cmd: CloseVerification) -> VerificationClosedSummary:
            s.calls.append(("close_verification", cmd))
            return VerificationClosedSummary(
                cycle_year=cmd.cycle_year, eligible=s.forwarded - 2, disqualified=2, overridden=0, eligible_digest=ref(s.forwarded - 2)["digest"]
            )

        @activity.defn(name="open_stage")
        async def open_stage(cmd: OpenStage) -> StageSummary:
            s.calls.append(("open_stage", cmd))
            await asyncio.sleep(s.slow.get("open_stage", 0))
            if s.refuse_stage == cmd.stage:
                raise ApplicationError("3 proposal(s) cannot get 3 jurors without a conflict: P1, P2, P3", type="infeasible_assignment", non_retryable=True)
            return StageSummary(
                cycle_year=cmd.cycle_year,
                stage=cmd.stage,
                state="open",
                proposals=cmd.entrants.expected.count,
                jurors=6,
                assignments=cmd.entrants.expected.count * cmd.jurors_per_proposal,
                scored=0,
                deadline=cmd.deadline,
            )

        @activity.defn(name="stage_status")
        async def stage_status(cmd: StageStatus) -> StageStatusView:
            s.calls.append(("stage_status", cmd))
            opened = next(c for n, c in reversed(s.calls) if n == "open_stage" and c.stage == cmd.stage)
            n = opened.entrants.expected.count
            scored = 0 if cmd.stage in s.unscored else n
            return StageStatusView(
                cycle_year=cmd.cycle_year,
                stage=cmd.stage,
                state="open",
                proposals=n,
                jurors=6,
                assignments=n * opened.jurors_per_proposal,
                scored=scored * opened.jurors_per_proposal,
                fully_scored=False,
                proposals_scored=scored,
            )

        @activity.defn(name="remind_jurors")
        async def remind_jurors(cmd: RemindJurors) -> int:
            s.calls.append(("remind_jurors", cmd))
            return 2

        @activity.defn(name="close_stage")
        async def close_stage(cmd: CloseStage) -> StageClosedSummary:
            if s.close_fails.get(cmd.stage, 0) > 0:  # the service is down: the attempt times out
                s.close_fails[cmd.stage] -= 1
                raise RuntimeError("timeout: bfest.scoring.cmd.close_stage did not answer")
            s.calls.append(("close_stage", cmd))
            window = cmd.objection_window_until
            if window is not None:  # like the scoring service: the window runs from the publication
                published = await s.clock() if s.clock else cmd.at
                window = max(window, published + (window - cmd.at))
            n = {"desk": 10, "interview": 5, "field": 3}.get(cmd.stage, 3)
            return StageClosedSummary(
                cycle_year=cmd.cycle_year,
                stage=cmd.stage,
                ranked=s.forwarded - 2,
                unscored=0,
                shortlist=ref(n, cmd.stage),
                announcement_no=f"00{len(s.calls)}/PANSEL/{cmd.cycle_year}",
                objection_window_until=cmd.at - dt.timedelta(days=1) if s.window_passed else window,
            )

        @activity.defn(name="finalize_shortlist")
        async def finalize_shortlist(cmd: FinalizeShortlist) -> FinalShortlistSummary:
            s.calls.append(("finalize_shortlist", cmd))
            n = {"desk": 10, "interview": 5, "field": 3}.get(cmd.stage, 3)
            return FinalShortlistSummary(
                cycle_year=cmd.cycle_year,
                stage=cmd.stage,
                shortlist=ref(n, cmd.stage),
                removed=[],
                promoted=[],
                announcement_no="final",
            )

        @activity.defn(name="determine_awards")
        async def determine_awards(cmd: DetermineAwards) -> AwardsSummary:
            s.calls.append(("determine_awards", cmd))
            return AwardsSummary(cycle_year=cmd.cycle_year, categories={"top": 3}, certificates=3)

        @activity.defn(name="announce_awards")
        async def announce_awards(cmd: AnnounceAwards) -> AnnouncementView:
            s.calls.append(("announce_awards", cmd))
            return AnnouncementView(cycle_year=cmd.cycle_year, announcement_no="001/PENGHARGAAN", ceremony=cmd.ceremony)

        @activity.defn(name="archive_year")
        async def archive_year(cmd: ArchiveYear) -> ArchiveYearSummary:
            s.calls.append(("archive_year", cmd))
            return ArchiveYearSummary(cycle_year=cmd.cycle_year, entries=s.forwarded, awarded=cmd.expected_winners)

        @activity.defn(name="open_evaluation")
        async def open_evaluation(cmd: OpenEvaluation) -> EvaluationWindow:
            s.calls.append(("open_evaluation", cmd))
            if s.refuse_evaluation == cmd.kind.value:
                raise ApplicationError(f"no rubric {cmd.rubric!r}", type="unknown_rubric", non_retryable=True)
            return EvaluationWindow(cycle_year=cmd.cycle_year, kind=cmd.kind, state="open", rubric=cmd.rubric, deadline=cmd.deadline)

        @activity.defn(name="close_evaluation")
        async def close_evaluation(cmd: CloseEvaluation) -> EvaluationClosedSummary:
            s.calls.append(("close_evaluation", cmd))
            n = s.approved.get(cmd.kind.value, 0)
            return EvaluationClosedSummary(
                cycle_year=cmd.cycle_year, kind=cmd.kind, rubric="r", approved=n, unapproved=1, grades={"A": n}, digest=ref(n, "A")["digest"]
            )

        @activity.defn(name="award_winners")
        async def award_winners(cmd: GetResults) -> dict[str, list[str]]:
            s.calls.append(("award_winners", cmd))
            return s.winners

        @activity.defn(name="publish_cycle_event")
        async def publish_cycle_event(cmd: PublishEvent) -> None:
            s.events.append(cmd.subject.split(".")[3])
            await asyncio.sleep(next((t for key, t in s.slow.items() if cmd.event_id.endswith(f":{key}")), 0))

        return [
            validate_awards,
            open_call,
            close_call,
            start_verification,
            close_verification,
            open_stage,
            stage_status,
            remind_jurors,
            close_stage,
            finalize_shortlist,
            determine_awards,
            announce_awards,
            award_winners,
            publish_cycle_event,
            archive_year,
            open_evaluation,
            close_evaluation,
        ]


def config(start: dt.datetime, year: int = 2030, objection_days: float = 0) -> CycleConfig:
    """A cycle whose call opens at ``start``; stages a week apart."""
    day = dt.timedelta(days=1)
    crit = [{"key": "mutu", "name": "Mutu", "weight": 1.0, "scale_min": 1, "scale_max": 10}]
    return CycleConfig.model_validate(
        {
            "year": year,
            "call": {"opens": start, "closes": start + 30 * day},
            "verification": {"deadline": start + 40 * day},
            "stages": [
                {"key": "desk", "name": "Desk", "deadline": start + 60 * day, "criteria": crit, "advance": 10, "objection_days": objection_days},
                {"key": "interview", "name": "Interview", "deadline": start + 80 * day, "criteria": crit, "advance": 5},
                {"key": "field", "name": "Field", "deadline": start + 100 * day, "criteria": crit, "advance": 3},
            ],
            "ceremony": {"date": start + 150 * day, "venue": "Kota Batu"},
            "awards": [{"key": "top", "rule": "top_n", "n": 3, "name_id": "Terpuji", "name_en": "Commendable"}],
        }
    )


def tracks_config(start: dt.datetime, year: int = 2031, kbk_objection_days: float = 0) -> CycleConfig:
    """``config``'s year with every track: SAKIP and RB from the start, CETTAR after them, KBK's
    call, check and two stages of its own; each track's awards."""
    day = dt.timedelta(days=1)
    crit = [{"key": "mutu", "name": "Mutu", "weight": 1.0, "scale_min": 1, "scale_max": 10}]
    data = config(start, year).model_dump(mode="python")
    data["tracks"] = {
        "sakip": {"opens": start + 2 * day, "deadline": start + 50 * day},
        "rb": {"opens": start + 2 * day, "deadline": start + 55 * day},
        "cettar": {"opens": start + 60 * day, "deadline": start + 90 * day},
        "kbk": {
            "call": {"opens": start + 5 * day, "closes": start + 35 * day},
            "verification": {"deadline": start + 45 * day},
            "stages": [
                {"key": "kbk_desk", "name": "Risalah", "deadline": start + 70 * day, "criteria": crit, "advance": 6, "objection_days": kbk_objection_days},
                {"key": "kbk_final", "name": "Presentasi", "deadline": start + 95 * day, "criteria": crit, "advance": 3},
            ],
        },
    }
    data["awards"] += [
        {"key": "kbk_best", "rule": "top_n", "track": "kbk", "n": 1, "per_category": True, "name_id": "KBK Terbaik", "name_en": "Best KBK"},
        {"key": "sakip_aa", "rule": "grade", "track": "sakip", "grades": ["AA"], "name_id": "SAKIP AA", "name_en": "SAKIP AA"},
        {"key": "rb_best", "rule": "best_of_grade", "track": "rb", "grades": ["A"], "n": 1, "name_id": "RB", "name_en": "RB"},
        {"key": "cettar", "rule": "grade", "track": "cettar", "grades": ["sangat_cettar"], "name_id": "Cettar", "name_en": "Cettar"},
    ]
    return CycleConfig.model_validate(data)
