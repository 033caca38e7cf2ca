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
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, select, text

from bot.models import AccountError, Finding
from bot.store import Store, StoreError
from bot.store.db import MIGRATIONS
from bot.store.schema import findings as findings_table
from tests.harness import wait_for

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def finding(kind: str = "root_console_login", severity: str = "critical", account: str = "300000000001",
            event_time: str | None = "2026-11-28T08:00:00Z") -> Finding:
    return Finding(id=uuid.uuid4().hex, kind=kind, severity=severity, account_id=account,
                   source="cloudtrail" if kind.startswith("root_") else "rootcheck", event_id=str(uuid.uuid4()),
                   event_name="ConsoleLogin", event_time=event_time, region="us-east-1",
                   source_ip="192.0.2.1", user_agent="test", mfa_used=False, detail="a test finding")


def account_id() -> str:
    return str(uuid.uuid4().int)[:12].rjust(12, "3")


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def claim_mine(store: Store, ids: set[str], now: datetime):
    """Claim everything due and keep only this test's rows (the module shares one database)."""
    mine = []
    while batch := store.outbox.claim(now, limit=500):
        mine += [d for d in batch if d.id in ids]
    return mine


def claim_once(store: Store, ids: set[str], now: datetime):
    """One claim, as one delivery run makes it; only this test's rows."""
    return [d for d in store.outbox.claim(now, limit=500) if d.id in ids]


def state_of(store: Store, delivery_id: str) -> str:
    return store.outbox.get(delivery_id).state


def post(store: Store, f: Finding, now: datetime = T0, remind_at: datetime | None = None, **kwargs) -> None:
    """Store, claim and record one finding as posted."""
    assert store.outbox.add(f, "C0STORE", now, remind_at=remind_at, **kwargs)
    claimed = claim_mine(store, {f.id}, now)
    assert [d.id for d in claimed] == [f.id]
    store.outbox.posted(claimed[0], "C0STORE", f"1700000000.{uuid.uuid4().int % 10**6:06d}", now)


# --- the outbox -------------------------------------------------------------------------------

def test_a_finding_is_stored_once(store):
    f = finding()
    assert store.outbox.add(f, "C0STORE", T0) is True
    assert store.outbox.add(f, "C0STORE", T0 + timedelta(minutes=5)) is False
    assert store.outbox.add(Finding(**{**f.to_dict(), "detail": "seen again"}), "C0OTHER", T0) is False
    with store.engine.connect() as conn:
        rows = conn.execute(select(findings_table).where(findings_table.c.id == f.id)).all()
    assert len(rows) == 1
    assert rows[0].target == "C0STORE" and json.loads(rows[0].payload)["detail"] == "a test finding"
    assert rows[0].created_at == T0 and rows[0].state == "pending"


def test_claim_is_atomic_across_threads_and_store_objects(db_url):
    first, second = Store(db_url), Store(db_url)
    try:
        ids = set()
        for _ in range(120):
            f = finding()
            first.outbox.add(f, "C0STORE", T0)  # one created_at for all: ties must not deadlock
            ids.add(f.id)
        claimed: dict[str, list[str]] = {"a": [], "b": []}
        errors: list[BaseException] = []
        start = threading.Barrier(5)  # four claimers and this thread

        def worker(name: str, s: Store) -> None:
            try:
                start.wait()
                while True:
                    batch = s.outbox.claim(T0 + timedelta(seconds=1), limit=7)
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
        assert sorted(everything) == sorted(ids), "each pending row is claimed exactly once"
        assert {state_of(first, i) for i in ids} == {"posting"}
    finally:
        first.close()
        second.close()


def test_claim_takes_the_channels_in_turn(store):
    """A burst in one channel (Slack posts 1 message/s there) must not hold back other channels."""
    burst_channel, quiet_channel = f"C0B{uuid.uuid4().hex[:8].upper()}", f"C0Q{uuid.uuid4().hex[:8].upper()}"
    burst = [finding() for _ in range(10)]
    for i, f in enumerate(burst):
        store.outbox.add(f, burst_channel, T0 + timedelta(seconds=i))
    quiet = [finding(), finding(), finding()]
    for i, f in enumerate(quiet):
        store.outbox.add(f, quiet_channel, T0 + timedelta(minutes=5, seconds=i))  # newer than the whole burst
    mine = {f.id for f in burst + quiet}
    first = claim_once(store, mine, T0 + timedelta(minutes=10))
    assert [d.id for d in first] == [burst[0].id, quiet[0].id, burst[1].id, quiet[1].id], "two each, in turn"
    second = claim_once(store, mine, T0 + timedelta(minutes=10))
    assert [d.id for d in second] == [burst[2].id, quiet[2].id, burst[3].id]
    assert [d.id for d in claim_mine(store, mine, T0 + timedelta(minutes=10))] == [f.id for f in burst[4:]]


def test_acknowledge_is_idempotent(store):
    f = finding()
    assert store.outbox.add(f, "C0STORE", T0)
    assert store.outbox.acknowledge(f.id, "U0ADMIN", T0) is False, "nothing to acknowledge before it is posted"
    [claimed] = claim_mine(store, {f.id}, T0)
    store.outbox.posted(claimed, "C0STORE", "1700000000.000200", T0)
    assert store.outbox.acknowledge(f.id, "U0ADMIN", T0 + timedelta(minutes=1)) is True
    assert store.outbox.acknowledge(f.id, "U0OTHER", T0 + timedelta(minutes=2)) is False
    delivery = store.outbox.get(f.id)
    assert (delivery.state, delivery.acked_by, delivery.acked_at) == ("acked", "U0ADMIN", T0 + timedelta(minutes=1))
    assert f.id in {d.id for d in store.outbox.stale_messages()}, "the message must be re-rendered once"
    store.outbox.refreshed(delivery)
    assert f.id not in {d.id for d in store.outbox.stale_messages()}
    assert store.outbox.acknowledge("no-such-id", "U0ADMIN", T0) is False


def test_retry_later_and_posted_transitions(store):
    f = finding()
    store.outbox.add(f, "C0STORE", T0)
    [claimed] = claim_mine(store, {f.id}, T0)
    assert claimed.state == "pending" and state_of(store, f.id) == "posting" and claimed.attempts == 0
    assert claim_mine(store, {f.id}, T0) == [], "a row being posted is not claimed again"
    assert f.id in {d.id for d in store.outbox.in_posting()}

    store.outbox.retry_later(claimed, "ratelimited: Slack is failing", T0 + timedelta(seconds=30))
    row = store.outbox.get(f.id)
    assert (row.state, row.last_error, row.attempts) == ("pending", "ratelimited: Slack is failing", 1)
    assert claim_mine(store, {f.id}, T0 + timedelta(seconds=29)) == [], "not due before its retry time"
    [again] = claim_mine(store, {f.id}, T0 + timedelta(seconds=30))
    assert again.attempts == 1 and state_of(store, f.id) == "posting"

    store.outbox.posted(again, "C0REAL", "1700000000.000100", T0 + timedelta(seconds=31))
    row = store.outbox.get(f.id)
    assert (row.state, row.channel, row.ts, row.last_error, row.attempts) == \
        ("posted", "C0REAL", "1700000000.000100", None, 2)
    store.outbox.retry_later(again, "late failure of a finished post", T0 + timedelta(seconds=40))
    assert state_of(store, f.id) == "posted", "retry_later only hands back rows still being posted"
    assert claim_mine(store, {f.id}, T0 + timedelta(days=1)) == []
    assert f.id not in {d.id for d in store.outbox.in_posting()}


def test_held_rows_wait_for_the_digest_decision(store):
    held = [finding(kind="root_access_key_active", severity="high", account=account_id()) for _ in range(3)]
    for f in held:
        assert store.outbox.add(f, "C0STORE", T0, held=True)
    ids = {f.id for f in held}
    assert claim_mine(store, ids, T0) == []
    store.outbox.release_held([held[0].id])
    assert [d.id for d in claim_mine(store, ids, T0)] == [held[0].id]
    digest = uuid.uuid4().hex
    store.outbox.add_digest(digest, "root_access_key_active", "C0STORE", [f.id for f in held[1:]], T0)
    assert {state_of(store, f.id) for f in held[1:]} == {"digested"}
    [claimed] = [d for d in store.outbox.claim(T0, limit=500) if d.id == digest]
    assert claimed.is_digest and sorted(claimed.finding_ids) == sorted(f.id for f in held[1:])
    store.outbox.posted(claimed, "C0STORE", "1700000001.000100", T0)
    assert store.outbox.acknowledge(digest, "U0ADMIN", T0) is True
    assert {(m.acked_by, m.acked_at) for m in store.outbox.members(claimed)} == {("U0ADMIN", T0)}
    assert store.outbox.acknowledge(digest, "U0ADMIN", T0) is False


def test_resolve_absent(store):
    account = account_id()
    key_one = finding(kind="root_access_key_active", severity="high", account=account)
    key_two = finding(kind="root_access_key_active", severity="high", account=account)
    login = finding(account=account)
    gap = finding(kind="coverage_gap", severity="high", account=account)
    for f in (key_one, key_two, login, gap):
        post(store, f)
    now = T0 + timedelta(hours=4)
    resolved = store.outbox.resolve_absent(account, ["root_access_key_active", "root_mfa_disabled"], [key_two.id],
                                           now)
    assert resolved == [key_one.id]
    assert store.outbox.get(key_one.id).resolved_at == now
    assert store.outbox.get(key_two.id).resolved_at is None and store.outbox.get(login.id).resolved_at is None
    assert store.outbox.resolve_absent(account, ["root_access_key_active"], [key_two.id], now) == [], \
        "a resolved finding is resolved once"
    assert store.outbox.resolve_absent(account, ["coverage_gap"], [], now) == [gap.id], "empty `present` works"
    stale = {d.id for d in store.outbox.stale_messages()}
    assert {key_one.id, gap.id} <= stale and key_two.id not in stale
    assert store.outbox.resolve_absent(account_id(), ["coverage_gap"], [], now) == []


def test_reminders_are_due_for_open_critical_and_high_alerts_only(store):
    remind_at = T0 + timedelta(minutes=30)
    critical = finding()
    high = finding(kind="root_activity", severity="high")
    medium = finding(kind="root_console_login_failed", severity="medium")
    expected = finding()
    acked = finding()
    unposted = finding()
    for f in (critical, high, acked):
        post(store, f, remind_at=remind_at)
    post(store, medium, remind_at=remind_at)
    post(store, expected, remind_at=remind_at, expected=("U0ADMIN", "break-glass drill"))
    store.outbox.add(unposted, "C0STORE", T0, remind_at=remind_at)
    store.outbox.acknowledge(acked.id, "U0ADMIN", T0 + timedelta(minutes=1))
    mine = {critical.id, high.id, medium.id, expected.id, acked.id, unposted.id}

    def due(at: datetime) -> set[str]:
        return {d.id for d in store.outbox.due_reminders(at)} & mine

    assert due(remind_at - timedelta(seconds=1)) == set()
    assert due(remind_at) == {critical.id, high.id}
    store.outbox.reminded(critical.id, remind_at + timedelta(hours=1))
    store.outbox.reminded(high.id, None)  # the last reminder
    assert store.outbox.get(critical.id).reminders == 1
    assert due(remind_at + timedelta(minutes=59)) == set()
    assert due(remind_at + timedelta(hours=1)) == {critical.id}
    store.outbox.acknowledge(critical.id, "U0ADMIN", remind_at + timedelta(minutes=61))
    assert due(remind_at + timedelta(days=1)) == set(), "an acknowledged alert is never reminded"


def test_open_alerts_and_counts(store):
    f = finding(account=account_id())
    store.outbox.add(f, "C0STORE", T0 + timedelta(days=3650))  # newest of the module: listed first
    open_ids = [d.id for d in store.outbox.open_alerts(limit=5)]
    assert open_ids[0] == f.id
    assert store.outbox.counts().get("pending", 0) >= 1


# --- account state, sweeps, audit -------------------------------------------------------------

def test_account_failures_count_in_a_row_and_reset_when_checked(store):
    account = account_id()
    assert store.state.account(account)["failures"] == 0
    assert [store.state.account_failed(account, "AccessDenied") for _ in range(3)] == [1, 2, 3]
    assert account in {a["account_id"] for a in store.state.failing_accounts()}
    store.state.account_checked(account, T0, T0, report_seen_at=T0 - timedelta(hours=1), mfa_off_since=None)
    state = store.state.account(account)
    assert (state["failures"], state["last_error"], state["cursor"], state["report_seen_at"]) == \
        (0, None, T0, T0 - timedelta(hours=1))
    store.state.account_checked(account, T0 + timedelta(minutes=5), T0, report_seen_at=None, mfa_off_since="x")
    assert store.state.account(account)["report_seen_at"] == T0 - timedelta(hours=1), "kept when not re-read"


def test_sweeps_are_recorded(store):
    holder = f"host:{uuid.uuid4().hex[:6]}"
    sweep = store.state.sweep_started(holder, T0 + timedelta(days=3650))
    assert store.state.last_sweep(finished=False).id == sweep
    error = AccountError("300000000009", "AccessDenied", "denied", hint="fix the role")
    store.state.sweep_finished(sweep, T0 + timedelta(days=3650, seconds=3), 4, [error], 2)
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
    old, new = finding(), finding()
    long_ago = T0 - timedelta(days=500)
    store.outbox.add(old, "C0STORE", long_ago)
    store.outbox.add(new, "C0STORE", T0)
    account = account_id()
    store.state.expect(account, long_ago, timedelta(hours=1), "U0ADMIN", "old")
    store.state.audit(long_ago, "U0OLD", "ack", old.id)
    old_sweep = store.state.sweep_started("old-holder", long_ago)
    old_digest, new_digest = uuid.uuid4().hex, uuid.uuid4().hex
    store.outbox.add_digest(old_digest, "root_access_key_active", "C0STORE", [old.id], long_ago)
    store.outbox.add_digest(new_digest, "root_access_key_active", "C0STORE", [new.id], T0)
    store.state.purge(T0 - timedelta(days=400))
    assert store.outbox.get(old.id) is None and store.outbox.get(new.id) is not None
    assert store.outbox.get(old_digest) is None and store.outbox.get(new_digest) is not None
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
        assert {"findings", "digests", "accounts", "sweeps", "audit", "expectations", "leases"} <= tables
    finally:
        store.close()
    again = Store(fresh_db_url)  # opening an up-to-date database changes nothing
    again.close()
    assert _version(fresh_db_url) == _head()


def test_an_old_database_upgrades_in_place_and_keeps_its_rows(fresh_db_url):
    assert _head() != "0001", "add a migration after 0001 so this test upgrades something"
    _alembic(fresh_db_url, "0001")
    engine = create_engine(fresh_db_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO findings (id, kind, severity, account_id, payload, target, state, created_at, "
            "needs_update, attempts, reminders, channel, ts, posted_at) VALUES ('old-posted', 'root_console_login', "
            "'critical', '300000000001', :payload, 'C0OLD', 'posted', :at, false, 1, 0, 'C0OLD', "
            "'1700000000.000100', :at)"), {"payload": json.dumps(finding().to_dict() | {"id": "old-posted"}),
                                           "at": datetime(2026, 1, 1)})
        conn.execute(text(
            "INSERT INTO findings (id, kind, severity, account_id, payload, target, state, created_at, "
            "needs_update, attempts, reminders) VALUES ('old-pending', 'root_activity', 'high', '300000000001', "
            ":payload, 'C0OLD', 'pending', :at, false, 0, 0)"),
            {"payload": json.dumps(finding().to_dict() | {"id": "old-pending"}), "at": datetime(2026, 1, 2)})
        conn.execute(text("INSERT INTO accounts (account_id, failures, cursor) VALUES ('300000000001', 2, :at)"),
                     {"at": datetime(2026, 1, 2)})
        conn.execute(text("INSERT INTO audit (at, actor, action) VALUES (:at, 'U0OLD', 'ack')"),
                     {"at": datetime(2026, 1, 2)})
    engine.dispose()
    assert _version(fresh_db_url) == "0001"

    store = Store(fresh_db_url)
    try:
        assert store.revision == _head() == _version(fresh_db_url)
        old = store.outbox.get("old-posted")
        assert (old.state, old.ts, old.channel) == ("posted", "1700000000.000100", "C0OLD")
        assert store.outbox.get("old-pending").state == "pending"
        assert store.state.account("300000000001")["failures"] == 2
        assert store.state.account("300000000001")["cursor"] == datetime(2026, 1, 2, tzinfo=timezone.utc)
        assert store.state.audit_log()[0]["actor"] == "U0OLD"
        indexes = {ix["name"] for ix in inspect(store.engine).get_indexes("findings")}
        assert "ix_findings_claim" in indexes, "0002's index exists after the upgrade"
        claimed = [d.id for d in store.outbox.claim(datetime.now(timezone.utc))]
        assert claimed == ["old-pending"], "an upgraded outbox still delivers what was pending"
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


def test_an_interrupted_sqlite_upgrade_can_be_redone(sqlite_url):
    """SQLite runs DDL outside the transaction: a start killed mid-upgrade leaves part of it done."""
    _alembic(sqlite_url, "0001")
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_findings_claim ON findings (state, created_at)"))
    engine.dispose()
    Store(sqlite_url).close()
    assert _version(sqlite_url) == _head()


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
    processes = [subprocess.Popen([sys.executable, "-c", OPEN, url], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT) for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].decode().strip() for p in processes]
    assert outputs == [_head()] * 4, outputs
    assert [p.returncode for p in processes] == [0] * 4
    assert _version(url) == _head()


def test_an_unreachable_database_is_a_store_error(tmp_path, dialect, request):
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'missing-dir' / 'rootcheck.db'}"
    else:
        from sqlalchemy.engine import make_url

        url = make_url(request.getfixturevalue("postgres_server")).set(
            database=f"rc_missing_{uuid.uuid4().hex[:6]}").render_as_string(hide_password=False)
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
