"""Awards' use cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contracts.awards import (
    AnnounceAwards,
    AnnouncementView,
    AwardsAnnounced,
    AwardsDetermined,
    AwardsError,
    AwardsSummary,
    CategoryResult,
    Ceremony,
    CertificateIssued,
    CertificateView,
    DetermineAwards,
    GetResults,
    ResultsView,
    ValidateAwards,
    VerifyCertificate,
)
from contracts.base import WbkDecision, digest_ids
from contracts.scoring import ShortlistFinal
from contracts.verification import WbkEvaluated
from services.awards import documents, domain, signing
from services.awards.store import CertificateRow, CounterRow, ResultRow, ShortlistRow, WbkRow
from services.common.errors import DomainError, NotReady
from services.common.runtime import UnitOfWork


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


async def on_shortlist_final(evt: ShortlistFinal, uow: UnitOfWork) -> None:
    row = await uow.session.get(ShortlistRow, (evt.cycle_year, evt.stage))
    rows = [r.model_dump(mode="json") for r in evt.rows]
    if row is None:
        uow.session.add(ShortlistRow(cycle_year=evt.cycle_year, stage=evt.stage, announcement_no=evt.announcement_no, digest=evt.digest, rows=rows))
    else:
        row.rows, row.digest, row.announcement_no = rows, evt.digest, evt.announcement_no


async def on_wbk_evaluated(evt: WbkEvaluated, uow: UnitOfWork) -> None:
    row = await uow.session.get(WbkRow, (evt.cycle_year, evt.result.unit_code))
    if row is None:
        row = WbkRow(cycle_year=evt.cycle_year, unit_code=evt.result.unit_code, decision=evt.result.final.value)
        uow.session.add(row)
    row.decision, row.total = evt.result.final.value, evt.result.total
    row.unit_name, row.agency_code = evt.unit_name or row.unit_name, evt.agency_code or row.agency_code
    row.agency_name = evt.agency_name or row.agency_name


async def validate_awards(cmd: ValidateAwards, uow: UnitOfWork) -> dict[str, Any]:
    problems = domain.rule_problems(cmd.rules)
    if problems:
        raise DomainError(
            AwardsError.INVALID_RULES,
            f"{len(problems)} problem(s) in the award rules: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            problems,
        )
    return {"valid": True, "categories": [r.key for r in cmd.rules]}


def _summary(row: ResultRow) -> AwardsSummary:
    return AwardsSummary.model_validate(row.summary)


def _same_ceremony(result: ResultRow, given: Ceremony, year: int) -> None:
    """The awards were determined, and the certificates printed, for one ceremony: a command naming
    another (a year started again with a changed ceremony, say) is refused, not answered as if."""
    ceremony = Ceremony.model_validate(result.ceremony)
    if given != ceremony:
        raise DomainError(
            AwardsError.CEREMONY_MISMATCH,
            f"the awards of {year} were determined for the ceremony at {ceremony.venue} on "
            f"{ceremony.date.astimezone(documents.JAKARTA):%d %b %Y %H:%M} WIB, and their certificates printed; this names another",
            {"determined_for": ceremony.model_dump(mode="json"), "given": given.model_dump(mode="json")},
        )


async def determine_awards(cmd: DetermineAwards, uow: UnitOfWork) -> AwardsSummary:
    done = await uow.session.get(ResultRow, cmd.cycle_year)
    if done is not None:
        _same_ceremony(done, cmd.ceremony, cmd.cycle_year)
        return _summary(done)
    await validate_awards(ValidateAwards(request_id=cmd.request_id, cycle_year=cmd.cycle_year, rules=cmd.rules), uow)
    shortlist = await uow.session.get(ShortlistRow, (cmd.cycle_year, cmd.final_stage))
    if shortlist is None:
        raise NotReady(message=f"the final shortlist of stage {cmd.final_stage} has not arrived yet", details={"stage": cmd.final_stage})
    ids = [r["proposal_id"] for r in shortlist.rows]
    if (len(ids), digest_ids(ids)) != (cmd.expected_shortlist.count, cmd.expected_shortlist.digest):
        raise NotReady(message="the final shortlist received differs from the one expected", details={"have": len(ids), "expected": cmd.expected_shortlist.count})
    layak = [
        {"unit_code": w.unit_code, "unit_name": w.unit_name, "agency_code": w.agency_code, "agency_name": w.agency_name, "total": w.total}
        for w in (await uow.session.execute(sa.select(WbkRow).where(WbkRow.cycle_year == cmd.cycle_year))).scalars()
        if w.decision == WbkDecision.LAYAK_WBK
    ]
    if cmd.expected_wbk_layak is not None and len(layak) != cmd.expected_wbk_layak:
        raise NotReady(message=f"{len(layak)} WBK decisions received, {cmd.expected_wbk_layak} expected", details={"have": len(layak)})
    categories = domain.determine(cmd.rules, shortlist.rows, layak)
    directory = Config.results_dir / str(cmd.cycle_year)
    when = cmd.ceremony.date.astimezone(documents.JAKARTA)
    city = cmd.ceremony.venue.split(",")[-1].strip() or cmd.ceremony.venue
    certificates = 0
    signer = Config.the_signer()
    public_key = publish_public_key(directory)
    for cat in categories:
        for w in cat.winners:
            recipient = w.unit_name
            signed = signer.issue(signing.certificate_record(cmd.cycle_year, cat.key, cat.name_id, w.unit_code, recipient, w.proposal_id, w.title))
            code = signed["record"]["code"]
            path = directory / "certificates" / f"{code}.pdf"
            # The signed record beside the PDF: with the public key, anyone can check it offline.
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".json").write_text(json.dumps({**signed, "verify_url": Config.verify_url(code)}, ensure_ascii=False, indent=2), encoding="utf-8")
            documents.certificate_pdf(
                path,
                {
                    "year": cmd.cycle_year,
                    "recipient": recipient,
                    "agency_name": w.agency_name,
                    "award_name_id": cat.name_id,
                    "award_name_en": cat.name_en,
                    "title": w.title,
                    "venue": cmd.ceremony.venue,
                    "venue_city": city,
                    "date_id": domain.tanggal(when),
                    "signed_by": cmd.ceremony.signed_by,
                    "signer_name": cmd.ceremony.signer_name,
                    "code": code,
                    "verify_url": Config.verify_url(code),
                    "score": w.score,
                    "score_kind": "lke" if cat.rule == "layak_wbk" else "final",
                },
            )
            w.certificate_code, w.certificate_path = code, str(path)
            uow.session.add(
                CertificateRow(
                    code=code,
                    cycle_year=cmd.cycle_year,
                    award_key=cat.key,
                    award_name=cat.name_id,
                    recipient=recipient,
                    title=w.title,
                    path=str(path),
                    issued_at=uow.now,
                    unit_code=w.unit_code,
                    proposal_id=w.proposal_id,
                    key_id=signed["key_id"],
                    signature=signed["signature"],
                )
            )
            uow.emit(
                CertificateIssued(
                    cycle_year=cmd.cycle_year, code=code, award_key=cat.key, recipient=recipient, title=w.title, path=str(path),
                    key_id=signed["key_id"], verify_url=Config.verify_url(code),
                )
            )
            certificates += 1
    cats = [c.model_dump(mode="json") for c in categories]
    ceremony = cmd.ceremony.model_dump(mode="json")
    files = documents.write_results(directory, cmd.cycle_year, {"date": when, "venue": cmd.ceremony.venue}, cats, shortlist.rows, None, {"public_key": str(public_key)})
    summary = AwardsSummary(cycle_year=cmd.cycle_year, categories={c.key: len(c.winners) for c in categories}, certificates=certificates, results_dir=str(directory))
    uow.session.add(ResultRow(cycle_year=cmd.cycle_year, categories=cats, rankings=shortlist.rows, ceremony=ceremony, files=files, summary=summary.model_dump(mode="json")))
    uow.emit(AwardsDetermined(cycle_year=cmd.cycle_year, categories=categories))
    return summary


async def announce_awards(cmd: AnnounceAwards, uow: UnitOfWork) -> AnnouncementView:
    result = await uow.session.get(ResultRow, cmd.cycle_year)
    if result is None:
        raise DomainError(AwardsError.NOT_DETERMINED, f"the awards of {cmd.cycle_year} have not been determined yet")
    _same_ceremony(result, cmd.ceremony, cmd.cycle_year)
    if result.announcement_no is None:
        counter = await uow.session.get(CounterRow, cmd.cycle_year)
        if counter is None:
            counter = CounterRow(cycle_year=cmd.cycle_year)
            uow.session.add(counter)
        counter.announcements += 1
        result.announcement_no = f"{counter.announcements:03d}/PENGHARGAAN-BFEST/{cmd.cycle_year}"
        when = cmd.ceremony.date.astimezone(documents.JAKARTA)
        extra = {"public_key": result.files["public_key"]} if result.files.get("public_key") else None
        result.files = documents.write_results(
            Config.results_dir / str(cmd.cycle_year), cmd.cycle_year, {"date": when, "venue": cmd.ceremony.venue}, result.categories, result.rankings, result.announcement_no, extra
        )
        winners = sum(len(c["winners"]) for c in result.categories)
        uow.emit(AwardsAnnounced(cycle_year=cmd.cycle_year, announcement_no=result.announcement_no, ceremony=cmd.ceremony, winners=winners))
    return AnnouncementView(cycle_year=cmd.cycle_year, announcement_no=result.announcement_no, ceremony=cmd.ceremony)


async def get_results(cmd: GetResults, uow: UnitOfWork) -> ResultsView:
    result = await uow.session.get(ResultRow, cmd.cycle_year)
    if result is None:
        raise DomainError(AwardsError.NOT_DETERMINED, f"the awards of {cmd.cycle_year} have not been determined yet")
    return ResultsView(
        cycle_year=cmd.cycle_year,
        ceremony=result.ceremony,  # type: ignore[arg-type]
        announcement_no=result.announcement_no,
        categories=[CategoryResult.model_validate(c) for c in result.categories],
        rankings=result.rankings,
        files=result.files,
    )


async def verify_certificate(cmd: VerifyCertificate, uow: UnitOfWork) -> CertificateView:
    """A code verifies only when its record is signed by this service's key and still says what
    was signed: an invented code is unknown, a record changed after signing fails its signature."""
    code = cmd.code.strip().upper()
    row = await uow.session.get(CertificateRow, code)
    if row is None:
        return CertificateView(valid=False, code=cmd.code, reason="unknown code: no certificate was issued with it")
    signer = Config.the_signer()
    if row.signature is None or row.unit_code is None:
        return CertificateView(valid=False, code=row.code, reason="issued before certificates were signed: it cannot be verified")
    if row.key_id != signer.key_id:
        return CertificateView(valid=False, code=row.code, key_id=row.key_id, reason=f"signed by key {row.key_id}, not by this service's key {signer.key_id}")
    record = signing.certificate_record(row.cycle_year, row.award_key, row.award_name, row.unit_code, row.recipient, row.proposal_id, row.title, row.code)
    if not signing.verify(signer.public, record, row.signature):
        return CertificateView(valid=False, code=row.code, key_id=row.key_id, reason="the certificate's record does not match its signature: it was altered")
    return CertificateView(
        valid=True,
        code=row.code,
        cycle_year=row.cycle_year,
        award_key=row.award_key,
        award_name=row.award_name,
        recipient=row.recipient,
        title=row.title,
        issued_at=row.issued_at,
        key_id=row.key_id,
        unit_code=row.unit_code,
        proposal_id=row.proposal_id,
        verify_url=Config.verify_url(row.code),
    )


