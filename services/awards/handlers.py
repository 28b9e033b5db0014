"""Awards' use cases: each loads through the repositories, asks the domain, and emits what it
caused; printing and publishing (PDF, HTML, CSV, signed records) are the adapters below."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.awards import (
    AnnounceAwards,
    AnnouncementView,
    AwardsSummary,
    CategoryResult,
    CertificateView,
    DetermineAwards,
    GetResults,
    ResultsView,
    ValidateAwards,
    VerifyCertificate,
)
from contracts.scoring import ShortlistFinal
from contracts.verification import WbkEvaluated
from services.awards import documents, domain, signing
from services.awards.domain import Ceremony, Certificate
from services.awards.store import Unit


class Config:
    """What the handlers need beyond the database (set by create_app)."""

    results_dir: Path = Path("var/results")
    signer: signing.Signer | None = None
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def the_signer(cls) -> signing.Signer:
        if cls.signer is None:
            raise RuntimeError("the awards service has no certificate signing key (create_app sets it)")
        return cls.signer

    @classmethod
    def verify_url(cls, code: str) -> str:
        """The public verification page of a certificate: what its QR code holds and its footer shows."""
        return f"{cls.public_url.rstrip('/')}/verify/{code}"


def publish_public_key(directory: Path | None = None) -> Path:
    """Write the certificates' public key (PEM) where the results are published, so anyone can
    check a certificate offline; the results page links the copy in its year's folder."""
    path = (directory or Config.results_dir) / signing.PUBLIC_KEY_NAME
    pem = Config.the_signer().public_pem
    if not path.exists() or path.read_text(encoding="utf-8") != pem:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pem, encoding="utf-8")
    return path


async def on_shortlist_final(evt: ShortlistFinal, uow: Unit) -> None:
    rows = [r.model_dump(mode="json") for r in evt.rows]
    await uow.shortlists.put(evt.cycle_year, evt.stage, evt.announcement_no, evt.digest, rows)


async def on_wbk_evaluated(evt: WbkEvaluated, uow: Unit) -> None:
    names = {"unit_name": evt.unit_name, "agency_code": evt.agency_code, "agency_name": evt.agency_name}
    await uow.wbk.put(evt.cycle_year, evt.result.unit_code, evt.result.final.value, evt.result.total, names)


async def validate_awards(cmd: ValidateAwards, uow: Unit) -> dict[str, Any]:
    domain.check_rules(cmd.rules)
    return {"valid": True, "categories": [r.key for r in cmd.rules]}


async def determine_awards(cmd: DetermineAwards, uow: Unit) -> AwardsSummary:
    done = await uow.ceremonies.get(cmd.cycle_year)
    if done is not None:
        return done.same(cmd.ceremony).summary
    domain.check_rules(cmd.rules)
    layak = await uow.wbk.layak(cmd.cycle_year)
    shortlist = await uow.shortlists.rows(cmd.cycle_year, cmd.final_stage)
    rankings = domain.ready(cmd.final_stage, shortlist, cmd.expected_shortlist, layak, cmd.expected_wbk_layak)
    categories = domain.determine(cmd.rules, rankings, layak)
    directory = Config.results_dir / str(cmd.cycle_year)
    public_key = publish_public_key(directory)
    certificates = [_certificate(cmd, cat, w, uow.now) for cat in categories for w in cat.winners]
    files = _publish(
        directory, cmd, [c.model_dump(mode="json") for c in categories], rankings, None, str(public_key)
    )
    ceremony, events = Ceremony.determine(
        cmd.cycle_year, cmd.ceremony, categories, rankings, files, certificates, str(directory)
    )
    await uow.certificates.add(certificates)
    await uow.ceremonies.add(ceremony)
    uow.emit(*events)
    return ceremony.summary


async def announce_awards(cmd: AnnounceAwards, uow: Unit) -> AnnouncementView:
    ceremony = domain.determined(await uow.ceremonies.get(cmd.cycle_year), cmd.cycle_year).same(cmd.ceremony)
    if ceremony.state in domain.CEREMONY_TRANSITIONS["announce"]:
        events = ceremony.announce(cmd.ceremony, await uow.ceremonies.next_announcement(cmd.cycle_year))
        directory = Config.results_dir / str(cmd.cycle_year)
        key = ceremony.files.get("public_key") or None
        ceremony.files = _publish(
            directory, cmd, ceremony.categories, ceremony.rankings, ceremony.announcement_no, key
        )
        await uow.ceremonies.save(ceremony)
        uow.emit(*events)
    assert ceremony.announcement_no is not None
    return AnnouncementView(
        cycle_year=cmd.cycle_year, announcement_no=ceremony.announcement_no, ceremony=cmd.ceremony
    )


async def get_results(cmd: GetResults, uow: Unit) -> ResultsView:
    return domain.determined(await uow.ceremonies.get(cmd.cycle_year), cmd.cycle_year).results()


async def verify_certificate(cmd: VerifyCertificate, uow: Unit) -> CertificateView:
    """A code verifies only when its record is signed by this service's key and still says what
    was signed: an invented code is unknown, a record changed after signing fails its signature."""
    cert = await uow.certificates.get(cmd.code.strip().upper())
    if cert is None:
        return CertificateView(
            valid=False, code=cmd.code, reason="unknown code: no certificate was issued with it"
        )
    signer = Config.the_signer()
    if cert.signature is None or cert.unit_code is None:
        return CertificateView(
            valid=False,
            code=cert.code,
            reason="issued before certificates were signed: it cannot be verified",
        )
    if cert.key_id != signer.key_id:
        return CertificateView(
            valid=False,
            code=cert.code,
            key_id=cert.key_id,
            reason=f"signed by key {cert.key_id}, not by this service's key {signer.key_id}",
        )
    record = signing.certificate_record(
        cert.cycle_year,
        cert.award_key,
        cert.award_name,
        cert.unit_code,
        cert.recipient,
        cert.proposal_id,
        cert.title,
        cert.code,
    )
    if not signing.verify(signer.public, record, cert.signature):
        return CertificateView(
            valid=False,
            code=cert.code,
            key_id=cert.key_id,
            reason="the certificate's record does not match its signature: it was altered",
        )
    return CertificateView(
        valid=True,
        code=cert.code,
        cycle_year=cert.cycle_year,
        award_key=cert.award_key,
        award_name=cert.award_name,
        recipient=cert.recipient,
        title=cert.title,
        issued_at=cert.issued_at,
        key_id=cert.key_id,
        unit_code=cert.unit_code,
        proposal_id=cert.proposal_id,
        verify_url=Config.verify_url(cert.code),
    )


# --------------------------------------------------------------------------- printing and publishing


def _publish(
    directory: Path,
    cmd: DetermineAwards | AnnounceAwards,
    categories: list[dict[str, Any]],
    rankings: list[dict[str, Any]],
    announcement: str | None,
    public_key: str | None,
) -> dict[str, str]:
    """The results page and tables, for the ceremony as the command names it."""
    when = cmd.ceremony.date.astimezone(documents.JAKARTA)
    extra = {"public_key": public_key} if public_key else None
    return documents.write_results(
        directory,
        cmd.cycle_year,
        {"date": when, "venue": cmd.ceremony.venue},
        categories,
        rankings,
        announcement,
        extra,
    )


def _certificate(cmd: DetermineAwards, cat: CategoryResult, w: Any, now: Any) -> Certificate:
    """Sign a winner's certificate, print it (PDF, with the signed record beside it: with the
    public key, anyone can check it offline), and note its code on the winner."""
    year, recipient = cmd.cycle_year, w.unit_name
    signed = Config.the_signer().issue(
        signing.certificate_record(year, cat.key, cat.name_id, w.unit_code, recipient, w.proposal_id, w.title)
    )
    code = signed["record"]["code"]
    path = Config.results_dir / str(year) / "certificates" / f"{code}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(
        json.dumps({**signed, "verify_url": Config.verify_url(code)}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    documents.certificate_pdf(path, _printed(cmd, cat, w, code))
    w.certificate_code, w.certificate_path = code, str(path)
    return Certificate(
        code=code,
        cycle_year=year,
        award_key=cat.key,
        award_name=cat.name_id,
        recipient=recipient,
        title=w.title,
        path=str(path),
        issued_at=now,
        unit_code=w.unit_code,
        proposal_id=w.proposal_id,
        key_id=signed["key_id"],
        signature=signed["signature"],
        verify_url=Config.verify_url(code),
    )


def _printed(cmd: DetermineAwards, cat: CategoryResult, w: Any, code: str) -> dict[str, Any]:
    """What a certificate shows."""
    venue = cmd.ceremony.venue
    return {
        "year": cmd.cycle_year,
        "recipient": w.unit_name,
        "agency_name": w.agency_name,
        "award_name_id": cat.name_id,
        "award_name_en": cat.name_en,
        "title": w.title,
        "venue": venue,
        "venue_city": venue.split(",")[-1].strip() or venue,
        "date_id": domain.tanggal(cmd.ceremony.date.astimezone(documents.JAKARTA)),
        "signed_by": cmd.ceremony.signed_by,
        "signer_name": cmd.ceremony.signer_name,
        "code": code,
        "verify_url": Config.verify_url(code),
        "score": w.score,
        "score_kind": "lke" if cat.rule == "layak_wbk" else "final",
    }
