"""Registration's aggregates without any I/O: the call, the chain, the quota and the participants'
tree — every refusal code the service declares is raised here by the domain."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.base import Competition, ParticipantKind, ProposalStatus, digest_ids
from contracts.registration import (
    CallClosed,
    CallOpened,
    Participant,
    ProposalContent,
    ProposalForwarded,
    ProposalReturned,
    ProposalSubmitted,
    ProposalWithdrawn,
    RegistrationError,
)
from services.common.errors import DomainError
from services.registration import domain
from services.registration.domain import AgencyQuota, Call, CallState, Filed, Forwarding, Party, Proposal

YEAR = 2031
T0 = dt.datetime(2031, 3, 1, 1, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2031, 4, 30, 5, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2031, 3, 10, 3, 0, tzinfo=dt.UTC)

AGENCY = Party("KAB-MALANG", "Kabupaten Malang", ParticipantKind.KABUPATEN)
OTHER_AGENCY = Party("OPD-DINKES", "Dinas Kesehatan", ParticipantKind.OPD)
UNIT = Party("KAB-MALANG-U01", "Puskesmas 1", ParticipantKind.UPP, "KAB-MALANG")
UNIT2 = Party("KAB-MALANG-U02", "Puskesmas 2", ParticipantKind.UPP, "KAB-MALANG")
NAMES = {p.code: p.name for p in (AGENCY, OTHER_AGENCY, UNIT, UNIT2)}


def content(title: str = "Antrian Online") -> ProposalContent:
    return ProposalContent.model_validate(
        {
            "title": title,
            "group": "umum",
            "category": "kesehatan",
            "summary": "Ringkasan.",
            "problem": "Antrian panjang.",
            "solution": "Antrian daring.",
            "impact": "Waktu tunggu turun.",
            "started_on": "2029-01-15",
            "contact": {"name": "Admin", "email": "admin@malangkab.go.id"},
        }
    )


def open_call(quota: int = 2) -> Call:
    call, events = Call.open(None, YEAR, T0, T1, quota)
    assert [type(e) for e in events] == [CallOpened]
    return call


def submitted(call: Call, unit: Party = UNIT, title: str = "Antrian Online") -> Proposal:
    proposal, event = Proposal.submit(call, unit, AGENCY, content(title), title.lower(), None, NOW)
    assert isinstance(event, ProposalSubmitted) and event.proposal.unit_name == unit.name
    return proposal


def refused(code: str, fn, *args, **kwargs) -> DomainError:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code, err.value
    return err.value


# --------------------------------------------------------------------------- the call


def test_a_call_opens_numbers_its_proposals_and_closes_once_with_its_summary():
    call = open_call()
    assert call.state is CallState.OPEN and call.take_number() == f"P{YEAR}-00001" and call.next_seq == 2
    filed = [
        Filed("P1", ProposalStatus.FORWARDED, "KAB-MALANG", "umum"),
        Filed("P2", ProposalStatus.SUBMITTED, "KAB-MALANG", "umum"),
        Filed("P3", ProposalStatus.WITHDRAWN, "OPD-DINKES", "khusus"),
        Filed("P4", ProposalStatus.RETURNED, "OPD-DINKES", "khusus"),
    ]
    summary, events = call.close(T1, filed)
    assert call.state is CallState.CLOSED and call.closed_at == T1
    assert [type(e) for e in events] == [CallClosed] and events[0].summary == summary
    assert summary.forwarded == 1 and summary.forwarded_digest == digest_ids(["P1"])
    assert summary.by_level == {"secretariat": 1, "agency": 1, "unit": 1}
    assert summary.by_status == {"forwarded": 1, "submitted": 1, "withdrawn": 1, "returned": 1}
    assert summary.by_agency == {"KAB-MALANG": 1} and summary.by_group == {"umum": 1}
    again, more = call.close(T1 + dt.timedelta(days=1), [])
    assert again == summary and more == [] and call.closed_at == T1


def test_a_window_that_ends_before_it_starts_is_refused():
    refused(RegistrationError.INVALID_WINDOW, Call.open, None, YEAR, T1, T0, 3)


def test_opening_again_may_move_the_closing_hour_but_not_the_opening_or_quota():
    call = open_call(quota=3)
    later = T1 + dt.timedelta(days=2)
    same, events = Call.open(call, YEAR, T0, later, 3)
    assert same is call and events == [] and call.closes_at == later
    err = refused(RegistrationError.INVALID_TRANSITION, call.reopen, T0, T1, 2)
    assert err.details["quota_per_agency"] == 3
    refused(RegistrationError.INVALID_TRANSITION, call.reopen, T0 + dt.timedelta(hours=1), T1, 3)


def test_a_cancelled_call_refuses_submissions_until_its_year_starts_again():
    call = open_call()
    assert call.cancel(NOW) == [] and call.state is CallState.CANCELLED
    err = refused(RegistrationError.CALL_CLOSED, domain.accepting, call, YEAR)
    assert err.details == {"cycle_year": YEAR, "state": "cancelled"}
    events = call.reopen(T0, T1, 2)
    assert [type(e) for e in events] == [CallOpened] and call.state is CallState.OPEN and call.closed_at is None
    assert domain.accepting(call, YEAR) is call


def test_a_closed_call_stays_closed_when_opened_again_or_cancelled():
    call = open_call()
    call.close(T1, [])
    assert call.reopen(T0, T1 + dt.timedelta(days=1), 2) == [] and call.closes_at == T1
    call.cancel(NOW)
    assert call.state is CallState.CLOSED
    refused(RegistrationError.CALL_CLOSED, domain.accepting, call, YEAR)


def test_no_call_is_not_open_and_is_not_found():
    refused(RegistrationError.CALL_NOT_OPEN, domain.accepting, None, YEAR)
    refused(RegistrationError.NOT_FOUND, domain.existing_call, None, YEAR)


# --------------------------------------------------------------------------- participants


def test_only_known_active_participants_act_and_each_in_its_role():
    refused(RegistrationError.UNKNOWN_PARTICIPANT, domain.known, None, "NOPE")
    inactive = Party("X", "X", ParticipantKind.UPT, "KAB-MALANG", active=False)
    assert "inactive" in refused(RegistrationError.UNKNOWN_PARTICIPANT, domain.a_unit, inactive, "X").message
    refused(RegistrationError.NOT_A_UNIT, domain.a_unit, AGENCY, AGENCY.code)
    refused(RegistrationError.NOT_AN_AGENCY, domain.an_agency, UNIT, UNIT.code)
    assert domain.a_unit(UNIT, UNIT.code) is UNIT and domain.an_agency(AGENCY, AGENCY.code) is AGENCY
    refused(RegistrationError.UNKNOWN_PARTICIPANT, domain.existing_participant, None, "NOPE")
    assert domain.existing_participant(inactive, "X") is inactive


def _p(code: str, kind: str, parent: str | None = None) -> Participant:
    return Participant(code=code, name=code, kind=ParticipantKind(kind), parent_code=parent)


def test_an_import_with_an_unknown_parent_or_a_misplaced_participant_is_refused_whole():
    err = refused(RegistrationError.UNKNOWN_PARTICIPANT, domain.check_import, [_p("U", "upt", "GHOST")], {}, [])
    assert err.details["problems"] == ["U: parent GHOST is not a known participant"]
    refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("U2", "upt", "U1")], {"U1": ParticipantKind.UPT}, [])
    refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("A", "opd", "B")], {"B": ParticipantKind.OPD}, [])
    refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("U", "upp")], {}, [])
    domain.check_import([_p("A", "opd"), _p("U", "upt", "A")], {}, [])


def test_an_agency_with_units_cannot_become_a_unit_unless_its_units_move_with_the_import():
    demoted = [_p("KAB", "upp", "OPD")]
    assert domain.would_be_units(demoted) == ["KAB"]
    kids = [("KAB-U1", "KAB"), ("KAB-U2", "KAB")]
    err = refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, demoted, {"OPD": ParticipantKind.OPD}, kids)
    assert "has 2 unit(s) (KAB-U1, KAB-U2)" in err.details["problems"][0]
    moved = [*demoted, _p("KAB-U1", "upt", "OPD"), _p("KAB-U2", "upt", "OPD")]
    domain.check_import(moved, {"OPD": ParticipantKind.OPD}, kids)


def test_an_import_creates_the_new_and_changes_only_what_differs():
    filed = {"A": Party("A", "A", ParticipantKind.OPD), "B": Party("B", "B", ParticipantKind.OPD)}
    created, updated = domain.merge_import([_p("A", "opd"), _p("B", "kota"), _p("C", "opd")], filed)
    assert [p.code for p in created] == ["C"] and [p.code for p in updated] == ["B"]
    assert filed["B"].kind is ParticipantKind.KOTA


# --------------------------------------------------------------------------- the chain


def test_the_chain_submit_return_resubmit_forward_withdraw_with_its_events_and_levels():
    call = open_call()
    p = submitted(call)
    assert p.id == f"P{YEAR}-00001" and p.levels["agency"] == "pending_review"
    returned = p.return_to_unit(AGENCY, "Lengkapi data", NOW, NAMES)
    assert isinstance(returned, ProposalReturned) and p.status is ProposalStatus.RETURNED and p.returned_reason == "Lengkapi data"
    again = p.resubmit(UNIT, AGENCY, content("Antrian Online 2"), "antrian online 2", None, NOW, NAMES)
    assert isinstance(again, ProposalSubmitted) and p.returned_reason is None and p.content.title == "Antrian Online 2"
    quota = AgencyQuota(YEAR, AGENCY.code)
    fwd = p.forward(call, AGENCY, quota, NOW, NAMES)
    assert isinstance(fwd, ProposalForwarded) and (fwd.quota_used, fwd.quota_per_agency) == (1, 2)
    assert fwd.proposal.agency_name == "Kabupaten Malang" and p.was_forwarded and p.levels["secretariat"] == "received"
    gone = p.withdraw(UNIT, quota, "tahun depan", NOW, NAMES)
    assert isinstance(gone, ProposalWithdrawn) and quota.used == 0 and p.levels["secretariat"] == "withdrawn"


def test_a_step_the_status_does_not_allow_is_an_invalid_transition():
    call = open_call()
    p = submitted(call)
    err = refused(RegistrationError.INVALID_TRANSITION, p.resubmit, UNIT, AGENCY, content(), "k", None, NOW, NAMES)
    assert err.details == {"proposal_id": p.id, "status": "submitted", "action": "resubmit"}
    p.forward(call, AGENCY, AgencyQuota(YEAR, AGENCY.code), NOW, NAMES)
    refused(RegistrationError.INVALID_TRANSITION, p.forward, call, AGENCY, AgencyQuota(YEAR, AGENCY.code), NOW, NAMES)
    refused(RegistrationError.INVALID_TRANSITION, p.return_to_unit, AGENCY, "r", NOW, NAMES)


def test_a_proposal_is_its_units_and_its_agencys_only():
    call = open_call()
    p = submitted(call)
    err = refused(RegistrationError.NOT_FOUND, p.withdraw, UNIT2, None, None, NOW, NAMES)
    assert err.message == f"proposal {p.id} is not {UNIT2.code}'s"
    refused(RegistrationError.NOT_FOUND, p.resubmit, UNIT2, AGENCY, content(), "k", None, NOW, NAMES)
    err = refused(RegistrationError.UNIT_NOT_UNDER_AGENCY, p.forward, call, OTHER_AGENCY, AgencyQuota(YEAR, "OPD-DINKES"), NOW, NAMES)
    assert err.details == {"proposal_id": p.id, "unit_code": UNIT.code, "agency_code": AGENCY.code}
    refused(RegistrationError.UNIT_NOT_UNDER_AGENCY, p.return_to_unit, OTHER_AGENCY, "r", NOW, NAMES)
    assert p.status is ProposalStatus.SUBMITTED


def test_a_missing_proposal_or_one_of_another_year_is_not_found():
    p = submitted(open_call())
    refused(RegistrationError.NOT_FOUND, domain.found, None, YEAR, "P1")
    refused(RegistrationError.NOT_FOUND, domain.found, p, YEAR + 1, p.id)
    refused(RegistrationError.NOT_FOUND, domain.any_proposal, None, "P1")
    assert domain.found(p, YEAR, p.id) is p


def test_a_title_the_agency_already_has_this_cycle_is_refused():
    call = open_call()
    err = refused(RegistrationError.DUPLICATE_TITLE, Proposal.submit, call, UNIT, AGENCY, content(), "antrian online", "P2031-00007", NOW)
    assert err.details == {"proposal_id": "P2031-00007"} and call.next_seq == 1  # no number taken by a refusal


def test_the_quota_refuses_the_forward_past_it_naming_what_was_forwarded():
    call = open_call(quota=1)
    first, second = submitted(call), submitted(call, UNIT2, "Lain")
    quota = AgencyQuota(YEAR, AGENCY.code, used=0, forwarded_before=["P2031-00000"])
    first.forward(call, AGENCY, quota, NOW, NAMES)
    err = refused(RegistrationError.QUOTA_EXCEEDED, second.forward, call, AGENCY, quota, NOW, NAMES)
    assert err.details == {"agency_code": AGENCY.code, "quota_per_agency": 1, "forwarded": ["P2031-00000", first.id]}
    assert second.status is ProposalStatus.SUBMITTED and quota.used == 1


def test_a_batch_of_forwards_is_decided_in_arrival_order_against_the_state_the_earlier_left():
    call = open_call(quota=1)
    a, b = submitted(call), submitted(call, UNIT2, "Lain")
    batch = Forwarding(
        calls={call.key: call},
        people={p.code: p for p in (AGENCY, UNIT, UNIT2)},
        proposals={a.id: a, b.id: b},
        quotas={(YEAR, Competition.KOVABLIK, AGENCY.code): AgencyQuota(YEAR, AGENCY.code)},
    )
    assert batch.quota_to_explain(YEAR, AGENCY.code) is None
    proposal, event = batch.forward(YEAR, AGENCY.code, a.id, NOW)
    assert proposal is a and event.proposal.unit_name == UNIT.name
    quota = batch.quota_to_explain(YEAR, AGENCY.code)
    assert quota is not None  # full, its earlier forwards not read yet
    quota.forwarded_before = []
    refused(RegistrationError.QUOTA_EXCEEDED, batch.forward, YEAR, AGENCY.code, b.id, NOW)
    refused(RegistrationError.CALL_NOT_OPEN, batch.forward, YEAR + 1, AGENCY.code, b.id, NOW)
    refused(RegistrationError.NOT_AN_AGENCY, batch.forward, YEAR, UNIT.code, b.id, NOW)
    refused(RegistrationError.UNKNOWN_PARTICIPANT, batch.forward, YEAR, "GHOST", b.id, NOW)
    refused(RegistrationError.NOT_FOUND, batch.forward, YEAR, AGENCY.code, "P9", NOW)


# --------------------------------------------------------------------------- KBK: work-culture groups and their risalah

GROUP = Party("KAB-MALANG-U01-KBK1", "KBK Sigap", ParticipantKind.KBK, UNIT.code)
GROUP2 = Party("KAB-MALANG-U01-KBK2", "KBK Cekatan", ParticipantKind.KBK, UNIT.code)
GROUP_NAMES = {**NAMES, GROUP.code: GROUP.name, GROUP2.code: GROUP2.name}


def kbk_call(quota: int = 1) -> Call:
    call, events = Call.open(None, YEAR, T0, T1, quota, Competition.KBK)
    assert [(type(e), e.track) for e in events] == [(CallOpened, Competition.KBK)]
    return call


def test_a_group_is_a_kbk_participant_under_a_unit():
    assert domain.a_group(GROUP, GROUP.code) is GROUP
    err = refused(RegistrationError.NOT_A_GROUP, domain.a_group, UNIT, UNIT.code)
    assert err.details == {"code": UNIT.code}
    refused(RegistrationError.NOT_A_GROUP, domain.a_group, AGENCY, AGENCY.code)
    refused(RegistrationError.UNKNOWN_PARTICIPANT, domain.a_group, None, "KBK-GHOST")
    domain.check_import([_p("A", "opd"), _p("U", "upt", "A"), _p("G", "kbk", "U")], {}, [])
    under_agency = refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("G", "kbk", "A")], {"A": ParticipantKind.OPD}, [])
    assert under_agency.details["problems"] == ["G: the parent of a work-culture group must be a unit (upt, upp), not a opd"]
    refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("G", "kbk")], {}, [])
    refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("U", "upt", "G")], {"G": ParticipantKind.KBK}, [])


def test_a_unit_keeps_its_groups_and_cannot_become_an_agency_while_they_stay():
    groups = [("G", "U", "kbk")]
    domain.check_import([_p("U", "upt", "A")], {"A": ParticipantKind.OPD}, groups)  # re-imported as it is
    err = refused(RegistrationError.INVALID_PARTICIPANT, domain.check_import, [_p("U", "opd")], {}, groups)
    assert err.details["problems"] == ["U: has 1 work-culture group(s) (G); a unit with groups cannot become a opd"]


def test_a_risalah_is_numbered_by_kbks_call_and_names_its_group():
    call = kbk_call()
    p, event = Proposal.submit(call, UNIT, AGENCY, content("Risalah Antrian"), "risalah antrian", None, NOW, GROUP)
    assert p.id == f"K{YEAR}-00001" and (p.track, p.group_code, p.unit_code, p.agency_code) == (Competition.KBK, GROUP.code, UNIT.code, AGENCY.code)
    snap = event.proposal
    assert (snap.track, snap.group_code, snap.group_name, snap.unit_name) == (Competition.KBK, GROUP.code, GROUP.name, UNIT.name)
    assert open_call().take_number() == f"P{YEAR}-00001"  # KOVABLIK's numbering is its own


def test_a_risalah_is_resubmitted_by_its_own_group_only():
    call = kbk_call()
    p, _ = Proposal.submit(call, UNIT, AGENCY, content("Risalah"), "risalah", None, NOW, GROUP)
    p.return_to_unit(AGENCY, "Lengkapi", NOW, GROUP_NAMES)
    err = refused(RegistrationError.NOT_FOUND, p.resubmit, UNIT, AGENCY, content("Risalah"), "risalah", None, NOW, GROUP_NAMES, GROUP2)
    assert err.message == f"proposal {p.id} is not {GROUP2.code}'s"
    refused(RegistrationError.NOT_FOUND, p.resubmit, UNIT, AGENCY, content("Risalah"), "risalah", None, NOW, GROUP_NAMES)  # by the unit
    event = p.resubmit(UNIT, AGENCY, content("Risalah 2"), "risalah 2", None, NOW, GROUP_NAMES, GROUP)
    assert event.proposal.group_name == GROUP.name and p.status is ProposalStatus.SUBMITTED
    innovation = submitted(open_call())
    refused(RegistrationError.NOT_FOUND, innovation.of_group, GROUP.code)  # a group cannot take a unit's


def test_kbks_call_has_its_own_quota_state_and_closing_digest():
    kov, kbk = open_call(quota=1), kbk_call(quota=1)
    innovation = submitted(kov)
    risalah, _ = Proposal.submit(kbk, UNIT, AGENCY, content("Risalah"), "risalah", None, NOW, GROUP)
    risalah2, _ = Proposal.submit(kbk, UNIT2, AGENCY, content("Risalah B"), "risalah b", None, NOW, GROUP2)
    batch = Forwarding(
        calls={kov.key: kov, kbk.key: kbk},
        people={p.code: p for p in (AGENCY, UNIT, UNIT2, GROUP, GROUP2)},
        proposals={p.id: p for p in (innovation, risalah, risalah2)},
        quotas={
            (YEAR, Competition.KOVABLIK, AGENCY.code): AgencyQuota(YEAR, AGENCY.code),
            (YEAR, Competition.KBK, AGENCY.code): AgencyQuota(YEAR, AGENCY.code, track=Competition.KBK),
        },
    )
    batch.forward(YEAR, AGENCY.code, innovation.id, NOW)
    _, event = batch.forward(YEAR, AGENCY.code, risalah.id, NOW)  # KOVABLIK's full quota does not count
    assert (event.quota_used, event.proposal.track) == (1, Competition.KBK)
    quota = batch.quota_to_explain(YEAR, AGENCY.code, risalah2.id)
    assert quota is not None and quota.key == (YEAR, Competition.KBK, AGENCY.code)
    quota.forwarded_before = []
    err = refused(RegistrationError.QUOTA_EXCEEDED, batch.forward, YEAR, AGENCY.code, risalah2.id, NOW)
    assert "risalah" in err.message and err.details["forwarded"] == [risalah.id]
    summary, [closed] = kbk.close(T1, [Filed(risalah.id, ProposalStatus.FORWARDED, AGENCY.code, "umum"), Filed(risalah2.id, ProposalStatus.SUBMITTED, AGENCY.code, "umum")])
    assert (summary.track, summary.forwarded, summary.forwarded_digest) == (Competition.KBK, 1, digest_ids([risalah.id]))
    assert closed.summary.track is Competition.KBK and kov.state is CallState.OPEN
    err = refused(RegistrationError.CALL_CLOSED, batch.forward, YEAR, AGENCY.code, risalah2.id, NOW)
    assert err.details == {"cycle_year": YEAR, "track": "kbk", "state": "closed"}
    err = refused(RegistrationError.CALL_NOT_OPEN, domain.accepting, None, YEAR, Competition.KBK)
    assert err.details == {"cycle_year": YEAR, "track": "kbk"} and "(kbk)" in err.message


# --------------------------------------------------------------------------- the archive


def test_a_replication_names_an_original_the_archive_holds():
    err = refused(RegistrationError.UNKNOWN_ORIGINAL, domain.check_original, "P2029-00001", False)
    assert err.details == {"replicates": "P2029-00001"}
    domain.check_original("P2029-00001", True)
    domain.check_original(None, False)


def test_the_stage_reached_is_the_last_jury_stage_entered_else_verification():
    t = dt.datetime(2031, 6, 1, tzinfo=dt.UTC)
    assert domain.stage_reached({}) is None
    assert domain.stage_reached({"verification": t}) == "verification"
    later = {"verification": t, "desk": t + dt.timedelta(days=1), "presentasi": t + dt.timedelta(days=20)}
    assert domain.stage_reached(later) == "presentasi"


def _winner(pid: str | None, unit: str = "U") -> dict:
    return {"award_key": "k", "rank": 1, "proposal_id": pid, "unit_code": unit, "unit_name": unit}


def test_archive_year_waits_for_the_awards_with_the_expected_winners():
    from contracts.awards import CategoryResult

    categories = [
        CategoryResult.model_validate({"key": "top", "name_id": "TOP Inovasi", "name_en": "Top", "rule": "top_n", "winners": [_winner("P1"), _winner("P2")]}),
        CategoryResult.model_validate({"key": "kes", "name_id": "Terbaik Kesehatan", "name_en": "Best", "rule": "top_n", "winners": [_winner("P1")]}),
        CategoryResult.model_validate({"key": "sakip", "track": "sakip", "name_id": "SAKIP AA", "name_en": "AA", "rule": "grade", "winners": [_winner(None, "OPD")]}),
    ]
    seen = domain.AwardsSeen.of(YEAR, categories)
    assert seen.winners == 4 and seen.awards == {"P1": ["TOP Inovasi", "Terbaik Kesehatan"], "P2": ["TOP Inovasi"]}
    err = refused("not_ready", domain.ready_to_archive, None, YEAR, 4)
    assert err.retryable and err.details["have"] is None
    refused("not_ready", domain.ready_to_archive, seen, YEAR, 5)
    assert domain.ready_to_archive(seen, YEAR, 4) is seen
    p = submitted(open_call())
    entry = domain.archive_entry(p, {UNIT.code: UNIT, AGENCY.code: AGENCY}, {"verification": NOW}, domain.AwardsSeen(YEAR, 1, {p.id: ["TOP Inovasi"]}))
    assert (entry.region, entry.stage_reached, entry.award, entry.unit_name) == ("Kabupaten Malang", "verification", "TOP Inovasi", UNIT.name)
    assert not hasattr(entry, "contact")
    assert domain.region_of(OTHER_AGENCY, OTHER_AGENCY.name) == domain.PROVINCE == "Provinsi Jawa Timur"
    assert domain.region_of(None, "Kota Batu") == "Kota Batu" and domain.region_of(None, "Dinas Sosial") == domain.PROVINCE
    refused(RegistrationError.NOT_FOUND, domain.archived, None, "P0")


def _row(i: str, year: int = 2019, **extra: object):  # type: ignore[no-untyped-def]
    from contracts.registration import ArchiveImportRow

    return ArchiveImportRow.model_validate(
        {"id": i, "year": year, "title": f"Inovasi {i}", "unit_name": "Puskesmas", "agency_name": "Kabupaten Malang",
         "category": "kesehatan", "group": "umum", "summary": "Ringkasan.", **extra}
    )  # fmt: skip


def test_an_import_is_idempotent_per_id_and_refused_whole_on_a_clash():
    created, updated = domain.merge_archive_import([_row("A"), _row("B", replicates="A")], {}, [])
    assert [e.id for e in created] == ["A", "B"] and updated == [] and created[0].region == "Kabupaten Malang" and created[0].imported
    held = {e.id: e for e in created}
    assert domain.merge_archive_import([_row("A"), _row("B", replicates="A")], held, []) == ([], [])
    _, changed = domain.merge_archive_import([_row("A", award="Juara 1")], held, [])
    assert [e.award for e in changed] == ["Juara 1"]
    err = refused("conflict", domain.merge_archive_import, [_row("A", year=2020)], held, [])
    assert err.details["problems"] == ["A: the archive already holds it as an imported row of 2019"]
    platform = domain.Archived("P2031-00001", 2031, "T", "U", "A", "c", "umum", "s")
    refused("conflict", domain.merge_archive_import, [_row("P2031-00001")], {"P2031-00001": platform}, [])
    refused(RegistrationError.UNKNOWN_ORIGINAL, domain.merge_archive_import, [_row("C", replicates="Z")], {}, [])
    assert domain.merge_archive_import([_row("C", replicates="Z")], {}, ["Z"])[0][0].replicates == "Z"


TESTED = {
    RegistrationError.UNKNOWN_PARTICIPANT,
    RegistrationError.NOT_A_UNIT,
    RegistrationError.NOT_AN_AGENCY,
    RegistrationError.UNIT_NOT_UNDER_AGENCY,
    RegistrationError.CALL_NOT_OPEN,
    RegistrationError.CALL_CLOSED,
    RegistrationError.QUOTA_EXCEEDED,
    RegistrationError.DUPLICATE_TITLE,
    RegistrationError.INVALID_TRANSITION,
    RegistrationError.INVALID_WINDOW,
    RegistrationError.INVALID_PARTICIPANT,
    RegistrationError.NOT_FOUND,
    RegistrationError.NOT_A_GROUP,
    RegistrationError.UNKNOWN_ORIGINAL,
}


def test_every_refusal_code_of_registration_has_a_domain_test_above():
    declared = {v for k, v in vars(RegistrationError).items() if k.isupper()}
    assert declared == TESTED
