"""The alert and digest messages, rendered from real findings (PURE: no Slack, no store).

What the contract fixes: the alert's contents, its metadata and buttons, every state (open,
acknowledged, expected, resolved), digests, mrkdwn escaping of everything that came from AWS or a
user, and Block Kit's limits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from bot.checks.cloudtrail import check_record
from bot.checks.credential_report import check_root_row, parse_report, root_row
from bot.models import Finding
from bot.slack.blocks import render_alert, render_reply, render_summary
from bot.slack.ids import ACK_ACTION, DIGEST_EVENT, FINDING_EVENT, REMEDIATION_ACTION, REPLY_EVENT, SUMMARY_EVENT
from tests.fakes.aws_standin import root_login_record, root_report_csv
from tests.slack.records import digest_of, record_of

ACCOUNT = "210987654321"
NOW = datetime(2026, 8, 20, 12, 30, tzinfo=UTC)
EVENT_TIME = NOW - timedelta(minutes=7)
REMEDIATION = "https://docs.example.com/root-user-best-practices"
HOSTILE = "<!here> <!channel> <@U123> <http://x|y> & <!subteam^S1> >quote"


# ------------------------------------------------------------------------------------ findings


def _login(mfa: bool = False, success: bool = True, **changes) -> Finding:
    record = root_login_record(ACCOUNT, EVENT_TIME, mfa_used=mfa, success=success, event_id="ev-login-1")
    record.update(changes)
    return check_record(record)


def _activity(**changes) -> Finding:
    record = root_login_record(ACCOUNT, EVENT_TIME, event_id="ev-activity-1")
    record.update(
        {
            "eventName": "PutBucketVersioning",
            "eventSource": "s3.amazonaws.com",
            "eventType": "AwsApiCall",
            "responseElements": None,
            **changes,
        }
    )
    record.pop("additionalEventData")
    record["userIdentity"]["sessionContext"] = {"attributes": {"mfaAuthenticated": "true"}}
    return check_record(record)


def _hygiene(kind: str, account: str = ACCOUNT) -> Finding:
    report = root_report_csv(
        account,
        password_enabled=True,
        password_last_used=EVENT_TIME,
        mfa_active=False,
        key1_active=True,
        key1_last_rotated="2024-01-02T03:04:05+00:00",
    )
    found = {f.kind: f for f in check_root_row(root_row(parse_report(report)), since=None)}
    return found[kind]


def _gap() -> Finding:
    return Finding(
        id="gap-1",
        kind="coverage_gap",
        severity="high",
        account_id=ACCOUNT,
        source="rootcheck",
        detail="Not checked in 3 sweeps in a row. Last error: AccessDenied: sts:AssumeRole.",
    )


def _delivery(finding: Finding, **state):
    return record_of([finding], **state)


def named(name: str | None):
    return lambda account_id: name


ALL_KINDS = {
    "root_console_login": lambda: _login(),
    "root_console_login_failed": lambda: _login(success=False),
    "root_activity": lambda: _activity(),
    "root_password_used": lambda: _hygiene("root_password_used"),
    "root_access_key_active": lambda: _hygiene("root_access_key_active"),
    "root_mfa_disabled": lambda: _hygiene("root_mfa_disabled"),
    "coverage_gap": _gap,
}


# ------------------------------------------------------------------------------------ helpers


def _text_objects(node, types=("mrkdwn", "plain_text")) -> list[dict]:
    """Every Block Kit text object of the given types anywhere under `node`."""
    if isinstance(node, list):
        return [found for value in node for found in _text_objects(value, types)]
    if not isinstance(node, dict):
        return []
    here = [node] if node.get("type") in types and isinstance(node.get("text"), str) else []
    return here + [found for value in node.values() for found in _text_objects(value, types)]


def _texts(message) -> list[str]:
    """Every human-visible string: each text object's `text` in the blocks, and the fallback."""
    return [message.text] + [o["text"] for o in _text_objects(message.blocks)]


def _buttons(message) -> dict[str, dict]:
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert len(actions) == 1
    return {e["action_id"]: e for e in actions[0]["elements"]}


def _all_text(message) -> str:
    return "\n".join(_texts(message))


# The only `<…>` the bot itself writes: a date token and mentions of Slack users it was told about.
_OWN_TOKENS = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>&]*>|<@U0(?:ADMIN|PLANNER)>")


def assert_escaped(message) -> None:
    for text in _texts(message):
        for raw in ("<!here>", "<!channel>", "<@U123>", "<http://x|y>", "<!subteam^S1>"):
            assert raw not in text, f"unescaped {raw!r} in {text!r}"
        rest = _OWN_TOKENS.sub("", text)
        assert "<" not in rest and ">" not in rest, f"unescaped angle bracket in {text!r}"
        assert not re.search(r"&(?!amp;|lt;|gt;)", rest), f"unescaped & in {text!r}"


def assert_block_kit_limits(message) -> None:
    """Slack's documented limits, and slack_sdk's own validation of every block."""
    assert 0 < len(message.blocks) <= 50
    assert len(message.text) <= 4000
    for block in message.blocks:
        assert Block.parse(block).to_dict() == block  # to_dict() validates (raises SlackObjectFormationError)
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10 and all(len(e["text"]) <= 3000 for e in block["elements"])
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "actions":
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= 75 and len(button.get("value", "")) <= 2000
                assert len(button.get("url", "")) <= 3000 and len(button["action_id"]) <= 255


# ------------------------------------------------------------------------------------ alerts


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_alert_of_each_kind_shows_severity_first_account_and_time(kind):
    finding = ALL_KINDS[kind]()
    assert finding.kind == kind
    message = render_alert(_delivery(finding), named("prod-payments"), REMEDIATION, NOW)

    first = message.blocks[0]["text"]["text"]
    assert finding.severity.upper() in first and first.index(finding.severity.upper()) < 30
    assert message.text.startswith(finding.severity.upper())
    text = _all_text(message)
    assert ACCOUNT in text and "prod-payments" in text
    if finding.event_time:
        assert "2026-08-20 12:23 UTC" in text
    else:
        assert "credential report" in text or "time not recorded" in text or kind == "coverage_gap"
    assert finding.detail.split(" ")[0] in text
    assert_escaped(message)
    assert_block_kit_limits(message)


@pytest.mark.parametrize("kind", ["root_console_login", "root_console_login_failed", "root_activity"])
def test_cloudtrail_alert_shows_ip_user_agent_mfa_region_and_event_id(kind):
    finding = ALL_KINDS[kind]()
    text = _all_text(render_alert(_delivery(finding), named(None), REMEDIATION, NOW))
    assert "192.0.2.10" in text
    assert "Firefox/120.0" in text
    assert "us-east-1" in text
    assert finding.event_id in text
    assert "MFA" in text
    mfa_word = {True: "yes", False: "no", None: "unknown"}[finding.mfa_used]
    assert re.search(rf"MFA\*\n`us-east-1` · {mfa_word}", text)


def test_console_login_title_says_whether_mfa_was_used():
    assert "without MFA" in render_alert(_delivery(_login(mfa=False)), named(None), REMEDIATION, NOW).text
    with_mfa = render_alert(_delivery(_login(mfa=True)), named(None), REMEDIATION, NOW)
    assert "with MFA" in with_mfa.text and "HIGH" in with_mfa.blocks[0]["text"]["text"]


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_alert_metadata_names_the_finding(kind):
    finding = ALL_KINDS[kind]()
    message = render_alert(_delivery(finding), named(None), REMEDIATION, NOW)
    assert message.metadata["event_type"] == FINDING_EVENT
    payload = message.metadata["event_payload"]
    assert payload["finding_id"] == finding.id
    assert payload["account_id"] == ACCOUNT
    assert payload["kind"] == kind
    assert payload["severity"] == finding.severity


def test_open_alert_has_remediation_link_and_ack_button_carrying_the_finding_id():
    finding = _login()
    buttons = _buttons(render_alert(_delivery(finding), named(None), REMEDIATION, NOW))
    assert set(buttons) == {REMEDIATION_ACTION, ACK_ACTION}
    assert buttons[REMEDIATION_ACTION]["url"] == REMEDIATION
    assert buttons[ACK_ACTION]["value"] == finding.id
    assert "url" not in buttons[ACK_ACTION]


def test_acknowledged_alert_drops_the_button_and_names_who_and_when():
    finding = _login()
    acked_at = datetime(2026, 8, 20, 12, 41, tzinfo=UTC)
    message = render_alert(_delivery(finding, acked_by="U0ADMIN", acked_at=acked_at), named("prod"), REMEDIATION, NOW)
    buttons = _buttons(message)
    assert set(buttons) == {REMEDIATION_ACTION}
    assert buttons[REMEDIATION_ACTION]["url"] == REMEDIATION
    text = _all_text(message)
    assert "<@U0ADMIN>" in text and "2026-08-20 12:41 UTC" in text
    assert message.metadata["event_payload"]["finding_id"] == finding.id  # still the same alert
    assert_escaped(message)


def test_expected_alert_is_low_and_says_who_announced_it_and_why():
    finding = _login()
    assert finding.severity == "critical"
    message = render_alert(
        _delivery(finding, expected_by="U0PLANNER", expected_reason="support plan change"),
        named(None),
        REMEDIATION,
        NOW,
    )
    assert "*LOW*" in message.blocks[0]["text"]["text"]
    assert message.metadata["event_payload"]["severity"] == "low"
    assert message.text.startswith("LOW") and "expected" in message.text
    text = _all_text(message)
    assert "Expected" in text and "<@U0PLANNER>" in text and "support plan change" in text
    assert ACK_ACTION in _buttons(message)


def test_resolved_alert_says_so():
    finding = _hygiene("root_access_key_active")
    resolved = datetime(2026, 8, 21, 8, 0, tzinfo=UTC)
    text = _all_text(render_alert(_delivery(finding, resolved_at=resolved), named(None), REMEDIATION, NOW))
    assert "Resolved" in text and "2026-08-21 08:00 UTC" in text


def test_resolved_coverage_gap_says_the_account_was_checked_again():
    gap = ALL_KINDS["coverage_gap"]()
    text = _all_text(render_alert(_delivery(gap, resolved_at=NOW), named(None), REMEDIATION, NOW))
    assert "the account was checked again" in text and "credential report" not in text


def test_thread_replies_carry_their_reply_id_and_no_alert_metadata():
    at = datetime(2026, 8, 20, 12, 41, tzinfo=UTC)
    ack = render_reply("ack:x", {"kind": "ack", "user": "U0ADMIN", "at": at.isoformat()}, [])
    assert ack.text == ":white_check_mark: Acknowledged by <@U0ADMIN> at 2026-08-20 12:41 UTC."
    assert ack.metadata == {"event_type": REPLY_EVENT, "event_payload": {"reply_id": "ack:x"}}
    reminder = render_reply("r", {"kind": "reminder", "count": 2, "severity": "critical"}, ["U0ADMIN", "S0ADMINS"])
    assert reminder.text.startswith(":alarm_clock: <@U0ADMIN> <!subteam^S0ADMINS>") and "reminder 2" in reminder.text
    assert "<!here>" in render_reply("r", {"kind": "reminder", "count": 1, "severity": "high"}, []).text


def test_a_new_address_callout_escapes_what_came_from_aws():
    message = render_reply(
        "n", {"kind": "new_ip", "ip": HOSTILE, "key": HOSTILE, "event_name": HOSTILE, "event_time": HOSTILE}, []
    )
    assert_escaped(message)
    assert all(b["text"]["verbatim"] for b in message.blocks)


# ------------------------------------------------------------------------------------ digests


def _digest(n: int = 7, names: str | None = "acct", **state):
    members = [_hygiene("root_mfa_disabled", f"21098765{i:04d}") for i in range(n)]
    labels = {m.account_id: (f"{names}-{i}" if names else None) for i, m in enumerate(members)}
    return digest_of(members, **state), members, labels.get


def render_digest(digest, members, names, url, now):
    return render_alert(digest, names, url, now, members)


def test_digest_carries_all_finding_ids_and_one_ack_for_the_digest():
    digest, members, names = _digest()
    message = render_digest(digest, members, names, REMEDIATION, NOW)
    assert message.metadata["event_type"] == DIGEST_EVENT
    payload = message.metadata["event_payload"]
    assert payload["finding_ids"] == [m.id for m in members]
    buttons = _buttons(message)
    assert buttons[ACK_ACTION]["value"] == "digest-123"
    assert buttons[REMEDIATION_ACTION]["url"] == REMEDIATION
    text = _all_text(message)
    assert "7 accounts" in text and "CRITICAL" in text
    assert all(m.account_id in text for m in members)
    assert_block_kit_limits(message)


def test_acknowledged_digest_drops_the_button():
    digest, members, names = _digest(acked_by="U0ADMIN", acked_at=NOW)
    message = render_digest(digest, members, names, REMEDIATION, NOW)
    assert set(_buttons(message)) == {REMEDIATION_ACTION}
    assert "<@U0ADMIN>" in _all_text(message)


def test_large_digest_stays_within_limits_and_counts_the_rest():
    digest, members, names = _digest(n=120, names=("&<!here>" * 40))
    message = render_digest(digest, members, names, REMEDIATION, NOW)
    assert_block_kit_limits(message)
    assert_escaped(message)
    shown = sum(1 for m in members if m.account_id in _all_text(message))
    assert shown < 120 and f"…and {120 - shown} more" in _all_text(message)


# ------------------------------------------------------------------------------------ escaping


def _hostile_login(pad: int = 0) -> Finding:
    return _login(
        userAgent="A" * pad + HOSTILE, sourceIPAddress="B" * pad + HOSTILE, awsRegion=HOSTILE, eventID="ev-" + HOSTILE
    )


@pytest.mark.parametrize("pad", [0, 110, 115, 117, 118, 119, 1490, 4990])
def test_aws_strings_are_escaped_everywhere_in_every_state(pad):
    finding = _hostile_login(pad)
    name = "N" * pad + HOSTILE
    for state in (
        {},
        {"acked_by": "U0ADMIN", "acked_at": NOW},
        {"expected_by": "U0PLANNER", "expected_reason": "R" * pad + HOSTILE},
        {"resolved_at": NOW},
    ):
        message = render_alert(_delivery(finding, **state), named(name), REMEDIATION, NOW)
        assert_escaped(message)
        assert_block_kit_limits(message)
    assert "&lt;!here&gt;" in _all_text(render_alert(_delivery(_hostile_login()), named(name), REMEDIATION, NOW))


def test_root_activity_detail_from_event_source_and_name_is_escaped():
    finding = _activity(eventSource=HOSTILE, eventName="Create" + HOSTILE, errorMessage=HOSTILE)
    message = render_alert(_delivery(finding), named(HOSTILE), REMEDIATION, NOW)
    assert "&lt;!channel&gt;" in _all_text(message)
    assert_escaped(message)


def test_coverage_gap_error_text_is_escaped():
    finding = Finding(
        id="gap-2",
        kind="coverage_gap",
        severity="high",
        account_id=ACCOUNT,
        source="rootcheck",
        detail="Last error: AccessDenied: " + HOSTILE * 200,
    )
    message = render_alert(_delivery(finding), named(HOSTILE), REMEDIATION, NOW)
    assert_escaped(message)
    assert_block_kit_limits(message)


def test_digest_names_and_details_are_escaped():
    digest, members, _ = _digest(n=8)
    message = render_digest(digest, members, named(HOSTILE), REMEDIATION, NOW)
    assert "&lt;@U123&gt;" in _all_text(message)
    assert_escaped(message)


def test_5000_character_values_still_render():
    huge = "Mozilla/5.0 " + "x" * 5000
    finding = _login(userAgent=huge, sourceIPAddress="203.0.113.9" + "9" * 5000)
    message = render_alert(
        _delivery(finding, expected_by="U0PLANNER", expected_reason="r" * 5000), named("n" * 5000), REMEDIATION, NOW
    )
    assert_block_kit_limits(message)
    assert "Mozilla/5.0 xxx" in _all_text(message)


# ------------------------------------------------------------------------------------ grouped alerts


def _calls(n: int, names=lambda i: "ListBuckets", **changes) -> list[Finding]:
    found = []
    for i in range(n):
        record = root_login_record(ACCOUNT, EVENT_TIME + timedelta(seconds=10 + i), event_id=f"ev-call-{i}")
        record.pop("additionalEventData")
        record.pop("responseElements")
        record.update(
            {
                "eventName": names(i),
                "eventSource": "s3.amazonaws.com",
                "readOnly": i % 2 == 0,
                "sessionCredentialFromConsole": "true",
                **changes,
            }
        )
        record["userIdentity"]["accessKeyId"] = "ASIASESSIONKEY"
        found.append(check_record(record))
    return found


def _failure(i: int, ips: int) -> Finding:
    record = root_login_record(
        ACCOUNT, EVENT_TIME - timedelta(minutes=30) + timedelta(seconds=20 * i), success=False, event_id=f"ev-fail-{i}"
    )
    record["sourceIPAddress"] = f"203.0.113.{i % ips}"
    return check_record(record)


def test_a_session_alert_tells_the_story_with_its_count_in_the_metadata():
    login = _login()
    calls = _calls(6, names=lambda i: ["ListBuckets", "GetObject", "StopLogging"][i % 3])
    failures = [_failure(i, 3) for i in range(12)]
    record = record_of(failures + [login] + calls, opener=login)
    message = render_alert(record, named("prod"), REMEDIATION, NOW)
    text = _all_text(message)
    assert record.alert.summary.count == 7 and message.metadata["event_payload"]["count"] == 7
    assert "7 findings" in message.blocks[0]["text"]["text"] and "CRITICAL" in message.blocks[0]["text"]["text"]
    assert "6 call(s): 3 read-only, 3 write(s)" in text
    assert "ListBuckets ×2" in text and "StopLogging ×2" in text and "After 12 failed sign-in(s)" in text
    assert "High-risk calls" in text and "StopLogging at" in text
    assert_escaped(message)
    assert_block_kit_limits(message)


def test_a_failure_alert_shows_its_count_addresses_and_the_threshold():
    record = record_of([_failure(i, 8) for i in range(12)])
    message = render_alert(record, named(None), REMEDIATION, NOW)
    text = _all_text(message)
    assert record.severity == "high" and "12 failed root sign-ins: possible password guessing" in text
    assert "203.0.113.0, 203.0.113.1, 203.0.113.2, 203.0.113.3, 203.0.113.4 +3 more" in text
    quiet = render_alert(record_of([_failure(i, 2) for i in range(3)]), named(None), REMEDIATION, NOW)
    assert "MEDIUM" in quiet.text and "under the threshold of 10" in _all_text(quiet)


def test_hundreds_of_event_names_never_break_block_kit_limits():
    calls = _calls(400, names=lambda i: f"Describe{i}<!channel>&Things")
    message = render_alert(record_of([_login()] + calls, opener=_login()), named(HOSTILE * 20), REMEDIATION, NOW)
    assert_block_kit_limits(message)
    assert_escaped(message)
    assert "+395 more event name(s)" in _all_text(message)
    absurd = _calls(300, names=lambda i: f"E{i}" + "<&>" * 3000)  # whatever a forged record holds
    message = render_alert(record_of([_login()] + absurd, opener=_login()), named(None), REMEDIATION, NOW)
    assert_block_kit_limits(message)
    assert_escaped(message)


def test_every_mrkdwn_text_object_is_verbatim():
    messages = [
        render_alert(record_of([_login()] + _calls(3), opener=_login()), named(HOSTILE), REMEDIATION, NOW),
        render_summary(record_of([_login()] + _calls(3), opener=_login()), NOW),
        render_reply("x", {"kind": "raised", "severity": "critical", "count": 3}, []),
    ]
    digest, members, names = _digest()
    messages.append(render_digest(digest, members, names, REMEDIATION, NOW))
    for message in messages:
        objects = _text_objects(message.blocks, types=("mrkdwn",))
        assert objects and all(o.get("verbatim") is True for o in objects), message.blocks


def test_the_thread_summary_carries_its_alert_id_and_stays_within_limits():
    record = record_of([_login()] + _calls(300, names=lambda i: f"Call{i}" + "<&>" * 300), opener=_login())
    message = render_summary(record, NOW)
    assert message.metadata == {"event_type": SUMMARY_EVENT, "event_payload": {"alert_id": record.id, "count": 301}}
    assert_block_kit_limits(message)
    assert_escaped(message)


@pytest.mark.parametrize("limit", [1, 2, 5, 10, 100, 1500])
def test_escaping_cuts_whole_entities_and_respects_the_limit(limit):
    from bot.slack.escape import mrkdwn

    text = mrkdwn("<&>" * 2000, limit)
    assert len(text) <= limit
    assert text.rstrip("…").replace("&lt;", "").replace("&amp;", "").replace("&gt;", "") == ""
