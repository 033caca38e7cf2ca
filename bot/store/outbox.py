"""The outbox: every finding is stored (unique id) before anything is posted, then claimed,
posted and recorded. A row in `posting` after a crash is reconciled against Slack's history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.models import Delivery, Finding
from bot.store.schema import digests, findings
from bot.timeutil import parse_time

REMINDED_SEVERITIES = ("critical", "high")


def _delivery(row: Any, is_digest: bool) -> Delivery:
    m = row._mapping
    base = Delivery(id=m["id"], is_digest=is_digest, state=m["state"], target=m["target"], channel=m["channel"],
                    ts=m["ts"], acked_by=m["acked_by"], acked_at=m["acked_at"], posted_at=m["posted_at"],
                    attempts=m["attempts"],
                    last_error=m["last_error"], kind=m["kind"])
    if is_digest:
        base.finding_ids = json.loads(m["finding_ids"])
    else:
        base.finding = Finding.from_dict(json.loads(m["payload"]))
        base.expected_by, base.expected_reason = m["expected_by"], m["expected_reason"]
        base.resolved_at, base.reminders = m["resolved_at"], m["reminders"]
    return base


class Outbox:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, finding: Finding, target: str | None, now: datetime, expected: tuple[str, str] | None = None,
            remind_at: datetime | None = None, held: bool = False) -> bool:
        """Store a finding once; False when its id is already known (nothing changes).

        `held` rows wait (not posted) until the sweep decides whether they go out in a digest.
        """
        row = {"id": finding.id, "kind": finding.kind, "severity": finding.severity,
               "account_id": finding.account_id, "payload": json.dumps(finding.to_dict()), "target": target,
               "state": "held" if held else "pending", "event_time": parse_time(finding.event_time), "created_at": now,
               "expected_by": expected[0] if expected else None, "expected_reason": expected[1] if expected else None,
               "next_reminder_at": remind_at, "needs_update": False, "attempts": 0, "reminders": 0}
        try:
            with self.engine.begin() as conn:
                conn.execute(findings.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def add_digest(self, digest_id: str, kind: str, target: str | None, finding_ids: list[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(digests.insert().values(id=digest_id, kind=kind, target=target, state="pending",
                                                 finding_ids=json.dumps(finding_ids), created_at=now,
                                                 needs_update=False, attempts=0))
            conn.execute(update(findings).where(findings.c.id.in_(finding_ids))
                         .values(digest_id=digest_id, state="digested"))

    def release_held(self, ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(findings).where(findings.c.id.in_(ids), findings.c.state == "held")
                         .values(state="pending"))

    def release_all_held(self) -> int:
        """Rows a crashed sweep left `held` (its digest decision never came): they go out one by one."""
        with self.engine.begin() as conn:
            return conn.execute(update(findings).where(findings.c.state == "held").values(state="pending")).rowcount

    def claim(self, now: datetime, limit: int = 50, per_target: int = 2) -> list[Delivery]:
        """Pending messages that are due, marked `posting` atomically (one claimer wins).

        At most `per_target` per channel, the channels in turn (each one's oldest first): Slack takes
        1 message/s per channel, so a burst in one channel must not hold back the others' alerts.
        """
        claimed = []
        for table, is_digest in ((findings, False), (digests, True)):
            turn = func.row_number().over(partition_by=table.c.target, order_by=(table.c.created_at, table.c.id))
            ranked = select(table.c.id, turn.label("turn")).where(table.c.state == "pending", or_(
                table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now)).subquery()
            due = (select(table, ranked.c.turn).join(ranked, ranked.c.id == table.c.id)
                   .where(ranked.c.turn <= per_target)
                   .order_by(ranked.c.turn, table.c.created_at, table.c.id).limit(limit))
            with self.engine.begin() as conn:
                rows = conn.execute(due).all()
                won = set()
                for row in sorted(rows, key=lambda r: (r.created_at, r.id)):  # one lock order: no deadlocks
                    result = conn.execute(update(table).where(table.c.id == row.id, table.c.state == "pending")
                                          .values(state="posting", attempts=table.c.attempts + 1))
                    if result.rowcount == 1:
                        won.add(row.id)
                claimed += [_delivery(row, is_digest) for row in rows if row.id in won]
        return claimed

    def posted(self, delivery: Delivery, channel: str, ts: str, now: datetime) -> None:
        table = digests if delivery.is_digest else findings
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == delivery.id).values(
                state="posted", channel=channel, ts=ts, posted_at=now, last_error=None, next_attempt_at=None))

    def retry_later(self, delivery: Delivery, error: str, at: datetime) -> None:
        table = digests if delivery.is_digest else findings
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == delivery.id, table.c.state == "posting").values(
                state="pending", last_error=error, next_attempt_at=at))

    def in_posting(self) -> list[Delivery]:
        """Rows a crash may have left between the post and the record."""
        return [_delivery(row, is_digest) for table, is_digest in ((findings, False), (digests, True))
                for row in self._select(select(table).where(table.c.state == "posting"))]

    def get(self, delivery_id: str) -> Delivery | None:
        for table, is_digest in ((findings, False), (digests, True)):
            rows = self._select(select(table).where(table.c.id == delivery_id))
            if rows:
                return _delivery(rows[0], is_digest)
        return None

    def members(self, digest: Delivery) -> list[Delivery]:
        return [_delivery(row, False) for row in self._select(
            select(findings).where(findings.c.id.in_(digest.finding_ids)).order_by(findings.c.account_id))]

    def acknowledge(self, delivery_id: str, user: str, now: datetime) -> bool:
        """Mark acknowledged once; False when it already was (a double click changes nothing)."""
        delivery = self.get(delivery_id)
        if delivery is None or delivery.acked_at is not None or delivery.ts is None:
            return False
        table = digests if delivery.is_digest else findings
        with self.engine.begin() as conn:
            changed = conn.execute(update(table).where(table.c.id == delivery_id, table.c.acked_at.is_(None))
                                   .values(state="acked", acked_by=user, acked_at=now,
                                           needs_update=True)).rowcount == 1
            if changed and delivery.is_digest:
                conn.execute(update(findings).where(findings.c.id.in_(delivery.finding_ids),
                                                    findings.c.acked_at.is_(None))
                             .values(acked_by=user, acked_at=now))
        return changed

    def open_alerts(self, limit: int = 20) -> list[Delivery]:
        query = (select(findings).where(findings.c.acked_at.is_(None), findings.c.resolved_at.is_(None),
                                        findings.c.state.in_(("posted", "digested", "pending", "posting")))
                 .order_by(findings.c.created_at.desc()).limit(limit))
        return [_delivery(row, False) for row in self._select(query)]

    def counts(self) -> dict[str, int]:
        query = select(findings.c.state, func.count()).where(
            findings.c.acked_at.is_(None), findings.c.resolved_at.is_(None)).group_by(findings.c.state)
        return {state: count for state, count in self._select(query)}

    def resolve_absent(self, account_id: str, kinds: Iterable[str], present: Iterable[str], now: datetime) -> list[str]:
        """Open findings of these kinds for this account that the latest check no longer shows."""
        query = select(findings.c.id).where(findings.c.account_id == account_id, findings.c.kind.in_(list(kinds)),
                                            findings.c.resolved_at.is_(None), findings.c.id.notin_(list(present)))
        with self.engine.begin() as conn:
            ids = [row.id for row in conn.execute(query)]
            if ids:
                conn.execute(update(findings).where(findings.c.id.in_(ids))
                             .values(resolved_at=now, needs_update=True))
        return ids

    def stale_messages(self) -> list[Delivery]:
        """Posted messages whose content changed (acked, resolved) and must be re-rendered."""
        return [_delivery(row, is_digest) for table, is_digest in ((findings, False), (digests, True))
                for row in self._select(select(table).where(table.c.needs_update.is_(True), table.c.ts.isnot(None)))]

    def refreshed(self, delivery: Delivery) -> None:
        table = digests if delivery.is_digest else findings
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == delivery.id).values(needs_update=False))

    def due_reminders(self, now: datetime) -> list[Delivery]:
        query = select(findings).where(and_(
            findings.c.state == "posted", findings.c.acked_at.is_(None), findings.c.resolved_at.is_(None),
            findings.c.expected_by.is_(None), findings.c.severity.in_(REMINDED_SEVERITIES),
            findings.c.next_reminder_at.isnot(None), findings.c.next_reminder_at <= now))
        return [_delivery(row, False) for row in self._select(query)]

    def reminded(self, delivery_id: str, next_at: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(findings).where(findings.c.id == delivery_id).values(
                reminders=findings.c.reminders + 1, next_reminder_at=next_at))

    def _select(self, query) -> list:
        with self.engine.connect() as conn:
            return conn.execute(query).all()
