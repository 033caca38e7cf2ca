"""bot.slack.notifier with a real slack_sdk WebClient against the fake Slack: retries of temporary
errors, permanent errors named with their fix, and one message per second per channel.
"""

from __future__ import annotations

import time
import uuid
from itertools import pairwise

import pytest

from bot.slack.blocks import Message
from bot.slack.notifier import Notifier, SlackError, make_client
from tests.fakes.slack_api import FakeSlack


@pytest.fixture(scope="module")
def fake():
    with FakeSlack() as server:
        yield server


@pytest.fixture
def channel(fake) -> str:
    name = "C" + uuid.uuid4().hex[:10].upper()
    fake.add_channel(name, members=["U0ADMIN"])
    return name


@pytest.fixture
def notifier(fake) -> Notifier:
    return Notifier(make_client(fake.bot_token, fake.api_url))


MESSAGE = Message(
    text="CRITICAL: Root console sign-in",
    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*CRITICAL*"}}],
    metadata={"event_type": "rootcheck_finding", "event_payload": {"finding_id": "f1"}},
)


def _posts(fake, channel: str) -> list[dict]:
    return [c for c in fake.call_log("chat.postMessage") if c["params"].get("channel") == channel]


def test_429_with_retry_after_is_retried_after_waiting(fake, notifier, channel):
    fake.fail_next(1, status=429, retry_after=1, method="chat.postMessage")
    started = time.monotonic()
    posted_channel, ts = notifier.post(channel, MESSAGE)
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert posted_channel == channel and fake.message(channel, ts)["metadata"]["event_payload"]["finding_id"] == "f1"
    assert [c["status"] for c in _posts(fake, channel)] == [429, 200]
    assert len(fake.messages(channel)) == 1


def test_server_error_is_retried(fake, notifier, channel):
    fake.fail_next(1, status=500, method="chat.postMessage")
    _, ts = notifier.post(channel, MESSAGE)
    assert [c["status"] for c in _posts(fake, channel)] == [500, 200]
    assert [m["ts"] for m in fake.messages(channel)] == [ts]


def test_dropped_connection_is_retried(fake, notifier, channel):
    fake.fail_next(1, status=0, method="chat.update")
    _, ts = notifier.post(channel, MESSAGE)
    notifier.update(channel, ts, Message(text="updated", blocks=[]))
    assert fake.message(channel, ts)["text"] == "updated"


def test_errors_that_outlast_the_retries_are_temporary(fake, channel):
    notifier = Notifier(make_client(fake.bot_token, fake.api_url, retries=1))
    fake.fail_next(2, status=503, method="chat.postMessage")
    with pytest.raises(SlackError) as caught:
        notifier.post(channel, MESSAGE)
    assert caught.value.permanent is False and "retrying" in caught.value.fix
    assert not fake.messages(channel)


def test_not_in_channel_is_permanent_and_says_invite(fake, notifier):
    fake.add_channel("C0NOTJOINED", members=["U0ADMIN"], bot_is_member=False)
    before = len(fake.call_log("chat.postMessage"))
    with pytest.raises(SlackError) as caught:
        notifier.post("C0NOTJOINED", MESSAGE)
    assert caught.value.code == "not_in_channel" and caught.value.permanent
    assert "/invite" in caught.value.fix and "/invite" in str(caught.value)
    assert len(fake.call_log("chat.postMessage")) == before + 1  # not retried blindly


@pytest.mark.parametrize("code", ["channel_not_found", "is_archived"])
def test_channel_problems_are_permanent(fake, notifier, code):
    if code == "is_archived":
        fake.add_channel("C0ARCHIVED", members=["U0ADMIN"], is_archived=True)
    with pytest.raises(SlackError) as caught:
        notifier.post("C0ARCHIVED" if code == "is_archived" else "C0NOSUCHCHANNEL", MESSAGE)
    assert caught.value.code == code and caught.value.permanent and "ROOTCHECK_CHANNEL" in caught.value.fix


def test_invalid_auth_and_revoked_tokens_are_permanent(fake, channel):
    with pytest.raises(SlackError) as caught:
        Notifier(make_client("xoxb-wrong-token", fake.api_url)).post(channel, MESSAGE)
    assert caught.value.code == "invalid_auth" and caught.value.permanent and "SLACK_BOT_TOKEN" in caught.value.fix
    fake.set_token_revoked(True)
    try:
        with pytest.raises(SlackError) as caught:
            Notifier(make_client(fake.bot_token, fake.api_url)).post(channel, MESSAGE, thread_ts="1.2")
    finally:
        fake.set_token_revoked(False)
    assert caught.value.code == "token_revoked" and caught.value.permanent


def test_posts_to_one_channel_are_paced_one_per_second(fake, notifier, channel):
    started = time.monotonic()
    notifier.post(channel, MESSAGE)
    first_done = time.monotonic()
    notifier.post(channel, MESSAGE, thread_ts=fake.messages(channel)[0]["ts"])  # replies share the budget
    notifier.post(channel, MESSAGE)
    elapsed = time.monotonic() - started
    assert elapsed >= 2.0 - 0.01
    times = [c["time"] for c in _posts(fake, channel)]
    assert len(times) == 3 and all(b - a >= 0.95 for a, b in pairwise(times))
    assert first_done - started < 0.5  # the first post did not wait


def test_different_channels_are_not_paced_against_each_other(fake, notifier):
    channels = []
    for _ in range(4):
        name = "C" + uuid.uuid4().hex[:10].upper()
        fake.add_channel(name, members=["U0ADMIN"])
        channels.append(name)
    started = time.monotonic()
    for name in channels:
        notifier.post(name, MESSAGE)
    assert time.monotonic() - started < 0.8


def test_find_posted_reads_metadata_from_history(fake, notifier, channel):
    _, ts = notifier.post(channel, MESSAGE)
    fake.add_message(channel, "a human talking", user="U0ADMIN")
    assert notifier.find_posted(channel, {"f1", "other"}, oldest=0) == {"f1": ts}


def test_find_posted_in_a_thread_skips_its_parent(fake, notifier, channel):
    """conversations.replies returns the parent first, and a session's alert shares its id with its
    summary reply: the parent was taken for the summary (found in the soak, bench/soak.py)."""
    _, parent = notifier.post(channel, MESSAGE)
    assert notifier.find_posted(channel, {"f1"}, oldest=0, thread_ts=parent) == {}
    summary = Message(
        text="Activity so far",
        blocks=None,
        metadata={"event_type": "rootcheck_summary", "event_payload": {"alert_id": "f1"}},
    )
    _, ts = notifier.post(channel, summary, thread_ts=parent)
    assert notifier.find_posted(channel, {"f1"}, oldest=0, thread_ts=parent) == {"f1": ts}
