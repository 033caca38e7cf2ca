"""Talking to Slack well: retry handlers for 429/5xx/network, one message per second per
channel, and permanent errors named with their fix instead of being retried blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.pacing import Pacer
from bot.slack.blocks import Message

FIXES = {
    "not_in_channel": "invite the bot to the channel (/invite @rootcheck)",
    "channel_not_found": "check ROOTCHECK_CHANNEL or the account's channel: it must be a channel ID like C0123ABCD",
    "is_archived": "unarchive the channel or point ROOTCHECK_CHANNEL elsewhere",
    "invalid_auth": "fix SLACK_BOT_TOKEN: reinstall the app and copy its xoxb- token",
    "token_revoked": "fix SLACK_BOT_TOKEN: the token was revoked; reinstall the app",
    "account_inactive": "fix SLACK_BOT_TOKEN: the app or its user was deactivated",
    "not_authed": "set SLACK_BOT_TOKEN",
    "missing_scope": "add the missing scope (see manifest.yml) and reinstall the app",
    "message_not_found": "the alert's message was deleted in Slack; rootcheck stops updating it",
    "cant_update_message": "the alert's message can no longer be updated; rootcheck stops updating it",
    "edit_window_closed": "Slack no longer allows updating this message; rootcheck stops updating it",
}
PERMANENT = frozenset(FIXES)


class SlackError(Exception):
    """A Slack call that failed after retries; `permanent` ones wait for a human fix."""

    def __init__(self, code: str, permanent: bool):
        self.code = code
        self.permanent = permanent
        self.fix = FIXES.get(code, "Slack is failing; rootcheck keeps retrying")
        super().__init__(f"{code}: {self.fix}")


def make_client(token: str, base_url: str, retries: int = 3) -> WebClient:
    """A WebClient pointed at ROOTCHECK_SLACK_API_URL with slack_sdk's own retry handlers."""
    client = WebClient(token=token, base_url=base_url, timeout=15)
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=retries),
        RateLimitErrorRetryHandler(max_retry_count=retries),
        ServerErrorRetryHandler(max_retry_count=retries),
    ]
    return client


class Notifier:
    """Every Slack call rootcheck makes for alerts; turns failures into SlackError.

    Posts are paced per channel (Slack takes 1 message/s per channel); edits that no person is
    waiting for are paced across the workspace, within chat.update's budget (Tier 3, ~50/min).
    """

    def __init__(
        self, client: WebClient, pace: float = 1.0, edit_pace: float = 1.5, sleep: Callable[[float], None] = time.sleep
    ):
        self.client = client
        self._pacer = Pacer(pace, sleep=sleep)
        self._edits = Pacer(edit_pace, sleep=sleep)

    def post(self, channel: str, message: Message, thread_ts: str | None = None) -> tuple[str, str]:
        self._pacer.hold(channel)
        response = self._call(
            self.client.chat_postMessage,
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            metadata=message.metadata,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        return response["channel"], response["ts"]

    def update(self, channel: str, ts: str, message: Message, paced: bool = True) -> None:
        if paced:
            self._edits.hold("workspace")
        self._call(
            self.client.chat_update,
            channel=channel,
            ts=ts,
            text=message.text,
            blocks=message.blocks,
            metadata=message.metadata,
        )

    def open_dm(self, user: str) -> str:
        """The direct message channel with `user` (the same one every time)."""
        return self._call(self.client.conversations_open, users=user)["channel"]["id"]

    def permalink(self, channel: str, ts: str) -> str:
        return self._call(self.client.chat_getPermalink, channel=channel, message_ts=ts)["permalink"]

    def open_view(self, trigger_id: str, view: dict) -> None:
        self._call(self.client.views_open, trigger_id=trigger_id, view=view)

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self._call(self.client.chat_postEphemeral, channel=channel, user=user, text=text)

    def find_posted(
        self, channel: str, ids: set[str], oldest: float, thread_ts: str | None = None, max_pages: int = 20
    ) -> dict[str, str]:
        """Message ts by alert, digest or reply id, read from message metadata: the channel's recent
        history, or one thread's replies. At most `max_pages` pages of 200 are read."""
        found: dict[str, str] = {}
        cursor = None
        method, where = (
            (self.client.conversations_replies, {"ts": thread_ts})
            if thread_ts
            else (self.client.conversations_history, {})
        )
        for _ in range(max_pages):
            page = self._call(
                method,
                channel=channel,
                oldest=str(oldest),
                limit=200,
                include_all_metadata=True,
                cursor=cursor,
                **where,
            )
            for message in page.get("messages", []):
                if thread_ts and message.get("ts") == thread_ts:
                    continue  # the parent, which Slack returns first: an alert shares its id with its summary
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                key = (
                    payload.get("finding_id")
                    or payload.get("digest_id")
                    or payload.get("reply_id")
                    or payload.get("question_id")
                    or (payload.get("alert_id") if thread_ts else None)
                )
                if key in ids:
                    found[key] = message["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not ids - set(found):
                break
        return found

    def _call(self, method: Callable[..., Any], **params: Any) -> Any:
        try:
            return method(**{k: v for k, v in params.items() if v is not None})
        except SlackApiError as exc:
            code = exc.response.get("error", "unknown_error") if exc.response is not None else "unknown_error"
            raise SlackError(str(code), str(code) in PERMANENT) from None
        except (SlackRequestError, OSError) as exc:
            raise SlackError(f"network: {exc.__class__.__name__}", False) from None
