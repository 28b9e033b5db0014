"""Awards' handlers over fake, in-memory repositories (no database, no NATS; the signing key, the
PDFs and the results page are real, under a temporary directory). tests/awards/test_awards.py is
the proof against the real database and NATS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.awards import (
    AnnounceAwards,
    AwardsAnnounced,
    AwardsDetermined,
    CertificateIssued,
    DetermineAwards,
    GetResults,
    VerifyCertificate,
)
from services.awards import handlers, publishing, signing
from services.awards.domain import Ceremony, Certificate
from services.common.errors import NotReady
from tests.awards.test_domain import AT, DETAILS, EXPECTED, LAYAK, RULES, SHORTLIST, YEAR


class Fakes:
    def __init__(self) -> None:
        self.shortlist: list[dict[str, Any]] | None = None
        self.layak_rows: list[dict[str, Any]] = []
        self.ceremony: Ceremony | None = None
        self.certs: dict[str, Certificate] = {}
        self.counter = 0

    async def rows(self, year: int, stage: str) -> list[dict[str, Any]] | None:
        return self.shortlist

    async def layak(self, year: int) -> list[dict[str, Any]]:
        return self.layak_rows

    async def get(self, key: Any) -> Any:
        return self.ceremony if isinstance(key, int) else self.certs.get(key)

    async def add(self, thing: Any) -> None:
        if isinstance(thing, Ceremony):
            assert self.ceremony is None
            self.ceremony = thing
        else:
            self.certs.update({c.code: c for c in thing})

    async def save(self, c: Ceremony) -> None:
        self.ceremony = c

    async def next_announcement(self, year: int) -> int:
        self.counter += 1
        return self.counter


class FakeUnit:
    def __init__(self) -> None:
        self.now = AT
        self.events: list[Any] = []
        self.shortlists = self.wbk = self.ceremonies = self.certificates = Fakes()

    def emit(self, *events: Any) -> None:
        self.events.extend(events)


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(publishing.Config, "results_dir", tmp_path / "results")
    monkeypatch.setattr(publishing.Config, "signer", signing.Signer(Ed25519PrivateKey.generate()))
    return tmp_path / "results"


def determine_cmd(rid: str = "d") -> DetermineAwards:
    return DetermineAwards(
        request_id=rid, cycle_year=YEAR, rules=RULES, final_stage="final", expected_shortlist=EXPECTED, expected_wbk_layak=1, ceremony=DETAILS, at=AT
    )


async def test_determine_then_announce_over_fake_repositories(signed):
    uow = FakeUnit()
    with pytest.raises(NotReady):
        await handlers.determine_awards(determine_cmd(), uow)  # type: ignore[arg-type]
    uow.shortlists.shortlist, uow.wbk.layak_rows = SHORTLIST, LAYAK
    summary = await handlers.determine_awards(determine_cmd(), uow)  # type: ignore[arg-type]
    assert summary.certificates == 3 and len(uow.certificates.certs) == 3
    assert [type(e) for e in uow.events] == [CertificateIssued] * 3 + [AwardsDetermined]
    assert (signed / str(YEAR) / "index.html").exists()
    again = await handlers.determine_awards(determine_cmd("d2"), uow)  # type: ignore[arg-type]
    assert again == summary and len(uow.events) == 4
    view = await handlers.announce_awards(AnnounceAwards(request_id="a", cycle_year=YEAR, ceremony=DETAILS, at=AT), uow)  # type: ignore[arg-type]
    assert view.announcement_no == "001/PENGHARGAAN-BFEST/2034" and isinstance(uow.events[-1], AwardsAnnounced)
    await handlers.announce_awards(AnnounceAwards(request_id="a2", cycle_year=YEAR, ceremony=DETAILS, at=AT), uow)  # type: ignore[arg-type]
    assert uow.ceremonies.counter == 1 and len(uow.events) == 5
    results = await handlers.get_results(GetResults(request_id="g", cycle_year=YEAR), uow)  # type: ignore[arg-type]
    assert results.announcement_no == view.announcement_no
    code = next(iter(uow.certificates.certs))
    assert (await handlers.verify_certificate(VerifyCertificate(code=code.lower()), uow)).valid  # type: ignore[arg-type]
    uow.certificates.certs[code].recipient = "Unit Palsu"
    assert not (await handlers.verify_certificate(VerifyCertificate(code=code), uow)).valid  # type: ignore[arg-type]
