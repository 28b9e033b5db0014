"""The scoring service's edge: builds the ServiceApp and wires its handlers."""

from __future__ import annotations

from contracts import scoring as c
from contracts import verification as v
from contracts.cycle import CycleCancelled
from services.common.runtime import ServiceApp
from services.common.settings import Settings
from services.scoring import handlers as h
from services.scoring.store import Base


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("scoring", Base.metadata, settings)
    app.on_event(v.ProposalVerified)(h.on_proposal_verified)
    app.on_event(v.ProposalDisqualified)(h.on_proposal_disqualified)
    app.on_event(v.VerificationClosed)(h.on_verification_closed)
    app.on_event(CycleCancelled)(h.on_cycle_cancelled)
    app.command(c.ImportJurors)(h.import_jurors)
    app.command(c.ListJurors)(h.list_jurors)
    app.command(c.OpenStage)(h.open_stage)
    app.command_batch(c.SubmitScore)(h.submit_scores)
    app.command(c.DeclareConflict)(h.declare_conflict)
    app.command(c.StageStatus)(h.stage_status)
    app.command(c.JurorAssignments)(h.juror_assignments)
    app.command(c.RemindJurors)(h.remind_jurors)
    app.command(c.CloseStage)(h.close_stage)
    app.command(c.GetShortlist)(h.get_shortlist)
    app.command(c.FileObjection)(h.file_objection)
    app.command(c.DecideObjection)(h.decide_objection)
    app.command(c.ObjectionsStatus)(h.objections_status)
    app.command(c.FinalizeShortlist)(h.finalize_shortlist)
    return app
