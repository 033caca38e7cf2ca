"""Who may do what, and who sees which accounts: the real `rootcheck serve` with ROOTCHECK_ADMINS unset.

Channels: ROOTCHECK_CHANNEL (C0ALERTS: ADMIN, MEMBER), one alert channel per account whose members
are set per test, and a public channel anyone may create and type in (ELSEWHERE: OUTSIDER, TEAM).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.harness import wait_for
from tests.slack.support import ADMIN, MEMBER, OUTSIDER, served, stays

TEAM = "U0TEAMAPP"  # a member of one account's alert channel only
ELSEWHERE = "C0ELSEWHERE"


@pytest.fixture(scope="module")
def bot(fake_slack, standin, tmp_path_factory):
    fake_slack.add_channel(ELSEWHERE, members=[OUTSIDER, TEAM])

    def seed(running):
        running.seed("team", members=(TEAM,))
        running.seed("other", members=(ADMIN,))
        running.standin.add_account(
            running.pool.setdefault("denied", running.add_account(members=(ADMIN,)))[0], deny=["cloudtrail:*"]
        )

    with served(fake_slack, standin, tmp_path_factory.mktemp("access"), before_start=seed) as running:
        running.seeded_alert("team")
        running.seeded_alert("other")
        yield running


def answer(bot, text: str, user: str, channel: str) -> str:
    _, _, _, url = bot.command(text, user, channel=channel)
    return bot.answers(url)[-1]["text"]


def expectations(bot) -> list:
    store = bot.store()
    try:
        return store.state.open_expectations(__import__("bot.timeutil").timeutil.utcnow())
    finally:
        store.engine.dispose()


def test_expect_typed_in_any_public_channel_by_an_outsider_is_refused(bot):
    """The old rule trusted the channel the command was typed in: anyone could mute an account."""
    account, _ = bot.pool["team"]
    text = answer(bot, f"expect {account} 7d nothing to see here", OUTSIDER, ELSEWHERE)
    assert "not allowed" in text
    assert all(e.account_id != account for e in expectations(bot))
    assert "not allowed to scan all accounts" in answer(bot, "scan", OUTSIDER, ELSEWHERE)


def test_members_of_an_accounts_channel_act_on_that_account_from_anywhere_but_not_on_all(bot):
    account, channel = bot.pool["team"]
    other, _ = bot.pool["other"]
    assert "Scan finished" in bot.scan_now(account, user=TEAM)  # typed in a channel of no importance
    assert "not allowed" in answer(bot, f"scan {other}", TEAM, ELSEWHERE)
    assert "not allowed to scan all accounts" in answer(bot, "scan", TEAM, channel)


def test_an_expect_window_is_announced_listed_and_can_be_cancelled(bot):
    account, channel = bot.add_account(members=(TEAM,))
    bot.scan_now()  # the bot learns of a new account at its next sweep
    noted = answer(bot, f"expect {account} 2h break-glass <http://evil|fix> & <!channel>", TEAM, ELSEWHERE)
    assert "Noted" in noted and "&lt;!channel&gt;" in noted
    announcement = wait_for(
        lambda: [m for m in bot.fake.messages(channel) if "announced planned root use" in m["text"]]
    )
    text = announcement[0]["text"]
    assert f"<@{TEAM}>" in text and account in text and "&lt;http://evil|fix&gt;" in text and "<!channel>" not in text
    assert announcement[0]["blocks"][0]["text"]["verbatim"] is True
    status = answer(bot, "status", TEAM, ELSEWHERE)
    assert f"Root use expected in `{account}`" in status and "break-glass" in status
    assert "not allowed" in answer(bot, f"expect cancel {account}", OUTSIDER, ELSEWHERE)
    assert "Closed 1 announced window" in answer(bot, f"expect cancel {account}", TEAM, ELSEWHERE)
    wait_for(lambda: [m for m in bot.fake.messages(channel) if "closed the announced window" in m["text"]])
    bot.root_login(account)
    bot.scan_now(account, user=TEAM)
    alert = bot.wait_alerts(channel, 1)[0]
    assert alert["metadata"]["event_payload"]["severity"] == "critical", "a cancelled window lowers nothing"


def test_status_open_and_accounts_show_each_user_only_their_accounts(bot):
    team, _ = bot.pool["team"]
    other, _ = bot.pool["other"]
    denied, _ = bot.pool["denied"]
    for verb in ("status", "open", "accounts"):
        mine = answer(bot, verb, TEAM, ELSEWHERE)
        everything = answer(bot, verb, MEMBER, ELSEWHERE)  # a member of ROOTCHECK_CHANNEL sees all
        assert other not in mine and denied not in mine, (verb, mine)
        if verb != "status":
            assert team in mine and team in everything and other in everything
        assert "may not see" in answer(bot, verb, OUTSIDER, ELSEWHERE)
    assert denied in answer(bot, "status", MEMBER, ELSEWHERE), "the failing account is named to those who may see it"


def test_healthz_and_metrics_name_no_account_channel_arn_or_aws_message(bot):
    bot.scan_now()  # the denied account fails: its error is in the store and the logs
    bot.fake.set_bot_membership(bot.pool["team"][1], False)
    try:
        account, _ = bot.pool["team"]
        bot.root_login(account)
        bot.scan_now()
        wait_for(lambda: bot.serve.health()[1]["slack"]["error"] == "slack_not_in_channel", timeout=20)
    finally:
        bot.fake.set_bot_membership(bot.pool["team"][1], True)
    status, body = bot.serve.get("/healthz")
    _, metrics = bot.serve.get("/metrics")
    public = body.decode() + metrics.decode()
    accounts = [a for a, _ in bot.pool.values()]
    channels = [c for _, c in bot.pool.values()]
    for secret in accounts + channels + ["arn:aws", "not authorized", "AccessDenied: "]:
        assert secret not in public, secret
    health = json.loads(body)
    assert health["slack"] == {
        "error": "slack_not_in_channel",
        "fix": "invite the bot to the alert channel (/invite @rootcheck)",
    }
    assert health["failing_accounts"] >= 1
    assert re.search(r'rootcheck_aws_errors_total\{code="[A-Za-z]+"\}', metrics.decode())


def test_an_answer_never_auto_links_what_came_from_aws_or_a_user(bot):
    bot.add_account(members=(TEAM,), alias="see https://evil.example and #general")
    bot.scan_now()
    _, _, _, url = bot.command("accounts", TEAM, channel=ELSEWHERE)
    [response] = bot.answers(url)
    assert response["blocks"] and all(b["text"]["verbatim"] for b in response["blocks"])
    assert stays(lambda: len(bot.fake.responses(url)) == 1, seconds=0.2)


def test_a_user_who_is_not_in_the_channel_of_an_alert_cannot_acknowledge_it(bot):
    _, channel, alert = bot.seeded_alert("other")
    bot.click(alert, channel, TEAM, response_url=bot.fake.new_response_url())
    assert stays(lambda: bot.message(channel, alert["ts"])["update_count"] == 0, seconds=1)
