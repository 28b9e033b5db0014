"""The registration service's edge: builds the ServiceApp and wires its handlers."""

from __future__ import annotations

from contracts import registration as c
from contracts.awards import AwardsDetermined
from contracts.cycle import CycleCancelled
from contracts.scoring import JurorsAssigned
from contracts.verification import VerificationClosed
from services.common.runtime import ServiceApp, each_in_savepoint
from services.common.settings import Settings
from services.registration import handlers as h
from services.registration.store import Base, bind


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("registration", Base.metadata, settings)
    app.command(c.ImportParticipants)(bind(h.import_participants))
    app.command(c.GetParticipant)(bind(h.get_participant))
    app.command(c.ListParticipants)(bind(h.list_participants))
    app.command(c.OpenCall)(bind(h.open_call))
    app.command(c.CloseCall)(bind(h.close_call))
    app.command(c.GetCall)(bind(h.get_call))
    app.command_batch(c.SubmitProposal)(each_in_savepoint(bind(h.submit_proposal)))
    app.command_batch(c.SubmitRisalah)(each_in_savepoint(bind(h.submit_risalah)))
    app.command_batch(c.ForwardProposal)(bind(h.forward_proposals))
    app.command(c.ReturnProposal)(bind(h.return_proposal))
    app.command(c.WithdrawProposal)(bind(h.withdraw_proposal))
    app.command(c.GetProposal)(bind(h.get_proposal))
    app.command(c.ListProposals)(bind(h.list_proposals))
    app.command(c.ImportArchive)(bind(h.import_archive))
    app.command(c.ArchiveYear)(bind(h.archive_year))
    app.command(c.SearchArchive)(bind(h.search_archive))
    app.command(c.GetArchived)(bind(h.get_archived))
    app.on_event(CycleCancelled)(bind(h.on_cycle_cancelled))
    # The archive learns how far each proposal went and what it won.
    app.on_event(VerificationClosed)(bind(h.on_verification_closed))
    app.on_event(JurorsAssigned)(bind(h.on_jurors_assigned))
    app.on_event(AwardsDetermined)(bind(h.on_awards_determined))
    return app
