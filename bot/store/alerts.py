"""Findings and the alerts they form: one writer at a time groups an account's findings.

`ingest` stores new findings (unique id) and places every finding of the account that is not yet
in an alert, in one transaction that holds the account's lock (a PostgreSQL advisory lock per
account; SQLite's write lock): so two replicas, or the queue and a sweep, never open two alerts
for one session, and an alert's summary always merges exactly the memberships stored with it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from bot.checks.grouping import CLOCK_SKEW, HIGH_RISK_EVENTS, Decision, group
from bot.models import DIGEST, FAILURE_WINDOW, SINGLE, Alert, AlertRecord, Clues, Finding, rank
from bot.store.db import writer
from bot.store.rows import add_reply, to_alert, to_finding, to_record
from bot.store.schema import alert_findings, alerts, expectations, findings
from bot.timeutil import parse_time

URGENT = ("critical", "high")
GROUPED = ("session", "credentials", "failures")  # alerts that later findings may join
COUNTS_FAILURES = ("root_console_login", "root_console_login_failed")


@dataclass
class Placed:
    """What one `ingest` did."""

    new_findings: list[Finding] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    waiting: int = 0
    high_risk: list[tuple[str, datetime | None]] = field(default_factory=list)  # (own alert, event time)


@dataclass(frozen=True)
class Placement:
    """How the running bot places findings: where each account's alerts go, and its settings."""

    target: Callable[[str | None], str | None]
    remind_after: timedelta
    high_risk: frozenset[str] = HIGH_RISK_EVENTS
    wait: bool = True  # console calls wait up to 2 minutes for their sign-in


class Alerts:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin
        self._postgres = engine.dialect.name == "postgresql"

    # placing findings ----------------------------------------------------------------------
    def ingest(
        self, batch: Iterable[Finding], now: datetime, placement: Placement, hold: frozenset[str] = frozenset()
    ) -> Placed:
        """Store new findings once, then place every waiting finding of their accounts.

        Findings of a kind in `hold` (hygiene, coverage gaps of one sweep) are stored but wait for
        `release_held`, which decides between single alerts and a digest.
        """
        placed = Placed()
        by_account: dict[str | None, list[Finding]] = {}
        for finding in batch:
            by_account.setdefault(finding.account_id, []).append(finding)
        for account, found in by_account.items():
            with self._writer(account) as conn:
                placed.new_findings += self._insert_new(conn, found, now, hold)
                self._place(conn, account, now, placement, placed)
        return placed

    def place_waiting(self, now: datetime, placement: Placement) -> Placed:
        """Console calls whose 2-minute wait for a sign-in is over get an alert of their own."""
        placed = Placed()
        with self.engine.connect() as conn:
            accounts = [
                row.account_id
                for row in conn.execute(
                    select(findings.c.account_id)
                    .distinct()
                    .where(
                        findings.c.grouped_at.is_(None),
                        findings.c.held.is_(False),
                        findings.c.created_at <= now - timedelta(minutes=2),
                    )
                )
            ]
        for account in accounts:
            with self._writer(account) as conn:
                self._place(conn, account, now, placement, placed)
        return placed

    def release_held(
        self, finding_ids: list[str], now: datetime, placement: Placement, digest_id: str | None = None
    ) -> None:
        """Held findings become one digest alert (`digest_id`), or each its own alert."""
        if not finding_ids:
            return
        with self._writer(None) as conn:
            members = [
                to_finding(row)
                for row in conn.execute(
                    select(findings).where(findings.c.id.in_(finding_ids), findings.c.held.is_(True))
                )
            ]
            if not members:
                return
            if digest_id is not None:
                alert = Alert(id=digest_id, account_id=None, kind=members[0].kind, grouping=DIGEST, start=None)
                for member in members:
                    alert.summary.add(member)
                self._insert_alert(conn, alert, placement.target(members[0].account_id), now, placement)
                self._add_members(conn, alert.id, [m.id for m in members])
            else:
                for member in members:
                    alert = Alert(
                        id=member.id,
                        account_id=member.account_id,
                        kind=member.kind,
                        grouping=SINGLE,
                        start=None,
                        opened_at=member.event_time,
                    )
                    alert.summary.add(member)
                    self._insert_alert(conn, alert, placement.target(member.account_id), now, placement)
                    self._add_members(conn, alert.id, [member.id])
            conn.execute(
                update(findings).where(findings.c.id.in_([m.id for m in members])).values(held=False, grouped_at=now)
            )

    def held(self) -> list[Finding]:
        """Findings a crashed sweep left waiting for its digest decision."""
        with self.engine.connect() as conn:
            return [to_finding(row) for row in conn.execute(select(findings).where(findings.c.held.is_(True)))]

    def resolve_absent(self, account_id: str, kinds: Iterable[str], present: Iterable[str], now: datetime) -> list[str]:
        """Open findings of these kinds that the latest check no longer shows; their alerts re-render."""
        query = select(findings.c.id).where(
            findings.c.account_id == account_id,
            findings.c.kind.in_(list(kinds)),
            findings.c.resolved_at.is_(None),
            findings.c.id.notin_(list(present)),
        )
        with self.write() as conn:
            ids = [row.id for row in conn.execute(query)]
            if not ids:
                return []
            conn.execute(update(findings).where(findings.c.id.in_(ids)).values(resolved_at=now))
            touched = [
                row.alert_id
                for row in conn.execute(
                    select(alert_findings.c.alert_id).distinct().where(alert_findings.c.finding_id.in_(ids))
                )
            ]
            for alert_id in touched:
                unresolved = conn.execute(
                    select(func.count())
                    .select_from(alert_findings.join(findings, findings.c.id == alert_findings.c.finding_id))
                    .where(alert_findings.c.alert_id == alert_id, findings.c.resolved_at.is_(None))
                ).scalar()
                values: dict[str, Any] = {"version": alerts.c.version + 1}
                if not unresolved:
                    values["resolved_at"] = now
                conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
        return ids

    def touch(self, account_id: str) -> None:
        """Something every alert of the account shows changed (its name): they are edited."""
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(
                    alerts.c.account_id == account_id,
                    alerts.c.acked_at.is_(None),
                    alerts.c.state.in_(("pending", "posting", "posted")),
                )
                .values(version=alerts.c.version + 1)
            )

    def resolve_region_gap(self, account_id: str, region: str | None, now: datetime) -> list[str]:
        """Coverage gaps of this account (of this Region; None: of the whole account) checked again."""
        query = select(findings).where(
            findings.c.account_id == account_id, findings.c.kind == "coverage_gap", findings.c.resolved_at.is_(None)
        )
        with self.engine.connect() as conn:
            gaps = [to_finding(row) for row in conn.execute(query)]
        present = [f.id for f in gaps if f.region != region]
        return self.resolve_absent(account_id, ["coverage_gap"], present, now) if len(present) < len(gaps) else []

    # reading --------------------------------------------------------------------------------
    def get(self, alert_id: str) -> AlertRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            return to_record(conn, row) if row else None

    def members(self, alert_id: str, limit: int = 200) -> list[Finding]:
        query = (
            select(findings)
            .join(alert_findings, alert_findings.c.finding_id == findings.c.id)
            .where(alert_findings.c.alert_id == alert_id)
            .order_by(findings.c.account_id, findings.c.event_time, findings.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [to_finding(row) for row in conn.execute(query)]

    def member_count(self, alert_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(alert_findings.c.alert_id == alert_id)).scalar() or 0

    def alerts_of(self, finding_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return [
                row.alert_id
                for row in conn.execute(
                    select(alert_findings.c.alert_id).where(alert_findings.c.finding_id == finding_id)
                )
            ]

    def open_alerts(self, accounts: set[str] | None = None, limit: int = 50) -> list[AlertRecord]:
        """Alerts nobody acknowledged that are not resolved, most severe first."""
        query = select(alerts).where(
            alerts.c.acked_at.is_(None), alerts.c.resolved_at.is_(None), alerts.c.state != "failed"
        )
        if accounts is not None:
            query = query.where(alerts.c.account_id.in_(sorted(accounts)))
        query = query.order_by(alerts.c.rank, alerts.c.opened_at.desc(), alerts.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [to_record(conn, row) for row in conn.execute(query).all()]

    def counts(self) -> dict[str, int]:
        query = (
            select(alerts.c.state, func.count())
            .where(alerts.c.acked_at.is_(None), alerts.c.resolved_at.is_(None))
            .group_by(alerts.c.state)
        )
        with self.engine.connect() as conn:
            return {state: count for state, count in conn.execute(query)}

    # the writer -----------------------------------------------------------------------------
    @contextmanager
    def _writer(self, account: str | None) -> Iterator[Connection]:
        """A transaction holding the grouping lock of one account (None: the digest decision):
        PostgreSQL's advisory lock for the account; SQLite's write lock, taken at BEGIN."""
        with self.write() as conn:
            if self._postgres:
                key = zlib.crc32(f"rootcheck-group:{account or ''}".encode())
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield conn

    def _insert_new(self, conn: Connection, found: list[Finding], now: datetime, hold: frozenset[str]) -> list[Finding]:
        unique = list({f.id: f for f in found}.values())
        known = {row.id for row in conn.execute(select(findings.c.id).where(findings.c.id.in_([f.id for f in unique])))}
        new = [f for f in unique if f.id not in known]
        if new:
            conn.execute(insert(findings), [_finding_row(f, now, f.kind in hold) for f in new])
        return new

    def _place(
        self, conn: Connection, account: str | None, now: datetime, placement: Placement, placed: Placed
    ) -> None:
        waiting_rows = conn.execute(
            select(findings).where(
                findings.c.account_id == account if account else findings.c.account_id.is_(None),
                findings.c.grouped_at.is_(None),
                findings.c.held.is_(False),
            )
        ).all()
        if not waiting_rows:
            return
        waiting = [to_finding(row) for row in waiting_rows]
        seen_at = {row.id: row.created_at for row in waiting_rows}
        times = [t for t in (parse_time(f.event_time) for f in waiting if f.event_time) if t is not None]
        oldest = min(times, default=now)
        open_rows = self._open_alerts(conn, account, oldest)
        known = {row.id: to_alert(row) for row in open_rows}
        # Only a sign-in ("after N failed sign-ins") or a failure (which recounts the sign-ins after it) needs
        # the failed sign-ins around it: a page of calls, most of a session, reads none of them.
        failures = (
            self._failure_times(conn, account, oldest, max(times, default=now))
            if any(f.kind in COUNTS_FAILURES for f in waiting)
            else []
        )
        outcome = group(
            waiting,
            known.values(),
            now=now if placement.wait else None,
            seen_at=seen_at,
            high_risk=placement.high_risk,
            known_failures=failures,
        )
        for alert in outcome.alerts.values():
            if alert.id not in known:
                self._insert_alert(conn, alert, placement.target(alert.account_id), now, placement)
                placed.opened.append(alert.id)
        self._record_decisions(conn, outcome.decisions, now, placement, placed)
        for alert in outcome.alerts.values():
            if alert.id in known:
                self._update_alert(conn, alert, now, placement, known_row=_row_of(open_rows, alert.id))
                placed.changed.append(alert.id)

    def _open_alerts(self, conn: Connection, account: str | None, oldest: datetime) -> list[Any]:
        if account is None:
            return []
        return list(
            conn.execute(
                select(alerts).where(
                    alerts.c.account_id == account,
                    alerts.c.grouping.in_(GROUPED),
                    alerts.c.window_end >= oldest - CLOCK_SKEW,
                )
            ).all()
        )

    def _failure_times(
        self, conn: Connection, account: str | None, oldest: datetime, newest: datetime
    ) -> list[datetime]:
        if account is None:
            return []
        return [
            row.event_time
            for row in conn.execute(
                select(findings.c.event_time).where(
                    findings.c.account_id == account,
                    findings.c.kind == "root_console_login_failed",
                    findings.c.grouped_at.isnot(None),
                    findings.c.event_time >= oldest - FAILURE_WINDOW,
                    findings.c.event_time <= newest + FAILURE_WINDOW,
                )
            )
        ]

    def _record_decisions(
        self, conn: Connection, decisions: list[Decision], now: datetime, placement: Placement, placed: Placed
    ) -> None:
        grouped = [d for d in decisions if not d.waiting]
        placed.waiting += len(decisions) - len(grouped)
        pairs = [{"alert_id": a, "finding_id": d.finding.id} for d in grouped for a in d.alerts]
        if pairs:
            conn.execute(insert(alert_findings), pairs)
        if grouped:
            conn.execute(
                update(findings).where(findings.c.id.in_([d.finding.id for d in grouped])).values(grouped_at=now)
            )
        for decision in grouped:
            finding = decision.finding
            if decision.new_ip:
                add_reply(
                    conn,
                    f"newip:{decision.alerts[0]}:{decision.new_ip}",
                    decision.alerts[0],
                    {
                        "kind": "new_ip",
                        "ip": decision.new_ip,
                        "key": finding.clues.access_key_id if finding.clues else None,
                        "event_name": finding.event_name,
                        "event_time": finding.event_time,
                    },
                    now,
                )
            if finding.event_name in placement.high_risk:  # its own alert has its id
                placed.high_risk.append((finding.id, parse_time(finding.event_time or "")))

    def _add_members(self, conn: Connection, alert_id: str, finding_ids: list[str]) -> None:
        conn.execute(insert(alert_findings), [{"alert_id": alert_id, "finding_id": f} for f in finding_ids])

    def _insert_alert(
        self, conn: Connection, alert: Alert, target: str | None, now: datetime, placement: Placement
    ) -> None:
        opened = parse_time(alert.opened_at) if alert.opened_at else None
        expected = _expectation(conn, alert.account_id, opened)
        severity = alert.severity(expected=expected is not None)
        urgent = severity in URGENT and expected is None
        conn.execute(
            insert(alerts).values(
                id=alert.id,
                account_id=alert.account_id,
                kind=alert.kind,
                grouping=alert.grouping,
                group_key=alert.key,
                ip=alert.ip,
                console=alert.console,
                window_start=alert.start,
                window_end=alert.end,
                opened_at=opened,
                escalations=json.dumps(sorted(alert.escalations)),
                summary=json.dumps(alert.summary.to_json()),
                count=alert.summary.count,
                severity=severity,
                rank=rank(severity),
                severity_log=json.dumps([{"at": now.isoformat(), "severity": severity}]),
                expected_by=expected[0] if expected else None,
                expected_reason=expected[1] if expected else None,
                version=1,
                shown_version=0,
                urgent_version=0,
                edit_failures=0,
                summary_shown_version=0,
                urgent_since=now if urgent else None,
                reminders=0,
                next_reminder_at=now + placement.remind_after if urgent else None,
                state="pending",
                target=target,
                attempts=0,
                created_at=now,
            )
        )

    def _update_alert(self, conn: Connection, alert: Alert, now: datetime, placement: Placement, known_row) -> None:
        expected = known_row.expected_by is not None
        severity = alert.severity(expected=expected)
        values: dict[str, Any] = {
            "summary": json.dumps(alert.summary.to_json()),
            "count": alert.summary.count,
            "version": alerts.c.version + 1,
        }
        if severity != known_row.severity:
            log = json.loads(known_row.severity_log or "[]") + [{"at": now.isoformat(), "severity": severity}]
            values.update(severity=severity, rank=rank(severity), severity_log=json.dumps(log))
            if severity in URGENT and known_row.urgent_since is None and not expected:
                values.update(urgent_since=now, next_reminder_at=now + placement.remind_after)
            if rank(severity) < rank(known_row.severity) and known_row.acked_at is not None:
                add_reply(
                    conn,
                    f"rise:{alert.id}:{severity}",
                    alert.id,
                    {"kind": "raised", "severity": severity, "count": alert.summary.count},
                    now,
                )
        conn.execute(update(alerts).where(alerts.c.id == alert.id).values(**values))


def _expectation(conn: Connection, account_id: str | None, at: datetime | None) -> tuple[str, str] | None:
    if account_id is None or at is None:
        return None
    row = conn.execute(
        select(expectations)
        .where(
            expectations.c.account_id == account_id,
            expectations.c.starts_at <= at,
            expectations.c.ends_at >= at,
            expectations.c.cancelled_at.is_(None),
        )
        .order_by(expectations.c.id.desc())
        .limit(1)
    ).first()
    return (row.user_id, row.reason) if row else None


def _finding_row(finding: Finding, now: datetime, held: bool) -> dict[str, Any]:
    clues = finding.clues or Clues()
    return {
        "id": finding.id,
        "kind": finding.kind,
        "severity": finding.severity,
        "account_id": finding.account_id,
        "payload": json.dumps(finding.to_dict()),
        "event_time": parse_time(finding.event_time or ""),
        "created_at": now,
        "event_name": finding.event_name,
        "source_ip": finding.source_ip,
        "access_key_id": clues.access_key_id,
        "console": clues.console,
        "read_only": clues.read_only,
        "failed": clues.failed,
        "grouped_at": None,
        "held": held,
    }


def _row_of(rows: list, alert_id: str) -> Any:
    return next(row for row in rows if row.id == alert_id)
