"""Awards' Ceremony aggregate and rules without any I/O — every refusal code awards declares is
raised here by the domain."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.awards import (
    AwardRule,
    AwardsAnnounced,
    AwardsDetermined,
    AwardsError,
    CertificateIssued,
)
from contracts.awards import Ceremony as CeremonyDetails
from contracts.base import SetRef, digest_ids
from services.awards import domain
from services.awards.domain import Ceremony, CeremonyState, Certificate
from services.common.errors import DomainError, NotReady

YEAR = 2034
AT = dt.datetime(2034, 11, 19, 12, 0, tzinfo=dt.UTC)
DETAILS = CeremonyDetails(date=AT, venue="Graha Pancasila, Kota Batu")
RULES = [
    AwardRule(key="top", rule="top_n", n=2, name_id="TOP 2", name_en="TOP 2"),
    AwardRule(key="wbk", rule="layak_wbk", name_id="Layak WBK", name_en="Layak WBK"),
]
SHORTLIST = [
    {"rank": r, "proposal_id": f"P{r}", "title": f"Inovasi {r}", "group": "umum", "unit_code": f"U{r}", "unit_name": f"Unit {r}", "agency_code": "KAB", "score": 90.0 - r}
    for r in (1, 2, 3)
]
LAYAK = [{"unit_code": "W1", "unit_name": "UPT W1", "agency_code": "OPD", "agency_name": "Dinas", "total": 80.0}]
EXPECTED = SetRef(count=3, digest=digest_ids(["P1", "P2", "P3"]))


def ceremony() -> Ceremony:
    categories = domain.determine(RULES, SHORTLIST, LAYAK)
    cert = Certificate("BF-1", YEAR, "top", "TOP 2", "Unit 1", "Inovasi 1", "/tmp/BF-1.pdf", AT, "U1", "P1", "k", "sig", "http://x/verify/BF-1")
    made, events = Ceremony.determine(YEAR, DETAILS, categories, SHORTLIST, {"html": "index.html"}, [cert], "/r/2034")
    assert [type(e) for e in events] == [CertificateIssued, AwardsDetermined]
    assert events[0].code == "BF-1" and events[0].verify_url == "http://x/verify/BF-1"
    return made


def test_invalid_rules_are_refused_all_at_once():
    bad = [AwardRule(key="a", rule="lottery", name_id="A", name_en="A"), AwardRule(key="a", rule="top_n", name_id="B", name_en="B")]
    with pytest.raises(DomainError) as err:
        domain.check_rules(bad)
    assert err.value.code == AwardsError.INVALID_RULES and len(err.value.details) >= 2
    domain.check_rules(RULES)


def test_a_ceremony_is_determined_once_and_announced_once_under_its_number():
    made = ceremony()
    assert made.state is CeremonyState.DETERMINED and made.summary.categories == {"top": 2, "wbk": 1}
    assert made.summary.certificates == 1 and made.summary.results_dir == "/r/2034"
    [event] = made.announce(DETAILS, 4)
    assert isinstance(event, AwardsAnnounced) and event.announcement_no == "004/PENGHARGAAN-BFEST/2034" and event.winners == 3
    assert made.state is CeremonyState.ANNOUNCED
    assert made.announce(DETAILS, 5) == [] and made.announcement_no == "004/PENGHARGAAN-BFEST/2034"
    view = made.results()
    assert view.ceremony == DETAILS and [c.key for c in view.categories] == ["top", "wbk"]


def test_another_ceremony_than_the_one_determined_for_is_refused():
    made = ceremony()
    other = CeremonyDetails(date=AT + dt.timedelta(days=1), venue="Grahadi, Surabaya")
    for step in (made.same, lambda d: made.announce(d, 1)):
        with pytest.raises(DomainError) as err:
            step(other)
        assert err.value.code == AwardsError.CEREMONY_MISMATCH and "19 Nov 2034 19:00 WIB" in err.value.message
    assert made.announcement_no is None


def test_awards_not_determined_yet_are_refused():
    with pytest.raises(DomainError) as err:
        domain.determined(None, YEAR)
    assert err.value.code == AwardsError.NOT_DETERMINED


def test_determining_waits_for_the_shortlist_and_decisions_it_names():
    with pytest.raises(NotReady):
        domain.ready("final", None, EXPECTED, LAYAK, 1)
    with pytest.raises(NotReady):
        domain.ready("final", SHORTLIST[:2], EXPECTED, LAYAK, 1)
    with pytest.raises(NotReady):
        domain.ready("final", SHORTLIST, EXPECTED, [], 1)
    assert domain.ready("final", SHORTLIST, EXPECTED, LAYAK, None) is SHORTLIST


def test_a_certificate_verifies_only_signed_by_this_key_and_unaltered():
    cert = Certificate("BF-1", YEAR, "top", "TOP 2", "Unit 1", None, "p", AT, "U1", "P1", "key-a", "sig")
    assert cert.verdict("key-a", lambda c: True, "u").valid
    assert "altered" in (cert.verdict("key-a", lambda c: False, "u").reason or "")
    assert "not by this service's key" in (cert.verdict("key-b", lambda c: True, "u").reason or "")
    unsigned = Certificate("BF-0", YEAR, "top", "TOP 2", "Unit 1", None, "p", AT)
    assert not unsigned.verdict("key-a", lambda c: True, "u").valid
    assert domain.unknown_certificate("NOPE").valid is False


def test_every_refusal_code_of_awards_has_a_domain_test_above():
    declared = {v for k, v in vars(AwardsError).items() if k.isupper()}
    assert declared == {AwardsError.INVALID_RULES, AwardsError.NOT_DETERMINED, AwardsError.CEREMONY_MISMATCH}
