"""Registration's use cases: one function per command, each loading through the repositories,
asking one aggregate, and emitting what it caused (the rules live in ``domain``)."""

from __future__ import annotations

from contracts.base import title_key
from contracts.cycle import CycleCancelled
from contracts.registration import (
    CallClosedSummary,
    CallView,
    CloseCall,
    ForwardProposal,
    GetCall,
    GetParticipant,
    GetProposal,
    ImportParticipants,
    ImportSummary,
    ListParticipants,
    ListProposals,
    OpenCall,
    Participant,
    ParticipantPage,
    ProposalPage,
    ProposalView,
    ReturnProposal,
    SubmitProposal,
    WithdrawProposal,
)
from services.common.errors import DomainError
from services.registration import domain
from services.registration.domain import Call, Party, Proposal
from services.registration.store import Unit

# --------------------------------------------------------------------------- views


def _participant(p: Party) -> Participant:
    return Participant(code=p.code, name=p.name, kind=p.kind, parent_code=p.parent_code, active=p.active)


def _call_view(call: Call) -> CallView:
    return CallView(
        cycle_year=call.cycle_year,
        state=call.state.value,
        opens_at=call.opens_at,
        closes_at=call.closes_at,
        quota_per_agency=call.quota_per_agency,
    )


def _view(p: Proposal) -> ProposalView:
    return ProposalView(
        id=p.id,
        cycle_year=p.cycle_year,
        unit_code=p.unit_code,
        agency_code=p.agency_code,
        content=p.content,
        status=p.status,
        levels=p.levels,
        submitted_at=p.submitted_at,
        forwarded_at=p.forwarded_at,
        returned_reason=p.returned_reason,
        updated_at=p.updated_at,
    )


# --------------------------------------------------------------------------- participants


async def import_participants(cmd: ImportParticipants, uow: Unit) -> ImportSummary:
    incoming = cmd.participants
    given = {p.code for p in incoming}
    parents = {p.parent_code for p in incoming if p.parent_code} - given
    known_kinds = {code: p.kind for code, p in (await uow.participants.many(parents)).items()}
    children = await uow.participants.children_of(domain.would_be_units(incoming))
    domain.check_import(incoming, known_kinds, children)
    created, updated = domain.merge_import(incoming, await uow.participants.many(given))
    total = await uow.participants.count()
    await uow.participants.add(created)
    await uow.participants.save(updated)
    return ImportSummary(created=len(created), updated=len(updated), total=total + len(created))


async def get_participant(cmd: GetParticipant, uow: Unit) -> Participant:
    return _participant(domain.existing_participant(await uow.participants.get(cmd.code), cmd.code))


async def list_participants(cmd: ListParticipants, uow: Unit) -> ParticipantPage:
    parties, total = await uow.participants.page(cmd.kind, cmd.parent_code, cmd.offset, cmd.limit)
    return ParticipantPage(items=[_participant(p) for p in parties], total=total, offset=cmd.offset)


async def _unit(uow: Unit, code: str) -> tuple[Party, Party]:
    """The acting unit and its agency, both known and active."""
    unit = domain.a_unit(await uow.participants.get(code), code)
    assert unit.parent_code is not None
    return unit, domain.known(await uow.participants.get(unit.parent_code), unit.parent_code)


# --------------------------------------------------------------------------- the call


async def open_call(cmd: OpenCall, uow: Unit) -> CallView:
    filed = await uow.calls.get(cmd.cycle_year, lock=True)
    call, events = Call.open(filed, cmd.cycle_year, cmd.opens_at, cmd.closes_at, cmd.quota_per_agency)
    await (uow.calls.add(call) if filed is None else uow.calls.save(call))
    uow.emit(*events)
    return _call_view(call)


async def get_call(cmd: GetCall, uow: Unit) -> CallView:
    return _call_view(domain.existing_call(await uow.calls.get(cmd.cycle_year), cmd.cycle_year))


async def close_call(cmd: CloseCall, uow: Unit) -> CallClosedSummary:
    call = domain.existing_call(await uow.calls.get(cmd.cycle_year, lock=True), cmd.cycle_year)
    filed = await uow.proposals.filed(cmd.cycle_year) if call.summary is None else []
    summary, events = call.close(cmd.at, filed)
    await uow.calls.save(call)
    uow.emit(*events)
    return summary


async def on_cycle_cancelled(evt: CycleCancelled, uow: Unit) -> None:
    """A cancelled cycle accepts no more submissions."""
    call = await uow.calls.get(evt.cycle_year, lock=True)
    if call is not None:
        uow.emit(*call.cancel(uow.now))
        await uow.calls.save(call)


# --------------------------------------------------------------------------- the chain


async def submit_proposal(cmd: SubmitProposal, uow: Unit) -> ProposalView:
    unit, agency = await _unit(uow, cmd.unit_code)
    year, key = cmd.cycle_year, title_key(cmd.content.title)
    call = domain.accepting(await uow.calls.get(year, lock=cmd.proposal_id is None), year)
    if cmd.proposal_id:
        return await _resubmit(cmd, uow, unit, agency, key)
    holder = await uow.proposals.title_holder(year, agency.code, key, None)
    proposal, event = Proposal.submit(call, unit, agency, cmd.content, key, holder, uow.now)
    await uow.calls.save(call)
    await uow.proposals.add(proposal)
    uow.emit(event)
    return _view(proposal)


async def _resubmit(cmd: SubmitProposal, uow: Unit, unit: Party, agency: Party, key: str) -> ProposalView:
    assert cmd.proposal_id is not None
    proposal = domain.found(
        await uow.proposals.get(cmd.proposal_id, lock=True), cmd.cycle_year, cmd.proposal_id
    )
    proposal.owned_by(unit.code)
    holder = await uow.proposals.title_holder(cmd.cycle_year, agency.code, key, proposal.id)
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code)
    event = proposal.resubmit(unit, agency, cmd.content, key, holder, uow.now, names)
    await uow.proposals.save(proposal, content=True)
    uow.emit(event)
    return _view(proposal)


async def forward_proposals(cmds: list[ForwardProposal], uow: Unit) -> list[ProposalView | DomainError]:
    """Forward a batch (group commit): read every row the batch needs in a few set queries, decide
    each command in arrival order against the state the earlier ones left, write the changes in a
    few statements. The agencies' quota rows are locked (PostgreSQL ``FOR UPDATE``, in key order;
    SQLite's write transaction) from the read to the commit, so the quota holds exactly across
    replicas."""
    batch = await _forwarding(cmds, uow)
    results: list[ProposalView | DomainError] = []
    forwarded: list[Proposal] = []
    for cmd in cmds:
        quota = batch.quota_to_explain(cmd.cycle_year, cmd.agency_code)
        if quota is not None:  # about to be refused: name what the agency forwarded already
            quota.forwarded_before = await uow.proposals.forwarded_ids(*quota.key)
        try:
            proposal, event = batch.forward(cmd.cycle_year, cmd.agency_code, cmd.proposal_id, uow.now)
        except DomainError as exc:
            results.append(exc)
            continue
        uow.emit(event)
        forwarded.append(proposal)
        results.append(_view(proposal))
    await uow.proposals.save_forwarded(forwarded)
    await uow.quotas.save(q for q in batch.quotas.values() if q.forwarded_now)
    return results


async def _forwarding(cmds: list[ForwardProposal], uow: Unit) -> domain.Forwarding:
    calls = await uow.calls.many(c.cycle_year for c in cmds)
    proposals = await uow.proposals.many_locked(c.proposal_id for c in cmds)
    people = await uow.participants.many(
        {c.agency_code for c in cmds} | {p.unit_code for p in proposals.values()}
    )
    keys = {(c.cycle_year, c.agency_code) for c in cmds if c.cycle_year in calls and c.agency_code in people}
    return domain.Forwarding(calls, people, proposals, await uow.quotas.lock(keys))


async def _administered(uow: Unit, cmd: ReturnProposal) -> tuple[Party, Proposal]:
    """The acting agency and the proposal it administers, both checked."""
    agency = domain.an_agency(await uow.participants.get(cmd.agency_code), cmd.agency_code)
    proposal = domain.found(
        await uow.proposals.get(cmd.proposal_id, lock=True), cmd.cycle_year, cmd.proposal_id
    )
    return agency, proposal.under(agency.code)


async def return_proposal(cmd: ReturnProposal, uow: Unit) -> ProposalView:
    domain.accepting(await uow.calls.get(cmd.cycle_year), cmd.cycle_year)
    agency, proposal = await _administered(uow, cmd)
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code)
    uow.emit(proposal.return_to_unit(agency, cmd.reason, uow.now, names))
    await uow.proposals.save(proposal)
    return _view(proposal)


async def withdraw_proposal(cmd: WithdrawProposal, uow: Unit) -> ProposalView:
    unit, _ = await _unit(uow, cmd.unit_code)
    domain.accepting(await uow.calls.get(cmd.cycle_year), cmd.cycle_year)
    proposal = domain.found(
        await uow.proposals.get(cmd.proposal_id, lock=True), cmd.cycle_year, cmd.proposal_id
    )
    quotas = await uow.quotas.lock([(cmd.cycle_year, proposal.agency_code)] if proposal.holds_a_slot else [])
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code)
    uow.emit(proposal.withdraw(unit, next(iter(quotas.values()), None), cmd.reason, uow.now, names))
    await uow.quotas.save(quotas.values())
    await uow.proposals.save(proposal)
    return _view(proposal)


async def get_proposal(cmd: GetProposal, uow: Unit) -> ProposalView:
    return _view(domain.any_proposal(await uow.proposals.get(cmd.proposal_id), cmd.proposal_id))


async def list_proposals(cmd: ListProposals, uow: Unit) -> ProposalPage:
    filters = {
        "agency_code": cmd.agency_code,
        "unit_code": cmd.unit_code,
        "status": cmd.status.value if cmd.status else None,
        "group": cmd.group.value if cmd.group else None,
    }
    proposals, total = await uow.proposals.page(cmd.cycle_year, filters, cmd.offset, cmd.limit)
    return ProposalPage(items=[_view(p) for p in proposals], total=total, offset=cmd.offset)
