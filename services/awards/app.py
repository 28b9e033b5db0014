"""The awards service's edge: builds the ServiceApp and wires its handlers."""

from __future__ import annotations

from contracts import awards as c
from contracts.scoring import ShortlistFinal
from contracts.verification import EvaluationClosed, WbkEvaluated
from services.awards import handlers as h
from services.awards.publishing import Config, publish_public_key
from services.awards.signing import load_signer
from services.awards.store import Base, bind
from services.common.runtime import ServiceApp
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or get_settings()
    signer = load_signer(settings)  # no key, no service: refused here in one line, before anything starts
    app = ServiceApp("awards", Base.metadata, settings)
    Config.results_dir = settings.results_path()
    Config.signer = signer
    Config.public_url = settings.public_url
    publish_public_key()
    app.on_event(ShortlistFinal)(bind(h.on_shortlist_final))
    app.on_event(WbkEvaluated)(bind(h.on_wbk_evaluated))
    app.on_event(EvaluationClosed)(bind(h.on_evaluation_closed))
    app.command(c.ValidateAwards)(bind(h.validate_awards))
    app.command(c.DetermineAwards)(bind(h.determine_awards))
    app.command(c.AnnounceAwards)(bind(h.announce_awards))
    app.command(c.GetResults)(bind(h.get_results))
    app.command(c.VerifyCertificate)(bind(h.verify_certificate))
    return app
