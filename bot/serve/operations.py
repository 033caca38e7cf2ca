"""The running bot's operations, shared by the scheduler, the Slack listeners and /healthz.

Each method is one thing an operator would name: sweep, deliver, remind, scan, expect, health.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.metrics import Metrics, label
from bot.models import AlertRecord
from bot.serve import health
from bot.store import Answer, Placed, Store
from bot.timeutil import parse_time, utcnow

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.serve.consumer import Consumer
    from bot.serve.monitor import Monitor, SweepOutcome
    from bot.serve.scheduler import Scheduler
    from bot.slack.authz import Authorizer
    from bot.slack.confirm import Confirmer
    from bot.slack.delivery import Deliverer

log = logging.getLogger(__name__)
SCAN_LEASE = timedelta(hours=1)


class Operations:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        monitor: Monitor,
        deliverer: Deliverer,
        authz: Authorizer,
        metrics: Metrics,
        holder: str,
        confirmer: Confirmer,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings = settings
        self.store = store
        self.monitor = monitor
        self.deliverer = deliverer
        self.authz = authz
        self.metrics = metrics
        self.holder = holder
        self.confirmer = confirmer
        self.clock = clock
        self.started_at = clock()
        self.consumer: Consumer | None = None  # the queue consumer, when configured
        self.scheduler: Scheduler | None = None
        self.setup_error: tuple[str, str] | None = None  # (code for /healthz, message for status and logs)
        self._high_risk_seen: dict[str, datetime] = {}  # high-risk call's own alert -> event time

    # jobs -----------------------------------------------------------------------------------
    def sweep(self, only: list[str] | None = None) -> SweepOutcome:
        started = self.clock()
        try:
            outcome = self.monitor.run_sweep(only)
        except Exception as exc:  # noqa: BLE001 - no credentials, Organizations denied: shown, retried
            self.setup_error = (health.sweep_code(exc), str(exc))
            self.metrics.sweeps.labels(result="failed").inc()
            log.error("sweep failed: %s", exc)
            raise
        self.setup_error = None
        failed = len(outcome.unchecked)
        self.metrics.sweeps.labels(result="partial" if failed else "ok").inc()
        self.metrics.sweep_seconds.observe((self.clock() - started).total_seconds())
        self.metrics.accounts_checked.inc(outcome.accounts - failed)
        self.metrics.accounts_failed.inc(failed)
        self.metrics.failing_accounts.set(failed)
        self.metrics.last_sweep.set(self.clock().timestamp())
        for error in outcome.errors:
            self.metrics.aws_errors.labels(code=label(error.code)).inc()
            log.warning("account not checked: %s", error.line())
        self.placed(outcome.placed)
        log.info(
            "sweep finished: %d account(s), %d failed, %d new finding(s) in %d new alert(s)",
            outcome.accounts,
            failed,
            len(outcome.new_findings),
            len(outcome.placed.opened),
        )
        self.wake_delivery()
        return outcome

    def placed(self, placed: Placed) -> None:
        """Count what grouping did (findings grouped versus alerts opened)."""
        for finding in placed.new_findings:
            self.metrics.findings.labels(kind=finding.kind, severity=finding.severity).inc()
        self.metrics.findings_grouped.inc(len(placed.new_findings) - len(placed.opened))
        self.metrics.alerts_opened.inc(len(placed.opened))
        for alert_id, moment in placed.high_risk:
            if moment is not None:
                self._high_risk_seen.setdefault(alert_id, moment)

    def deliver(self) -> None:
        """One delivery run: waiting console calls, new alerts, owners' questions, due edits, thread
        replies (escalations among them), stale claims."""
        self.placed(self.monitor.place_waiting())
        for record in self.deliverer.deliver():
            self._observe_freshness(record)
        self.confirmer.ask_due()
        self.confirmer.send()
        self.confirmer.escalate_due()
        self.deliverer.edit_due()
        self.deliverer.post_replies()
        self.confirmer.show_answers()
        self.deliverer.reconcile()
        self.confirmer.reconcile()

    def remind(self) -> None:
        self.deliverer.remind()

    def answer(self, alert_id: str, user: str, answer: str, reason: str | None) -> Answer:
        """An owner's "was this you?" answer: recorded once, then shown at once in the channel alert,
        its thread (the admins are called on No) and the owners' direct messages."""
        result = self.confirmer.answer(alert_id, user, answer, reason)
        if result.counted:
            self.deliverer.edit(alert_id, urgent=True)
            self.deliverer.post_replies(alert_id)
            self.confirmer.show_answers()
        return result

    def reconcile(self) -> None:
        """On taking the scheduler: finish what a crashed leader left between its steps."""
        released = self.monitor.release_held()
        if released:
            log.warning("released %d finding(s) a crashed sweep left waiting for its digest decision", released)
        fixed = self.deliverer.reconcile(everything=self.store.leadership.exclusive)
        fixed += self.confirmer.reconcile(everything=self.store.leadership.exclusive)
        if fixed:
            log.info("reconciled %d message(s) posted before a restart", fixed)

    def purge(self) -> None:
        self.store.state.purge(self.clock() - self.settings.retention)

    def wake_delivery(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake_delivery()

    # commands -------------------------------------------------------------------------------
    def scan(self, user: str, only: list[str] | None, answer: Callable[[str], None]) -> None:
        from bot.slack.replies import scan_text  # noqa: PLC0415

        now = self.clock()
        holder = f"{user}/{uuid.uuid4().hex[:8]}"  # one lease per request: a holder would renew its own
        if not self.store.state.take_lease("scan", holder, SCAN_LEASE, now, detail=now.isoformat()):
            running = self.store.state.lease("scan", now) or {}
            answer(
                f":hourglass: A scan is already running, started by <@{running.get('holder', '?').split('/')[0]}> "
                f"at {running.get('detail', '?')[:19].replace('T', ' ')} UTC."
            )
            return
        self.store.state.audit(now, user, "scan", ",".join(only or []) or "all")
        answer(":mag: Scan started. I will post here when it is done.")
        try:
            outcome = self.sweep(only)
            summary = scan_text(outcome.accounts, len(outcome.new_findings), outcome.errors)
        except Exception as exc:  # noqa: BLE001 - tell the user; the log has the details
            summary = f":warning: The scan failed: {exc}"
        finally:  # let go first: whoever reads the summary may start the next scan at once
            self.store.state.release_lease("scan", holder)
        answer(summary)

    def expect(self, user: str, account: str, duration: timedelta, reason: str) -> None:
        """Open a window of planned root use, and say so in the account's alert channel: a window
        that lowers alerts for up to a week is never opened unseen."""
        now = self.clock()
        # CloudTrail's eventTime has whole seconds: a sign-in in the announcement's own second is inside
        self.store.state.expect(account, now.replace(microsecond=0), duration, user, reason)
        self.store.state.audit(now, user, "expect", account, f"{duration} {reason}")
        self.deliverer.announce(
            self.monitor.target(account),
            {
                "kind": "expect",
                "user": user,
                "account": account,
                "name": self.monitor.account_name(account),
                "until": (now + duration).isoformat(),
                "reason": reason,
            },
        )

    def cancel_expectation(self, user: str, account: str) -> int:
        now = self.clock()
        closed = self.store.state.cancel_expectation(account, user, now)
        if closed:
            self.store.state.audit(now, user, "expect_cancel", account)
            self.deliverer.announce(
                self.monitor.target(account),
                {"kind": "expect_cancel", "user": user, "account": account, "name": self.monitor.account_name(account)},
            )
        return closed

    # health ---------------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict]:
        try:
            self.store.state.ping()
            last = self.store.state.last_sweep()  # a real read: SQLite answers SELECT 1 even from a broken file
            store = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means the store does not answer
            self.metrics.healthy.set(0)
            return False, {"status": "unhealthy", "store": f"error: {exc.__class__.__name__}"}
        finished = last.finished_at if last else None
        fresh = self.clock() - (finished or self.started_at) < 3 * self.settings.sweep_interval
        body = {
            "status": "ok" if fresh else "unhealthy",
            "store": store,
            "last_sweep_finished_at": finished.isoformat() if finished else None,
            "failing_accounts": last.failed if last else 0,
            "slack": health.error(health.slack_code(self.deliverer.health.code)),
            "scheduler": "leader" if self.scheduler and self.scheduler.leading else "standby",
        }
        if self.setup_error:
            body["sweep_error"] = health.error(self.setup_error[0])
        if self.consumer is not None:
            body["queue"] = self.consumer.health()
        self.metrics.healthy.set(1 if fresh else 0)
        return fresh, body

    def status(self, visible: set[str] | None = None) -> dict:
        """What `/rootcheck status` shows one user: everything about the accounts they may see
        (`visible`, None: all), with the AWS and Slack messages /healthz leaves out."""
        healthy, _ = self.health()
        last = self.store.state.last_sweep()
        failing = [a for a in self.store.state.failing_accounts() if visible is None or a["account_id"] in visible]
        alerts = self.store.alerts.open_alerts(accounts=visible, limit=10000)
        slack = self.deliverer.health
        return {
            "healthy": healthy,
            "last_sweep": last.__dict__ if last else None,
            "failing": failing,
            "slack": {"error": slack.code, "fix": slack.fix},
            "open_alerts": sum(a.state == "posted" for a in alerts),
            "failed_alerts": sum(a.state == "failed" for a in alerts),
            "pending": sum(a.state in ("pending", "posting") for a in alerts),
            "queue": self.consumer.status() if self.consumer is not None and visible is None else None,
            "sweep_error": self.setup_error[1] if self.setup_error and visible is None else None,
            "expected": [
                e
                for e in self.store.state.open_expectations(self.clock())
                if visible is None or e.account_id in visible
            ],
            "scheduler": "leader" if self.scheduler and self.scheduler.leading else "standby",
        }

    def _observe_freshness(self, record: AlertRecord) -> None:
        opener = record.opener
        moment = parse_time(opener.event_time) if opener and opener.event_time else None
        if moment:
            self.metrics.event_to_post.observe(max((self.clock() - moment).total_seconds(), 0))
        seen = self._high_risk_seen.pop(record.id, None)
        if seen is not None:
            self.metrics.high_risk_to_alert.observe(max((self.clock() - seen).total_seconds(), 0))
