"""The verification service's edge: builds the ServiceApp and wires its handlers."""

from __future__ import annotations

from contracts import registration as r
from contracts import verification as c
from contracts.cycle import CycleCancelled
from services.common.runtime import ServiceApp
from services.common.settings import Settings
from services.verification import handlers as h
from services.verification.store import Base


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("verification", Base.metadata, settings)
    app.on_event(r.ProposalForwarded)(h.on_forwarded)
    app.on_event(r.ProposalWithdrawn)(h.on_withdrawn)
    app.on_event(r.ProposalReturned)(h.on_returned)
    app.on_event(CycleCancelled)(h.on_cycle_cancelled)
    app.command(c.StartVerification)(h.start_verification)
    app.command(c.VerificationStatus)(h.verification_status)
    app.command(c.GetDecision)(h.get_decision)
    app.command(c.OverrideDecision)(h.override_decision)
    app.command(c.CloseVerification)(h.close_verification)
    app.command(c.SubmitLke)(h.submit_lke)
    app.command(c.OverrideWbk)(h.override_wbk)
    app.command(c.GetWbkResult)(h.get_wbk_result)
    return app
