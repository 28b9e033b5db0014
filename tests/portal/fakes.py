"""Stand-ins for the services' side of the tracks, on the real nats-server: tiny responders that
take a contract's command (validated by the contract's own class, with the acting person from the
``Bfest-Actor`` header) and answer with a payload the contract's reply class validates. They hold
no rule of the platform: the SAKIP "rubric" below is test data shaped like the documented keys,
so the portal's pages can be driven before (and independently of) the services' branches.

Each fake records what it received (``received``), so a test checks what the portal sent: who
acted comes from the session, never from the form."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import BaseModel

from contracts.awards import GetResults, ResultsView
from contracts.base import ACTOR_HEADER, Actor, Command, Reply
from contracts.registration import (
    ArchiveEntry,
    ArchivePage,
    ArchiveRef,
    CallView,
    GetArchived,
    GetCall,
    GetParticipant,
    GetProposal,
    ListParticipants,
    ListProposals,
    Participant,
    ParticipantPage,
    ProposalPage,
    ProposalView,
    SearchArchive,
    SubmitProposal,
    SubmitRisalah,
)
from contracts.verification import (
    EnterEvaluation,
    EvaluationPage,
    EvaluationStatus,
    EvaluationView,
    EvaluationWindow,
    GetEvaluation,
    ListEvaluations,
    ReviewEvaluation,
)

NOW = dt.datetime(2033, 5, 1, 3, 0, tzinfo=dt.UTC)
Handler = Callable[[Any, Actor | None], Awaitable[Reply] | Reply]

SAKIP_TEST_RUBRIC = {"planning": ("Perencanaan Kinerja", 30.0), "measurement": ("Pengukuran Kinerja", 30.0), "reporting": ("Pelaporan Kinerja", 15.0), "internal_evaluation": ("Evaluasi Akuntabilitas Kinerja Internal", 25.0)}  # fmt: skip
"""Test data, not the rubric: the components' names and maxima a SAKIP sheet comes back with."""
TEST_BANDS = ((90.0, "AA", "Sangat Memuaskan"), (80.0, "A", "Memuaskan"), (70.0, "BB", "Sangat Baik"), (60.0, "B", "Baik"), (0.0, "C", "Kurang"))  # fmt: skip


@contextlib.asynccontextmanager
async def responding(nc: NATS, handlers: dict[type[Command], Handler]) -> AsyncIterator[list[tuple[Command, Actor | None]]]:
    """Answer each command class's subject with its handler while the block runs."""
    received: list[tuple[Command, Actor | None]] = []

    def answer(cls: type[Command], handler: Handler) -> Callable[[Msg], Awaitable[None]]:
        async def on(msg: Msg) -> None:
            header = (msg.headers or {}).get(ACTOR_HEADER)
            actor = Actor.model_validate_json(header) if header else None
            cmd = cls.model_validate_json(msg.data)
            received.append((cmd, actor))
            reply = handler(cmd, actor)
            if not isinstance(reply, Reply):
                reply = await reply
            await msg.respond(reply.model_dump_json().encode())

        return on

    subs = [await nc.subscribe(cls.subject(), cb=answer(cls, h)) for cls, h in handlers.items()]
    await nc.flush()
    try:
        yield received
    finally:
        for sub in subs:
            await sub.unsubscribe()


def ok(model: BaseModel) -> Reply:
    return Reply.success(model.model_dump(mode="json"))


class Evaluations:
    """Verification's evaluation commands, answered from memory."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.sheets: dict[tuple[str, str], EvaluationView] = {}

    def handlers(self) -> dict[type[Command], Handler]:
        return {
            EnterEvaluation: self.enter, ReviewEvaluation: self.review, ListEvaluations: self.list,
            GetEvaluation: self.get, EvaluationStatus: self.status,
        }  # fmt: skip

    def _parts(self, cmd: EnterEvaluation) -> list[dict[str, Any]] | Reply:
        if cmd.kind == "sakip":
            parts = []
            for key, (name, maximum) in SAKIP_TEST_RUBRIC.items():
                value = cmd.values.get(key)
                if value is None or not 0 <= value <= maximum:
                    return Reply.failure("invalid_sheet", f"{key} is {value}, outside 0..{maximum:g}", {"field": key, "max": str(maximum)})
                parts.append({"key": key, "name": name, "value": value, "max": maximum})
            return parts
        if cmd.kind == "rb":
            return [{"key": "index", "name": "Indeks Reformasi Birokrasi", "value": cmd.values["index"], "max": 100.0}]
        sakip = self.sheets.get(("sakip", cmd.subject_code))
        return [
            {"key": "sakip", "name": "Nilai SAKIP", "value": sakip.total if sakip else 0.0, "weight": 0.3, "source": f"sakip {self.year} (approved)" if sakip else "missing: counted as 0"},
            {"key": "rb", "name": "Indeks RB", "value": 0.0, "weight": 0.3, "source": "missing: counted as 0"},
            {"key": "zona_integritas", "name": "Zona Integritas", "value": 75.0, "weight": 0.2, "source": f"wbk {self.year}: mean LKE total of 2 unit(s)"},
            {"key": "work_culture", "name": "Budaya Kerja", "value": cmd.values["work_culture"], "weight": 0.2, "source": "sheet"},
        ]  # fmt: skip

    def enter(self, cmd: EnterEvaluation, actor: Actor | None) -> Reply:
        if actor is None or actor.role != "evaluator" or actor.id != cmd.evaluator_id:
            return Reply.failure("not_an_evaluator", "not an evaluator")
        old = self.sheets.get((cmd.kind, cmd.subject_code))
        if old is not None and old.state == "approved":
            return Reply.failure("already_approved", "approved")
        parts = self._parts(cmd)
        if isinstance(parts, Reply):
            return parts
        weighted = any(p.get("weight") for p in parts)
        total = round(sum(p["value"] * (p.get("weight") or 1) for p in parts), 2) if weighted else round(sum(p["value"] for p in parts), 2)
        grade, label = next((g, lbl) for edge, g, lbl in TEST_BANDS if total >= edge)
        view = EvaluationView(
            cycle_year=cmd.cycle_year, kind=cmd.kind, subject_code=cmd.subject_code, subject_name=cmd.subject_name,
            subject_kind=cmd.subject_kind, rubric=f"{cmd.kind}-test", rubric_source="test data", parts=parts, total=total,
            grade=grade, label=label, state="entered", evaluator_id=cmd.evaluator_id, entered_at=NOW, note=cmd.note,
        )  # fmt: skip
        self.sheets[(cmd.kind, cmd.subject_code)] = view
        return ok(view)

    def review(self, cmd: ReviewEvaluation, actor: Actor | None) -> Reply:
        if actor is None or actor.role != "reviewer" or actor.id != cmd.reviewer_id:
            return Reply.failure("not_a_reviewer", "not a reviewer")
        view = self.sheets.get((cmd.kind, cmd.subject_code))
        if view is None:
            return Reply.failure("not_found", "no such sheet")
        if view.evaluator_id == cmd.reviewer_id:
            return Reply.failure("own_sheet", f"{cmd.reviewer_id} entered this sheet: another reviewer approves it")
        if not cmd.approve and not cmd.reason:
            return Reply.failure("validation_error", "a return needs its reason")
        update = {"state": "approved" if cmd.approve else "returned", "reviewer_id": cmd.reviewer_id, "reviewed_at": NOW, "review_reason": cmd.reason}
        self.sheets[(cmd.kind, cmd.subject_code)] = reviewed = view.model_copy(update=update)
        return ok(reviewed)

    def list(self, cmd: ListEvaluations, actor: Actor | None) -> Reply:
        items = [v for (kind, _), v in sorted(self.sheets.items()) if kind == cmd.kind and cmd.state in (None, v.state)]
        return ok(EvaluationPage(items=items, total=len(items)))

    def get(self, cmd: GetEvaluation, actor: Actor | None) -> Reply:
        view = self.sheets.get((cmd.kind, cmd.subject_code))
        return ok(view) if view else Reply.failure("not_found", "no such sheet")

    def status(self, cmd: EvaluationStatus, actor: Actor | None) -> Reply:
        mine = [v for (kind, _), v in self.sheets.items() if kind == cmd.kind]
        counts = {s: sum(1 for v in mine if v.state == s) for s in ("entered", "approved", "returned")}
        return ok(EvaluationWindow(cycle_year=cmd.cycle_year, kind=cmd.kind, state="open", rubric=f"{cmd.kind}-test", deadline=NOW + dt.timedelta(days=30), **counts))


class Registration:
    """Registration's risalah, proposal and archive commands, answered from memory."""

    def __init__(self, year: int, archive: list[ArchiveEntry] | None = None) -> None:
        self.year = year
        self.proposals: dict[str, ProposalView] = {}
        self.archive = {e.id: e for e in archive or []}

    def handlers(self) -> dict[type[Command], Handler]:
        return {
            SubmitRisalah: self.submit_risalah, SubmitProposal: self.submit_proposal, ListProposals: self.list,
            GetProposal: self.get, GetCall: self.call, SearchArchive: self.search, GetArchived: self.archived,
            ListParticipants: self.participants, GetParticipant: self.participant,
        }  # fmt: skip

    PARTICIPANTS = (
        Participant(code="KAB-JEMBER", name="Kabupaten Jember", kind="kabupaten"),
        Participant(code="OPD-DINKES", name="Dinas Kesehatan", kind="opd"),
        Participant(code="OPD-DINKES-U01", name="UPT Dinkes 1", kind="upt", parent_code="OPD-DINKES"),
    )

    def participants(self, cmd: ListParticipants, actor: Actor | None) -> Reply:
        return ok(ParticipantPage(items=list(self.PARTICIPANTS), total=len(self.PARTICIPANTS), offset=0))

    def participant(self, cmd: GetParticipant, actor: Actor | None) -> Reply:
        found = next((p for p in self.PARTICIPANTS if p.code == cmd.code), None)
        return ok(found) if found else Reply.failure("not_found", "no such participant")

    def _store(self, cmd: SubmitRisalah | SubmitProposal, track: str, unit: str, group: str | None) -> Reply:
        pid = cmd.proposal_id or f"{'K' if track == 'kbk' else 'P'}{len(self.proposals) + 1:04d}"
        view = ProposalView(
            id=pid, cycle_year=cmd.cycle_year, track=track, group_code=group, unit_code=unit, agency_code=unit.rsplit("-", 1)[0],
            content=cmd.content, status="submitted", levels={"unit": "submitted", "agency": "pending_review", "secretariat": "not_received"},
            submitted_at=NOW, updated_at=NOW,
        )  # fmt: skip
        self.proposals[pid] = view
        return ok(view)

    def submit_risalah(self, cmd: SubmitRisalah, actor: Actor | None) -> Reply:
        if actor is None or actor.role != "kbk_group" or actor.id != cmd.group_code:
            return Reply.failure("not_your_group", "not your group")
        return self._store(cmd, "kbk", cmd.group_code.rsplit("-", 1)[0], cmd.group_code)

    def submit_proposal(self, cmd: SubmitProposal, actor: Actor | None) -> Reply:
        if cmd.content.replicates and cmd.content.replicates not in self.archive:
            return Reply.failure("unknown_original", f"the archive holds no {cmd.content.replicates}")
        return self._store(cmd, "kovablik", cmd.unit_code, None)

    def list(self, cmd: ListProposals, actor: Actor | None) -> Reply:
        items = [p for p in self.proposals.values() if cmd.track in (None, p.track) and cmd.group_code in (None, p.group_code) and cmd.unit_code in (None, p.unit_code)]
        return ok(ProposalPage(items=items, total=len(items), offset=0))

    def get(self, cmd: GetProposal, actor: Actor | None) -> Reply:
        p = self.proposals.get(cmd.proposal_id)
        return ok(p) if p else Reply.failure("not_found", "no such proposal")

    def call(self, cmd: GetCall, actor: Actor | None) -> Reply:
        return ok(CallView(cycle_year=cmd.cycle_year, track=cmd.track, state="open", opens_at=NOW, closes_at=NOW + dt.timedelta(days=20), quota_per_agency=3))

    def search(self, cmd: SearchArchive, actor: Actor | None) -> Reply:
        found = [
            e for e in self.archive.values()
            if (not cmd.text or cmd.text.lower() in (e.title + " " + e.summary).lower()) and cmd.year in (None, e.year)
            and cmd.category in (None, e.category) and cmd.group in (None, e.group) and cmd.region in (None, e.region)
        ]  # fmt: skip
        page = found[cmd.offset : cmd.offset + cmd.limit]
        more = cmd.offset + cmd.limit < len(found)
        return ok(ArchivePage(items=page, total=len(found), next_offset=cmd.offset + cmd.limit if more else None))

    def archived(self, cmd: GetArchived, actor: Actor | None) -> Reply:
        e = self.archive.get(cmd.id)
        if e is None:
            return Reply.failure("not_found", "no such archived innovation")
        ref = lambda x: ArchiveRef(id=x.id, year=x.year, title=x.title, unit_name=x.unit_name, agency_name=x.agency_name, region=x.region)  # noqa: E731
        replications = [ref(x) for x in self.archive.values() if x.replicates is not None and x.replicates.id == e.id]
        return ok(e.model_copy(update={"replications": replications}))


def archive_entries() -> list[ArchiveEntry]:
    """A small archive: an original, two replications of it in other regions, and filler for paging."""
    original = ArchiveEntry(
        id="2031-P0007", year=2031, title="Antrian Daring Puskesmas", unit_code="KAB-MALANG-U01", unit_name="Puskesmas Kepanjen",
        agency_code="KAB-MALANG", agency_name="Kabupaten Malang", region="Kabupaten Malang", category="kesehatan", group="umum",
        summary="Pendaftaran pasien dari rumah lewat aplikasi.", stage_reached="field", award="TOP 5 KOVABLIK 2031",
    )  # fmt: skip
    ref = ArchiveRef(id=original.id, year=2031, title=original.title, unit_name=original.unit_name, agency_name=original.agency_name, region=original.region)
    out = [original]
    for i, region in enumerate(("Kota Batu", "Kabupaten Jember"), start=1):
        out.append(ArchiveEntry(
            id=f"2032-P00{i}0", year=2032, title=f"Antrian Daring {region}", unit_name=f"Puskesmas {region}", agency_name=region, region=region,
            category="kesehatan", group="replikasi", summary="Replikasi antrian daring.", stage_reached="desk", replicates=ref,
        ))  # fmt: skip
    out += [
        ArchiveEntry(id=f"2030-P{i:04d}", year=2030, title=f"Inovasi Arsip {i}", unit_name=f"Unit {i}", agency_name="Kabupaten Kediri", region="Kabupaten Kediri", category="tata_kelola", group="umum", summary="Inovasi lama.")
        for i in range(1, 26)
    ]  # fmt: skip
    return out


def results_all_tracks(year: int) -> ResultsView:
    """One ceremony's results with every track: KOVABLIK, WBK, KBK winners and SAKIP/RB/CETTAR results."""

    def w(track: str, key: str, rank: int, unit: str, **kw: Any) -> dict[str, Any]:
        return {"award_key": key, "track": track, "rank": rank, "unit_code": unit.upper().replace(" ", "-"), "unit_name": unit, "certificate_code": f"BF33-{key.upper()[:4]}-{rank:04d}-AAAA", **kw}

    def part(key: str, name: str, value: float, **kw: Any) -> dict[str, Any]:
        return {"key": key, "name": name, "value": value, **kw}

    sakip = {"subject_code": "OPD-DINKES", "subject_name": "Dinas Kesehatan", "kind": "sakip", "rubric": "sakip-permenpanrb-88-2021", "total": 91.5, "grade": "AA", "label": "Sangat Memuaskan", "parts": [part("planning", "Perencanaan Kinerja", 28.0, max=30.0), part("measurement", "Pengukuran Kinerja", 27.5, max=30.0), part("reporting", "Pelaporan Kinerja", 14.0, max=15.0), part("internal_evaluation", "Evaluasi Internal", 22.0, max=25.0)]}  # fmt: skip
    rb = {"subject_code": "OPD-DINKES", "subject_name": "Dinas Kesehatan", "kind": "rb", "rubric": "rb-platform-default", "total": 82.1, "grade": "a", "label": "A (Sangat Baik)", "parts": [part("index", "Indeks RB", 82.1, max=100.0)]}  # fmt: skip
    cettar = {"subject_code": "KOTA-BATU", "subject_name": "Kota Batu", "kind": "cettar", "rubric": "cettar-platform-default", "total": 84.2, "grade": "sangat_cettar", "label": "Sangat Cettar", "parts": [part("sakip", "SAKIP", 88.0, weight=0.3, source=f"sakip {year} (approved)"), part("rb", "Indeks RB", 80.0, weight=0.3, source=f"rb {year} (approved)"), part("zona_integritas", "Zona Integritas", 79.0, weight=0.2, source=f"wbk {year}: mean LKE total of 3 unit(s)"), part("work_culture", "Budaya Kerja", 90.0, weight=0.2, source="sheet")]}  # fmt: skip
    return ResultsView.model_validate({
        "cycle_year": year, "announcement_no": f"000/{year}/BFEST",
        "categories": [
            {"key": "top", "track": "kovablik", "name_id": "TOP Inovasi KOVABLIK", "name_en": "Top innovations", "rule": "top_n", "winners": [w("kovablik", "top", 1, "Puskesmas Kepanjen", title="Antrian Daring Puskesmas", score=88.25)]},
            {"key": "wbk", "track": "wbk", "name_id": "Layak Berpredikat WBK", "name_en": "Worthy of WBK", "rule": "layak_wbk", "winners": [w("wbk", "wbk", 1, "RSUD Soetomo", score=86.0)]},
            {"key": "kbk_best", "track": "kbk", "name_id": "KBK Terbaik Klaster Pelayanan", "name_en": "Best KBK", "rule": "top_n", "winners": [w("kbk", "kbk_best", 1, "KBK Gugus Melati", title="Mengurangi Berkas Hilang", score=81.5)]},
            {"key": "sakip_aa", "track": "sakip", "name_id": "SAKIP Predikat AA", "name_en": "SAKIP grade AA", "rule": "grade", "winners": [w("sakip", "sakip_aa", 1, "Dinas Kesehatan", score=91.5, grade="AA", grade_label="Sangat Memuaskan", certificate_kind="sakip_result")]},
            {"key": "cettar_top", "track": "cettar", "name_id": "Sangat Cettar", "name_en": "Sangat Cettar", "rule": "grade", "winners": [w("cettar", "cettar_top", 1, "Kota Batu", score=84.2, grade="sangat_cettar", grade_label="Sangat Cettar")]},
        ],
        "evaluations": {"sakip": [sakip], "rb": [rb], "cettar": [cettar]},
    })  # fmt: skip


class Awards:
    def __init__(self, results: ResultsView) -> None:
        self.results = results

    def handlers(self) -> dict[type[Command], Handler]:
        return {GetResults: lambda cmd, actor: ok(self.results)}
