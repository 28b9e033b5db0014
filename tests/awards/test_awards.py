"""The awards service over a real nats-server: rules on a realistic shortlist, idempotent
determination, certificates that a PDF reader can read and a code that verifies."""

from __future__ import annotations

import csv
from pathlib import Path

import pypdf

from contracts import subjects
from contracts.awards import AwardRule
from contracts.base import digest_ids
from contracts.scoring import RankedRow, ShortlistFinal
from contracts.verification import ThresholdCheck, WbkEvaluated, WbkResult
from services.awards import domain
from services.awards.app import create_app
from services.common.settings import Settings
from tests.support import eventually, request, running

YEAR = 2034
GROUPS = ["umum", "umum", "khusus", "umum", "khusus", "umum", "umum", "khusus"]


def rows() -> list[RankedRow]:
    return [
        RankedRow(
            rank=i + 1,
            proposal_id=f"P{i + 1}",
            title=f"Inovasi Layanan {i + 1}",
            group=g,
            agency_code=f"KAB-{i}",
            unit_code=f"KAB-{i}-U01",
            unit_name=f"Puskesmas Contoh {i + 1}",
            agency_name=f"Kabupaten Contoh {i}",
            score=90 - i * 2.5,
            jurors=3,
            explanation={"method": "test"},
        )
        for i, g in enumerate(GROUPS)
    ]


RULES = [
    {"key": "top", "rule": "top_n", "n": 3, "name_id": "TOP 3 Inovasi", "name_en": "TOP 3 Innovations"},
    {"key": "per_group", "rule": "top_n", "n": 1, "per_group": True, "name_id": "Terbaik per Kelompok", "name_en": "Best per Group"},
    {"key": "replikasi", "rule": "best_of_group", "group": "replikasi", "name_id": "Replikasi Terbaik", "name_en": "Best Replication"},
    {"key": "wbk", "rule": "layak_wbk", "name_id": "Layak WBK", "name_en": "Layak WBK"},
]


def determine_body(rid: str = "det") -> dict:
    ids = [r.proposal_id for r in rows()]
    return {
        "request_id": rid,
        "cycle_year": YEAR,
        "rules": RULES,
        "final_stage": "field",
        "expected_shortlist": {"count": len(ids), "digest": digest_ids(ids)},
        "expected_wbk_layak": 1,
        "ceremony": {"date": "2034-11-19T19:00:00+07:00", "venue": "Graha Pancasila, Kota Batu", "signer_name": "Dr. Contoh Penandatangan"},
        "at": "2034-11-19T19:00:00+07:00",
    }


def wbk(unit: str, decision: str) -> WbkEvaluated:
    check = ThresholdCheck(name="total", value=80, minimum=75, passed=decision == "layak_wbk")
    result = WbkResult(unit_code=unit, cycle_year=YEAR, threshold_set="permenpanrb-90-2021", total=80, leverage_total=50, automatic=decision, final=decision, failed=[], checks=[check])  # type: ignore[arg-type]
    return WbkEvaluated(cycle_year=YEAR, result=result, unit_name=f"UPT {unit}", agency_code="OPD-X")


def cmd(name: str) -> str:
    return subjects.command("awards", name)


def test_rules_are_validated_all_at_once():
    bad = [
        AwardRule(key="a", rule="top_n", name_id="A", name_en="A"),
        AwardRule(key="a", rule="lottery", name_id="B", name_en="B"),
        AwardRule(key="c", rule="best_of_group", name_id="C", name_en="C", per_group=True),
    ]
    fields = [p["field"] for p in domain.rule_problems(bad)]
    assert fields == ["rules[0].n", "rules[1].key", "rules[1].rule", "rules[2].group", "rules[2].per_group"]


async def test_the_ceremony_from_events_to_certificates(nats_url, nc, js, tmp_path):
    settings = Settings(var_dir=tmp_path, results_dir=tmp_path / "results")
    async with running(create_app(settings), nats_url, f"sqlite+aiosqlite:///{tmp_path}/a.db"):
        early = await request(nc, cmd("determine_awards"), determine_body())
        assert early["error"]["code"] == "not_ready"
        final = ShortlistFinal(cycle_year=YEAR, stage="field", announcement_no="007/PANSEL", rows=rows(), digest=digest_ids(r.proposal_id for r in rows()))
        await js.publish(final.subject(), final.model_dump_json().encode())
        for unit, decision in (("OPD-X-U01", "layak_wbk"), ("OPD-X-U02", "belum_layak")):
            evt = wbk(unit, decision)
            await js.publish(evt.subject(), evt.model_dump_json().encode())

        async def determined():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("determine_awards"), determine_body("det-2"))
            return r if r["ok"] else None

        first = (await eventually(determined))["data"]
        again = await request(nc, cmd("determine_awards"), determine_body("det-3"))
        assert again["data"] == first
        assert first["categories"] == {"top": 3, "per_group": 2, "replikasi": 0, "wbk": 1}

        results = (await request(nc, cmd("get_results"), {"cycle_year": YEAR}))["data"]
        cats = {c["key"]: c for c in results["categories"]}
        assert [w["proposal_id"] for w in cats["top"]["winners"]] == ["P1", "P2", "P3"]
        assert [w["proposal_id"] for w in cats["per_group"]["winners"]] == ["P1", "P3"]
        assert cats["replikasi"]["winners"] == [] and "replikasi" in cats["replikasi"]["empty_reason"]
        assert [w["unit_code"] for w in cats["wbk"]["winners"]] == ["OPD-X-U01"]
        certs = list((tmp_path / "results" / str(YEAR) / "certificates").glob("*.pdf"))
        assert len(certs) == 6  # issued once, not again on the retry

        winner = cats["top"]["winners"][0]
        text = pypdf.PdfReader(winner["certificate_path"]).pages[0].extract_text()
        assert "PIAGAM PENGHARGAAN" in text and winner["unit_name"] in text and winner["certificate_code"] in text
        assert "19 November 2034" in text and "TOP 3 Innovations" in text
        assert text.count("Gubernur Jawa Timur,") == 1 and text.count("Dr. Contoh Penandatangan") == 1
        wbk_text = pypdf.PdfReader(cats["wbk"]["winners"][0]["certificate_path"]).pages[0].extract_text()
        assert wbk_text.count("Layak WBK") == 1  # named alike in both languages: once
        ok = (await request(nc, cmd("verify_certificate"), {"code": winner["certificate_code"]}))["data"]
        assert ok["valid"] and ok["recipient"] == winner["unit_name"] and ok["award_key"] == "top"
        forged = winner["certificate_code"][:-1] + ("A" if winner["certificate_code"][-1] != "A" else "B")
        assert (await request(nc, cmd("verify_certificate"), {"code": forged}))["data"]["valid"] is False

        elsewhere = {**determine_body()["ceremony"], "venue": "Somewhere Else"}
        redetermined = await request(nc, cmd("determine_awards"), {**determine_body("det-x"), "ceremony": elsewhere})
        assert redetermined["error"]["code"] == "ceremony_mismatch", redetermined
        refused = await request(nc, cmd("announce_awards"), {"request_id": "ann-x", "cycle_year": YEAR, "ceremony": elsewhere, "at": "2034-11-19T19:00:00+07:00"})
        assert refused["error"]["code"] == "ceremony_mismatch", refused
        assert refused["error"]["details"]["given"]["venue"] == "Somewhere Else"
        announced = await request(nc, cmd("announce_awards"), {"request_id": "ann", "cycle_year": YEAR, "ceremony": determine_body()["ceremony"], "at": "2034-11-19T19:00:00+07:00"})
        assert announced["data"]["announcement_no"] == f"001/PENGHARGAAN-BFEST/{YEAR}"
        again = await request(nc, cmd("announce_awards"), {"request_id": "ann-2", "cycle_year": YEAR, "ceremony": elsewhere, "at": "2034-11-19T19:00:00+07:00"})
        assert again["error"]["code"] == "ceremony_mismatch"  # nothing announced twice, nothing changed
        results = (await request(nc, cmd("get_results"), {"cycle_year": YEAR}))["data"]
        assert results["ceremony"]["venue"] == determine_body()["ceremony"]["venue"] and results["announcement_no"] == announced["data"]["announcement_no"]
        files = (await request(nc, cmd("get_results"), {"cycle_year": YEAR}))["data"]["files"]
        html = Path(files["html"]).read_text()
        table = list(csv.DictReader(Path(files["awards_csv"]).open()))
        for c in cats.values():
            for w in c["winners"]:
                assert w["unit_name"] in html
                assert any(r["unit_code"] == w["unit_code"] and r["award_key"] == c["key"] for r in table)
        assert f"001/PENGHARGAAN-BFEST/{YEAR}" in html
        assert len(list(csv.DictReader(Path(files["ranking_csv"]).open()))) == len(GROUPS)


def test_units_worthy_of_wbk_are_listed_best_total_first():
    units = [
        {"unit_code": "KAB-A-U01", "total": 87.3},
        {"unit_code": "KAB-B-U01", "total": 90.22},
        {"unit_code": "KAB-C-U01", "total": None},
        {"unit_code": "KAB-D-U01", "total": 89.71},
        {"unit_code": "KAB-0-U01", "total": 89.71},
    ]
    [wbk_category] = domain.determine([AwardRule.model_validate(RULES[3])], [], units)
    listed = [(w.rank, w.unit_code, w.score) for w in wbk_category.winners]
    assert listed == [
        (1, "KAB-B-U01", 90.22),
        (2, "KAB-0-U01", 89.71),
        (3, "KAB-D-U01", 89.71),
        (4, "KAB-A-U01", 87.3),
        (5, "KAB-C-U01", None),
    ]


def test_a_passing_grade_is_compared_with_the_raw_grade_not_the_normalised_score():
    # A harsh juror's best proposal normalises high; its raw grade is what the jurors gave.
    shortlist = [
        {**rows()[0].model_dump(mode="json"), "score": 8.56, "raw_score": 3.0},
        {**rows()[1].model_dump(mode="json"), "score": 7.9, "raw_score": 8.5},
    ]
    rule = AwardRule.model_validate({"key": "pass", "rule": "top_n", "n": 3, "min_score": 8, "name_id": "Lulus", "name_en": "Passed"})
    [category] = domain.determine([rule], shortlist, [])
    assert [w.proposal_id for w in category.winners] == ["P2"]
    # A final stage ranked before raw grades were kept (raw_score none) is judged by its score.
    before = [{**row, "raw_score": None} for row in shortlist]
    [earlier] = domain.determine([rule], before, [])
    assert [w.proposal_id for w in earlier.winners] == ["P1"]
    nobody = AwardRule.model_validate({**rule.model_dump(), "min_score": 9})
    [empty] = domain.determine([nobody], shortlist, [])
    assert empty.winners == [] and empty.empty_reason == "no proposal reached the passing grade"
