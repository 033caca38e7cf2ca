"""Plain data shared by every layer: stdlib only, so the pure core stays pure."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.timeutil import parse_time

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
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# Alerts: the unit of attention (grouping rules in bot/checks/grouping.py) -------------------------
SESSION_SPAN = timedelta(hours=12)  # a root session or credentials alert takes calls this long
FAILURE_WINDOW = timedelta(hours=1)
GUESSING_COUNT, GUESSING_SPAN = 10, timedelta(minutes=10)  # failed sign-ins that look like guessing
IPS_KEPT = 200  # distinct addresses remembered per alert (a distributed guess can use thousands)
RISKY_KEPT = 20

# How an alert groups its findings; also what the message says it is.
SESSION, CREDENTIALS, FAILURES, HIGH_RISK, SINGLE, DIGEST = (
    "session",
    "credentials",
    "failures",
    "high_risk",
    "single",
    "digest",
)


def rank(severity: str) -> int:
    """0 for critical … 3 for low; unknown values sort last."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def highest(*severities: str) -> str:
    return min(severities, key=rank)


@dataclass
class Summary:
    """Everything a message shows about an alert's findings; `add` merges one more."""

    count: int = 0
    severity: str = "low"
    calls: int = 0
    read_only: int = 0
    failed_calls: int = 0
    events: Counter = field(default_factory=Counter)
    regions: list[str] = field(default_factory=list)
    first: str | None = None
    last: str | None = None
    first_call: str | None = None
    last_call: str | None = None
    ips: list[str] = field(default_factory=list)
    more_ips: int = 0
    keys: list[str] = field(default_factory=list)
    risky: list[dict] = field(default_factory=list)
    more_risky: int = 0
    failure_times: list[str] = field(default_factory=list)
    failures_before: int = 0

    def add(self, finding: Finding, high_risk: frozenset[str] = frozenset()) -> None:
        self.count += 1
        self.severity = highest(self.severity, finding.severity) if self.count > 1 else finding.severity
        when = finding.event_time
        if when:
            self.first = min(self.first or when, when)
            self.last = max(self.last or when, when)
        self._remember_ip(finding.source_ip)
        if finding.kind == "root_console_login_failed" and when:
            self.failure_times.append(when)
            self.failure_times.sort()
        if finding.kind != "root_activity":
            return
        clues = finding.clues
        self.calls += 1
        if when:
            self.first_call = min(self.first_call or when, when)
            self.last_call = max(self.last_call or when, when)
        self.read_only += bool(clues and clues.read_only)
        self.failed_calls += bool(clues and clues.failed)
        self.events[finding.event_name or "?"] += 1
        if finding.region and finding.region not in self.regions:
            self.regions.append(finding.region)
            self.regions.sort()
        if clues and clues.access_key_id and clues.access_key_id not in self.keys:
            self.keys.append(clues.access_key_id)
        if finding.event_name in high_risk:
            self._remember_risky(finding)

    def guessing(self) -> bool:
        """10 or more failed sign-ins within any 10 minutes."""
        times = [t for t in (parse_time(w) for w in self.failure_times) if t is not None]
        return any(
            times[i + GUESSING_COUNT - 1] - times[i] <= GUESSING_SPAN for i in range(len(times) - GUESSING_COUNT + 1)
        )

    def top_events(self, limit: int) -> list[tuple[str, int]]:
        return sorted(self.events.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if v not in (0, None, [], {}) or k in ("count", "severity")}
        if self.events:
            data["events"] = dict(self.events)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Summary:
        data = dict(data or {})
        data["events"] = Counter(data.get("events") or {})
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def _remember_ip(self, ip: str | None) -> None:
        if not ip or ip in self.ips:
            return
        if len(self.ips) < IPS_KEPT:
            self.ips.append(ip)
        else:
            self.more_ips += 1

    def _remember_risky(self, finding: Finding) -> None:
        if len(self.risky) >= RISKY_KEPT:
            self.more_risky += 1
            return
        self.risky.append(
            {
                "id": finding.id,
                "event_name": finding.event_name,
                "event_time": finding.event_time,
                "region": finding.region,
            }
        )
        self.risky.sort(key=lambda r: (r["event_time"] or "", r["id"]))


@dataclass
class Alert:
    """An alert as grouping sees it; the store persists it, `scan --format table` prints it."""

    id: str
    account_id: str | None
    kind: str  # the kind of the finding that opened it
    grouping: str  # SESSION, CREDENTIALS, FAILURES, HIGH_RISK or SINGLE
    start: datetime | None  # sign-in, first failure, first call
    key: str | None = None  # credentials: the access key, or the source IP without one
    ip: str | None = None  # session: the sign-in's source IP
    opened_at: str | None = None  # event time of the finding that opened it (the order of posting)
    console: bool = False  # opened by a console call (credentials whose sign-in is not in view)
    escalations: set[str] = field(default_factory=set)
    summary: Summary = field(default_factory=Summary)

    @property
    def end(self) -> datetime | None:
        """Until when a finding may still join (by its event time)."""
        if self.start is None:
            return None
        return self.start + (FAILURE_WINDOW if self.grouping == FAILURES else SESSION_SPAN)

    def severity(self, expected: bool = False) -> str:
        """The highest of the findings' severities and the escalations; only `expect` lowers it.

        A high-risk call's own alert (and a credentials alert that call opened) stays critical
        when expected. Failed sign-ins: `medium`, `high` when they look like guessing. A root
        session after 10 or more failed sign-ins in the hour before it is `critical`, MFA or not.
        """
        summary = self.summary
        severity = summary.severity if summary.count else "low"
        if self.grouping == FAILURES:
            severity = "high" if summary.guessing() else highest(severity, "medium")
        if self.grouping == SESSION and summary.failures_before >= GUESSING_COUNT:
            severity = "critical"
        if self.escalations:
            severity = "critical"
        if expected:
            return "critical" if "high_risk" in self.escalations else "low"
        return severity


def failures_before(failure_times: list[datetime], signin: datetime) -> int:
    """Failed sign-ins in the hour before a successful one."""
    return sum(1 for t in failure_times if signin - timedelta(hours=1) <= t < signin)


@dataclass
class AlertRecord:
    """An alert with its Slack message's state, as the store has it; everything renders from this."""

    STATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "state",
        "target",
        "channel",
        "ts",
        "severity",
        "expected_by",
        "expected_reason",
        "resolved_at",
        "acked_by",
        "acked_at",
        "version",
        "shown_version",
        "urgent_version",
        "edited_at",
        "edit_failures",
        "summary_ts",
        "summary_state",
        "summary_shown_version",
        "urgent_since",
        "reminders",
        "next_reminder_at",
        "attempts",
        "last_error",
        "created_at",
        "posted_at",
        "claimed_by",
        "claimed_at",
        "asked_at",
        "confirm_deadline",
        "answer",
        "answered_by",
        "answered_at",
        "answer_reason",
        "escalated_at",
    )

    alert: Alert
    opener: Finding | None
    state: str = "pending"
    target: str | None = None
    channel: str | None = None
    ts: str | None = None
    severity: str = "high"
    expected_by: str | None = None
    expected_reason: str | None = None
    resolved_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    version: int = 1
    shown_version: int = 0
    urgent_version: int = 0  # a person acted: this version is shown at once, not after 10 s
    edited_at: datetime | None = None
    edit_failures: int = 0
    summary_ts: str | None = None
    summary_state: str | None = None
    summary_shown_version: int = 0
    urgent_since: datetime | None = None
    reminders: int = 0
    next_reminder_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    posted_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    asked_at: datetime | None = None  # "was this you?": when the owners were asked
    confirm_deadline: datetime | None = None
    answer: str | None = None  # yes, no
    answered_by: str | None = None
    answered_at: datetime | None = None
    answer_reason: str | None = None
    escalated_at: datetime | None = None  # the admins were called
    owners_asked: tuple[str, ...] = ()
    owners_more: tuple[str, ...] = ()

    @property
    def urgent(self) -> bool:
        return self.urgent_version > self.shown_version

    @property
    def id(self) -> str:
        return self.alert.id

    @property
    def message(self) -> tuple[str, str]:
        """(channel, ts) of the alert's message; only for an alert already in Slack."""
        if self.channel is None or self.ts is None:
            raise ValueError(f"alert {self.id} is not in Slack yet")
        return self.channel, self.ts

    @property
    def account_id(self) -> str | None:
        return self.alert.account_id


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

    Per account and sweep: a "page" part for every LookupEvents page with records (handed over as it
    is read), a "lookups" part per Region searched once all its pages are read (us-east-1's covers both
    its lookups; its errors say whether every page was read), a "report" part when the credential
    report was due, and exactly one "done" part, last, always: it carries the alias or Organizations
    name and the failures of the account as a whole (AssumeRole, ListRegions).
    """

    account: Account
    part: str  # "page" | "lookups" | "report" | "done"
    region: str | None = None  # lookups: the Region searched
    window: Window | None = None  # lookups: the window searched (a cursor may advance to window.end on success)
    records: list[dict] = field(default_factory=list)  # page
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
