"""Durations and instants as users and AWS write them. Pure: `now` is always passed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`6s`, `30m`, `24h`, `7d`; a plain number means seconds. Raises ValueError otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use a number and s, m, h or d, e.g. 30m)")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return timedelta(seconds=seconds)


def parse_time(text: object) -> datetime | None:
    """An ISO 8601 time as AWS writes it, as aware UTC; None when it cannot be read.

    A time without an offset is taken as UTC, which is what CloudTrail means.
    """
    if not isinstance(text, str) or not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_instant(text: str, now: datetime) -> datetime:
    """A `--since`/`--until` value: a duration back from `now`, or an ISO 8601 time."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(f"not a duration or ISO 8601 time: {text!r} (e.g. 24h, 7d, 2026-11-01T00:00:00Z)")
    return parsed


def iso_z(moment: datetime) -> str:
    """The one way rootcheck writes a time: UTC, seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC)
