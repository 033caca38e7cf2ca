"""Tests of the fake Slack API, driven by the REAL slack_sdk clients."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.models.metadata import Metadata
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import FakeSlack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake():
    with FakeSlack() as f:
        f.add_channel("C123", members=["U1", "U2"], bot_is_member=True)
        f.add_channel("COUT", members=["U1"], bot_is_member=False)
        yield f


@pytest.fixture
def client(fake):
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


def _error(excinfo) -> str:
    return excinfo.value.response["error"]


def _stop_socket_client(fake: FakeSlack, sm: SocketModeClient) -> None:
    # The builtin client blocks close() for up to its 3 s receive timeout; closing
    # the server side first (with reconnects off) makes it return at once.
    sm.auto_reconnect_enabled = False
    sm.default_auto_reconnect_enabled = False
    fake.socket_close_all()
    sm.close()


# ---------------------------------------------------------------------- auth


def test_auth_test_returns_identity_and_scopes_header(fake, client):
    fake.set_scopes(["chat:write", "commands"])
    r = client.auth_test()
    assert r["ok"] is True
    assert (r["user_id"], r["bot_id"], r["team_id"]) == ("U0BOT", "B0BOT", "T0TEST")
    assert r["team"] and r["user"] == "rootcheck" and r["url"].startswith("https://")
    # slack_bolt reads exactly this lower-case key from the header dict
    assert r.headers.get("x-oauth-scopes") == "chat:write,commands"


def test_invalid_revoked_and_wrong_type_tokens(fake):
    bad = WebClient(token="xoxb-nope", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as e:
        bad.auth_test()
    assert _error(e) == "invalid_auth"

    with pytest.raises(SlackApiError) as e:
        WebClient(base_url=fake.api_url).chat_postMessage(channel="C123", text="x")
    assert _error(e) == "not_authed"

    with pytest.raises(SlackApiError) as e:
        WebClient(token="xapp-1", base_url=fake.api_url).auth_test()
    assert _error(e) == "not_allowed_token_type"

    good = WebClient(token=fake.bot_token, base_url=fake.api_url)
    fake.set_token_revoked(True)
    with pytest.raises(SlackApiError) as e:
        good.auth_test()
    assert _error(e) == "token_revoked"
    with pytest.raises(SlackApiError) as e:
        good.chat_postMessage(channel="C123", text="x")
    assert _error(e) == "token_revoked"
    fake.set_token_revoked(False)
    assert good.auth_test()["ok"]
    assert fake.messages("C123") == []


def test_form_body_with_token_field_and_json_string_fields(fake):
    """Form-encoded body, token as a form field, blocks/metadata as JSON strings."""
    body = urlencode(
        {
            "token": fake.bot_token,
            "channel": "C123",
            "text": "form post",
            "blocks": json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]),
            "metadata": json.dumps({"event_type": "alert", "event_payload": {"id": "a1"}}),
        }
    ).encode()
    req = urllib.request.Request(
        fake.api_url + "chat.postMessage",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        out = json.loads(resp.read())
    assert out["ok"] is True and out["channel"] == "C123"
    [m] = fake.messages("C123")
    assert m["text"] == "form post"
    assert m["blocks"][0]["text"]["text"] == "*hi*"
    assert m["metadata"] == {"event_type": "alert", "event_payload": {"id": "a1"}}
    assert "token" not in fake.calls("chat.postMessage")[0]


# ---------------------------------------------------------------------- messages


def test_post_then_history_shows_it_with_metadata(fake, client):
    md = Metadata(event_type="rootcheck_alert", event_payload={"alert_id": "abc", "severity": "high"})
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "root login"}}]
    r = client.chat_postMessage(channel="C123", text="root login", blocks=blocks, metadata=md)
    assert r["ok"] and r["channel"] == "C123"
    assert r["message"]["text"] == "root login"
    ts = r["ts"]
    sec, frac = ts.split(".")
    assert sec.isdigit() and len(frac) == 6

    # slack_sdk sent chat.postMessage as JSON, with metadata as a nested object
    assert fake.calls("chat.postMessage")[0]["metadata"]["event_type"] == "rootcheck_alert"

    h = client.conversations_history(channel="C123", include_all_metadata=True)
    [msg] = h["messages"]
    assert msg["ts"] == ts and msg["text"] == "root login" and msg["bot_id"] == "B0BOT"
    assert msg["blocks"] == blocks
    assert msg["metadata"] == {
        "event_type": "rootcheck_alert",
        "event_payload": {"alert_id": "abc", "severity": "high"},
    }
    # without include_all_metadata, Slack leaves metadata out
    assert "metadata" not in client.conversations_history(channel="C123")["messages"][0]

    [stored] = fake.messages("C123")
    assert stored["ts"] == ts and stored["metadata"]["event_payload"]["alert_id"] == "abc"
    assert stored["update_count"] == 0 and stored["history"] == [] and stored["thread_ts"] is None


def test_post_validation_errors(fake, client):
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C123", text="x", metadata={"event_payload": {}})
    assert _error(e) == "invalid_metadata_format"
    with pytest.raises(SlackApiError) as e:
        client.api_call("chat.postMessage", json={"channel": "C123"})
    assert _error(e) == "no_text"
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C123", text="x", thread_ts="1.000001")
    assert _error(e) == "thread_not_found"
    assert fake.messages("C123") == []


def test_ts_is_monotonic_per_channel_and_deterministic_with_ts_start():
    with FakeSlack(ts_start=1700000000.0001) as f:
        f.add_channel("C1")
        f.add_channel("C2")
        c = WebClient(token=f.bot_token, base_url=f.api_url)
        a = c.chat_postMessage(channel="C1", text="a")["ts"]
        b = c.chat_postMessage(channel="C1", text="b")["ts"]
        x = c.chat_postMessage(channel="C2", text="x")["ts"]
        assert (a, b, x) == ("1700000000.000100", "1700000000.000200", "1700000000.000100")
    with FakeSlack() as f:
        f.add_channel("C1")
        c = WebClient(token=f.bot_token, base_url=f.api_url)
        tss = [c.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]
        assert [float(t) for t in tss] == sorted(float(t) for t in tss)
        assert len(set(tss)) == 5
        assert abs(float(tss[0]) - time.time()) < 60  # wall clock, so `oldest=now-X` queries work


def test_update_changes_message_and_keeps_edit_history(fake, client):
    ts = client.chat_postMessage(
        channel="C123", text="v1", metadata={"event_type": "alert", "event_payload": {"state": "open"}}
    )["ts"]
    r = client.chat_update(
        channel="C123",
        ts=ts,
        text="v2",
        blocks=[{"type": "section", "text": {"type": "plain_text", "text": "v2"}}],
        metadata={"event_type": "alert", "event_payload": {"state": "acked"}},
    )
    assert r["ok"] and r["ts"] == ts and r["text"] == "v2"

    hist = client.conversations_history(channel="C123", include_all_metadata=True)["messages"]
    assert len(hist) == 1
    assert hist[0]["text"] == "v2" and hist[0]["metadata"]["event_payload"] == {"state": "acked"}
    assert hist[0]["edited"]["user"] == "U0BOT"

    client.chat_update(channel="C123", ts=ts, text="v3")  # blocks/metadata not sent: kept
    [m] = fake.messages("C123")
    assert m["text"] == "v3" and m["update_count"] == 2
    assert m["blocks"][0]["text"]["text"] == "v2"
    assert m["metadata"]["event_payload"] == {"state": "acked"}
    assert [h["text"] for h in m["history"]] == ["v1", "v2"]
    assert m["history"][0]["metadata"]["event_payload"] == {"state": "open"}

    with pytest.raises(SlackApiError) as e:
        client.chat_update(channel="C123", ts="1.000001", text="nope")
    assert _error(e) == "message_not_found"

    human = fake.add_message("C123", "from a human", user="U1")
    with pytest.raises(SlackApiError) as e:
        client.chat_update(channel="C123", ts=human["ts"], text="hijack")
    assert _error(e) == "cant_update_message"


def test_thread_replies_are_not_in_history(fake, client):
    parent = client.chat_postMessage(channel="C123", text="parent")["ts"]
    r1 = client.chat_postMessage(channel="C123", text="reply 1", thread_ts=parent)["ts"]
    client.chat_postMessage(channel="C123", text="reply 2", thread_ts=parent)
    client.chat_postMessage(channel="C123", text="top 2")

    texts = [m["text"] for m in client.conversations_history(channel="C123")["messages"]]
    assert texts == ["top 2", "parent"]

    rep = client.conversations_replies(channel="C123", ts=parent)["messages"]
    assert [m["text"] for m in rep] == ["parent", "reply 1", "reply 2"]
    assert rep[0]["reply_count"] == 2 and rep[0]["thread_ts"] == parent
    assert all(m["thread_ts"] == parent for m in rep)
    # asking with a reply's ts gives the same thread
    assert [m["text"] for m in client.conversations_replies(channel="C123", ts=r1)["messages"]][0] == "parent"

    assert [m["text"] for m in fake.messages("C123")] == ["parent", "top 2"]
    assert [m["text"] for m in fake.replies("C123", parent)] == ["reply 1", "reply 2"]
    with pytest.raises(SlackApiError) as e:
        client.conversations_replies(channel="C123", ts="1.000001")
    assert _error(e) == "thread_not_found"


def test_ephemeral_is_stored_separately(fake, client):
    r = client.chat_postEphemeral(channel="C123", user="U1", text="only you")
    assert r["ok"] and r["message_ts"]
    assert fake.messages("C123") == []
    [e] = fake.ephemerals()
    assert (e["channel"], e["user"], e["text"]) == ("C123", "U1", "only you")
    fake.add_user("U9")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postEphemeral(channel="C123", user="U9", text="x")
    assert _error(exc) == "user_not_in_channel"


# ---------------------------------------------------------------------- pagination


def test_history_pagination_with_cursor_and_time_window():
    with FakeSlack(ts_start=1700000000.0001) as f:
        f.add_channel("C1")
        c = WebClient(token=f.bot_token, base_url=f.api_url)
        tss = [c.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(5)]

        p1 = c.conversations_history(channel="C1", limit=2)
        assert [m["text"] for m in p1["messages"]] == ["m4", "m3"]
        assert p1["has_more"] is True
        cur = p1["response_metadata"]["next_cursor"]
        assert cur
        p2 = c.conversations_history(channel="C1", limit=2, cursor=cur)
        assert [m["text"] for m in p2["messages"]] == ["m2", "m1"]
        p3 = c.conversations_history(channel="C1", limit=2, cursor=p2["response_metadata"]["next_cursor"])
        assert [m["text"] for m in p3["messages"]] == ["m0"]
        assert p3["has_more"] is False and p3["response_metadata"]["next_cursor"] == ""

        # slack_sdk's own cursor iteration walks every page (it reuses one
        # response object, so read each page inside the loop)
        texts = [m["text"] for page in c.conversations_history(channel="C1", limit=2) for m in page["messages"]]
        assert texts == ["m4", "m3", "m2", "m1", "m0"]

        window = c.conversations_history(channel="C1", oldest=tss[1], latest=tss[3])["messages"]
        assert [m["text"] for m in window] == ["m2"]
        window = c.conversations_history(channel="C1", oldest=tss[1], latest=tss[3], inclusive=True)["messages"]
        assert [m["text"] for m in window] == ["m3", "m2", "m1"]

        with pytest.raises(SlackApiError) as e:
            c.conversations_history(channel="C1", cursor="garbage!")
        assert _error(e) == "invalid_cursor"


def test_members_pagination(fake, client):
    fake.add_channel("CBIG", members=[f"U{i}" for i in range(5)], bot_is_member=False)
    seen, cursor, calls = [], None, 0
    while True:
        r = client.conversations_members(channel="CBIG", limit=2, cursor=cursor)
        calls += 1
        seen += r["members"]
        cursor = r["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["U0", "U1", "U2", "U3", "U4"] and calls == 3
    # the bot user is listed where it is a member, like Slack
    assert client.conversations_members(channel="C123")["members"] == ["U1", "U2", "U0BOT"]


# ---------------------------------------------------------------------- channels, users, groups


def test_not_in_channel_and_channel_not_found(fake, client):
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="COUT", text="x")
    assert _error(e) == "not_in_channel"
    with pytest.raises(SlackApiError) as e:
        client.conversations_history(channel="COUT")
    assert _error(e) == "not_in_channel"
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="CNOPE", text="x")
    assert _error(e) == "channel_not_found"
    with pytest.raises(SlackApiError) as e:
        client.conversations_info(channel="CNOPE")
    assert _error(e) == "channel_not_found"
    assert fake.messages("COUT") == []
    # once the bot joins, posting works
    fake.set_bot_membership("COUT", True)
    assert client.chat_postMessage(channel="COUT", text="now")["ok"]


def test_info_users_and_usergroups(fake, client):
    assert client.conversations_info(channel="C123")["channel"]["is_member"] is True
    assert client.conversations_info(channel="COUT")["channel"]["is_member"] is False
    fake.add_user("UADM", name="alice", is_admin=True, tz="Europe/Berlin")
    u = client.users_info(user="UADM")["user"]
    assert (u["id"], u["name"], u["is_admin"], u["tz"]) == ("UADM", "alice", True, "Europe/Berlin")
    assert client.users_info(user="U1")["user"]["id"] == "U1"  # channel members are known users
    with pytest.raises(SlackApiError) as e:
        client.users_info(user="UNOBODY")
    assert _error(e) == "user_not_found"

    fake.add_usergroup("S123", ["U1", "UADM"])
    assert client.usergroups_users_list(usergroup="S123")["users"] == ["U1", "UADM"]
    with pytest.raises(SlackApiError) as e:
        client.usergroups_users_list(usergroup="S999")
    assert _error(e) == "no_such_subteam"


# ---------------------------------------------------------------------- faults


def test_429_with_retry_after_is_retried_by_rate_limit_handler(fake):
    plain = WebClient(token=fake.bot_token, base_url=fake.api_url)
    fake.fail_next(1, status=429, retry_after=0, method="chat.postMessage")
    with pytest.raises(SlackApiError) as e:
        plain.chat_postMessage(channel="C123", text="x")
    assert e.value.response.status_code == 429
    assert _error(e) == "ratelimited"
    assert e.value.response.headers["Retry-After"] == "0"
    assert fake.messages("C123") == []

    c = WebClient(token=fake.bot_token, base_url=fake.api_url)
    c.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    fake.reset_calls()
    fake.fail_next(1, status=429, retry_after=1, method="chat.postMessage")
    t0 = time.monotonic()
    r = c.chat_postMessage(channel="C123", text="after rate limit")
    elapsed = time.monotonic() - t0
    assert r["ok"]
    assert elapsed >= 1.0  # slack_sdk slept Retry-After (+ jitter) before retrying
    log = fake.call_log("chat.postMessage")
    assert [x["status"] for x in log] == [429, 200]
    assert [m["text"] for m in fake.messages("C123")] == ["after rate limit"]


def test_500_is_retried_by_server_error_handler(fake):
    fake.fail_next(1, status=500)
    with pytest.raises(SlackApiError) as e:
        WebClient(token=fake.bot_token, base_url=fake.api_url).auth_test()
    assert e.value.response.status_code == 500

    c = WebClient(token=fake.bot_token, base_url=fake.api_url)
    c.retry_handlers.append(
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    )
    fake.reset_calls()
    fake.fail_next(2, status=500, method="chat.postMessage")
    assert c.chat_postMessage(channel="C123", text="survived")["ok"]
    assert [x["status"] for x in fake.call_log("chat.postMessage")] == [500, 500, 200]
    assert len(fake.messages("C123")) == 1

    fake.fail_next(3, status=503, method="chat.postMessage")  # more failures than retries
    with pytest.raises(SlackApiError) as e:
        c.chat_postMessage(channel="C123", text="lost")
    assert e.value.response.status_code == 503
    assert len(fake.messages("C123")) == 1


def test_dropped_connection_is_retried_by_default_handler(fake, client):
    fake.fail_next(1, status=0, method="chat.postMessage")  # close without answering
    assert client.chat_postMessage(channel="C123", text="x")["ok"]
    assert [x["status"] for x in fake.call_log("chat.postMessage")] == [0, 200]


def test_outage_then_recovery_and_permanent_errors(fake, client):
    fake.outage(0.4, status=503)
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C123", text="x")
    assert e.value.response.status_code == 503
    with pytest.raises(SlackApiError):
        client.auth_test()
    time.sleep(0.45)
    assert client.chat_postMessage(channel="C123", text="back")["ok"]

    fake.set_error("chat.postMessage", "not_in_channel")
    for _ in range(2):
        with pytest.raises(SlackApiError) as e:
            client.chat_postMessage(channel="C123", text="x")
        assert _error(e) == "not_in_channel" and e.value.response.status_code == 200
    assert client.auth_test()["ok"]  # other methods unaffected
    fake.set_error("chat.postMessage", None)
    assert client.chat_postMessage(channel="C123", text="again")["ok"]
    assert [m["text"] for m in fake.messages("C123")] == ["back", "again"]


def test_set_delay_holds_a_post_in_flight(fake, client):
    fake.set_delay("chat.postMessage", 5)  # 'before': stored only when answered
    result = {}
    t = threading.Thread(target=lambda: result.update(r=client.chat_postMessage(channel="C123", text="slow")))
    t.start()
    fake.wait_for(lambda: fake.in_flight("chat.postMessage") == 1, timeout=2)
    assert fake.messages("C123") == []
    fake.release_delays()
    t.join(3)
    assert result["r"]["ok"] and fake.in_flight() == 0
    assert [m["text"] for m in fake.messages("C123")] == ["slow"]

    fake.set_delay("chat.postMessage", 5, when="after")  # stored, answer held
    t = threading.Thread(target=lambda: client.chat_postMessage(channel="C123", text="stored-first"))
    t0 = time.monotonic()
    t.start()
    fake.wait_for(lambda: len(fake.messages("C123")) == 2, timeout=2)
    assert fake.in_flight("chat.postMessage") == 1
    fake.release_delays()
    t.join(3)
    assert not t.is_alive() and time.monotonic() - t0 < 3


# ---------------------------------------------------------------------- response_url


def test_response_url_records_posts(fake):
    url = fake.new_response_url()
    assert url.startswith(f"http://127.0.0.1:{fake.port}/response/")
    wh = WebhookClient(url)
    r = wh.send(text="scan finished", response_type="ephemeral", replace_original=True)
    assert r.status_code == 200
    [body] = fake.wait_for_responses(url, 1, timeout=2)
    assert body == {"text": "scan finished", "response_type": "ephemeral", "replace_original": True}
    assert fake.responses(url.rsplit("/", 1)[1]) == [body]

    assert WebhookClient(f"{fake.base_url}/response/unknown").send(text="x").status_code == 404
    fake.fail_next(1, status=500, method="response_url")
    assert wh.send(text="y").status_code == 500
    assert len(fake.responses(url)) == 1


# ---------------------------------------------------------------------- socket mode


def test_socket_mode_hello_envelope_ack_round_trip(fake):
    web = WebClient(base_url=fake.api_url)
    sm = SocketModeClient(app_token="xapp-test", web_client=web)
    seen_types, requests = [], []
    sm.message_listeners.append(lambda client, message, raw: seen_types.append(message.get("type")))

    def on_request(client, req):
        requests.append(req)
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": f"got {req.payload['text']}"})
        )

    sm.socket_mode_request_listeners.append(on_request)
    try:
        sm.connect()
        fake.wait_for_socket_connection(timeout=3)
        # the client called apps.connections.open with the app token through base_url
        [opened] = fake.call_log("apps.connections.open")
        assert opened["token"] == "xapp-test" and opened["status"] == 200
        fake.wait_for(lambda: "hello" in seen_types, timeout=3)

        eid = fake.socket_send(
            {
                "envelope_id": "e1",
                "type": "slash_commands",
                "payload": {"command": "/rootcheck", "text": "status", "user_id": "U1"},
                "accepts_response_payload": True,
            }
        )
        assert eid == "e1"
        ack = fake.wait_for_socket_ack("e1", timeout=3)
        assert ack == {"envelope_id": "e1", "payload": {"text": "got status"}}
        assert requests[0].type == "slash_commands" and requests[0].accepts_response_payload is True
        assert fake.socket_received("e1") == [ack]
        with pytest.raises(TimeoutError):
            fake.wait_for_socket_ack("never", timeout=0.1)
    finally:
        _stop_socket_client(fake, sm)


def test_socket_mode_disconnect_message_makes_client_reconnect(fake):
    sm = SocketModeClient(app_token="xapp-test", web_client=WebClient(base_url=fake.api_url))
    sm.socket_mode_request_listeners.append(
        lambda client, req: client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
    )
    try:
        sm.connect()
        fake.wait_for_socket_connection(timeout=3)
        fake.socket_send_disconnect(close_old=True)
        assert fake.socket_connect_count() == 2
        # a fresh URL was fetched through apps.connections.open for the new connection
        assert len(fake.calls("apps.connections.open")) == 2
        fake.wait_for(lambda: fake.socket_connections() == 1, timeout=3)
        fake.socket_send({"envelope_id": "e2", "type": "events_api", "payload": {"event": {"type": "x"}}})
        assert fake.wait_for_socket_ack("e2", timeout=3) == {"envelope_id": "e2"}
    finally:
        _stop_socket_client(fake, sm)


def test_bolt_app_over_socket_mode(fake):
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app = App(client=WebClient(token=fake.bot_token, base_url=fake.api_url))  # runs auth.test
    assert len(fake.calls("auth.test")) == 1

    @app.command("/rootcheck")
    def handle(ack, command, client):
        ack(f"checking {command['text']}")
        client.chat_postMessage(channel="C123", text="scan started")

    handler = SocketModeHandler(app, app_token="xapp-test")
    try:
        handler.connect()
        fake.wait_for_socket_connection(timeout=3)
        payload = {
            "command": "/rootcheck",
            "text": "now",
            "user_id": "U1",
            "channel_id": "C123",
            "team_id": fake.team_id,
            "response_url": fake.new_response_url(),
            "trigger_id": "t1",
            "api_app_id": fake.app_id,
        }
        fake.socket_send(
            {"envelope_id": "e3", "type": "slash_commands", "payload": payload, "accepts_response_payload": True}
        )
        ack = fake.wait_for_socket_ack("e3", timeout=3)
        assert ack["payload"]["text"] == "checking now"
        fake.wait_for(lambda: fake.messages("C123"), timeout=3)
        assert fake.messages("C123")[0]["text"] == "scan started"
    finally:
        _stop_socket_client(fake, handler.client)

    with pytest.raises(Exception):
        App(client=WebClient(token="xoxb-wrong", base_url=fake.api_url))


# ---------------------------------------------------------------------- process mode


def _http_json(url: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def _fake_process(*args: str):
    """The fake as its own process on port 0, as the benches run it; yields it and its API URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slack_api", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc, proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_runs_as_a_process_with_control_endpoints():
    with _fake_process("--channel", "C0ALERTS", "--member", "U0ADMIN", "--usergroup", "S0ADMINS:U0ADMIN") as (
        proc,
        api_url,
    ):
        assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api/")
        base = api_url[: -len("/api/")]
        c = WebClient(token="xoxb-test-token", base_url=api_url)
        assert c.conversations_members(channel="C0ALERTS")["members"] == ["U0ADMIN", "U0BOT"]
        assert c.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U0ADMIN"]
        ts = c.chat_postMessage(channel="C0ALERTS", text="hello from bench")["ts"]

        msgs = _http_json(f"{base}/_fake/messages?channel=C0ALERTS")["messages"]
        assert [(m["ts"], m["text"]) for m in msgs] == [(ts, "hello from bench")]

        assert _http_json(f"{base}/_fake/fail", {"n": 1, "status": 500, "method": "chat.postMessage"})["ok"]
        with pytest.raises(SlackApiError) as e:
            c.chat_postMessage(channel="C0ALERTS", text="x")
        assert e.value.response.status_code == 500
        calls = _http_json(f"{base}/_fake/calls?method=chat.postMessage")["calls"]
        assert [x["status"] for x in calls] == [200, 500]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# ---------------------------------------------------------------------- direct messages


def test_dm_open_gives_one_channel_per_user_that_works_like_a_channel(fake, client):
    assert fake.dm_channel("U1") is None
    r = client.conversations_open(users="U1")
    dm = r["channel"]["id"]
    assert dm.startswith("D") and "already_open" not in r
    again = client.conversations_open(users=["U1"])  # slack_sdk joins a list with commas
    assert again["channel"]["id"] == dm and again["already_open"] is True
    assert fake.dm_channel("U1") == dm and fake.dm_channels() == {"U1": dm}
    dm2 = client.conversations_open(users="U2")["channel"]["id"]
    assert dm2 != dm and fake.dm_channel("U2") == dm2
    assert client.conversations_open(channel=dm)["channel"]["id"] == dm  # resume by id

    full = client.conversations_open(users="U1", return_im=True)["channel"]
    assert (full["id"], full["is_im"], full["user"]) == (dm, True, "U1")
    info = client.conversations_info(channel=dm)["channel"]
    assert (info["is_im"], info["user"], info["is_user_deleted"]) == (True, "U1", False)
    assert client.conversations_members(channel=dm)["members"] == ["U1", "U0BOT"]

    md = {"event_type": "rootcheck_dm", "event_payload": {"alert_id": "a1"}}
    ts = client.chat_postMessage(channel=dm, text="you acknowledged", metadata=md)["ts"]
    reply = client.chat_postMessage(channel=dm, text="details", thread_ts=ts)["ts"]
    client.chat_update(channel=dm, ts=ts, text="you acknowledged (edited)")
    # a user id as channel lands in the same DM, and the answer names the DM
    via_user = client.chat_postMessage(channel="U1", text="by user id")
    assert via_user["channel"] == dm

    hist = client.conversations_history(channel=dm, include_all_metadata=True)["messages"]
    assert [m["text"] for m in hist] == ["by user id", "you acknowledged (edited)"]
    assert hist[1]["metadata"] == md
    rep = client.conversations_replies(channel=dm, ts=ts)["messages"]
    assert [m["ts"] for m in rep] == [ts, reply]
    assert [m["text"] for m in fake.messages(dm)] == ["you acknowledged (edited)", "by user id"]
    assert fake.messages("C123") == [] and fake.messages(dm2) == []
    with pytest.raises(SlackApiError) as e:
        client.conversations_join(channel=dm)
    assert _error(e) == "method_not_supported_for_channel_type"


def test_dm_refusals_like_slack(fake, client):
    fake.add_user("UGONE", deleted=True)
    fake.add_user("UOTHERBOT", is_bot=True)
    for user, error in (("UNOBODY", "user_not_found"), ("UGONE", "user_disabled"), ("UOTHERBOT", "cannot_dm_bot")):
        with pytest.raises(SlackApiError) as e:
            client.conversations_open(users=user)
        assert _error(e) == error, user
        assert fake.dm_channel(user) is None
    with pytest.raises(SlackApiError) as e:
        client.api_call("conversations.open", params={})  # slack_sdk itself refuses this call
    assert _error(e) == "users_list_not_supplied"
    with pytest.raises(SlackApiError) as e:
        client.conversations_open(channel="C123")
    assert _error(e) == "method_not_supported_for_channel_type"

    # a DM opened before the user was deactivated still takes posts (as in Slack)
    dm = client.conversations_open(users="U2")["channel"]["id"]
    fake.add_user("U2", deleted=True)
    assert client.chat_postMessage(channel=dm, text="still delivered")["ok"]
    with pytest.raises(SlackApiError) as e:
        client.conversations_open(users="U2")
    assert _error(e) == "user_disabled"


def test_set_dm_error_makes_every_dm_to_that_user_fail(fake, client):
    dm = client.conversations_open(users="U1")["channel"]["id"]
    fake.set_dm_error("U1", "cannot_dm_bot")
    with pytest.raises(SlackApiError) as e:
        client.conversations_open(users="U1")
    assert _error(e) == "cannot_dm_bot"
    for channel in (dm, "U1"):
        with pytest.raises(SlackApiError) as e:
            client.chat_postMessage(channel=channel, text="x")
        assert _error(e) == "cannot_dm_bot"
    assert client.conversations_open(users="U2")["ok"]  # other users unaffected
    assert client.chat_postMessage(channel="C123", text="channel still fine")["ok"]
    assert fake.messages(dm) == []
    fake.set_dm_error("U1", None)
    assert client.chat_postMessage(channel="U1", text="now")["channel"] == dm
    fake.set_dm_error("U1", "user_disabled")
    fake.clear_faults()
    assert client.conversations_open(users="U1")["ok"]


def test_new_scopes_are_default_and_removable(fake, client):
    granted = client.auth_test().headers["x-oauth-scopes"].split(",")
    assert {"im:write", "im:history", "users:read", "users:read.email", "chat:write", "commands"} <= set(granted)

    dm = client.conversations_open(users="U1")["channel"]["id"]
    client.chat_postMessage(channel=dm, text="hello")
    fake.set_scopes([s for s in granted if s not in ("im:write", "im:history")])
    with pytest.raises(SlackApiError) as e:
        client.conversations_open(users="U2")
    assert _error(e) == "missing_scope"
    assert e.value.response["needed"] == "im:write" and "im:write" not in e.value.response["provided"]
    assert fake.dm_channel("U2") is None
    for method, params in (
        ("conversations.history", {"channel": dm}),
        ("conversations.replies", {"channel": dm, "ts": "1.0"}),
    ):
        with pytest.raises(SlackApiError) as e:
            client.api_call(method, params=params)
        assert _error(e) == "missing_scope" and e.value.response["needed"] == "im:history"
    # public channel history is not an IM: unaffected
    assert client.conversations_history(channel="C123")["ok"]


# ---------------------------------------------------------------------- users by email, user groups


def test_users_lookup_by_email_and_call_counting(fake, client):
    fake.add_user("UALICE", name="alice", email="alice@example.com")
    fake.add_user("UGONE", email="gone@example.com", deleted=True)
    u = client.users_lookupByEmail(email="alice@example.com")["user"]
    assert (u["id"], u["name"], u["profile"]["email"]) == ("UALICE", "alice", "alice@example.com")
    for email in ("nobody@example.com", "gone@example.com"):  # deactivated: not found, like Slack
        with pytest.raises(SlackApiError) as e:
            client.users_lookupByEmail(email=email)
        assert _error(e) == "users_not_found"
    assert fake.call_count("users.lookupByEmail") == 3
    assert fake.call_count("users.lookupByEmail", email="alice@example.com") == 1
    client.users_lookupByEmail(email="alice@example.com")
    assert fake.call_count("users.lookupByEmail", email="alice@example.com") == 2

    assert client.users_info(user="UALICE")["user"]["profile"]["email"] == "alice@example.com"
    fake.set_scopes([s for s in fake.state()["scopes"] if s != "users:read.email"])
    with pytest.raises(SlackApiError) as e:
        client.users_lookupByEmail(email="alice@example.com")
    assert _error(e) == "missing_scope" and e.value.response["needed"] == "users:read.email"
    assert "email" not in client.users_info(user="UALICE")["user"]["profile"]


def test_usergroup_members_and_unknown_group(fake, client):
    fake.add_usergroup("S0ADMINS", ["U1", "UNEW"])
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U1", "UNEW"]
    assert client.users_info(user="UNEW")["user"]["id"] == "UNEW"  # members are known users
    fake.add_usergroup("S0ADMINS", ["U2"])  # replaced, not merged
    assert client.usergroups_users_list(usergroup="S0ADMINS")["users"] == ["U2"]
    for group in ("S0NOPE", ""):
        with pytest.raises(SlackApiError) as e:
            client.api_call("usergroups.users.list", params={"usergroup": group})
        assert _error(e) == "no_such_subteam"


# ---------------------------------------------------------------------- modals


def _modal(**over):
    view = {
        "type": "modal",
        "callback_id": "ack_note",
        "title": {"type": "plain_text", "text": "Acknowledge alert"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input", "action_id": "note"},
            }
        ],
        "private_metadata": '{"alert_id": "a1"}',
    }
    view.update(over)
    return {k: v for k, v in view.items() if v is not None}


def test_views_open_exchanges_a_fresh_trigger_once(fake, client):
    trigger = fake.new_trigger_id(user="U1")
    r = client.views_open(trigger_id=trigger, view=_modal())
    v = r["view"]
    assert v["id"].startswith("V") and v["type"] == "modal" and v["root_view_id"] == v["id"]
    assert (v["callback_id"], v["private_metadata"]) == ("ack_note", '{"alert_id": "a1"}')
    assert v["title"]["text"] == "Acknowledge alert" and v["state"] == {"values": {}}
    [opened] = fake.views()
    assert (opened["id"], opened["trigger_id"], opened["user"]) == (v["id"], trigger, "U1")
    assert opened["view"]["blocks"][0]["block_id"] == "note"

    with pytest.raises(SlackApiError) as e:
        client.views_open(trigger_id=trigger, view=_modal())
    assert _error(e) == "exchanged_trigger_id"
    for bogus in ("12345.98765.abcd2358fdea", "t1"):
        with pytest.raises(SlackApiError) as e:
            client.views_open(trigger_id=bogus, view=_modal())
        assert _error(e) == "invalid_trigger_id"
    assert len(fake.views()) == 1
    [t] = fake.triggers()
    assert t["trigger_id"] == trigger and t["used"] is True and t["user"] == "U1"


def test_views_open_trigger_expires():
    with FakeSlack(trigger_ttl=0.3) as f:
        c = WebClient(token=f.bot_token, base_url=f.api_url)
        fresh, old = f.new_trigger_id(), f.new_trigger_id()
        assert c.views_open(trigger_id=fresh, view=_modal())["ok"]
        time.sleep(0.4)
        with pytest.raises(SlackApiError) as e:
            c.views_open(trigger_id=old, view=_modal())
        assert _error(e) == "expired_trigger_id"
        assert [v["trigger_id"] for v in f.views()] == [fresh]
    with FakeSlack() as f:  # the default is Slack's 3 seconds
        assert f.trigger_ttl == 3.0


@pytest.mark.parametrize(
    "over,pointer",
    [
        ({"type": "home"}, "/view/type"),
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"title": {"type": "mrkdwn", "text": "Ack"}}, "/view/title"),
        ({"title": None}, "title"),
        ({"submit": {"type": "plain_text", "text": "s" * 25}}, "/view/submit/text"),
        ({"blocks": "not a list"}, "/view/blocks"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"submit": None}, "/view/submit"),  # input block without a submit button
        ({"private_metadata": "m" * 3001}, "/view/private_metadata"),
        ({"callback_id": "c" * 256}, "/view/callback_id"),
    ],
)
def test_views_open_rejects_invalid_views_without_using_the_trigger(fake, client, over, pointer):
    trigger = fake.new_trigger_id()
    with pytest.raises(SlackApiError) as e:
        client.views_open(trigger_id=trigger, view=_modal(**over))
    assert _error(e) == "invalid_arguments"
    messages = e.value.response["response_metadata"]["messages"]
    assert messages and all(m.startswith("[ERROR] ") for m in messages)
    assert any(pointer in m for m in messages), messages
    assert fake.views() == []
    # limits are inclusive: 24 / 3000 / 255 characters pass, and the trigger was not spent
    ok = _modal(title={"type": "plain_text", "text": "t" * 24}, private_metadata="m" * 3000, callback_id="c" * 255)
    assert client.views_open(trigger_id=trigger, view=ok)["ok"]


def test_views_open_duplicate_external_id(fake, client):
    client.views_open(trigger_id=fake.new_trigger_id(), view=_modal(external_id="alert-a1"))
    with pytest.raises(SlackApiError) as e:
        client.views_open(trigger_id=fake.new_trigger_id(), view=_modal(external_id="alert-a1"))
    assert _error(e) == "duplicate_external_id"
    assert len(fake.views()) == 1


# ---------------------------------------------------------------------- permalinks


def test_get_permalink_for_messages_and_thread_replies(fake, client):
    ts = client.chat_postMessage(channel="C123", text="root login")["ts"]
    reply = client.chat_postMessage(channel="C123", text="acked", thread_ts=ts)["ts"]
    r = client.chat_getPermalink(channel="C123", message_ts=ts)
    domain = client.auth_test()["url"]  # https://<team>.slack.com/
    assert r["channel"] == "C123"
    assert r["permalink"] == f"{domain}archives/C123/p{ts.replace('.', '')}"
    assert "." not in r["permalink"].rsplit("/p", 1)[1]
    r = client.chat_getPermalink(channel="C123", message_ts=reply)
    assert r["permalink"] == f"{domain}archives/C123/p{reply.replace('.', '')}?thread_ts={ts}&cid=C123"
    with pytest.raises(SlackApiError) as e:
        client.chat_getPermalink(channel="C123", message_ts="1.000001")
    assert _error(e) == "message_not_found"
    with pytest.raises(SlackApiError) as e:
        client.chat_getPermalink(channel="CNOPE", message_ts=ts)
    assert _error(e) == "channel_not_found"


# ---------------------------------------------------------------------- edit history, metadata on update


def test_every_successful_update_is_recorded_with_its_time(fake, client):
    md1 = {"event_type": "alert", "event_payload": {"state": "open"}}
    md2 = {"event_type": "alert", "event_payload": {"state": "acked"}}
    ts = client.chat_postMessage(channel="C123", text="v1", metadata=md1)["ts"]
    assert fake.edits("C123", ts) == [] and fake.edit_counts() == {}
    t0 = time.time()
    client.chat_update(channel="C123", ts=ts, text="v2", blocks=[{"type": "divider"}], metadata=md2)
    client.chat_update(channel="C123", ts=ts, text="v3")  # metadata left out: kept
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C123", ts=ts, text="bad", metadata={"event_payload": {}})
    client.chat_update(channel="C123", ts=ts, text="v4", metadata={})  # {} removes it
    t1 = time.time()

    edits = fake.edits("C123", ts)
    assert [e["text"] for e in edits] == ["v2", "v3", "v4"]  # the failed update is not an edit
    assert [e["metadata"] for e in edits] == [md2, md2, None]
    assert edits[0]["blocks"] == [{"type": "divider"}]
    times = [e["time"] for e in edits]
    assert t0 <= times[0] <= times[1] <= times[2] <= t1
    assert all(e["edited_ts"] for e in edits)
    assert fake.edit_counts() == {"C123": {ts: 3}} and fake.edit_counts("COUT") == {}

    [m] = fake.messages("C123")
    assert m["metadata"] is None and m["update_count"] == 3
    assert "metadata" not in client.conversations_history(channel="C123", include_all_metadata=True)["messages"][0]


# ---------------------------------------------------------------------- rate limits


def test_chat_update_workspace_rate_limit_answers_429_with_retry_after(fake, client):
    ts = client.chat_postMessage(channel="C123", text="v0")["ts"]
    fake.add_channel("C2")
    ts2 = client.chat_postMessage(channel="C2", text="other")["ts"]
    for i in range(5):  # off by default
        client.chat_update(channel="C123", ts=ts, text=f"free {i}")
    fake.set_rate_limit("chat.update", per_minute=5)
    for i in range(4):
        client.chat_update(channel="C123", ts=ts, text=f"v{i}")
    client.chat_update(channel="C2", ts=ts2, text="uses the same workspace budget")
    with pytest.raises(SlackApiError) as e:
        client.chat_update(channel="C123", ts=ts, text="over budget")
    assert e.value.response.status_code == 429 and _error(e) == "ratelimited"
    assert 1 <= int(e.value.response.headers["Retry-After"]) <= 12  # 5/min: one more in 12 s
    assert fake.message("C123", ts)["text"] == "v3"
    assert len(fake.edits("C123", ts)) == 9
    assert [c["status"] for c in fake.call_log("chat.update")][-2:] == [200, 429]
    assert client.chat_postMessage(channel="C123", text="other methods unaffected")["ok"]

    fake.set_rate_limit("chat.update", None)
    assert client.chat_update(channel="C123", ts=ts, text="after switch-off")["ok"]


def test_post_message_per_channel_rate_limit_with_burst_and_refill(fake, client):
    fake.add_channel("C2")
    fake.set_rate_limit("chat.postMessage", per_second=5, burst=2, per_channel=True)
    client.chat_postMessage(channel="C123", text="1")
    client.chat_postMessage(channel="C123", text="2")
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="C123", text="3")
    assert e.value.response.status_code == 429 and e.value.response.headers["Retry-After"] == "1"
    assert client.chat_postMessage(channel="C2", text="own budget")["ok"]
    time.sleep(0.25)  # refills one request per 0.2 s
    assert client.chat_postMessage(channel="C123", text="4")["ok"]
    assert [m["text"] for m in fake.messages("C123")] == ["1", "2", "4"]

    # slack_sdk's rate limit handler waits Retry-After and succeeds
    retrying = WebClient(token=fake.bot_token, base_url=fake.api_url)
    retrying.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    fake.set_rate_limit("chat.postMessage", per_second=2, burst=1, per_channel=True)
    retrying.chat_postMessage(channel="C2", text="a")
    t0 = time.monotonic()
    assert retrying.chat_postMessage(channel="C2", text="b")["ok"]
    assert time.monotonic() - t0 >= 1.0
    assert [c["status"] for c in fake.call_log("chat.postMessage")][-2:] == [429, 200]


# ---------------------------------------------------------------------- metadata in replies


def test_replies_return_metadata_only_with_include_all_metadata(fake, client):
    md = {"event_type": "rootcheck_ack", "event_payload": {"by": "U1"}}
    parent = client.chat_postMessage(channel="C123", text="alert", metadata=md)["ts"]
    client.chat_postMessage(channel="C123", text="acked", thread_ts=parent, metadata=md)
    client.chat_postMessage(channel="C123", text="plain reply", thread_ts=parent)

    with_md = client.conversations_replies(channel="C123", ts=parent, include_all_metadata=True)["messages"]
    assert [m.get("metadata") for m in with_md] == [md, md, None]
    without = client.conversations_replies(channel="C123", ts=parent)["messages"]
    assert [m["text"] for m in without] == ["alert", "acked", "plain reply"]
    assert all("metadata" not in m for m in without)
    # the same rule as history
    assert "metadata" not in client.conversations_history(channel="C123")["messages"][0]
    assert client.conversations_history(channel="C123", include_all_metadata=True)["messages"][0]["metadata"] == md


# ---------------------------------------------------------------------- control API for the new state


def test_control_endpoints_for_dms_views_edits_and_limits():
    with _fake_process(
        "--channel",
        "C0ALERTS:U0ADMIN",
        "--user",
        "U0ADMIN:admin@example.com",
        "--admin",
        "U0ADMIN",
        "--deactivated-user",
        "U0GONE",
        "--trigger-ttl",
        "5",
        "--no-socket-mode",
    ) as (proc, api_url):
        base = api_url[: -len("/api/")]
        c = WebClient(token="xoxb-test-token", base_url=api_url)

        u = c.users_lookupByEmail(email="admin@example.com")["user"]
        assert u["id"] == "U0ADMIN" and u["is_admin"] is True
        assert _http_json(f"{base}/_fake/call_count?method=users.lookupByEmail&email=admin@example.com")["count"] == 1
        assert _http_json(f"{base}/_fake/user", {"id": "U0NEW", "email": "new@example.com"})["ok"]
        assert c.users_lookupByEmail(email="new@example.com")["user"]["id"] == "U0NEW"
        with pytest.raises(SlackApiError) as e:
            c.conversations_open(users="U0GONE")
        assert _error(e) == "user_disabled"

        dm = c.conversations_open(users="U0ADMIN")["channel"]["id"]
        assert _http_json(f"{base}/_fake/dm_channels")["dm_channels"] == {"U0ADMIN": dm}
        assert _http_json(f"{base}/_fake/dm_channel?user=U0ADMIN")["channel"] == dm
        assert _http_json(f"{base}/_fake/dm_channel?user=U0NEW")["channel"] is None
        assert _http_json(f"{base}/_fake/open_dm", {"user": "U0NEW"})["channel"].startswith("D")
        assert _http_json(f"{base}/_fake/dm_error", {"user": "U0ADMIN", "error": "cannot_dm_bot"})["ok"]
        with pytest.raises(SlackApiError) as e:
            c.chat_postMessage(channel=dm, text="x")
        assert _error(e) == "cannot_dm_bot"
        _http_json(f"{base}/_fake/dm_error", {"user": "U0ADMIN", "error": None})
        ts = c.chat_postMessage(channel=dm, text="dm")["ts"]
        assert [m["text"] for m in _http_json(f"{base}/_fake/messages?channel={dm}")["messages"]] == ["dm"]

        trigger = _http_json(f"{base}/_fake/trigger_id", {"user": "U0ADMIN"})["trigger_id"]
        view_id = c.views_open(trigger_id=trigger, view=_modal())["view"]["id"]
        [v] = _http_json(f"{base}/_fake/views")["views"]
        assert (v["id"], v["trigger_id"], v["user"]) == (view_id, trigger, "U0ADMIN")
        [t] = _http_json(f"{base}/_fake/triggers")["triggers"]
        assert t["used"] is True

        c.chat_update(channel=dm, ts=ts, text="dm v2")
        c.chat_update(channel=dm, ts=ts, text="dm v3")
        edits = _http_json(f"{base}/_fake/edits?channel={dm}&ts={ts}")["edits"]
        assert [e["text"] for e in edits] == ["dm v2", "dm v3"] and all(e["time"] for e in edits)
        assert _http_json(f"{base}/_fake/edits?channel={dm}")["counts"] == {dm: {ts: 2}}

        assert _http_json(f"{base}/_fake/rate_limit", {"method": "chat.update", "per_minute": 1})["ok"]
        c.chat_update(channel=dm, ts=ts, text="dm v4")
        with pytest.raises(SlackApiError) as e:
            c.chat_update(channel=dm, ts=ts, text="dm v5")
        assert e.value.response.status_code == 429 and int(e.value.response.headers["Retry-After"]) >= 1

        state = _http_json(f"{base}/_fake/state")
        assert state["dm_channels"]["U0ADMIN"] == dm and state["channels"][dm]["is_im"] is True
        assert state["views"] == 1 and state["triggers"] == 1
        assert state["edits"] == {dm: {ts: 3}}
        assert state["rate_limits"]["chat.update"]["per_minute"] == 1
        assert "im:write" in state["scopes"]

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
