"""Root-user detectors over one CloudTrail record (a plain dict).

Every field is read defensively: real records carry placeholders ("...", "redacted"), nulls
and strings where objects are documented, and none of that may crash or hide a root event.
"""

from __future__ import annotations

import json
from typing import Any

from bot.checks.fingerprint import canonical_json, finding_id, valid_account
from bot.models import Clues, Finding
from bot.timeutil import iso_z, parse_time

SIGNIN_SERVICE = "signin.amazonaws.com"


def skip_reason(record: Any) -> str | None:
    """Why a record cannot be judged at all, or None when it can."""
    if not isinstance(record, dict):
        return "not a JSON object"
    identity = record.get("userIdentity")
    if not isinstance(identity, dict) or not _text(identity.get("type")):
        return "no userIdentity.type"
    if not _text(record.get("eventName")):
        return "no eventName"
    return None


def check_record(record: dict, account_hint: str | None = None) -> Finding | None:
    """The finding a record gives, or None. `account_hint` is the archive path's account folder."""
    if skip_reason(record) is not None:
        return None
    identity = record["userIdentity"]
    if _lower(identity.get("type")) != "root":
        return None
    if record["eventName"] == "ConsoleLogin":
        return _console_login(record, account_hint)
    if _is_service_acting_as_root(record, identity):
        return None
    return _root_activity(record, identity, account_hint)


def record_account(record: dict, account_hint: str | None = None) -> str | None:
    """recipientAccountId, else userIdentity.accountId, else the archive folder's account."""
    identity = record.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    return (
        valid_account(record.get("recipientAccountId"))
        or valid_account(identity.get("accountId"))
        or valid_account(account_hint)
    )


def record_time(record: dict) -> str | None:
    parsed = parse_time(record.get("eventTime"))
    return iso_z(parsed) if parsed else None


def _console_login(record: dict, account_hint: str | None) -> Finding:
    outcome = _lower(_as_dict(record.get("responseElements")).get("ConsoleLogin"))
    ip = _text(record.get("sourceIPAddress")) or "an unknown address"
    if outcome == "failure":
        return _finding(
            record,
            account_hint,
            "root_console_login_failed",
            "medium",
            None,
            f"Failed root user console sign-in from {ip}.",
        )
    if outcome is None:
        return _finding(
            record,
            account_hint,
            "root_console_login",
            "critical",
            None,
            f"Root user console sign-in from {ip}; the outcome was not recorded, so it is treated as a success.",
        )
    mfa = _yes_no(_as_dict(record.get("additionalEventData")).get("MFAUsed"))
    how = "with MFA" if mfa else "without MFA"
    return _finding(
        record,
        account_hint,
        "root_console_login",
        "high" if mfa else "critical",
        mfa,
        f"Root user signed in to the console {how} from {ip}.",
    )


def _is_service_acting_as_root(record: dict, identity: dict) -> bool:
    """AWS services (ELB, Auto Scaling, KMS rotation) act as root; people do not show up this way."""
    if _lower(record.get("eventType")) == "awsserviceevent":
        return True
    invoked_by = _lower(identity.get("invokedBy"))
    return bool(invoked_by) and invoked_by != SIGNIN_SERVICE


def _root_activity(record: dict, identity: dict, account_hint: str | None) -> Finding:
    attributes = _as_dict(_as_dict(identity.get("sessionContext")).get("attributes"))
    mfa = _yes_no(attributes.get("mfaAuthenticated"))
    failed = _failed(record)
    read_only = _yes_no(record.get("readOnly")) is True
    call = "{}:{}".format(_text(record.get("eventSource")) or "unknown", _text(record.get("eventName")))
    notes = [note for flag, note in ((read_only, "read-only"), (failed, "failed")) if flag]
    if _lower(identity.get("invokedBy")) == SIGNIN_SERVICE:
        notes.append("from the console")
    suffix = f" ({', '.join(notes)})" if notes else ""
    severity = "medium" if failed or read_only else "high"
    return _finding(
        record,
        account_hint,
        "root_activity",
        severity,
        mfa,
        f"The root user called {call}{suffix}.",
        _clues(record, identity, read_only, failed),
    )


def _clues(record: dict, identity: dict, read_only: bool, failed: bool) -> Clues:
    console = (
        _yes_no(record.get("sessionCredentialFromConsole")) is True
        or _lower(identity.get("invokedBy")) == SIGNIN_SERVICE
    )
    return Clues(access_key_id=_text(identity.get("accessKeyId")), console=console, read_only=read_only, failed=failed)


def _failed(record: dict) -> bool:
    if _text(record.get("errorCode")) or _text(record.get("errorMessage")):
        return True
    response = _as_dict(record.get("responseElements"))
    return any(_lower(value) == "failure" for value in response.values())


def _finding(
    record: dict,
    account_hint: str | None,
    kind: str,
    severity: str,
    mfa: bool | None,
    detail: str,
    clues: Clues | None = None,
) -> Finding:
    account = record_account(record, account_hint)
    event_id = _text(record.get("eventID"))
    return Finding(
        id=finding_id("cloudtrail", account, kind, event_id or canonical_json(record)),
        kind=kind,
        severity=severity,
        account_id=account,
        source="cloudtrail",
        event_id=event_id,
        event_name=_text(record.get("eventName")),
        event_time=record_time(record),
        region=_text(record.get("awsRegion")),
        source_ip=_text(record.get("sourceIPAddress")),
        user_agent=_text(record.get("userAgent")),
        mfa_used=mfa,
        detail=detail,
        clues=clues or Clues(failed=kind == "root_console_login_failed"),
    )


def _as_dict(value: Any) -> dict:
    """An object field that may arrive as an object, a JSON string, null or junk."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) and value else None


def _lower(value: Any) -> str | None:
    text = _text(value)
    return text.strip().lower() if text else None


def _yes_no(value: Any) -> bool | None:
    """`Yes`, `YES`, `true`, True → True; `No`, `false`, False → False; anything else → None."""
    if isinstance(value, bool):
        return value
    text = _lower(value)
    if text in ("yes", "true"):
        return True
    if text in ("no", "false"):
        return False
    return None
