"""One ceremony across every track (issue 26), over a real nats-server: KOVABLIK's and KBK's final
shortlists, WBK's decisions and the SAKIP, RB and CETTAR evaluations arrive by events;
``determine_awards`` answers ``not_ready`` until each track it names has arrived, then every
track's winners are in one numbered announcement, the SAKIP results are handed over on signed
certificates of their own kind that verify (and stop verifying when altered), and the results
page and view show each track's categories and every approved evaluation with its parts."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pypdf
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from contracts import subjects
from contracts.awards import AwardsAnnounced
from contracts.base import digest_ids
from contracts.scoring import RankedRow, ShortlistFinal
from contracts.verification import EvaluationClosed, EvaluationClosedSummary, EvaluationPart, EvaluationView
from services.awards import documents, signing
from services.awards.app import create_app
from services.common import authz
from services.common.migrations import upgrade
from services.common.settings import Settings
from tests.awards.test_awards import rows as kovablik_rows
from tests.awards.test_awards import wbk
from tests.support import eventually, request, running, stream_messages

YEAR = 2037
AT = "2037-11-19T19:00:00+07:00"
CEREMONY = {"date": AT, "venue": "Gedung Negara Grahadi, Surabaya", "signer_name": "Dr. Contoh Penandatangan"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
SAKIP_PARTS = (("planning", "Perencanaan kinerja", 30), ("measurement", "Pengukuran kinerja", 30), ("reporting", "Pelaporan kinerja", 15), ("internal_evaluation", "Evaluasi akuntabilitas kinerja internal", 25))
# (code, name, grade, label, total, last year's grade, grades gained)
SAKIP = [
    ("OPD-BAPPEDA", "Badan Perencanaan Pembangunan Daerah", "AA", "Sangat Memuaskan", 92.4, "A", 1),
    ("KAB-BANYUWANGI", "Kabupaten Banyuwangi", "AA", "Sangat Memuaskan", 90.11, "AA", 0),
    ("KOTA-MADIUN", "Kota Madiun", "A", "Memuaskan", 84.2, "B", 2),
    ("KAB-NGAWI", "Kabupaten Ngawi", "A", "Memuaskan", 81.35, "BB", 1),
    ("KAB-SAMPANG", "Kabupaten Sampang", "BB", "Sangat Baik", 72.0, None, None),
]
RB = [("KAB-BANYUWANGI", "Kabupaten Banyuwangi", "sangat_baik", "Sangat Baik", 86.5), ("KAB-SAMPANG", "Kabupaten Sampang", "baik", "Baik", 67.1)]
CETTAR = [("KAB-BANYUWANGI", "Kabupaten Banyuwangi", "sangat_cettar", "Sangat Cettar", 88.9), ("KOTA-MADIUN", "Kota Madiun", "cettar", "Cettar", 76.25)]
KBK_CLUSTERS = ["pelayanan", "pelayanan", "tata_kelola", "pelayanan", "tata_kelola"]

RULES = [
    {"key": "top", "rule": "top_n", "n": 3, "name_id": "TOP 3 Inovasi", "name_en": "TOP 3 Innovations"},
    {"key": "wbk", "rule": "layak_wbk", "name_id": "Layak WBK", "name_en": "Layak WBK"},
    {"key": "kbk_top", "rule": "top_n", "track": "kbk", "n": 2, "name_id": "KBK Terbaik", "name_en": "Best Work-Culture Groups"},
    {"key": "kbk_cluster", "rule": "top_n", "track": "kbk", "n": 1, "per_category": True, "name_id": "KBK Terbaik per Klaster", "name_en": "Best Work-Culture Group per Cluster"},
    {"key": "sakip_aa", "rule": "grade", "track": "sakip", "grades": ["AA"], "name_id": "SAKIP Predikat AA", "name_en": "SAKIP grade AA"},
    {"key": "sakip_best_a", "rule": "best_of_grade", "track": "sakip", "grades": ["A"], "name_id": "SAKIP A Terbaik", "name_en": "Best SAKIP A"},
    {"key": "sakip_improved", "rule": "most_improved", "track": "sakip", "name_id": "Peningkatan SAKIP Terbaik", "name_en": "Most Improved SAKIP"},
    {"key": "sakip_result", "rule": "sakip_result", "track": "sakip", "name_id": "Penyerahan Hasil Evaluasi SAKIP", "name_en": "SAKIP Evaluation Result"},
    {"key": "rb", "rule": "grade", "track": "rb", "grades": ["sangat_baik"], "name_id": "Reformasi Birokrasi Sangat Baik", "name_en": "Bureaucratic Reform: Very Good"},
    {"key": "cettar", "rule": "grade", "track": "cettar", "grades": ["sangat_cettar"], "name_id": "Sangat Cettar", "name_en": "Sangat Cettar"},
]


def cmd(name: str) -> str:
    return subjects.command("awards", name)


def kbk_rows() -> list[RankedRow]:
    return [
        RankedRow(
            rank=i + 1, proposal_id=f"R{i + 1}", title=f"Risalah Budaya Kerja {i + 1}", group="umum", category=cluster,
            agency_code=f"OPD-{i}", unit_code=f"OPD-{i}-U01", unit_name=f"KBK Unit {i + 1}", agency_name=f"Dinas Contoh {i}",
            score=88 - i * 3.5, jurors=3, explanation={"method": "test"},
        )
        for i, cluster in enumerate(KBK_CLUSTERS)
    ]  # fmt: skip


def view(kind: str, code: str, name: str, grade: str, label: str, total: float, parts: list[EvaluationPart], **extra: Any) -> EvaluationView:
    return EvaluationView(
        cycle_year=YEAR, kind=kind, subject_code=code, subject_name=name, rubric=f"{kind}-rubric-2037",  # type: ignore[arg-type]
        rubric_source="PermenPANRB 88/2021" if kind == "sakip" else "platform default", parts=parts, total=total, grade=grade,
        label=label, state="approved", evaluator_id="EV1", entered_at=dt.datetime(2037, 9, 1, tzinfo=dt.UTC), reviewer_id="RV1", **extra,
    )  # fmt: skip


def sakip_parts(total: float) -> list[EvaluationPart]:
    return [EvaluationPart(key=k, name=n, value=round(total * m / 100, 2), max=m) for k, n, m in SAKIP_PARTS]


def cettar_parts(total: float) -> list[EvaluationPart]:
    parts = (("sakip", "SAKIP", 0.3, "sakip 2037 (approved)"), ("rb", "Indeks RB", 0.3, "rb 2037 (approved)"), ("zona_integritas", "Zona Integritas", 0.2, "wbk 2037: mean of its units' LKE totals"), ("work_culture", "Budaya kerja", 0.2, "entered"))
    return [EvaluationPart(key=k, name=n, value=total, weight=w, source=s) for k, n, w, s in parts]


def closed(kind: str) -> EvaluationClosed:
    if kind == "sakip":
        results = [view("sakip", c, n, g, lb, t, sakip_parts(t), previous_grade=p, improvement=imp) for c, n, g, lb, t, p, imp in SAKIP]
    elif kind == "rb":
        results = [view("rb", c, n, g, lb, t, [EvaluationPart(key="index", name="Indeks RB", value=t)]) for c, n, g, lb, t in RB]
    else:
        results = [view("cettar", c, n, g, lb, t, cettar_parts(t)) for c, n, g, lb, t in CETTAR]
    grades: dict[str, int] = {}
    for r in results:
        grades[r.grade] = grades.get(r.grade, 0) + 1
    summary = EvaluationClosedSummary(
        cycle_year=YEAR, kind=kind, rubric=f"{kind}-rubric-2037", approved=len(results), unapproved=0, grades=grades,  # type: ignore[arg-type]
        digest=digest_ids(r.subject_code for r in results),
    )
    return EvaluationClosed(cycle_year=YEAR, summary=summary, results=results)


def body(rid: str) -> dict[str, Any]:
    kov, kbk = [r.proposal_id for r in kovablik_rows()], [r.proposal_id for r in kbk_rows()]
    return {
        "request_id": rid,
        "cycle_year": YEAR,
        "rules": RULES,
        "final_stage": "field",
        "expected_shortlist": {"count": len(kov), "digest": digest_ids(kov)},
        "expected_wbk_layak": 1,
        "ceremony": CEREMONY,
        "at": AT,
        "tracks": {
            "kbk": {"final_stage": "kbk_final", "expected_shortlist": {"count": len(kbk), "digest": digest_ids(kbk)}},
            "sakip": {"expected_results": len(SAKIP)},
            "rb": {"expected_results": len(RB)},
            "cettar": {"expected_results": len(CETTAR)},
        },
    }


async def publish(js: Any, evt: Any) -> None:
    await js.publish(evt.subject(), evt.model_dump_json().encode())


async def arrive_all_but_cettar(nc: Any, js: Any) -> None:
    """Every track's results but CETTAR's arrive: the ceremony waits, naming what it waits for."""
    year_rows = kovablik_rows()
    await publish(js, ShortlistFinal(cycle_year=YEAR, stage="field", announcement_no="007/PANSEL", rows=year_rows, digest=digest_ids(r.proposal_id for r in year_rows)))
    for unit, decision in (("OPD-X-U01", "layak_wbk"), ("OPD-X-U02", "belum_layak")):
        await publish(js, wbk(unit, decision).model_copy(update={"cycle_year": YEAR}))
    kbk = kbk_rows()
    await publish(js, ShortlistFinal(cycle_year=YEAR, stage="kbk_final", announcement_no="012/PANSEL-KBK", rows=kbk, digest=digest_ids(r.proposal_id for r in kbk)))
    for kind in ("sakip", "rb"):
        await publish(js, closed(kind))

    async def waiting_for_cettar():  # type: ignore[no-untyped-def]
        r = await request(nc, cmd("determine_awards"), body("det-early"))
        assert not r["ok"] and r["error"]["code"] == "not_ready", r
        return r if (r["error"].get("details") or {}).get("track") == "cettar" else None

    early = await eventually(waiting_for_cettar)
    assert "CETTAR" in early["error"]["message"]


async def test_one_ceremony_covers_every_track(nats_url, nc, js, tmp_path):
    # awards may read verification's evaluation events: its durable consumer of verification's
    # events is in its grants, and the consumer's filter takes every verification event
    assert f"{subjects.commands_of('awards')} {subjects.queue_group('awards')}" in authz.grants("awards").subscribe
    assert any(authz.service_durable("awards", "verification") in g for g in authz.grants("awards").publish)
    assert EvaluationClosed.subject().startswith(subjects.events_of("verification").rstrip(">"))
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    db = tmp_path / "a.db"
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{db}"):
        await arrive_all_but_cettar(nc, js)
        await publish(js, closed("cettar"))

        async def determined():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("determine_awards"), body("det"))
            return r if r["ok"] else None

        summary = (await eventually(determined))["data"]
        assert summary["categories"] == {
            "top": 3, "wbk": 1, "kbk_top": 2, "kbk_cluster": 2, "sakip_aa": 2, "sakip_best_a": 1,
            "sakip_improved": 1, "sakip_result": 5, "rb": 1, "cettar": 1,
        }  # fmt: skip
        announced = await request(nc, cmd("announce_awards"), {"request_id": "ann", "cycle_year": YEAR, "ceremony": CEREMONY, "at": AT})
        assert announced["data"]["announcement_no"] == f"001/PENGHARGAAN-BFEST/{YEAR}"
        again = await request(nc, cmd("announce_awards"), {"request_id": "ann-2", "cycle_year": YEAR, "ceremony": CEREMONY, "at": AT})
        assert again["data"]["announcement_no"] == announced["data"]["announcement_no"]  # one announcement for every track
        results = (await request(nc, cmd("get_results"), {"cycle_year": YEAR}))["data"]
        cats = {c["key"]: c for c in results["categories"]}
        [announcement] = [json.loads(m.data) for m in await stream_messages(js, AwardsAnnounced.subject()) if json.loads(m.data)["cycle_year"] == YEAR]
        assert announcement["winners"] == sum(summary["categories"].values())

        # every track's winners, each category in its track
        assert {k: c["track"] for k, c in cats.items()} == {
            "top": "kovablik", "wbk": "wbk", "kbk_top": "kbk", "kbk_cluster": "kbk", "sakip_aa": "sakip", "sakip_best_a": "sakip",
            "sakip_improved": "sakip", "sakip_result": "sakip", "rb": "rb", "cettar": "cettar",
        }  # fmt: skip
        assert [w["proposal_id"] for w in cats["top"]["winners"]] == ["P1", "P2", "P3"]
        assert [w["proposal_id"] for w in cats["kbk_top"]["winners"]] == ["R1", "R2"]
        assert [w["proposal_id"] for w in cats["kbk_cluster"]["winners"]] == ["R1", "R3"]  # the best of each cluster
        assert {w["track"] for w in cats["kbk_cluster"]["winners"]} == {"kbk"}
        assert [(w["unit_code"], w["grade"]) for w in cats["sakip_aa"]["winners"]] == [("OPD-BAPPEDA", "AA"), ("KAB-BANYUWANGI", "AA")]
        assert [w["unit_code"] for w in cats["sakip_best_a"]["winners"]] == ["KOTA-MADIUN"]
        assert [w["unit_code"] for w in cats["sakip_improved"]["winners"]] == ["KOTA-MADIUN"]  # B → A: two grades gained
        assert [w["unit_code"] for w in cats["rb"]["winners"]] == ["KAB-BANYUWANGI"]
        assert [(w["unit_code"], w["grade_label"]) for w in cats["cettar"]["winners"]] == [("KAB-BANYUWANGI", "Sangat Cettar")]
        handed = cats["sakip_result"]["winners"]
        assert [w["unit_code"] for w in handed] == [c for c, *_ in SAKIP]
        assert {w["certificate_kind"] for w in handed} == {"sakip_result"}
        assert {w["certificate_kind"] for c in cats.values() if c["key"] != "sakip_result" for w in c["winners"]} == {"award"}

        # every approved evaluation of each track, with its parts (CETTAR's composite shows its four)
        assert {k: [r["subject_code"] for r in v] for k, v in results["evaluations"].items()} == {
            "sakip": [c for c, *_ in SAKIP], "rb": [c for c, *_ in RB], "cettar": [c for c, *_ in CETTAR],
        }  # fmt: skip
        assert [p["key"] for p in results["evaluations"]["cettar"][0]["parts"]] == ["sakip", "rb", "zona_integritas", "work_culture"]
        assert all(p["source"] for p in results["evaluations"]["cettar"][0]["parts"])

        # the SAKIP handover certificates verify, naming their kind, grade and total
        for w, (code, name, grade, _label, total, *_rest) in zip(handed, SAKIP, strict=True):
            ok = (await request(nc, cmd("verify_certificate"), {"code": w["certificate_code"]}))["data"]
            assert ok["valid"] is True, ok
            assert (ok["certificate_kind"], ok["track"], ok["grade"], ok["recipient"], ok["unit_code"]) == ("sakip_result", "sakip", grade, name, code)
            assert ok["award_name"] == "Penyerahan Hasil Evaluasi SAKIP" and ok["score"] == f"{total:.2f}"
        kov = (await request(nc, cmd("verify_certificate"), {"code": cats["top"]["winners"][0]["certificate_code"]}))["data"]
        assert kov["valid"] and kov["certificate_kind"] == "award" and kov["grade"] is None

        # the page: every track's categories grouped by track, the evaluations with their parts
        html = Path(results["files"]["html"]).read_text(encoding="utf-8")
        sections = [html.index(f"id='track-{t}'") for t in ("kovablik", "wbk", "kbk", "sakip", "rb", "cettar")]
        assert sections == sorted(sections)
        for key, cat in cats.items():
            assert html.index(cat["name_id"]) > sections[["kovablik", "wbk", "kbk", "sakip", "rb", "cettar"].index(cat["track"])], key
        assert "Hasil evaluasi CETTAR" in html and "Zona Integritas" in html and "wbk 2037: mean of its units&#x27; LKE totals" in html
        assert "Peringkat akhir KBK" in html and f"001/PENGHARGAAN-BFEST/{YEAR}" in html
        table = list(csv.DictReader(Path(results["files"]["awards_csv"]).open(encoding="utf-8")))
        assert {(r["award_key"], r["track"], r["certificate_kind"]) for r in table if r["award_key"] == "sakip_result"} == {("sakip_result", "sakip", "sakip_result")}
        evaluations = list(csv.DictReader(Path(results["files"]["evaluations_csv"]).open(encoding="utf-8")))
        assert len(evaluations) == len(SAKIP) + len(RB) + len(CETTAR)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(results["files"]["html"], ARTIFACTS / "results-page-tracks.html")  # for a person to look at

        # the handover certificate as printed: its own wording, the grade and the total
        first = handed[0]
        text = pypdf.PdfReader(first["certificate_path"]).pages[0].extract_text()
        assert "PENYERAHAN HASIL EVALUASI" in text and "PIAGAM PENGHARGAAN" not in text
        assert "Predikat AA — Sangat Memuaskan" in text and "92.40" in text and first["unit_name"] in text
        assert first["certificate_code"] in text and "SAKIP — Sistem Akuntabilitas Kinerja Instansi Pemerintah" in text
        graded = pypdf.PdfReader(cats["sakip_best_a"]["winners"][0]["certificate_path"]).pages[0].extract_text()
        assert "PIAGAM PENGHARGAAN" in graded and "Predikat · grade: A — Memuaskan" in graded and "SAKIP A Terbaik" in graded
        risalah = pypdf.PdfReader(cats["kbk_top"]["winners"][0]["certificate_path"]).pages[0].extract_text()
        assert "Risalah: “Risalah Budaya Kerja 1”" in risalah and "KBK — Kelompok Budaya Kerja" in risalah

        # offline, with the published public key; the record names what was handed over
        record = Path(first["certificate_path"]).with_suffix(".json")
        assert json.loads(record.read_text())["record"]["attests"] == {"track": "sakip", "kind": "sakip_result", "grade": "AA", "score": "92.40"}
        public_key = tmp_path / "results" / signing.PUBLIC_KEY_NAME
        assert signing._cli(["verify", str(record), "--public-key", str(public_key)]) == 0

        # a handover whose grade is changed after signing no longer verifies
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE awd_certificate SET grade = 'A' WHERE code = ?", (first["certificate_code"],))
        altered = (await request(nc, cmd("verify_certificate"), {"code": first["certificate_code"]}))["data"]
        assert altered["valid"] is False and "altered" in altered["reason"]


async def test_the_sakip_handover_certificate_renders(tmp_path):
    """The handover as a person sees it, kept under var/test-artifacts/ (pdftoppm, as
    tests/awards/test_published.py renders the award certificates)."""
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm not installed: apt-get install -y poppler-utils (.ci/run does)")
    pdf = tmp_path / "handover.pdf"
    documents.certificate_pdf(
        pdf,
        {
            "year": YEAR, "recipient": "Badan Perencanaan Pembangunan Daerah Provinsi Jawa Timur", "agency_name": None,
            "award_name_id": "Penyerahan Hasil Evaluasi SAKIP", "award_name_en": "SAKIP Evaluation Result", "title": None,
            "venue": CEREMONY["venue"], "venue_city": "Surabaya", "date_id": "19 November 2037", "signed_by": "Gubernur Jawa Timur",
            "signer_name": CEREMONY["signer_name"], "code": "BF37-ABCD-EFGH-IJKL", "verify_url": "https://bfest.jatimprov.go.id/verify/BF37-ABCD-EFGH-IJKL",
            "score": 92.4, "score_kind": "evaluation", "track": "sakip", "kind": "sakip_result", "grade": "AA", "grade_label": "Sangat Memuaskan",
        },
    )  # fmt: skip
    text = pypdf.PdfReader(pdf).pages[0].extract_text()
    assert "PENYERAHAN HASIL EVALUASI" in text and "Predikat AA — Sangat Memuaskan" in text and "Nilai evaluasi · evaluation total: 92.40" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ARTIFACTS / "certificate-sakip-result"
    await asyncio.to_thread(subprocess.run, ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf), str(prefix)], check=True, capture_output=True, timeout=60)
    png = prefix.with_suffix(".png")
    assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_the_ceremony_waits_for_each_track_it_names(nats_url, nc, js, tmp_path):
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"):
        # nothing from the tracks yet: each is waited for in turn (cettar, kbk, rb, sakip)
        kov = kovablik_rows()
        await publish(js, ShortlistFinal(cycle_year=YEAR + 1, stage="field", announcement_no="001/PANSEL", rows=kov, digest=digest_ids(r.proposal_id for r in kov)))
        later = {**body("w-1"), "cycle_year": YEAR + 1, "expected_wbk_layak": None}

        async def waits_for(what: str):  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("determine_awards"), {**later, "request_id": f"w-{what}"})
            assert r["error"]["code"] == "not_ready", r
            return r if what in r["error"]["message"] else None

        await eventually(lambda: waits_for("CETTAR"))
        await publish(js, closed("cettar").model_copy(update={"cycle_year": YEAR + 1}))
        await eventually(lambda: waits_for("kbk_final"))
        kbk = kbk_rows()
        await publish(js, ShortlistFinal(cycle_year=YEAR + 1, stage="kbk_final", announcement_no="002/PANSEL-KBK", rows=kbk, digest=digest_ids(r.proposal_id for r in kbk)))
        await eventually(lambda: waits_for("Reformasi Birokrasi"))
        # a close that counted fewer results than the command names is not the one expected
        await publish(js, closed("rb").model_copy(update={"cycle_year": YEAR + 1}))
        await publish(js, closed("sakip").model_copy(update={"cycle_year": YEAR + 1, "results": closed("sakip").results[:3]}))
        short = await eventually(lambda: waits_for("3 approved SAKIP results received, 5 expected"))
        assert short["error"]["details"] == {"track": "sakip", "have": 3, "expected": 5}
        await publish(js, closed("sakip").model_copy(update={"cycle_year": YEAR + 1}))

        async def determined():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("determine_awards"), {**later, "request_id": "w-done"})
            return r if r["ok"] else None

        assert (await eventually(determined))["data"]["categories"]["sakip_result"] == len(SAKIP)


async def test_a_certificate_signed_before_tracks_still_verifies_after_the_upgrade(nats_url, nc, tmp_path):
    """Revision awards_0003 makes an existing certificate a KOVABLIK award: its record, rebuilt
    from the columns, is the one that was signed."""
    key = Ed25519PrivateKey.generate()
    signed = signing.Signer(key).issue(signing.certificate_record(2030, "top", "TOP 3 Inovasi", "KAB-A-U01", "Puskesmas A", "P1", "Inovasi A"))
    code = signed["record"]["code"]
    db = tmp_path / "a.db"
    await upgrade("awards", f"sqlite+aiosqlite:///{db}", "awards_0002")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO awd_certificate (code, cycle_year, award_key, award_name, recipient, title, path, unit_code, proposal_id, key_id, signature, issued_at) "
            "VALUES (?, 2030, 'top', 'TOP 3 Inovasi', 'Puskesmas A', 'Inovasi A', 'x.pdf', 'KAB-A-U01', 'P1', ?, ?, '2030-11-19 12:00:00.000000')",
            (code, signed["key_id"], signed["signature"]),
        )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results", certificate_key=SecretStr(pem))
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{db}"):
        ok = (await request(nc, cmd("verify_certificate"), {"code": code}))["data"]
    assert ok["valid"] is True, ok
    assert (ok["certificate_kind"], ok["track"], ok["grade"], ok["recipient"]) == ("award", "kovablik", None, "Puskesmas A")
