"""The real-time path: long-poll the SQS queue that EventBridge fills with root events.

Each message is an EventBridge event whose `detail` is a CloudTrail record. Trusted events
go through the same detectors into the same store and grouping, with the same finding id the poller
gives, so a sign-in seen by both paths is posted once. A message is deleted only after its
finding is stored; one that cannot be parsed is left for the dead-letter queue; a forged or
irrelevant one is logged and dropped. Nothing here can stop the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.checks.cloudtrail import check_record, skip_reason
from bot.checks.eventbridge import accept_event
from bot.models import Finding
from bot.serve import health

if TYPE_CHECKING:
    from bot.aws.queue import Queue
    from bot.metrics import Metrics
    from bot.serve.monitor import Monitor
    from bot.store import Placed


class Bot(Protocol):
    """What the consumer needs of the running bot."""

    monitor: Monitor
    metrics: Metrics

    def placed(self, placed: Placed) -> None: ...
    def wake_delivery(self) -> None: ...


log = logging.getLogger(__name__)


class Consumer:
    def __init__(self, queue: Queue, bot: Bot, wait: int = 20, backoff: float = 5.0):
        self.queue = queue
        self.bot = bot
        self.wait = wait
        self.backoff = backoff
        self.state = "starting"
        self.messages = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_code: str | None = None  # the AWS error code, for /healthz
        self.last_message_at: datetime | None = None
        self.lag_seconds: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rootcheck-queue", daemon=True)

    def start(self) -> Consumer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop polling; messages received but not stored are handed back (not deleted)."""
        self._stop.set()
        self._thread.join(timeout)
        self.state = "stopped"

    def health(self) -> dict:
        """For /healthz: state, counts and a code of the fixed list; no queue URL, no AWS message."""
        return {
            "state": self.state,
            "messages": self.messages,
            "errors": self.errors,
            "lag_seconds": self.lag_seconds,
            **health.error(health.queue_code(self.last_error_code)),
        }

    def status(self) -> dict:
        return {
            "state": self.state,
            "messages": self.messages,
            "errors": self.errors,
            "last_error": self.last_error,
            "lag_seconds": self.lag_seconds,
            "last_message_at": self.last_message_at.isoformat() if self.last_message_at else None,
        }

    def _loop(self) -> None:
        from bot.aws.queue import QueueError  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                batch = self.queue.receive(wait=self.wait)
                self.state = "running"
                self._handle(batch)
            except QueueError as exc:
                self._error(str(exc), exc.code)
                self._stop.wait(self.backoff)
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything
                self._error(f"{exc.__class__.__name__}: {exc}", "queue_error")
                self._stop.wait(self.backoff)

    def _handle(self, batch: list[dict]) -> None:
        """The batch's findings are stored and grouped together, in event-time order (so the same
        events give the same alerts); only then are their messages deleted."""
        done, findings = [], []
        for message in batch:
            outcome = self._one(message)
            if isinstance(outcome, Finding):
                findings.append(outcome)
            if outcome != "unparseable":
                done.append(message["ReceiptHandle"])
        if self._stop.is_set():
            return  # not deleted: SQS hands these back after the visibility timeout
        if findings:
            try:
                self.bot.placed(self.bot.monitor.ingest(findings))
            except Exception as exc:  # noqa: BLE001 - e.g. the store is down: keep the batch for later
                self._error(f"{len(batch)} message(s) kept: {exc.__class__.__name__}: {exc}", "store_error")
                return
            for finding in findings:
                self._count("finding", "finding %s stored", finding.id, level=10)
        if done:
            self.queue.delete(done)
        if findings:
            self.bot.wake_delivery()

    def _one(self, message: dict) -> str | Finding:
        self.messages += 1
        self.last_message_at = datetime.now(UTC)
        sent = (message.get("Attributes") or {}).get("SentTimestamp")
        if sent:
            self.lag_seconds = round(time.time() - int(sent) / 1000, 3)
        try:
            event = json.loads(message.get("Body") or "")
        except ValueError:
            return self._count(
                "unparseable", "message %s is not JSON; left for the dead-letter queue", message.get("MessageId")
            )
        record, why = accept_event(event)
        if record is None or skip_reason(record):
            return self._count(
                "dropped", "message %s dropped: %s", message.get("MessageId"), why or skip_reason(record)
            )
        finding = check_record(record)
        if finding is None:
            return self._count("no_finding", "message %s: not a root event", message.get("MessageId"), level=10)
        return finding

    def _count(self, result: str, text: str, *args: Any, level: int = logging.WARNING) -> str:
        self.bot.metrics.queue_messages.labels(result=result).inc()
        log.log(level, text, *args)
        return result

    def _error(self, message: str, code: str) -> None:
        self.errors += 1
        self.last_error, self.last_error_code = message, code
        self.state = "error"
        log.error("queue consumer: %s", message)


def start_consumer(queue_url: str, bot: Bot) -> Consumer:
    from bot.aws.queue import Queue  # noqa: PLC0415

    return Consumer(Queue(bot.monitor.sweeper.sessions, queue_url), bot).start()
