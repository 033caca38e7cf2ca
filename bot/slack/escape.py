"""Slack mrkdwn escaping: anything from AWS or a user can never mention, link or format.

Escaping `&<>` stops forged links and mentions; every text object that carries such a string is
also sent with `verbatim: true` (see blocks.py), so Slack does not auto-link URLs or channel
names found in it either.
"""

from __future__ import annotations

from typing import Any

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
ELLIPSIS = "…"


def mrkdwn(value: Any, limit: int | None = None) -> str:
    """`&`, `<` and `>` escaped, as Slack documents; so `<!channel>` stays text.

    `limit` bounds the escaped result: the longest raw prefix whose escaped form (plus `…`) fits
    is kept, so a text heavy in `<`/`&` never grows past Slack's limits and an entity is never cut.
    """
    text = "" if value is None else str(value)
    escaped = "".join(_ENTITIES.get(ch, ch) for ch in text)
    if limit is None or len(escaped) <= limit:
        return escaped
    kept, size = [], 0
    for ch in text:
        piece = _ENTITIES.get(ch, ch)
        if size + len(piece) + len(ELLIPSIS) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + ELLIPSIS


def code(value: Any, limit: int = 120) -> str:
    """A short escaped value in an inline code span (backticks removed so it cannot break out)."""
    text = mrkdwn(None if value is None else str(value).replace("`", "'"), limit)
    return f"`{text}`" if text else "—"
