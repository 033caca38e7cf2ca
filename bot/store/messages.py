"""What Slack shows, as state: alert messages to post and edit, thread replies, acks, reminders.

Every step that talks to Slack is claimed first (who and when), so one replica does it; an edit
renders one `version` and records it with compare-and-set, so an edit never overwrites a newer
state; a claim left by a crash is reconciled against Slack's history by its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Engine

from bot.models import AlertRecord
from bot.store.db import writer
from bot.store.rows import add_reply, to_record
from bot.store.schema import alerts, replies

MAX_EDIT_FAILURES = 8  # a message that cannot be updated (deleted?) is given up on, and says so


@dataclass(frozen=True)
class Reply:
    """A thread reply to post: `body` says what (its `kind` and values), the alert says where
    (replies are only claimed for alerts already in Slack)."""

    id: str
    alert_id: str
    body: dict
    channel: str
    thread_ts: str
    attempts: int


class Messages:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.write = writer(engine).begin

    # posting ----------------------------------------------------------------------------------
    def claim(self, now: datetime, holder: str, limit: int = 50, per_target: int = 2) -> list[AlertRecord]:
        """Due pending alerts, most severe first in each channel, then oldest event first.

        At most `per_target` per channel, the channels in turn: Slack takes 1 message/s per
        channel, so a burst in one channel must not hold back another's alerts.
        """
        turn = func.row_number().over(
            partition_by=alerts.c.target, order_by=(alerts.c.rank, alerts.c.opened_at, alerts.c.created_at, alerts.c.id)
        )
        ranked = (
            select(alerts.c.id, turn.label("turn"))
            .where(
                alerts.c.state == "pending", or_(alerts.c.next_attempt_at.is_(None), alerts.c.next_attempt_at <= now)
            )
            .subquery()
        )
        due = (
            select(alerts.c.id)
            .join(ranked, ranked.c.id == alerts.c.id)
            .where(ranked.c.turn <= per_target)
            .order_by(ranked.c.turn, alerts.c.rank, alerts.c.opened_at, alerts.c.id)
            .limit(limit)
        )
        with self.write() as conn:
            ids = [row.id for row in conn.execute(due)]
            won = [
                i
                for i in sorted(ids)
                if conn.execute(  # one lock order: no deadlocks
                    update(alerts)
                    .where(alerts.c.id == i, alerts.c.state == "pending")
                    .values(state="posting", claimed_by=holder, claimed_at=now, attempts=alerts.c.attempts + 1)
                ).rowcount
            ]
            rows = {row.id: row for row in conn.execute(select(alerts).where(alerts.c.id.in_(won)))}
            return [to_record(conn, rows[i]) for i in ids if i in rows]

    def posted(self, alert_id: str, holder: str, channel: str, ts: str, version: int, now: datetime) -> bool:
        """Record the post; False when the claim was no longer ours (reconciled meanwhile)."""
        with self.write() as conn:
            return (
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id, alerts.c.state == "posting", alerts.c.claimed_by == holder)
                    .values(
                        state="posted",
                        channel=channel,
                        ts=ts,
                        posted_at=now,
                        edited_at=now,
                        shown_version=version,
                        last_error=None,
                        next_attempt_at=None,
                        claimed_by=None,
                        claimed_at=None,
                    )
                ).rowcount
                == 1
            )

    def hand_back(self, alert_id: str, holder: str, error: str, retry_at: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == "posting", alerts.c.claimed_by == holder)
                .values(state="pending", last_error=error, next_attempt_at=retry_at, claimed_by=None, claimed_at=None)
            )

    def failed(self, alert_id: str, holder: str, reason: str) -> None:
        """It cannot be rendered: shown in `status` and the logs, never retried blindly."""
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.claimed_by == holder)
                .values(state="failed", last_error=reason[:2000], claimed_by=None, claimed_at=None)
            )

    def to_reconcile(self, alert_id: str, holder: str) -> None:
        """Our post's outcome is unknown: the next reconcile looks for it in Slack before posting again."""
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == "posting", alerts.c.claimed_by == holder)
                .values(claimed_at=None)
            )

    def stale_postings(self, before: datetime | None) -> list[AlertRecord]:
        """Claims made before `before` (None: every claim) that never recorded a post."""
        query = select(alerts).where(alerts.c.state == "posting")
        if before is not None:
            query = query.where(or_(alerts.c.claimed_at.is_(None), alerts.c.claimed_at < before))
        with self.engine.connect() as conn:
            return [to_record(conn, row) for row in conn.execute(query.limit(500)).all()]

    def take_over(self, alert_id: str, claimed_at: datetime | None, holder: str, now: datetime) -> bool:
        """Take a stale claim over for reconciling (compare-and-set on the old claim)."""
        claim = alerts.c.claimed_at.is_(None) if claimed_at is None else alerts.c.claimed_at == claimed_at
        with self.write() as conn:
            return (
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id, alerts.c.state == "posting", claim)
                    .values(claimed_by=holder, claimed_at=now)
                ).rowcount
                == 1
            )

    # edits ------------------------------------------------------------------------------------
    def due_edits(self, now: datetime, gap: timedelta, limit: int = 50) -> list[str]:
        """Posted alerts whose state changed since Slack last showed it, and whose turn has come:
        a person's action at once, anything else 10 s after the previous post or edit."""
        stale = or_(
            alerts.c.version > alerts.c.shown_version,
            and_(alerts.c.summary_ts.isnot(None), alerts.c.version > alerts.c.summary_shown_version),
            and_(
                alerts.c.summary_ts.is_(None),
                alerts.c.count > 1,  # its thread summary is due
                alerts.c.grouping.in_(("session", "credentials")),
            ),
        )
        urgent = alerts.c.urgent_version > alerts.c.shown_version
        turn = or_(urgent, alerts.c.edited_at.is_(None), alerts.c.edited_at <= now - gap)
        free = or_(alerts.c.editing_until.is_(None), alerts.c.editing_until < now)
        retry = or_(alerts.c.next_edit_at.is_(None), alerts.c.next_edit_at <= now)
        query = (
            select(alerts.c.id)
            .where(alerts.c.state == "posted", stale, turn, free, retry, alerts.c.edit_failures < MAX_EDIT_FAILURES)
            .order_by(urgent.desc(), alerts.c.rank, alerts.c.edited_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [row.id for row in conn.execute(query)]

    def start_edit(self, alert_id: str, holder: str, now: datetime, ttl: timedelta) -> AlertRecord | None:
        """The alert to render, with a short lease on editing it; None when anyone else (another
        thread of this replica too: `holder` names one edit) edits it."""
        free = or_(alerts.c.editing_by.is_(None), alerts.c.editing_until < now)
        with self.write() as conn:
            if not conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == "posted", free)
                .values(editing_by=holder, editing_until=now + ttl)
            ).rowcount:
                return None
            return to_record(conn, conn.execute(select(alerts).where(alerts.c.id == alert_id)).first())

    def finish_edit(self, record: AlertRecord, holder: str, now: datetime, summary_ts: str | None) -> int:
        """Record what Slack now shows (compare-and-set: never back to an older version).
        Returns how many changes this one edit showed at once (coalesced)."""
        version = record.version
        values: dict[str, Any] = {
            "shown_version": case((alerts.c.shown_version < version, version), else_=alerts.c.shown_version),
            "edited_at": now,
            "editing_by": None,
            "editing_until": None,
            "edit_failures": 0,
            "next_edit_at": None,
            "last_error": None,
        }
        if summary_ts is not None:
            values.update(summary_ts=summary_ts, summary_state="posted", summary_shown_version=version)
        with self.write() as conn:
            conn.execute(update(alerts).where(alerts.c.id == record.id, alerts.c.editing_by == holder).values(**values))
        return max(version - record.shown_version - 1, 0)

    def drop_edit_leases(self) -> int:
        """Edits a dead process was making (only when no other process can be alive)."""
        with self.write() as conn:
            return conn.execute(
                update(alerts).where(alerts.c.editing_by.isnot(None)).values(editing_by=None, editing_until=None)
            ).rowcount

    def edit_failed(self, record: AlertRecord, holder: str, error: str, now: datetime, retry_at: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == record.id, alerts.c.editing_by == holder)
                .values(
                    edit_failures=alerts.c.edit_failures + 1,
                    next_edit_at=retry_at,
                    editing_by=None,
                    editing_until=None,
                    last_error=f"could not update the message: {error}"[:2000],
                )
            )

    def claim_summary(self, alert_id: str, now: datetime, stale_before: datetime) -> bool:
        """The thread's summary reply is posted once: claim it (a stale claim may be taken over)."""
        with self.write() as conn:
            return (
                conn.execute(
                    update(alerts)
                    .where(
                        alerts.c.id == alert_id,
                        or_(
                            alerts.c.summary_state.is_(None),
                            and_(alerts.c.summary_state == "posting", alerts.c.summary_claimed_at < stale_before),
                        ),
                    )
                    .values(summary_state="posting", summary_claimed_at=now)
                ).rowcount
                == 1
            )

    def release_summary(self, alert_id: str) -> None:
        """Posting the summary failed: the next edit tries again."""
        with self.write() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.summary_state == "posting")
                .values(summary_state=None, summary_claimed_at=None)
            )

    # people -----------------------------------------------------------------------------------
    def acknowledge(self, alert_id: str, user: str, now: datetime) -> bool:
        """Acknowledge once (a second click changes nothing); the audit reply goes in the same step."""
        with self.write() as conn:
            done = (
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id, alerts.c.acked_at.is_(None), alerts.c.ts.isnot(None))
                    .values(
                        acked_by=user,
                        acked_at=now,
                        version=alerts.c.version + 1,
                        urgent_version=alerts.c.version + 1,
                        edit_failures=0,
                        next_edit_at=None,
                    )
                ).rowcount
                == 1
            )
            if done:
                add_reply(conn, f"ack:{alert_id}", alert_id, {"kind": "ack", "user": user, "at": now.isoformat()}, now)
        return done

    def due_reminders(self, now: datetime) -> list[AlertRecord]:
        query = select(alerts).where(
            alerts.c.state == "posted",
            alerts.c.acked_at.is_(None),
            alerts.c.resolved_at.is_(None),
            alerts.c.expected_by.is_(None),
            alerts.c.severity.in_(("critical", "high")),
            alerts.c.next_reminder_at.isnot(None),
            alerts.c.next_reminder_at <= now,
        )
        with self.engine.connect() as conn:
            return [to_record(conn, row) for row in conn.execute(query.limit(100)).all()]

    def reminded(self, record: AlertRecord, next_at: datetime | None, now: datetime) -> None:
        """Count the reminder and queue its reply together: a crash can neither lose nor double it."""
        count = record.reminders + 1
        with self.write() as conn:
            if conn.execute(
                update(alerts)
                .where(alerts.c.id == record.id, alerts.c.reminders == record.reminders)
                .values(reminders=count, next_reminder_at=next_at)
            ).rowcount:
                add_reply(
                    conn,
                    f"remind:{record.id}:{count}",
                    record.id,
                    {"kind": "reminder", "count": count, "severity": record.severity},
                    now,
                )

    # thread replies ---------------------------------------------------------------------------
    def add_reply(self, reply_id: str, alert_id: str, body: dict, now: datetime) -> None:
        with self.write() as conn:
            add_reply(conn, reply_id, alert_id, body, now)

    def claim_replies(self, now: datetime, holder: str, alert_id: str | None = None, limit: int = 50) -> list[Reply]:
        """Pending replies whose alert is in Slack already, oldest first."""
        query = (
            select(replies.c.id)
            .join(alerts, alerts.c.id == replies.c.alert_id)
            .where(
                replies.c.state == "pending",
                alerts.c.ts.isnot(None),
                or_(replies.c.next_attempt_at.is_(None), replies.c.next_attempt_at <= now),
            )
            .order_by(replies.c.created_at, replies.c.id)
            .limit(limit)
        )
        if alert_id is not None:
            query = query.where(replies.c.alert_id == alert_id)
        with self.write() as conn:
            ids = [row.id for row in conn.execute(query)]
            won = [
                i
                for i in ids
                if conn.execute(
                    update(replies)
                    .where(replies.c.id == i, replies.c.state == "pending")
                    .values(state="posting", claimed_by=holder, claimed_at=now, attempts=replies.c.attempts + 1)
                ).rowcount
            ]
            rows = conn.execute(
                select(replies, alerts.c.channel.label("alert_channel"), alerts.c.ts.label("thread_ts"))
                .join(alerts, alerts.c.id == replies.c.alert_id)
                .where(replies.c.id.in_(won))
            ).all()
        order = {i: n for n, i in enumerate(ids)}
        return sorted(
            (Reply(r.id, r.alert_id, json.loads(r.body), r.alert_channel, r.thread_ts, r.attempts) for r in rows),
            key=lambda r: order[r.id],
        )

    def reply_posted(self, reply: Reply, holder: str, ts: str, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(replies)
                .where(replies.c.id == reply.id, replies.c.claimed_by == holder)
                .values(
                    state="posted",
                    channel=reply.channel,
                    ts=ts,
                    posted_at=now,
                    last_error=None,
                    claimed_by=None,
                    claimed_at=None,
                )
            )

    def reply_to_reconcile(self, reply_id: str, holder: str) -> None:
        """Our post's outcome is unknown: the next reconcile looks for it in the thread before posting again."""
        with self.write() as conn:
            conn.execute(
                update(replies)
                .where(replies.c.id == reply_id, replies.c.state == "posting", replies.c.claimed_by == holder)
                .values(claimed_at=None)
            )

    def reply_hand_back(self, reply: Reply, holder: str, error: str, retry_at: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(replies)
                .where(replies.c.id == reply.id, replies.c.claimed_by == holder)
                .values(state="pending", last_error=error, next_attempt_at=retry_at, claimed_by=None, claimed_at=None)
            )

    def stale_replies(self, before: datetime | None) -> list[Reply]:
        query = (
            select(replies, alerts.c.channel.label("alert_channel"), alerts.c.ts.label("thread_ts"))
            .join(alerts, alerts.c.id == replies.c.alert_id)
            .where(replies.c.state == "posting")
        )
        if before is not None:
            query = query.where(or_(replies.c.claimed_at.is_(None), replies.c.claimed_at < before))
        with self.engine.connect() as conn:
            return [
                Reply(r.id, r.alert_id, json.loads(r.body), r.alert_channel, r.thread_ts, r.attempts)
                for r in conn.execute(query.limit(500))
            ]

    def take_over_reply(self, reply: Reply, holder: str, now: datetime) -> None:
        with self.write() as conn:
            conn.execute(
                update(replies)
                .where(replies.c.id == reply.id, replies.c.state == "posting")
                .values(claimed_by=holder, claimed_at=now)
            )
