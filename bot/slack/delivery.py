"""Moving alerts to Slack: post each alert once, edit it as its findings grow (at most once every
10 s, the latest state wins; at once when a person acted), keep one activity summary in its
thread, post thread replies once, and after a crash find what was posted by its metadata.

Nothing here can strand work: a Slack error hands the row back with a backoff, any other error
too (and is logged), and an alert that cannot be rendered is marked failed with the reason.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.metrics import label
from bot.models import CREDENTIALS, SESSION, AlertRecord
from bot.slack.blocks import Message, Names, render_alert, render_announcement, render_reply, render_summary
from bot.slack.notifier import Notifier, SlackError
from bot.timeutil import utcnow

if TYPE_CHECKING:
    from bot.metrics import Metrics
    from bot.store import Store
    from bot.store.messages import Reply

log = logging.getLogger(__name__)
REMINDER_EVERY = timedelta(hours=1)
MAX_REMINDERS = 4
RECONCILE_LOOKBACK = timedelta(days=14)
EDIT_GAP = timedelta(seconds=10)  # between two edits of one message (its post counts as the first)
EDIT_LEASE = timedelta(seconds=60)
POST_DEADLINE = timedelta(minutes=5)  # a claim older than this was abandoned: reconcile it
WITH_SUMMARY = (SESSION, CREDENTIALS)


@dataclass
class SlackHealth:
    """The last delivery error, for /healthz, /rootcheck status and the logs."""

    code: str | None = None
    fix: str | None = None
    at: datetime | None = None

    def as_dict(self) -> dict:
        return {"error": self.code, "fix": self.fix, "at": self.at.isoformat() if self.at else None}


class Unsettled:
    """Our claims whose message may be in Slack while the store took neither its record nor the
    mark that sends it to the reconcile (PostgreSQL restarting under the post). Each is marked as
    soon as the store answers again, so the reconcile looks for it at once by its metadata instead
    of waiting out the deadline of an abandoned claim, and the rest of a batch is not held up."""

    def __init__(self) -> None:
        self._marks: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def add(self, what: str, mark: Callable[[], None]) -> None:
        with self._lock:
            self._marks[what] = mark
        self.settle(quiet=True)

    def settle(self, quiet: bool = False) -> None:
        """Mark what is pending; `quiet`: a store still failing is logged (and retried at the next
        call), not raised."""
        with self._lock:
            for what in sorted(self._marks):
                try:
                    self._marks[what]()
                except Exception:  # noqa: BLE001 - the store still fails: the next call tries again
                    if not quiet:
                        raise
                    log.warning("%s is not marked for the reconcile yet: the store fails", what)
                    return
                del self._marks[what]


class Deliverer:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        remediation_url: str,
        default_channel: str,
        names: Names,
        retry_interval: timedelta,
        admins: list[str],
        holder: str,
        retry_base: float = 5.0,
        edit_gap: timedelta = EDIT_GAP,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ):
        self.alerts = store.alerts
        self.messages = store.messages
        self.notifier = notifier
        self.remediation_url = remediation_url
        self.default_channel = default_channel
        self.names = names
        self.retry_interval = retry_interval
        self.retry_base = retry_base
        self.edit_gap = edit_gap
        self.admins = admins
        self.holder = holder
        self.clock = clock
        self.metrics = metrics
        self.health = SlackHealth()
        self.stopping = threading.Event()  # SIGTERM: what is claimed but not yet sent is handed back
        self.unsettled = Unsettled()

    def render(self, record: AlertRecord) -> Message:
        members = self.alerts.members(record.id) if record.alert.grouping == "digest" else ()
        return render_alert(record, self.names, self.remediation_url, self.clock(), members)

    # posting ----------------------------------------------------------------------------------
    def deliver(self, limit: int = 50) -> list[AlertRecord]:
        """Post due alerts (most severe first in each channel); returns what was posted."""
        posted = []
        self.unsettled.settle(quiet=True)
        for record in self.messages.claim(self.clock(), self.holder, limit):
            if self.stopping.is_set():
                self.messages.hand_back(record.id, self.holder, "handed back at shutdown", self.clock())
                continue
            try:
                if self._post(record):
                    posted.append(record)
            except Exception:  # noqa: BLE001 - e.g. the store failed after the post: never strand it
                # The message may be in Slack already: not posted again blindly, but looked for first.
                log.exception("posting alert %s failed; it is reconciled by its metadata", record.id)
                self.unsettled.add(f"alert {record.id}", partial(self.messages.to_reconcile, record.id, self.holder))
        return posted

    def _post(self, record: AlertRecord) -> bool:
        try:
            message = self.render(record)
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the others
            log.exception("alert %s cannot be rendered", record.id)
            self.messages.failed(record.id, self.holder, f"cannot be rendered: {exc.__class__.__name__}: {exc}")
            self._count("render_failures")
            return False
        channel = record.target or self.default_channel
        try:
            channel, ts = self.notifier.post(channel, message)
        except SlackError as exc:
            self._slack_failed(record, exc)
            return False
        recorded = self.messages.posted(record.id, self.holder, channel, ts, record.version, self.clock())
        self.health = SlackHealth()
        self._count("posts")
        return recorded

    def _slack_failed(self, record: AlertRecord, exc: SlackError) -> None:
        wait = self.retry_interval if exc.permanent else self._backoff(record.attempts)
        self._hand_back(record, str(exc), wait)
        self._note(exc)

    def _hand_back(self, record: AlertRecord, error: str, wait: timedelta) -> None:
        self.messages.hand_back(record.id, self.holder, error, self.clock() + wait)

    def _backoff(self, attempts: int) -> timedelta:
        seconds = self.retry_base * 2 ** max(attempts - 1, 0)
        return timedelta(seconds=min(seconds, self.retry_interval.total_seconds()))

    # edits ------------------------------------------------------------------------------------
    def edit_due(self) -> int:
        """Edit every alert whose turn has come (the latest state wins: one edit shows all changes)."""
        return sum(self.edit(alert_id) for alert_id in self.messages.due_edits(self.clock(), self.edit_gap))

    def edit(self, alert_id: str, urgent: bool = False) -> bool:
        """Show the alert's current state in its message and its thread summary.

        Holds a short lease on the alert while it edits, and records the version it rendered
        (compare-and-set), so an older render never overwrites a newer state. When a person
        acted meanwhile, it edits again at once. A person's edit (`urgent`) leaves the thread
        summary alone: it shows findings, not what the person did, and keeps its 10-second turn.
        """
        editor = f"{self.holder}/{uuid.uuid4().hex[:8]}"  # this edit, not this replica: a click and a job differ
        record = self.messages.start_edit(alert_id, editor, self.clock(), EDIT_LEASE)
        while record is not None:
            try:
                self.notifier.update(*record.message, self.render(record), paced=not urgent)
                summary_ts = None if urgent else self._summary(record)
            except SlackError as exc:
                self._edit_failed(record, editor, exc)
                return False
            except Exception as exc:  # noqa: BLE001 - never leave the lease held
                log.exception("editing alert %s failed", alert_id)
                self.messages.edit_failed(
                    record,
                    editor,
                    f"{exc.__class__.__name__}",
                    self.clock(),
                    self.clock() + self._backoff(record.edit_failures + 1),
                )
                return False
            coalesced = self.messages.finish_edit(record, editor, self.clock(), summary_ts)
            self._count("edits")
            self._count("edits_coalesced", coalesced)
            latest = self.alerts.get(alert_id)
            again = latest is not None and latest.urgent_version > record.version
            record = self.messages.start_edit(alert_id, editor, self.clock(), EDIT_LEASE) if again else None
            urgent = urgent or again
        return True

    def _summary(self, record: AlertRecord) -> str | None:
        """Post or edit the thread's one activity summary; returns its ts when it was just posted."""
        if record.alert.grouping not in WITH_SUMMARY or record.alert.summary.count < 2:
            return None
        message = render_summary(record, self.clock())
        channel, thread = record.message
        if record.summary_ts:
            if record.summary_shown_version < record.version:
                self.notifier.update(channel, record.summary_ts, message)
            return record.summary_ts
        now = self.clock()
        if not self.messages.claim_summary(record.id, now, now - POST_DEADLINE):
            return None
        try:
            if record.summary_state == "posting":  # a crash may have posted it already: look first
                found = self.notifier.find_posted(channel, {record.id}, self._oldest(), thread_ts=thread)
                if record.id in found:
                    return found[record.id]
            return self.notifier.post(channel, message, thread_ts=thread)[1]
        except SlackError:
            self.messages.release_summary(record.id)
            raise

    def _edit_failed(self, record: AlertRecord, editor: str, exc: SlackError) -> None:
        failures = record.edit_failures + 1
        wait = timedelta(seconds=min(self.retry_base * 2**failures, 3600))
        self.messages.edit_failed(record, editor, str(exc), self.clock(), self.clock() + wait)
        self._note(exc)

    # thread replies ---------------------------------------------------------------------------
    def post_replies(self, alert_id: str | None = None) -> int:
        sent = 0
        self.unsettled.settle(quiet=True)
        for reply in self.messages.claim_replies(self.clock(), self.holder, alert_id):
            try:
                sent += self._post_reply(reply)
            except Exception:  # noqa: BLE001 - the store failed around the post: never strand the others
                log.exception("posting reply %s failed; it is reconciled by its metadata", reply.id)
                self.unsettled.add(
                    f"reply {reply.id}", partial(self.messages.reply_to_reconcile, reply.id, self.holder)
                )
        return sent

    def _post_reply(self, reply: Reply) -> int:
        try:
            message = render_reply(reply.id, reply.body, self.admins)
            _, ts = self.notifier.post(reply.channel, message, thread_ts=reply.thread_ts)
        except SlackError as exc:
            self.messages.reply_hand_back(
                reply,
                self.holder,
                str(exc),
                self.clock() + (self.retry_interval if exc.permanent else self._backoff(reply.attempts)),
            )
            self._note(exc)
            return 0
        except Exception as exc:  # noqa: BLE001
            log.exception("posting reply %s failed", reply.id)
            self.messages.reply_hand_back(
                reply, self.holder, exc.__class__.__name__, self.clock() + self._backoff(reply.attempts)
            )
            return 0
        self.messages.reply_posted(reply, self.holder, ts, self.clock())
        return 1

    # people and time --------------------------------------------------------------------------
    def announce(self, channel: str | None, body: dict) -> bool:
        """A message to a channel that is not an alert (planned root use opened or closed)."""
        try:
            self.notifier.post(channel or self.default_channel, render_announcement(body))
            return True
        except SlackError as exc:
            self._note(exc)
            log.error("could not announce %s in %s: %s", body.get("kind"), channel, exc.code)
            return False

    def acknowledge(self, alert_id: str, user: str) -> bool:
        """Store the ack once, update the message at once, and post the audit reply in its thread."""
        if not self.messages.acknowledge(alert_id, user, self.clock()):
            return False
        self.edit(alert_id, urgent=True)  # if another replica holds the edit, it shows the ack next
        self.post_replies(alert_id)
        return True

    def remind(self) -> int:
        """Queue due reminders (each counted with its reply, once), then post them."""
        now = self.clock()
        for record in self.messages.due_reminders(now):
            self.messages.reminded(record, now + REMINDER_EVERY if record.reminders + 1 < MAX_REMINDERS else None, now)
            self._count("reminders")
        return self.post_replies()

    # after a crash ----------------------------------------------------------------------------
    def reconcile(self, everything: bool = False) -> int:
        """Claims a dead poster left: find their message by metadata, else post them again.

        `everything`: this replica knows no other poster is alive (SQLite's lock); otherwise only
        claims older than POST_DEADLINE count as abandoned.
        """
        self.unsettled.settle()
        before = None if everything else self.clock() - POST_DEADLINE
        if everything:
            self.messages.drop_edit_leases()
        fixed = 0
        for record in self.messages.stale_postings(before):
            if not self.messages.take_over(record.id, record.claimed_at, self.holder, self.clock()):
                continue
            channel = record.target or self.default_channel
            try:
                found = self.notifier.find_posted(channel, {record.id}, self._oldest())
            except SlackError as exc:
                self._slack_failed(record, exc)
                continue
            if record.id in found:
                self.messages.posted(record.id, self.holder, channel, found[record.id], 0, self.clock())
                fixed += 1
            else:
                self._hand_back(record, "not found in the channel's history after a restart", timedelta(0))
        return fixed + self._reconcile_replies(before)

    def _reconcile_replies(self, before: datetime | None) -> int:
        fixed = 0
        for reply in self.messages.stale_replies(before):
            self.messages.take_over_reply(reply, self.holder, self.clock())
            try:
                found = self.notifier.find_posted(reply.channel, {reply.id}, self._oldest(), thread_ts=reply.thread_ts)
            except SlackError as exc:
                self.messages.reply_hand_back(reply, self.holder, str(exc), self.clock() + self.retry_interval)
                continue
            if reply.id in found:
                self.messages.reply_posted(reply, self.holder, found[reply.id], self.clock())
                fixed += 1
            else:
                self.messages.reply_hand_back(reply, self.holder, "not found after a restart", self.clock())
        return fixed

    def _oldest(self) -> float:
        return (self.clock() - RECONCILE_LOOKBACK).timestamp()

    def _note(self, exc: SlackError) -> None:
        self.health = SlackHealth(exc.code, exc.fix, self.clock())
        log.warning("slack error: %s - %s", exc.code, exc.fix)
        if self.metrics:
            self.metrics.slack_errors.labels(code=label(exc.code)).inc()

    def _count(self, name: str, amount: int = 1) -> None:
        if self.metrics and amount:
            getattr(self.metrics, name).inc(amount)
