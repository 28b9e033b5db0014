"""Verification's rules, free of I/O: the administrative check, the run of a cycle and track with
its decisions (the ``Verification`` aggregate), the WBK evaluation (``WbkEvaluation``, against a
threshold set handed in as data) and the SAKIP, RB and CETTAR evaluations against versioned
rubrics (``EvaluationRound``, ``Evaluation``). Aggregate methods raise the refusals and return the
events they cause; the handlers load and save them through ``store``."""

from services.verification.domain.admin import (
    CYCLE_ZONE,
    MIN_ANSWER_CHARS,
    check_proposal,
    months_between,
    verified_proposal,
)
from services.verification.domain.evaluation import (
    Context,
    Evaluation,
    EvaluationRound,
    RoundState,
    SheetState,
    cettar_context,
    known_sheet,
    lke_maximum,
    open_round,
    opened,
    previous_grade,
    recompute,
    replay,
    window,
)
from services.verification.domain.model import (
    TRANSITIONS,
    Decision,
    RunState,
    Snapshot,
    Verification,
    override_wbk,
    readable_decision,
    started,
    tally,
    wbk_open,
)
from services.verification.domain.wbk import (
    ThresholdSet,
    WbkEvaluation,
    check_lke_ranges,
    evaluate_lke,
    known_evaluation,
    pick_threshold_set,
)

__all__ = [
    "Context",
    "Evaluation",
    "EvaluationRound",
    "RoundState",
    "SheetState",
    "cettar_context",
    "known_sheet",
    "lke_maximum",
    "open_round",
    "opened",
    "previous_grade",
    "recompute",
    "replay",
    "window",
    "CYCLE_ZONE",
    "MIN_ANSWER_CHARS",
    "TRANSITIONS",
    "Decision",
    "RunState",
    "Snapshot",
    "ThresholdSet",
    "Verification",
    "WbkEvaluation",
    "check_lke_ranges",
    "check_proposal",
    "evaluate_lke",
    "known_evaluation",
    "months_between",
    "override_wbk",
    "pick_threshold_set",
    "readable_decision",
    "started",
    "tally",
    "verified_proposal",
    "wbk_open",
]
