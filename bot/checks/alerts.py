"""What an alert knows about its findings: a mergeable summary and the severity that follows.

PURE. The store keeps each alert's `Summary` as JSON and merges every finding that joins, in
the same transaction that records the membership, so counts are those of the stored rows.
`rootcheck scan --format table` builds the same summaries in memory.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.models import SEVERITIES, Finding
from bot.timeutil import parse_time

SESSION_SPAN = timedelta(hours=12)  # a root session or credentials alert takes calls this long
FAILURE_WINDOW = timedelta(hours=1)
GUESSING_COUNT, GUESSING_SPAN = 10, timedelta(minutes=10)  # failed sign-ins that look like guessing
IPS_KEPT = 200  # distinct addresses remembered per alert (a distributed guess can use thousands)
RISKY_KEPT = 20

# How an alert groups its findings; also what the message says it is.
SESSION, CREDENTIALS, FAILURES, HIGH_RISK, SINGLE, DIGEST = (
    "session", "credentials", "failures", "high_risk", "single", "digest")


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
        return any(times[i + GUESSING_COUNT - 1] - times[i] <= GUESSING_SPAN
                   for i in range(len(times) - GUESSING_COUNT + 1))

    def top_events(self, limit: int) -> list[tuple[str, int]]:
        return sorted(self.events.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if v not in (0, None, [], {}) or k in ("count", "severity")}
        if self.events:
            data["events"] = dict(self.events)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Summary":
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
        self.risky.append({"id": finding.id, "event_name": finding.event_name, "event_time": finding.event_time,
                           "region": finding.region})
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
