"""Registration's use cases: one function per command, each loading through the repositories,
asking one aggregate, and emitting what it caused (the rules live in ``domain``)."""

from __future__ import annotations

from contracts.awards import AwardsDetermined
from contracts.base import Competition, title_key
from contracts.cycle import CycleCancelled
from contracts.registration import (
    ArchiveEntry,
    ArchivePage,
    ArchiveRef,
    ArchiveYear,
    ArchiveYearSummary,
    CallClosedSummary,
    CallView,
    CloseCall,
    ForwardProposal,
    GetArchived,
    GetCall,
    GetParticipant,
    GetProposal,
    ImportArchive,
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
    SearchArchive,
    SubmitProposal,
    SubmitRisalah,
    WithdrawProposal,
)
from contracts.scoring import JurorsAssigned
from contracts.verification import VerificationClosed
from services.common.errors import DomainError
from services.registration import domain
from services.registration.domain import Archived, AwardsSeen, Call, Party, Proposal
from services.registration.store import Unit

# --------------------------------------------------------------------------- views


def _participant(p: Party) -> Participant:
    return Participant(code=p.code, name=p.name, kind=p.kind, parent_code=p.parent_code, active=p.active)


def _call_view(call: Call) -> CallView:
    return CallView(
        cycle_year=call.cycle_year,
        track=call.track,
        state=call.state.value,
        opens_at=call.opens_at,
        closes_at=call.closes_at,
        quota_per_agency=call.quota_per_agency,
    )


def _view(p: Proposal) -> ProposalView:
    return ProposalView(
        id=p.id,
        cycle_year=p.cycle_year,
        track=p.track,
        group_code=p.group_code,
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
    filed = await uow.calls.get(cmd.cycle_year, lock=True, track=cmd.track)
    call, events = Call.open(filed, cmd.cycle_year, cmd.opens_at, cmd.closes_at, cmd.quota_per_agency, cmd.track)
    await (uow.calls.add(call) if filed is None else uow.calls.save(call))
    uow.emit(*events)
    return _call_view(call)


async def get_call(cmd: GetCall, uow: Unit) -> CallView:
    call = await uow.calls.get(cmd.cycle_year, track=cmd.track)
    return _call_view(domain.existing_call(call, cmd.cycle_year, cmd.track))


async def close_call(cmd: CloseCall, uow: Unit) -> CallClosedSummary:
    call = await uow.calls.get(cmd.cycle_year, lock=True, track=cmd.track)
    call = domain.existing_call(call, cmd.cycle_year, cmd.track)
    filed = await uow.proposals.filed(cmd.cycle_year, cmd.track) if call.summary is None else []
    summary, events = call.close(cmd.at, filed)
    await uow.calls.save(call)
    uow.emit(*events)
    return summary


async def on_cycle_cancelled(evt: CycleCancelled, uow: Unit) -> None:
    """A cancelled cycle accepts no more submissions (of any competition)."""
    for track in Competition:
        call = await uow.calls.get(evt.cycle_year, lock=True, track=track)
        if call is not None:
            uow.emit(*call.cancel(uow.now))
            await uow.calls.save(call)


# --------------------------------------------------------------------------- the chain


async def submit_proposal(cmd: SubmitProposal, uow: Unit) -> ProposalView:
    unit, agency = await _unit(uow, cmd.unit_code)
    return await _submit(cmd, uow, unit, agency, None)


async def submit_risalah(cmd: SubmitRisalah, uow: Unit) -> ProposalView:
    """A KBK group's risalah: the group's unit and agency, KBK's call."""
    group = domain.a_group(await uow.participants.get(cmd.group_code), cmd.group_code)
    assert group.parent_code is not None
    unit, agency = await _unit(uow, group.parent_code)
    return await _submit(cmd, uow, unit, agency, group)


async def _submit(
    cmd: SubmitProposal | SubmitRisalah, uow: Unit, unit: Party, agency: Party, group: Party | None
) -> ProposalView:
    track = Competition.KBK if group else Competition.KOVABLIK
    year, key = cmd.cycle_year, title_key(cmd.content.title)
    call = domain.accepting(await uow.calls.get(year, lock=cmd.proposal_id is None, track=track), year, track)
    if cmd.content.replicates:
        domain.check_original(cmd.content.replicates, await uow.archive.holds(cmd.content.replicates))
    if cmd.proposal_id:
        return await _resubmit(cmd, uow, (unit, agency, group), key, track)
    holder = await uow.proposals.title_holder(year, agency.code, key, None, track)
    proposal, event = Proposal.submit(call, unit, agency, cmd.content, key, holder, uow.now, group)
    await uow.calls.save(call)
    await uow.proposals.add(proposal)
    uow.emit(event)
    return _view(proposal)


async def _resubmit(
    cmd: SubmitProposal | SubmitRisalah, uow: Unit, who: tuple[Party, Party, Party | None], key: str, track: Competition
) -> ProposalView:
    assert cmd.proposal_id is not None
    unit, agency, group = who
    proposal = domain.found(
        await uow.proposals.get(cmd.proposal_id, lock=True), cmd.cycle_year, cmd.proposal_id
    )
    proposal.owned_by(unit.code).of_group(group.code if group else None)
    holder = await uow.proposals.title_holder(cmd.cycle_year, agency.code, key, proposal.id, track)
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code, *_group_of(proposal))
    event = proposal.resubmit(unit, agency, cmd.content, key, holder, uow.now, names, group)
    await uow.proposals.save(proposal, content=True)
    uow.emit(event)
    return _view(proposal)


def _group_of(proposal: Proposal | None) -> list[str]:
    """The group whose name a risalah's snapshot carries."""
    return [proposal.group_code] if proposal is not None and proposal.group_code else []


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
        quota = batch.quota_to_explain(cmd.cycle_year, cmd.agency_code, cmd.proposal_id)
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
    proposals = await uow.proposals.many_locked(c.proposal_id for c in cmds)
    track = {c.proposal_id: p.track for c in cmds if (p := proposals.get(c.proposal_id))}
    calls = await uow.calls.many((c.cycle_year, track.get(c.proposal_id, Competition.KOVABLIK)) for c in cmds)
    people = await uow.participants.many(
        {c.agency_code for c in cmds} | {p.unit_code for p in proposals.values()} | {g for p in proposals.values() for g in _group_of(p)}
    )
    keys = {
        (c.cycle_year, t, c.agency_code)
        for c in cmds
        if (c.cycle_year, t := track.get(c.proposal_id, Competition.KOVABLIK)) in calls and c.agency_code in people
    }
    return domain.Forwarding(calls, people, proposals, await uow.quotas.lock(keys))


async def _call_of(uow: Unit, year: int, proposal: Proposal | None) -> Call:
    """The open call a step on ``proposal`` is taken in: its competition's (KOVABLIK's when there is
    no such proposal, whose refusal follows)."""
    track = proposal.track if proposal is not None else Competition.KOVABLIK
    return domain.accepting(await uow.calls.get(year, track=track, shared=True), year, track)


async def return_proposal(cmd: ReturnProposal, uow: Unit) -> ProposalView:
    filed = await uow.proposals.get(cmd.proposal_id, lock=True)
    await _call_of(uow, cmd.cycle_year, filed)
    agency = domain.an_agency(await uow.participants.get(cmd.agency_code), cmd.agency_code)
    proposal = domain.found(filed, cmd.cycle_year, cmd.proposal_id).under(agency.code)
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code, *_group_of(proposal))
    uow.emit(proposal.return_to_unit(agency, cmd.reason, uow.now, names))
    await uow.proposals.save(proposal)
    return _view(proposal)


async def withdraw_proposal(cmd: WithdrawProposal, uow: Unit) -> ProposalView:
    unit, _ = await _unit(uow, cmd.unit_code)
    filed = await uow.proposals.get(cmd.proposal_id, lock=True)
    await _call_of(uow, cmd.cycle_year, filed)
    proposal = domain.found(filed, cmd.cycle_year, cmd.proposal_id)
    quotas = await uow.quotas.lock([proposal.quota_key] if proposal.holds_a_slot else [])
    names = await uow.participants.names(proposal.unit_code, proposal.agency_code, *_group_of(proposal))
    uow.emit(proposal.withdraw(unit, next(iter(quotas.values()), None), cmd.reason, uow.now, names))
    await uow.quotas.save(quotas.values())
    await uow.proposals.save(proposal)
    return _view(proposal)


async def get_proposal(cmd: GetProposal, uow: Unit) -> ProposalView:
    return _view(domain.any_proposal(await uow.proposals.get(cmd.proposal_id), cmd.proposal_id))


async def list_proposals(cmd: ListProposals, uow: Unit) -> ProposalPage:
    filters = {
        "track": cmd.track.value if cmd.track else None,
        "group_code": cmd.group_code,
        "agency_code": cmd.agency_code,
        "unit_code": cmd.unit_code,
        "status": cmd.status.value if cmd.status else None,
        "group": cmd.group.value if cmd.group else None,
    }
    proposals, total = await uow.proposals.page(cmd.cycle_year, filters, cmd.offset, cmd.limit)
    return ProposalPage(items=[_view(p) for p in proposals], total=total, offset=cmd.offset)


# --------------------------------------------------------------------------- the innovation archive


async def on_verification_closed(evt: VerificationClosed, uow: Unit) -> None:
    """The eligible proposals reached (at least) verification."""
    await uow.archive.seen(evt.cycle_year, domain.VERIFICATION, evt.eligible_ids, evt.occurred_at)


async def on_jurors_assigned(evt: JurorsAssigned, uow: Unit) -> None:
    """The proposals given to a jury stage's jurors entered that stage (scored or not). One event
    per stage: the archive does not follow every score (60,000 of them in a national desk stage)."""
    await uow.archive.seen(evt.cycle_year, evt.stage, evt.proposal_ids, evt.occurred_at)


async def on_awards_determined(evt: AwardsDetermined, uow: Unit) -> None:
    """The year's winners, by proposal, for the archive."""
    await uow.archive.put_awards(AwardsSeen.of(evt.cycle_year, evt.categories))


async def archive_year(cmd: ArchiveYear, uow: Unit) -> ArchiveYearSummary:
    """After the ceremony: the year's forwarded proposals join the public archive. Idempotent."""
    done = await uow.archive.archived_year(cmd.cycle_year)
    if done is None:
        awards = domain.ready_to_archive(await uow.archive.awards(cmd.cycle_year), cmd.cycle_year, cmd.expected_winners)
        proposals = await uow.proposals.forwarded(cmd.cycle_year)
        people = await uow.participants.many(
            {p.unit_code for p in proposals} | {p.agency_code for p in proposals}
        )
        stages = await uow.archive.stages_of(cmd.cycle_year)
        entries = [domain.archive_entry(p, people, stages.get(p.id, {}), awards) for p in proposals]
        await uow.archive.put(entries)
        done = (len(entries), sum(1 for e in entries if e.award))
        await uow.archive.mark_archived(cmd.cycle_year, *done, at=cmd.at)
    return ArchiveYearSummary(cycle_year=cmd.cycle_year, entries=done[0], awarded=done[1])


def _ref(a: Archived) -> ArchiveRef:
    return ArchiveRef(id=a.id, year=a.year, title=a.title, unit_name=a.unit_name, agency_name=a.agency_name, region=a.region)


def _entry(a: Archived, originals: dict[str, Archived], replications: list[Archived] | None = None) -> ArchiveEntry:
    original = originals.get(a.replicates) if a.replicates else None
    return ArchiveEntry(
        id=a.id, year=a.year, track=a.track, title=a.title, unit_code=a.unit_code, unit_name=a.unit_name,
        agency_code=a.agency_code, agency_name=a.agency_name, region=a.region, category=a.category,
        group=a.group, summary=a.summary, stage_reached=a.stage_reached, award=a.award,
        replicates=_ref(original) if original else None,
        replications=[_ref(r) for r in replications or []], imported=a.imported,
    )  # fmt: skip


async def search_archive(cmd: SearchArchive, uow: Unit) -> ArchivePage:
    filters = {
        "year": cmd.year,
        "category": cmd.category,
        "group": cmd.group.value if cmd.group else None,
        "region": cmd.region,
        "agency_code": cmd.agency_code,
    }
    found, total = await uow.archive.search(cmd.text, filters, cmd.awarded_only, cmd.offset, cmd.limit)
    originals = await uow.archive.many(a.replicates for a in found if a.replicates)
    after = cmd.offset + len(found)
    return ArchivePage(
        items=[_entry(a, originals) for a in found], total=total, next_offset=after if after < total else None
    )


async def get_archived(cmd: GetArchived, uow: Unit) -> ArchiveEntry:
    entry = domain.archived(await uow.archive.get(cmd.id), cmd.id)
    originals = await uow.archive.many([entry.replicates] if entry.replicates else [])
    return _entry(entry, originals, await uow.archive.replications(entry.id))


async def import_archive(cmd: ImportArchive, uow: Unit) -> ImportSummary:
    """Earlier years' proposals from the operator's CSV (``bfest archive import``). Idempotent per id."""
    ids = [r.id for r in cmd.rows]
    originals = {r.replicates for r in cmd.rows if r.replicates}
    held = await uow.archive.many(ids)
    created, updated = domain.merge_archive_import(cmd.rows, held, await uow.archive.known_ids(originals))
    await uow.archive.put(created + updated)
    return ImportSummary(created=len(created), updated=len(updated), total=await uow.archive.count())
