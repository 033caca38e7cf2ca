""" "Was this you?": the owners asked about an alert, their direct messages, the first answer, and the
call to the admins on "No" or on silence.

Asked once per alert; a direct message is claimed before it is sent and found again by its metadata
after a crash; the first complete answer wins (compare-and-set); the admins are called at most once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from bot.models import Alert, AlertRecord, rank
from bot.store.db import writer
from bot.store.rows import add_reply, to_alert, to_record
from bot.store.schema import alerts, questions


@dataclass(frozen=True)
class Question:
    alert_id: str
    user_id: str
    state: str
    dm_channel: str | None
    ts: str | None
    attempts: int
    claimed_at: datetime | None


@dataclass(frozen=True)
class Answer:
    """What `answer` did: `counted` when this was the first answer; else who answered, what, when."""

    counted: bool
    answer: str | None
    by: str | None
    at: datetime | None


class Questions:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin

    def ask(self, alert_id: str, users: list[str], more: list[str], now: datetime) -> bool:
        """Record whom this alert asks (once per alert; nobody is a decision too) and queue one
        direct message each."""
        with self.write() as conn:
            asked = (
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id, alerts.c.asked_at.is_(None))
                    .values(
                        asked_at=now,
                        owners_asked=json.dumps(users),
                        owners_more=json.dumps(more),
                        version=alerts.c.version + (1 if users else 0),
                    )
                ).rowcount
                == 1
            )
            if asked and users:
                conn.execute(
                    insert(questions),
                    [
                        {
                            "alert_id": alert_id,
                            "user_id": user,
                            "state": "pending",
                            "attempts": 0,
                            "answer_shown": False,
                            "created_at": now,
                        }
                        for user in users
                    ],
                )
        return asked

    def to_ask(self, since: datetime) -> list[AlertRecord]:
        """Posted alerts (since `since`) whose question has not been decided yet."""
        query = (
            select(alerts)
            .where(alerts.c.state == "posted", alerts.c.asked_at.is_(None), alerts.c.created_at >= since)
            .order_by(alerts.c.rank)
            .limit(100)
        )
        with self.engine.connect() as conn:
            return [to_record(conn, row) for row in conn.execute(query).all()]

    def claim(self, now: datetime, holder: str, limit: int = 50) -> list[Question]:
        due = (
            select(questions.c.alert_id, questions.c.user_id)
            .where(
                questions.c.state == "pending",
                or_(questions.c.next_attempt_at.is_(None), questions.c.next_attempt_at <= now),
            )
            .order_by(questions.c.created_at)
            .limit(limit)
        )
        with self.write() as conn:
            won = [
                key
                for key in conn.execute(due).all()
                if conn.execute(
                    update(questions)
                    .where(
                        questions.c.alert_id == key[0], questions.c.user_id == key[1], questions.c.state == "pending"
                    )
                    .values(state="posting", claimed_by=holder, claimed_at=now, attempts=questions.c.attempts + 1)
                ).rowcount
            ]
            return [self._get(conn, *key) for key in won]

    def sent(
        self, question: Question, holder: str, dm_channel: str, ts: str, now: datetime, timeout: timedelta
    ) -> None:
        """The direct message is delivered: the first one starts the owners' `timeout` to answer."""
        with self.write() as conn:
            conn.execute(
                update(questions)
                .where(_one(question), questions.c.claimed_by == holder)
                .values(
                    state="posted",
                    dm_channel=dm_channel,
                    ts=ts,
                    posted_at=now,
                    last_error=None,
                    claimed_by=None,
                    claimed_at=None,
                )
            )
            conn.execute(
                update(alerts)
                .where(alerts.c.id == question.alert_id, alerts.c.confirm_deadline.is_(None))
                .values(confirm_deadline=now + timeout, version=alerts.c.version + 1)
            )

    def not_sent(self, question: Question, holder: str, error: str, retry_at: datetime | None) -> None:
        """A temporary failure waits for `retry_at`; a permanent one (None) is failed for good."""
        with self.write() as conn:
            conn.execute(
                update(questions)
                .where(_one(question), questions.c.claimed_by == holder)
                .values(
                    state="pending" if retry_at else "failed",
                    next_attempt_at=retry_at,
                    last_error=error[:500],
                    claimed_by=None,
                    claimed_at=None,
                )
            )

    def to_reconcile(self, question: Question, holder: str) -> None:
        """Our post's outcome is unknown: the next reconcile looks for it in the direct message first."""
        with self.write() as conn:
            conn.execute(
                update(questions)
                .where(_one(question), questions.c.state == "posting", questions.c.claimed_by == holder)
                .values(claimed_at=None)
            )

    def stale(self, before: datetime | None) -> list[Question]:
        query = select(questions).where(questions.c.state == "posting")
        if before is not None:
            query = query.where(or_(questions.c.claimed_at.is_(None), questions.c.claimed_at < before))
        with self.engine.connect() as conn:
            return [_question(row) for row in conn.execute(query.limit(500))]

    def take_over(self, question: Question, holder: str, now: datetime) -> bool:
        claim = (
            questions.c.claimed_at.is_(None)
            if question.claimed_at is None
            else questions.c.claimed_at == question.claimed_at
        )
        with self.write() as conn:
            return (
                conn.execute(
                    update(questions)
                    .where(_one(question), questions.c.state == "posting", claim)
                    .values(claimed_by=holder, claimed_at=now)
                ).rowcount
                == 1
            )

    def of(self, alert_id: str) -> list[Question]:
        with self.engine.connect() as conn:
            return [
                _question(row)
                for row in conn.execute(
                    select(questions).where(questions.c.alert_id == alert_id).order_by(questions.c.user_id)
                )
            ]

    # answers ----------------------------------------------------------------------------------
    def answer(
        self, alert_id: str, user: str, answer: str, reason: str | None, now: datetime, remind_after: timedelta
    ) -> Answer:
        """The first complete answer wins. Yes acknowledges the alert as planned; No makes it
        critical, clears any ack and calls the admins (unless silence already did)."""
        with self.write() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None or row.answered_at is not None:
                return Answer(
                    False,
                    row.answer if row else None,
                    row.answered_by if row else None,
                    row.answered_at if row else None,
                )
            values = {
                "answer": answer,
                "answered_by": user,
                "answered_at": now,
                "answer_reason": reason,
                "version": alerts.c.version + 1,
                "urgent_version": alerts.c.version + 1,
                "edit_failures": 0,
                "next_edit_at": None,
            }
            if answer == "yes":
                values.update(acked_by=row.acked_by or user, acked_at=row.acked_at or now)
            else:
                values.update(
                    self._critical(row, now, remind_after),
                    acked_by=None,
                    acked_at=None,
                    escalated_at=row.escalated_at or now,
                )
            won = (
                conn.execute(
                    update(alerts).where(alerts.c.id == alert_id, alerts.c.answered_at.is_(None)).values(**values)
                ).rowcount
                == 1
            )
            if won:
                self._answered_reply(conn, row, user, answer, reason, now)
                conn.execute(update(questions).where(questions.c.alert_id == alert_id).values(answer_shown=False))
        return Answer(won, answer, user, now) if won else self.answer(alert_id, user, answer, reason, now, remind_after)

    def due_escalations(self, now: datetime) -> list[str]:
        """Alerts nobody answered in time, or whose owners no message could reach."""
        undeliverable = and_(
            alerts.c.confirm_deadline.is_(None),
            ~exists().where(questions.c.alert_id == alerts.c.id, questions.c.state != "failed"),
        )
        query = select(alerts.c.id).where(
            alerts.c.asked_at.isnot(None),
            alerts.c.owners_asked != "[]",
            alerts.c.answered_at.is_(None),
            alerts.c.escalated_at.is_(None),
            alerts.c.ts.isnot(None),
            or_(alerts.c.confirm_deadline <= now, undeliverable),
        )
        with self.engine.connect() as conn:
            return [row.id for row in conn.execute(query.limit(100))]

    def escalate(self, alert_id: str, now: datetime) -> bool:
        """Call the admins once: in the alert's thread, naming who was asked."""
        with self.write() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None or row.escalated_at is not None or row.answered_at is not None:
                return False
            conn.execute(
                update(alerts).where(alerts.c.id == alert_id).values(escalated_at=now, version=alerts.c.version + 1)
            )
            delivered = conn.execute(
                select(questions.c.user_id).where(questions.c.alert_id == alert_id, questions.c.state == "posted")
            ).all()
            add_reply(
                conn,
                f"silence:{alert_id}",
                alert_id,
                {
                    "kind": "silence" if delivered else "unreachable",
                    "asked": json.loads(row.owners_asked or "[]"),
                    "timeout": int((row.confirm_deadline - row.asked_at).total_seconds())
                    if row.confirm_deadline
                    else None,
                },
                now,
            )
        return True

    def answers_to_show(self) -> list[Question]:
        """Delivered questions whose alert was answered since their message last said so."""
        query = (
            select(questions)
            .join(alerts, alerts.c.id == questions.c.alert_id)
            .where(questions.c.state == "posted", questions.c.answer_shown.is_(False), alerts.c.answered_at.isnot(None))
        )
        with self.engine.connect() as conn:
            return [_question(row) for row in conn.execute(query.limit(100))]

    def answer_shown(self, question: Question) -> None:
        with self.write() as conn:
            conn.execute(update(questions).where(_one(question)).values(answer_shown=True))

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _critical(row, now: datetime, remind_after: timedelta) -> dict:
        alert: Alert = to_alert(row)
        alert.escalations.add("owner_no")
        log = json.loads(row.severity_log or "[]") + [
            {"at": now.isoformat(), "severity": "critical", "why": "an owner does not recognise it"}
        ]
        values = {
            "escalations": json.dumps(sorted(alert.escalations)),
            "severity": "critical",
            "rank": rank("critical"),
            "severity_log": json.dumps(log),
        }
        if row.urgent_since is None:
            values.update(urgent_since=now, next_reminder_at=now + remind_after)
        return values

    @staticmethod
    def _answered_reply(conn: Connection, row, user: str, answer: str, reason: str | None, now: datetime) -> None:
        kind = "confirmed" if answer == "yes" else ("owner_no_called" if row.escalated_at else "owner_no")
        add_reply(
            conn, f"answer:{row.id}", row.id, {"kind": kind, "user": user, "reason": reason, "at": now.isoformat()}, now
        )

    @staticmethod
    def _get(conn: Connection, alert_id: str, user_id: str) -> Question:
        return _question(
            conn.execute(
                select(questions).where(questions.c.alert_id == alert_id, questions.c.user_id == user_id)
            ).first()
        )


def _question(row) -> Question:
    return Question(row.alert_id, row.user_id, row.state, row.dm_channel, row.ts, row.attempts, row.claimed_at)


def _one(question: Question) -> ColumnElement[bool]:
    """The row of one owner's question about one alert."""
    return and_(questions.c.alert_id == question.alert_id, questions.c.user_id == question.user_id)
