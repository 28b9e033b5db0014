"""Registration's rules, free of I/O: the submission chain's transitions, levels, titles, quota."""

from __future__ import annotations

from contracts.base import AGENCY_KINDS, UNIT_KINDS, ParticipantKind, ProposalStatus
from contracts.registration import RegistrationError
from services.common.errors import DomainError

# Which status may move to which, and by whose hand.
TRANSITIONS: dict[str, set[ProposalStatus]] = {
    "forward": {ProposalStatus.SUBMITTED},
    "return": {ProposalStatus.SUBMITTED},
    "resubmit": {ProposalStatus.RETURNED},
    "withdraw": {ProposalStatus.SUBMITTED, ProposalStatus.RETURNED, ProposalStatus.FORWARDED},
}


def check_transition(action: str, status: str, proposal_id: str) -> None:
    if ProposalStatus(status) not in TRANSITIONS[action]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[action]))
        raise DomainError(
            RegistrationError.INVALID_TRANSITION,
            f"cannot {action} proposal {proposal_id}: it is {status} (only from {allowed})",
            {"proposal_id": proposal_id, "status": status, "action": action},
        )


def levels(status: str, was_forwarded: bool) -> dict[str, str]:
    """Status per level of the chain: where the proposal stands for the unit, its agency's admin,
    and the secretariat — so operators see what never left a unit."""
    s = ProposalStatus(status)
    if s == ProposalStatus.SUBMITTED:
        return {"unit": "submitted", "agency": "pending_review", "secretariat": "not_received"}
    if s == ProposalStatus.RETURNED:
        return {"unit": "revising", "agency": "returned", "secretariat": "not_received"}
    if s == ProposalStatus.FORWARDED:
        return {"unit": "submitted", "agency": "forwarded", "secretariat": "received"}
    if s == ProposalStatus.WITHDRAWN:
        return {
            "unit": "withdrawn",
            "agency": "withdrawn",
            "secretariat": "withdrawn" if was_forwarded else "not_received",
        }
    return {"unit": "draft", "agency": "not_received", "secretariat": "not_received"}


def level_of(status: str) -> str:
    """The level a proposal is at now."""
    return {
        ProposalStatus.SUBMITTED: "agency",
        ProposalStatus.FORWARDED: "secretariat",
    }.get(ProposalStatus(status), "unit")


def check_quota(used: int, quota: int, agency: str, forwarded: list[str]) -> None:
    if used >= quota:
        raise DomainError(
            RegistrationError.QUOTA_EXCEEDED,
            f"agency {agency} has already forwarded {used} of its {quota} proposals this cycle; withdraw one to free a slot",
            {"agency_code": agency, "quota_per_agency": quota, "forwarded": forwarded},
        )


def check_participant_tree(
    kind: ParticipantKind, parent_kind: ParticipantKind | None, code: str
) -> str | None:
    """A problem with a participant's place in the tree, or None."""
    if kind in AGENCY_KINDS and parent_kind is not None:
        return f"{code}: an agency ({kind.value}) has no parent"
    if kind in UNIT_KINDS:
        if parent_kind is None:
            return f"{code}: a unit ({kind.value}) needs a parent agency"
        if parent_kind not in AGENCY_KINDS:
            return f"{code}: the parent of a unit must be an agency, not a {parent_kind.value}"
    return None
