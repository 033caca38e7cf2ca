"""Which alert each finding opens or joins: one root session, one alert.

PURE: findings (with their clues) and the account's open alerts in, decisions out; no I/O and no
clock (`now` is passed in; None means every record is at hand, as in a scan over files).

The rules are the interface's ("Alerts: what reaches people"):
- a `root_console_login` opens a session; a root call joins the session its access key already
  joined (within 12 h after the sign-in), else the latest sign-in at or before it (5 minutes of
  clock skew) from the same source IP when it came from the console;
- root calls without a sign-in in view group by access key (or, without one, source IP) for 12 h;
- failed sign-ins group per account in fixed one-hour windows;
- a high-risk call always has an alert of its own as well, unless it opened its credentials alert;
- a console call whose sign-in is not in view yet waits up to 2 minutes for it (running bot only).
Sign-ins are placed first, so a call a few seconds "before" its sign-in (clock skew) still joins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.models import CREDENTIALS, FAILURES, HIGH_RISK, SESSION, SESSION_SPAN, SINGLE, Alert, Finding, failures_before
from bot.timeutil import parse_time

CLOCK_SKEW = timedelta(minutes=5)
SIGNIN_WAIT = timedelta(minutes=2)
HIGH_RISK_EVENTS = frozenset(
    {
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "PutEventSelectors",
        "CreateAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
        "CloseAccount",
        "LeaveOrganization",
        "DeleteDetector",
        "StopConfigurationRecorder",
        "DeleteConfigurationRecorder",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
    }
)


@dataclass
class Decision:
    """What happened to one finding: the alerts it is counted in (the first it opened, if any)."""

    finding: Finding
    alerts: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    waiting: bool = False
    new_ip: str | None = None  # a session key seen from a new source IP: called out in that thread


@dataclass
class Outcome:
    decisions: list[Decision]
    alerts: dict[str, Alert]  # every alert that was opened or changed, by id
    sessions_recounted: set[str] = field(default_factory=set)  # "after N failed sign-ins" changed


def group(
    findings: Sequence[Finding],
    open_alerts: Iterable[Alert],
    *,
    now: datetime | None = None,
    seen_at: dict[str, datetime] | None = None,
    high_risk: frozenset[str] = HIGH_RISK_EVENTS,
    known_failures: Iterable[datetime] = (),
) -> Outcome:
    """Place each finding. `open_alerts`: the accounts' alerts that may still take findings.

    `seen_at`: when the running bot first saw each finding (console calls wait 2 minutes from then
    for their sign-in); with `now` None nothing waits. `known_failures`: event times of failed
    sign-ins already stored, for "after N failed sign-ins".
    """
    grouper = _Grouper(list(open_alerts), now, seen_at or {}, high_risk, list(known_failures))
    ordered = sorted(findings, key=_order)
    decisions = [grouper.place(finding) for finding in ordered]
    return Outcome(decisions, grouper.changed, grouper.recounted)


def console_markers(finding: Finding) -> bool:
    return bool(finding.clues and finding.clues.console)


def _order(finding: Finding) -> tuple:
    """Sign-ins first (clock skew), then everything by event time, oldest first; ids break ties."""
    return (finding.kind != "root_console_login", finding.event_time or "", finding.id)


class _Grouper:
    def __init__(
        self,
        alerts: list[Alert],
        now: datetime | None,
        seen_at: dict[str, datetime],
        high_risk: frozenset[str],
        failures: list[datetime],
    ):
        self.alerts = {alert.id: alert for alert in alerts}
        self.now = now
        self.seen_at = seen_at
        self.high_risk = high_risk
        self.failures = sorted(failures)
        self.changed: dict[str, Alert] = {}
        self.recounted: set[str] = set()

    def place(self, finding: Finding) -> Decision:
        decision = Decision(finding)
        when = parse_time(finding.event_time) if finding.event_time else None
        if finding.kind == "root_console_login":
            self._new_alert(decision, SESSION, when, ip=finding.source_ip)
        elif finding.kind == "root_console_login_failed":
            self._failure(decision, when)
        elif finding.kind == "root_activity":
            self._activity(decision, when)
        else:
            self._new_alert(decision, SINGLE, when)
        return decision

    # sign-ins and failures ------------------------------------------------------------------
    def _failure(self, decision: Decision, when: datetime | None) -> None:
        finding = decision.finding
        # A late failure can open a window that overlaps a later one: the later (existing) one keeps its own.
        window = next(
            (a for start, end, a in reversed(self._of(finding, FAILURES)) if when is not None and start <= when < end),
            None,
        )
        if window is None:
            self._new_alert(decision, FAILURES, when)
        else:
            self._join(decision, window)
        if when is None:
            return
        self.failures.append(when)
        self.failures.sort()
        for start, _, session in self._of(finding, SESSION):  # a late failure changes "after N failed sign-ins"
            if when < start <= when + timedelta(hours=1):
                session.summary.failures_before = failures_before(self.failures, start)
                self._touch(session)
                self.recounted.add(session.id)

    # root calls -----------------------------------------------------------------------------
    def _activity(self, decision: Decision, when: datetime | None) -> None:
        finding = decision.finding
        risky = finding.event_name in self.high_risk
        home = self._session_for(finding, when)
        if home is None and self._waits(finding, risky):
            decision.waiting = True
            return
        if home is None:
            home = self._credentials_for(finding, when)
        if home is None:
            alert = self._new_alert(decision, CREDENTIALS, when, key=self._credentials_key(finding))
            alert.console = console_markers(finding)
            if risky:  # its own alert is the one it opened: one call never makes two messages
                alert.escalations.add("high_risk")
            return
        self._join(decision, home)
        if risky:
            self._new_alert(decision, HIGH_RISK, when).escalations.add("high_risk")

    def _session_for(self, finding: Finding, when: datetime | None) -> Alert | None:
        key = finding.clues.access_key_id if finding.clues else None
        if when is None:
            return None
        in_span = [
            (start, s) for start, end, s in reversed(self._of(finding, SESSION)) if start - CLOCK_SKEW <= when <= end
        ]
        by_key = next((s for _, s in in_span if key and key in s.summary.keys), None)
        if by_key is not None or not console_markers(finding):
            return by_key
        return next(
            (s for start, s in in_span if start <= when + CLOCK_SKEW and s.ip and s.ip == finding.source_ip), None
        )

    def _credentials_for(self, finding: Finding, when: datetime | None) -> Alert | None:
        key = self._credentials_key(finding)
        if key is None or when is None:
            return None
        return next(
            (a for start, _, a in self._of(finding, CREDENTIALS) if a.key == key and abs(when - start) <= SESSION_SPAN),
            None,
        )

    @staticmethod
    def _credentials_key(finding: Finding) -> str | None:
        return (finding.clues.access_key_id if finding.clues else None) or finding.source_ip

    def _waits(self, finding: Finding, risky: bool) -> bool:
        """A console call with no sign-in in view waits for it, in the running bot, for 2 minutes."""
        if self.now is None or risky or not console_markers(finding):
            return False
        seen = self.seen_at.get(finding.id, self.now)
        return self.now < seen + SIGNIN_WAIT

    # bookkeeping ----------------------------------------------------------------------------
    def _of(self, finding: Finding, grouping: str) -> list[tuple[datetime, datetime, Alert]]:
        """(start, end, alert) of the account's alerts of one grouping that have a window, oldest first."""
        timed = [
            (a.start, a.end, a)
            for a in self.alerts.values()
            if a.grouping == grouping and a.account_id == finding.account_id
        ]
        return sorted(
            ((start, end, a) for start, end, a in timed if start is not None and end is not None),
            key=lambda item: (item[0], item[2].id),
        )

    def _new_alert(
        self, decision: Decision, grouping: str, when: datetime | None, key: str | None = None, ip: str | None = None
    ) -> Alert:
        finding = decision.finding
        alert = Alert(
            id=finding.id,
            account_id=finding.account_id,
            kind=finding.kind,
            grouping=grouping,
            start=when,
            key=key,
            ip=ip,
            opened_at=finding.event_time,
        )
        if grouping == SESSION and when is not None:
            alert.summary.failures_before = failures_before(self.failures, when)
        self.alerts[alert.id] = alert
        decision.opened.append(alert.id)
        self._join(decision, alert)
        return alert

    def _join(self, decision: Decision, alert: Alert) -> None:
        finding = decision.finding
        if (
            alert.grouping == SESSION
            and finding.kind == "root_activity"
            and finding.source_ip
            and alert.summary.count
            and finding.source_ip not in alert.summary.ips
        ):
            decision.new_ip = finding.source_ip
        alert.summary.add(finding, self.high_risk)
        decision.alerts.append(alert.id)
        self._touch(alert)

    def _touch(self, alert: Alert) -> None:
        self.changed[alert.id] = alert
