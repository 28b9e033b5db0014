"""The verification run of a cycle and its decisions: the aggregate the administrative check,
verifiers' overrides, closing, cancelling and reopening go through."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.base import AdminDecision, Competition, ErrorCode, Event, digest_ids, title_key
from contracts.verification import (
    AdminRules,
    DecisionOverridden,
    OverrideDecision,
    OverrideWbk,
    ProposalDecisionView,
    ProposalDisqualified,
    ProposalVerified,
    Reasoned,
    StartVerification,
    VerificationClosed,
    VerificationClosedSummary,
    VerificationCompleted,
    VerificationCounts,
    VerificationError,
)
from services.common.errors import DomainError, NotReady
from services.verification.domain.admin import check_proposal, verified_proposal
from services.verification.domain.wbk import WbkEvaluation, known_evaluation

Snapshot = Mapping[str, Any]
"""Verification's copy of a forwarded proposal, as registration's event carried it."""


class RunState(StrEnum):
    OPEN = "open"  # decisions are made and overridden
    COMPLETED = "completed"  # every proposal has a decision; overrides still come until closing
    CLOSED = "closed"  # final
    CANCELLED = "cancelled"  # its cycle was; starting the year again opens it again


TRANSITIONS: dict[str, tuple[frozenset[RunState], RunState | None]] = {
    # action: (the states it may happen in, the state it leaves; None: unchanged)
    "decide": (frozenset({RunState.OPEN, RunState.COMPLETED}), None),
    "complete": (frozenset({RunState.OPEN}), RunState.COMPLETED),
    "cancel": (frozenset({RunState.OPEN, RunState.COMPLETED}), RunState.CANCELLED),
    "reopen": (frozenset({RunState.CANCELLED}), RunState.OPEN),
    "close": (frozenset({RunState.OPEN, RunState.COMPLETED, RunState.CANCELLED}), RunState.CLOSED),
}


@dataclass
class Decision:
    """The administrative decision on one proposal: the automatic result, the final one (``None``
    while a verifier's review is pending) and the overrides that led there."""

    proposal_id: str
    cycle_year: int
    automatic: AdminDecision
    reasons: list[Reasoned]
    final: AdminDecision | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)
    track: Competition = Competition.KOVABLIK

    @property
    def pending(self) -> bool:
        return self.final is None

    def decided(self, snapshot: Snapshot) -> Event:
        """The event the final decision publishes: the jury stages take the verified ones."""
        proposal = verified_proposal(snapshot)
        overridden = self.final != self.automatic
        if self.final == AdminDecision.ELIGIBLE:
            return ProposalVerified(cycle_year=self.cycle_year, proposal=proposal, overridden=overridden)
        return ProposalDisqualified(cycle_year=self.cycle_year, proposal=proposal, reasons=self.reasons, overridden=overridden)

    def view(self) -> ProposalDecisionView:
        return ProposalDecisionView(
            proposal_id=self.proposal_id,
            automatic=self.automatic,
            reasons=self.reasons,
            final=self.final or self.automatic,
            overrides=self.overrides,
            pending=self.pending,
        )


def tally(
    cycle_year: int, run: Verification | None, groups: Iterable[tuple[str | None, str, int]], track: Competition = Competition.KOVABLIK
) -> VerificationCounts:
    """The run's counts from the number of decisions per (final, automatic) pair. Only a
    verifier's override moves ``final`` away from ``automatic``."""
    groups = list(groups)
    return VerificationCounts(
        cycle_year=cycle_year,
        track=track,
        state=run.state.value if run else "not_started",
        total=sum(n for *_, n in groups),
        pending=sum(n for final, _, n in groups if final is None),
        eligible=sum(n for final, _, n in groups if final == AdminDecision.ELIGIBLE),
        disqualified=sum(n for final, _, n in groups if final == AdminDecision.DISQUALIFIED),
        overridden=sum(n for final, automatic, n in groups if final is not None and final != automatic),
        deadline=run.deadline if run else None,
    )


def _by_title(copies: Sequence[tuple[str, Snapshot]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid, snapshot in copies:
        out.setdefault(title_key(snapshot["content"]["title"]), []).append(pid)
    return out


@dataclass
class Verification:
    """The verification run of one cycle year and competition (KOVABLIK's proposals, or the
    work-culture groups' risalah, each checked with its own rules)."""

    cycle_year: int
    deadline: dt.datetime
    call_closed_at: dt.datetime
    rules: AdminRules
    state: RunState = RunState.OPEN
    summary: VerificationClosedSummary | None = None
    track: Competition = Competition.KOVABLIK

    # ------------------------------------------------------------------ starting

    @classmethod
    def start(
        cls, cmd: StartVerification, copies: Sequence[tuple[str, Snapshot]]
    ) -> tuple[Verification, list[Decision], list[Event]]:
        """Check every forwarded proposal of the track's frozen set the call closed with;
        ``not_ready`` while verification's copy of them (``copies``: id and snapshot, of that
        track) differs from it."""
        have = {"count": len(copies), "digest": digest_ids(pid for pid, _ in copies)}
        if have != cmd.expected.model_dump():
            raise NotReady(
                message=f"the copy of forwarded proposals has {len(copies)}, the call closed with {cmd.expected.count}; waiting for events",
                details={"have": have["count"], "expected": cmd.expected.count},
            )
        run = cls(cmd.cycle_year, cmd.deadline, cmd.call_closed_at, cmd.rules, track=cmd.track)
        titles = _by_title(copies)
        decisions, events = [], []
        for pid, snapshot in sorted(copies, key=lambda c: c[0]):
            twins = sorted(i for i in titles[title_key(snapshot["content"]["title"])] if i != pid)
            decision = run._check(pid, snapshot, twins)
            decisions.append(decision)
            if not decision.pending:
                events.append(decision.decided(snapshot))
        return run, decisions, events

    def _check(self, pid: str, snapshot: Snapshot, twins: list[str]) -> Decision:
        reasons = check_proposal(snapshot, self.rules, self.call_closed_at, twins)
        automatic = AdminDecision.DISQUALIFIED if reasons else AdminDecision.ELIGIBLE
        final = None if self.rules.review_required else automatic
        return Decision(pid, self.cycle_year, automatic, reasons, final, track=self.track)

    # ------------------------------------------------------------------ state machine

    def _may(self, action: str) -> bool:
        return self.state in TRANSITIONS[action][0]

    def _move(self, action: str) -> None:
        target = TRANSITIONS[action][1]
        if target is not None:
            self.state = target

    @property
    def label(self) -> str:
        """The run as messages name it: the year, and the competition when it is not KOVABLIK."""
        return str(self.cycle_year) if self.track == Competition.KOVABLIK else f"{self.cycle_year} ({self.track.value})"

    def cancel(self) -> None:
        """Its cycle was cancelled: no more overrides (a closed or cancelled run stays so)."""
        if self._may("cancel"):
            self._move("cancel")

    def reopen(self) -> bool:
        """The cancelled year's cycle started again: its verifiers go on. False when not cancelled."""
        if not self._may("reopen"):
            return False
        self._move("reopen")
        return True

    def complete_if_done(self, counts: VerificationCounts) -> list[Event]:
        """Every proposal decided: the workflow may close early."""
        if not (self._may("complete") and counts.pending == 0):
            return []
        self._move("complete")
        return [VerificationCompleted(cycle_year=self.cycle_year, counts=counts.model_copy(update={"state": self.state.value}))]

    def ensure_decisions_open(self, why: str | None = None) -> None:
        """Refuse a decision once the run is closed or its cycle cancelled (saying ``why``)."""
        if not self._may("decide"):
            why = why or ("decisions are final" if self.state == RunState.CLOSED else "its cycle was cancelled")
            raise DomainError(
                VerificationError.CLOSED, f"verification {self.label} is {self.state.value}; {why}", {"state": self.state.value}
            )

    def check_verifier(self, verifier_id: str) -> None:
        """The cycle's verifier list, when it names one, must name the acting verifier."""
        listed = self.rules.verifiers
        if listed is not None and verifier_id not in listed:
            raise DomainError(
                ErrorCode.NOT_A_VERIFIER,
                f"{verifier_id} is not in the verifier list of verification {self.label}",
                {"verifier_id": verifier_id},
            )

    # ------------------------------------------------------------------ a verifier's override

    def override(
        self, decision: Decision | None, cmd: OverrideDecision, snapshot: Snapshot | None, at: dt.datetime
    ) -> tuple[Decision, list[Event]]:
        """A verifier's decision on a proposal (``decision``, as loaded), with a reason, until the
        run closes: the decision as it now stands and the events it causes."""
        self.ensure_decisions_open()
        self.check_verifier(cmd.verifier_id)
        if decision is None or decision.cycle_year != self.cycle_year:
            raise DomainError(VerificationError.UNKNOWN_PROPOSAL, f"no proposal {cmd.proposal_id} in verification {self.label}")
        previous = decision.final
        record = {"decision": cmd.decision.value, "reason": cmd.reason, "verifier_id": cmd.verifier_id, "at": at.isoformat()}
        decision.overrides = [*decision.overrides, record]
        decision.final = cmd.decision
        events: list[Event] = []
        if previous != decision.final:
            assert snapshot is not None, "every decision has its proposal's copy"
            events.append(decision.decided(snapshot))
        if decision.final != decision.automatic:
            events.append(
                DecisionOverridden(
                    cycle_year=self.cycle_year,
                    subject_kind="proposal",
                    subject_id=decision.proposal_id,
                    automatic=decision.automatic.value,
                    decision=cmd.decision.value,
                    reason=cmd.reason,
                    verifier_id=cmd.verifier_id,
                )
            )
        return decision, events

    # ------------------------------------------------------------------ closing

    def close(
        self, decisions: Sequence[Decision], snapshots: Mapping[str, Snapshot], wbk: Sequence[WbkEvaluation]
    ) -> list[Event]:
        """Freeze the result: what no verifier reviewed keeps its automatic result. Closing a
        closed run changes nothing (its ``summary`` stays the first)."""
        if self.summary is not None:
            return []
        events: list[Event] = []
        for d in decisions:
            if d.pending:  # not reviewed by the deadline: the automatic result stands
                d.final = d.automatic
                events.append(d.decided(snapshots[d.proposal_id]))
        eligible = sorted(d.proposal_id for d in decisions if d.final == AdminDecision.ELIGIBLE)
        wbk = wbk if self.track == Competition.KOVABLIK else []  # WBK results close with KOVABLIK's run
        layak = sorted(w.unit_code for w in wbk if w.layak)
        self.summary = VerificationClosedSummary(
            cycle_year=self.cycle_year,
            track=self.track,
            eligible=len(eligible),
            disqualified=len(decisions) - len(eligible),
            overridden=sum(1 for d in decisions if d.overrides and d.final != d.automatic),
            eligible_digest=digest_ids(eligible),
            wbk_layak=len(layak),
            wbk_belum_layak=len(wbk) - len(layak),
        )
        self._move("close")
        events.append(VerificationClosed(cycle_year=self.cycle_year, summary=self.summary, eligible_ids=eligible, wbk_layak_units=layak))
        return events


def started(run: Verification | None, cycle_year: int, track: Competition = Competition.KOVABLIK) -> Verification:
    """The cycle's run of the competition, or ``verification_not_started``."""
    if run is None:
        which = "" if track == Competition.KOVABLIK else f" ({track.value})"
        raise DomainError(VerificationError.NOT_STARTED, f"verification {cycle_year}{which} has not started", {"track": track.value})
    return run


def readable_decision(decision: Decision | None, run: Verification | None, cycle_year: int, proposal_id: str) -> Decision:
    """A decision a reader asked for: ``verification_not_started`` before any exists,
    ``unknown_proposal`` for a proposal the run does not hold."""
    if decision is None and run is None:
        raise DomainError(
            VerificationError.NOT_STARTED,
            f"verification of {cycle_year} has not started: decisions exist once the call has closed"
            " and the cycle has started verification",
            {"cycle_year": cycle_year},
        )
    if decision is None or decision.cycle_year != cycle_year:
        raise DomainError(VerificationError.UNKNOWN_PROPOSAL, f"no decision for proposal {proposal_id} in {cycle_year}")
    return decision


def wbk_open(run: Verification | None) -> None:
    """LKEs and their overrides come until the run closes (or before it starts)."""
    if run is not None:
        run.ensure_decisions_open("WBK results are final")


def override_wbk(
    run: Verification | None, evaluation: WbkEvaluation | None, cmd: OverrideWbk, at: dt.datetime
) -> tuple[WbkEvaluation, list[Event]]:
    """A verifier's WBK decision: while the run takes them, by a listed verifier, on a unit that sent its LKE."""
    wbk_open(run)
    if run is not None:
        run.check_verifier(cmd.verifier_id)
    found = known_evaluation(evaluation, cmd.cycle_year, cmd.unit_code)
    return found, found.override(cmd, at)
