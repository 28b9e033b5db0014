"""Registration's use cases: one function per command, each reading like its sentence."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from contracts.base import AGENCY_KINDS, UNIT_KINDS, ParticipantKind, ProposalStatus, digest_ids, title_key
from contracts.cycle import CycleCancelled
from contracts.registration import (
    CallClosed,
    CallClosedSummary,
    CallOpened,
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
    ProposalContent,
    ProposalForwarded,
    ProposalPage,
    ProposalReturned,
    ProposalSnapshot,
    ProposalSubmitted,
    ProposalView,
    ProposalWithdrawn,
    RegistrationError,
    ReturnProposal,
    SubmitProposal,
    WithdrawProposal,
)
from services.common.errors import DomainError, NotFound
from services.common.runtime import UnitOfWork
from services.registration import domain, store
from services.registration.store import (
    CALLS,
    PARTICIPANTS,
    PROPOSALS,
    CallRow,
    ParticipantRow,
    ProposalRow,
    locked,
)

# --------------------------------------------------------------------------- participants


def _participant(row: ParticipantRow) -> Participant:
    return Participant(
        code=row.code, name=row.name, kind=row.kind, parent_code=row.parent_code, active=row.active
    )  # type: ignore[arg-type]


async def import_participants(cmd: ImportParticipants, uow: UnitOfWork) -> ImportSummary:
    incoming = {p.code: p for p in cmd.participants}
    parents = {p.parent_code for p in cmd.participants if p.parent_code} - set(incoming)
    known = {}
    if parents:
        rows = (
            await uow.session.execute(sa.select(ParticipantRow).where(ParticipantRow.code.in_(parents)))
        ).scalars()
        known = {r.code: ParticipantKind(r.kind) for r in rows}
    problems = []
    for p in cmd.participants:
        parent_kind = None
        if p.parent_code:
            parent_kind = (
                incoming[p.parent_code].kind if p.parent_code in incoming else known.get(p.parent_code)
            )
            if parent_kind is None:
                problems.append(f"{p.code}: parent {p.parent_code} is not a known participant")
                continue
        problem = domain.check_participant_tree(p.kind, parent_kind, p.code)
        if problem:
            problems.append(problem)
    problems += await _parents_that_would_become_units(uow, incoming)
    if problems:
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT
            if any("not a known" in p for p in problems)
            else RegistrationError.INVALID_PARTICIPANT,
            f"{len(problems)} participant(s) refused, nothing imported: {problems[0]}",
            {"problems": problems[:100]},
        )
    existing = {
        r.code: r
        for r in (
            await uow.session.execute(
                sa.select(ParticipantRow).where(ParticipantRow.code.in_(list(incoming)))
            )
        ).scalars()
    }
    created = updated = 0
    for p in cmd.participants:
        row = existing.get(p.code)
        if row is None:
            uow.session.add(ParticipantRow(**p.model_dump(mode="json")))
            created += 1
        elif (row.name, row.kind, row.parent_code, row.active) != (
            p.name,
            p.kind.value,
            p.parent_code,
            p.active,
        ):
            row.name, row.kind, row.parent_code, row.active = p.name, p.kind.value, p.parent_code, p.active
            updated += 1
    total = (await uow.session.execute(sa.select(sa.func.count()).select_from(ParticipantRow))).scalar_one()
    return ImportSummary(created=created, updated=updated, total=total + created)


async def _parents_that_would_become_units(uow: UnitOfWork, incoming: dict[str, Any]) -> list[str]:
    """An agency whose units stay under it cannot become a unit: they could no longer be forwarded."""
    units = [code for code, p in incoming.items() if p.kind not in AGENCY_KINDS]
    if not units:
        return []
    children: dict[str, list[str]] = {}
    for row in (
        await uow.session.execute(sa.select(ParticipantRow).where(ParticipantRow.parent_code.in_(units)))
    ).scalars():
        moved = incoming.get(row.code)
        if moved is None or moved.parent_code == row.parent_code:
            children.setdefault(row.parent_code, []).append(row.code)
    return [
        f"{code}: has {len(kids)} unit(s) ({', '.join(sorted(kids)[:3])}{', …' if len(kids) > 3 else ''}); "
        f"an agency with units cannot become a unit ({incoming[code].kind.value})"
        for code, kids in sorted(children.items())
    ]


async def get_participant(cmd: GetParticipant, uow: UnitOfWork) -> Participant:
    row = await uow.session.get(ParticipantRow, cmd.code)
    if row is None:
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT, f"no participant with code {cmd.code}", {"code": cmd.code}
        )
    return _participant(row)


async def list_participants(cmd: ListParticipants, uow: UnitOfWork) -> ParticipantPage:
    where = []
    if cmd.kind:
        where.append(ParticipantRow.kind == cmd.kind.value)
    if cmd.parent_code:
        where.append(ParticipantRow.parent_code == cmd.parent_code)
    total = (
        await uow.session.execute(sa.select(sa.func.count()).select_from(ParticipantRow).where(*where))
    ).scalar_one()
    rows = (
        await uow.session.execute(
            sa.select(ParticipantRow)
            .where(*where)
            .order_by(ParticipantRow.code)
            .offset(cmd.offset)
            .limit(cmd.limit)
        )
    ).scalars()
    return ParticipantPage(items=[_participant(r) for r in rows], total=total, offset=cmd.offset)


def _known(row: Any, code: str) -> Any:
    if row is None or not row.active:
        state = "inactive" if row is not None else "unknown"
        raise DomainError(
            RegistrationError.UNKNOWN_PARTICIPANT, f"{state} participant {code}", {"code": code}
        )
    return row


def _an_agency(row: Any, code: str) -> Any:
    agency = _known(row, code)
    if ParticipantKind(agency.kind) not in AGENCY_KINDS:
        raise DomainError(
            RegistrationError.NOT_AN_AGENCY,
            f"{code} is a unit ({agency.kind}); only an agency admin forwards or returns",
            {"code": code},
        )
    return agency


def _still_open(call: Any, year: int) -> Any:
    if call is None:
        raise DomainError(
            RegistrationError.CALL_NOT_OPEN,
            f"the call for proposals {year} is not open",
            {"cycle_year": year},
        )
    if call.state != "open":
        raise DomainError(
            RegistrationError.CALL_CLOSED,
            f"the call for proposals {year} is {call.state} (closed {call.closed_at.isoformat() if call.closed_at else ''})".strip(),
            {"cycle_year": year, "state": call.state},
        )
    return call


def _under(row: Any, agency_code: str) -> None:
    if row.agency_code != agency_code:
        raise DomainError(
            RegistrationError.UNIT_NOT_UNDER_AGENCY,
            f"proposal {row.id} comes from unit {row.unit_code}, which is not under agency {agency_code}",
            {"proposal_id": row.id, "unit_code": row.unit_code, "agency_code": row.agency_code},
        )


async def _participant_of(uow: UnitOfWork, code: str) -> ParticipantRow:
    return _known(await uow.session.get(ParticipantRow, code), code)  # type: ignore[no-any-return]


async def _unit(uow: UnitOfWork, code: str) -> tuple[ParticipantRow, ParticipantRow]:
    unit = await _participant_of(uow, code)
    if ParticipantKind(unit.kind) not in UNIT_KINDS:
        raise DomainError(
            RegistrationError.NOT_A_UNIT,
            f"{code} is an agency ({unit.kind}); proposals are submitted by units (upt, upp)",
            {"code": code},
        )
    assert unit.parent_code is not None
    return unit, await _participant_of(uow, unit.parent_code)


async def _agency(uow: UnitOfWork, code: str) -> ParticipantRow:
    return _an_agency(await uow.session.get(ParticipantRow, code), code)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the call


def _call_view(call: CallRow) -> CallView:
    return CallView(
        cycle_year=call.cycle_year,
        state=call.state,
        opens_at=call.opens_at,
        closes_at=call.closes_at,
        quota_per_agency=call.quota_per_agency,
    )


async def open_call(cmd: OpenCall, uow: UnitOfWork) -> CallView:
    if cmd.opens_at >= cmd.closes_at:
        raise DomainError(
            RegistrationError.INVALID_WINDOW,
            f"opens_at ({cmd.opens_at.isoformat()}) must be before closes_at ({cmd.closes_at.isoformat()})",
            {"opens_at": cmd.opens_at.isoformat(), "closes_at": cmd.closes_at.isoformat()},
        )
    call = await locked(uow, CallRow, CallRow.cycle_year == cmd.cycle_year)
    if call is None:
        call = CallRow(
            cycle_year=cmd.cycle_year,
            opens_at=cmd.opens_at,
            closes_at=cmd.closes_at,
            quota_per_agency=cmd.quota_per_agency,
        )
        uow.session.add(call)
        uow.emit(
            CallOpened(
                cycle_year=cmd.cycle_year,
                opens_at=cmd.opens_at,
                closes_at=cmd.closes_at,
                quota_per_agency=cmd.quota_per_agency,
            )
        )
    elif call.state == "cancelled" or (call.opens_at, call.closes_at, call.quota_per_agency) != (
        cmd.opens_at,
        cmd.closes_at,
        cmd.quota_per_agency,
    ):
        _reopen(call, cmd, uow)
    await uow.session.flush()
    return _call_view(call)


def _reopen(call: CallRow, cmd: OpenCall, uow: UnitOfWork) -> None:
    """``open_call`` for a call that exists, as when a year's cycle is started again: its opening
    and quota are fixed once it opened (forwards were counted against them); an open call may
    move its closing hour; a call its cancelled cycle left is opened again; a closed call stays
    closed (its summary froze the forwarded set) and is answered as it is."""
    year = cmd.cycle_year
    if cmd.quota_per_agency != call.quota_per_agency or cmd.opens_at != call.opens_at:
        raise DomainError(
            RegistrationError.INVALID_TRANSITION,
            f"the call for proposals {year} opened {call.opens_at.isoformat()} with a quota of "
            f"{call.quota_per_agency} per agency; its opening and quota cannot change",
            {"cycle_year": year, "opens_at": call.opens_at.isoformat(), "quota_per_agency": call.quota_per_agency},
        )
    if call.state == "cancelled":
        call.state, call.closed_at, call.closes_at = "open", None, cmd.closes_at
        uow.emit(CallOpened(cycle_year=year, opens_at=call.opens_at, closes_at=cmd.closes_at, quota_per_agency=call.quota_per_agency))
    elif call.state == "open":
        call.closes_at = cmd.closes_at


async def get_call(cmd: GetCall, uow: UnitOfWork) -> CallView:
    call = await uow.session.get(CallRow, cmd.cycle_year)
    if call is None:
        raise NotFound(RegistrationError.NOT_FOUND, f"no call for proposals for {cmd.cycle_year}")
    return _call_view(call)


async def _open_call(uow: UnitOfWork, year: int, lock: bool = False) -> CallRow:
    call = await (
        locked(uow, CallRow, CallRow.cycle_year == year) if lock else uow.session.get(CallRow, year)
    )
    return _still_open(call, year)  # type: ignore[no-any-return]


async def close_call(cmd: CloseCall, uow: UnitOfWork) -> CallClosedSummary:
    call = await locked(uow, CallRow, CallRow.cycle_year == cmd.cycle_year)
    if call is None:
        raise NotFound(RegistrationError.NOT_FOUND, f"no call for proposals for {cmd.cycle_year}")
    if call.summary is not None:
        return CallClosedSummary.model_validate(call.summary)
    rows = (
        (await uow.session.execute(sa.select(ProposalRow).where(ProposalRow.cycle_year == cmd.cycle_year)))
        .scalars()
        .all()
    )
    forwarded = [r for r in rows if r.status == ProposalStatus.FORWARDED]
    by_level: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for r in rows:
        if r.status != ProposalStatus.WITHDRAWN:
            by_level[domain.level_of(r.status)] = by_level.get(domain.level_of(r.status), 0) + 1
        by_status[r.status] = by_status.get(r.status, 0) + 1
    by_agency: dict[str, int] = {}
    by_group: dict[str, int] = {}
    for r in forwarded:
        by_agency[r.agency_code] = by_agency.get(r.agency_code, 0) + 1
        by_group[r.group] = by_group.get(r.group, 0) + 1
    summary = CallClosedSummary(
        cycle_year=cmd.cycle_year,
        forwarded=len(forwarded),
        forwarded_digest=digest_ids(r.id for r in forwarded),
        by_level=by_level,
        by_status=by_status,
        by_agency=dict(sorted(by_agency.items())),
        by_group=by_group,
    )
    call.state, call.closed_at, call.summary = "closed", cmd.at, summary.model_dump(mode="json")
    uow.emit(CallClosed(cycle_year=cmd.cycle_year, summary=summary))
    return summary


async def on_cycle_cancelled(evt: CycleCancelled, uow: UnitOfWork) -> None:
    """A cancelled cycle accepts no more submissions."""
    call = await locked(uow, CallRow, CallRow.cycle_year == evt.cycle_year)
    if call is not None and call.state == "open":
        call.state, call.closed_at = "cancelled", uow.now


# --------------------------------------------------------------------------- the chain


def _view(row: ProposalRow) -> ProposalView:
    return ProposalView(
        id=row.id,
        cycle_year=row.cycle_year,
        unit_code=row.unit_code,
        agency_code=row.agency_code,
        content=row.content,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        levels=domain.levels(row.status, row.was_forwarded),
        submitted_at=row.submitted_at,
        forwarded_at=row.forwarded_at,
        returned_reason=row.returned_reason,
        updated_at=row.updated_at,
    )


def _snapshot_of(row: Any, unit_name: str, agency_name: str) -> ProposalSnapshot:
    return ProposalSnapshot(
        id=row.id,
        unit_code=row.unit_code,
        unit_name=unit_name,
        agency_code=row.agency_code,
        agency_name=agency_name,
        content=row.content,
        status=row.status,
        submitted_at=row.submitted_at,
        forwarded_at=row.forwarded_at,
    )


async def _snapshot(uow: UnitOfWork, row: ProposalRow) -> ProposalSnapshot:
    unit = await uow.session.get(ParticipantRow, row.unit_code)
    agency = await uow.session.get(ParticipantRow, row.agency_code)
    return _snapshot_of(row, unit.name if unit else row.unit_code, agency.name if agency else row.agency_code)


async def _proposal(uow: UnitOfWork, year: int, proposal_id: str, lock: bool = True) -> ProposalRow:
    row = await (
        locked(uow, ProposalRow, ProposalRow.id == proposal_id)
        if lock
        else uow.session.get(ProposalRow, proposal_id)
    )
    if row is None or row.cycle_year != year:
        raise NotFound(
            RegistrationError.NOT_FOUND,
            f"no proposal {proposal_id} in cycle {year}",
            {"proposal_id": proposal_id},
        )
    return row


# Built once: building an expression costs more than running it, and this runs on every submit.
_SAME_TITLE = sa.select(PROPOSALS.c.id).where(
    PROPOSALS.c.cycle_year == sa.bindparam("y"),
    PROPOSALS.c.agency_code == sa.bindparam("a"),
    PROPOSALS.c.title_key == sa.bindparam("k"),
    PROPOSALS.c.status != ProposalStatus.WITHDRAWN.value,
    PROPOSALS.c.id != sa.bindparam("own"),
)


async def _check_title(uow: UnitOfWork, year: int, agency: str, key: str, own_id: str | None) -> None:
    clash = (await uow.session.execute(_SAME_TITLE, {"y": year, "a": agency, "k": key, "own": own_id or ""})).first()
    if clash:
        raise DomainError(
            RegistrationError.DUPLICATE_TITLE,
            f"agency {agency} already has proposal {clash[0]} with the same title this cycle",
            {"proposal_id": clash[0]},
        )


async def submit_proposal(cmd: SubmitProposal, uow: UnitOfWork) -> ProposalView:
    unit, agency = await _unit(uow, cmd.unit_code)
    call = await _open_call(uow, cmd.cycle_year, lock=cmd.proposal_id is None)
    key = title_key(cmd.content.title)
    content = cmd.content.model_dump(mode="json")
    if cmd.proposal_id:
        row = await _proposal(uow, cmd.cycle_year, cmd.proposal_id)
        if row.unit_code != unit.code:
            raise DomainError(
                RegistrationError.NOT_FOUND,
                f"proposal {row.id} is not {unit.code}'s",
                {"proposal_id": row.id},
            )
        domain.check_transition("resubmit", row.status, row.id)
        await _check_title(uow, cmd.cycle_year, agency.code, key, row.id)
        row.content, row.title_key, row.group = content, key, cmd.content.group.value
        row.status, row.submitted_at, row.updated_at, row.returned_reason = (
            ProposalStatus.SUBMITTED.value,
            uow.now,
            uow.now,
            None,
        )
    else:
        await _check_title(uow, cmd.cycle_year, agency.code, key, None)
        seq = call.next_seq
        call.next_seq += 1
        row = ProposalRow(
            id=f"P{cmd.cycle_year}-{seq:05d}",
            cycle_year=cmd.cycle_year,
            unit_code=unit.code,
            agency_code=agency.code,
            title_key=key,
            group=cmd.content.group.value,
            content=content,
            status=ProposalStatus.SUBMITTED.value,
            submitted_at=uow.now,
            updated_at=uow.now,
        )
        uow.session.add(row)
    await uow.session.flush()
    uow.emit(ProposalSubmitted(cycle_year=cmd.cycle_year, proposal=await _snapshot(uow, row)))
    return _view(row)


async def _forwarded_ids(uow: UnitOfWork, year: int, agency: str) -> list[str]:
    rows = await uow.session.execute(
        sa.select(ProposalRow.id).where(
            ProposalRow.cycle_year == year,
            ProposalRow.agency_code == agency,
            ProposalRow.status == ProposalStatus.FORWARDED.value,
        )
    )
    return sorted(r[0] for r in rows)


async def _admin_of(uow: UnitOfWork, cmd: ForwardProposal | ReturnProposal) -> ProposalRow:
    await _agency(uow, cmd.agency_code)
    row = await _proposal(uow, cmd.cycle_year, cmd.proposal_id)
    _under(row, cmd.agency_code)
    return row


async def forward_proposals(cmds: list[ForwardProposal], uow: UnitOfWork) -> list[ProposalView | DomainError]:
    """Forward a batch (group commit): read every row the batch needs in a few set queries, decide
    each command in arrival order against the state the earlier ones left, write the changes in a
    few statements. The agencies' quota rows are locked (PostgreSQL ``FOR UPDATE``, in key order;
    SQLite's write transaction) from the read to the commit, so the quota holds exactly across
    replicas."""
    s = uow.session
    years = sorted({c.cycle_year for c in cmds})
    calls = {r.cycle_year: r for r in await s.execute(sa.select(CALLS).where(CALLS.c.cycle_year.in_(years)))}
    proposals = {
        r.id: _Mutable(r._mapping)
        for r in await s.execute(store.proposals_for_update(uow, sorted({c.proposal_id for c in cmds})))
    }
    codes = {c.agency_code for c in cmds} | {p.unit_code for p in proposals.values()}
    people = {
        r.code: r
        for r in await s.execute(sa.select(PARTICIPANTS).where(PARTICIPANTS.c.code.in_(sorted(codes))))
    }
    quotas = await store.lock_quotas(
        uow,
        sorted(
            {(c.cycle_year, c.agency_code) for c in cmds if c.cycle_year in calls and c.agency_code in people}
        ),
    )
    results: list[ProposalView | DomainError] = []
    forwarded_now: dict[tuple[int, str], list[str]] = {}
    already: dict[tuple[int, str], list[str]] = {}  # forwarded before this batch, read on a refusal
    for cmd in cmds:
        try:
            call = _still_open(calls.get(cmd.cycle_year), cmd.cycle_year)
            _an_agency(people.get(cmd.agency_code), cmd.agency_code)
            row = proposals.get(cmd.proposal_id)
            if row is None or row.cycle_year != cmd.cycle_year:
                raise NotFound(
                    RegistrationError.NOT_FOUND,
                    f"no proposal {cmd.proposal_id} in cycle {cmd.cycle_year}",
                    {"proposal_id": cmd.proposal_id},
                )
            _under(row, cmd.agency_code)
            domain.check_transition("forward", row.status, row.id)
            key = (cmd.cycle_year, cmd.agency_code)
            if quotas[key] >= call.quota_per_agency:
                if key not in already:
                    already[key] = await _forwarded_ids(uow, *key)
                domain.check_quota(
                    quotas[key],
                    call.quota_per_agency,
                    cmd.agency_code,
                    sorted(set(already[key]) | set(forwarded_now.get(key, []))),
                )
        except DomainError as exc:
            results.append(exc)
            continue
        quotas[key] += 1
        forwarded_now.setdefault(key, []).append(row.id)
        row.update(
            status=ProposalStatus.FORWARDED.value,
            forwarded_at=uow.now,
            updated_at=uow.now,
            was_forwarded=True,
        )
        unit, agency = people.get(row.unit_code), people[row.agency_code]
        if isinstance(row.content, dict):  # validated once, shared by the event and the reply
            row.content = ProposalContent.model_validate(row.content)
        snapshot = _snapshot_of(row, unit.name if unit else row.unit_code, agency.name)
        uow.emit(
            ProposalForwarded(
                cycle_year=cmd.cycle_year,
                proposal=snapshot,
                quota_used=quotas[key],
                quota_per_agency=call.quota_per_agency,
            )
        )
        results.append(_view(row))  # type: ignore[arg-type]
    changed = [row for row in proposals.values() if row.dirty]
    if changed:
        await s.execute(
            sa.update(PROPOSALS).where(PROPOSALS.c.id == sa.bindparam("pid")),
            [
                {
                    "pid": r.id,
                    "status": r.status,
                    "forwarded_at": r.forwarded_at,
                    "updated_at": r.updated_at,
                    "was_forwarded": True,
                }
                for r in changed
            ],
        )
    await store.save_quotas(uow, {k: quotas[k] for k in forwarded_now})
    return results


class _Mutable:
    """A row read with Core, changed in memory before the batch writes it back."""

    def __init__(self, mapping: Any) -> None:
        self.__dict__.update(mapping)
        self.dirty = False

    def update(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.dirty = True


async def return_proposal(cmd: ReturnProposal, uow: UnitOfWork) -> ProposalView:
    await _open_call(uow, cmd.cycle_year)
    row = await _admin_of(uow, cmd)
    domain.check_transition("return", row.status, row.id)
    row.status, row.returned_reason, row.updated_at = ProposalStatus.RETURNED.value, cmd.reason, uow.now
    await uow.session.flush()
    uow.emit(
        ProposalReturned(cycle_year=cmd.cycle_year, proposal=await _snapshot(uow, row), reason=cmd.reason)
    )
    return _view(row)


async def withdraw_proposal(cmd: WithdrawProposal, uow: UnitOfWork) -> ProposalView:
    await _unit(uow, cmd.unit_code)
    await _open_call(uow, cmd.cycle_year)
    row = await _proposal(uow, cmd.cycle_year, cmd.proposal_id)
    if row.unit_code != cmd.unit_code:
        raise DomainError(
            RegistrationError.NOT_FOUND,
            f"proposal {row.id} is not {cmd.unit_code}'s",
            {"proposal_id": row.id},
        )
    domain.check_transition("withdraw", row.status, row.id)
    if row.status == ProposalStatus.FORWARDED:
        key = (cmd.cycle_year, row.agency_code)
        used = await store.lock_quotas(uow, [key])
        await store.save_quotas(uow, {key: used[key] - 1})
    row.status, row.updated_at = ProposalStatus.WITHDRAWN.value, uow.now
    await uow.session.flush()
    uow.emit(
        ProposalWithdrawn(cycle_year=cmd.cycle_year, proposal=await _snapshot(uow, row), reason=cmd.reason)
    )
    return _view(row)


async def get_proposal(cmd: GetProposal, uow: UnitOfWork) -> ProposalView:
    row = await uow.session.get(ProposalRow, cmd.proposal_id)
    if row is None:
        raise NotFound(
            RegistrationError.NOT_FOUND, f"no proposal {cmd.proposal_id}", {"proposal_id": cmd.proposal_id}
        )
    return _view(row)


async def list_proposals(cmd: ListProposals, uow: UnitOfWork) -> ProposalPage:
    where = [ProposalRow.cycle_year == cmd.cycle_year]
    if cmd.agency_code:
        where.append(ProposalRow.agency_code == cmd.agency_code)
    if cmd.unit_code:
        where.append(ProposalRow.unit_code == cmd.unit_code)
    if cmd.status:
        where.append(ProposalRow.status == cmd.status.value)
    if cmd.group:
        where.append(ProposalRow.group == cmd.group.value)
    total = (
        await uow.session.execute(sa.select(sa.func.count()).select_from(ProposalRow).where(*where))
    ).scalar_one()
    rows = (
        await uow.session.execute(
            sa.select(ProposalRow).where(*where).order_by(ProposalRow.id).offset(cmd.offset).limit(cmd.limit)
        )
    ).scalars()
    return ProposalPage(items=[_view(r) for r in rows], total=total, offset=cmd.offset)

