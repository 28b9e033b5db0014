"""KBK's jury stages beside KOVABLIK's (issue 26), over a real nats-server: a stage opened from
verification with ``track: kbk`` takes KBK's eligible risalah only, with its own key and
criteria, while KOVABLIK's stage of the same year takes the innovations; the copies keep their
track. Revision scoring_0005 keeps existing copies and eligible lists as KOVABLIK's."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from contracts import subjects
from contracts.base import digest_ids
from contracts.verification import (
    ProposalDisqualified,
    ProposalVerified,
    VerificationClosed,
    VerificationClosedSummary,
    VerifiedProposal,
)
from services.common.migrations import upgrade
from services.scoring.app import create_app
from tests.support import eventually, request, running

YEAR = 2036
INNOVATIONS = ["P1", "P2", "P3"]
RISALAH = ["R1", "R2", "R3", "R4"]
JURORS = [{"id": f"J{i}", "name": f"Juri {i}", "affiliation": f"UNIV-{i}", "conflicts": []} for i in range(1, 5)]
KBK_CRITERIA = [
    {"key": "masalah", "name": "Ketepatan masalah", "weight": 0.4, "scale_min": 1, "scale_max": 10},
    {"key": "solusi", "name": "Solusi dan dampak", "weight": 0.6, "scale_min": 1, "scale_max": 10},
]
KOVABLIK_CRITERIA = [{"key": "mutu", "name": "Mutu", "weight": 1.0, "scale_min": 1, "scale_max": 10}]


def cmd(name: str) -> str:
    return subjects.command("scoring", name)


def proposal(pid: str, track: str) -> VerifiedProposal:
    agency = f"KAB-{pid}"
    return VerifiedProposal(
        id=pid, title=f"{'Risalah' if track == 'kbk' else 'Inovasi'} {pid}", group="umum", category="pelayanan" if track == "kbk" else "kesehatan",
        unit_code=f"{agency}-U1", unit_name=f"Unit {pid}", agency_code=agency, agency_name=agency, track=track,  # type: ignore[arg-type]
        group_code=f"{agency}-U1-KBK1" if track == "kbk" else None,
    )


async def publish(js, evt) -> None:  # type: ignore[no-untyped-def]
    await js.publish(evt.subject(), evt.model_dump_json().encode())


def closed(track: str, ids: list[str]) -> VerificationClosed:
    summary = VerificationClosedSummary(cycle_year=YEAR, track=track, eligible=len(ids), disqualified=0, overridden=0, eligible_digest=digest_ids(ids))  # type: ignore[arg-type]
    return VerificationClosed(cycle_year=YEAR, summary=summary, eligible_ids=ids)


def open_body(stage: str, track: str, ids: list[str], criteria: list[dict]) -> dict:
    return {
        "request_id": f"open-{stage}",
        "cycle_year": YEAR,
        "stage": stage,
        "entrants": {"source": "verification", "track": track, "expected": {"count": len(ids), "digest": digest_ids(ids)}},
        "criteria": criteria,
        "jurors_per_proposal": 2,
        "advance": 2,
        "divergence_threshold": 3.0,
        "deadline": "2036-06-12T16:00:00+07:00",
        "seed": 1,
        "at": "2036-05-20T08:00:00+07:00",
    }


async def test_a_kbk_stage_from_verification_takes_only_kbk_s_eligible_risalah(nats_url, nc, js, sqlite_db):
    async with running(create_app(), nats_url, sqlite_db):
        assert (await request(nc, cmd("import_jurors"), {"request_id": "j", "jurors": JURORS}))["ok"]
        for pid in INNOVATIONS:
            await publish(js, ProposalVerified(cycle_year=YEAR, proposal=proposal(pid, "kovablik")))
        for pid in RISALAH:
            await publish(js, ProposalVerified(cycle_year=YEAR, proposal=proposal(pid, "kbk")))
        await publish(js, ProposalDisqualified(cycle_year=YEAR, proposal=proposal("R9", "kbk"), reasons=[]))
        await publish(js, closed("kovablik", INNOVATIONS))

        # KOVABLIK's list arrived, KBK's not yet: a KBK stage waits for its own
        early = await request(nc, cmd("open_stage"), open_body("kbk_desk", "kbk", RISALAH, KBK_CRITERIA))
        assert early["error"]["code"] == "not_ready" and early["error"]["details"]["track"] == "kbk", early
        # naming KOVABLIK's innovations as KBK's entrants is refused: they are not KBK's eligible set
        await publish(js, closed("kbk", RISALAH))

        async def opened(body: dict):  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("open_stage"), body)
            return r if r["ok"] else None

        wrong = {**open_body("kbk_wrong", "kbk", INNOVATIONS, KBK_CRITERIA), "request_id": "open-wrong"}
        kbk = (await eventually(lambda: opened({**open_body("kbk_desk", "kbk", RISALAH, KBK_CRITERIA), "request_id": "open-kbk-2"})))["data"]
        refused = await request(nc, cmd("open_stage"), wrong)
        assert refused["error"]["code"] == "not_ready" and refused["error"]["details"]["have"] == len(RISALAH), refused
        assert kbk["proposals"] == len(RISALAH) and kbk["assignments"] == 2 * len(RISALAH)
        kovablik = (await eventually(lambda: opened(open_body("desk", "kovablik", INNOVATIONS, KOVABLIK_CRITERIA))))["data"]
        assert kovablik["proposals"] == len(INNOVATIONS)

        status = (await request(nc, cmd("stage_status"), {"cycle_year": YEAR, "stage": "kbk_desk", "per_juror": True}))["data"]
        assigned = {pid for j in status["per_juror"] for pid in j["missing"]}
        assert assigned == set(RISALAH)  # no innovation, not the disqualified risalah
        juror = next(j for j in status["per_juror"] if j["missing"])
        pid = juror["missing"][0]
        # KBK's own criteria: KOVABLIK's key is not one of them
        off = await request(nc, cmd("submit_score"), {"request_id": "s-off", "cycle_year": YEAR, "stage": "kbk_desk", "juror_id": juror["juror_id"], "proposal_id": pid, "scores": {"mutu": 7}})
        assert not off["ok"], off
        ok = await request(nc, cmd("submit_score"), {"request_id": "s-ok", "cycle_year": YEAR, "stage": "kbk_desk", "juror_id": juror["juror_id"], "proposal_id": pid, "scores": {"masalah": 8, "solusi": 6}})
        assert ok["ok"] and ok["data"]["weighted_total"] == 6.8, ok

    engine = create_async_engine(sqlite_db)
    try:
        async with engine.begin() as conn:
            tracks = dict((await conn.execute(sa.text("SELECT id, track FROM sco_proposal"))).all())
            lists = {t: json.loads(ids) if isinstance(ids, str) else ids for t, ids in (await conn.execute(sa.text("SELECT track, eligible_ids FROM sco_entrants WHERE cycle_year = :y"), {"y": YEAR})).all()}
    finally:
        await engine.dispose()
    assert tracks == {**dict.fromkeys(INNOVATIONS, "kovablik"), **dict.fromkeys([*RISALAH, "R9"], "kbk")}
    assert lists == {"kovablik": INNOVATIONS, "kbk": RISALAH}


async def test_copies_and_eligible_lists_from_before_tracks_are_kovablik_s(database_url):
    await upgrade("scoring", database_url, "scoring_0004")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO sco_proposal (id, cycle_year, data) VALUES ('P1', 2031, :d)"), {"d": json.dumps({"id": "P1"})})
            await conn.execute(sa.text("INSERT INTO sco_entrants (cycle_year, eligible_ids) VALUES (2031, :ids)"), {"ids": json.dumps(["P1"])})
        await upgrade("scoring", database_url)
        async with engine.begin() as conn:
            assert (await conn.execute(sa.text("SELECT id, track FROM sco_proposal"))).all() == [("P1", "kovablik")]
            rows = (await conn.execute(sa.text("SELECT cycle_year, track, eligible_ids FROM sco_entrants"))).all()
            assert [(y, t, json.loads(i) if isinstance(i, str) else i) for y, t, i in rows] == [(2031, "kovablik", ["P1"])]
            # a KBK list of the same year sits beside it
            await conn.execute(sa.text("INSERT INTO sco_entrants (cycle_year, track, eligible_ids) VALUES (2031, 'kbk', '[]')"))
    finally:
        await engine.dispose()
