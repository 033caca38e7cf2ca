""" "Was this you?": ask an account's owners in direct messages, take the first answer, call the admins
on "No" or when nobody answers in time.

Asked once per alert (a root session or root credentials alert, not expected, in an account with
owners); each direct message is claimed, sent with the alert id in its metadata and recorded, so a
crash never sends it twice; the deadline lives in the store, so a restart never escalates twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.models import CREDENTIALS, SESSION, Account, AlertRecord
from bot.slack.blocks import Names, render_question
from bot.slack.delivery import Unsettled
from bot.slack.notifier import Notifier, SlackError
from bot.slack.people import People

if TYPE_CHECKING:
    from bot.store import Answer, Store
    from bot.store.questions import Question

log = logging.getLogger(__name__)
MAX_ASKED = 20  # direct messages per alert; the other owners are named in the alert
ASKED_GROUPINGS = (SESSION, CREDENTIALS)
UNREACHABLE = frozenset(
    {"user_not_found", "user_disabled", "cannot_dm_bot", "users_not_found", "user_is_restricted", "channel_not_found"}
)
POST_DEADLINE = timedelta(minutes=5)


class Confirmer:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        people: People,
        account: Callable[[str | None], Account | None],
        names: Names,
        holder: str,
        timeout: timedelta,
        remind_after: timedelta,
        clock: Callable[[], datetime],
        retry_base: float = 5.0,
    ):
        self.alerts, self.questions, self.state = store.alerts, store.questions, store.state
        self.notifier = notifier
        self.people = people
        self.account = account
        self.names = names
        self.holder = holder
        self.timeout = timeout
        self.remind_after = remind_after
        self.clock = clock
        self.retry_base = retry_base
        self.unsettled = Unsettled()

    def ask_due(self) -> int:
        """Ask about every posted alert not asked yet (a crash between post and question included)."""
        return sum(self.ask(record) for record in self.questions.to_ask(self.clock() - timedelta(days=1)))

    def ask(self, record: AlertRecord) -> bool:
        """Queue the question for a posted alert, once; False when nobody is asked."""
        account = self.account(record.account_id)
        if record.alert.grouping not in ASKED_GROUPINGS or record.expected_by or not account or not account.owners:
            self.questions.ask(record.id, [], [], self.clock())  # decided: nobody to ask
            return False
        try:
            resolved = self.people.resolve(account.owners)
        except (SlackApiError, SlackRequestError, OSError) as exc:  # asked at the next run
            log.warning("cannot resolve the owners of %s yet: %s", record.account_id, exc.__class__.__name__)
            return False
        users = list(resolved.users)
        if resolved.unresolved:
            log.warning("owners of %s that resolve to nobody: %s", record.account_id, ", ".join(resolved.unresolved))
        asked = self.questions.ask(record.id, users[:MAX_ASKED], users[MAX_ASKED:], self.clock())
        if asked:
            self.state.audit(self.clock(), None, "asked", record.id, " ".join(users[:MAX_ASKED]))
        return asked

    def send(self) -> int:
        """Deliver queued questions: open the direct message, post it, record it."""
        sent = 0
        self.unsettled.settle(quiet=True)
        for question in self.questions.claim(self.clock(), self.holder):
            try:
                sent += self._send(question)
            except Exception:  # noqa: BLE001 - the store failed around the post: never strand the others
                key = f"{question.alert_id}:{question.user_id}"
                log.exception("asking %s failed; it is reconciled by its metadata", key)
                self.unsettled.add(f"question {key}", partial(self.questions.to_reconcile, question, self.holder))
        return sent

    def _send(self, question: Question) -> int:
        record = self.alerts.get(question.alert_id)
        if record is None:  # purged meanwhile
            self.questions.not_sent(question, self.holder, "the alert is gone", None)
            return 0
        try:
            dm = self.notifier.open_dm(question.user_id)
            _, ts = self.notifier.post(
                dm, render_question(record, question.user_id, self.names, self._permalink(record))
            )
        except SlackError as exc:
            permanent = exc.code in UNREACHABLE or exc.permanent
            retry = None if permanent else self.clock() + timedelta(seconds=self.retry_base * 2**question.attempts)
            self.questions.not_sent(question, self.holder, str(exc), retry)
            log.warning("could not ask %s about %s: %s", question.user_id, question.alert_id, exc.code)
            return 0
        self.questions.sent(question, self.holder, dm, ts, self.clock(), self.timeout)
        return 1

    def answer(self, alert_id: str, user: str, answer: str, reason: str | None) -> Answer:
        """Record an owner's answer (the first wins) and audit it; the caller shows it."""
        result = self.questions.answer(alert_id, user, answer, reason, self.clock(), self.remind_after)
        if result.counted:
            self.state.audit(self.clock(), user, f"answer_{answer}", alert_id, reason)
        return result

    def escalate_due(self) -> int:
        """Nobody answered in time (or nobody could be asked): call the admins, once."""
        called = 0
        for alert_id in self.questions.due_escalations(self.clock()):
            if self.questions.escalate(alert_id, self.clock()):
                self.state.audit(self.clock(), None, "escalated", alert_id, "no answer from the owners")
                called += 1
        return called

    def show_answers(self) -> int:
        """Update the direct messages of answered alerts: thanks, or who answered what."""
        shown = 0
        for question in self.questions.answers_to_show():
            record = self.alerts.get(question.alert_id)
            if record is None or question.dm_channel is None or question.ts is None:
                continue
            try:
                self.notifier.update(
                    question.dm_channel,
                    question.ts,
                    render_question(record, question.user_id, self.names, self._permalink(record)),
                    paced=False,
                )
            except SlackError as exc:
                log.warning("could not update the question to %s: %s", question.user_id, exc.code)
                if not exc.permanent:
                    continue
            self.questions.answer_shown(question)
            shown += 1
        return shown

    def reconcile(self, everything: bool = False) -> int:
        """Questions a dead sender claimed: find them by metadata in the direct message, else send again."""
        self.unsettled.settle()
        fixed = 0
        before = None if everything else self.clock() - POST_DEADLINE
        for question in self.questions.stale(before):
            if not self.questions.take_over(question, self.holder, self.clock()):
                continue
            try:
                dm = self.notifier.open_dm(question.user_id)
                key = f"{question.alert_id}:{question.user_id}"
                found = self.notifier.find_posted(dm, {key}, (self.clock() - timedelta(days=14)).timestamp())
            except SlackError as exc:
                self.questions.not_sent(question, self.holder, str(exc), self.clock())
                continue
            if key in found:
                self.questions.sent(question, self.holder, dm, found[key], self.clock(), self.timeout)
                fixed += 1
            else:
                self.questions.not_sent(question, self.holder, "not found after a restart", self.clock())
        return fixed

    def _permalink(self, record: AlertRecord) -> str | None:
        try:
            return self.notifier.permalink(*record.message) if record.ts else None
        except SlackError:
            return None
