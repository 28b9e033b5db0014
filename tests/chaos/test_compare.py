"""How a fault's year is compared with the undisturbed one (pure: runs in every `make test`)."""

from __future__ import annotations

from collections import Counter

from contracts.scoring import ReminderDue
from tests.chaos import harness

STAGE = "bfest.evt.cycle.stage_changed.v1"
SCORED = "bfest.evt.scoring.score_submitted.v1"
REMINDER = ReminderDue.subject()


def year(**changes: object) -> harness.Outcome:
    out = harness.Outcome(
        year=2066,
        awards=[("top", 1, "P-1", "U-1", 90.0, True)],
        ranking=[],
        certificates=[(True, "top", "U-1", 1)],
        events=Counter({STAGE: 9, SCORED: 171, REMINDER: 16}),
        duplicate_ids=0,
        outbox_unsent={"scoring": 0},
        dlq=0,
        completed=True,
        reminders=Counter({("desk", f"J{i:03d}"): 1 for i in range(16)}),
    )
    for key, value in changes.items():
        setattr(out, key, value)
    return out


def test_the_same_year_is_ok():
    line, ok = harness.compare("f", year(), year(), [])
    assert ok, line
    assert "lost=0 duplicated=0" in line


def test_reminders_follow_the_clock_and_are_not_compared_by_count():
    # Faster jurors this time: one reminder instead of sixteen; nothing was lost.
    faster = year(events=Counter({STAGE: 9, SCORED: 171, REMINDER: 1}), reminders=Counter({("desk", "J045"): 1}))
    line, ok = harness.compare("f", year(), faster, [])
    assert ok, line
    assert "reminders=1/16" in line


def test_a_juror_reminded_more_often_than_the_stage_schedules_is_a_duplicate():
    twice = year(reminders=Counter({("desk", "J045"): harness.REMINDERS_PER_STAGE + 1}))
    line, ok = harness.compare("f", year(), twice, [])
    assert not ok
    assert "duplicated=1" in line and "over_reminded=1" in line


def test_an_extra_event_per_subject_is_a_duplicate_and_a_missing_one_lost():
    extra = year(events=Counter({STAGE: 10, SCORED: 170, REMINDER: 16}))
    line, ok = harness.compare("f", year(), extra, [])
    assert not ok
    assert "lost=1 duplicated=1" in line
    assert "'cycle.stage_changed.v1': 1" in line and "'scoring.score_submitted.v1': -1" in line


def test_the_ledger_finds_an_event_published_twice_or_never():
    line, ok = harness.compare("f", year(), year(unrecorded=1, unpublished=2), [])
    assert not ok
    assert "lost=2 duplicated=1" in line


def test_a_different_award_is_not_identical():
    line, ok = harness.compare("f", year(), year(awards=[("top", 1, "P-2", "U-2", 88.0, True)]), [])
    assert not ok
    assert "identical=no" in line
