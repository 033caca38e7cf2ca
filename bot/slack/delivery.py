"""Moving the outbox to Slack: claim, render from the store, post, record; and the reverse
after a crash (reconcile from the channel's history), message refreshes and reminders.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from bot.models import Delivery
from bot.slack.blocks import Message, ack_reply, mention, reminder_reply, render_alert, render_digest
from bot.slack.notifier import Notifier, SlackError
from bot.timeutil import utcnow

log = logging.getLogger(__name__)
REMINDER_EVERY = timedelta(hours=1)
MAX_REMINDERS = 4
RECONCILE_LOOKBACK = timedelta(days=14)


@dataclass
class SlackHealth:
    """The last delivery error, for /healthz, /rootcheck status and the logs."""

    code: str | None = None
    fix: str | None = None
    at: datetime | None = None

    def as_dict(self) -> dict:
        return {"error": self.code, "fix": self.fix, "at": self.at.isoformat() if self.at else None}


class Deliverer:
    def __init__(self, outbox, notifier: Notifier, remediation_url: str, default_channel: str | None,
                 names: Callable[[str | None], str | None], retry_interval: timedelta, admins: list[str],
                 retry_base: float = 5.0, clock: Callable[[], datetime] = utcnow, metrics=None):
        self.outbox = outbox
        self.notifier = notifier
        self.remediation_url = remediation_url
        self.default_channel = default_channel
        self.names = names
        self.retry_interval = retry_interval
        self.retry_base = retry_base
        self.admins = admins
        self.clock = clock
        self.metrics = metrics
        self.health = SlackHealth()
        self.stopping = threading.Event()  # SIGTERM: messages claimed but not yet sent are handed back

    def render(self, delivery: Delivery) -> Message:
        now = self.clock()
        if delivery.is_digest:
            members = self.outbox.members(delivery)
            names = {m.finding.account_id or "": self.names(m.finding.account_id) for m in members if m.finding}
            return render_digest(delivery, members, names, self.remediation_url, now)
        return render_alert(delivery, self.names(delivery.finding.account_id), self.remediation_url, now)

    def reconcile(self) -> int:
        """Rows left in `posting` by a crash: find their message by metadata, or post again."""
        fixed = 0
        for delivery in self.outbox.in_posting():
            channel = delivery.target or self.default_channel
            try:
                oldest = (self.clock() - RECONCILE_LOOKBACK).timestamp()
                found = self.notifier.find_posted(channel, {delivery.id}, oldest=oldest)
            except SlackError as exc:
                self._failed(delivery, exc)
                continue
            if delivery.id in found:
                self.outbox.posted(delivery, channel, found[delivery.id], self.clock())
                fixed += 1
            else:
                self.outbox.retry_later(delivery, "not found in channel history after a restart", self.clock())
        return fixed

    def deliver(self, limit: int = 50) -> list[str]:
        """Post every due pending message; failures stay pending with a retry time. Returns the ids posted."""
        posted = []
        for delivery in self.outbox.claim(self.clock(), limit):
            if self.stopping.is_set():
                self.outbox.retry_later(delivery, "handed back at shutdown", self.clock())
                continue
            channel = delivery.target or self.default_channel
            try:
                channel, ts = self.notifier.post(channel, self.render(delivery))
            except SlackError as exc:
                self._failed(delivery, exc)
                continue
            self.outbox.posted(delivery, channel, ts, self.clock())
            self.health = SlackHealth()
            posted.append(delivery.id)
            self._count("posts", delivery)
        return posted

    def refresh(self) -> int:
        """Re-render messages whose state changed (acknowledged, resolved) in place."""
        done = 0
        for delivery in self.outbox.stale_messages():
            try:
                self.notifier.update(delivery.channel, delivery.ts, self.render(delivery))
            except SlackError as exc:
                self._note(exc)
                continue
            self.outbox.refreshed(delivery)
            done += 1
        return done

    def acknowledge(self, delivery_id: str, user: str) -> bool:
        """Store the ack once, update the same message, and add one audit reply in its thread."""
        now = self.clock()
        if not self.outbox.acknowledge(delivery_id, user, now):
            return False
        delivery = self.outbox.get(delivery_id)
        try:
            self.notifier.update(delivery.channel, delivery.ts, self.render(delivery))
            self.outbox.refreshed(delivery)
            self.notifier.reply(delivery.channel, delivery.ts, ack_reply(user, now))
        except SlackError as exc:  # the ack is stored; refresh() retries the update
            self._note(exc)
        return True

    def remind(self) -> int:
        now = self.clock()
        sent = 0
        for delivery in self.outbox.due_reminders(now):
            count = delivery.reminders + 1
            text = reminder_reply([mention(a) for a in self.admins], count, delivery.finding)
            try:
                self.notifier.reply(delivery.channel, delivery.ts, text)
            except SlackError as exc:
                self._note(exc)
                continue
            self.outbox.reminded(delivery.id, now + REMINDER_EVERY if count < MAX_REMINDERS else None)
            sent += 1
            self._count("reminders", delivery)
        return sent

    def _failed(self, delivery: Delivery, exc: SlackError) -> None:
        wait = self.retry_interval if exc.permanent else timedelta(
            seconds=min(self.retry_base * 2 ** max(delivery.attempts - 1, 0), self.retry_interval.total_seconds()))
        self.outbox.retry_later(delivery, str(exc), self.clock() + wait)
        self._note(exc)

    def _note(self, exc: SlackError) -> None:
        self.health = SlackHealth(exc.code, exc.fix, self.clock())
        log.warning("slack error: %s - %s", exc.code, exc.fix)
        if self.metrics:
            self.metrics.slack_errors.labels(code=exc.code).inc()

    def _count(self, name: str, delivery: Delivery) -> None:
        if self.metrics:
            getattr(self.metrics, name).inc()
