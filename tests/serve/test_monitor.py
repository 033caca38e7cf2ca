"""The monitor over evidence parts, in process: a real store (SQLite file) and a sweeper that hands
over scripted parts, so the bad days are exact: a Region failing, the store failing mid-sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.checks.cloudtrail import check_record
from bot.models import Account, AccountError, Evidence, SweepResult, Window
from bot.serve.monitor import GAP_AFTER, OVERLAP, Monitor
from bot.store import Store
from tests.records import root_login_record

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
ACCOUNT = Account("300000000501", channel="C0MON")


class Settings:
    org_discovery = False


class ScriptedSweeper:
    """Hands over, for each account, the parts a script gives for each Region it is asked about."""

    settings = Settings()

    def __init__(self, script):
        self.script = script
        self.windows: list[tuple[str, Window]] = []
        self.failed_callbacks = 0

    def accounts(self, discovered):
        return [ACCOUNT]

    def discover(self, owner_tag=None):
        return []

    def sweep(self, accounts, window, report_due, report_since, mfa_since, on_part) -> SweepResult:
        for account in accounts:
            for item in self.script(account, window):
                evidence, found = item if isinstance(item, tuple) else (item, None)
                if evidence.window is not None:
                    self.windows.append((evidence.region, evidence.window))
                try:  # as the real collector does: a failing callback is logged, the sweep goes on
                    on_part(
                        evidence,
                        found if found is not None else [f for f in (check_record(r) for r in evidence.records) if f],
                    )
                except ConnectionError:
                    self.failed_callbacks += 1
        return SweepResult()


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    yield s
    s.close()


def monitor(store, sweeper) -> Monitor:
    return Monitor(
        store, sweeper, "C0DEFAULT", timedelta(hours=24), timedelta(minutes=30), "me:1", frozenset(), clock=lambda: NOW
    )


def sweep_with(store, regions_failing=(), login=True):
    def script(account, window):
        for region in ("us-east-1", "eu-west-1"):
            records = (
                [root_login_record(account.id, NOW - timedelta(minutes=5))] if login and region == "us-east-1" else []
            )
            yield Evidence(account, "page", region=region, window=window(account, region), records=records)
            errors = (
                [AccountError(account.id, "UnrecognizedClientException", "off", region=region)]
                if region in regions_failing
                else []
            )
            yield Evidence(account, "lookups", region=region, window=window(account, region), errors=errors)
        yield Evidence(account, "done")

    sweeper = ScriptedSweeper(script)
    return monitor(store, sweeper).run_sweep(), sweeper


def test_a_failing_region_keeps_only_its_own_cursor_and_sign_ins_still_count(store):
    outcome, _ = sweep_with(store, regions_failing=("eu-west-1",))
    cursors = store.cursors.of(ACCOUNT.id)
    assert cursors["us-east-1"] == NOW and cursors.get("eu-west-1") is None
    assert outcome.unchecked == set() and len(outcome.new_findings) == 1, "checked: its sign-ins were read"
    assert store.state.account(ACCOUNT.id)["last_checked_at"] == NOW


def test_a_region_failing_three_sweeps_raises_a_coverage_gap_that_names_it(store):
    for _ in range(GAP_AFTER):
        outcome, _ = sweep_with(store, regions_failing=("eu-west-1",), login=False)
    gaps = [f for f in outcome.new_findings if f.kind == "coverage_gap"]
    assert len(gaps) == 1 and gaps[0].region == "eu-west-1" and "Region eu-west-1" in gaps[0].detail
    sweep_with(store, login=False)
    assert store.alerts.get(gaps[0].id).resolved_at == NOW, "resolved once the Region is read again"


def test_windows_overlap_the_last_hour(store):
    sweep_with(store)
    _, sweeper = sweep_with(store)
    assert {w.start for _, w in sweeper.windows} == {NOW - OVERLAP}


def test_a_page_the_store_could_not_take_holds_its_regions_cursor_back(store, monkeypatch):
    real = store.alerts.ingest
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(store.alerts, "ingest", failing_once)
    outcome, sweeper = sweep_with(store)
    assert sweeper.failed_callbacks == 1
    assert store.cursors.of(ACCOUNT.id).get("us-east-1") is None, "not past findings that were never stored"
    assert ACCOUNT.id in outcome.unchecked and any(e.code == "NotStored" for e in outcome.errors)


def test_a_sweep_that_fails_half_way_still_lets_its_held_findings_out(store):
    from bot.models import Finding

    report_finding = Finding(
        id="mfa-off-1",
        kind="root_mfa_disabled",
        severity="critical",
        account_id=ACCOUNT.id,
        source="credential_report",
        detail="no MFA",
    )

    def script(account, window):
        yield Evidence(account, "report", report_row={}), [report_finding]  # held for the digest decision
        raise RuntimeError("the collector blew up")

    with pytest.raises(RuntimeError):
        monitor(store, ScriptedSweeper(script)).run_sweep()
    assert store.alerts.held() == [] and store.alerts.get("mfa-off-1").state == "pending"


def test_pages_read_newest_first_are_grouped_in_event_time_order(store):
    """LookupEvents answers newest first: 120 failures over three pages must still be one alert."""
    failures = [
        root_login_record(ACCOUNT.id, NOW - timedelta(minutes=30) + timedelta(seconds=10 * i), success=False)
        for i in range(120)
    ]
    signin = root_login_record(ACCOUNT.id, NOW - timedelta(minutes=5))
    newest_first = [signin] + failures[::-1]

    def script(account, window):
        for start in range(0, len(newest_first), 50):
            yield Evidence(
                account,
                "page",
                region="us-east-1",
                window=window(account, "us-east-1"),
                records=newest_first[start : start + 50],
            )
        yield Evidence(account, "lookups", region="us-east-1", window=window(account, "us-east-1"))
        yield Evidence(account, "done")

    outcome = monitor(store, ScriptedSweeper(script)).run_sweep()
    opened = [store.alerts.get(i) for i in outcome.placed.opened]
    assert sorted((r.alert.grouping, r.alert.summary.count) for r in opened) == [("failures", 120), ("session", 1)]
    session = next(r for r in opened if r.alert.grouping == "session")
    assert session.alert.summary.failures_before == 120 and opened[0].alert.id == check_record(signin).id, (
        "the sign-in was stored from its page, before the failures"
    )
