"""Registration's handlers over fake, in-memory repositories: what a handler loads, which aggregate
it asks, what it saves and emits — no database, no NATS (tests/registration/test_service.py is the
proof against the real ones)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest

from contracts.base import Competition, ParticipantKind, ProposalStatus
from contracts.cycle import CycleCancelled
from contracts.registration import (
    CallClosed,
    CallOpened,
    CloseCall,
    ForwardProposal,
    ImportParticipants,
    ListProposals,
    OpenCall,
    ProposalForwarded,
    ProposalSubmitted,
    ProposalWithdrawn,
    RegistrationError,
    ReturnProposal,
    SubmitProposal,
    WithdrawProposal,
)
from services.common.errors import DomainError
from services.registration import handlers as h
from services.registration.domain import AgencyQuota, Call, Filed, Party, Proposal
from tests.registration.test_domain import content

YEAR = 2031
NOW = dt.datetime(2031, 3, 10, 3, 0, tzinfo=dt.UTC)
KOVABLIK = Competition.KOVABLIK


class FakeParticipants:
    def __init__(self) -> None:
        self.rows: dict[str, Party] = {}

    async def get(self, code: str) -> Party | None:
        return copy.copy(self.rows.get(code))

    async def many(self, codes: Iterable[str]) -> dict[str, Party]:
        return {c: copy.copy(self.rows[c]) for c in codes if c in self.rows}

    async def names(self, *codes: str) -> dict[str, str]:
        return {c: self.rows[c].name for c in codes if c in self.rows}

    async def children_of(self, parents: list[str]) -> list[tuple[str, str, str]]:
        return [(p.code, p.parent_code, p.kind.value) for p in self.rows.values() if p.parent_code in parents]

    async def add(self, parties: list[Party]) -> None:
        self.rows.update({p.code: copy.copy(p) for p in parties})

    save = add

    async def count(self) -> int:
        return len(self.rows)


class FakeCalls:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, Competition], Call] = {}
        self.locked: list[int] = []
        self.shared: list[int] = []  # held from closing while a step changes the forwarded set

    async def get(self, year: int, lock: bool = False, track: Competition = Competition.KOVABLIK, shared: bool = False) -> Call | None:
        if lock:
            self.locked.append(year)
        if shared:
            self.shared.append(year)
        return copy.deepcopy(self.rows.get((year, track)))

    async def many(self, keys: Iterable[tuple[int, Competition]]) -> dict[tuple[int, Competition], Call]:
        keys = list(keys)
        self.shared.extend(y for y, _ in keys)
        return {k: copy.deepcopy(self.rows[k]) for k in keys if k in self.rows}

    async def add(self, call: Call) -> None:
        assert call.key not in self.rows
        self.rows[call.key] = copy.deepcopy(call)

    async def save(self, call: Call) -> None:
        assert call.key in self.rows
        self.rows[call.key] = copy.deepcopy(call)


class FakeProposals:
    def __init__(self) -> None:
        self.rows: dict[str, Proposal] = {}
        self.batch_writes = 0

    async def get(self, proposal_id: str, lock: bool = False) -> Proposal | None:
        return copy.deepcopy(self.rows.get(proposal_id))

    async def many_locked(self, ids: Iterable[str]) -> dict[str, Proposal]:
        return {i: copy.deepcopy(self.rows[i]) for i in ids if i in self.rows}

    async def title_holder(self, year: int, agency: str, key: str, own: str | None, track: Competition = Competition.KOVABLIK) -> str | None:
        return next(
            (p.id for p in self.rows.values() if (p.cycle_year, p.track, p.agency_code, p.title_key) == (year, track, agency, key)
             and p.status != ProposalStatus.WITHDRAWN and p.id != own),
            None,
        )

    async def filed(self, year: int, track: Competition = Competition.KOVABLIK) -> list[Filed]:
        return [Filed(p.id, p.status, p.agency_code, p.group) for p in self.rows.values() if (p.cycle_year, p.track) == (year, track)]

    async def forwarded_ids(self, year: int, track: Competition, agency: str) -> list[str]:
        return sorted(p.id for p in self.rows.values() if (p.cycle_year, p.track, p.agency_code, p.status) == (year, track, agency, "forwarded"))

    async def add(self, p: Proposal) -> None:
        assert p.id not in self.rows
        self.rows[p.id] = copy.deepcopy(p)

    async def save(self, p: Proposal, content: bool = False) -> None:
        self.rows[p.id] = copy.deepcopy(p)

    async def save_forwarded(self, changed: list[Proposal]) -> None:
        self.batch_writes += 1
        for p in changed:
            self.rows[p.id] = copy.deepcopy(p)

    async def page(self, year: int, filters: dict[str, Any], offset: int, limit: int) -> tuple[list[Proposal], int]:
        hits = [p for p in sorted(self.rows.values(), key=lambda p: p.id)
                if p.cycle_year == year and all(getattr(p, k) == v for k, v in filters.items() if v)]
        return hits[offset : offset + limit], len(hits)


class FakeQuotas:
    def __init__(self) -> None:
        self.used: dict[tuple[int, Competition, str], int] = {}

    async def lock(self, keys: Iterable[tuple[int, Competition, str]]) -> dict[tuple[int, Competition, str], AgencyQuota]:
        return {k: AgencyQuota(k[0], k[2], self.used.setdefault(k, 0), track=k[1]) for k in sorted(set(keys))}

    async def save(self, quotas: Iterable[AgencyQuota]) -> None:
        for q in quotas:
            self.used[q.key] = q.used


class FakeUnit:
    def __init__(self) -> None:
        self.now = NOW
        self.events: list[Any] = []
        self.participants = FakeParticipants()
        self.calls = FakeCalls()
        self.proposals = FakeProposals()
        self.quotas = FakeQuotas()

    def emit(self, *events: Any) -> None:
        self.events.extend(events)


PEOPLE = [
    {"code": "KAB", "name": "Kabupaten Malang", "kind": "kabupaten"},
    {"code": "OPD", "name": "Dinas Kesehatan", "kind": "opd"},
    {"code": "U1", "name": "Puskesmas 1", "kind": "upp", "parent_code": "KAB"},
    {"code": "U2", "name": "Puskesmas 2", "kind": "upp", "parent_code": "KAB"},
]


@pytest.fixture
async def uow() -> FakeUnit:
    u = FakeUnit()
    summary = await h.import_participants(ImportParticipants(request_id="i", participants=PEOPLE), u)  # type: ignore[arg-type]
    assert (summary.created, summary.updated, summary.total) == (4, 0, 4)
    opened = await h.open_call(
        OpenCall(request_id="o", cycle_year=YEAR, opens_at=NOW - dt.timedelta(days=9), closes_at=NOW + dt.timedelta(days=50), quota_per_agency=1),
        u,  # type: ignore[arg-type]
    )
    assert opened.state == "open" and [type(e) for e in u.events] == [CallOpened]
    u.events.clear()
    return u


async def submit(uow: FakeUnit, unit: str, title: str, pid: str | None = None) -> Any:
    cmd = SubmitProposal(request_id=f"s-{title}", cycle_year=YEAR, unit_code=unit, proposal_id=pid, content=content(title))
    return await h.submit_proposal(cmd, uow)  # type: ignore[arg-type]


def forward(pid: str, agency: str = "KAB") -> ForwardProposal:
    return ForwardProposal(request_id=f"f-{pid}-{agency}", cycle_year=YEAR, agency_code=agency, proposal_id=pid)


async def test_submit_numbers_the_proposal_saves_the_call_and_emits_one_event(uow):
    view = await submit(uow, "U1", "Antrian")
    assert view.id == f"P{YEAR}-00001" and view.levels["agency"] == "pending_review"
    assert uow.calls.rows[(YEAR, KOVABLIK)].next_seq == 2 and uow.proposals.rows[view.id].status is ProposalStatus.SUBMITTED
    [event] = uow.events
    assert isinstance(event, ProposalSubmitted) and (event.proposal.unit_name, event.proposal.agency_name) == ("Puskesmas 1", "Kabupaten Malang")
    with pytest.raises(DomainError) as err:
        await submit(uow, "U2", "antrian")  # the same title key at the same agency
    assert err.value.code == RegistrationError.DUPLICATE_TITLE and uow.calls.rows[(YEAR, KOVABLIK)].next_seq == 2


async def test_a_batch_of_forwards_keeps_the_quota_and_writes_once(uow):
    a, b = await submit(uow, "U1", "Satu"), await submit(uow, "U2", "Dua")
    uow.events.clear()
    results = await h.forward_proposals([forward(a.id), forward(b.id), forward("P9"), forward(a.id, "U1")], uow)  # type: ignore[arg-type]
    assert results[0].status == "forwarded"
    assert [r.code for r in results[1:]] == [RegistrationError.QUOTA_EXCEEDED, RegistrationError.NOT_FOUND, RegistrationError.NOT_AN_AGENCY]
    assert results[1].details["forwarded"] == [a.id]
    [event] = uow.events
    assert isinstance(event, ProposalForwarded) and (event.quota_used, event.quota_per_agency) == (1, 1)
    assert uow.quotas.used[(YEAR, KOVABLIK, "KAB")] == 1 and uow.proposals.batch_writes == 1
    assert uow.proposals.rows[a.id].status is ProposalStatus.FORWARDED and uow.proposals.rows[b.id].status is ProposalStatus.SUBMITTED


async def test_withdrawing_a_forwarded_proposal_frees_its_slot(uow):
    a = await submit(uow, "U1", "Satu")
    await h.forward_proposals([forward(a.id)], uow)  # type: ignore[arg-type]
    # A forward holds the call from closing until it commits, so close_call's summary counts it.
    assert uow.calls.shared == [YEAR]
    with pytest.raises(DomainError) as err:
        await h.withdraw_proposal(WithdrawProposal(request_id="w0", cycle_year=YEAR, unit_code="U2", proposal_id=a.id), uow)  # type: ignore[arg-type]
    assert err.value.code == RegistrationError.NOT_FOUND and uow.quotas.used[(YEAR, KOVABLIK, "KAB")] == 1
    view = await h.withdraw_proposal(WithdrawProposal(request_id="w", cycle_year=YEAR, unit_code="U1", proposal_id=a.id, reason="nanti"), uow)  # type: ignore[arg-type]
    assert view.status == "withdrawn" and view.levels["secretariat"] == "withdrawn" and uow.calls.shared == [YEAR] * 3
    assert uow.quotas.used[(YEAR, KOVABLIK, "KAB")] == 0 and isinstance(uow.events[-1], ProposalWithdrawn)


async def test_return_and_resubmit_go_through_the_chain(uow):
    a = await submit(uow, "U1", "Satu")
    with pytest.raises(DomainError) as err:
        await h.return_proposal(ReturnProposal(request_id="r0", cycle_year=YEAR, agency_code="OPD", proposal_id=a.id, reason="salah alamat"), uow)  # type: ignore[arg-type]
    assert err.value.code == RegistrationError.UNIT_NOT_UNDER_AGENCY
    back = await h.return_proposal(ReturnProposal(request_id="r", cycle_year=YEAR, agency_code="KAB", proposal_id=a.id, reason="Lengkapi"), uow)  # type: ignore[arg-type]
    assert back.status == "returned" and back.returned_reason == "Lengkapi"
    again = await submit(uow, "U1", "Satu Lagi", a.id)
    assert again.id == a.id and again.status == "submitted" and uow.proposals.rows[a.id].content.title == "Satu Lagi"
    page = await h.list_proposals(ListProposals(cycle_year=YEAR, status="submitted"), uow)  # type: ignore[arg-type]
    assert [p.id for p in page.items] == [a.id] and page.total == 1


async def test_closing_freezes_the_summary_and_a_cancelled_cycle_refuses_submissions(uow):
    a = await submit(uow, "U1", "Satu")
    await h.forward_proposals([forward(a.id)], uow)  # type: ignore[arg-type]
    await h.on_cycle_cancelled(CycleCancelled(event_id="cancel-2031", occurred_at=NOW, cycle_year=YEAR, phase="call_open"), uow)  # type: ignore[arg-type]
    with pytest.raises(DomainError) as err:
        await submit(uow, "U2", "Dua")
    assert err.value.code == RegistrationError.CALL_CLOSED
    summary = await h.close_call(CloseCall(request_id="c", cycle_year=YEAR, at=NOW), uow)  # type: ignore[arg-type]
    assert summary.forwarded == 1 and isinstance(uow.events[-1], CallClosed)
    assert await h.close_call(CloseCall(request_id="c2", cycle_year=YEAR, at=NOW), uow) == summary  # type: ignore[arg-type]
    assert sum(isinstance(e, CallClosed) for e in uow.events) == 1


async def test_an_import_that_would_orphan_units_changes_nothing(uow):
    demote = [{"code": "KAB", "name": "Kabupaten Malang", "kind": "upp", "parent_code": "OPD"}]
    with pytest.raises(DomainError) as err:
        await h.import_participants(ImportParticipants(request_id="d", participants=demote), uow)  # type: ignore[arg-type]
    assert err.value.code == RegistrationError.INVALID_PARTICIPANT
    assert uow.participants.rows["KAB"].kind is ParticipantKind.KABUPATEN


async def test_a_groups_risalah_goes_to_kbks_call_and_a_cancelled_cycle_closes_both_calls(uow):
    from contracts.registration import SubmitRisalah

    await h.import_participants(ImportParticipants(request_id="g", participants=[{"code": "G1", "name": "KBK Sigap", "kind": "kbk", "parent_code": "U1"}]), uow)  # type: ignore[arg-type]
    body = {"request_id": "r", "cycle_year": YEAR, "group_code": "G1", "content": content("Risalah").model_dump(mode="json")}
    with pytest.raises(DomainError) as err:
        await h.submit_risalah(SubmitRisalah.model_validate(body), uow)  # type: ignore[arg-type]
    assert err.value.code == RegistrationError.CALL_NOT_OPEN  # KOVABLIK's open call is not KBK's
    await h.open_call(OpenCall(request_id="k", cycle_year=YEAR, track="kbk", opens_at=NOW, closes_at=NOW + dt.timedelta(days=5)), uow)  # type: ignore[arg-type]
    view = await h.submit_risalah(SubmitRisalah.model_validate(body), uow)  # type: ignore[arg-type]
    assert (view.id, view.track, view.group_code, view.unit_code, view.agency_code) == (f"K{YEAR}-00001", Competition.KBK, "G1", "U1", "KAB")
    assert uow.events[-1].proposal.group_name == "KBK Sigap"
    with pytest.raises(DomainError) as err:
        await h.submit_risalah(SubmitRisalah.model_validate({**body, "group_code": "U1"}), uow)  # type: ignore[arg-type]
    assert err.value.code == RegistrationError.NOT_A_GROUP
    await h.on_cycle_cancelled(CycleCancelled(event_id="cancel", occurred_at=NOW, cycle_year=YEAR, phase="call_open"), uow)  # type: ignore[arg-type]
    assert {k: c.state.value for k, c in uow.calls.rows.items()} == {(YEAR, KOVABLIK): "cancelled", (YEAR, Competition.KBK): "cancelled"}
