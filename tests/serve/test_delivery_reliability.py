"""Nothing lost, nothing twice: the real `rootcheck serve` process, killed, paused, stopped and
starved of Slack, against FakeSlack and the AWS stand-in.

Every test has its own channel, accounts and database. Intervals are short (ROOTCHECK_SWEEP_INTERVAL
is a few seconds) and every wait is a `wait_for` on something observable.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes.aws_standin import root_report_csv
from tests.harness import BIN, wait_for
from tests.records import root_call_record
from tests.serve.conftest import (
    INTERVAL,
    alert,
    alerts,
    holder_pid,
    new_accounts,
    post_attempts,
    root_logins,
    utc,
    wait_posted_once,
)

# --- crashes between detection, insert, post and record ----------------------------------------


def _restart_and_check(launch, fake_slack, db, env, channel, ids):
    """Start again; once its first sweep (which reads the same events again) is done and nothing is
    left to post, every finding has exactly one alert, and nothing more can come."""
    serve = launch.start(env)
    wait_for(
        lambda: any(s.finished_at and holder_pid(s.holder) == serve.process.pid for s in db.sweeps()),
        timeout=20,
        interval=0.1,
    )
    wait_posted_once(fake_slack, channel, ids)
    wait_for(lambda: set(db.states().values()) <= {"posted"}, timeout=20, interval=0.1)
    assert alerts(fake_slack, channel) == {i: 1 for i in ids}
    return serve


def test_crash_while_the_post_is_stored_in_slack_but_unanswered(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    """kill -9 after Slack stored the message and before the answer came back: reconciled from history."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    fake_slack.set_delay("chat.postMessage", 30, when="after")
    try:
        ids = root_logins(standin, account, 2)
        serve = launch.start(env)
        wait_for(lambda: len(alerts(fake_slack, channel)) == 1 and fake_slack.in_flight("chat.postMessage"), timeout=20)
        [stored] = alerts(fake_slack, channel)
        assert db.states([stored]) == {stored: "posting"}, "the post is between Slack and the record"
        serve.kill()
    finally:
        fake_slack.set_delay("chat.postMessage", None)
        fake_slack.release_delays()
    _restart_and_check(launch, fake_slack, db, env, channel, ids)


@pytest.mark.parametrize("request_lands", [False, True], ids=["never-reached-slack", "reached-slack-after-the-crash"])
def test_crash_while_the_post_request_is_on_its_way(
    launch, fake_slack, standin, channel, sqlite_db, db_reader, request_lands
):
    """kill -9 while the request is not yet stored by Slack; it either never arrives, or lands late."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    fake_slack.set_delay("chat.postMessage", 30, when="before")
    try:
        ids = root_logins(standin, account, 2)
        serve = launch.start(env)
        wait_for(lambda: fake_slack.in_flight("chat.postMessage"), timeout=20)
        assert alerts(fake_slack, channel) == {}
        assert "posting" in db.states(ids).values()
        serve.kill()
        if not request_lands:
            fake_slack.set_error("chat.postMessage", "fatal_error")  # the held request dies with the process
        fake_slack.release_delays()
        wait_for(lambda: fake_slack.in_flight("chat.postMessage") == 0, timeout=10)
        assert len(alerts(fake_slack, channel)) == (1 if request_lands else 0)
    finally:
        fake_slack.set_error("chat.postMessage", None)
        fake_slack.set_delay("chat.postMessage", None)
        fake_slack.release_delays()
    _restart_and_check(launch, fake_slack, db, env, channel, ids)


def test_crash_after_the_insert_before_any_post(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """kill -9 with the findings stored and Slack unreachable: posted once after the restart."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    fake_slack.outage(120, status=503, method="chat.postMessage")
    try:
        ids = root_logins(standin, account, 3)
        serve = launch.start(env)
        wait_for(lambda: set(db.states(ids)) == set(ids), timeout=20)
        assert alerts(fake_slack, channel) == {}
        serve.kill()
    finally:
        fake_slack.outage(0)
    serve = _restart_and_check(launch, fake_slack, db, env, channel, ids)

    status, body = serve.health()
    assert status == 200
    assert body["status"] == "ok" and body["store"] == "ok" and body["scheduler"] == "leader"
    assert body["slack"]["error"] is None and body["last_sweep_finished_at"]
    status, metrics = serve.get("/metrics")
    text = metrics.decode()
    assert status == 200
    assert 'rootcheck_sweeps_total{result="ok"}' in text
    assert "rootcheck_slack_posts_total 3.0" in text
    assert "rootcheck_healthy 1.0" in text
    assert all(line.startswith("rootcheck_") for line in text.splitlines() if line and not line.startswith("#"))


def test_crash_during_detection_before_the_insert(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """kill -9 while AWS answers slowly and nothing is stored yet: the next run finds the events again."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    ids = root_logins(standin, account, 2)
    standin.latency = 2.0
    try:
        serve = launch.start(env)
        wait_for(lambda: db.sweeps(), timeout=20)
        assert db.states(ids) == {} and db.sweeps()[0].finished_at is None
        serve.kill()
    finally:
        standin.latency = 0.0
    _restart_and_check(launch, fake_slack, db, env, channel, ids)


def test_crash_between_hygiene_insert_and_the_digest_decision(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    """Hygiene findings wait (`held`) until the sweep decides on a digest; a crash there must not lose them."""
    quick, slow = new_accounts(standin, 2)
    key = root_report_csv(quick, key1_active=True, key1_last_rotated="2025-02-03T04:05:06+00:00")
    standin.add_account(quick, report_csv=key, report_state="complete")  # answers at once
    standin.add_account(slow, report_state="absent")  # the report takes a poll: the sweep goes on
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [quick, slow])
    serve = launch.start(env)
    wait_for(db.held, timeout=20)
    serve.kill()
    [held] = db.held()
    _restart_and_check(launch, fake_slack, db, env, channel, [held])


# --- Slack outages and permanent errors --------------------------------------------------------


def test_outage_then_rate_limit_loses_nothing_and_posts_nothing_twice(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    """Slack answers 500 (past the client's own retries), then 429 with Retry-After, then recovers."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    fake_slack.outage(120, status=500, method="chat.postMessage")
    try:
        ids = root_logins(standin, account, 2)
        serve = launch.start(launch.env(sqlite_db, channel, [account]))
        wait_for(lambda: serve.health()[1]["slack"]["error"] == "slack_unavailable", timeout=20)
        status, body = serve.health()
        assert status == 200, "Slack failing does not make the bot unhealthy"
        assert "retrying" in body["slack"]["fix"] and "internal_error" not in json.dumps(body), "codes of a fixed list"
        response_url = fake_slack.new_response_url()
        serve.command("status", user="U0ADMIN", response_url=response_url, channel=channel)
        [answer] = fake_slack.wait_for_responses(response_url, timeout=10)
        assert "Slack delivery failing" in answer["text"] and "internal_error" in answer["text"]
        ids += root_logins(standin, account, 2)  # findings keep arriving during the outage

        fake_slack.outage(0)
        fake_slack.outage(120, status=429, retry_after=1, method="chat.postMessage")
        wait_for(lambda: any(c["status"] == 429 for c in fake_slack.call_log("chat.postMessage")), timeout=20)
        ids += root_logins(standin, account, 1)
        assert alerts(fake_slack, channel) == {}
    finally:
        fake_slack.outage(0)
    wait_posted_once(fake_slack, channel, ids, timeout=40)
    wait_for(lambda: set(db.states().values()) == {"posted"}, timeout=10, interval=0.1)  # nothing more to post
    assert alerts(fake_slack, channel) == {i: 1 for i in ids}
    assert serve.health()[1]["slack"]["error"] is None, "the error clears once Slack answers again"


def test_not_in_channel_waits_for_the_invite_without_a_hot_loop(launch, fake_slack, standin, sqlite_db, db_reader):
    channel = "C0NOTIN" + str(int(time.time() * 1000))[-6:]
    fake_slack.add_channel(channel, members=["U0ADMIN"], bot_is_member=False)
    [account] = new_accounts(standin)
    interval = 3.0  # longer than the 2 s delivery tick, so a retry per tick would show
    db = db_reader(sqlite_db)
    ids = root_logins(standin, account, 2)
    serve = launch.start(launch.env(sqlite_db, channel, [account], ROOTCHECK_SWEEP_INTERVAL=f"{interval:g}s"))
    wait_for(
        lambda: all(len([a for a in post_attempts(fake_slack, channel) if a["finding_id"] == i]) >= 2 for i in ids),
        timeout=30,
        interval=0.2,
    )
    status, body = serve.health()
    assert status == 200 and body["slack"]["error"] == "slack_not_in_channel"
    assert "/invite" in body["slack"]["fix"]
    assert set(db.states(ids).values()) <= {"pending", "posting"}
    for finding_id in ids:
        times = [a["time"] for a in post_attempts(fake_slack, channel) if a["finding_id"] == finding_id]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) >= interval * 0.9, f"retried every {min(gaps):.1f}s, not once per interval"
    assert all(a["error"] == "not_in_channel" for a in post_attempts(fake_slack, channel))

    fake_slack.set_bot_membership(channel, True)  # someone typed /invite @rootcheck
    wait_posted_once(fake_slack, channel, ids, timeout=20)
    wait_for(lambda: set(db.states().values()) == {"posted"}, timeout=10, interval=0.1)
    assert alerts(fake_slack, channel) == {i: 1 for i in ids}
    assert serve.health()[1]["slack"]["error"] is None


# --- one scheduler ------------------------------------------------------------------------------


def test_a_second_serve_on_the_same_sqlite_file_is_refused(launch, fake_slack, standin, channel, sqlite_db):
    [account] = new_accounts(standin)
    env = launch.env(sqlite_db, channel, [account])
    first = launch.start(env)
    second = subprocess.run([str(BIN), "serve"], env=dict(env, PORT="0"), capture_output=True, timeout=60)
    assert second.returncode == 2
    lines = [line for line in second.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "ROOTCHECK_DATABASE_URL" in lines[0] and "Traceback" not in second.stderr.decode()
    assert first.health()[0] == 200 and first.process.poll() is None


def test_a_paused_process_catches_up_with_one_sweep(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """SIGSTOP for several intervals, SIGCONT: one catch-up sweep, then the normal rhythm, never overlapping."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    serve = launch.start(launch.env(sqlite_db, channel, [account]))
    db.wait_sweeps(1)
    phase = utc(db.sweeps()[-1].started_at) % INTERVAL  # sweeps start on a fixed grid
    serve.process.send_signal(signal.SIGSTOP)
    stopped = time.time()
    count = len(db.sweeps())
    # wake up half an interval away from the grid, so the catch-up cannot be mistaken for a tick
    resume = stopped + 3 * INTERVAL
    resume += (phase + INTERVAL / 2 - resume) % INTERVAL
    wait_for(lambda: time.time() >= resume, timeout=6 * INTERVAL, interval=0.02)
    assert len(db.sweeps()) == count, "a stopped process does not sweep"
    serve.process.send_signal(signal.SIGCONT)
    resumed = time.time()
    wait_for(lambda: time.time() >= resumed + 1.5 * INTERVAL, timeout=4 * INTERVAL, interval=0.05)
    sweeps = db.sweeps()
    after = [utc(s.started_at) - resumed for s in sweeps[count:]]
    catch_up = [t for t in after if t < INTERVAL / 2 - 0.3]
    assert len(catch_up) == 1, f"one catch-up sweep right after SIGCONT, got starts at {after}"
    assert len(after) <= 2, f"then one per interval, got starts at {after}"
    for earlier, later in zip(sweeps, sweeps[1:]):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at, "sweeps overlap"


def test_sigterm_finishes_or_hands_back_the_post_in_flight(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    fake_slack.set_delay("chat.postMessage", 2, when="after")
    try:
        ids = root_logins(standin, account, 3)
        serve = launch.start(env)
        wait_for(lambda: fake_slack.in_flight("chat.postMessage"), timeout=20)
        asked = time.monotonic()
        assert serve.stop(signal.SIGTERM) == 0
        took = time.monotonic() - asked
    finally:
        fake_slack.set_delay("chat.postMessage", None)
        fake_slack.release_delays()
    assert took < 6, f"shutdown took {took:.1f}s: the rest of the batch should be handed back"
    states = db.states(ids)
    assert "posting" not in states.values(), f"in-flight work is finished or handed back: {states}"
    assert list(states.values()).count("posted") == len(alerts(fake_slack, channel)) >= 1
    _restart_and_check(launch, fake_slack, db, env, channel, ids)


# --- health ------------------------------------------------------------------------------------


def test_unhealthy_when_no_sweep_can_run(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """No AWS credentials at all: nothing finishes, so after 3 intervals /healthz answers 503."""
    no_credentials = {k: v for k, v in standin.env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    serve = launch.start(launch.env(sqlite_db, channel, [], aws_env=no_credentials, ROOTCHECK_SWEEP_INTERVAL="1s"))
    started = time.monotonic()
    assert serve.health()[0] == 200, "healthy while the first intervals run"
    status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(serve.health()), timeout=10)
    assert time.monotonic() - started >= 2.5
    assert body["status"] == "unhealthy" and body["store"] == "ok" and body["last_sweep_finished_at"] is None
    assert body["sweep_error"] == {"error": "aws_credentials", "fix": body["sweep_error"]["fix"]}
    assert "credentials" in body["sweep_error"]["fix"]
    db = db_reader(sqlite_db)
    assert [s for s in db.sweeps() if s.finished_at is None] == [], "a sweep that could not start is not recorded"


def test_unhealthy_when_the_store_is_gone(launch, fake_slack, standin, channel, new_postgres_database, db_reader):
    from tests.store.conftest import drop_database

    [account] = new_accounts(standin)
    url = new_postgres_database()
    db = db_reader(url)
    serve = launch.start(launch.env(url, channel, [account]))
    db.wait_sweeps(1)
    assert serve.health()[0] == 200
    db.close()
    drop_database(url)
    status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(serve.health()), timeout=10)
    assert body["status"] == "unhealthy" and body["store"].startswith("error")


def test_unhealthy_when_the_sqlite_file_is_corrupt(launch, fake_slack, standin, channel, sqlite_db, tmp_path):
    [account] = new_accounts(standin)
    serve = launch.start(launch.env(sqlite_db, channel, [account]))
    wait_for(lambda: serve.health()[1].get("last_sweep_finished_at"), timeout=20)
    for path in tmp_path.glob("rootcheck.db*"):
        if not path.name.endswith(".lock"):
            path.write_bytes(b"this is not a database " * 512)
    status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(serve.health()), timeout=10)
    assert body["status"] == "unhealthy" and body["store"].startswith("error")


# --- coverage gaps, reminders, digests ---------------------------------------------------------


def test_a_blind_account_raises_one_coverage_gap_then_resolves_it(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    [account] = new_accounts(standin, deny_assume_role=True)
    db = db_reader(sqlite_db)
    serve = launch.start(launch.env(sqlite_db, channel, [account], ROOTCHECK_SWEEP_INTERVAL="1s"))

    def gaps() -> list[dict]:
        return [
            m
            for m in fake_slack.messages(channel)
            if ((m.get("metadata") or {}).get("event_payload") or {}).get("kind") == "coverage_gap"
        ]

    wait_for(lambda: gaps(), timeout=20)
    assert db.finished_sweeps() >= 3
    assert len(gaps()) == 1
    db.wait_sweeps(2)
    [gap] = gaps()
    assert gap["metadata"]["event_payload"]["account_id"] == account
    assert "AccessDenied" in json.dumps(gap["blocks"])
    status, body = serve.health()
    assert status == 200 and body["failing_accounts"] == 1, "a sweep with a failing account still finished"

    standin.add_account(account, deny_assume_role=False)
    wait_for(lambda: "Resolved" in json.dumps(fake_slack.message(channel, gap["ts"])["blocks"]), timeout=20)
    updated = fake_slack.message(channel, gap["ts"])
    assert updated["update_count"] >= 1
    assert len(gaps()) == 1, "still one message: updated in place"

    # AWS so slow that no sweep finishes for 3 intervals: unhealthy; healthy again once one finishes
    standin.latency = 2.5
    try:
        status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(serve.health()), timeout=20)
        assert body["status"] == "unhealthy" and body["store"] == "ok" and body["last_sweep_finished_at"]
    finally:
        standin.latency = 0.0
    wait_for(lambda: serve.health()[0] == 200, timeout=20)


def _reminders(fake_slack, channel: str, finding_id: str) -> list[str]:
    ts = alert(fake_slack, channel, finding_id)["ts"]
    return [r["text"] for r in fake_slack.replies(channel, ts) if ":alarm_clock:" in r["text"]]


def test_reminders_mention_the_admins_until_acknowledged(launch, fake_slack, standin, channel, sqlite_db):
    fake_slack.add_usergroup("S0ROOTADM", ["U0ADMIN"])
    watched, planned = new_accounts(standin, 2)
    remind_after = 6.0  # longer than posting four alerts at 1/s and clicking one
    serve = launch.start(
        launch.env(
            sqlite_db,
            channel,
            [watched, planned],
            ROOTCHECK_ADMINS="U0ADMIN,S0ROOTADM",
            ROOTCHECK_REMIND_AFTER=f"{remind_after:g}s",
        )
    )
    response_url = fake_slack.new_response_url()
    serve.command(f"expect {planned} 1h break-glass drill", user="U0ADMIN", response_url=response_url, channel=channel)
    fake_slack.wait_for_responses(response_url, timeout=10)

    acked, open_, *_ = root_logins(standin, watched, 2)  # critical: no MFA
    failed = root_logins(standin, watched, 1, success=False)[0]  # medium
    expected = root_logins(standin, planned, 1)[0]  # critical, but announced: low
    ids = [acked, open_, failed, expected]
    ack_ts = wait_for(lambda: (alert(fake_slack, channel, acked) or {}).get("ts"), timeout=20)
    serve.click(acked, ack_ts, user="U0ADMIN", channel=channel)
    wait_for(
        lambda: "Acknowledged by <@U0ADMIN>" in json.dumps(fake_slack.message(channel, ack_ts)["blocks"]), timeout=10
    )

    def reminders(finding_id: str) -> list[str]:
        return _reminders(fake_slack, channel, finding_id)

    wait_posted_once(fake_slack, channel, ids)
    [text] = wait_for(lambda: reminders(open_), timeout=20)
    reminded = time.time()
    assert "<@U0ADMIN>" in text and "<!subteam^S0ROOTADM>" in text and "<!here>" not in text
    assert (alert(fake_slack, channel, open_).get("metadata") or {}).get("event_type") == "rootcheck_finding"
    thread = fake_slack.replies(channel, alert(fake_slack, channel, open_)["ts"])
    assert all((r.get("metadata") or {}).get("event_type") != "rootcheck_finding" for r in thread), (
        "thread replies are not alerts"
    )
    wait_for(lambda: time.time() >= reminded + 2, timeout=10)  # the others were due as early: give them time
    assert reminders(acked) == [] and reminders(failed) == [] and reminders(expected) == []
    assert "expected" in alert(fake_slack, channel, expected)["text"].lower()


def test_reminders_without_admins_mention_here(launch, fake_slack, standin, channel, sqlite_db):
    [account] = new_accounts(standin)
    ids = root_logins(standin, account, 1)
    launch.start(launch.env(sqlite_db, channel, [account], ROOTCHECK_REMIND_AFTER="2s"))
    wait_posted_once(fake_slack, channel, ids)
    [text] = wait_for(lambda: _reminders(fake_slack, channel, ids[0]), timeout=15)
    assert "<!here>" in text and "<@" not in text


def test_many_hygiene_findings_go_out_as_one_digest_acknowledged_at_once(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    accounts = new_accounts(standin, 6)
    for account in accounts:
        standin.add_account(
            account,
            report_state="complete",
            report_csv=root_report_csv(account, key1_active=True, key1_last_rotated="2025-03-04T05:06:07+00:00"),
        )
    db = db_reader(sqlite_db)
    serve = launch.start(launch.env(sqlite_db, channel, accounts))

    def digests() -> list[dict]:
        return [
            m for m in fake_slack.messages(channel) if (m.get("metadata") or {}).get("event_type") == "rootcheck_digest"
        ]

    [digest] = wait_for(digests, timeout=20)
    db.wait_sweeps(1)
    assert len(digests()) == 1 and alerts(fake_slack, channel) == {}, "one digest, no single alerts"
    payload = digest["metadata"]["event_payload"]
    members = payload["finding_ids"]
    assert len(members) == 6 and payload["kind"] == "root_access_key_active"
    stored = db.rows("SELECT finding_id FROM alert_findings WHERE alert_id = :d", d=payload["digest_id"])
    assert sorted(r.finding_id for r in stored) == sorted(members) and db.held() == []
    [button] = [
        e
        for b in digest["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == "rootcheck_ack"
    ]
    serve.click(button["value"], digest["ts"], user="U0ADMIN", channel=channel)
    wait_for(
        lambda: "Acknowledged by <@U0ADMIN>" in json.dumps(fake_slack.message(channel, digest["ts"])["blocks"]),
        timeout=10,
    )
    [acked] = db.rows("SELECT acked_by FROM alerts WHERE id = :d", d=button["value"])
    assert acked.acked_by == "U0ADMIN" and button["value"] == payload["digest_id"]
    assert len(fake_slack.replies(channel, digest["ts"])) == 1, "one audit reply"


# --- high availability on PostgreSQL -----------------------------------------------------------


def test_two_replicas_share_one_database_and_fail_over(
    launch, fake_slack, standin, channel, new_postgres_database, db_reader
):
    accounts = new_accounts(standin, 2)
    url = new_postgres_database()
    db = db_reader(url)
    env = launch.env(url, channel, accounts)
    replicas = [launch.start(env, wait=False), launch.start(env, wait=False)]  # together, on an empty database
    for replica in replicas:
        replica.wait_listening()
    ids = root_logins(standin, accounts[0], 2)
    wait_posted_once(fake_slack, channel, ids)
    db.wait_sweeps(2)

    roles = {r.process.pid: r.health()[1]["scheduler"] for r in replicas}
    assert sorted(roles.values()) == ["leader", "standby"]
    leader = next(r for r in replicas if roles[r.process.pid] == "leader")
    standby = next(r for r in replicas if r is not leader)
    assert {holder_pid(s.holder) for s in db.sweeps()} == {leader.process.pid}, "only the leader sweeps"
    for replica in replicas:
        status, body = replica.health()
        assert status == 200 and body["status"] == "ok"
        response_url = fake_slack.new_response_url()
        assert replica.command("status", user="U0ADMIN", response_url=response_url, channel=channel)[0] == 200
        [answer] = fake_slack.wait_for_responses(response_url, timeout=10)
        assert "rootcheck status" in answer["text"]

    # events keep arriving while the leader dies
    stop = threading.Event()
    arrived: list[str] = []

    def arrive() -> None:
        while not stop.is_set():
            arrived.extend(root_logins(standin, accounts[1], 1))
            stop.wait(0.7)

    feeder = threading.Thread(target=arrive)
    feeder.start()
    try:
        wait_for(lambda: len(arrived) >= 2, timeout=10)
        leader.kill()
        killed = time.time()
        wait_for(lambda: any(holder_pid(s.holder) == standby.process.pid for s in db.sweeps()), timeout=15)
        takeover = min(utc(s.started_at) for s in db.sweeps() if holder_pid(s.holder) == standby.process.pid)
        assert takeover - killed <= INTERVAL + 0.5 + 1.0, f"took over after {takeover - killed:.1f}s"
        wait_for(lambda: standby.health()[1]["scheduler"] == "leader", timeout=5)
        wait_for(lambda: len(arrived) >= 8, timeout=20)
    finally:
        stop.set()
        feeder.join()
    wait_posted_once(fake_slack, channel, ids + arrived, timeout=30)
    db.wait_sweeps(2)
    assert alerts(fake_slack, channel) == {i: 1 for i in ids + arrived}

    sweeps = db.sweeps()
    assert {holder_pid(s.holder) for s in sweeps} == {leader.process.pid, standby.process.pid}
    for earlier, later in zip(sweeps, sweeps[1:]):
        if earlier.finished_at is None:  # the sweep the kill interrupted
            assert holder_pid(earlier.holder) == leader.process.pid and utc(later.started_at) >= killed
        else:
            assert earlier.finished_at <= later.started_at, "two sweeps overlapped"
        if holder_pid(later.holder) == leader.process.pid:
            assert utc(later.started_at) < killed


# --- SIGTERM while the scheduler is busy -------------------------------------------------------


def _stops_cleanly(serve, within: float = 15.0) -> None:
    """SIGTERM → exit 0, well before the harness would give up and kill it."""
    asked = time.monotonic()
    code = serve.stop(signal.SIGTERM, timeout=60)
    took = time.monotonic() - asked
    assert code == 0 and took < within, f"exit {code} after {took:.1f}s"


def test_sigterm_during_a_sweep_stops_cleanly(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """The sweep job ends by waking delivery: under APScheduler's shutdown(wait=True) that deadlocked."""
    accounts = new_accounts(standin, 3)
    db = db_reader(sqlite_db)
    standin.latency = 1.0
    try:
        serve = launch.start(launch.env(sqlite_db, channel, accounts))
        wait_for(lambda: db.sweeps() and db.sweeps()[-1].finished_at is None, timeout=20, interval=0.05)
        _stops_cleanly(serve)
    finally:
        standin.latency = 0.0


def test_sigterm_during_a_sweep_longer_than_the_stop_timeout_exits(
    launch, fake_slack, standin, channel, sqlite_db, db_reader
):
    """A sweep that pages through a busy account for a minute (1 LookupEvents/s) is given up at SIGTERM:
    its paced lookups wait on the collector's timer, whose pool the interpreter's exit closes, so waiting
    for the job at exit never ended (the process had said "stopped" and lived on)."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    start = datetime.now(UTC) - timedelta(hours=1)
    standin.add_events(
        account,
        "us-east-1",
        [
            root_call_record(account, start + timedelta(seconds=n), key="AKIAFLOODKEY0001", console=False)
            for n in range(3000)
        ],
    )  # 60 pages of 50: a minute of paced lookups
    serve = launch.start(launch.env(sqlite_db, channel, [account]))
    wait_for(
        lambda: (
            db.sweeps()
            and db.sweeps()[-1].finished_at is None
            and standin.stats.count("cloudtrail", "LookupEvents", account) >= 3
        ),
        timeout=20,
        interval=0.05,
    )
    _stops_cleanly(serve)
    assert db.sweeps()[-1].finished_at is None, "the sweep was given up, not finished"


def test_sigterm_during_a_takeover_stops_cleanly(launch, fake_slack, standin, channel, sqlite_db, db_reader):
    """Taking the scheduler reconciles (reading Slack's history), then starts the sweep at once."""
    [account] = new_accounts(standin)
    db = db_reader(sqlite_db)
    env = launch.env(sqlite_db, channel, [account])
    fake_slack.set_delay("chat.postMessage", 30, when="before")
    try:
        root_logins(standin, account)
        crashed = launch.start(env)
        wait_for(lambda: fake_slack.in_flight("chat.postMessage"), timeout=20)
        crashed.kill()  # leaves a claim for the next leader to reconcile
    finally:
        fake_slack.set_error("chat.postMessage", "fatal_error")
        fake_slack.release_delays()
        fake_slack.set_delay("chat.postMessage", None)
    fake_slack.set_delay("conversations.history", 3)
    try:
        serve = launch.start(env)
        wait_for(lambda: fake_slack.in_flight("conversations.history"), timeout=20)
        _stops_cleanly(serve)
    finally:
        fake_slack.set_error("chat.postMessage", None)
        fake_slack.set_delay("conversations.history", None)
        fake_slack.release_delays()


def _drop_leader_lock(url: str) -> None:
    """Cut the leader's PostgreSQL session that holds the scheduler lock (the replica lives on)."""
    from sqlalchemy import create_engine
    from sqlalchemy import text as sql

    from bot.store.leader import LOCK_KEY

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": LOCK_KEY},
            )
    finally:
        engine.dispose()


def test_a_leader_that_loses_its_lock_mid_post_is_not_posted_over(
    launch, fake_slack, standin, channel, new_postgres_database, db_reader
):
    """The old reconcile took every `posting` row for crash debris: the new leader posted again while
    the old one, alive, was still waiting for Slack's answer."""
    [account] = new_accounts(standin)
    url = new_postgres_database()
    db = db_reader(url)
    env = launch.env(url, channel, [account])
    replicas = [launch.start(env), launch.start(env)]
    wait_for(lambda: sorted(r.health()[1]["scheduler"] for r in replicas) == ["leader", "standby"], timeout=15)
    leader = next(r for r in replicas if r.health()[1]["scheduler"] == "leader")
    standby = next(r for r in replicas if r is not leader)
    fake_slack.set_delay("chat.postMessage", 8, when="before")  # the request is on its way for 8 s
    try:
        [finding] = root_logins(standin, account)
        wait_for(lambda: fake_slack.in_flight("chat.postMessage"), timeout=20)
        assert db.states([finding]) == {finding: "posting"}
        _drop_leader_lock(url)
        wait_for(lambda: standby.health()[1]["scheduler"] == "leader", timeout=15)
        db.wait_sweeps(1)  # the new leader reconciled and swept; the old claim is not stale yet
    finally:
        fake_slack.set_delay("chat.postMessage", None)
        fake_slack.release_delays()
    wait_for(lambda: db.states([finding]) == {finding: "posted"}, timeout=20)
    assert alerts(fake_slack, channel) == {finding: 1}
    assert stays_posted_once(fake_slack, channel, finding)
    assert leader.process.poll() is None


def stays_posted_once(fake_slack, channel: str, finding: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if alerts(fake_slack, channel).get(finding, 0) != 1:
            return False
        time.sleep(0.1)
    return True
