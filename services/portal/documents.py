"""Proposal documents: the PDFs a unit uploads with its proposal, checked (size, and the real PDF
header, not the file name) and kept in the cycle's JetStream Object Store bucket, so documents
live on the same replicated engine as the events.

An object is named by its content (``sha256-<hex>.pdf``): uploading the same file twice stores it
once. The proposal records it as a ``DocumentRef`` whose ``uri`` is ``nats-os://<bucket>/<name>``
(the digest is in the name); the portal's own table remembers which unit uploaded which object,
so a form can only attach what its own unit uploaded."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa
from faststream.nats import NatsBroker
from nats.js.api import ObjectMeta, ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore
from sqlmodel import col

from services.common.authz import document_bucket
from services.common.db import Database
from services.portal.store import DocumentRow

PDF_MAGIC = b"%PDF-"
SCHEME = "nats-os://"
_URI = re.compile(r"^nats-os://(?P<bucket>bfest-docs-\d{4})/(?P<name>sha256-[0-9a-f]{64}\.pdf)$")
KIND = "proposal"


class DocumentRefused(Exception):
    """An upload the portal will not keep, with the message shown next to the file field."""

    def __init__(self, message_id: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_id = message_id
        self.message_en = message_en


@dataclass(frozen=True)
class StoredDocument:
    uri: str
    filename: str
    size: int
    sha256: str


def check_pdf(filename: str, data: bytes, max_bytes: int, size: int | None = None) -> None:
    """Refuse an empty file, one over ``max_bytes``, or one that is not a PDF by its content (a
    PDF starts with ``%PDF-``; the name's extension proves nothing). ``size``: the whole file's,
    when ``data`` is only its start."""
    shown = filename or "berkas"
    size = len(data) if size is None else size
    if not size:
        raise DocumentRefused(f"Berkas {shown} kosong.", f"The file {shown} is empty.")
    if size > max_bytes:
        mb = max_bytes / (1024 * 1024)
        raise DocumentRefused(
            f"Berkas {shown} terlalu besar ({size / (1024 * 1024):.1f} MB): maksimal {mb:g} MB.",
            f"The file {shown} is too large: at most {mb:g} MB.",
        )
    if not data.startswith(PDF_MAGIC):
        raise DocumentRefused(
            f"Berkas {shown} bukan PDF: unggah dokumen dalam format PDF.",
            f"The file {shown} is not a PDF: upload the document as a PDF.",
        )


def parse_uri(uri: str) -> tuple[str, str] | None:
    """``(bucket, object name)`` of a document the portal stored, else ``None`` (a link elsewhere)."""
    m = _URI.match(uri)
    return (m["bucket"], m["name"]) if m else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Documents:
    """The cycle buckets (made on first use) and the portal's record of who uploaded what."""

    def __init__(self, broker: NatsBroker, db: Database, max_bytes: int, replicas: int = 1) -> None:
        self._broker = broker  # its connection is made in the app's lifespan
        self.db = db
        self.max_bytes = max_bytes
        self.replicas = replicas
        self._stores: dict[str, ObjectStore] = {}

    async def _bucket(self, bucket: str, create: bool) -> ObjectStore:
        if bucket in self._stores:
            return self._stores[bucket]
        js = self._broker.connection.jetstream()
        try:
            store = await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):
            if not create:
                raise ObjectNotFoundError from None
            config = ObjectStoreConfig(
                bucket=bucket,
                description="Bureaucracy Fest proposal documents (PDF)",
                storage=StorageType.FILE,
                replicas=self.replicas,
            )
            store = await js.create_object_store(bucket, config=config)
        self._stores[bucket] = store
        return store

    async def put(self, year: int, unit_code: str, filename: str, data: bytes) -> StoredDocument:
        """Check and keep one upload of ``unit_code`` (raises :class:`DocumentRefused`)."""
        check_pdf(filename, data, self.max_bytes)
        digest = hashlib.sha256(data).hexdigest()
        bucket = document_bucket(year)
        name = f"sha256-{digest}.pdf"
        store = await self._bucket(bucket, create=True)
        try:
            info = await store.get_info(name)
            present = info.size == len(data)
        except ObjectNotFoundError:
            present = False
        if not present:  # content-addressed: the same bytes are stored once
            await store.put(name, data, meta=ObjectMeta(name=name, description=filename[:200]))
        doc = StoredDocument(f"{SCHEME}{bucket}/{name}", filename[:200] or name, len(data), digest)
        async with self.db.session() as s, s.begin():
            row = await s.get(DocumentRow, (doc.uri, unit_code))
            if row is None:
                s.add(
                    DocumentRow(
                        uri=doc.uri,
                        unit_code=unit_code,
                        filename=doc.filename,
                        size=doc.size,
                        sha256=digest,
                        uploaded_at=_now(),
                    )
                )
            else:
                row.filename = doc.filename
        return doc

    async def uploaded_by(self, unit_code: str, uris: list[str]) -> list[StoredDocument]:
        """Those of ``uris`` that ``unit_code`` uploaded (a form cannot attach another unit's)."""
        if not uris:
            return []
        async with self.db.session() as s:
            rows = (
                (
                    await s.execute(
                        sa.select(DocumentRow).where(
                            col(DocumentRow.unit_code) == unit_code, col(DocumentRow.uri).in_(uris)
                        )
                    )
                )
                .scalars()
                .all()
            )
        by_uri = {r.uri: r for r in rows}
        return [
            StoredDocument(u, by_uri[u].filename, by_uri[u].size, by_uri[u].sha256)
            for u in dict.fromkeys(uris)
            if u in by_uri
        ]

    async def described(self, uris: list[str]) -> dict[str, StoredDocument]:
        """What the portal knows of stored documents (file name, size) for showing them."""
        if not uris:
            return {}
        async with self.db.session() as s:
            rows = (await s.execute(sa.select(DocumentRow).where(DocumentRow.uri.in_(uris)))).scalars().all()  # type: ignore[attr-defined]
        return {r.uri: StoredDocument(r.uri, r.filename, r.size, r.sha256) for r in rows}

    async def read(self, uri: str) -> bytes:
        """The stored bytes (raises ``ObjectNotFoundError``); the digest is checked by nats-py."""
        parsed = parse_uri(uri)
        if parsed is None:
            raise ObjectNotFoundError
        bucket, name = parsed
        store = await self._bucket(bucket, create=False)
        result = await store.get(name)
        data = result.data or b""
        if hashlib.sha256(data).hexdigest() != name[len("sha256-") : -len(".pdf")]:
            raise ObjectNotFoundError  # not what the proposal recorded
        return data
