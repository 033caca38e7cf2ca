"""When an account's credential report is due: never before AWS would make a new one, each account at
its own stable phase, so the hours after the first sweep are not a first sweep again."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from bot.service import REPORT_MARGIN, report_due

CADENCE = timedelta(hours=4)
INTERVAL = timedelta(minutes=5)
T0 = datetime(2026, 11, 28, 9, 0, 7, tzinfo=UTC)
GENERATION = timedelta(seconds=40)  # AWS takes a while to make a report


def _sweeps(start: datetime, until: datetime):
    at = start
    while at <= until:
        yield at
        at += INTERVAL


def test_a_report_never_seen_is_due_at_once():
    assert report_due("111122223333", None, T0, CADENCE)


def test_never_due_before_aws_would_make_a_new_report():
    for n in range(200):
        account = f"{100000000000 + n}"
        assert not report_due(account, T0, T0 + CADENCE - timedelta(seconds=1), CADENCE)
        assert report_due(account, T0, T0 + CADENCE + CADENCE + REPORT_MARGIN, CADENCE)


def test_after_the_first_sweep_reports_fall_due_evenly_not_all_at_once():
    accounts = [f"{200000000000 + 7919 * n}" for n in range(2000)]
    seen = {account: T0 + GENERATION for account in accounts}
    per_sweep = Counter()
    for at in _sweeps(T0 + INTERVAL, T0 + 3 * CADENCE):
        for account in accounts:
            if report_due(account, seen[account], at, CADENCE):
                per_sweep[at] += 1
                seen[account] = at + GENERATION
    period = CADENCE + REPORT_MARGIN
    expected = len(accounts) * (INTERVAL / period)  # ~39 a sweep
    assert max(per_sweep.values()) < 2.5 * expected  # no sweep is a first sweep again
    assert min(per_sweep[at] for at in _sweeps(T0 + CADENCE + INTERVAL, T0 + 2 * CADENCE)) > 0


def test_each_account_keeps_its_phase_one_report_per_cadence_and_margin():
    for n in range(50):
        account = f"{300000000000 + 104729 * n}"
        seen, fetches = T0 + GENERATION, []
        for at in _sweeps(T0 + INTERVAL, T0 + timedelta(days=4)):
            if report_due(account, seen, at, CADENCE):
                fetches.append(at)
                seen = at + GENERATION
        gaps = [b - a for a, b in zip(fetches[1:], fetches[2:])]  # after the first, stagger-setting one
        assert gaps and all(abs(gap - (CADENCE + REPORT_MARGIN)) <= INTERVAL for gap in gaps), (account, gaps)
