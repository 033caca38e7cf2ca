"""manifest.yml against the code: the command, the action ids, and the bot scopes (minimal and sufficient).

Sufficient: every Slack Web API method rootcheck calls (seen by a real `serve` session against the fake
Slack, and found in the code) needs only scopes the manifest asks for. Minimal: every scope asked for
is needed by one of those methods (or is `commands`, for /rootcheck).
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient

from bot.checks.cloudtrail import check_record
from bot.slack import actions, commands, confirm_listeners
from bot.slack.blocks import render_alert, render_question, render_reason_modal
from bot.slack.ids import (
    ACK_ACTION,
    BOT_SCOPES,
    COMMAND,
    CONFIRM_NO_ACTION,
    CONFIRM_VIEW,
    CONFIRM_YES_ACTION,
    REMEDIATION_ACTION,
)
from tests.fakes.aws_standin import root_login_record
from tests.fakes.slack_api import FakeSlack
from tests.harness import CHANNEL, wait_for
from tests.slack.records import digest_of, record_of
from tests.slack.support import ADMIN, MEMBER, OUTSIDER, served

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
PLACEHOLDER_URL = "https://rootcheck.example.com/slack/events"

# Which bot scopes each Web API method needs (https://api.slack.com/methods). Methods on a
# conversation need the public-channel scope and, for private alert channels, the private one.
SCOPES_FOR = {
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.members": {"channels:read", "groups:read"},
    "conversations.info": {"channels:read", "groups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "users.lookupByEmail": {"users:read", "users:read.email"},
    "conversations.open": {"im:write"},
    "chat.getPermalink": set(),  # no scope
    "views.open": set(),  # a click's trigger_id, no scope
    "auth.test": set(),  # no scope
    "apps.connections.open": set(),  # the app-level token's connections:write, not a bot scope
    "response_url": set(),  # a command's or click's own response URL: no token at all
}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


# ------------------------------------------------------------------------------------ the file


def test_manifest_is_complete(manifest):
    info = manifest["display_information"]
    assert info["name"] == "rootcheck" and 0 < len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert manifest["features"]["bot_user"]["display_name"] == "rootcheck"
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": PLACEHOLDER_URL}
    assert settings["socket_mode_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_manifest_command_is_the_one_the_code_registers(manifest):
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert command["url"] == PLACEHOLDER_URL
    assert 0 < len(command["description"]) <= 2000 and 0 < len(command["usage_hint"]) <= 1000
    for verb in (*commands.VERBS, "help"):
        assert re.search(rf"\b{verb}\b", command["usage_hint"]), verb
    recorder = _Recorder()
    commands.register(recorder, lambda request, answer: None, lambda job: None)
    actions.register(recorder, None, lambda job: None)
    assert recorder.commands == [COMMAND]


def test_manifest_scopes_are_the_code_scopes(manifest):
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == set(BOT_SCOPES)
    assert "user" not in manifest["oauth_config"]["scopes"]  # no user token


# ------------------------------------------------------------------------------------ action ids


class _Recorder:
    """Stands in for slack_bolt.App at registration: records what listeners are registered for."""

    def __init__(self):
        self.commands: list[str] = []
        self.actions: list[str] = []
        self.views: list[str] = []

    def command(self, name):
        self.commands.append(name)
        return lambda function: function

    def action(self, action_id):
        self.actions.append(action_id)
        return lambda function: function

    def view(self, callback_id):
        self.views.append(callback_id)
        return lambda function: function


def _rendered_action_ids() -> set[str]:
    now = datetime(2026, 8, 20, tzinfo=UTC)
    finding = check_record(root_login_record("123456789012", now))
    ids = set()
    for message in (
        render_alert(record_of([finding]), lambda a: None, "https://example.com/guide", now),
        render_alert(digest_of([finding] * 6), lambda a: None, "https://example.com/guide", now, [finding] * 6),
        render_question(record_of([finding]), "U0OWNER", lambda a: None, None),
    ):
        ids |= {e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    return ids


def test_rendered_action_ids_are_exactly_the_known_ones_and_all_have_listeners():
    rendered = _rendered_action_ids()
    assert rendered == {ACK_ACTION, REMEDIATION_ACTION, CONFIRM_YES_ACTION, CONFIRM_NO_ACTION}
    recorder = _Recorder()
    actions.register(recorder, None, lambda job: None)
    confirm_listeners.register(recorder, None, lambda job: None, Exception)
    assert recorder.views == [CONFIRM_VIEW] and render_reason_modal("a")["callback_id"] == CONFIRM_VIEW
    assert len(recorder.actions) == len(set(recorder.actions))
    assert set(recorder.actions) <= rendered  # no listener waits for a button nobody can press
    assert rendered <= set(recorder.actions)  # and every button is answered (a URL button too)


# ------------------------------------------------------------------------------------ scopes


def _web_api_methods_in_code() -> set[str]:
    """Slack methods the code names: attribute uses like `client.chat_postMessage` in bot/."""
    names = {n for n in dir(WebClient) if not n.startswith("_") and callable(getattr(WebClient, n))}
    methods = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in names
                and node.attr != "api_call"
                and re.match(r"^[a-z]+_[A-Za-z_]+$", node.attr)
            ):
                methods.add(node.attr.replace("_", "."))
    return methods


def test_code_calls_only_methods_with_known_scopes():
    methods = _web_api_methods_in_code()
    assert {"chat.postMessage", "chat.update", "conversations.members"} <= methods  # the scan works
    unknown = methods - set(SCOPES_FOR)
    assert not unknown, f"add these to SCOPES_FOR (and maybe to BOT_SCOPES): {unknown}"


@pytest.fixture(scope="module")
def session_calls(standin, tmp_path_factory) -> set[str]:
    """A short real `serve` session: an alert, an ack, a refused click, commands. The methods it called."""
    with FakeSlack() as fake:
        fake.set_scopes(BOT_SCOPES)
        fake.add_user(OUTSIDER)
        fake.add_channel(CHANNEL, members=[ADMIN, MEMBER])  # where the commands are typed

        def seed(running):
            running.seed("scopes")

        with served(fake, standin, tmp_path_factory.mktemp("scopes"), before_start=seed) as bot:
            _, channel, alert = bot.seeded_alert("scopes")
            bot.click(alert, channel, OUTSIDER)
            wait_for(lambda: fake.call_log("chat.postEphemeral"))
            bot.click(alert, channel, ADMIN)
            wait_for(lambda: fake.replies(channel, alert["ts"]))
            for text in ("help", "status", "open", "accounts"):
                _, _, _, url = bot.command(text, MEMBER, channel=channel)
                if text != "help":
                    bot.answers(url)
            bot.scan_now(user=ADMIN)
        return {call["method"] for call in fake.call_log()}


def test_every_method_a_serve_session_calls_is_covered_by_the_scopes(session_calls):
    assert {
        "chat.postMessage",
        "chat.update",
        "conversations.members",
        "chat.postEphemeral",
        "response_url",
    } <= session_calls
    unknown = session_calls - set(SCOPES_FOR)
    assert not unknown, f"serve called methods the scope table does not know: {unknown}"
    for method in session_calls:
        assert SCOPES_FOR[method] <= set(BOT_SCOPES), f"{method} needs {SCOPES_FOR[method] - set(BOT_SCOPES)}"


def test_every_scope_is_needed(session_calls):
    used = set().union(*(SCOPES_FOR[m] for m in session_calls | _web_api_methods_in_code()))
    assert used | {"commands"} == set(BOT_SCOPES)
