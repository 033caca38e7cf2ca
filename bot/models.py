"""Plain data shared by every layer: stdlib only, so the pure core stays pure."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = (
    "root_console_login",
    "root_console_login_failed",
    "root_activity",
    "root_password_used",
    "root_access_key_active",
    "root_mfa_disabled",
    "coverage_gap",
)
HYGIENE_KINDS = frozenset({"root_password_used", "root_access_key_active", "root_mfa_disabled"})
SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Clues:
    """What grouping reads from a CloudTrail record beyond the finding's JSON line.

    Kept with each stored finding, so a session can be rebuilt from the store alone: the root
    session key (console credentials are refreshed, so a session has several), the console
    markers (`sessionCredentialFromConsole`, `invokedBy` signin), read-only and failure.
    """

    access_key_id: str | None = None
    console: bool = False
    read_only: bool = False
    failed: bool = False


@dataclass(frozen=True)
class Finding:
    """One problem worth a human's attention; the field order is the JSON line order.

    `clues` (CloudTrail findings only) is not part of the JSON line or of equality.
    """

    id: str
    kind: str
    severity: str
    account_id: str | None
    source: str
    event_id: str | None = None
    event_name: str | None = None
    event_time: str | None = None
    region: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    mfa_used: bool | None = None
    detail: str = ""
    clues: Clues | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "clues"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Account:
    """An AWS account to sweep; `role_arn` None means "use the base credentials".

    `owners`: Slack user ids (U…/W…), user-group ids (S…) or email addresses, as configured.
    """

    id: str
    name: str | None = None
    channel: str | None = None
    role_arn: str | None = None
    owners: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountError:
    """A failed account is data, never an empty result: who, which AWS code, and the fix."""

    account_id: str
    code: str
    message: str
    hint: str = ""
    region: str | None = None

    def line(self) -> str:
        where = f"{self.account_id}" + (f" ({self.region})" if self.region else "")
        text = f"account {where}: {self.code}: {self.message}"
        return f"{text} - {self.hint}" if self.hint else text


@dataclass
class SweepResult:
    """What one sweep saw: the findings, the accounts that failed, and what was checked."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[AccountError] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


SIGNIN_REGION = "us-east-1"  # where AWS records root sign-ins and global-service calls: always searched


@dataclass(frozen=True)
class Window:
    """The time range one account's lookups in one Region cover."""

    start: datetime
    end: datetime


@dataclass
class Evidence:
    """One finished piece of one account's evidence, handed over as soon as it is complete.

    Per account and sweep: a "lookups" part per Region searched (us-east-1's covers both its lookups;
    with an error, it still carries the records read before the failure), a "report" part when the
    credential report was due, and exactly one "done" part, last, always: it carries the alias or
    Organizations name and the failures of the account as a whole (AssumeRole, ListRegions).
    """

    account: Account
    part: str  # "lookups" | "report" | "done"
    region: str | None = None  # lookups: the Region searched
    window: Window | None = None  # lookups: the window searched (a cursor may advance to window.end on success)
    records: list[dict] = field(default_factory=list)  # lookups
    report_row: dict | None = None  # report
    report_time: datetime | None = None  # report
    alias: str | None = None  # done: the alias or Organizations name when known
    errors: list[AccountError] = field(default_factory=list)  # what failed in this part
    skipped: int = 0


@dataclass
class Delivery:
    """One message's state: a finding's alert, or a digest of several findings."""

    id: str
    is_digest: bool
    state: str
    target: str | None
    channel: str | None = None
    ts: str | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    posted_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    finding: Finding | None = None
    finding_ids: list[str] = field(default_factory=list)
    kind: str = ""
    expected_by: str | None = None
    expected_reason: str | None = None
    resolved_at: datetime | None = None
    reminders: int = 0


@dataclass(frozen=True)
class Document:
    """One named unit of offline input. `path` is set for local files, so workers can read them."""

    name: str
    path: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Check:
    """One line of `rootcheck doctor`: what was checked, whether it works, and how to fix it."""

    area: str
    subject: str
    ok: bool
    detail: str
    fix: str = ""
