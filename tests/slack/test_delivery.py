"""The deliverer in process: a real store (SQLite file), a real WebClient and the fake Slack.

What a bad day does to delivery: a row that cannot be rendered, the store failing right after a
post, a message deleted in Slack, and a late edit racing a person's click.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.models import Clues, Finding
from bot.slack.delivery import Deliverer
from bot.slack.notifier import Notifier, make_client
from bot.store import Placement, Store

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def channel(fake_slack) -> str:
    name = "C" + uuid.uuid4().hex[:10].upper()
    fake_slack.add_channel(name, members=["U0ADMIN"])
    return name


def make_deliverer(store: Store, notifier: Notifier, channel: str, clock: Clock) -> Deliverer:
    """A deliverer to `channel` on the test clock, retrying at once."""
    return Deliverer(
        store,
        notifier,
        "https://example.com/guide",
        channel,
        lambda a: None,
        timedelta(minutes=5),
        [],
        "host:1",
        retry_base=0.01,
        clock=clock,
    )


@pytest.fixture
def setup(fake_slack, channel, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'delivery.db'}")
    clock = Clock()
    notifier = Notifier(make_client(fake_slack.bot_token, fake_slack.api_url, retries=0), pace=0, edit_pace=0)
    deliverer = make_deliverer(store, notifier, channel, clock)
    placement = Placement(target=lambda a: channel, remind_after=timedelta(minutes=30))
    yield store, deliverer, placement, clock
    store.close()


def login(account: str = "300000000011", minute: int = 0) -> Finding:
    return Finding(
        id=uuid.uuid4().hex,
        kind="root_console_login",
        severity="critical",
        account_id=account,
        source="cloudtrail",
        event_id=str(uuid.uuid4()),
        event_name="ConsoleLogin",
        event_time=f"2026-11-28T07:{minute:02d}:00Z",
        source_ip="192.0.2.1",
        user_agent="ua",
        mfa_used=False,
        detail="d",
        clues=Clues(),
    )


def console_call(account: str, second: int) -> Finding:
    """A read-only console call of the session that `login(account)` opened."""
    return Finding(
        **{
            **login(account).to_dict(),
            "kind": "root_activity",
            "event_name": "ListBuckets",
            "event_time": f"2026-11-28T07:00:{second:02d}Z",
            "severity": "medium",
        },
        clues=Clues(access_key_id="ASIA1", console=True, read_only=True),
    )


def deliver_with_the_store_down_after_the_post(store: Store, deliverer: Deliverer, monkeypatch) -> list:
    """A delivery run whose posts reach Slack but whose records do not reach the store."""

    def store_down(*args, **kwargs):
        raise ConnectionError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(store.messages, "posted", store_down)
        return deliverer.deliver()


def top_level(fake_slack, channel):
    return [m for m in fake_slack.messages(channel) if (m.get("metadata") or {}).get("event_type")]


def test_an_alert_that_cannot_be_rendered_is_failed_with_the_reason_and_blocks_nothing(setup, fake_slack, channel):
    store, deliverer, placement, _ = setup
    found = [login(minute=n) for n in range(3)]
    store.alerts.ingest(found, NOW, placement)
    with store.engine.begin() as conn:  # a row this version cannot read (a bug, a bad restore, a bit flip)
        conn.execute(text('UPDATE alerts SET summary = \'{"count": "many"}\' WHERE id = :i'), {"i": found[1].id})
    posted = []
    while batch := deliverer.deliver():
        posted += batch
    assert sorted(r.id for r in posted) == sorted([found[0].id, found[2].id])
    broken = store.alerts.get(found[1].id)
    assert broken.state == "failed" and "cannot be rendered" in broken.last_error
    assert deliverer.deliver() == [] and store.messages.stale_postings(None) == []


def test_the_store_failing_right_after_a_post_neither_strands_nor_repeats_it(setup, fake_slack, channel, monkeypatch):
    store, deliverer, placement, clock = setup
    f = login()
    store.alerts.ingest([f], NOW, placement)
    assert deliver_with_the_store_down_after_the_post(store, deliverer, monkeypatch) == []
    assert store.alerts.get(f.id).state == "posting", "not handed back to be posted blindly"
    deliverer.reconcile()  # every delivery run reconciles: found by its metadata, not posted again
    record = store.alerts.get(f.id)
    assert record.state == "posted" and len(top_level(fake_slack, channel)) == 1


def test_the_reconcile_reads_channel_history_no_further_back_than_14_days(setup, fake_slack, channel, monkeypatch):
    """A busy channel's whole history is not read to find one message: the reconcile's scan is capped."""
    store, deliverer, placement, clock = setup
    f = login()
    store.alerts.ingest([f], NOW, placement)
    deliver_with_the_store_down_after_the_post(store, deliverer, monkeypatch)
    deliverer.reconcile()
    reads = [read for read in fake_slack.calls("conversations.history") if read["channel"] == channel]
    assert reads and store.alerts.get(f.id).state == "posted"
    assert all(float(read["oldest"]) == (NOW - timedelta(days=14)).timestamp() for read in reads), reads


def test_a_message_deleted_in_slack_is_retried_with_backoff_then_given_up_and_shown(setup, fake_slack, channel):
    store, deliverer, placement, clock = setup
    f = login()
    store.alerts.ingest([f], NOW, placement)
    [record] = deliverer.deliver()
    ts = store.alerts.get(f.id).ts
    fake_slack.set_error("chat.update", "message_not_found")
    try:
        attempts = []
        for _ in range(40):
            store.messages.acknowledge(f.id, "U0ADMIN", clock.now) if not attempts else None
            before = len(fake_slack.call_log("chat.update"))
            deliverer.edit_due()
            attempts.append(len(fake_slack.call_log("chat.update")) - before)
            clock.now += timedelta(seconds=30)
    finally:
        fake_slack.set_error("chat.update", None)
    assert 1 < sum(attempts) <= 8, f"backed off and gave up: {attempts}"
    assert attempts[-10:] == [0] * 10
    assert "message_not_found" in store.alerts.get(f.id).last_error and ts


def test_an_edit_for_an_ack_is_not_undone_by_a_slower_older_edit(setup, fake_slack, channel):
    """The old refresh rendered a snapshot and cleared the flag whatever happened meanwhile."""
    store, deliverer, placement, clock = setup
    account = "300000000012"
    f = login(account)
    store.alerts.ingest([f], NOW, placement)
    deliverer.deliver()
    call = console_call(account, 30)
    store.alerts.ingest([call], NOW, placement)
    clock.now += timedelta(seconds=11)
    slow = store.messages.start_edit(f.id, "slow-editor", clock.now, timedelta(seconds=60))  # renders v2
    assert deliverer.acknowledge(f.id, "U0ADMIN") is True  # v3; the lease is held by the slow editor
    store.messages.finish_edit(slow, "slow-editor", clock.now, None)  # the slow edit lands after the ack
    deliverer.edit_due()
    message = fake_slack.message(channel, store.alerts.get(f.id).ts)
    assert "Acknowledged by <@U0ADMIN>" in str(message["blocks"])
    assert store.alerts.get(f.id).shown_version == store.alerts.get(f.id).version


def test_an_ack_updates_the_message_at_once_and_leaves_the_thread_summary_to_its_10_second_turn(
    setup, fake_slack, channel
):
    """The summary shows findings, not the ack: editing it at the click was an edit 3 s after its post
    (seen in bench/flood.py), against "its summary reply at most once every 10 seconds"."""
    store, deliverer, placement, clock = setup
    account = "300000000013"
    f = login(account)
    store.alerts.ingest([f], NOW, placement)
    deliverer.deliver()

    store.alerts.ingest([console_call(account, 10)], NOW, placement)
    clock.now += timedelta(seconds=11)
    assert deliverer.edit_due() == 1
    record = store.alerts.get(f.id)
    assert (
        record.summary_ts and fake_slack.message(channel, record.summary_ts)["metadata"]["event_payload"]["count"] == 2
    )
    store.alerts.ingest([console_call(account, 20)], NOW, placement)
    clock.now += timedelta(seconds=2)
    assert deliverer.acknowledge(f.id, "U0ADMIN") is True
    assert "Acknowledged by <@U0ADMIN>" in str(fake_slack.message(channel, record.ts)["blocks"]), "at once"
    assert fake_slack.edits(channel, record.summary_ts) == [], "the summary waits for its turn"
    assert deliverer.edit_due() == 0, "not before 10 s after the ack's edit"
    clock.now += timedelta(seconds=10)
    assert deliverer.edit_due() == 1
    [edit] = fake_slack.edits(channel, record.summary_ts)
    assert edit["metadata"]["event_payload"]["count"] == 3
    latest = store.alerts.get(f.id)
    assert latest.summary_shown_version == latest.version == latest.shown_version


def test_a_summary_claim_a_crash_left_is_posted_in_the_thread_not_taken_from_the_alert(setup, fake_slack, channel):
    """A replica killed between claiming a session's thread summary and recording it: the claim is
    taken over when stale, and the thread is searched first. The search took the alert itself (its
    metadata carries the same id) for the summary: no summary was ever posted, and the summary's
    edits went to the alert's message (found in the soak, bench/soak.py)."""
    store, deliverer, placement, clock = setup
    account = "300000000014"
    f = login(account)
    store.alerts.ingest([f], NOW, placement)
    deliverer.deliver()
    call = console_call(account, 10)
    store.alerts.ingest([call], NOW, placement)
    assert store.messages.claim_summary(f.id, clock.now, clock.now)  # the crashed replica's claim
    clock.now += timedelta(minutes=6)
    assert deliverer.edit_due() == 1
    record = store.alerts.get(f.id)
    thread = fake_slack.replies(channel, record.ts)
    assert [m["metadata"]["event_type"] for m in thread] == ["rootcheck_summary"]
    assert record.summary_state == "posted" and record.summary_ts == thread[0]["ts"] != record.ts
    store.alerts.ingest(
        [
            Finding(
                **{
                    **call.to_dict(),
                    "id": uuid.uuid4().hex,
                    "event_id": str(uuid.uuid4()),
                    "event_time": "2026-11-28T07:00:20Z",
                },
                clues=call.clues,
            )
        ],
        NOW,
        placement,
    )
    clock.now += timedelta(seconds=11)
    assert deliverer.edit_due() == 1
    assert fake_slack.message(channel, record.ts)["metadata"]["event_type"] == "rootcheck_finding", (
        "the summary's edit went to its own message"
    )
    assert fake_slack.message(channel, record.summary_ts)["metadata"]["event_payload"]["count"] == 3


def failing_writes(store_part, *failing: int):
    """The store part's write transactions numbered in `failing` (from 1) fail as a restarting database's."""
    real, count = store_part.write, {"n": 0}

    def write():
        count["n"] += 1
        if count["n"] in failing:
            raise ConnectionError("the database is shutting down")
        return real()

    return write


def test_a_post_the_store_could_neither_record_nor_mark_is_reconciled_at_the_next_run_and_strands_nothing(
    setup, fake_slack, channel, monkeypatch
):
    """PostgreSQL restarting under a post: recording it failed, and so did marking it for the
    reconcile. The exception left the deliver job: the rest of the batch stayed claimed, and the
    post waited out the 5-minute deadline of an abandoned claim, its Acknowledge button dead
    meanwhile (found in the soak, bench/soak.py)."""
    store, deliverer, placement, clock = setup
    first, second = login(minute=1), login(minute=2)
    store.alerts.ingest([first, second], NOW, placement)
    with monkeypatch.context() as patch:  # the claim goes through; the first post's record and its mark fail
        patch.setattr(store.messages, "write", failing_writes(store.messages, 2, 3))
        assert [r.id for r in deliverer.deliver()] == [second.id], "the rest of the batch is posted"
    assert store.alerts.get(first.id).state == "posting"
    deliverer.reconcile()  # the same delivery run, the store back: found by its metadata, not posted again
    assert {store.alerts.get(f.id).state for f in (first, second)} == {"posted"}
    assert len(top_level(fake_slack, channel)) == 2


def test_a_reply_the_store_could_neither_record_nor_mark_is_reconciled_at_the_next_run_and_strands_nothing(
    setup, fake_slack, channel, monkeypatch
):
    """The same for thread replies: the exception left the reminder job, the other replies of its
    batch stayed claimed, and all waited out the 5-minute deadline (found in the soak)."""
    store, deliverer, placement, clock = setup
    f = login("300000000015")
    store.alerts.ingest([f], NOW, placement)
    deliverer.deliver()
    for count in (1, 2):
        store.messages.add_reply(
            f"remind:{f.id}:{count}", f.id, {"kind": "reminder", "count": count, "severity": "critical"}, clock.now
        )
    with monkeypatch.context() as patch:  # the claim goes through; the first reply's record and its mark fail
        patch.setattr(store.messages, "write", failing_writes(store.messages, 2, 3))
        assert deliverer.post_replies() == 1, "the rest of the batch is posted"
    deliverer.reconcile()  # the same delivery run, the store back: found by its metadata, not posted again
    with store.engine.connect() as conn:
        states = conn.execute(text("SELECT state FROM replies WHERE alert_id = :a"), {"a": f.id}).scalars().all()
    assert states == ["posted", "posted"]
    thread = fake_slack.replies(channel, store.alerts.get(f.id).ts)
    assert sorted(m["metadata"]["event_payload"]["reply_id"] for m in thread) == [
        f"remind:{f.id}:1",
        f"remind:{f.id}:2",
    ]
