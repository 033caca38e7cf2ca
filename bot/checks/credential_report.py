"""Root-credential hygiene from the IAM credential report's `<root_account>` row.

AWS writes `not_supported`, `N/A` and `no_information` in date and boolean columns; these
mean "unknown" or "none", never a crash. Root has no password when `password_enabled` is
`false` or `password_last_used` is `N/A` (centralized root access).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from bot.checks.fingerprint import finding_id, valid_account
from bot.models import Finding
from bot.timeutil import iso_z, parse_time

ROOT_USER = "<root_account>"
REQUIRED_COLUMNS = (
    "user",
    "arn",
    "password_enabled",
    "password_last_used",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_2_active",
    "access_key_2_last_rotated",
)
_ROOT_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):root$")


def parse_report(text: str) -> list[dict[str, str]]:
    """Rows of a credential report CSV. Raises ValueError when the header is not there."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"not an IAM credential report (missing columns: {', '.join(missing)})")
    return [row for row in reader if row.get("user")]


def root_row(rows: list[dict[str, str]]) -> dict[str, str] | None:
    return next((row for row in rows if row.get("user") == ROOT_USER), None)


def report_account(row: dict[str, str]) -> str | None:
    match = _ROOT_ARN.match(row.get("arn") or "")
    return valid_account(match.group(1)) if match else None


def check_root_row(
    row: dict[str, str], since: datetime | None, mfa_first_seen: str | None = None, account_id: str | None = None
) -> list[Finding]:
    """Findings for the root row.

    `since`: password use at or after it counts (None: any recorded use counts).
    `mfa_first_seen`: when the current run of reports first showed MFA off; it keys the id,
    so a problem that is fixed and comes back is a new finding.
    """
    account = account_id or report_account(row)
    findings = []
    used = parse_time(row.get("password_last_used", ""))
    if used is not None and (since is None or used >= since):
        findings.append(
            _finding(
                account,
                "root_password_used",
                "high",
                [iso_z(used)],
                f"The root user's password was last used at {iso_z(used)}.",
            )
        )
    for slot in ("1", "2"):
        if _flag(row.get(f"access_key_{slot}_active")):
            rotated = row.get(f"access_key_{slot}_last_rotated") or ""
            findings.append(
                _finding(
                    account,
                    "root_access_key_active",
                    "high",
                    [slot, rotated],
                    f"The root user has an active access key (slot {slot}, created {rotated or 'at an unknown time'}).",
                )
            )
    if not _flag(row.get("mfa_active")) and (has_password(row) or _has_active_key(row)):
        findings.append(
            _finding(
                account,
                "root_mfa_disabled",
                "critical",
                [mfa_first_seen or ""],
                "The root user has credentials but no MFA device.",
            )
        )
    return findings


def has_password(row: dict[str, str]) -> bool:
    """`not_supported` (older reports) means unknown: assume a password unless N/A says none."""
    enabled = (row.get("password_enabled") or "").strip().lower()
    last_used = (row.get("password_last_used") or "").strip().lower()
    return enabled != "false" and last_used != "n/a"


def _has_active_key(row: dict[str, str]) -> bool:
    return _flag(row.get("access_key_1_active")) or _flag(row.get("access_key_2_active"))


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _finding(account: str | None, kind: str, severity: str, evidence: list[str], detail: str) -> Finding:
    return Finding(
        id=finding_id("credential_report", account, kind, *evidence),
        kind=kind,
        severity=severity,
        account_id=account,
        source="credential_report",
        detail=detail,
    )
