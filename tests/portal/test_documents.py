"""Proposal documents on a real nats-server (the portal as its own NATS identity, the real
registration service): a unit uploads a PDF with its proposal, the bytes land in the cycle's
JetStream Object Store bucket and the proposal records them by digest; the unit, its agency's
admin and the operator download it, another unit, another agency and a juror not assigned to it
are refused; an oversize file and a file that is not a PDF (whatever its name) are refused next to
the field with the rest of the form kept, and a PDF uploaded on a refused try stays attached."""

from __future__ import annotations

import asyncio
import hashlib
import re

import nats
import pytest

from services.common import authz
from services.portal.accounts import Role
from services.portal.documents import DocumentRefused, check_pdf
from services.registration.app import create_app as registration_app
from tests.portal.support import account, client, csrf_of, logged_in, portal
from tests.registration import test_service as reg
from tests.support import connect_as, request, running

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"% isi proposal\n" * 200 + b"%%EOF\n"
FIELDS = {
    "title": "Antrian Daring Puskesmas", "group": "umum", "category": "kesehatan", "summary": "Antrian daring.",
    "problem": "Antrian panjang.", "solution": "Pendaftaran daring.", "impact": "Tunggu turun.", "started_on": "2029-01-15",
    "document_uri": "", "contact_name": "Admin", "contact_email": "admin@malangkab.go.id",
}  # fmt: skip


def test_the_pdf_check_reads_the_content_not_the_name():
    check_pdf("a.pdf", PDF, 10_000)
    for name, data, size, words in (
        ("a.pdf", b"", None, "kosong"),
        ("a.pdf", b"MZ\x90\x00 not a pdf", None, "bukan PDF"),
        ("a.pdf", PDF, 20 * 1024 * 1024, "terlalu besar"),
        ("scan.PDF", b"\x89PNG\r\n\x1a\n", None, "bukan PDF"),
    ):
        with pytest.raises(DocumentRefused) as refused:
            check_pdf(name, data, 10 * 1024 * 1024, size=size)
        assert words in refused.value.message_id


async def test_a_unit_uploads_a_pdf_that_only_those_who_may_see_the_proposal_download(nats_url, nc, tmp_path):  # type: ignore[no-untyped-def]
    async with running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"):
        await reg.setup_call(nc, quota=3)
        async with portal(nats_url, tmp_path, reg.YEAR, document_max_mb=0.01) as app:  # 10 KB
            for role, who in ((Role.UNIT, "KAB-MALANG-U01"), (Role.UNIT, "KAB-MALANG-U02"), (Role.AGENCY, "KAB-MALANG"), (Role.AGENCY, "OPD-DINKES"), (Role.OPERATOR, "OPS"), (Role.JUROR, "J01")):
                await account(app, role, who)
            async with logged_in(app, "KAB-MALANG-U01") as unit:
                form = await unit.get("/unit/new")
                assert 'enctype="multipart/form-data"' in form.text and 'type="file"' in form.text and "maksimal 0.01 MB" in form.text
                fields = {**FIELDS, "csrf_token": csrf_of(form.text)}
                # not a PDF, whatever its name says: refused next to the field, the rest kept, nothing sent
                fake = await unit.post("/unit/new", data=fields, files={"documents": ("proposal.pdf", b"<html>bukan pdf</html>", "application/pdf")})
                assert fake.status_code == 400 and "bukan PDF" in fake.text and 'id="documents-error"' in fake.text
                assert 'value="Antrian Daring Puskesmas"' in fake.text and "Pendaftaran daring." in fake.text
                # too large
                big = await unit.post("/unit/new", data=fields, files={"documents": ("besar.pdf", PDF * 10, "application/pdf")})
                assert big.status_code == 400 and "terlalu besar" in big.text and "maksimal 0.01 MB" in big.text
                assert 'value="Antrian Daring Puskesmas"' in big.text
                assert (await request(nc, reg.cmd("list_proposals"), {"cycle_year": reg.YEAR}))["data"]["total"] == 0
                # a good PDF on a try refused for another field stays attached to the form
                first = await unit.post("/unit/new", data={**fields, "contact_email": "bukan-email"}, files={"documents": ("proposal.pdf", PDF, "application/pdf")})
                assert first.status_code == 400 and "proposal.pdf" in first.text
                kept = re.findall(r'name="document_kept" value="([^"]+)" checked', first.text)
                digest = hashlib.sha256(PDF).hexdigest()
                assert kept == [f"nats-os://bfest-docs-{reg.YEAR}/sha256-{digest}.pdf"]
                ok = await unit.post("/unit/new", data={**fields, "document_kept": kept[0]})
                assert ok.status_code == 303, ok.text
                pid = ok.headers["location"].rsplit(":", 1)[1]
            recorded = (await request(nc, reg.cmd("get_proposal"), {"proposal_id": pid}))["data"]["content"]["documents"]
            assert recorded == [{"kind": "proposal", "uri": kept[0]}]
            # the bytes are in the year's Object Store bucket, on the same JetStream as the events
            stored = await (await nc.jetstream().object_store(f"bfest-docs-{reg.YEAR}")).get(f"sha256-{digest}.pdf")
            assert stored.data == PDF
            path = f"/proposals/{pid}/documents/sha256-{digest}.pdf"
            for who in ("KAB-MALANG-U01", "KAB-MALANG", "OPS"):
                async with logged_in(app, who) as c:
                    page = await c.get(f"/proposals/{pid}/documents")
                    assert page.status_code == 200 and "proposal.pdf" in page.text and path in page.text, who
                    got = await c.get(path)
                    assert got.status_code == 200 and got.content == PDF and got.headers["content-type"] == "application/pdf", who
                    assert "attachment" in got.headers["content-disposition"]
            for who in ("KAB-MALANG-U02", "OPD-DINKES", "J01"):  # another unit, another agency, a juror not assigned it
                async with logged_in(app, who) as c:
                    assert (await c.get(path)).status_code == 404, who
                    assert (await c.get(f"/proposals/{pid}/documents")).status_code == 404, who
                    assert (await c.get(f"/api/proposals/{pid}/documents")).status_code == 404, who
            async with client(app) as anonymous:
                assert (await anonymous.get(path)).status_code == 303  # to the login page
            async with logged_in(app, "KAB-MALANG-U02") as neighbour:
                # another unit cannot attach the first unit's upload by naming it in the form
                form = await neighbour.get("/unit/new")
                theirs = await neighbour.post("/unit/new", data={**FIELDS, "title": "Inovasi Tetangga", "csrf_token": csrf_of(form.text), "document_kept": kept[0]})
                assert theirs.status_code == 303
                other = theirs.headers["location"].rsplit(":", 1)[1]
            assert (await request(nc, reg.cmd("get_proposal"), {"proposal_id": other}))["data"]["content"]["documents"] == []


async def test_the_portal_identity_reaches_its_document_buckets_and_not_the_event_streams(nats_url, js):  # type: ignore[no-untyped-def]
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect_as(nats_url, authz.PORTAL, error_cb=on_error, allow_reconnect=False)
    try:
        store = await nc.jetstream().create_object_store(authz.document_bucket(2031))
        await store.put("sha256-x.pdf", PDF)
        assert (await store.get("sha256-x.pdf")).data == PDF
        for subject in (f"$JS.API.STREAM.PURGE.{authz.EVENTS_STREAM}", f"$JS.API.STREAM.DELETE.{authz.EVENTS_STREAM}", "$O.someone-else.C.x"):
            await nc.publish(subject, b"{}")
        with pytest.raises(nats.errors.Error):  # another bucket's stream cannot be made
            await nc.jetstream().create_object_store("another-bucket")
        await nc.flush()
        await asyncio.sleep(0.2)  # the server's -ERR lines follow the PONG closely
        denied = " ".join(errors).lower()
        assert f"stream.purge.{authz.EVENTS_STREAM}".lower() in denied and "$o.someone-else.c.x" in denied
    finally:
        await nc.close()


async def test_a_verifier_opens_the_documents_of_a_proposal_under_verification(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    """Registration and verification both running: the unit's PDF travels with the forwarded
    proposal; once verification holds it, a verifier may open it, and not before."""
    from contracts.base import digest_ids
    from services.verification.app import create_app as verification_app
    from tests.support import eventually
    from tests.verification.test_verification import cmd as ver_cmd

    async with (
        running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
        running(verification_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"),
    ):
        await reg.setup_call(nc, quota=3)
        async with portal(nats_url, tmp_path, reg.YEAR) as app:
            for role, who in ((Role.UNIT, "KAB-MALANG-U01"), (Role.AGENCY, "KAB-MALANG"), (Role.VERIFIER, "V01")):
                await account(app, role, who)
            async with logged_in(app, "KAB-MALANG-U01") as unit:
                form = await unit.get("/unit/new")
                ok = await unit.post("/unit/new", data={**FIELDS, "csrf_token": csrf_of(form.text)}, files={"documents": ("proposal.pdf", PDF, "application/pdf")})
                assert ok.status_code == 303, ok.text
                pid = ok.headers["location"].rsplit(":", 1)[1]
            path = f"/proposals/{pid}/documents/sha256-{hashlib.sha256(PDF).hexdigest()}.pdf"
            async with logged_in(app, "V01") as verifier:
                assert (await verifier.get(path)).status_code == 404  # not under verification yet
            async with logged_in(app, "KAB-MALANG") as agency:
                page = await agency.get("/agency")
                assert f'href="/proposals/{pid}/documents"' in page.text
                assert (await agency.post(f"/agency/proposals/{pid}/forward", data={"csrf_token": csrf_of(page.text)})).status_code == 303
            body = {
                "request_id": "start", "cycle_year": reg.YEAR, "expected": {"count": 1, "digest": digest_ids([pid])},
                "call_closed_at": "2031-04-30T12:00:00+07:00", "deadline": "2031-05-15T16:00:00+07:00",
                "rules": {"categories": ["kesehatan"], "review_required": True}, "at": "2031-04-30T12:00:00+07:00",
            }  # fmt: skip

            async def started():  # type: ignore[no-untyped-def]
                r = await request(nc, ver_cmd("start_verification"), body)
                return r if r["ok"] else None

            await eventually(started)
            async with logged_in(app, "V01") as verifier:
                pending = await verifier.get("/verifier")
                assert f'href="/proposals/{pid}/documents"' in pending.text
                got = await verifier.get(path)
                assert got.status_code == 200 and got.content == PDF


async def test_a_juror_assigned_the_proposal_opens_its_documents_and_another_does_not(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    """Registration (the unit's upload, year 2031) and scoring (a desk stage whose entrants include
    that proposal): the jurors it is assigned to open its PDF, the others get 404."""
    from contracts.base import digest_ids
    from contracts.verification import (
        ProposalVerified,
        VerificationClosed,
        VerificationClosedSummary,
        VerifiedProposal,
    )
    from services.scoring.app import create_app as scoring_app
    from tests.scoring import test_service as sco
    from tests.support import eventually

    async with (
        running(registration_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
        running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"),
    ):
        await reg.setup_call(nc, quota=3)
        async with portal(nats_url, tmp_path, reg.YEAR) as app:
            await account(app, Role.UNIT, "KAB-MALANG-U01")
            async with logged_in(app, "KAB-MALANG-U01") as unit:
                form = await unit.get("/unit/new")
                ok = await unit.post("/unit/new", data={**FIELDS, "csrf_token": csrf_of(form.text)}, files={"documents": ("proposal.pdf", PDF, "application/pdf")})
                pid = ok.headers["location"].rsplit(":", 1)[1]
        # the proposal reaches the desk stage of a later cycle's scoring among four others
        entrants = [(pid, "umum", "KAB-MALANG"), *sco.PROPOSALS[1:]]
        assert (await request(nc, sco.cmd("import_jurors"), {"request_id": "j", "jurors": sco.JURORS}))["ok"]
        for p, group, agency in entrants:
            evt = ProposalVerified(cycle_year=sco.YEAR, proposal=VerifiedProposal(id=p, title=f"Inovasi {p}", group=group, category="kesehatan", unit_code=f"{agency}-U1", unit_name="Unit", agency_code=agency, agency_name=agency))
            await js.publish(evt.subject(), evt.model_dump_json().encode())
        ids = [p for p, _, _ in entrants]
        summary = VerificationClosedSummary(cycle_year=sco.YEAR, eligible=len(ids), disqualified=0, overridden=0, eligible_digest=digest_ids(ids))
        closed = VerificationClosed(cycle_year=sco.YEAR, summary=summary, eligible_ids=ids)
        await js.publish(closed.subject(), closed.model_dump_json().encode())
        body = {**sco.open_body(), "entrants": {"source": "verification", "expected": {"count": len(ids), "digest": digest_ids(ids)}}, "divergence_threshold": 9.5}

        async def opened():  # type: ignore[no-untyped-def]
            r = await request(nc, sco.cmd("open_stage"), body)
            return r if r["ok"] else None

        await eventually(opened)
        status = (await request(nc, sco.cmd("stage_status"), {"cycle_year": sco.YEAR, "stage": "desk", "per_juror": True}))["data"]
        holders = {j["juror_id"] for j in status["per_juror"] if pid in j["missing"]}
        others = {j["id"] for j in sco.JURORS} - holders
        assert holders and others
        path = f"/proposals/{pid}/documents/sha256-{hashlib.sha256(PDF).hexdigest()}.pdf"
        async with portal(nats_url, tmp_path, sco.YEAR) as app:
            for juror in sorted(holders | others):
                await account(app, Role.JUROR, juror)
                async with logged_in(app, juror) as c:
                    got = await c.get(path)
                    if juror in holders:
                        assert got.status_code == 200 and got.content == PDF, juror
                        page = await c.get(f"/proposals/{pid}/documents")
                        assert "proposal.pdf" in page.text and "admin@malangkab.go.id" not in page.text  # no contact details
                    else:
                        assert got.status_code == 404, juror
