"""`rootcheck serve` in Socket Mode (SLACK_APP_TOKEN set, no signing secret): the fake Slack's
Socket Mode server delivers envelopes; /healthz and /metrics are still served over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from tests.fakes.slack_api import FakeSlack
from tests.harness import CHANNEL, wait_for
from tests.slack.support import ADMIN, MEMBER, served

ACK_DEADLINE = 3.0


@pytest.fixture(scope="module")
def socket_bot(standin, tmp_path_factory):
    with FakeSlack(app_token="xapp-1-A0TEST-1-secret") as fake:
        fake.add_channel(CHANNEL, members=[ADMIN, MEMBER])
        with served(
            fake,
            standin,
            tmp_path_factory.mktemp("socket"),
            name="socket",
            before_start=lambda running: running.seed("socket"),
            SLACK_APP_TOKEN="xapp-1-A0TEST-1-secret",
            SLACK_SIGNING_SECRET=None,
        ) as running:
            fake.wait_for_socket_connection(timeout=10)
            yield running


def _command(fake: FakeSlack, text: str) -> tuple[str, str, float]:
    """Deliver a /rootcheck envelope; returns (envelope id, response_url, seconds until the ack)."""
    url = fake.new_response_url()
    envelope = {
        "type": "slash_commands",
        "accepts_response_payload": True,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "token": "unused",
            "team_id": "T0TEST",
            "team_domain": "test",
            "channel_id": CHANNEL,
            "channel_name": "alerts",
            "user_id": ADMIN,
            "user_name": "admin",
            "command": "/rootcheck",
            "text": text,
            "api_app_id": "A0TEST",
            "response_url": url,
            "trigger_id": "1.2.3",
        },
    }
    started = time.monotonic()
    envelope_id = fake.socket_send(envelope)
    fake.wait_for_socket_ack(envelope_id, timeout=ACK_DEADLINE)
    return envelope_id, url, time.monotonic() - started


def test_help_over_socket_mode_is_acked_with_the_answer(socket_bot):
    fake = socket_bot.fake
    envelope_id, _, seconds = _command(fake, "help")
    assert seconds < ACK_DEADLINE
    ack = fake.wait_for_socket_ack(envelope_id)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "/rootcheck status" in ack["payload"]["text"] and "/rootcheck expect" in ack["payload"]["text"]


def test_status_over_socket_mode_answers_through_response_url(socket_bot):
    fake = socket_bot.fake
    envelope_id, url, seconds = _command(fake, "status")
    assert seconds < ACK_DEADLINE
    assert not fake.wait_for_socket_ack(envelope_id).get("payload")  # an empty ack; the answer follows
    (answer,) = fake.wait_for_responses(url, 1)
    assert answer["response_type"] == "ephemeral" and "rootcheck status" in answer["text"]


def test_acknowledge_over_socket_mode(socket_bot):
    _, channel, alert = socket_bot.seeded_alert("socket")
    fake = socket_bot.fake
    payload = {
        "type": "block_actions",
        "user": {"id": ADMIN},
        "team": {"id": "T0TEST"},
        "api_app_id": "A0TEST",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": alert["ts"], "channel_id": channel},
        "message": {"ts": alert["ts"]},
        "trigger_id": "1.2.3",
        "response_url": fake.new_response_url(),
        "actions": [
            {
                "action_id": "rootcheck_ack",
                "type": "button",
                "block_id": "b",
                "value": alert["metadata"]["event_payload"]["finding_id"],
            }
        ],
    }
    envelope_id = fake.socket_send({"type": "interactive", "accepts_response_payload": False, "payload": payload})
    fake.wait_for_socket_ack(envelope_id, timeout=ACK_DEADLINE)
    updated = wait_for(lambda: (lambda m: m if m["update_count"] == 1 else None)(fake.message(channel, alert["ts"])))
    assert f"<@{ADMIN}>" in json.dumps(updated["blocks"])
    assert len(wait_for(lambda: fake.replies(channel, alert["ts"]))) == 1


def test_health_and_metrics_are_still_served_over_http(socket_bot):
    status, body = socket_bot.serve.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = socket_bot.serve.get("/metrics")
    assert status == 200 and b"rootcheck_" in body
    # no signing secret, so no HTTP endpoint for Slack requests
    body = urllib.parse.urlencode({"command": "/rootcheck", "text": "help"}).encode()
    assert socket_bot.serve.post(body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 404
