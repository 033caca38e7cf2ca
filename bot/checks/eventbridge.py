"""Trust rules for events that arrive through EventBridge (the real-time queue path).

Only AWS can publish events whose `source` starts with `aws.`, and EventBridge stamps the
sending account in `account`. Requiring both, and that `account` matches the record's own
account, means a member account can neither forge another account's events nor claim their
finding ids.
"""

from __future__ import annotations

from typing import Any

from bot.checks.cloudtrail import record_account


def accept_event(event: Any) -> tuple[dict | None, str]:
    """(the CloudTrail record, "") when the event can be trusted, else (None, why not)."""
    if not isinstance(event, dict):
        return None, "not a JSON object"
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith("aws."):
        return None, f"source {source!r} is not an AWS service"
    record = event.get("detail")
    if not isinstance(record, dict):
        return None, "no CloudTrail record in detail"
    account = event.get("account")
    if not isinstance(account, str) or record_account(record) != account:
        return None, f"account {account!r} does not match the record's account {record_account(record)!r}"
    return record, ""
