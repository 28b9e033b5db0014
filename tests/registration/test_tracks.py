"""Registration's tracks and archive over a real nats-server: KBK's call beside KOVABLIK's (its own
quota and closing digest), a risalah by its group only, replications of archived innovations, and
the innovation archive (rumah inovasi) fed by verification's, scoring's and awards' events — on
SQLite and PostgreSQL; the archive's CSV through `bfest archive import`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from contracts.awards import AwardsDetermined, CategoryResult
from contracts.base import digest_ids
from contracts.registration import ProposalSubmitted
from contracts.scoring import JurorsAssigned
from contracts.verification import VerificationClosed, VerificationClosedSummary
from services.common import authz
from services.common.settings import Settings
from services.registration.app import create_app
from tests.registration.test_service import YEAR, cmd, content, forward, setup_call, submit
from tests.support import caught_up, eventually, request, running, stream_messages

GROUPS = [
    {"code": "KAB-MALANG-U01-KBK1", "name": "KBK Sigap", "kind": "kbk", "parent_code": "KAB-MALANG-U01"},
    {"code": "KAB-MALANG-U02-KBK2", "name": "KBK Cekatan", "kind": "kbk", "parent_code": "KAB-MALANG-U02"},
]
KBK1, KBK2 = GROUPS[0]["code"], GROUPS[1]["code"]


def group(code: str) -> dict:
    return {"id": code, "role": "kbk_group"}


async def risalah(nc, group_code: str, title: str, actor: str | None = None, pid: str | None = None, rid: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    body = {"request_id": rid or f"r-{group_code}-{title}-{pid}", "cycle_year": YEAR, "group_code": group_code, "content": content(title)}
    if pid:
        body["proposal_id"] = pid
    return await request(nc, cmd("submit_risalah"), body, actor=group(actor or group_code))


async def open_kbk(nc, quota: int = 1) -> dict:  # type: ignore[no-untyped-def]
    return await request(
        nc,
        cmd("open_call"),
        {"request_id": "open-kbk", "cycle_year": YEAR, "track": "kbk", "opens_at": "2031-03-01T08:00:00+07:00", "closes_at": "2031-05-31T12:00:00+07:00", "quota_per_agency": quota},
    )


async def test_kbk_runs_its_own_call_quota_and_digest_and_a_risalah_is_its_groups_only(nats_url, nc, js, database_url):
    async with running(create_app(), nats_url, database_url):
        await setup_call(nc, quota=1)
        r = await request(nc, cmd("import_participants"), {"request_id": "groups", "participants": GROUPS})
        assert r["ok"] and r["data"]["created"] == 2, r
        bad = await request(nc, cmd("import_participants"), {"request_id": "bad-group", "participants": [{"code": "KBK-X", "name": "X", "kind": "kbk", "parent_code": "KAB-MALANG"}]})
        assert bad["error"]["code"] == "invalid_participant" and "must be a unit" in bad["error"]["message"]

        early = await risalah(nc, KBK1, "Risalah Antrian", rid="early")
        assert early["error"]["code"] == "call_not_open" and early["error"]["details"] == {"cycle_year": YEAR, "track": "kbk"}
        assert (await open_kbk(nc))["data"]["track"] == "kbk"
        kbk_call = await request(nc, cmd("get_call"), {"cycle_year": YEAR, "track": "kbk"})
        kov_call = await request(nc, cmd("get_call"), {"cycle_year": YEAR})
        assert (kbk_call["data"]["quota_per_agency"], kov_call["data"]["track"]) == (1, "kovablik")

        first = await risalah(nc, KBK1, "Risalah Antrian")
        assert first["ok"], first
        data = first["data"]
        assert (data["id"], data["track"], data["group_code"], data["unit_code"], data["agency_code"]) == (f"K{YEAR}-00001", "kbk", KBK1, "KAB-MALANG-U01", "KAB-MALANG")
        assert (await risalah(nc, "KAB-MALANG-U03", "Bukan kelompok"))["error"]["code"] == "not_a_group"
        other = await risalah(nc, KBK2, "Atas nama orang lain", actor=KBK1)
        assert other["error"]["code"] == "not_your_group"
        as_unit = await request(
            nc, cmd("submit_risalah"), {"request_id": "as-unit", "cycle_year": YEAR, "group_code": KBK1, "content": content("Unit")}, actor={"id": "KAB-MALANG-U01", "role": "unit"}
        )
        assert as_unit["error"]["code"] in ("not_your_group", "forbidden"), as_unit

        # Returned, then resubmitted by its group only (another group's is as good as missing).
        ret = await request(nc, cmd("return_proposal"), {"request_id": "ret-k", "cycle_year": YEAR, "agency_code": "KAB-MALANG", "proposal_id": data["id"], "reason": "Lengkapi risalah"})
        assert ret["ok"] and ret["data"]["status"] == "returned", ret
        assert (await risalah(nc, KBK2, "Risalah Antrian", pid=data["id"]))["error"]["code"] == "not_found"
        assert (await risalah(nc, KBK1, "Risalah Antrian Revisi", pid=data["id"]))["data"]["status"] == "submitted"
        second = (await risalah(nc, KBK2, "Risalah Posyandu"))["data"]

        # One innovation and one risalah forwarded: each competition's quota of one.
        innovation = (await submit(nc, "KAB-MALANG-U05", "Antrian Online"))["data"]["id"]
        assert (await forward(nc, innovation))["ok"]
        fwd = await forward(nc, data["id"])
        assert fwd["ok"] and fwd["data"]["track"] == "kbk", fwd
        full = await forward(nc, second["id"])
        assert full["error"]["code"] == "quota_exceeded" and full["error"]["details"]["forwarded"] == [data["id"]]

        kbk_only = await request(nc, cmd("list_proposals"), {"cycle_year": YEAR, "track": "kbk"})
        assert sorted(p["id"] for p in kbk_only["data"]["items"]) == sorted([data["id"], second["id"]])
        closed = await request(nc, cmd("close_call"), {"request_id": "close-kbk", "cycle_year": YEAR, "track": "kbk", "at": "2031-05-31T12:00:00+07:00"})
        assert closed["data"]["track"] == "kbk" and closed["data"]["forwarded_digest"] == digest_ids([data["id"]])
        assert (await request(nc, cmd("get_call"), {"cycle_year": YEAR}))["data"]["state"] == "open"  # KOVABLIK's goes on
        late = await risalah(nc, KBK2, "Terlambat")
        assert late["error"]["code"] == "call_closed" and late["error"]["details"]["track"] == "kbk"
        kov = await request(nc, cmd("close_call"), {"request_id": "close", "cycle_year": YEAR, "at": "2031-04-30T12:00:00+07:00"})
        assert (kov["data"]["track"], kov["data"]["forwarded_digest"]) == ("kovablik", digest_ids([innovation]))

        async def submitted_risalah():  # type: ignore[no-untyped-def]
            msgs = await stream_messages(js, ProposalSubmitted.subject())
            snaps = [json.loads(m.data)["proposal"] for m in msgs]
            return [s for s in snaps if s["track"] == "kbk"]

        snaps = await eventually(submitted_risalah)
        assert {(s["group_code"], s["group_name"]) for s in snaps} >= {(KBK1, "KBK Sigap")}


async def publish(js, *events) -> None:  # type: ignore[no-untyped-def]
    for evt in events:
        await js.publish(evt.subject(), evt.model_dump_json().encode(), headers={"Nats-Msg-Id": evt.event_id})


def winner(pid: str | None, unit: str) -> dict:
    return {"award_key": "x", "rank": 1, "proposal_id": pid, "unit_code": unit, "unit_name": unit}


ARCHIVE_CSV = (
    "id,year,title,unit_name,agency_name,region,category,group,summary,stage_reached,award,replicates\n"
    "ARSIP-2019-001,2019,Antrian Puskesmas Keliling,Puskesmas Batu,Kota Batu,,kesehatan,umum,Layanan antrian keliling desa.,final,TOP 99 Kovablik,\n"
    "ARSIP-2019-002,2019,Sekolah Lapang,UPT Pertanian,Dinas Pertanian dan Ketahanan Pangan,,pertanian,umum,Petani belajar di lahan.,desk,,\n"
)


async def bfest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "bfest")
    return await asyncio.to_thread(subprocess.run, [exe, *args], capture_output=True, text=True, env=env, timeout=90)


async def test_the_archive_learns_stages_and_awards_and_links_replications_both_ways(nats_url, nc, js, database_url, tmp_path):
    async with running(create_app(Settings(var_dir=tmp_path)), nats_url, database_url):
        await setup_call(nc, quota=3)
        env = {**os.environ, "BFEST_NATS_URL": nats_url, "BFEST_VAR_DIR": str(tmp_path), "COLUMNS": "200"}
        bad = tmp_path / "bad.csv"
        bad.write_text(ARCHIVE_CSV + "ARSIP-2019-003,tahun,Judul,U,A,,kesehatan,umum,Ringkas.,,,\nARSIP-2019-004,2019,,U,A,,kesehatan,umum,Ringkas.,,,\n")
        out = await bfest("archive", "import", str(bad), env=env)
        assert out.returncode == 1, out.stdout + out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 2 and "line 4: year: " in lines[0] and "line 5: title: " in lines[1], out.stderr
        good = tmp_path / "arsip.csv"
        good.write_text(ARCHIVE_CSV)
        out = await bfest("archive", "import", str(good), env=env)
        assert out.returncode == 0 and "imported 2 new, 0 changed; the archive holds 2" in out.stdout, out.stdout + out.stderr
        again = await bfest("archive", "import", str(good), env=env)
        assert "imported 0 new, 0 changed; the archive holds 2" in again.stdout, again.stdout + again.stderr

        unknown = await request(
            nc, cmd("submit_proposal"), {"request_id": "rep-x", "cycle_year": YEAR, "unit_code": "KAB-MALANG-U03", "content": content("Replikasi", group="replikasi", replicates="ARSIP-1999-404")}
        )
        assert unknown["error"]["code"] == "unknown_original" and unknown["error"]["details"] == {"replicates": "ARSIP-1999-404"}
        ids = []
        for unit, title, extra in [
            ("KAB-MALANG-U01", "Antrian Online Puskesmas", {}),
            ("KAB-MALANG-U02", "Posyandu Digital", {}),
            ("KAB-MALANG-U03", "Antrian Keliling Malang", {"group": "replikasi", "replicates": "ARSIP-2019-001"}),
            ("OPD-DINKES-U01", "Ambulans Desa", {}),
        ]:
            r = await request(nc, cmd("submit_proposal"), {"request_id": f"s-{unit}", "cycle_year": YEAR, "unit_code": unit, "content": content(title, **extra)})
            assert r["ok"], r
            assert (await forward(nc, r["data"]["id"], agency=r["data"]["agency_code"]))["ok"]
            ids.append(r["data"]["id"])
        p1, p2, p3, p4 = ids

        archive = {"request_id": "arch", "cycle_year": YEAR, "expected_winners": 2, "at": "2031-12-01T12:00:00+07:00"}
        early = await request(nc, cmd("archive_year"), archive)
        assert early["error"]["code"] == "not_ready" and early["error"]["details"]["have"] is None, early
        t0 = dt.datetime(2031, 6, 1, tzinfo=dt.UTC)
        summary = VerificationClosedSummary(cycle_year=YEAR, eligible=3, disqualified=1, overridden=0, eligible_digest=digest_ids([p1, p2, p3]))
        await publish(
            js,
            VerificationClosed(cycle_year=YEAR, summary=summary, eligible_ids=[p1, p2, p3], occurred_at=t0),
            JurorsAssigned(cycle_year=YEAR, stage="desk", proposals=2, jurors=1, assignments=2, load_min=2, load_max=2, proposal_ids=[p1, p2], occurred_at=t0 + dt.timedelta(days=5)),
            # p1 entered the presentation stage and was never scored there: it reached it all the same.
            JurorsAssigned(cycle_year=YEAR, stage="presentasi", proposals=1, jurors=1, assignments=1, load_min=1, load_max=1, proposal_ids=[p1], occurred_at=t0 + dt.timedelta(days=30)),
        )

        # Each upstream has its own durable: in a real year the awards come weeks after the last
        # stage; here they are published once the stages' events are consumed.
        for upstream in ("verification", "scoring"):
            await eventually(lambda u=upstream: caught_up(js, authz.service_durable("registration", u)))
        await publish(
            js,
            AwardsDetermined(
                cycle_year=YEAR,
                categories=[
                    CategoryResult.model_validate({"key": "top", "name_id": "TOP Inovasi Terpuji", "name_en": "Top", "rule": "top_n", "winners": [winner(p1, "KAB-MALANG-U01")]}),
                    CategoryResult.model_validate({"key": "aa", "track": "sakip", "name_id": "SAKIP AA", "name_en": "AA", "rule": "grade", "winners": [winner(None, "OPD-DINKES")]}),
                ],
            ),
        )

        async def archived():  # type: ignore[no-untyped-def]
            r = await request(nc, cmd("archive_year"), {**archive, "request_id": f"arch-{asyncio.get_running_loop().time()}"})
            return r["data"] if r["ok"] else None

        done = await eventually(archived)
        assert done == {"cycle_year": YEAR, "entries": 4, "awarded": 1}
        wrong = await request(nc, cmd("archive_year"), {**archive, "request_id": "arch-again", "expected_winners": 9})
        assert wrong["data"] == done  # archived once: answered as it was

        entry = (await request(nc, cmd("get_archived"), {"id": p1}))["data"]
        assert (entry["stage_reached"], entry["award"], entry["region"], entry["year"]) == ("presentasi", "TOP Inovasi Terpuji", "Kabupaten Malang", YEAR)
        assert "contact" not in entry and "malangkab.go.id" not in json.dumps(entry)
        stages = {i: (await request(nc, cmd("get_archived"), {"id": i}))["data"]["stage_reached"] for i in (p2, p3, p4)}
        assert stages == {p2: "desk", p3: "verification", p4: None}
        dinkes = (await request(nc, cmd("get_archived"), {"id": p4}))["data"]
        assert dinkes["region"] == "Provinsi Jawa Timur"

        original = (await request(nc, cmd("get_archived"), {"id": "ARSIP-2019-001"}))["data"]
        assert original["imported"] and original["region"] == "Kota Batu"
        assert [(r["id"], r["region"], r["unit_name"]) for r in original["replications"]] == [(p3, "Kabupaten Malang", "Puskesmas 3")]
        replica = (await request(nc, cmd("get_archived"), {"id": p3}))["data"]
        assert replica["replicates"]["id"] == "ARSIP-2019-001" and replica["replicates"]["year"] == 2019

        async def search(**query: object) -> dict:
            r = await request(nc, cmd("search_archive"), query)
            assert r["ok"], r
            return r["data"]

        found = await search(text="ANTRIAN")
        assert [i["id"] for i in found["items"]] == [p1, p3, "ARSIP-2019-001"] and found["total"] == 3
        assert found["items"][1]["replicates"]["id"] == "ARSIP-2019-001"
        assert [i["id"] for i in (await search(text="antrian keliling"))["items"]] == [p3, "ARSIP-2019-001"]
        assert [i["id"] for i in (await search(awarded_only=True, year=YEAR))["items"]] == [p1]
        assert [i["id"] for i in (await search(region="Provinsi Jawa Timur"))["items"]] == [p4, "ARSIP-2019-002"]
        assert [i["id"] for i in (await search(group="replikasi"))["items"]] == [p3]
        assert (await search(agency_code="OPD-DINKES"))["total"] == 1 and (await search(text="100%_"))["total"] == 0
        page = await search(limit=2)
        assert page["total"] == 6 and page["next_offset"] == 2 and len(page["items"]) == 2
        last = await search(limit=2, offset=4)
        assert last["next_offset"] is None and [i["year"] for i in last["items"]] == [2019, 2019]
        missing = await request(nc, cmd("get_archived"), {"id": "ARSIP-1999-404"})
        assert missing["error"]["code"] == "not_found"


def test_who_may_send_the_risalah_and_archive_commands():
    from services.common import authz

    def sends(identity: str) -> set[str]:
        return {s.rsplit(".", 1)[-1] for s in authz.grants(identity).publish if s.startswith("bfest.registration.cmd.")}

    assert {"submit_risalah", "search_archive", "get_archived"} <= sends(authz.PORTAL)
    assert {"archive_year", "import_archive"}.isdisjoint(sends(authz.PORTAL))
    assert "archive_year" in sends(authz.WORKER) and {"submit_risalah", "import_archive"}.isdisjoint(sends(authz.WORKER))
    assert {"import_archive", "search_archive"} <= sends(authz.CLI) and "archive_year" not in sends(authz.CLI)
    assert sends(authz.AUDITOR) & {"submit_risalah", "archive_year", "import_archive"} == set()
