"""The Slack surface of the real `rootcheck serve` process in HTTP mode.

One serve process per module (channel members may acknowledge, ROOTCHECK_ADMINS unset), pointed at
the session's fake Slack and AWS stand-in; every test uses fresh accounts and channels. A second
process (ROOTCHECK_ADMINS = a user group, its own AWS stand-in whose latency can hold a scan) covers
group admins and concurrent scans.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from bot.timeutil import utcnow
from tests.fakes.aws_standin import AwsStandIn
from tests.fakes.slack_api import FakeSlack
from tests.harness import CHANNEL, sign, wait_for
from tests.slack.support import ADMIN, MEMBER, OUTSIDER, served, stays

ACK_DEADLINE = 3.0  # Slack's: the HTTP answer must come back within 3 s
HOSTILE_ALIAS = "<!channel> prod & <@U123>"


def _seed(running):
    """Every alert the module needs, seeded before start: the first sweep posts them all at once."""
    _, pair_channel = running.seed("pair-1", alias=HOSTILE_ALIAS)
    running.seed("pair-2", channel=pair_channel)
    for name in ("ack", "outsider", "remediation", "forged", "shared"):
        running.seed(name, alias=HOSTILE_ALIAS if name == "shared" else None)


@pytest.fixture(scope="module")
def bot(fake_slack, standin, tmp_path_factory):
    with served(fake_slack, standin, tmp_path_factory.mktemp("serve-http"), before_start=_seed) as running:
        yield running


@pytest.fixture(scope="module")
def alert(bot):
    """One open alert that tests only read: (channel, message)."""
    _, channel, message = bot.seeded_alert("shared")
    return channel, message


# ------------------------------------------------------------------------------------ alerts


def test_each_finding_is_posted_once_with_blocks_metadata_and_fallback(bot):
    first, channel = bot.pool["pair-1"]
    second, _ = bot.pool["pair-2"]
    bot.wait_alerts(channel, 2)
    bot.scan_now()  # another sweep sees the same events again
    assert stays(lambda: len(bot.fake.messages(channel)) == 2, seconds=0.5)  # delivery was woken: nothing new
    alerts = bot.alerts(channel)
    assert len(alerts) == 2
    payloads = [a["metadata"]["event_payload"] for a in alerts]
    assert sorted(p["account_id"] for p in payloads) == sorted([first, second])
    assert len({p["finding_id"] for p in payloads}) == 2
    for message in alerts:
        assert message["text"].startswith("CRITICAL: Root console sign-in without MFA")
        assert message["blocks"]
        buttons = {e["action_id"]: e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]}
        assert buttons["rootcheck_ack"]["value"] == message["metadata"]["event_payload"]["finding_id"]
        assert "url" in buttons["rootcheck_remediation"]
    # the sign-in is posted as soon as it is read; the alias, read a moment later, is edited in
    named = next(a for a in alerts if a["metadata"]["event_payload"]["account_id"] == first)
    escaped = "&lt;!channel&gt; prod &amp; &lt;@U123&gt;"
    named = wait_for(
        lambda: (lambda m: m if escaped in json.dumps(m["blocks"]) else None)(bot.message(channel, named["ts"]))
    )
    dump = json.dumps(named["blocks"]) + named["text"] + json.dumps(named.get("history", []))
    assert escaped in dump and "<!channel>" not in dump
    assert [m["ts"] for m in bot.fake.messages(channel)] == sorted(a["ts"] for a in alerts), "edited, not reposted"


def test_admin_click_acknowledges_in_place_once(bot):
    _, channel, alert = bot.seeded_alert("ack")
    finding_id = alert["metadata"]["event_payload"]["finding_id"]
    acks_before = bot.metric("rootcheck_acks_total")
    timed_before = bot.metric("rootcheck_time_to_acknowledge_seconds_count")

    status, _, seconds = bot.click(alert, channel, ADMIN)
    assert status == 200 and seconds < ACK_DEADLINE
    updated = wait_for(lambda: (lambda m: m if m["update_count"] == 1 else None)(bot.message(channel, alert["ts"])))
    assert [m["ts"] for m in bot.fake.messages(channel)] == [alert["ts"]]  # the same message, not a new one
    assert updated["metadata"]["event_payload"]["finding_id"] == finding_id
    buttons = [e["action_id"] for b in updated["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["rootcheck_remediation"]
    assert f"<@{ADMIN}>" in json.dumps(updated["blocks"])
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", json.dumps(updated["blocks"]))
    replies = wait_for(lambda: bot.fake.replies(channel, alert["ts"]))
    assert len(replies) == 1 and f"<@{ADMIN}>" in replies[0]["text"]
    assert replies[0]["metadata"]["event_type"] == "rootcheck_reply"  # a thread reply is not an alert
    wait_for(lambda: bot.metric("rootcheck_acks_total") == acks_before + 1)
    assert bot.metric("rootcheck_time_to_acknowledge_seconds_count") == timed_before + 1  # posted → ack

    stored = bot.store()
    try:
        delivery = stored.alerts.get(finding_id)
        assert delivery.acked_by == ADMIN and delivery.acked_at is not None
        assert abs(delivery.acked_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)) < timedelta(minutes=1)
        assert any(e["action"] == "ack" and e["target"] == finding_id for e in stored.state.audit_log())
    finally:
        stored.engine.dispose()

    # a second click (another admin, or the same one again) changes nothing
    for user in (ADMIN, MEMBER):
        status, _, _ = bot.click(alert, channel, user)
        assert status == 200
    assert stays(
        lambda: (
            bot.message(channel, alert["ts"])["update_count"] == 1 and len(bot.fake.replies(channel, alert["ts"])) == 1
        ),
        seconds=1.0,
    )
    assert bot.metric("rootcheck_acks_total") == acks_before + 1


def test_outsider_click_is_refused_ephemerally_and_changes_nothing(bot):
    _, channel, alert = bot.seeded_alert("outsider")
    bot.fake.add_user(OUTSIDER)
    answer_url = bot.fake.new_response_url()
    status, _, seconds = bot.click(alert, channel, OUTSIDER, response_url=answer_url)
    assert status == 200 and seconds < ACK_DEADLINE
    # Slack's chat.postEphemeral cannot reach a non-member; the click's response_url can
    refusal = bot.answers(answer_url)[0]
    assert refusal["response_type"] == "ephemeral" and refusal.get("replace_original") is False
    assert "not allowed" in refusal["text"]
    assert stays(
        lambda: bot.message(channel, alert["ts"])["update_count"] == 0 and not bot.fake.replies(channel, alert["ts"]),
        seconds=0.3,
    )
    stored = bot.store()
    try:
        assert stored.alerts.get(alert["metadata"]["event_payload"]["finding_id"]).acked_at is None
    finally:
        stored.engine.dispose()


def test_remediation_click_is_acknowledged_and_changes_nothing(bot):
    _, channel, message = bot.seeded_alert("remediation")
    before = bot.message(channel, message["ts"])
    status, body, seconds = bot.click(message, channel, ADMIN, action_id="rootcheck_remediation")
    assert status == 200 and seconds < ACK_DEADLINE
    assert stays(lambda: bot.message(channel, message["ts"]) == before and not bot.fake.replies(channel, message["ts"]))


def test_forged_and_stale_requests_are_rejected_and_change_nothing(bot):
    _, channel, message = bot.seeded_alert("forged")
    forged = bot.click(message, channel, ADMIN, headers=sign(b"another body", secret="not-the-secret"))
    status, _, _, url = bot.command("status", headers=sign(b"another body", secret="not-the-secret"))
    assert forged[0] == 401 and status == 401

    # a valid signature over a timestamp older than 5 minutes: a replayed request
    value = message["metadata"]["event_payload"]["finding_id"]
    payload = {
        "type": "block_actions",
        "user": {"id": ADMIN},
        "team": {"id": "T0TEST"},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
        "message": {"ts": message["ts"]},
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/x",
        "actions": [{"action_id": "rootcheck_ack", "value": value, "type": "button", "block_id": "b"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert bot.serve.post(body, sign(body, timestamp=str(int(time.time()) - 6 * 60)))[0] == 401
    assert stays(
        lambda: (
            bot.message(channel, message["ts"])["update_count"] == 0
            and not bot.fake.replies(channel, message["ts"])
            and not bot.fake.responses(url)
        )
    )

    # the very same body signed now is accepted: the timestamp alone made the difference
    assert bot.serve.post(body, sign(body, timestamp=str(int(time.time()) - 60)))[0] == 200
    wait_for(lambda: bot.message(channel, message["ts"])["update_count"] == 1)


# ------------------------------------------------------------------------------------ /rootcheck


def _ephemeral(bot, url: str, count: int = 1) -> list[str]:
    answers = bot.answers(url, count)
    assert all(a["response_type"] == "ephemeral" for a in answers), answers
    return [a["text"] for a in answers]


def test_help_answers_in_the_ack_ephemerally(bot):
    status, body, seconds, _ = bot.command("help")
    assert status == 200 and seconds < ACK_DEADLINE
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral"
    for verb in ("status", "open", "accounts", "scan", "expect", "help"):
        assert f"/rootcheck {verb}" in answer["text"]
    status, body, _, _ = bot.command("")  # a bare /rootcheck is help too
    assert "/rootcheck status" in json.loads(body)["text"]


@pytest.mark.parametrize(
    "verb,expected",
    [
        ("status", "rootcheck status"),
        ("open", "open alert"),
        ("accounts", "account(s) watched"),
    ],
)
def test_read_commands_answer_fast_and_ephemerally(bot, alert, verb, expected):
    status, body, seconds, url = bot.command(verb, user=MEMBER)
    assert status == 200 and seconds < ACK_DEADLINE
    (text,) = _ephemeral(bot, url)
    assert expected in text


def test_status_open_and_accounts_say_what_is_going_on(bot, alert):
    channel, message = alert
    account = message["metadata"]["event_payload"]["account_id"]
    _, _, _, url = bot.command("status")
    (status,) = _ephemeral(bot, url)
    assert "Last sweep: finished" in status and "Open alerts:" in status and "Scheduler: leader" in status
    _, _, _, url = bot.command("open")
    (opened,) = _ephemeral(bot, url)
    assert account in opened and "Root console sign-in without MFA" in opened and "1 finding(s)" in opened
    _, _, _, url = bot.command("accounts")
    (accounts,) = _ephemeral(bot, url)
    assert f"`{account}`" in accounts and "&lt;!channel&gt;" in accounts and "<!channel>" not in accounts


@pytest.mark.parametrize("text", ["frobnicate", "require_allowed", "_call__", "scan 12 34"])
def test_unknown_or_malformed_commands_get_a_short_error_and_help(bot, text):
    status, _, seconds, url = bot.command(text)
    assert status == 200 and seconds < ACK_DEADLINE
    (answer,) = _ephemeral(bot, url)
    assert answer.startswith(":warning:")
    if text != "scan 12 34":
        assert f"unknown command `{text.split()[0]}`" in answer and "/rootcheck status" in answer


def test_scan_by_an_admin_answers_started_then_a_summary(bot):
    account, _ = bot.add_account()
    status, _, seconds, url = bot.command(f"scan {account}")
    assert status == 200 and seconds < ACK_DEADLINE
    started, summary = _ephemeral(bot, url, 2)
    assert "Scan started" in started
    assert summary.startswith(":mag: Scan finished: 1 account(s)")


def test_scan_by_an_outsider_is_refused(bot):
    status, _, seconds, url = bot.command("scan", user=OUTSIDER)
    assert status == 200 and seconds < ACK_DEADLINE
    (answer,) = _ephemeral(bot, url)
    assert "not allowed to scan" in answer
    assert stays(lambda: len(bot.fake.responses(url)) == 1, seconds=0.3)


def test_expected_root_use_is_posted_low_with_who_and_why_and_no_reminder(bot):
    account, channel = bot.add_account()
    status, _, seconds, url = bot.command(f"expect {account} 1h break-glass & <!here> billing change")
    assert status == 200 and seconds < ACK_DEADLINE
    (noted,) = _ephemeral(bot, url)
    assert f"`{account}`" in noted and f"<@{ADMIN}>" in noted and "&lt;!here&gt;" in noted
    bot.root_login(account)  # now: within the second of the announcement, as CloudTrail records it
    other, other_channel = bot.add_account()
    bot.root_login(other)  # the same kind of login, not announced: critical and reminded
    bot.scan_now()

    alert = bot.wait_alerts(channel, 1)[0]
    payload = alert["metadata"]["event_payload"]
    assert payload["severity"] == "low" and payload["kind"] == "root_console_login"
    assert alert["text"].startswith("LOW") and "(expected)" in alert["text"]
    blocks = json.dumps(alert["blocks"])
    assert "Expected" in blocks and f"<@{ADMIN}>" in blocks and "break-glass &amp; &lt;!here&gt; billing" in blocks
    unexpected = bot.wait_alerts(other_channel, 1)[0]
    assert unexpected["metadata"]["event_payload"]["severity"] == "critical"

    stored = bot.store()
    try:
        due = {d.id for d in stored.messages.due_reminders(utcnow() + timedelta(days=1))}
    finally:
        stored.engine.dispose()
    assert unexpected["metadata"]["event_payload"]["finding_id"] in due
    assert payload["finding_id"] not in due


@pytest.mark.parametrize(
    "args,error",
    [
        ("", "usage: `/rootcheck expect ACCOUNT_ID DURATION REASON`"),
        ("123456789012 1h", "usage: `/rootcheck expect ACCOUNT_ID DURATION REASON`"),
        ("12345 1h planned change", "`12345` is not a 12-digit account id"),
        ("123456789012 soon planned change", "`soon` is not a duration"),
        ("123456789012 30d planned change", "at most 7d"),
        ("123456789012 0s planned change", "more than zero"),
    ],
)
def test_expect_with_bad_arguments_says_what_is_wrong(bot, args, error):
    status, _, seconds, url = bot.command(f"expect {args}".strip())
    assert status == 200 and seconds < ACK_DEADLINE
    (answer,) = _ephemeral(bot, url)
    assert answer.startswith(":warning:") and error in answer


def test_expect_by_an_outsider_is_refused(bot):
    account, _ = bot.add_account()
    _, _, _, url = bot.command(f"expect {account} 1h planned", user=OUTSIDER)
    (answer,) = _ephemeral(bot, url)
    assert "not allowed" in answer


# ------------------------------------------------------------------------------------ health


def test_healthz_and_metrics(bot, alert):
    status, body = bot.serve.get("/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok" and health["store"] == "ok" and health["last_sweep_finished_at"]
    status, body = bot.serve.get("/metrics")
    text = body.decode()
    assert status == 200
    series = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert series and all(name.startswith("rootcheck_") for name in series)
    for name in (
        "rootcheck_acks_total",
        "rootcheck_slack_posts_total",
        "rootcheck_ack_latency_seconds_count",
        "rootcheck_sweeps_total",
    ):
        assert name in series


# ------------------------------------------------------------------------------------ group admins

GROUP = "S0RCADMINS"
GROUP_ADMIN = "U0GRPADMIN"


@pytest.fixture(scope="module")
def group_bot(fake_slack, tmp_path_factory):
    """ROOTCHECK_ADMINS is a user group; its own AWS stand-in, whose latency can hold a scan."""
    fake_slack.add_usergroup(GROUP, [GROUP_ADMIN, ADMIN])
    with (
        AwsStandIn() as aws,
        served(
            fake_slack,
            aws,
            tmp_path_factory.mktemp("serve-group"),
            name="group",
            before_start=lambda running: running.seed("group", members=(ADMIN, MEMBER, GROUP_ADMIN)),
            ROOTCHECK_ADMINS=GROUP,
        ) as running,
    ):
        yield running


def test_group_admins_are_expanded_and_others_refused(group_bot):
    _, channel, alert = group_bot.seeded_alert("group")

    status, _, seconds = group_bot.click(alert, channel, MEMBER)  # in the channel, not in the group
    assert status == 200 and seconds < ACK_DEADLINE
    refusal = wait_for(lambda: [e for e in group_bot.fake.ephemerals(channel) if e["user"] == MEMBER])
    assert len(refusal) == 1 and "not allowed" in refusal[0]["text"]
    assert group_bot.message(channel, alert["ts"])["update_count"] == 0
    assert not group_bot.fake.replies(channel, alert["ts"])

    group_bot.click(alert, channel, GROUP_ADMIN)
    updated = wait_for(
        lambda: (lambda m: m if m["update_count"] == 1 else None)(group_bot.message(channel, alert["ts"]))
    )
    assert f"<@{GROUP_ADMIN}>" in json.dumps(updated["blocks"])
    assert any(c["params"].get("usergroup") == GROUP for c in group_bot.fake.call_log("usergroups.users.list"))

    _, _, _, url = group_bot.command("scan", user=MEMBER, channel=channel)
    (answer,) = group_bot.answers(url)
    assert "not allowed to scan" in answer["text"] and answer["response_type"] == "ephemeral"


def test_a_second_scan_is_told_who_started_the_running_one(group_bot):
    account, _ = group_bot.add_account(members=(ADMIN, MEMBER, GROUP_ADMIN))
    group_bot.standin.latency = 1.0  # every AWS call now takes a second: the scan runs for several
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(group_bot.command, f"scan {account}", GROUP_ADMIN)
            status, _, seconds, first_url = first.result()
            assert status == 200 and seconds < ACK_DEADLINE
            assert "Scan started" in group_bot.answers(first_url)[0]["text"]
            second = pool.submit(group_bot.command, "scan", ADMIN)
            status, _, seconds, second_url = second.result()
            assert status == 200 and seconds < ACK_DEADLINE
        (busy,) = group_bot.answers(second_url)
        assert busy["response_type"] == "ephemeral"
        assert f"already running, started by <@{GROUP_ADMIN}>" in busy["text"]
        assert re.search(r"at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", busy["text"])
        assert len(group_bot.fake.responses(first_url)) == 1  # the first scan is still running
    finally:
        group_bot.standin.latency = 0.0
    summary = group_bot.answers(first_url, 2, timeout=30)[1]
    assert summary["text"].startswith(":mag: Scan finished: 1 account(s)")
    # once its summary is out, a new scan starts at once (the lease is let go before the summary)
    url = group_bot.command(f"scan {account}", ADMIN)[3]
    assert "Scan started" in group_bot.answers(url)[0]["text"]
    group_bot.answers(url, 2)  # started, and finished


def test_the_same_users_second_scan_is_also_told(group_bot):
    account, _ = group_bot.add_account(members=(ADMIN, MEMBER, GROUP_ADMIN))
    group_bot.standin.latency = 1.0
    try:
        _, _, _, first_url = group_bot.command(f"scan {account}", GROUP_ADMIN)
        assert "Scan started" in group_bot.answers(first_url)[0]["text"]
        _, _, _, second_url = group_bot.command(f"scan {account}", GROUP_ADMIN)
        second = group_bot.answers(second_url)[0]["text"]
    finally:
        group_bot.standin.latency = 0.0
        group_bot.answers(first_url, 2, timeout=30)
    assert f"already running, started by <@{GROUP_ADMIN}>" in second


# ------------------------------------------------------------------------------------ slow Slack

SLOW_METHODS = (
    "auth.test",
    "chat.update",
    "chat.postMessage",
    "chat.postEphemeral",
    "conversations.members",
    "usergroups.users.list",
    "conversations.history",
)


def test_acks_never_wait_for_a_slow_slack(standin, tmp_path):
    """The first requests after start-up, with every Slack call taking 4 s: still acked at once."""
    with FakeSlack() as fake:
        fake.add_channel(CHANNEL, members=[ADMIN, MEMBER])
        with served(fake, standin, tmp_path, before_start=lambda running: running.seed("slow")) as running:
            _, channel, alert = running.seeded_alert("slow")
            for method in SLOW_METHODS:
                fake.set_delay(method, 4.0)
            try:
                status, _, seconds = running.click(alert, channel, ADMIN)
                assert status == 200 and seconds < 1.0
                for verb in ("status", "help", "scan"):
                    status, _, seconds, url = running.command(verb, MEMBER)
                    assert status == 200 and seconds < 1.0, verb
            finally:
                fake.release_delays()
            wait_for(lambda: running.message(channel, alert["ts"])["update_count"] == 1)
            assert "Scan finished" in running.answers(url, 2)[1]["text"]
