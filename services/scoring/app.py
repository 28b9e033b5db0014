"""The scoring service's edge: builds the ServiceApp and wires its handlers, each given scoring's
unit of work (its repositories over the runtime's transaction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts import scoring as c
from contracts import verification as v
from contracts.cycle import CycleCancelled
from services.common.runtime import ServiceApp, UnitOfWork
from services.common.settings import Settings
from services.scoring import handlers as h
from services.scoring.repository import ScoringUnit
from services.scoring.store import Base


def _on_unit(fn: Callable[[Any, ScoringUnit], Awaitable[Any]]) -> Callable[[Any, UnitOfWork], Awaitable[Any]]:
    async def handle(message: Any, uow: UnitOfWork) -> Any:
        return await fn(message, ScoringUnit.over(uow))

    handle.__name__ = handle.__qualname__ = fn.__name__
    return handle


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("scoring", Base.metadata, settings)
    app.on_event(v.ProposalVerified)(_on_unit(h.on_proposal_verified))
    app.on_event(v.ProposalDisqualified)(_on_unit(h.on_proposal_disqualified))
    app.on_event(v.VerificationClosed)(_on_unit(h.on_verification_closed))
    app.on_event(CycleCancelled)(_on_unit(h.on_cycle_cancelled))
    app.command(c.ImportJurors)(_on_unit(h.import_jurors))
    app.command(c.ListJurors)(_on_unit(h.list_jurors))
    app.command(c.OpenStage)(_on_unit(h.open_stage))
    app.command_batch(c.SubmitScore)(_on_unit(h.submit_scores))
    app.command(c.DeclareConflict)(_on_unit(h.declare_conflict))
    app.command(c.StageStatus)(_on_unit(h.stage_status))
    app.command(c.JurorAssignments)(_on_unit(h.juror_assignments))
    app.command(c.RemindJurors)(_on_unit(h.remind_jurors))
    app.command(c.CloseStage)(_on_unit(h.close_stage))
    app.command(c.GetShortlist)(_on_unit(h.get_shortlist))
    app.command(c.FileObjection)(_on_unit(h.file_objection))
    app.command(c.DecideObjection)(_on_unit(h.decide_objection))
    app.command(c.ObjectionsStatus)(_on_unit(h.objections_status))
    app.command(c.FinalizeShortlist)(_on_unit(h.finalize_shortlist))
    return app
