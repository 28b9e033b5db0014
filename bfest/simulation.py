"""Simulated people for the demo and the end-to-end tests: units that submit, agency admins that
forward (a few try to exceed the quota and are refused), WBK units, verifiers, jurors (a harsh
one, a lenient one, a late one), a member of the public who objects. Everything they do goes
through the services' NATS commands, exactly as a portal would; randomness comes from one seed,
so the same seed gives the same awards."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors

from contracts.base import (
    AGENCY_KINDS,
    AdminDecision,
    EvaluationKind,
    Group,
    ObjectionDecision,
    ParticipantKind,
    new_request_id,
    title_key,
)
from contracts.registration import (
    ForwardProposal,
    ImportParticipants,
    ListParticipants,
    Participant,
    ReturnProposal,
    SubmitProposal,
    SubmitRisalah,
    WithdrawProposal,
)
from contracts.scoring import DecideObjection, FileObjection, ImportJurors, Juror, StageStatus, SubmitScore
from contracts.verification import EnterEvaluation, GetDecision, OverrideDecision, ReviewEvaluation, SubmitLke
from services.common.logging import get_logger
from services.common.messaging import CommandClient, CommandError

CATEGORIES = ["kesehatan", "pendidikan", "ekonomi", "tata_kelola", "lingkungan", "sosial", "infrastruktur", "pertanian", "pariwisata", "kependudukan"]
_WHAT = ["Sistem", "Layanan", "Aplikasi", "Gerakan", "Program", "Klinik", "Pojok", "Rumah", "Jemput Bola", "Kampung"]
_TOPIC = {
    "kesehatan": ["Antrian Online Puskesmas", "Posyandu Digital", "Ambulans Desa Siaga", "Deteksi Dini Stunting"],
    "pendidikan": ["Beasiswa Terpadu", "Sekolah Ramah Anak", "Literasi Desa", "Guru Kunjung"],
    "ekonomi": ["UMKM Naik Kelas", "Pasar Digital Desa", "Kredit Usaha Mikro", "Ekspor Satu Pintu"],
    "tata_kelola": ["Perizinan Satu Hari", "Tanda Tangan Elektronik", "Arsip Digital", "Pengaduan Terpadu"],
    "lingkungan": ["Bank Sampah", "Sungai Bersih", "Energi Surya Desa", "Hutan Kota"],
    "sosial": ["Lansia Berdaya", "Disabilitas Mandiri", "Bansos Tepat Sasaran", "Perlindungan Anak"],
    "infrastruktur": ["Jalan Mulus", "Air Bersih Pedesaan", "Jembatan Desa", "Drainase Pintar"],
    "pertanian": ["Petani Milenial", "Pupuk Tepat Waktu", "Irigasi Cerdas", "Lumbung Pangan"],
    "pariwisata": ["Desa Wisata", "Homestay Berizin", "Festival Budaya", "Wisata Halal"],
    "kependudukan": ["KTP Sehari Jadi", "Akta Kelahiran Online", "Dukcapil Keliling", "Data Penduduk Terpadu"],
}
_PLACE = ["Terpadu", "Digital", "Mandiri", "Cepat", "Ramah", "Berdaya", "Tuntas", "Cerdas", "Prima", "Cettar"]


def unit_rng(seed: int, *parts: Any) -> random.Random:
    """A random generator for one thing (a juror's score for a proposal, …): independent of the
    order things happen in, so the same seed gives the same result."""
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.lines.append(text)


def demo_jurors(count: int, seed: int) -> list[Juror]:
    rng = unit_rng(seed, "jurors")
    first = ["Agus", "Budi", "Citra", "Dewi", "Eko", "Fitri", "Gita", "Hadi", "Indah", "Joko", "Kartika", "Lestari", "Made", "Nur", "Oki", "Putri", "Rahmat", "Sari", "Teguh", "Wahyu"]
    last = ["Santoso", "Wibowo", "Rahayu", "Kusuma", "Hidayat", "Pratama", "Setiawan", "Wulandari", "Nugroho", "Purnomo"]
    inst = ["UNAIR", "ITS", "UB", "UNESA", "UM", "UNEJ", "UINSA", "UTM", "UPN-JATIM", "PRAKTISI"]
    jurors = []
    for i in range(count):
        name = f"{'Dr. ' if i % 3 == 0 else ''}{rng.choice(first)} {rng.choice(last)}"
        jurors.append(
            Juror(
                id=f"J{i + 1:03d}",
                name=name,
                affiliation=inst[i % len(inst)],
                expertise=rng.sample(CATEGORIES, 2),
                conflicts=[],
            )
        )
    return jurors


KBK_CLUSTERS = ["pelayanan", "tata_kelola", "efisiensi", "inovasi_digital"]
"""The KBK risalah's categories (clusters), as cycles/2027-all-tracks.toml lists them."""

EVALUATORS, REVIEWERS = ["E01", "E02", "E03"], ["R01", "R02"]
"""The simulated evaluators and reviewers (a reviewer never approves their own sheet)."""


def kbk_groups(participants: list[Participant], units: int, seed: int) -> list[Participant]:
    """Work-culture groups (KBK) registered under ``units`` of the participants' units, one or two
    each, for the demo's KBK track; the same seed picks the same units."""
    pool = sorted(p.code for p in participants if p.kind in (ParticipantKind.UPT, ParticipantKind.UPP))
    chosen = sorted(unit_rng(seed, "kbk").sample(pool, min(units, len(pool))))
    names = {p.code: p.name for p in participants}
    groups = []
    for i, unit in enumerate(chosen):
        for n in range(1 + i % 2):
            groups.append(Participant(code=f"{unit}-KBK{n + 1}", name=f"KBK {_PLACE[(i + n) % len(_PLACE)]} {names[unit]}"[:120], kind=ParticipantKind.KBK, parent_code=unit))
    return groups


OUTAGE_CODES = frozenset({"no_responders", "timeout", "not_ready", "internal_error"})
"""Replies that say "not now" (the service is down or restarting, or its read model is behind):
a real client asks again, with the same request id, which the service answers once."""

OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.TimeoutError,
    ConnectionError,
    OSError,
)
"""The connection itself failing (NATS restarting, a node gone): reconnect, then ask again."""


RESEND_AFTER = 5.0
"""Seconds without an answer after which a person's request is sent again (the same request id)
while the first keeps waiting, as the worker's activities do (``workflows.policy``): a request
held by a replica that was killed is answered by another in seconds, not after the whole timeout
(the people's 30 s timeouts cost a year its desk stage when one replica of each service was
killed)."""


class Door:
    """A simulated person's way in, as a real client's: a request unanswered for ``RESEND_AFTER``
    seconds is sent again alongside; one refused for an outage (no responders, a timeout,
    ``not_ready``, the connection closed) is sent again, with the same command and so the same
    request id, backing off up to ``patience`` seconds; a closed connection is opened again. A
    restarting service or NATS node slows the people; it does not end the year."""

    def __init__(
        self,
        client: CommandClient,
        reconnect: Callable[[], Awaitable[CommandClient]] | None = None,
        patience: float = 180.0,
        backoff: tuple[float, float] = (0.2, 2.0),
    ) -> None:
        self.client = client
        self._reconnect = reconnect
        self.patience = patience
        self.backoff = backoff
        self.retries = 0
        self.reconnects = 0
        self.log = get_logger("simulation")

    @classmethod
    async def open(cls, url: str, identity: str, timeout: float = 30.0, patience: float = 180.0) -> Door:
        """Connected as ``identity``, reconnecting for ever (every node of a cluster in ``url``)."""

        from services.common.credentials import nats_options
        from services.common.messaging import PermissionDenials
        from services.common.settings import nats_servers

        async def connect() -> CommandClient:
            denials = PermissionDenials()
            nc = await nats.connect(
                servers=nats_servers(url),
                name=f"bfest-{identity}",
                connect_timeout=3,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=denials.on_error,
                **nats_options(identity),
            )
            return CommandClient(nc, timeout, resend_after=RESEND_AFTER, denials=denials)

        return cls(await connect(), connect, patience)

    async def call(self, command: Any, timeout: float | None = None, actor: Any = None) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.patience
        wait = self.backoff[0]
        while True:
            try:
                return await self.client.call(command, timeout=timeout, actor=actor)
            except CommandError as exc:
                if exc.code not in OUTAGE_CODES or loop.time() + wait > give_up:
                    raise
                reason = exc.code
            except OUTAGE_ERRORS as exc:
                if loop.time() + wait > give_up:
                    raise
                reason = exc.__class__.__name__
                if self.client.nc.is_closed:
                    await self._reopen()
            self.retries += 1
            self.log.info("simulation.retry", command=command.subject(), reason=reason, wait=round(wait, 2))
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.backoff[1])

    async def _reopen(self) -> None:
        if self._reconnect is None:
            raise nats.errors.ConnectionClosedError
        try:
            self.client = await self._reconnect()
            self.reconnects += 1
        except OUTAGE_ERRORS:
            pass  # not yet: the next attempt tries again

    async def request_raw(self, *args: Any, **kwargs: Any) -> Any:
        return await self.client.request_raw(*args, **kwargs)

    async def close(self) -> None:
        if not self.client.nc.is_closed:
            await self.client.close()


class Simulator:
    def __init__(
        self,
        client: CommandClient | Door,
        year: int,
        seed: int,
        log: Any = None,
        call_closes: dt.date | None = None,
        operator: CommandClient | Door | None = None,
    ) -> None:
        # The people's door (the portal's identity), and the operator's, who loads participants
        # and jurors: both retry a request refused for an outage.
        self.client = client if isinstance(client, Door) else Door(client)
        operator = operator or client
        self.operator = operator if isinstance(operator, Door) else Door(operator)
        self.year = year
        self.call_closes = call_closes or dt.date(year, 4, 30)
        self.seed = seed
        self.rng = unit_rng(seed, "demo")
        self.log = log or (lambda text: None)
        self.quota_refusals = 0
        self.proposals: list[dict[str, Any]] = []
        self.unit_names: dict[str, str] = {}
        self.kbk_proposals: list[dict[str, Any]] = []
        self._titles: dict[tuple[str, int], str] = {}

    async def call(self, command: Any) -> Any:
        """Send as the person the command names (a simulated person is who they say they are);
        reads go without an actor, as the operator's view of the demo."""
        actor = command.ACTING.actor_for(command) if command.ACTING else None
        return await self.client.call(command, actor=actor)

    # ------------------------------------------------------------------ people

    async def load_participants(self, participants: list[Participant]) -> int:
        for i in range(0, len(participants), 500):
            await self.operator.call(ImportParticipants(request_id=f"demo-import-{i}-{len(participants)}", participants=participants[i : i + 500]))
        return len(participants)

    async def load_jurors(self, jurors: list[Juror]) -> int:
        await self.operator.call(ImportJurors(request_id=f"demo-jurors-{self.seed}-{len(jurors)}", jurors=jurors))
        return len(jurors)

    async def units_by_agency(self, agencies: int) -> dict[str, list[str]]:
        page = await self.call(ListParticipants(limit=1000))
        total = page["total"]
        items = list(page["items"])
        offset = len(items)
        while offset < total:
            more = await self.call(ListParticipants(offset=offset, limit=1000))
            items += more["items"]
            offset += len(more["items"])
        by_agency: dict[str, list[str]] = {}
        self.unit_names = {p["code"]: p["name"] for p in items}
        for p in items:
            if p["kind"] in ("upt", "upp") and p.get("parent_code"):
                by_agency.setdefault(p["parent_code"], []).append(p["code"])
        chosen = sorted(by_agency)
        self.rng.shuffle(chosen)
        return {a: sorted(by_agency[a]) for a in sorted(chosen[:agencies])}

    # ------------------------------------------------------------------ the call

    def _title(self, rng: random.Random, category: str, unit: str, n: int) -> str:
        """A title like a real one ("Gerakan KTP Sehari Jadi Cepat"): no word twice, and no two
        proposals of the year alike (the administrative check disqualifies a duplicate title);
        the same (unit, n) always gets the same one, so a resubmission keeps its title."""
        if (unit, n) in self._titles:
            return self._titles[(unit, n)]
        taken = {title_key(t) for t in self._titles.values()}
        title = ""
        for attempt in range(60):
            topic = rng.choice(_TOPIC[category])
            what = rng.choice([w for w in _WHAT if w.lower() not in topic.lower()])
            place = rng.choice([p for p in _PLACE if p.lower() not in f"{what} {topic}".lower()])
            title = f"{what} {topic} {place}" + (f" Jilid {attempt - 39}" if attempt >= 40 else "")
            if title_key(title) not in taken:
                break
        self._titles[(unit, n)] = title
        return title

    def _content(self, agency: str, unit: str, n: int) -> dict[str, Any]:
        rng = unit_rng(self.seed, "proposal", unit, n)
        category = rng.choice(CATEGORIES)
        title = self._title(unit_rng(self.seed, "title", unit, n), category, unit, n)
        group = rng.choices([Group.UMUM, Group.KHUSUS, Group.REPLIKASI], weights=[70, 15, 15])[0]
        months = rng.choice([30, 24, 18, 14, 13, 36, 6])  # now and then one too young to enter
        started = (self.call_closes - dt.timedelta(days=30 * months)).isoformat()
        return {
            "title": title,
            "group": group.value,
            "category": category,
            "summary": f"Inovasi {title} mempercepat layanan publik bagi warga.",
            "problem": "Warga harus datang berkali-kali dan menunggu lama untuk mendapat layanan.",
            "solution": "Layanan dipadukan dalam satu alur digital dengan petugas jemput bola.",
            "impact": f"Waktu layanan turun {rng.randint(30, 80)}% dan kepuasan warga naik.",
            "started_on": started,
            # Now and then a unit forgets to attach its proposal document.
            "documents": [] if rng.random() < 0.06 else [{"kind": "proposal", "uri": f"https://portal.example/docs/{unit}/{n}.pdf"}],
            "contact": {"name": f"Admin {unit}", "email": f"admin@{unit.lower()}.example.go.id"},
        }

    async def run_call(self, units_by_agency: dict[str, list[str]], per_agency: int, quota: int) -> dict[str, int]:
        """Units submit; agency admins forward up to (and some beyond) the quota; one proposal is
        returned and resubmitted; one is withdrawn."""
        stats = {"submitted": 0, "forwarded": 0, "refused_over_quota": 0, "returned": 0, "withdrawn": 0}
        for a_index, (agency, units) in enumerate(units_by_agency.items()):
            ids = []
            # Every fifth agency prepares one proposal more than its quota allows.
            count = quota + 1 if a_index % 5 == 0 else per_agency
            for n in range(count):
                unit = units[n % len(units)]
                view = await self.call(
                    SubmitProposal(
                        request_id=f"demo-{self.year}-submit-{agency}-{n}",
                        cycle_year=self.year,
                        unit_code=unit,
                        content=self._content(agency, unit, n),  # type: ignore[arg-type]
                    )
                )
                ids.append((view["id"], unit))
                stats["submitted"] += 1
            if a_index == 0 and ids:
                pid, unit = ids[0]
                await self.call(
                    ReturnProposal(
                        request_id=f"demo-{self.year}-return-{pid}",
                        cycle_year=self.year,
                        agency_code=agency,
                        proposal_id=pid,
                        reason="Lengkapi data dukung (supporting data missing)",
                    )
                )
                stats["returned"] += 1
                content = self._content(agency, unit, 0)
                content["impact"] += " Data dukung terlampir."
                await self.call(
                    SubmitProposal(
                        request_id=f"demo-{self.year}-resubmit-{pid}",
                        cycle_year=self.year,
                        unit_code=unit,
                        proposal_id=pid,
                        content=content,  # type: ignore[arg-type]
                    )
                )
            for pid, unit in ids:
                try:
                    await self.call(
                        ForwardProposal(
                            request_id=f"demo-{self.year}-forward-{pid}", cycle_year=self.year, agency_code=agency, proposal_id=pid
                        )
                    )
                    stats["forwarded"] += 1
                    self.proposals.append({"id": pid, "agency": agency, "unit": unit})
                except CommandError as exc:
                    if exc.code != "quota_exceeded":
                        raise
                    stats["refused_over_quota"] += 1
                    self.log(f"{agency}: forward of {pid} refused — {exc.message}")
            if a_index == 1 and self.proposals:
                last = self.proposals.pop()
                await self.call(
                    WithdrawProposal(
                        request_id=f"demo-{self.year}-withdraw-{last['id']}",
                        cycle_year=self.year,
                        unit_code=last["unit"],
                        proposal_id=last["id"],
                        reason="Unit memilih mengikuti tahun depan (entering next year)",
                    )
                )
                stats["withdrawn"] += 1
                stats["forwarded"] -= 1
        return stats

    async def submit_lkes(self, units: list[str], names: dict[str, str] | None = None) -> int:
        """WBK nominees: most pass, some fall short of a threshold."""
        names = names or self.unit_names
        for i, unit in enumerate(units):
            rng = unit_rng(self.seed, "lke", unit)
            strong = i % 3 != 2
            areas = {}
            weights = {"change_management": 8, "business_process": 7, "hr_management": 10, "accountability": 10, "supervision": 15, "public_service": 10}
            for area, w in weights.items():
                share = rng.uniform(0.8, 0.98) if strong else rng.uniform(0.5, 0.75)
                areas[area] = {"fulfilment": round(w / 2 * share, 2), "reform": round(w / 2 * share, 2)}
            lke = {
                "areas": areas,
                "results": {
                    "anti_corruption_survey": round(rng.uniform(16.0, 17.4) if strong else rng.uniform(13, 15.5), 2),
                    "performance": round(rng.uniform(3.5, 4.9), 2),
                    "service_survey": round(rng.uniform(14.5, 17.0) if strong else rng.uniform(12, 14.5), 2),
                },
                "preconditions": {"audit_followup_pct": 100.0, "sakip_grade": "A" if strong else "B", "asset_declaration_compliant": True},
            }
            try:
                await self.call(
                    SubmitLke(
                        request_id=f"demo-{self.year}-lke-{unit}",
                        cycle_year=self.year,
                        unit_code=unit,
                        unit_name=names.get(unit),
                        agency_code=unit.rsplit("-U", 1)[0],
                        agency_name=names.get(unit.rsplit("-U", 1)[0]),
                        lke=lke,  # type: ignore[arg-type]
                    )
                )
            except CommandError as exc:
                self.log(f"LKE of {unit} refused: {exc.message}")
        return len(units)

    # ------------------------------------------------------------------ verification

    async def verify_all(self, at: dt.datetime | None = None) -> dict[str, int]:
        """Verifiers confirm every automatic decision, and reinstate one disqualified proposal."""
        stats = {"confirmed": 0, "overridden": 0}
        reinstated = False
        for p in self.proposals:
            view = await self.call(GetDecision(cycle_year=self.year, proposal_id=p["id"]))
            decision = view["automatic"]
            reason = "Diperiksa verifikator (checked by the verifier)"
            codes = [r["code"] for r in view.get("reasons", [])]
            if decision == AdminDecision.DISQUALIFIED and not reinstated and "missing_document" in codes:
                decision, reason, reinstated = AdminDecision.ELIGIBLE, "Dokumen diterima via surel (document received by e-mail)", True
                stats["overridden"] += 1
            else:
                stats["confirmed"] += 1
            try:
                await self.call(
                    OverrideDecision(
                        request_id=f"demo-{self.year}-verify-{p['id']}",
                        cycle_year=self.year,
                        proposal_id=p["id"],
                        decision=decision,
                        reason=reason,
                        verifier_id="VER-01",
                    )
                )
            except CommandError as exc:
                self.log(f"verifier: {p['id']} — {exc.message}")
        return stats

    # ------------------------------------------------------------------ jury

    def score_for(self, stage: str, juror: str, proposal: str, criteria: list[Any], harsh: str, lenient: str) -> dict[str, float]:
        # By the proposal's number within its year, so the same seed scores alike in any year.
        number = proposal.rsplit("-", 1)[-1]
        quality = unit_rng(self.seed, "quality", number).uniform(0.35, 0.95)
        rng = unit_rng(self.seed, "score", stage, juror, number)
        bias = -0.15 if juror == harsh else 0.12 if juror == lenient else 0.0
        scores = {}
        for c in criteria:
            lo, hi = c.scale_min, c.scale_max
            value = lo + (hi - lo) * min(1.0, max(0.0, quality + bias + rng.gauss(0, 0.06)))
            scores[c.key] = round(value, 1)
        return scores

    async def score_stage(self, stage: Any, late_juror: str | None, include_late: bool) -> int:
        """Every juror scores all their open assignments (the late one only when told to),
        including those of a juror added on divergent scores meanwhile."""
        status = await self.call(StageStatus(request_id=new_request_id(), cycle_year=self.year, stage=stage.key, per_juror=True))
        jurors = sorted(j["juror_id"] for j in status["per_juror"])
        harsh, lenient = (jurors[0], jurors[1]) if len(jurors) > 1 else ("", "")
        sent = 0
        for _ in range(3):  # a pass's scores may bring in a juror, whose work the next pass does
            open_work = [
                (j["juror_id"], pid)
                for j in status["per_juror"]
                if j["juror_id"] != late_juror or include_late
                for pid in j["missing"]
            ]
            if not open_work:
                break
            sent += await self._score(stage, open_work, harsh, lenient)
            status = await self.call(StageStatus(request_id=new_request_id(), cycle_year=self.year, stage=stage.key, per_juror=True))
        return sent

    async def _score(self, stage: Any, work: list[tuple[str, str]], harsh: str, lenient: str) -> int:
        sent = 0
        for juror, pid in work:
            try:
                await self.call(
                    SubmitScore(
                        request_id=f"demo-{self.year}-{stage.key}-{juror}-{pid}",
                        cycle_year=self.year,
                        stage=stage.key,
                        juror_id=juror,
                        proposal_id=pid,
                        scores=self.score_for(stage.key, juror, pid, stage.criteria, harsh, lenient),
                        comment="Dinilai (scored) in the demo",
                    )
                )
                sent += 1
            except CommandError as exc:
                if exc.code not in ("stage_closed",):
                    self.log(f"juror {juror}: {exc.message}")
        return sent

    async def object_and_decide(self, stage: str, proposal_id: str) -> str:
        obj = await self.call(
            FileObjection(
                request_id=f"demo-{self.year}-objection-{stage}",
                cycle_year=self.year,
                stage=stage,
                proposal_id=proposal_id,
                filer="Warga Kota Batu",
                reason="Inovasi ini sudah berjalan sebelum unit ini ada (claimed it predates the unit)",
            )
        )
        await self.call(
            DecideObjection(
                request_id=f"demo-{self.year}-decide-{stage}",
                cycle_year=self.year,
                stage=stage,
                objection_id=obj["id"],
                decision=ObjectionDecision.REJECTED,
                reason="Bukti menunjukkan inovasi dimulai oleh unit ini (evidence shows the unit started it)",
                decided_by="TPI-01",
            )
        )
        return obj["id"]

    # ------------------------------------------------------------------ the other tracks

    def evaluation_values(self, kind: EvaluationKind, subject: str) -> dict[str, float]:
        """A sheet as an evaluator fills it: SAKIP's four components (within their maxima), RB's
        index, CETTAR's work-culture part; a few subjects strong, most middling."""
        rng = unit_rng(self.seed, "evaluation", kind.value, subject)
        level = rng.choice([0.95, 0.88, 0.82, 0.75, 0.68, 0.6])
        if kind == EvaluationKind.SAKIP:
            maxima = {"planning": 30, "measurement": 30, "reporting": 15, "internal_evaluation": 25}
            return {k: round(m * min(1.0, level + rng.uniform(-0.04, 0.04)), 2) for k, m in maxima.items()}
        key = "index" if kind == EvaluationKind.RB else "work_culture"
        return {key: round(100 * min(1.0, level + rng.uniform(-0.05, 0.05)), 2)}

    async def evaluate(self, kind: EvaluationKind, subjects: list[Participant], returned: int = 1) -> dict[str, int]:
        """Evaluators enter each subject's sheet, reviewers approve it (another person than the
        one who entered it); the first ``returned`` go back once with a reason and are corrected."""
        stats = {"entered": 0, "approved": 0, "returned": 0}
        for i, subject in enumerate(subjects):
            evaluator, reviewer = EVALUATORS[i % len(EVALUATORS)], REVIEWERS[i % len(REVIEWERS)]
            values = self.evaluation_values(kind, subject.code)

            async def enter(n: int, values: dict[str, float] = values, subject: Participant = subject, evaluator: str = evaluator) -> None:
                await self.call(
                    EnterEvaluation(
                        request_id=f"demo-{self.year}-{kind.value}-{subject.code}-{n}",
                        cycle_year=self.year,
                        kind=kind,
                        subject_code=subject.code,
                        subject_name=subject.name,
                        subject_kind=subject.kind,
                        values=values,
                        evaluator_id=evaluator,
                    )
                )

            def review(n: int, approve: bool, subject: Participant = subject, reviewer: str = reviewer) -> ReviewEvaluation:
                return ReviewEvaluation(
                    request_id=f"demo-{self.year}-{kind.value}-review-{subject.code}-{n}",
                    cycle_year=self.year,
                    kind=kind,
                    subject_code=subject.code,
                    approve=approve,
                    reason=None if approve else "Lengkapi bukti dukung komponen (attach the evidence)",
                    reviewer_id=reviewer,
                )

            try:
                await enter(0)
                stats["entered"] += 1
                if i < returned:
                    await self.call(review(0, False))
                    stats["returned"] += 1
                    await enter(1)
                await self.call(review(1, True))
                stats["approved"] += 1
            except CommandError as exc:
                self.log(f"{kind.value} {subject.code}: {exc.message}")
        return stats

    async def run_risalah(self, groups: list[Participant], units: dict[str, str]) -> dict[str, int]:
        """Each work-culture group submits its risalah; the agency above its unit forwards it
        (within the KBK call's quota: a refusal is counted, as KOVABLIK's)."""
        stats = {"submitted": 0, "forwarded": 0, "refused_over_quota": 0}
        for group in groups:
            unit = group.parent_code or ""
            rng = unit_rng(self.seed, "risalah", group.code)
            cluster = rng.choice(KBK_CLUSTERS)
            content = {
                "title": f"Risalah {group.name}"[:200],
                "group": Group.UMUM.value,
                "category": cluster,
                "summary": f"{group.name} memangkas waktu layanan dengan budaya kerja CETTAR.",
                "problem": "Antrean layanan panjang dan berkas sering kembali karena tidak lengkap.",
                "solution": "Kelompok menyusun daftar periksa bersama dan rapat harian lima belas menit.",
                "impact": f"Waktu layanan turun {rng.randint(20, 60)}% dalam enam bulan.",
                "started_on": (self.call_closes - dt.timedelta(days=30 * rng.choice([8, 10, 14, 20]))).isoformat(),
                "documents": [{"kind": "risalah", "uri": f"https://portal.example/kbk/{group.code}.pdf"}],
                "contact": {"name": f"Ketua {group.code}", "email": f"kbk@{unit.lower()}.example.go.id"},
            }
            try:
                view = await self.call(
                    SubmitRisalah(request_id=f"demo-{self.year}-risalah-{group.code}", cycle_year=self.year, group_code=group.code, content=content)
                )
                stats["submitted"] += 1
                await self.call(
                    ForwardProposal(request_id=f"demo-{self.year}-forward-{view['id']}", cycle_year=self.year, agency_code=units[unit], proposal_id=view["id"])
                )
                stats["forwarded"] += 1
                self.kbk_proposals.append({"id": view["id"], "agency": units[unit], "unit": unit, "group": group.code})
            except CommandError as exc:
                if exc.code != "quota_exceeded":
                    raise
                stats["refused_over_quota"] += 1
        return stats

    async def verify_kbk(self) -> int:
        """Verifiers confirm every automatic decision of the KBK check."""
        saved, self.proposals = self.proposals, self.kbk_proposals
        try:
            stats = await self.verify_all()
        finally:
            self.proposals = saved
        return stats["confirmed"] + stats["overridden"]


def agencies_of(participants: list[Participant]) -> list[Participant]:
    """The agencies (the SAKIP and RB subjects) and the regencies/cities (CETTAR's)."""
    return [p for p in participants if p.kind in AGENCY_KINDS]
