"""Slack mrkdwn escaping: anything from AWS or a user can never mention, link or format."""

from __future__ import annotations

from typing import Any


def mrkdwn(value: Any) -> str:
    """`&`, `<` and `>` escaped, as Slack documents; so `<!channel>` stays text."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: Any, limit: int = 120) -> str:
    """A short escaped value in an inline code span (backticks removed so it cannot break out)."""
    text = mrkdwn(value).replace("`", "'")
    return f"`{text[:limit] + '…' if len(text) > limit else text}`" if text else "—"
