"""Stable finding ids, so the poller, the queue and a file agree on the same event."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_ACCOUNT = re.compile(r"^\d{12}$")


def finding_id(source: str, account_id: str | None, kind: str, *evidence: str) -> str:
    """A short hex digest of exactly the parts the interface names, nothing else."""
    parts = [source, account_id or "", kind, *evidence]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def canonical_json(record: Any) -> str:
    """The record's identity when it has no eventID: key order and spacing never matter."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def valid_account(value: Any) -> str | None:
    """A 12-digit account id as a string, or None for placeholders like 'redacted' or 'xxx'."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and _ACCOUNT.match(value):
        return value
    return None
