"""The published results as people read them: one rounding (half-up, two decimals) on every
output, names instead of codes, groups by their labels, ties naming the other proposal, and the
page and a certificate rendered (a browser's screenshot and a PNG of the PDF, kept under
``var/test-artifacts/`` for a person to look at)."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pypdf
import pytest

from contracts import subjects
from contracts.awards import AwardsDetermined
from contracts.base import digest_ids
from contracts.published import group_label, published_score, score_text
from contracts.scoring import RankedRow, ShortlistFinal
from contracts.verification import ThresholdCheck, WbkEvaluated, WbkResult
from services.awards import documents
from services.awards.app import create_app
from services.common.files import csv_cell
from services.common.settings import Settings
from tests.support import eventually, request, running, stream_messages

YEAR = 2035
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"

# The boundary values of issue 20: binary floats whose ":.2f" rounds down where half-up rounds up.
BOUNDARY = {97.055: "97.06", 93.145: "93.15", 73.005: "73.01"}


def test_published_scores_round_half_up_on_the_decimal_written():
    for value, text in BOUNDARY.items():
        assert f"{value:.2f}" != text or value == 97.055  # what the old formatting did
        assert score_text(value) == text and str(published_score(value)) == text
    assert score_text(None) == "" and score_text(5) == "5.00" and score_text(89.95) == "89.95"
    assert score_text(0.125) == "0.13" and score_text(-0.125) == "-0.13"
    row = RankedRow(rank=1, proposal_id="P1", title="Inovasi", group="umum", agency_code="A", unit_code="A-U01", score=73.005, jurors=3, explanation={})
    assert row.score_published == "73.01" and json.loads(row.model_dump_json())["score_published"] == "73.01"
    assert group_label("umum") == "Umum / General" and group_label("khusus") == "Khusus / Special"


def ranked(i: int, pid: str, score: float, group: str, explanation: dict[str, Any]) -> RankedRow:
    return RankedRow(
        rank=i,
        proposal_id=pid,
        title=f"Inovasi Layanan {pid}",
        group=group,  # type: ignore[arg-type]
        agency_code=f"KAB-{i}",
        unit_code=f"KAB-{i}-U01",
        unit_name=f"Puskesmas Contoh {i}",
        agency_name=f"Kabupaten Contoh {i}",
        score=score,
        jurors=3,
        explanation={"method": "mean over jurors of per-juror z-scores mapped to the stage scale", "method_code": "normalised", "top_criterion": "efektivitas", **explanation},
    )


def shortlist() -> list[RankedRow]:
    tie = "tie on score with {}: broken by the mean on efektivitas"
    return [
        ranked(1, "P2035-00001", 97.055, "umum", {}),
        ranked(2, "P2035-00002", 93.145, "khusus", {"tie_break": tie.format("P2035-00003"), "ties": [{"with": "P2035-00003", "broken_by": "top_criterion", "ranked": "ahead", "criterion": "efektivitas"}]}),
        ranked(3, "P2035-00003", 93.145, "umum", {"tie_break": tie.format("P2035-00002"), "ties": [{"with": "P2035-00002", "broken_by": "top_criterion", "ranked": "behind", "criterion": "efektivitas"}]}),
        ranked(4, "P2035-00004", 73.005, "replikasi", {}),
    ]


RULES = [
    {"key": "top", "rule": "top_n", "n": 4, "name_id": "TOP 4 Inovasi Pelayanan Publik", "name_en": "TOP 4 Public Service Innovations"},
    {"key": "outstanding", "rule": "top_n", "n": 1, "name_id": "Outstanding Achievement", "name_en": "Outstanding Achievement"},
    {"key": "wbk", "rule": "layak_wbk", "name_id": "Unit Kerja Layak Berpredikat WBK", "name_en": "Units worthy of the WBK predicate"},
]
CEREMONY = {"date": "2035-11-19T19:00:00+07:00", "venue": "Graha Pancasila, Kota Batu", "signer_name": "Dr. Contoh Penandatangan"}


def wbk_event() -> WbkEvaluated:
    check = ThresholdCheck(name="total", value=73.005, minimum=75, passed=True)
    result = WbkResult(unit_code="KAB-BONDOWOSO-U01", cycle_year=YEAR, threshold_set="permenpanrb-90-2021", total=93.145, leverage_total=50, automatic="layak_wbk", final="layak_wbk", failed=[], checks=[check])  # type: ignore[arg-type]
    return WbkEvaluated(cycle_year=YEAR, result=result, unit_name="UPT Puskesmas Tegalampel", agency_code="KAB-BONDOWOSO", agency_name="Kabupaten Bondowoso")


async def determine(nats_url: str, nc: Any, js: Any, tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the awards service on a real nats-server: the final shortlist and a WBK decision in,
    the awards determined and announced; answers the results and the AwardsDetermined events."""
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"):
        rows = shortlist()
        final = ShortlistFinal(cycle_year=YEAR, stage="field", announcement_no="009/PANSEL", rows=rows, digest=digest_ids(r.proposal_id for r in rows))
        await js.publish(final.subject(), final.model_dump_json().encode())
        evt = wbk_event()
        await js.publish(evt.subject(), evt.model_dump_json().encode())
        body = {
            "request_id": "det",
            "cycle_year": YEAR,
            "rules": RULES,
            "final_stage": "field",
            "expected_shortlist": {"count": len(rows), "digest": digest_ids(r.proposal_id for r in rows)},
            "expected_wbk_layak": 1,
            "ceremony": CEREMONY,
            "at": CEREMONY["date"],
        }

        async def determined():  # type: ignore[no-untyped-def]
            r = await request(nc, subjects.command("awards", "determine_awards"), body)
            return r if r["ok"] else None

        await eventually(determined)
        announced = await request(nc, subjects.command("awards", "announce_awards"), {"request_id": "ann", "cycle_year": YEAR, "ceremony": CEREMONY, "at": CEREMONY["date"]})
        assert announced["ok"], announced
        results = (await request(nc, subjects.command("awards", "get_results"), {"cycle_year": YEAR}))["data"]
        events = [json.loads(m.data) for m in await eventually(lambda: stream_messages(js, AwardsDetermined.subject()))]
    return results, events


async def test_every_published_output_rounds_half_up_and_reads_as_people_read(nats_url, nc, js, tmp_path):
    results, events = await determine(nats_url, nc, js, tmp_path)
    cats = {c["key"]: c for c in results["categories"]}
    expected = {"P2035-00001": "97.06", "P2035-00002": "93.15", "P2035-00003": "93.15", "P2035-00004": "73.01"}

    # events: the announcement of the winners carries the published score beside the exact one
    [determined] = events
    published = {w["proposal_id"]: w["score_published"] for c in determined["categories"] for w in c["winners"] if w.get("proposal_id")}
    assert published == expected
    [wbk_winner] = [w for c in determined["categories"] if c["key"] == "wbk" for w in c["winners"]]
    assert wbk_winner["score_published"] == "93.15" and wbk_winner["agency_name"] == "Kabupaten Bondowoso"

    # CSV: both tables
    files = results["files"]
    awards = list(csv.DictReader(Path(files["awards_csv"]).open(encoding="utf-8")))
    assert {r["proposal_id"]: r["score"] for r in awards if r["award_key"] == "top"} == expected
    assert [r["score"] for r in awards if r["award_key"] == "wbk"] == ["93.15"]
    ranking = list(csv.DictReader(Path(files["ranking_csv"]).open(encoding="utf-8")))
    assert {r["proposal_id"]: r["score"] for r in ranking} == expected

    # HTML: the rounded figures, never the float's; names, labels, one heading, one note
    page = Path(files["html"]).read_text(encoding="utf-8")
    for text in ("97.06", "93.15", "73.01"):
        assert f">{text}<" in page
    for wrong in ("73.00", "93.14", "97.055", "93.145"):
        assert wrong not in page
    assert "Kabupaten Bondowoso" in page and "KAB-BONDOWOSO" not in page
    assert page.count("Outstanding Achievement") == 1
    assert "Umum / General" in page and "Khusus / Special" in page and "Replikasi / Replication" in page
    assert ">umum<" not in page and ">khusus<" not in page
    assert page.count("per-juror z-scores") == 1 and page.count("dinormalisasi per juri") == 1
    assert page.index("dinormalisasi per juri") < page.index("per-juror z-scores")  # Indonesian first
    assert "Seri nilai dengan P2035-00003" in page and "Seri nilai dengan P2035-00002" in page
    assert "white-space:nowrap" in page and "<code class='cert'>" in page

    # PDF: the certificate's text, read back
    for key, code in (("top", "P2035-00004"), ("wbk", None)):
        [winner] = [w for w in cats[key]["winners"] if w.get("proposal_id") == code]
        text = pypdf.PdfReader(winner["certificate_path"]).pages[0].extract_text()
        score = "73.01" if code else "93.15"
        assert score in text and ("73.00" not in text) and ("93.14" not in text), text
        assert winner["certificate_code"] in text
    [wbk] = cats["wbk"]["winners"]
    wbk_text = pypdf.PdfReader(wbk["certificate_path"]).pages[0].extract_text()
    assert "Kabupaten Bondowoso" in wbk_text  # the parent-agency line, as on an innovation's piagam
    assert "Units worthy of the WBK predicate" in wbk_text


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    hostile = ["=HYPERLINK(\"http://evil.example\",\"klik\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\tdata", "\rdata"]
    assert [csv_cell(v) for v in hostile] == ["'" + v for v in hostile]
    assert csv_cell("Inovasi = lebih cepat") == "Inovasi = lebih cepat" and csv_cell(-1.5) == -1.5 and csv_cell(3) == 3
    rows = [r.model_dump(mode="json") for r in shortlist()]
    rows[0]["title"] = hostile[0]
    rows[1]["unit_code"] = "@cmd"
    cats = [
        {
            "key": "top",
            "name_id": "=cmd|' /C calc'!A0",
            "name_en": "Top",
            "rule": "top_n",
            "winners": [{"rank": 1, "unit_code": "U1", "unit_name": "-Unit", "title": "+title", "agency_name": "@agency", "score": -0.125}],
        }
    ]
    files = documents.write_results(tmp_path, YEAR, None, cats, rows, None)
    awards = list(csv.reader(Path(files["awards_csv"]).open(encoding="utf-8")))[1]
    assert awards[1] == "'=cmd|' /C calc'!A0" and awards[5] == "'-Unit" and awards[7] == "'@agency" and awards[9] == "'+title"
    assert awards[11] == "-0.13"  # a number stays a number
    ranking = list(csv.DictReader(Path(files["ranking_csv"]).open(encoding="utf-8")))
    assert ranking[0]["title"] == "'" + hostile[0] and ranking[1]["unit_code"] == "'@cmd"
    for cell in (c for r in csv.reader(Path(files["ranking_csv"]).open(encoding="utf-8")) for c in r):
        assert not cell.startswith(("=", "+", "@", "\t", "\r")) and not (cell.startswith("-") and not cell[1:2].isdigit())


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def test_the_results_page_and_a_certificate_render(nats_url, nc, js, tmp_path):
    """Rendered as a person sees them, kept under var/test-artifacts/: the page by headless
    chromium, a certificate by pdftoppm."""
    missing = [name for name, found in (("chromium", _chromium()), ("pdftoppm", shutil.which("pdftoppm"))) if not found]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: apt-get install -y chromium poppler-utils (.ci/run does)")
    results, _ = await determine(nats_url, nc, js, tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = Path(results["files"]["html"])
    shot = ARTIFACTS / "results-page.png"
    shot.unlink(missing_ok=True)
    profile = tmp_path / "chromium-profile"
    await asyncio.to_thread(
        subprocess.run,
        [
            _chromium(),  # type: ignore[list-item]
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1200,1800",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000  # a page with tables, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cats = {c["key"]: c for c in results["categories"]}
    for key, name in (("top", "certificate-innovation"), ("wbk", "certificate-wbk")):
        pdf = cats[key]["winners"][0]["certificate_path"]
        prefix = ARTIFACTS / name
        await asyncio.to_thread(subprocess.run, ["pdftoppm", "-png", "-r", "60", "-singlefile", pdf, str(prefix)], check=True, capture_output=True, timeout=60)
        png = prefix.with_suffix(".png")
        assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(page, ARTIFACTS / "results-page.html")


def test_the_demo_s_awards_table_rounds_the_same_way():
    from bfest import demo

    results = {
        "cycle_year": YEAR,
        "categories": [
            {"key": "top", "name_id": "TOP", "name_en": "TOP", "winners": [{"rank": i, "unit_name": f"U{i}", "title": "T", "score": s} for i, s in enumerate(BOUNDARY, 1)]}
        ],
    }
    with demo.console.capture() as captured:
        demo._print_results(results, None)
    table = captured.get()
    for text in BOUNDARY.values():
        assert text in table
    assert "73.00" not in table and "93.14" not in table
