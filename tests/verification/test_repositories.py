"""Verification's SQL repositories against a real database (SQLite, and PostgreSQL when
``BFEST_TEST_POSTGRES_URL`` is set): aggregates saved and loaded back equal, the bulk insert and
the database's counts, and the reads that go by chunks of ids."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from contracts.base import AdminDecision, Competition, EvaluationKind, SetRef, WbkDecision, digest_ids
from contracts.verification import AdminRules, OverrideDecision, OverrideWbk, StartVerification, SubmitLke
from services.verification import domain, rubric_files
from services.verification.domain import RunState, Verification, WbkEvaluation
from services.verification.store import (
    IN_CHUNK,
    Base,
    SqlCopies,
    SqlDecisions,
    SqlEvaluations,
    SqlRounds,
    SqlRuns,
    SqlWbkResults,
)
from services.verification.thresholds import threshold_sets
from tests.verification.test_verification import CLOSED, YEAR, lke, snapshot

N = IN_CHUNK * 2 + 7  # more ids than one IN list takes


@pytest.fixture
async def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
    await engine.dispose()


async def test_a_run_with_its_decisions_round_trips(sessions):  # type: ignore[no-untyped-def]
    snaps = [snapshot(f"P{i:04d}", f"Inovasi {i}", **({"started_on": "2032-01-01"} if i % 3 == 0 else {})) for i in range(N)]
    async with sessions() as s, s.begin():
        copies = SqlCopies(s)
        for snap in snaps:
            await copies.remember(YEAR, snap, True)
        await copies.remember(YEAR + 1, snapshot("Q1", "Tahun Lain"), True)
        await copies.remember(YEAR, snapshot("W1", "Ditarik"), True)
        await copies.remember(YEAR, snapshot("W1", "Ditarik"), False)  # withdrawn after all
    ids = sorted(s["id"] for s in snaps)
    cmd = StartVerification(
        request_id="r",
        cycle_year=YEAR,
        expected=SetRef(count=N, digest=digest_ids(ids)),
        call_closed_at=CLOSED,
        deadline=CLOSED + dt.timedelta(days=15),
        rules=AdminRules(review_required=True, verifiers=["V1"]),
        at=CLOSED,
    )
    async with sessions() as s, s.begin():
        forwarded = await SqlCopies(s).forwarded(YEAR)
        assert sorted(pid for pid, _ in forwarded) == ids
        run, decisions, _ = Verification.start(cmd, forwarded)
        await SqlDecisions(s).add_all(decisions)
        await SqlRuns(s).save(run)
    async with sessions() as s, s.begin():
        runs, repo = SqlRuns(s), SqlDecisions(s)
        loaded = await runs.get(YEAR)
        assert loaded == run and loaded.rules.verifiers == ["V1"]
        counts = domain.tally(YEAR, loaded, await repo.tally(YEAR))
        assert (counts.total, counts.pending) == (N, N)
        assert (await repo.pending_ids(YEAR, 5)) == ids[:5]
        p0 = await repo.get(ids[0])
        assert p0 == next(d for d in decisions if d.proposal_id == ids[0]) and p0 is not None
        ov = OverrideDecision(request_id="o", cycle_year=YEAR, proposal_id=ids[0], decision=AdminDecision.ELIGIBLE, reason="checked", verifier_id="V1")
        p0, _ = loaded.override(p0, ov, snaps[0], CLOSED)
        await repo.save(p0)
        counts = domain.tally(YEAR, loaded, await repo.tally(YEAR))  # sees the unflushed change
        assert (counts.pending, counts.eligible, counts.overridden) == (N - 1, 1, 1)
    async with sessions() as s, s.begin():
        runs, repo = SqlRuns(s), SqlDecisions(s)
        loaded = await runs.get(YEAR)
        assert loaded is not None
        all_decisions = await repo.for_year(YEAR)
        pending = [d.proposal_id for d in all_decisions if d.pending]
        snapshots = await SqlCopies(s).snapshots(pending)
        assert len(snapshots) == N - 1 > 2 * IN_CHUNK
        loaded.close(all_decisions, snapshots, [])
        await repo.save(*all_decisions)
        await runs.save(loaded)
    async with sessions() as s:
        closed = await SqlRuns(s).get(YEAR)
        assert closed is not None and closed.state == RunState.CLOSED and closed.summary == loaded.summary
        counts = domain.tally(YEAR, closed, await SqlDecisions(s).tally(YEAR))
        assert counts.pending == 0 and counts.eligible + counts.disqualified == N
        assert (await SqlDecisions(s).get(ids[0])).overrides[0]["verifier_id"] == "V1"  # type: ignore[union-attr]


async def test_a_wbk_evaluation_round_trips_and_a_new_sheet_replaces_it(sessions):  # type: ignore[no-untyped-def]
    thresholds = threshold_sets()["permenpanrb-90-2021"]
    first, _ = WbkEvaluation.evaluate(SubmitLke(request_id="a", cycle_year=YEAR, unit_code="U1", unit_name="Satu", lke=lke(performance=2.49)), thresholds)
    async with sessions() as s, s.begin():
        await SqlWbkResults(s).save(first)
    async with sessions() as s, s.begin():
        repo = SqlWbkResults(s)
        loaded = await repo.get(YEAR, "U1")
        assert loaded == first
        cmd = OverrideWbk(request_id="o", cycle_year=YEAR, unit_code="U1", decision=WbkDecision.LAYAK_WBK, reason="survey re-run", verifier_id="V2")
        overridden, _ = domain.override_wbk(None, loaded, cmd, CLOSED)
        await repo.save(overridden)
    async with sessions() as s, s.begin():
        repo = SqlWbkResults(s)
        assert [e.overrides[0]["verifier_id"] for e in await repo.for_year(YEAR)] == ["V2"]
        second, _ = WbkEvaluation.evaluate(SubmitLke(request_id="b", cycle_year=YEAR, unit_code="U1", lke=lke()), thresholds)
        await repo.save(second)  # not loaded first: the repository finds the row itself
    async with sessions() as s:
        [only] = await SqlWbkResults(s).for_year(YEAR)
        assert only == second and only.overrides == [] and only.unit_name is None


async def test_each_track_keeps_its_run_copies_and_decisions(sessions):  # type: ignore[no-untyped-def]
    kbk = {**snapshot("K1", "Risalah Satu"), "track": "kbk", "group_code": "KBK-1"}
    async with sessions() as s, s.begin():
        copies = SqlCopies(s)
        await copies.remember(YEAR, snapshot("P1", "Inovasi Satu"), True)
        await copies.remember(YEAR, kbk, True)
    async with sessions() as s, s.begin():
        copies = SqlCopies(s)
        assert [pid for pid, _ in await copies.forwarded(YEAR)] == ["P1"]
        forwarded = await copies.forwarded(YEAR, Competition.KBK)
        assert [pid for pid, _ in forwarded] == ["K1"]
        cmd = StartVerification(
            request_id="k", cycle_year=YEAR, track=Competition.KBK, expected=SetRef(count=1, digest=digest_ids(["K1"])),
            call_closed_at=CLOSED, deadline=CLOSED + dt.timedelta(days=15), rules=AdminRules(), at=CLOSED,
        )  # fmt: skip
        run, decisions, _ = Verification.start(cmd, forwarded)
        await SqlDecisions(s).add_all(decisions)
        await SqlRuns(s).save(run)
    async with sessions() as s:
        runs, repo = SqlRuns(s), SqlDecisions(s)
        assert await runs.get(YEAR) is None and await runs.get(YEAR, Competition.KBK) == run
        assert [r.track for r in await runs.for_year(YEAR)] == [Competition.KBK]
        assert await repo.tally(YEAR) == [] and [n for *_, n in await repo.tally(YEAR, Competition.KBK)] == [1]
        [k1] = await repo.for_year(YEAR, Competition.KBK)
        assert k1.track == Competition.KBK and await repo.get("K1") == k1 and await repo.for_year(YEAR) == []


async def test_an_evaluation_round_and_its_sheets_round_trip(sessions):  # type: ignore[no-untyped-def]
    from tests.verification.test_evaluations import AT, GOOD, SAKIP, entered, opened, review

    found = opened(SAKIP, evaluators=["E1"], reviewers=None)
    sheets = [entered(SAKIP, GOOD, subject=f"OPD-{i}")[0] for i in range(3)]
    sheets[1].review(review(SAKIP, subject="OPD-1"), AT)
    async with sessions() as s, s.begin():
        await SqlRounds(s).save(found)
        await SqlEvaluations(s).save(*sheets)
    async with sessions() as s, s.begin():
        rounds, repo = SqlRounds(s), SqlEvaluations(s)
        assert await rounds.get(YEAR, SAKIP) == found and await rounds.get(YEAR, EvaluationKind.RB) is None
        assert await repo.get(YEAR, SAKIP, "OPD-1") == sheets[1]
        assert await repo.tally(YEAR, SAKIP) == {"entered": 2, "approved": 1}
        page, total = await repo.page(YEAR, SAKIP, "entered", 1, 10)
        assert total == 2 and [e.view.subject_code for e in page] == ["OPD-2"]
        loaded = await repo.for_round(YEAR, SAKIP)
        found.close(loaded, rubric_files.rubric(found.rubric, "sakip"), {})
        await repo.save(*loaded)
        await rounds.save(found)
    async with sessions() as s:
        closed = await SqlRounds(s).get(YEAR, SAKIP)
        assert closed == found and closed is not None and closed.summary is not None and closed.summary.approved == 1
