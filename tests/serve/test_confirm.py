""" "Was this you?" with the real `rootcheck serve`: owners from the accounts file (users, a group, an
email), direct messages through the fake Slack, Yes with a reason (a modal), No, silence, a restart
while waiting, an outsider's click, two owners answering differently, an email nobody has.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from datetime import UTC, datetime

import pytest
import yaml

from tests.harness import sign, wait_for
from tests.records import root_call_record, root_login_record
from tests.serve.conftest import new_accounts
from tests.slack.support import stays

OWNER, SECOND, OUTSIDER = "U0OWNERONE", "U0OWNERTWO", "U0NOTOWNER"
CAROL = "U0CAROL"


@pytest.fixture
def owners(fake_slack):
    fake_slack.add_user(OWNER)
    fake_slack.add_user(SECOND)
    fake_slack.add_user(OUTSIDER)
    fake_slack.add_user(CAROL, email="carol@example.com")
    fake_slack.add_usergroup("S0OWNERS", [SECOND])


def start(launch, standin, channel, tmp_path, owners_list, **env):
    [account] = new_accounts(standin)
    accounts_file = tmp_path / f"accounts-{uuid.uuid4().hex[:6]}.yml"
    accounts_file.write_text(yaml.safe_dump([{"id": account, "channel": channel, "owners": owners_list}]))
    db = f"sqlite:///{tmp_path / 'confirm.db'}"
    full = launch.env(db, channel, [], ROOTCHECK_ACCOUNTS_FILE=str(accounts_file), **env)
    return account, full, launch.start(full)


def signin(standin, account: str) -> dict:
    now = datetime.now(UTC)
    record = root_login_record(account, now, source_ip="198.51.100.9")
    standin.add_events(account, "us-east-1", [record, root_call_record(account, now, source_ip="198.51.100.9")])
    return record


def channel_alert(fake_slack, channel: str) -> dict:
    return wait_for(
        lambda: next(
            (
                m
                for m in fake_slack.messages(channel)
                if (m.get("metadata") or {}).get("event_type") == "rootcheck_finding"
            ),
            None,
        ),
        timeout=20,
    )


def question(fake_slack, user: str, alert: dict) -> dict:
    """The direct message asking `user` about `alert` (the fake Slack lives for the whole session)."""

    def find():
        dm = fake_slack.dm_channel(user)
        return (
            next(
                (
                    m
                    for m in fake_slack.messages(dm)
                    if ((m.get("metadata") or {}).get("event_payload") or {}).get("alert_id") == payload_id(alert)
                ),
                None,
            )
            if dm
            else None
        )

    return wait_for(find, timeout=20)


def click(serve, fake_slack, user: str, message: dict, action_id: str, dm: str) -> tuple[int, str]:
    """A signed block_actions from a direct message; returns (status, response_url)."""
    url = fake_slack.new_response_url()
    value = next(
        e["value"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T0TEST"},
        "channel": {"id": dm},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": dm},
        "message": {"ts": message["ts"]},
        "trigger_id": fake_slack.new_trigger_id(user),
        "response_url": url,
        "actions": [{"action_id": action_id, "value": value, "type": "button", "block_id": "b"}],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return serve.post(body, sign(body))[0], url


def submit(serve, user: str, view: dict, reason: str) -> tuple[int, dict]:
    """The modal's view_submission, with the reason typed."""
    submitted = dict(view, state={"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}})
    payload = {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0TEST"}, "view": submitted}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    status, answer, _ = serve.post(body, sign(body))
    return status, json.loads(answer) if answer else {}


def opened_view(fake_slack, user: str) -> dict:
    return wait_for(
        lambda: next((v["view"] for v in reversed(fake_slack.views()) if v["user"] == user), None), timeout=5
    )


def context(message: dict) -> str:
    return json.dumps([b for b in message["blocks"] if b["type"] == "context"])


def test_owners_are_asked_and_yes_with_a_reason_confirms_it_in_place(
    launch, fake_slack, standin, channel, tmp_path, owners
):
    account, _, serve = start(launch, standin, channel, tmp_path, [OWNER, "S0OWNERS", "carol@example.com"])
    signin(standin, account)
    alert = channel_alert(fake_slack, channel)
    asked = {user: question(fake_slack, user, alert) for user in (OWNER, SECOND, CAROL)}
    text = json.dumps(asked[OWNER]["blocks"])
    assert "Was this you?" in text and account in text and "198.51.100.9" in text and "without MFA" in text
    assert "slack.com/archives" in text, "a link to the channel alert"
    wait_for(lambda: "Asked" in context(fake_slack.message(channel, alert["ts"])), timeout=20)
    assert all(f"<@{u}>" in context(fake_slack.message(channel, alert["ts"])) for u in (OWNER, SECOND, CAROL))

    status, _ = click(serve, fake_slack, OWNER, asked[OWNER], "rootcheck_confirm_yes", fake_slack.dm_channel(OWNER))
    assert status == 200
    view = opened_view(fake_slack, OWNER)
    assert view["private_metadata"] == payload_id(alert)
    status, answer = submit(serve, OWNER, view, "   ")
    assert status == 200 and answer["response_action"] == "errors" and "reason" in answer["errors"]
    status, answer = submit(serve, OWNER, view, "closing the account <!channel> <https://evil|ok>")
    assert status == 200 and not answer
    updated = wait_for(
        lambda: (lambda m: m if "Confirmed as planned" in context(m) else None)(
            fake_slack.message(channel, alert["ts"])
        ),
        timeout=10,
    )
    shown = context(updated)
    assert f"<@{OWNER}>" in shown and "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "Acknowledged by" in shown and not [
        b
        for b in updated["blocks"]
        if b["type"] == "actions" and any(e["action_id"] == "rootcheck_ack" for e in b["elements"])
    ]
    reply = wait_for(
        lambda: [r for r in fake_slack.replies(channel, alert["ts"]) if "Confirmed as planned" in r["text"]]
    )
    assert "&lt;https://evil|ok&gt;" in reply[0]["text"]
    thanked = wait_for(
        lambda: (lambda m: m if "Thanks, recorded" in json.dumps(m["blocks"]) else None)(
            fake_slack.message(fake_slack.dm_channel(OWNER), asked[OWNER]["ts"])
        ),
        timeout=10,
    )
    assert thanked
    late, url = click(serve, fake_slack, SECOND, asked[SECOND], "rootcheck_confirm_no", fake_slack.dm_channel(SECOND))
    assert late == 200 and f"<@{OWNER}> already answered" in fake_slack.wait_for_responses(url)[0]["text"]
    assert stays(lambda: "does not recognise" not in context(fake_slack.message(channel, alert["ts"])), seconds=1)


def payload_id(alert: dict) -> str:
    return alert["metadata"]["event_payload"]["finding_id"]


def test_no_makes_it_critical_and_calls_the_admins_at_once(launch, fake_slack, standin, channel, tmp_path, owners):
    account, _, serve = start(launch, standin, channel, tmp_path, [OWNER])
    signin(standin, account)
    alert = channel_alert(fake_slack, channel)
    asked = question(fake_slack, OWNER, alert)
    status, _ = click(serve, fake_slack, OWNER, asked, "rootcheck_confirm_no", fake_slack.dm_channel(OWNER))
    assert status == 200
    updated = wait_for(
        lambda: (lambda m: m if "does not recognise it" in context(m) else None)(
            fake_slack.message(channel, alert["ts"])
        ),
        timeout=10,
    )
    assert updated["metadata"]["event_payload"]["severity"] == "critical"
    call = wait_for(lambda: [r for r in fake_slack.replies(channel, alert["ts"]) if "<!here>" in r["text"]])
    assert f"<@{OWNER}> does not recognise" in call[0]["text"]
    wait_for(
        lambda: (
            "security was called" in json.dumps(fake_slack.message(fake_slack.dm_channel(OWNER), asked["ts"])["blocks"])
        ),
        timeout=10,
    )
    assert stays(
        lambda: len([r for r in fake_slack.replies(channel, alert["ts"]) if "<!here>" in r["text"]]) == 1, seconds=1
    )


def test_silence_calls_the_admins_once_even_across_a_restart(launch, fake_slack, standin, channel, tmp_path, owners):
    account, env, serve = start(
        launch, standin, channel, tmp_path, [OWNER, SECOND], ROOTCHECK_CONFIRM_TIMEOUT="6s", ROOTCHECK_ADMINS="U0ADMIN"
    )
    signin(standin, account)
    alert = channel_alert(fake_slack, channel)
    first = question(fake_slack, OWNER, alert)
    serve.kill()  # a restart while the owners think it over
    serve = launch.start(env)
    calls = wait_for(
        lambda: [r for r in fake_slack.replies(channel, alert["ts"]) if "did not answer" in r["text"]], timeout=20
    )
    assert "<@U0ADMIN>" in calls[0]["text"] and f"<@{OWNER}>" in calls[0]["text"] and f"<@{SECOND}>" in calls[0]["text"]
    dms = [
        m
        for m in fake_slack.messages(fake_slack.dm_channel(OWNER))
        if ((m.get("metadata") or {}).get("event_payload") or {}).get("alert_id") == payload_id(alert)
    ]
    assert [m["ts"] for m in dms] == [first["ts"]], "asked once, not again after the restart"
    assert stays(
        lambda: len([r for r in fake_slack.replies(channel, alert["ts"]) if "did not answer" in r["text"]]) == 1,
        seconds=3,
    )
    status, _ = click(
        serve,
        fake_slack,
        SECOND,
        question(fake_slack, SECOND, alert),
        "rootcheck_confirm_no",
        fake_slack.dm_channel(SECOND),
    )  # a late answer still counts and is shown
    wait_for(lambda: "does not recognise it" in context(fake_slack.message(channel, alert["ts"])), timeout=10)
    assert not [
        r
        for r in fake_slack.replies(channel, alert["ts"])
        if "U0ADMIN" in r["text"] and "does not recognise" in r["text"]
    ], "the admins are called at most once"


def test_an_outsider_cannot_answer_and_nothing_changes(launch, fake_slack, standin, channel, tmp_path, owners):
    account, _, serve = start(launch, standin, channel, tmp_path, [OWNER])
    signin(standin, account)
    alert = channel_alert(fake_slack, channel)
    asked = question(fake_slack, OWNER, alert)
    for action in ("rootcheck_confirm_yes", "rootcheck_confirm_no"):
        status, url = click(serve, fake_slack, OUTSIDER, asked, action, fake_slack.dm_channel(OWNER))
        assert status == 200
        [refusal] = fake_slack.wait_for_responses(url)
        assert "Only the owners" in refusal["text"] and refusal["response_type"] == "ephemeral"
    assert not [v for v in fake_slack.views() if v["user"] == OUTSIDER]
    before = fake_slack.message(channel, alert["ts"])
    assert stays(lambda: "does not recognise" not in context(fake_slack.message(channel, alert["ts"])), seconds=1)
    assert before["metadata"]["event_payload"]["severity"] == "critical"


def test_an_email_nobody_has_is_shown_not_dropped_and_the_others_are_asked(
    launch, fake_slack, standin, channel, tmp_path, owners
):
    account, _, serve = start(launch, standin, channel, tmp_path, [OWNER, "nobody@example.com"])
    signin(standin, account)
    question(fake_slack, OWNER, channel_alert(fake_slack, channel))
    url = fake_slack.new_response_url()
    serve.command("accounts", user="U0ADMIN", response_url=url, channel=channel)
    text = fake_slack.wait_for_responses(url)[0]["text"]
    assert f"<@{OWNER}>" in text and "nobody@example.com" in text and "resolves to nobody" in text


def test_when_no_owner_can_be_reached_the_admins_are_called_at_once(
    launch, fake_slack, standin, channel, tmp_path, owners
):
    fake_slack.set_dm_error(OWNER, "user_disabled")
    try:
        account, _, serve = start(launch, standin, channel, tmp_path, [OWNER])
        signin(standin, account)
        alert = channel_alert(fake_slack, channel)
        call = wait_for(
            lambda: [r for r in fake_slack.replies(channel, alert["ts"]) if "could reach" in r["text"]], timeout=20
        )
        assert "<!here>" in call[0]["text"]
    finally:
        fake_slack.set_dm_error(OWNER, None)


def test_owners_from_the_organizations_tag_are_asked_with_those_of_the_file(
    launch, fake_slack, channel, tmp_path, owners
):
    """The leader reads the owner tag (space-separated) into the store; the file's owners are added."""
    from tests.conftest import new_account_id
    from tests.fakes.aws_standin import AwsStandIn

    with AwsStandIn() as aws:
        account = new_account_id()
        aws.add_account(account, name="prod-payments", tags={"rootcheck-owners": "S0OWNERS"}, report_state="complete")
        accounts_file = tmp_path / "org-accounts.yml"
        accounts_file.write_text(yaml.safe_dump([{"id": account, "channel": channel, "owners": [OWNER]}]))
        env = launch.env(
            f"sqlite:///{tmp_path / 'org.db'}",
            channel,
            [],
            aws_env=aws.env(),
            ROOTCHECK_ORG_DISCOVERY="true",
            ROOTCHECK_ACCOUNTS_FILE=str(accounts_file),
        )
        launch.start(env)
        signin(aws, account)
        alert = channel_alert(fake_slack, channel)
        assert "prod-payments" in alert["text"], "the name from Organizations"
        for user in (OWNER, SECOND):  # the file's owner, and the tag's group member
            question(fake_slack, user, alert)
        assert aws.stats.count("organizations", "ListTagsForResource") >= 1
