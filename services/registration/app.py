"""The registration service's edge: builds the ServiceApp and wires its handlers."""

from __future__ import annotations

from contracts import registration as c
from contracts.cycle import CycleCancelled
from services.common.runtime import ServiceApp, each_in_savepoint
from services.common.settings import Settings
from services.registration import handlers as h
from services.registration.store import Base


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("registration", Base.metadata, settings)
    app.command(c.ImportParticipants)(h.import_participants)
    app.command(c.GetParticipant)(h.get_participant)
    app.command(c.ListParticipants)(h.list_participants)
    app.command(c.OpenCall)(h.open_call)
    app.command(c.CloseCall)(h.close_call)
    app.command(c.GetCall)(h.get_call)
    app.command_batch(c.SubmitProposal)(each_in_savepoint(h.submit_proposal))
    app.command_batch(c.ForwardProposal)(h.forward_proposals)
    app.command(c.ReturnProposal)(h.return_proposal)
    app.command(c.WithdrawProposal)(h.withdraw_proposal)
    app.command(c.GetProposal)(h.get_proposal)
    app.command(c.ListProposals)(h.list_proposals)
    app.on_event(CycleCancelled)(h.on_cycle_cancelled)
    return app
