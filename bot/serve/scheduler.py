"""APScheduler jobs: leadership, the sweep, delivery, reminders and retention.

Every replica runs the scheduler; each job first asks whether this replica leads, so exactly
one sweeps and posts. The sweep job coalesces and never overlaps, and a pause of any length
yields one catch-up run (misfire grace of one interval).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.timeutil import utcnow

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, bot: Any, interval: timedelta, deliver_every: float = 2.0, remind_every: float = 30.0,
                 lease_every: float | None = None):
        self.bot = bot
        self.interval = interval
        self.deliver_every = deliver_every
        self.remind_every = remind_every
        self.lease_every = lease_every or max(0.5, min(interval.total_seconds() / 4, 15.0))
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self._leading = False
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self) -> None:
        s = self._scheduler
        grace = max(int(self.interval.total_seconds()), 1)
        s.add_job(self._lead, "interval", seconds=self.lease_every, id="lease", next_run_time=utcnow())
        # Paused until this replica holds the lock: `_lead` starts it at once then (at start-up and on
        # takeover), so the first sweep is not skipped while the lock is still being taken.
        s.add_job(self._guarded(self.bot.sweep), "interval", seconds=self.interval.total_seconds(), id="sweep",
                  misfire_grace_time=grace, next_run_time=None)
        s.add_job(self._guarded(self.bot.deliver), "interval", seconds=self.deliver_every, id="deliver",
                  misfire_grace_time=grace)
        s.add_job(self._guarded(self.bot.remind), "interval", seconds=self.remind_every, id="remind",
                  misfire_grace_time=grace)
        s.add_job(self._guarded(self.bot.purge), "interval", hours=24, id="purge", misfire_grace_time=3600)
        s.start()

    def wake_delivery(self) -> None:
        """Post now rather than at the next tick (after a queue message or a scan)."""
        job = self._scheduler.get_job("deliver")
        if job is not None:
            job.modify(next_run_time=utcnow())

    def stop(self, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.bot.store.leadership.release()
        self._leading = False

    def _lead(self) -> None:
        with self._lock:
            was = self._leading
            self._leading = self.bot.store.leadership.try_acquire()
        if self._leading and not was:
            log.info("this replica now runs the scheduler")
            self._guarded(self.bot.reconcile)()
            self._scheduler.modify_job("sweep", next_run_time=utcnow())
        elif was and not self._leading:
            log.warning("this replica lost the scheduler lease")

    def _guarded(self, job: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if not self._leading:
                return
            started = time.monotonic()
            try:
                job()
            except Exception:  # noqa: BLE001 - a job's failure is logged; the next tick tries again
                log.exception("job %s failed after %.1fs", getattr(job, "__name__", job), time.monotonic() - started)
        run.__name__ = getattr(job, "__name__", "job")
        return run
