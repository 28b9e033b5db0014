"""Certificates nobody can forge or guess (issue 21 item 4), over a real nats-server: a real code
verifies with the signer's key id, the award and the winner; an invented, a tampered or another
key's certificate does not; the QR code and footer carry the public verification URL; a
production profile without a key refuses to start, in one line."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from contracts import subjects
from contracts.base import digest_ids
from contracts.scoring import ShortlistFinal
from services.awards import documents, signing
from services.awards.app import create_app
from services.common.settings import Settings
from tests.awards.test_awards import YEAR, determine_body, rows, wbk
from tests.support import eventually, request, running

PUBLIC_URL = "https://bfest.jatimprov.go.id"


def cmd(name: str) -> str:
    return subjects.command("awards", name)


def pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


async def ceremony(nc: Any, js: Any) -> dict[str, Any]:
    final = ShortlistFinal(cycle_year=YEAR, stage="field", announcement_no="007/PANSEL", rows=rows(), digest=digest_ids(r.proposal_id for r in rows()))
    await js.publish(final.subject(), final.model_dump_json().encode())
    for unit, decision in (("OPD-X-U01", "layak_wbk"), ("OPD-X-U02", "belum_layak")):
        evt = wbk(unit, decision)
        await js.publish(evt.subject(), evt.model_dump_json().encode())

    async def determined():  # type: ignore[no-untyped-def]
        r = await request(nc, cmd("determine_awards"), determine_body("det-sign"))
        return r if r["ok"] else None

    await eventually(determined)
    return (await request(nc, cmd("get_results"), {"cycle_year": YEAR}))["data"]


async def test_a_signed_certificate_verifies_and_a_forged_one_does_not(nats_url, nc, js, tmp_path, monkeypatch):
    qr_values: list[str] = []
    real_qr = documents.QrCodeWidget
    monkeypatch.setattr(documents, "QrCodeWidget", lambda value, *a, **k: (qr_values.append(value), real_qr(value, *a, **k))[1])
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", public_url=PUBLIC_URL)
    db = tmp_path / "a.db"
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{db}"):
        results = await ceremony(nc, js)
        winner = next(c for c in results["categories"] if c["key"] == "top")["winners"][0]
        code = winner["certificate_code"]

        # the public key is published beside the results; its id names the signer
        public_pem = (tmp_path / "results" / signing.PUBLIC_KEY_NAME).read_bytes()
        public = serialization.load_pem_public_key(public_pem)
        assert (tmp_path / "results" / str(YEAR) / signing.PUBLIC_KEY_NAME).read_bytes() == public_pem
        assert results["files"]["public_key"].endswith(signing.PUBLIC_KEY_NAME)
        key_id = signing.key_id(public)  # type: ignore[arg-type]

        ok = (await request(nc, cmd("verify_certificate"), {"code": code.lower()}))["data"]
        assert ok["valid"] is True and ok["key_id"] == key_id and ok["reason"] is None
        assert (ok["award_key"], ok["recipient"], ok["unit_code"], ok["proposal_id"]) == ("top", winner["unit_name"], winner["unit_code"], winner["proposal_id"])
        assert ok["verify_url"] == f"{PUBLIC_URL}/verify/{code}"

        # a code one character off, and a well-formed invented one
        for forged in (code[:-1] + ("A" if code[-1] != "A" else "B"), f"BF{YEAR % 100}-AAAA-BBBB-CCCC"):
            bad = (await request(nc, cmd("verify_certificate"), {"code": forged}))["data"]
            assert bad["valid"] is False and bad["reason"].startswith("unknown code") and bad["recipient"] is None

        # the QR code holds the public verification URL and the footer shows it, not a NATS subject
        assert f"{PUBLIC_URL}/verify/{code}" in qr_values
        assert all(v.startswith(f"{PUBLIC_URL}/verify/BF") for v in qr_values)
        text = pypdf.PdfReader(winner["certificate_path"]).pages[0].extract_text()
        assert f"{PUBLIC_URL}/verify/{code}" in text and "bfest.awards.cmd" not in text

        # offline: the signed record beside the PDF checks against the published public key
        record_file = Path(winner["certificate_path"]).with_suffix(".json")
        signed = json.loads(record_file.read_text(encoding="utf-8"))
        assert signed["key_id"] == key_id and signed["record"]["code"] == code
        assert signed["record"]["winner"]["unit_code"] == winner["unit_code"] and signed["record"]["award"]["key"] == "top"
        key_file = tmp_path / "results" / signing.PUBLIC_KEY_NAME
        offline = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.awards.signing", "verify", str(record_file), "--public-key", str(key_file)], capture_output=True, text=True)
        assert offline.returncode == 0 and offline.stdout.startswith(f"valid: {code}"), offline
        altered = tmp_path / "altered.json"
        altered.write_text(json.dumps({**signed, "record": {**signed["record"], "winner": {**signed["record"]["winner"], "unit_name": "Unit Palsu"}}}))
        offline = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "services.awards.signing", "verify", str(altered), "--public-key", str(key_file)], capture_output=True, text=True)
        assert offline.returncode == 1 and offline.stdout.startswith("INVALID"), offline

        # someone with write access to the table changes the winner: the signature gives it away
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE awd_certificate SET recipient = 'Unit Palsu' WHERE code = ?", (code,))
        tampered = (await request(nc, cmd("verify_certificate"), {"code": code}))["data"]
        assert tampered["valid"] is False and "altered" in tampered["reason"] and tampered["recipient"] is None
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE awd_certificate SET recipient = ? WHERE code = ?", (winner["unit_name"], code))
        assert (await request(nc, cmd("verify_certificate"), {"code": code}))["data"]["valid"] is True

    # the same table served with another key: nothing it signed verifies
    other = Settings(var_dir=tmp_path, results_dir=tmp_path / "results2", public_url=PUBLIC_URL, certificate_key=SecretStr(pem(Ed25519PrivateKey.generate())))
    async with running(create_app(other), nats_url, f"sqlite+aiosqlite:///{db}"):
        foreign = (await request(nc, cmd("verify_certificate"), {"code": code}))["data"]
        assert foreign["valid"] is False and foreign["key_id"] == key_id and "not by this service's key" in foreign["reason"]


def test_codes_are_the_same_for_the_same_record_and_key_and_unguessable_without_it():
    key = signing.Signer(Ed25519PrivateKey.generate())
    record = signing.certificate_record(2026, "top", "TOP 10", "KAB-MALANG-U01", "Puskesmas Kepanjen", "P2026-00001", "Antrian Online")
    first, again = key.issue(record), key.issue(record)
    assert first == again and first["record"]["code"].startswith("BF26-") and len(first["record"]["code"]) == 19
    assert signing.Signer(Ed25519PrivateKey.generate()).issue(record)["record"]["code"] != first["record"]["code"]
    other_winner = signing.certificate_record(2026, "top", "TOP 10", "KAB-MALANG-U02", "Puskesmas Kepanjen", "P2026-00001", "Antrian Online")
    assert key.issue(other_winner)["record"]["code"] != first["record"]["code"]
    assert signing.verify(key.public, first["record"], first["signature"])
    assert not signing.verify(key.public, {**first["record"], "year": 2027}, first["signature"])
    assert not signing.verify(key.public, first["record"], "not base64!")


def test_the_development_key_is_made_once_under_var_and_kept_private(tmp_path):
    settings = Settings(var_dir=tmp_path)
    first = signing.load_signer(settings)
    path = tmp_path / "keys" / signing.DEV_KEY_NAME
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert signing.load_signer(settings).key_id == first.key_id  # the next start reuses it
    from_file = signing.load_signer(Settings(var_dir=tmp_path / "elsewhere", certificate_key_file=path))
    assert from_file.key_id == first.key_id and not (tmp_path / "elsewhere" / "keys").exists()
    with pytest.raises(signing.SigningKeyError, match="not a PEM private key"):
        signing.load_signer(Settings(var_dir=tmp_path, certificate_key=SecretStr("not a key")))


def _bfest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bfest = Path(sys.executable).parent / "bfest"
    return subprocess.run([str(bfest), "service", "run", "awards"], capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_a_production_service_without_its_key_refuses_to_start_in_one_line(tmp_path):
    base = {"BFEST_VAR_DIR": str(tmp_path), "BFEST_NATS_URL": "nats://127.0.0.1:1", "COLUMNS": "200"}
    for name in ("BFEST_CERTIFICATE_KEY", "BFEST_CERTIFICATE_KEY_FILE", "BFEST_PUBLIC_URL"):
        base.pop(name, None)
    no_key = _bfest({**base, "BFEST_PROFILE": "production", "BFEST_PUBLIC_URL": PUBLIC_URL})
    assert no_key.returncode == 1, no_key
    lines = no_key.stderr.strip().splitlines()
    assert len(lines) == 1 and "no certificate signing key" in lines[0] and "BFEST_CERTIFICATE_KEY_FILE" in lines[0], no_key.stderr
    assert not (tmp_path / "keys").exists()  # nothing generated in production
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(Ed25519PrivateKey.generate()))
    plain = _bfest({**base, "BFEST_PROFILE": "production", "BFEST_CERTIFICATE_KEY_FILE": str(key_file), "BFEST_PUBLIC_URL": "http://bfest.example"})
    assert plain.returncode == 1 and len(plain.stderr.strip().splitlines()) == 1 and "https" in plain.stderr, plain

