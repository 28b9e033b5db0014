"""The awards service's adapters to the outside: the signing key, the certificates (signed
record and PDF) and the published results (HTML, CSV), written under ``Config.results_dir``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.awards import AnnounceAwards, CategoryResult, DetermineAwards
from services.awards import documents, domain, signing
from services.awards.domain import Certificate, TrackResults


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


def results(
    directory: Path,
    cmd: DetermineAwards | AnnounceAwards,
    categories: list[dict[str, Any]],
    rankings: list[dict[str, Any]],
    announcement: str | None,
    public_key: str | None,
    tracks: TrackResults | None = None,
) -> dict[str, str]:
    """The results page and tables, for the ceremony as the command names it (every track's
    categories, the other competitions' rankings and the evaluations' results)."""
    when = cmd.ceremony.date.astimezone(domain.JAKARTA)
    extra = {"public_key": public_key} if public_key else None
    return documents.write_results(
        directory,
        cmd.cycle_year,
        {"date": when, "venue": cmd.ceremony.venue},
        categories,
        rankings,
        announcement,
        extra,
        tracks,
    )


def certificate(cmd: DetermineAwards, cat: CategoryResult, w: Any, now: Any) -> Certificate:
    """Sign a winner's certificate, print it (PDF, with the signed record beside it: with the
    public key, anyone can check it offline), and note its code on the winner."""
    year, recipient = cmd.cycle_year, w.unit_name
    score = w.score_published if w.grade is not None else None  # an evaluation's total is attested
    attests = signing.attested(w.track, w.certificate_kind, w.grade, score)
    signed = Config.the_signer().issue(
        signing.certificate_record(year, cat.key, cat.name_id, w.unit_code, recipient, w.proposal_id, w.title, attests=attests)
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
        track=w.track,
        kind=w.certificate_kind,
        grade=w.grade,
        score=score,
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
        "date_id": domain.tanggal(cmd.ceremony.date.astimezone(domain.JAKARTA)),
        "signed_by": cmd.ceremony.signed_by,
        "signer_name": cmd.ceremony.signer_name,
        "code": code,
        "verify_url": Config.verify_url(code),
        "score": w.score,
        "score_kind": "lke" if cat.rule == "layak_wbk" else "evaluation" if w.grade is not None else "final",
        "track": w.track,
        "kind": w.certificate_kind,
        "grade": w.grade,
        "grade_label": w.grade_label,
    }


def signature_holds(cert: Certificate) -> bool:
    """The certificate's record, as filed, carries a good signature by this service's key."""
    assert cert.signature is not None and cert.unit_code is not None
    record = signing.certificate_record(
        cert.cycle_year,
        cert.award_key,
        cert.award_name,
        cert.unit_code,
        cert.recipient,
        cert.proposal_id,
        cert.title,
        cert.code,
        signing.attested(cert.track, cert.kind, cert.grade, cert.score),
    )
    return signing.verify(Config.the_signer().public, record, cert.signature)
