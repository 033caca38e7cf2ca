"""The state store against real databases: a SQLite file and PostgreSQL (when configured).

Every test that does not need an empty database shares its dialect's database with the rest of
the module, so each one works only with ids it made itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, inspect, select, text

from bot.models import AccountError, Clues, Finding
from bot.store import Placement, Store, StoreError
from bot.store.db import MIGRATIONS
from bot.store.schema import findings as findings_table
from tests.harness import wait_for

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def finding(
    kind: str = "root_console_login",
    severity: str = "critical",
    account: str = "300000000001",
    event_time: str | None = "2026-11-28T08:00:00Z",
) -> Finding:
    return Finding(
        id=uuid.uuid4().hex,
        kind=kind,
        severity=severity,
        account_id=account,
        source="cloudtrail" if kind.startswith("root_") else "rootcheck",
        event_id=str(uuid.uuid4()),
        event_name="ConsoleLogin",
        event_time=event_time,
        region="us-east-1",
        source_ip="192.0.2.1",
        user_agent="test",
        mfa_used=False,
        detail="a test finding",
    )


def account_id() -> str:
    return str(uuid.uuid4().int)[:12].rjust(12, "3")


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def placement(channel: str = "C0STORE", wait: bool = False) -> Placement:
    return Placement(target=lambda account: channel, remind_after=timedelta(minutes=30), wait=wait)


def ingest(store: Store, found: list[Finding], now: datetime = T0, channel: str = "C0STORE", **options):
    return store.alerts.ingest(found, now, placement(channel), **options)


def claim_mine(store: Store, ids: set[str], now: datetime, holder: str = "me"):
    """Claim everything due and keep only this test's rows (the module shares one database)."""
    mine = []
    while batch := store.messages.claim(now, holder, limit=500):
        mine += [d for d in batch if d.id in ids]
    return mine


def claim_once(store: Store, ids: set[str], now: datetime):
    """One claim, as one delivery run makes it; only this test's rows."""
    return [d for d in store.messages.claim(now, "me", limit=500) if d.id in ids]


def state_of(store: Store, alert_id: str) -> str:
    return store.alerts.get(alert_id).state


def post(store: Store, f: Finding, now: datetime = T0, channel: str = "C0STORE") -> str:
    """Store, claim and record one finding's alert as posted; returns its ts."""
    ingest(store, [f], now, channel)
    claimed = claim_mine(store, {f.id}, now)
    assert [d.id for d in claimed] == [f.id]
    ts = f"1700000000.{uuid.uuid4().int % 10**6:06d}"
    assert store.messages.posted(f.id, "me", channel, ts, claimed[0].version, now)
    return ts


def call(
    account: str,
    at: datetime,
    key: str = "ASIASESSION",
    ip: str = "192.0.2.1",
    name: str = "ListBuckets",
    console: bool = True,
) -> Finding:
    return Finding(
        id=uuid.uuid4().hex,
        kind="root_activity",
        severity="medium",
        account_id=account,
        source="cloudtrail",
        event_id=str(uuid.uuid4()),
        event_name=name,
        region="us-east-1",
        event_time=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        source_ip=ip,
        user_agent="test",
        mfa_used=False,
        detail="a call",
        clues=Clues(access_key_id=key, console=console, read_only=True),
    )


# --- findings and alerts ----------------------------------------------------------------------


def test_a_finding_is_stored_once_and_opens_one_alert(store):
    f = finding()
    first = ingest(store, [f])
    again = ingest(store, [f, Finding(**{**f.to_dict(), "detail": "seen again"})], T0 + timedelta(minutes=5))
    assert [x.id for x in first.new_findings] == [f.id] and first.opened == [f.id]
    assert again.new_findings == [] and again.opened == []
    with store.engine.connect() as conn:
        rows = conn.execute(select(findings_table).where(findings_table.c.id == f.id)).all()
    assert len(rows) == 1 and json.loads(rows[0].payload)["detail"] == "a test finding"
    record = store.alerts.get(f.id)
    assert (record.state, record.target, record.alert.summary.count, record.severity) == (
        "pending",
        "C0STORE",
        1,
        "critical",
    )
    assert store.alerts.member_count(f.id) == 1


def test_a_session_of_100_calls_is_one_alert_counted_from_its_rows(store):
    account = account_id()
    login = finding(account=account)
    calls = [call(account, T0 + timedelta(seconds=5 + n), ip="192.0.2.1") for n in range(100)]
    ingest(store, [login])
    for start in range(0, 100, 25):  # pages, as a sweep stores them
        placed = ingest(store, calls[start : start + 25], T0 + timedelta(minutes=1))
        assert placed.opened == [] and placed.changed == [login.id]
    record = store.alerts.get(login.id)
    assert record.alert.summary.count == 101 == store.alerts.member_count(login.id)
    assert record.version == 5, "one change per page, not per finding"


def test_a_page_of_calls_reads_no_failed_sign_ins_and_a_sign_in_still_counts_them(store):
    """Most of a flood is calls: each page read every failed sign-in of the hour around it for nothing."""
    account = account_id()
    failures = [
        finding("root_console_login_failed", "medium", account, f"2026-11-28T07:50:{n:02d}Z") for n in range(30)
    ]
    ingest(store, failures)
    login = finding(account=account, event_time="2026-11-28T07:55:00Z")
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(f"{statement} {parameters}")

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        ingest(store, [login])
        read_for_login = sum("root_console_login_failed" in s for s in statements)
        statements.clear()
        placed = ingest(store, [call(account, T0 - timedelta(minutes=4, seconds=n), ip="192.0.2.1") for n in range(50)])
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert placed.changed == [login.id] and store.alerts.get(login.id).alert.summary.count == 51
    assert read_for_login == 1 and store.alerts.get(login.id).alert.summary.failures_before == 30
    assert not [s for s in statements if "root_console_login_failed" in s], "a page of calls counts no failures"


def test_postgresql_sessions_bound_every_wait(postgres_url):
    """A lost network or a stuck lock must not hang the leader check or a delivery run."""
    store = Store(postgres_url)
    try:
        with store.engine.connect() as conn:
            shown = {
                name: conn.execute(text(f"SHOW {name}")).scalar()
                for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            }
    finally:
        store.close()
    assert shown == {"statement_timeout": "30s", "lock_timeout": "15s", "idle_in_transaction_session_timeout": "1min"}


def test_two_writers_placing_one_session_at_once_open_one_alert(db_url):
    """The queue and a sweep (or two replicas) see the same session at the same moment."""
    stores = [Store(db_url), Store(db_url)]
    account = account_id()
    login = finding(account=account)
    calls = [call(account, T0 + timedelta(seconds=5 + n)) for n in range(40)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(s: Store, part: list[Finding]) -> None:
        try:
            barrier.wait()
            for f in part:
                ingest(s, [login, f], T0 + timedelta(minutes=1))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(stores[i], calls[i::2])) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        with stores[0].engine.connect() as conn:
            alerts = conn.execute(text("SELECT id, count FROM alerts WHERE account_id = :a"), {"a": account}).all()
        assert alerts == [(login.id, 41)]
        assert stores[0].alerts.member_count(login.id) == 41
    finally:
        for s in stores:
            s.close()


def test_a_console_call_waits_for_its_signin_then_gets_its_own_alert(store):
    account = account_id()
    early = call(account, T0)
    placed = store.alerts.ingest([early], T0, placement(wait=True))
    assert placed.waiting == 1 and placed.opened == []
    assert store.alerts.place_waiting(T0 + timedelta(seconds=119), placement(wait=True)).opened == []
    assert store.alerts.place_waiting(T0 + timedelta(minutes=2), placement(wait=True)).opened == [early.id]


def test_a_signin_that_comes_while_its_call_waits_takes_it(store):
    account = account_id()
    early = call(account, T0 + timedelta(seconds=30))
    store.alerts.ingest([early], T0 + timedelta(minutes=1), placement(wait=True))
    login = finding(account=account, event_time="2026-11-28T08:00:00Z")
    placed = store.alerts.ingest([login], T0 + timedelta(minutes=2), placement(wait=True))
    assert placed.opened == [login.id] and store.alerts.get(login.id).alert.summary.count == 2


def test_a_rise_after_the_ack_is_said_once_in_the_thread(store):
    account = account_id()
    key_calls = [call(account, T0 + timedelta(minutes=n), key="AKIAROOT", console=False) for n in range(2)]
    post(store, key_calls[0])
    assert store.messages.acknowledge(key_calls[0].id, "U0ADMIN", T0 + timedelta(minutes=1))
    write = Finding(**{**key_calls[1].to_dict(), "severity": "high"}, clues=key_calls[1].clues)
    ingest(store, [write], T0 + timedelta(minutes=2))
    record = store.alerts.get(key_calls[0].id)
    assert record.severity == "high" and record.acked_at is not None, "joining never clears an ack"
    replies = store.messages.claim_replies(T0 + timedelta(minutes=3), "me", key_calls[0].id)
    assert sorted(r.body["kind"] for r in replies) == ["ack", "raised"]


def test_expected_alerts_are_low_and_never_reminded(store):
    account = account_id()
    store.state.expect(account, T0 - timedelta(minutes=5), timedelta(hours=1), "U0ADMIN", "support plan")
    f = finding(account=account)
    ingest(store, [f])
    record = store.alerts.get(f.id)
    assert (record.severity, record.expected_by, record.next_reminder_at) == ("low", "U0ADMIN", None)
    store.state.cancel_expectation(account, "U0ADMIN", T0 - timedelta(minutes=1))
    later = finding(account=account, event_time="2026-11-28T08:10:00Z")
    ingest(store, [later])
    assert store.alerts.get(later.id).severity == "critical", "a cancelled window expects nothing"


# --- delivery state ---------------------------------------------------------------------------


def test_claim_is_atomic_across_threads_and_store_objects(db_url):
    first, second = Store(db_url), Store(db_url)
    try:
        ids = set()
        found = [finding(account=account_id()) for _ in range(120)]
        ingest(first, found)  # one created_at for all: ties must not deadlock
        ids = {f.id for f in found}
        claimed: dict[str, list[str]] = {"a": [], "b": []}
        errors: list[BaseException] = []
        start = threading.Barrier(5)  # four claimers and this thread

        def worker(name: str, s: Store) -> None:
            try:
                start.wait()
                while True:
                    batch = s.messages.claim(T0 + timedelta(seconds=1), name, limit=7)
                    if not batch:  # nothing pending is left anywhere in the database
                        return
                    claimed[name].extend(d.id for d in batch if d.id in ids)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=pair) for pair in (("a", first), ("b", second)) * 2]
        for t in threads:
            t.start()
        start.wait()
        for t in threads:
            t.join(60)
        assert not errors, errors
        everything = claimed["a"] + claimed["b"]
        assert sorted(everything) == sorted(ids), "each pending alert is claimed exactly once"
        assert {state_of(first, i) for i in ids} == {"posting"}
    finally:
        first.close()
        second.close()


def test_claim_takes_the_channels_in_turn_most_severe_first(store):
    """A burst in one channel (Slack posts 1 message/s there) must not hold back other channels,
    and a burst of failures must not hold back a sign-in."""
    burst_channel, quiet_channel = f"C0B{uuid.uuid4().hex[:8].upper()}", f"C0Q{uuid.uuid4().hex[:8].upper()}"
    failures = [
        finding(
            kind="root_console_login_failed",
            severity="medium",
            account=account_id(),
            event_time=f"2026-11-28T07:0{i}:00Z",
        )
        for i in range(6)
    ]
    for f in failures:
        ingest(store, [f], T0, burst_channel)
    signin = finding(account=account_id(), event_time="2026-11-28T07:30:00Z")
    ingest(store, [signin], T0 + timedelta(seconds=1), burst_channel)
    quiet = [finding(account=account_id(), event_time=f"2026-11-28T08:0{i}:00Z") for i in range(3)]
    for f in quiet:
        ingest(store, [f], T0 + timedelta(minutes=5), quiet_channel)
    mine = {f.id for f in failures + quiet + [signin]}
    first = claim_once(store, mine, T0 + timedelta(minutes=10))
    assert [d.id for d in first][:2] == [signin.id, quiet[0].id], "the sign-in first, the channels in turn"
    assert len(first) == 4
    rest = claim_mine(store, mine, T0 + timedelta(minutes=10))
    assert [d.id for d in rest if d.id in {f.id for f in failures}] == [f.id for f in failures[1:]], "oldest first"


def test_acknowledge_is_idempotent_and_makes_the_edit_urgent(store):
    f = finding()
    ingest(store, [f])
    assert store.messages.acknowledge(f.id, "U0ADMIN", T0) is False, "nothing to acknowledge before it is posted"
    post(store, f)
    assert f.id not in store.messages.due_edits(T0 + timedelta(minutes=5), timedelta(seconds=10))
    assert store.messages.acknowledge(f.id, "U0ADMIN", T0 + timedelta(minutes=1)) is True
    assert store.messages.acknowledge(f.id, "U0OTHER", T0 + timedelta(minutes=2)) is False
    record = store.alerts.get(f.id)
    assert (record.acked_by, record.acked_at, record.urgent) == ("U0ADMIN", T0 + timedelta(minutes=1), True)
    assert f.id in store.messages.due_edits(T0 + timedelta(seconds=1), timedelta(seconds=10)), "at once"
    assert store.messages.acknowledge("no-such-id", "U0ADMIN", T0) is False
    rendering = store.messages.start_edit(f.id, "me", T0 + timedelta(minutes=1), timedelta(seconds=60))
    ingest(store, [call(f.account_id, T0 + timedelta(seconds=30))], T0 + timedelta(minutes=1))  # joins meanwhile
    store.messages.finish_edit(rendering, "me", T0 + timedelta(minutes=1), None)
    assert not store.alerts.get(f.id).urgent, "the ack was shown; what joined meanwhile waits its 10 s"
    assert f.id not in store.messages.due_edits(T0 + timedelta(minutes=1, seconds=9), timedelta(seconds=10))


def test_an_edit_never_overwrites_a_newer_state(store):
    """Compare-and-set: what an edit recorded is the version it rendered, never more."""
    account = account_id()
    login = finding(account=account)
    post(store, login)
    ingest(store, [call(account, T0 + timedelta(seconds=30))], T0 + timedelta(seconds=31))
    rendering = store.messages.start_edit(login.id, "leader", T0 + timedelta(seconds=40), timedelta(seconds=60))
    assert rendering.version == 2
    assert store.messages.start_edit(login.id, "other", T0 + timedelta(seconds=41), timedelta(seconds=60)) is None
    store.messages.acknowledge(login.id, "U0ADMIN", T0 + timedelta(seconds=42))  # a person acts meanwhile
    store.messages.finish_edit(rendering, "leader", T0 + timedelta(seconds=43), None)
    record = store.alerts.get(login.id)
    assert (record.version, record.shown_version, record.urgent) == (3, 2, True), "the ack still has to be shown"
    assert login.id in store.messages.due_edits(T0 + timedelta(seconds=44), timedelta(seconds=10))


def test_edits_wait_ten_seconds_after_the_previous_post_or_edit(store):
    account = account_id()
    login = finding(account=account)
    post(store, login, T0)
    ingest(store, [call(account, T0 + timedelta(seconds=1))], T0 + timedelta(seconds=2))
    gap = timedelta(seconds=10)
    assert login.id not in store.messages.due_edits(T0 + timedelta(seconds=9), gap)
    assert login.id in store.messages.due_edits(T0 + timedelta(seconds=10), gap)


def test_a_failing_edit_backs_off_and_gives_up(store):
    f = finding()
    post(store, f)
    store.messages.acknowledge(f.id, "U0ADMIN", T0)
    now = T0
    for n in range(8):
        record = store.messages.start_edit(f.id, "me", now, timedelta(seconds=60))
        store.messages.edit_failed(record, "me", "message_not_found", now, now + timedelta(seconds=2**n))
        assert f.id not in store.messages.due_edits(now + timedelta(seconds=2**n - 1), timedelta(0))
        now += timedelta(seconds=2**n)
    assert f.id not in store.messages.due_edits(now + timedelta(days=1), timedelta(0)), "given up after 8"
    assert "message_not_found" in store.alerts.get(f.id).last_error


def test_hand_back_and_posted_transitions_check_the_claim(store):
    f = finding()
    ingest(store, [f])
    [claimed] = claim_mine(store, {f.id}, T0)
    assert state_of(store, f.id) == "posting" and claimed.attempts == 1
    assert claim_mine(store, {f.id}, T0) == [], "an alert being posted is not claimed again"
    store.messages.hand_back(f.id, "someone-else", "not my claim", T0)
    assert state_of(store, f.id) == "posting"
    store.messages.hand_back(f.id, "me", "ratelimited: Slack is failing", T0 + timedelta(seconds=30))
    row = store.alerts.get(f.id)
    assert (row.state, row.last_error, row.attempts, row.claimed_by) == (
        "pending",
        "ratelimited: Slack is failing",
        1,
        None,
    )
    assert claim_mine(store, {f.id}, T0 + timedelta(seconds=29)) == [], "not due before its retry time"
    [again] = claim_mine(store, {f.id}, T0 + timedelta(seconds=30), holder="me")
    assert store.messages.posted(f.id, "other", "C0REAL", "1.2", 1, T0) is False, "only the claimer records"
    assert store.messages.posted(f.id, "me", "C0REAL", "1700000000.000100", again.version, T0)
    row = store.alerts.get(f.id)
    assert (row.state, row.channel, row.ts, row.last_error, row.attempts) == (
        "posted",
        "C0REAL",
        "1700000000.000100",
        None,
        2,
    )


def test_stale_claims_are_those_older_than_the_deadline(store):
    f = finding()
    ingest(store, [f])
    claim_mine(store, {f.id}, T0, holder="dead-replica")
    assert f.id in {r.id for r in store.messages.stale_postings(None)}
    assert f.id not in {r.id for r in store.messages.stale_postings(T0)}
    assert f.id in {r.id for r in store.messages.stale_postings(T0 + timedelta(seconds=1))}
    record = store.alerts.get(f.id)
    assert store.messages.take_over(f.id, record.claimed_at, "new-leader", T0 + timedelta(minutes=6))
    assert not store.messages.take_over(f.id, record.claimed_at, "third", T0 + timedelta(minutes=6)), "once"


def test_held_findings_wait_for_the_digest_decision(store):
    held = [
        finding(kind="root_access_key_active", severity="high", account=account_id(), event_time=None) for _ in range(3)
    ]
    hold = frozenset({"root_access_key_active"})
    ingest(store, held, hold=hold)
    ids = {f.id for f in held}
    assert claim_mine(store, ids, T0) == [] and {f.id for f in store.alerts.held()} >= ids
    store.alerts.release_held([held[0].id], T0, placement())
    assert [d.id for d in claim_mine(store, ids, T0)] == [held[0].id]
    digest = uuid.uuid4().hex
    store.alerts.release_held([f.id for f in held[1:]], T0, placement(), digest_id=digest)
    [claimed] = claim_mine(store, {digest}, T0)
    assert claimed.alert.grouping == "digest" and claimed.alert.summary.count == 2
    assert sorted(f.id for f in store.alerts.members(digest)) == sorted(f.id for f in held[1:])
    assert store.messages.posted(digest, "me", "C0STORE", "1700000001.000100", claimed.version, T0)
    assert store.messages.acknowledge(digest, "U0ADMIN", T0) is True
    assert store.messages.acknowledge(digest, "U0ADMIN", T0) is False


def test_resolve_absent(store):
    account = account_id()
    key_one = finding(kind="root_access_key_active", severity="high", account=account, event_time=None)
    key_two = finding(kind="root_access_key_active", severity="high", account=account, event_time=None)
    gap = finding(kind="coverage_gap", severity="high", account=account, event_time=None)
    for f in (key_one, key_two, gap):
        post(store, f)
    now = T0 + timedelta(hours=4)
    resolved = store.alerts.resolve_absent(account, ["root_access_key_active", "root_mfa_disabled"], [key_two.id], now)
    assert resolved == [key_one.id]
    assert store.alerts.get(key_one.id).resolved_at == now and store.alerts.get(key_two.id).resolved_at is None
    assert store.alerts.resolve_absent(account, ["root_access_key_active"], [key_two.id], now) == [], (
        "a resolved finding is resolved once"
    )
    assert store.alerts.resolve_absent(account, ["coverage_gap"], [], now) == [gap.id], "empty `present` works"
    due = set(store.messages.due_edits(now, timedelta(0)))
    assert {key_one.id, gap.id} <= due and key_two.id not in due
    assert store.alerts.resolve_absent(account_id(), ["coverage_gap"], [], now) == []


def test_reminders_are_due_for_open_critical_and_high_alerts_only(store):
    account = account_id()
    critical = finding(account=account_id())
    high = call(account, T0, key="AKIAROOT", console=False)
    high = Finding(**{**high.to_dict(), "severity": "high"}, clues=high.clues)
    medium = finding(kind="root_console_login_failed", severity="medium", account=account_id())
    acked = finding(account=account_id())
    unposted = finding(account=account_id())
    for f in (critical, high, acked, medium):
        post(store, f)
    ingest(store, [unposted])
    store.messages.acknowledge(acked.id, "U0ADMIN", T0 + timedelta(minutes=1))
    mine = {critical.id, high.id, medium.id, acked.id, unposted.id}
    remind_at = T0 + timedelta(minutes=30)

    def due(at: datetime) -> set[str]:
        return {d.id for d in store.messages.due_reminders(at)} & mine

    assert due(remind_at - timedelta(seconds=1)) == set()
    assert due(remind_at) == {critical.id, high.id}
    store.messages.reminded(store.alerts.get(critical.id), remind_at + timedelta(hours=1), remind_at)
    store.messages.reminded(store.alerts.get(critical.id), remind_at + timedelta(hours=1), remind_at)  # stale copy
    store.messages.reminded(store.alerts.get(high.id), None, remind_at)  # the last reminder
    assert store.alerts.get(critical.id).reminders == 2
    replies = [r.id for r in store.messages.claim_replies(remind_at, "me", critical.id)]
    assert replies == [f"remind:{critical.id}:1", f"remind:{critical.id}:2"], "each reminder once, with its reply"
    assert due(remind_at + timedelta(minutes=59)) == set()
    assert due(remind_at + timedelta(hours=1)) == {critical.id}
    store.messages.acknowledge(critical.id, "U0ADMIN", remind_at + timedelta(minutes=61))
    assert due(remind_at + timedelta(days=1)) == set(), "an acknowledged alert is never reminded"


def test_replies_are_posted_once_and_only_after_their_alert(store):
    f = finding()
    ingest(store, [f])
    store.messages.add_reply(f"note:{f.id}", f.id, {"kind": "note"}, T0)
    store.messages.add_reply(f"note:{f.id}", f.id, {"kind": "note again"}, T0)
    assert store.messages.claim_replies(T0, "me", f.id) == [], "no thread before the alert is posted"
    ts = post(store, f)
    [reply] = store.messages.claim_replies(T0, "me", f.id)
    assert (reply.body, reply.thread_ts) == ({"kind": "note"}, ts)
    assert store.messages.claim_replies(T0, "other", f.id) == []
    store.messages.reply_posted(reply, "me", "1700000009.000001", T0)
    assert store.messages.stale_replies(None) == [] or f.id not in {
        r.alert_id for r in store.messages.stale_replies(None)
    }


def test_open_alerts_and_counts(store):
    account = account_id()
    f = finding(account=account)
    ingest(store, [f], T0 + timedelta(days=3650))
    assert [d.id for d in store.alerts.open_alerts(accounts={account})] == [f.id]
    assert store.alerts.open_alerts(accounts={account_id()}) == []
    assert store.alerts.counts().get("pending", 0) >= 1


# --- account state, sweeps, audit -------------------------------------------------------------


def test_account_failures_count_in_a_row_and_reset_when_checked(store):
    account = account_id()
    assert store.state.account(account)["failures"] == 0
    assert [store.state.account_failed(account, "AccessDenied") for _ in range(3)] == [1, 2, 3]
    assert account in {a["account_id"] for a in store.state.failing_accounts()}
    store.state.account_checked(account, T0)
    store.state.report_seen(account, T0 - timedelta(hours=1), None)
    state = store.state.account(account)
    assert (state["failures"], state["last_error"], state["last_checked_at"], state["report_seen_at"]) == (
        0,
        None,
        T0,
        T0 - timedelta(hours=1),
    )
    store.state.report_seen(account, None, "x")
    assert store.state.account(account)["report_seen_at"] == T0 - timedelta(hours=1), "kept when not re-read"


def test_region_cursors_move_on_their_own_and_count_failures(store):
    account = account_id()
    store.cursors.advanced(account, "us-east-1", T0)
    assert [store.cursors.failed(account, "eu-west-1", "UnrecognizedClientException") for _ in range(3)] == [1, 2, 3]
    store.cursors.advanced(account, "eu-west-1", T0 + timedelta(minutes=5))
    assert store.cursors.of(account) == {"us-east-1": T0, "eu-west-1": T0 + timedelta(minutes=5)}
    assert store.cursors.failed(account, "eu-west-1", "again") == 1, "a success resets the count"


def test_the_directory_is_replaced_whole(store):
    from bot.models import Account

    store.directory.replace([Account("300000000101", "a", owners=("U0A",)), Account("300000000102")], T0)
    store.directory.replace([Account("300000000101", "renamed", owners=("U0A", "x@y.io"))], T0 + timedelta(hours=1))
    assert [(a.id, a.name, a.owners) for a in store.directory.accounts()] == [
        ("300000000101", "renamed", ("U0A", "x@y.io"))
    ]
    assert store.directory.refreshed_at() == T0 + timedelta(hours=1)


def test_sweeps_are_recorded(store):
    holder = f"host:{uuid.uuid4().hex[:6]}"
    sweep = store.state.sweep_started(holder, T0 + timedelta(days=3650))
    assert store.state.last_sweep(finished=False).id == sweep
    error = AccountError("300000000009", "AccessDenied", "denied", hint="fix the role")
    store.state.sweep_finished(sweep, T0 + timedelta(days=3650, seconds=3), 4, [error], 2, 1)
    last = store.state.last_sweep()
    assert (last.id, last.accounts, last.failed, last.findings) == (sweep, 5, 1, 2)
    assert last.errors[0]["code"] == "AccessDenied"
    store.state.audit(T0, "U0ADMIN", "ack", "f1", "detail")
    assert store.state.audit_log(limit=1)[0]["actor"] == "U0ADMIN"


def test_leases(store):
    name = f"l{uuid.uuid4().hex[:8]}"
    ttl = timedelta(seconds=30)
    assert store.state.take_lease(name, "a", ttl, T0, detail="first") is True
    assert store.state.take_lease(name, "b", ttl, T0 + timedelta(seconds=10)) is False, "held by another"
    assert store.state.take_lease(name, "a", ttl, T0 + timedelta(seconds=20)) is True, "renewed"
    assert store.state.take_lease(name, "b", ttl, T0 + timedelta(seconds=45)) is False, "the renewal counts"
    assert store.state.lease(name, T0 + timedelta(seconds=45))["holder"] == "a"
    assert store.state.lease(name, T0 + timedelta(seconds=51)) is None, "expired"
    assert store.state.take_lease(name, "b", ttl, T0 + timedelta(seconds=51)) is True, "expired: another takes it"
    assert store.state.take_lease(name, "a", ttl, T0 + timedelta(seconds=52)) is False
    store.state.release_lease(name, "a")  # not the holder: nothing happens
    assert store.state.lease(name, T0 + timedelta(seconds=52))["holder"] == "b"
    store.state.release_lease(name, "b")
    assert store.state.lease(name, T0 + timedelta(seconds=52)) is None
    assert store.state.take_lease(name, "a", ttl, T0 + timedelta(seconds=53)) is True


def test_leases_are_taken_by_one_of_many_at_once(db_url):
    stores = [Store(db_url) for _ in range(4)]
    name = f"l{uuid.uuid4().hex[:8]}"
    wins: list[str] = []
    barrier = threading.Barrier(len(stores))

    def take(i: int) -> None:
        barrier.wait()
        if stores[i].state.take_lease(name, f"h{i}", timedelta(minutes=1), T0):
            wins.append(f"h{i}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert len(wins) == 1
        assert stores[0].state.lease(name, T0)["holder"] == wins[0]
    finally:
        for s in stores:
            s.close()


def test_expectation_window(store):
    account = account_id()
    store.state.expect(account, T0, timedelta(hours=2), "U0ADMIN", "support plan change")
    assert store.state.expectation(account, T0 - timedelta(seconds=1)) is None
    found = store.state.expectation(account, T0 + timedelta(hours=1))
    assert (found.user_id, found.reason, found.ends_at) == ("U0ADMIN", "support plan change", T0 + timedelta(hours=2))
    assert store.state.expectation(account, T0 + timedelta(hours=2)) is not None, "the end is inside"
    assert store.state.expectation(account, T0 + timedelta(hours=2, seconds=1)) is None
    assert store.state.expectation(account_id(), T0 + timedelta(hours=1)) is None, "other accounts are not covered"
    assert store.state.expectation(account, None) is None and store.state.expectation(None, T0) is None


def test_purge_keeps_what_is_within_retention(store):
    long_ago = T0 - timedelta(days=500)
    old, new = finding(account=account_id()), finding(account=account_id())
    ingest(store, [old], long_ago)
    ingest(store, [new], T0)
    store.messages.add_reply(f"note:{old.id}", old.id, {"kind": "note"}, long_ago)
    account = account_id()
    store.state.expect(account, long_ago, timedelta(hours=1), "U0ADMIN", "old")
    store.state.audit(long_ago, "U0OLD", "ack", old.id)
    old_sweep = store.state.sweep_started("old-holder", long_ago)
    store.state.purge(T0 - timedelta(days=400))
    assert store.alerts.get(old.id) is None and store.alerts.get(new.id) is not None
    assert store.alerts.member_count(old.id) == 0 and store.alerts.member_count(new.id) == 1
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM findings WHERE id = :i"), {"i": old.id}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM replies WHERE alert_id = :i"), {"i": old.id}).scalar() == 0
    assert store.state.expectation(account, long_ago + timedelta(minutes=1)) is None
    assert all(entry["actor"] != "U0OLD" for entry in store.state.audit_log(limit=10000))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sweeps WHERE id = :i"), {"i": old_sweep}).scalar() == 0


# --- migrations -------------------------------------------------------------------------------


def _alembic(url: str, revision: str) -> None:
    """Bring a database to `revision` with the shipped migrations, as an older rootcheck did."""
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_a_fresh_database_is_at_head(fresh_db_url):
    store = Store(fresh_db_url)
    try:
        assert store.revision == _head() == _version(fresh_db_url)
        tables = set(inspect(store.engine).get_table_names())
        assert {
            "findings",
            "alerts",
            "alert_findings",
            "replies",
            "accounts",
            "sweeps",
            "audit",
            "expectations",
            "leases",
        } <= tables and "digests" not in tables
    finally:
        store.close()
    again = Store(fresh_db_url)  # opening an up-to-date database changes nothing
    again.close()
    assert _version(fresh_db_url) == _head()


def _old_row(conn, finding_id: str, kind: str, state: str, **values) -> None:
    """A row of the previous release's findings outbox (schema 0002)."""
    payload = finding(kind=kind).to_dict() | {"id": finding_id, "account_id": "300000000001"}
    row = {
        "id": finding_id,
        "kind": kind,
        "severity": payload["severity"],
        "account_id": "300000000001",
        "payload": json.dumps(payload),
        "target": "C0OLD",
        "state": state,
        "created_at": datetime(2026, 1, 1),
        "event_time": datetime(2026, 1, 1),
        "needs_update": False,
        "attempts": 1,
        "reminders": 0,
        **values,
    }
    conn.execute(text(f"INSERT INTO findings ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row)


def test_a_database_of_the_previous_release_upgrades_in_place(fresh_db_url):
    """Each finding it posted (or meant to) becomes a single-finding alert that keeps working."""
    assert _head() != "0002", "add a migration after 0002 so this test upgrades something"
    _alembic(fresh_db_url, "0002")
    engine = create_engine(fresh_db_url)
    with engine.begin() as conn:
        _old_row(
            conn,
            "old-posted",
            "root_console_login",
            "posted",
            channel="C0OLD",
            ts="1700000000.000100",
            posted_at=datetime(2026, 1, 1),
            next_reminder_at=datetime(2026, 1, 1, 0, 30),
            reminders=1,
        )
        _old_row(
            conn,
            "old-acked",
            "root_console_login",
            "acked",
            channel="C0OLD",
            ts="1700000000.000200",
            acked_by="U0OLD",
            acked_at=datetime(2026, 1, 1, 1),
            needs_update=True,
            event_time=datetime(2025, 12, 31),
        )
        _old_row(conn, "old-pending", "root_activity", "pending")
        _old_row(conn, "old-held", "root_mfa_disabled", "held")
        for n in range(2):
            _old_row(conn, f"old-digested-{n}", "root_access_key_active", "digested", digest_id="old-digest")
        conn.execute(
            text(
                "INSERT INTO digests (id, kind, target, finding_ids, state, created_at, needs_update, "
                "attempts, channel, ts) VALUES ('old-digest', 'root_access_key_active', 'C0OLD', :ids, "
                "'posted', :at, false, 1, 'C0OLD', '1700000000.000300')"
            ),
            {"ids": json.dumps(["old-digested-0", "old-digested-1"]), "at": datetime(2026, 1, 1)},
        )
        conn.execute(
            text("INSERT INTO accounts (account_id, failures, cursor) VALUES ('300000000001', 2, :at)"),
            {"at": datetime(2026, 1, 2)},
        )
        conn.execute(
            text("INSERT INTO audit (at, actor, action) VALUES (:at, 'U0OLD', 'ack')"), {"at": datetime(2026, 1, 2)}
        )
    engine.dispose()

    store = Store(fresh_db_url)
    try:
        assert store.revision == _head() == _version(fresh_db_url)
        posted = store.alerts.get("old-posted")
        assert (posted.state, posted.ts, posted.channel, posted.reminders) == (
            "posted",
            "1700000000.000100",
            "C0OLD",
            1,
        )
        assert posted.alert.grouping == "session" and posted.alert.summary.count == 1
        acked = store.alerts.get("old-acked")
        assert (acked.acked_by, acked.version > acked.shown_version) == ("U0OLD", True), "its pending re-render kept"
        assert store.messages.acknowledge("old-posted", "U0NEW", T0) is True, "acknowledging keeps working"
        assert [r.id for r in store.messages.due_reminders(T0) if r.id == "old-acked"] == []
        digest = store.alerts.get("old-digest")
        assert (digest.alert.grouping, digest.ts, store.alerts.member_count("old-digest")) == (
            "digest",
            "1700000000.000300",
            2,
        )
        assert [f.id for f in store.alerts.held()] == ["old-held"], "a held finding waits for its decision"
        assert store.state.account("300000000001")["failures"] == 2
        assert store.state.account("300000000001")["cursor"] == datetime(2026, 1, 2, tzinfo=UTC)
        assert store.state.audit_log()[0]["actor"] == "U0OLD"
        claimed = [d.id for d in store.messages.claim(datetime.now(UTC), "me")]
        assert claimed == ["old-pending"], "an upgraded store still delivers what was pending"
        login = finding(account="300000000001", event_time="2026-01-01T00:00:00Z")
        placed = ingest(
            store,
            [
                call(
                    "300000000001",
                    datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
                    ip=json.loads(json.dumps(login.source_ip)),
                )
            ],
            T0,
        )
        assert placed.opened == [] and placed.changed == ["old-posted"], "an old sign-in's session takes calls"
    finally:
        store.close()


def test_schema_py_matches_the_migrations(fresh_db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from bot.store.schema import metadata

    store = Store(fresh_db_url)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.close()


def test_an_upgrade_that_fails_half_way_leaves_the_database_as_it_was(fresh_db_url, monkeypatch):
    """The driver runs SQLite's DDL outside transactions unless told otherwise: a start killed (or
    failing) half-way through 0003 must not leave half a schema that the next start trips over."""
    from bot.models import Summary

    _alembic(fresh_db_url, "0002")
    engine = create_engine(fresh_db_url)
    with engine.begin() as conn:
        _old_row(conn, "old", "root_console_login", "posted")

    def fail(*args):
        raise MemoryError("the machine ran out of memory half-way")

    monkeypatch.setattr(Summary, "add", fail)  # after 0003 created its tables, while it moves the rows
    with pytest.raises(StoreError, match="nothing was changed"):
        Store(fresh_db_url)
    assert _version(fresh_db_url) == "0002"
    assert "alerts" not in inspect(engine).get_table_names(), "its DDL was rolled back with it"
    engine.dispose()
    monkeypatch.undo()
    Store(fresh_db_url).close()
    assert _version(fresh_db_url) == _head()


def test_a_database_from_a_newer_rootcheck_is_refused(fresh_db_url):
    Store(fresh_db_url).close()
    engine = create_engine(fresh_db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError) as refused:
        Store(fresh_db_url)
    message = str(refused.value)
    assert "9999_from_the_future" in message and "newer than this rootcheck" in message
    assert "ROOTCHECK_DATABASE_URL" in message and "\n" not in message
    assert _version(fresh_db_url) == "9999_from_the_future", "nothing was changed"


OPEN = """
import sys
from bot.store import Store, StoreError
try:
    store = Store(sys.argv[1])
except StoreError as exc:
    print("StoreError:", exc, flush=True)
    sys.exit(2)
print(store.revision, flush=True)
"""


def test_replicas_starting_at_once_migrate_a_fresh_database_once(new_postgres_database):
    """Several `serve` replicas started together on an empty PostgreSQL database: every one comes up."""
    url = new_postgres_database()
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0].decode().strip() for p in processes]
    assert outputs == [_head()] * 4, outputs
    assert [p.returncode for p in processes] == [0] * 4
    assert _version(url) == _head()


def test_an_unreachable_database_is_a_store_error(tmp_path, dialect, request):
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'rootcheck.db'}"
    else:
        from sqlalchemy.engine import make_url

        url = (
            make_url(request.getfixturevalue("postgres_server"))
            .set(database=f"rc_missing_{uuid.uuid4().hex[:6]}")
            .render_as_string(hide_password=False)
        )
    with pytest.raises(StoreError, match="ROOTCHECK_DATABASE_URL"):
        Store(url)


def test_sqlite_runs_in_wal_mode(sqlite_url):
    store = Store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert store.is_sqlite
    finally:
        store.close()


# --- leadership -------------------------------------------------------------------------------

HOLDER = """
import sys, time
from bot.store import Store
store = Store(sys.argv[1])
assert store.leadership.try_acquire()
print("held", flush=True)
time.sleep(600)
"""


def _holder(url: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == b"held"
    return process


def test_sqlite_leadership_is_refused_while_held_and_granted_after_the_holder_dies(sqlite_url):
    holder = _holder(sqlite_url)
    store = Store(sqlite_url)
    try:
        assert store.leadership.try_acquire() is False
        assert store.leadership.held is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert store.leadership.try_acquire() is True
        assert store.leadership.try_acquire() is True, "keeping it is idempotent"
        other = Store(sqlite_url)
        assert other.leadership.try_acquire() is False, "one scheduler per SQLite file, even in one process"
        store.leadership.release()
        assert other.leadership.try_acquire() is True
        other.close()
    finally:
        holder.kill()
        store.close()


def test_postgres_leadership_is_exclusive_and_freed_when_the_holder_goes(postgres_url):
    first, second = Store(postgres_url), Store(postgres_url)
    try:
        assert first.leadership.try_acquire() is True
        assert second.leadership.try_acquire() is False
        assert first.leadership.try_acquire() is True, "the holder keeps it"
        pid = first.leadership._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        first.leadership._connection.commit()
        with second.engine.connect() as conn:
            state = conn.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar()
        assert state == "idle", "the lock's session does not hold a transaction open"
        first.leadership.release()
        assert second.leadership.try_acquire() is True
        assert first.leadership.try_acquire() is False

        # The holder's connection closes (as when its process dies): the lock is free at once.
        second.leadership._connection.invalidate()
        assert second.leadership.try_acquire() is False, "the old holder notices it lost the lock"
        assert first.leadership.try_acquire() is True
        first.leadership.release()
    finally:
        first.close()
        second.close()


def test_postgres_leadership_is_granted_after_the_holder_is_killed(postgres_url):
    holder = _holder(postgres_url)
    store = Store(postgres_url)
    try:
        assert store.leadership.try_acquire() is False
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert wait_for(store.leadership.try_acquire, timeout=10)
    finally:
        holder.kill()
        store.close()


def test_postgres_holder_whose_session_is_terminated_steps_down(postgres_url):
    first, second = Store(postgres_url), Store(postgres_url)
    try:
        assert first.leadership.try_acquire() is True
        pid = first.leadership._connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with second.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert first.leadership.try_acquire() is False, "a dead session is not leadership"
        assert wait_for(second.leadership.try_acquire, timeout=10)
    finally:
        first.close()
        second.close()
