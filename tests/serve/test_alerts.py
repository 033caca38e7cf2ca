"""One root session, one alert: the real `rootcheck serve` grouping what the AWS stand-in holds,
posting to FakeSlack, edited as sessions go on, and surviving a crash between an edit and its record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import create_engine, text

from bot.checks.cloudtrail import check_record
from tests.harness import wait_for
from tests.records import root_call_record, root_login_record
from tests.serve.conftest import new_accounts
from tests.slack.support import stays

EDIT_GAP = 10.0  # the interface's "at most once every 10 seconds" per message


def top_level(fake_slack, channel: str) -> list[dict]:
    return [
        m for m in fake_slack.messages(channel) if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"
    ]


def payload(message: dict) -> dict:
    return message["metadata"]["event_payload"]


def current(fake_slack, channel: str, ts: str) -> dict:
    return fake_slack.message(channel, ts)


def count_of(fake_slack, channel: str, ts: str) -> int:
    return payload(current(fake_slack, channel, ts))["count"]


def summaries(fake_slack, channel: str, ts: str) -> list[dict]:
    return [
        r for r in fake_slack.replies(channel, ts) if (r.get("metadata") or {}).get("event_type") == "rootcheck_summary"
    ]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_brute_force_then_a_signin_posts_the_signin_first(launch, fake_slack, standin, channel, sqlite_db):
    [account] = new_accounts(standin)
    start = now() - timedelta(minutes=10)
    failures = [
        root_login_record(account, start + timedelta(seconds=3 * i), success=False, source_ip=f"203.0.113.{i % 7}")
        for i in range(150)
    ]
    signin = root_login_record(account, start + timedelta(minutes=9))
    standin.add_events(account, "us-east-1", failures + [signin])
    launch.start(launch.env(sqlite_db, channel, [account]))

    posted = wait_for(
        lambda: (lambda found: found if len(found) == 2 else None)(top_level(fake_slack, channel)), timeout=30
    )
    first, second = sorted(posted, key=lambda m: float(m["ts"]))
    assert payload(first)["finding_id"] == check_record(signin).id, "the sign-in goes out first"
    assert payload(first)["severity"] == "critical"
    # posted from the first page that held it; failures read from later pages update its count in place
    wait_for(
        lambda: "After 150 failed sign-in(s)" in json.dumps(current(fake_slack, channel, first["ts"])["blocks"]),
        timeout=30,
    )
    assert (payload(second)["kind"], payload(second)["count"], payload(second)["severity"]) == (
        "root_console_login_failed",
        150,
        "high",
    )
    assert "possible password guessing" in second["text"]
    assert stays(lambda: len(top_level(fake_slack, channel)) == 2, seconds=3), "150 failures, one alert"


def test_a_session_is_edited_as_it_goes_on_its_risky_call_stands_out_and_an_ack_covers_later_calls(
    launch, fake_slack, standin, channel, sqlite_db
):
    [account] = new_accounts(standin)
    t0 = now() - timedelta(minutes=5)
    ip = "198.51.100.7"
    signin = root_login_record(account, t0, source_ip=ip)
    standin.add_events(account, "us-east-1", [signin])
    serve = launch.start(launch.env(sqlite_db, channel, [account]))
    [session] = wait_for(lambda: top_level(fake_slack, channel), timeout=20)
    assert payload(session)["count"] == 1

    calls = [root_call_record(account, t0 + timedelta(seconds=10 + i), source_ip=ip) for i in range(20)]
    standin.add_events(account, "us-east-1", calls)
    wait_for(lambda: count_of(fake_slack, channel, session["ts"]) == 21, timeout=40)
    assert len(top_level(fake_slack, channel)) == 1, "the session's calls edit its alert"
    [summary] = wait_for(lambda: summaries(fake_slack, channel, session["ts"]), timeout=30)
    assert "20 call(s)" in json.dumps(summary["blocks"])

    risky = root_call_record(
        account,
        t0 + timedelta(seconds=40),
        "StopLogging",
        source_ip=ip,
        read_only=False,
        event_source="cloudtrail.amazonaws.com",
    )
    standin.add_events(account, "us-east-1", [risky])
    own = wait_for(
        lambda: next(
            (m for m in top_level(fake_slack, channel) if payload(m)["finding_id"] == check_record(risky).id), None
        ),
        timeout=20,
    )
    assert payload(own)["severity"] == "critical" and "High-risk root call: StopLogging" in own["text"]
    wait_for(lambda: count_of(fake_slack, channel, session["ts"]) == 22, timeout=40)

    serve.click(payload(session)["finding_id"], session["ts"], user="U0ADMIN", channel=channel)
    wait_for(
        lambda: "Acknowledged by <@U0ADMIN>" in json.dumps(current(fake_slack, channel, session["ts"])["blocks"]),
        timeout=5,
    )
    later = [root_call_record(account, t0 + timedelta(seconds=60 + i), source_ip=ip) for i in range(3)]
    standin.add_events(account, "us-east-1", later)
    wait_for(lambda: count_of(fake_slack, channel, session["ts"]) == 25, timeout=40)
    message = current(fake_slack, channel, session["ts"])
    assert "Acknowledged by <@U0ADMIN>" in json.dumps(message["blocks"]), "the ack covers calls that join later"
    assert len(top_level(fake_slack, channel)) == 2, "the session and its risky call, nothing more"
    assert len(summaries(fake_slack, channel, session["ts"])) == 1, "one summary reply, edited in place"

    edits = [e["time"] for e in fake_slack.edits(channel, session["ts"])]
    clicked = [
        e["time"] for e in fake_slack.edits(channel, session["ts"]) if "Acknowledged by" in json.dumps(e["blocks"])
    ][0]
    paced = [float(session["ts"])] + [t for t in edits if t != clicked]
    gaps = [b - a for a, b in zip(paced, paced[1:])]
    timeline = [
        (round(e["time"] - float(session["ts"]), 1), payload(e)["count"], "Acknowledged" in json.dumps(e["blocks"]))
        for e in fake_slack.edits(channel, session["ts"])
    ]
    assert all(gap >= EDIT_GAP - 0.5 for gap in gaps), f"edits closer than 10 s: {gaps} {timeline}"


def test_kill_9_between_an_edit_and_its_record_loses_no_count_and_posts_nothing_twice(
    launch, fake_slack, standin, channel, sqlite_db
):
    [account] = new_accounts(standin)
    t0 = now() - timedelta(minutes=5)
    standin.add_events(account, "us-east-1", [root_login_record(account, t0, source_ip="198.51.100.8")])
    env = launch.env(sqlite_db, channel, [account])
    serve = launch.start(env)
    [session] = wait_for(lambda: top_level(fake_slack, channel), timeout=20)
    fake_slack.set_delay("chat.update", 60, when="after")  # Slack applies the edit; the answer never comes
    try:
        calls = [root_call_record(account, t0 + timedelta(seconds=10 + i), source_ip="198.51.100.8") for i in range(5)]
        standin.add_events(account, "us-east-1", calls)
        wait_for(lambda: fake_slack.in_flight("chat.update"), timeout=40)
        serve.kill()
    finally:
        fake_slack.set_delay("chat.update", None)
        fake_slack.release_delays()
    more = [root_call_record(account, t0 + timedelta(seconds=30 + i), source_ip="198.51.100.8") for i in range(2)]
    standin.add_events(account, "us-east-1", more)
    launch.start(env)
    wait_for(lambda: count_of(fake_slack, channel, session["ts"]) == 8, timeout=40)
    assert len(top_level(fake_slack, channel)) == 1
    wait_for(lambda: summaries(fake_slack, channel, session["ts"]), timeout=30)
    assert stays(lambda: len(summaries(fake_slack, channel, session["ts"])) == 1, seconds=2)


def test_a_database_of_the_previous_release_keeps_working_after_the_upgrade(
    launch, fake_slack, standin, channel, tmp_path
):
    """The previous release posted an alert and stored it in its findings outbox (schema 0002)."""
    from alembic import command
    from alembic.config import Config

    from bot.store.db import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    [account] = new_accounts(standin)
    old = check_record(root_login_record(account, now() - timedelta(hours=1)))
    client = WebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
    ts = client.chat_postMessage(
        channel=channel,
        text="CRITICAL: Root console sign-in",
        metadata={
            "event_type": "rootcheck_finding",
            "event_payload": {"finding_id": old.id, "account_id": account, "kind": old.kind, "severity": old.severity},
        },
    )["ts"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO findings (id, kind, severity, account_id, payload, target, state, created_at, event_time, "
                "needs_update, attempts, reminders, channel, ts, posted_at) VALUES (:id, :kind, 'critical', :account, "
                ":payload, :channel, 'posted', :at, :at, false, 1, 0, :channel, :ts, :at)"
            ),
            {
                "id": old.id,
                "kind": old.kind,
                "account": account,
                "payload": json.dumps(old.to_dict()),
                "channel": channel,
                "ts": ts,
                "at": datetime.now(UTC).replace(tzinfo=None),
            },
        )
    engine.dispose()

    serve = launch.start(launch.env(url, channel, [account]))
    serve.click(old.id, ts, user="U0ADMIN", channel=channel)
    wait_for(
        lambda: "Acknowledged by <@U0ADMIN>" in json.dumps(fake_slack.message(channel, ts)["blocks"] or []), timeout=10
    )
    assert [m["ts"] for m in top_level(fake_slack, channel)] == [ts], "the old alert, updated in place"
    wait_for(lambda: fake_slack.replies(channel, ts), timeout=10)
    assert stays(lambda: len(fake_slack.replies(channel, ts)) == 1, seconds=1), "one audit reply"
