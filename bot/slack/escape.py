"""Slack mrkdwn escaping: anything from AWS or a user can never mention, link or format."""

from __future__ import annotations

from typing import Any


def mrkdwn(value: Any, limit: int | None = None) -> str:
    """`&`, `<` and `>` escaped, as Slack documents; so `<!channel>` stays text.

    `limit` shortens the raw text first (with `…`), so a cut never splits an `&amp;` entity.
    """
    text = "" if value is None else str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: Any, limit: int = 120) -> str:
    """A short escaped value in an inline code span (backticks removed so it cannot break out)."""
    text = mrkdwn(None if value is None else str(value).replace("`", "'"), limit)
    return f"`{text}`" if text else "—"
