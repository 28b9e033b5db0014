"""What scoring's queries answer, built from the aggregates and the repositories' reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.base import ObjectionDecision, digest_ids
from contracts.scoring import (
    AssignmentView,
    JurorProgress,
    JurorStageView,
    ObjectionsStatusView,
    RankedRow,
    ShortlistView,
    StageStatusView,
    StageSummary,
)
from services.scoring.domain import Objection, ScoreEntry, Stage


def summary(stage: Stage, assignments: int, scored: int, jurors: int) -> StageSummary:
    return StageSummary(
        cycle_year=stage.cycle_year,
        stage=stage.key,
        state=stage.status.value,
        proposals=len(stage.proposals),
        jurors=jurors,
        assignments=assignments,
        scored=scored,
        deadline=stage.deadline,
    )


def progress_summary(stage: Stage, assigned: list[tuple[str, str]], scored: set[tuple[str, str]]) -> StageSummary:
    return summary(stage, len(assigned), len(scored), len({j for j, _ in assigned}))


def stage_status(stage: Stage, assigned: list[tuple[str, str]], scored: set[tuple[str, str]], per_juror: bool) -> StageStatusView:
    per: dict[str, JurorProgress] = {}
    for juror, pid in assigned:
        p = per.setdefault(juror, JurorProgress(juror_id=juror, assigned=0, scored=0, missing=[]))
        p.assigned += 1
        if (juror, pid) in scored:
            p.scored += 1
        else:
            p.missing.append(pid)
    done = sum(1 for a in assigned if a in scored)
    return StageStatusView(
        **summary(stage, len(assigned), done, len(per)).model_dump(),
        fully_scored=bool(assigned) and done == len(assigned),
        proposals_scored=len({pid for juror, pid in assigned if (juror, pid) in scored}),
        per_juror=sorted(per.values(), key=lambda p: p.juror_id) if per_juror else [],
    )


def juror_stage(stage: Stage, pids: list[str], latest: Mapping[tuple[str, str], ScoreEntry], copies: Mapping[str, Mapping[str, Any]]) -> JurorStageView:
    rows = []
    for pid in sorted(pids):
        score = latest.get((stage.key, pid))
        content = copies.get(pid, {})
        rows.append(
            AssignmentView(
                proposal_id=pid,
                title=content.get("title"),
                group=content.get("group"),
                category=content.get("category"),
                scored=score is not None,
                scores=dict(score.values) if score is not None else None,
                comment=score.comment if score is not None else None,
                revision=score.revision if score is not None else 0,
            )
        )
    return JurorStageView(stage=stage.key, state=stage.status.value, deadline=stage.deadline, criteria=list(stage.config.criteria), assignments=rows)


def shortlist(stage: Stage) -> ShortlistView:
    if stage.final_rows is not None:
        rows, number, final = stage.final_rows, stage.final_summary["announcement_no"] if stage.final_summary else "", True
    else:
        by_id = {r["proposal_id"]: r for r in stage.ranking or []}
        rows, number, final = [by_id[p] for p in stage.shortlist or []], stage.announcement_no or "", False
    return ShortlistView(
        cycle_year=stage.cycle_year,
        stage=stage.key,
        announcement_no=number,
        final=final,
        rows=[RankedRow.model_validate(r) for r in rows],
        digest=digest_ids(r["proposal_id"] for r in rows),
    )


def objections_status(stage: Stage, objections: list[Objection]) -> ObjectionsStatusView:
    return ObjectionsStatusView(
        cycle_year=stage.cycle_year,
        stage=stage.key,
        window_until=stage.window_until,
        filed=len(objections),
        pending=sum(1 for o in objections if o.decision is None),
        upheld=sum(1 for o in objections if o.decision == ObjectionDecision.UPHELD),
        rejected=sum(1 for o in objections if o.decision == ObjectionDecision.REJECTED),
    )
