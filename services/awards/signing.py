"""Certificates nobody can forge or guess: every certificate is a record (year, award, winner,
code) signed with the awards service's Ed25519 key.

- The short code printed on the piagam (``BF26-XXXX-XXXX-XXXX``, 60 bits) is derived from a
  signature over the record, so only the key's holder can make one, and it is the same for the
  same record and key (a retried ``determine_awards`` prints the same code).
- The full record with its 64-byte signature is kept by the service (``verify_certificate``)
  and published beside the PDF (``certificates/<code>.json``) with the public key
  (``certificate-public-key.pem``), so anyone can check a certificate offline:
  ``python -m services.awards.signing verify certificates/<code>.json --public-key certificate-public-key.pem``.
- The key comes from settings (``BFEST_CERTIFICATE_KEY_FILE`` or ``BFEST_CERTIFICATE_KEY``). In
  development, without one, a key is generated once under ``var/keys/``; with
  ``BFEST_PROFILE=production`` the service refuses to start without one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.settings import Settings

RECORD_VERSION = 1
CODE_DOMAIN = b"bfest-certificate-code:v1\n"
DEV_KEY_NAME = "certificate-signing-key.pem"
PUBLIC_KEY_NAME = "certificate-public-key.pem"


class SigningKeyError(RuntimeError):
    """The service cannot get its signing key (said in one line; the service does not start)."""


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the record as JSON, keys sorted, no spaces, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def certificate_record(
    year: int,
    award_key: str,
    award_name: str,
    unit_code: str,
    unit_name: str,
    proposal_id: str | None,
    title: str | None,
    code: str | None = None,
    attests: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a certificate attests: the year, the award, the winner (and its innovation), the code;
    a certificate of the tracks beside KOVABLIK and WBK also its track, kind, grade and total
    (``attests``: see :func:`attested`)."""
    record: dict[str, Any] = {
        "v": RECORD_VERSION,
        "year": year,
        "award": {"key": award_key, "name": award_name},
        "winner": {"unit_code": unit_code, "unit_name": unit_name, "proposal_id": proposal_id, "title": title},
    }
    if attests:
        record["attests"] = attests
    if code is not None:
        record["code"] = code
    return record


PLAIN_TRACKS = ("kovablik", "wbk")
"""The tracks whose certificates' records say only the award and the winner, as before tracks
(so a year of KOVABLIK and WBK signs, and codes, exactly what it did)."""


def attested(track: str, kind: str, grade: str | None, score: str | None) -> dict[str, Any] | None:
    """What a certificate of another track attests beside the award: the track, the certificate's
    kind (``award`` or ``sakip_result``), and for an evaluation its grade and total as published."""
    if track in PLAIN_TRACKS and kind == "award" and grade is None:
        return None
    out: dict[str, Any] = {"track": track, "kind": kind}
    if grade is not None:
        out["grade"] = grade
    if score is not None:
        out["score"] = score
    return out


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public)

    def issue(self, record: dict[str, Any]) -> dict[str, Any]:
        """Give ``record`` (without a code) its code and sign it: the signed certificate record,
        ``{"record": …, "key_id": …, "signature": base64}``."""
        year = int(record["year"])
        mac = hashlib.sha256(self.private.sign(CODE_DOMAIN + canonical(record))).digest()
        text = base64.b32encode(mac).decode()[:12]
        code = f"BF{year % 100:02d}-{text[0:4]}-{text[4:8]}-{text[8:12]}"
        full = {**record, "code": code}
        signature = base64.b64encode(self.private.sign(canonical(full))).decode()
        return {"record": full, "key_id": self.key_id, "signature": signature}


def verify(public: Ed25519PublicKey, record: dict[str, Any], signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public``'s signature of ``record``."""
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(record))
    except (InvalidSignature, ValueError):
        return False
    return True


def _load_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"the certificate signing key in {where} is not a PEM private key without a password ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the certificate signing key in {where} is not an Ed25519 key")
    return key


def _development_key(path: Path) -> Ed25519PrivateKey:
    """The development stack's key: generated on the first start, readable by its owner only, and
    made exactly once even when several replicas start together (the file appears whole, by link)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another replica made it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    return _load_pem(path.read_bytes(), str(path))


def load_signer(settings: Settings) -> Signer:
    """The signing key from settings; in development a generated one under ``var/keys/``. A
    production profile without a key, or with a public URL that is not https, is refused."""
    if settings.production and not settings.public_url.startswith("https://"):
        raise SigningKeyError(f"BFEST_PROFILE=production needs BFEST_PUBLIC_URL to be an https URL (the certificates' QR codes open it), not {settings.public_url!r}")
    if settings.certificate_key is not None:
        return Signer(_load_pem(settings.certificate_key.get_secret_value().encode(), "BFEST_CERTIFICATE_KEY"))
    if settings.certificate_key_file is not None:
        try:
            data = settings.certificate_key_file.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"cannot read the certificate signing key BFEST_CERTIFICATE_KEY_FILE={settings.certificate_key_file}: {exc.strerror}") from None
        return Signer(_load_pem(data, str(settings.certificate_key_file)))
    if settings.production:
        raise SigningKeyError(
            "BFEST_PROFILE=production and no certificate signing key: set BFEST_CERTIFICATE_KEY_FILE to an Ed25519 private key (PEM), "
            "e.g. made by `openssl genpkey -algorithm ed25519 -out key.pem`"
        )
    return Signer(_development_key(settings.var_dir / "keys" / DEV_KEY_NAME))


def _cli(argv: list[str] | None = None) -> int:
    """Offline verification of a published certificate record against the published public key."""
    parser = argparse.ArgumentParser(prog="python -m services.awards.signing", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="verb", required=True)
    check = sub.add_parser("verify", help="check certificates/<code>.json against certificate-public-key.pem")
    check.add_argument("record", type=Path)
    check.add_argument("--public-key", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        public = serialization.load_pem_public_key(args.public_key.read_bytes())
        signed = json.loads(args.record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not isinstance(public, Ed25519PublicKey):
        print("error: the public key is not an Ed25519 key", file=sys.stderr)
        return 2
    record = signed.get("record") or {}
    if signed.get("key_id") != key_id(public) or not verify(public, record, str(signed.get("signature", ""))):
        print(f"INVALID: {args.record} is not signed by {key_id(public)}")
        return 1
    award, winner = record.get("award", {}), record.get("winner", {})
    grade = (record.get("attests") or {}).get("grade")
    graded = f" — {grade}" if grade else ""
    print(f"valid: {record.get('code')} — {award.get('name')} {record.get('year')} — {winner.get('unit_name')}{graded} (signed by {key_id(public)})")
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
