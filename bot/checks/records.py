"""Unwrap every envelope CloudTrail records travel in, down to plain record dicts.

A trail log file, a LookupEvents response or item, an EventBridge event, one bare record, or
JSON Lines of any of these: the detectors only ever see the record, so the same event gives
the same finding id however it arrived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson  # several times faster than the stdlib on large trail files

_loads = orjson.loads
_DecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)

ARCHIVE_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")
DIGEST_MARK = "_CloudTrail-Digest_"  # <account>_CloudTrail-Digest_<region>_...json.gz: hashes, no records
_ACCOUNT_DIR = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/")
_DATE_DIR = re.compile(r"/CloudTrail(?:-Digest|-Insight)?/[^/]+/(\d{4})/(\d{2})/(\d{2})/")


@dataclass(frozen=True)
class Skipped:
    """A part of a readable document that is not a usable record, and why."""

    reason: str


def parse_document(data: bytes | str) -> Iterator[dict | Skipped]:
    """Records from one document. Raises ValueError when nothing in it can be parsed."""
    try:
        value = _loads(data)
    except _DecodeError as exc:
        lines = _json_lines(data)
        if lines is None:
            raise ValueError(f"not valid JSON ({exc})") from None
        return lines
    return unwrap(value)


def unwrap(value: Any) -> Iterator[dict | Skipped]:
    """Yield the CloudTrail records inside any supported envelope."""
    if isinstance(value, list):
        for item in value:
            yield from unwrap(item)
        return
    if not isinstance(value, dict):
        yield Skipped(f"not a JSON object: {type(value).__name__}")
        return
    if isinstance(value.get("Records"), list):
        yield from unwrap(value["Records"])
    elif isinstance(value.get("Events"), list):
        yield from unwrap(value["Events"])
    elif "CloudTrailEvent" in value:
        yield from _lookup_item(value["CloudTrailEvent"])
    elif isinstance(value.get("detail"), dict) and "userIdentity" not in value:
        yield value["detail"]
    else:
        yield value


def account_from_path(path: str) -> str | None:
    """The account folder of an archive path: AWSLogs/[o-…/]<account>/."""
    match = _ACCOUNT_DIR.search(path.replace("\\", "/"))
    return match.group(1) if match else None


def is_archive_file(name: str) -> bool:
    """A file (or S3 key) a folder walk or a listing reads: records, not a CloudTrail digest file."""
    return name.endswith(ARCHIVE_SUFFIXES) and DIGEST_MARK not in name


def date_from_path(path: str) -> date | None:
    """The delivery day of an archive path (…/CloudTrail/<region>/YYYY/MM/DD/…), for pruning."""
    match = _DATE_DIR.search(path.replace("\\", "/"))
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _lookup_item(text: Any) -> Iterator[dict | Skipped]:
    if isinstance(text, dict):
        yield text
        return
    try:
        yield from unwrap(_loads(text))
    except _DecodeError + (TypeError,):
        yield Skipped("CloudTrailEvent is not valid JSON")


def _json_lines(data: bytes | str) -> Iterator[dict | Skipped] | None:
    """JSON Lines, if the first non-empty line is a JSON object; None when it is not JSONL."""
    raw = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [(number, line) for number, line in enumerate(raw.splitlines(), 1) if line.strip()]
    if not lines:
        return None
    try:
        first = _loads(lines[0][1])
    except _DecodeError:
        return None
    if not isinstance(first, (dict, list)):
        return None
    return _each_line(lines)


def _each_line(lines: list[tuple[int, str]]) -> Iterator[dict | Skipped]:
    for number, line in lines:
        try:
            value = _loads(line)
        except _DecodeError:
            yield Skipped(f"line {number} is not valid JSON")
            continue
        yield from unwrap(value)
