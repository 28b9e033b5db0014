"""The verification service's edge: builds the ServiceApp and wires its handlers, each bound to
the runtime's unit of work through verification's repositories (``SqlUnit``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from contracts import registration as r
from contracts import verification as c
from contracts.cycle import CycleCancelled
from services.common.runtime import ServiceApp, UnitOfWork
from services.common.settings import Settings
from services.verification import handlers as h
from services.verification.store import Base, SqlUnit, VerificationUnit

M = TypeVar("M")
R = TypeVar("R")


def bound(handler: Callable[[M, VerificationUnit], Awaitable[R]]) -> Callable[[M, UnitOfWork], Awaitable[R]]:
    """The handler as the runtime calls it: with its unit of work, seen through the repositories."""

    async def run(message: M, uow: UnitOfWork) -> R:
        return await handler(message, SqlUnit(uow))

    run.__name__ = run.__qualname__ = handler.__name__
    return run


def create_app(settings: Settings | None = None) -> ServiceApp:
    app = ServiceApp("verification", Base.metadata, settings)
    events: list[tuple[Any, Any]] = [
        (r.ProposalForwarded, h.on_forwarded),
        (r.ProposalWithdrawn, h.on_withdrawn),
        (r.ProposalReturned, h.on_returned),
        (CycleCancelled, h.on_cycle_cancelled),
    ]
    commands: list[tuple[Any, Any]] = [
        (c.StartVerification, h.start_verification),
        (c.VerificationStatus, h.verification_status),
        (c.GetDecision, h.get_decision),
        (c.OverrideDecision, h.override_decision),
        (c.CloseVerification, h.close_verification),
        (c.SubmitLke, h.submit_lke),
        (c.OverrideWbk, h.override_wbk),
        (c.GetWbkResult, h.get_wbk_result),
        (c.OpenEvaluation, h.open_evaluation),
        (c.EnterEvaluation, h.enter_evaluation),
        (c.ReviewEvaluation, h.review_evaluation),
        (c.CloseEvaluation, h.close_evaluation),
        (c.GetEvaluation, h.get_evaluation),
        (c.ListEvaluations, h.list_evaluations),
        (c.EvaluationStatus, h.evaluation_status),
    ]
    for event, on_event in events:
        app.on_event(event)(bound(on_event))
    for command, handler in commands:
        app.command(command)(bound(handler))
    return app
