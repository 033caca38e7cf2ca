"""APScheduler jobs: leadership, the sweep, delivery, reminders and retention.

Every replica runs the scheduler; each job first asks whether this replica leads, so exactly
one sweeps and posts. The sweep job coalesces and never overlaps, and a pause of any length
yields one catch-up run (misfire grace of one interval).

Stopping never waits inside APScheduler: its `shutdown(wait=True)` holds the job-store lock while
it waits for running jobs, and a running job that asks the scheduler anything (wake delivery, start
the sweep on a takeover) then waits for that lock forever. So `stop` tells jobs to stop asking,
shuts APScheduler down without waiting, and waits for the running jobs itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from bot.timeutil import utcnow

if TYPE_CHECKING:
    from bot.store import Store


class Jobs(Protocol):
    """What the scheduler runs: the running bot's periodic operations."""

    store: Store

    def sweep(self) -> Any: ...
    def deliver(self) -> None: ...
    def remind(self) -> None: ...
    def purge(self) -> None: ...
    def reconcile(self) -> None: ...


log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        bot: Jobs,
        interval: timedelta,
        deliver_every: float = 2.0,
        remind_every: float = 30.0,
        lease_every: float | None = None,
    ):
        self.bot = bot
        self.interval = interval
        self.deliver_every = deliver_every
        self.remind_every = remind_every
        self.lease_every = lease_every or max(0.5, min(interval.total_seconds() / 4, 15.0))
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self._leading = False
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._running = 0
        self._idle = threading.Condition()

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self) -> None:
        s = self._scheduler
        grace = max(int(self.interval.total_seconds()), 1)
        s.add_job(self._lead, "interval", seconds=self.lease_every, id="lease", next_run_time=utcnow())
        # Paused until this replica holds the lock: `_lead` starts it at once then (at start-up and on
        # takeover), so the first sweep is not skipped while the lock is still being taken.
        s.add_job(
            self._guarded(self.bot.sweep),
            "interval",
            seconds=self.interval.total_seconds(),
            id="sweep",
            misfire_grace_time=grace,
            next_run_time=None,
        )
        s.add_job(
            self._guarded(self.bot.deliver),
            "interval",
            seconds=self.deliver_every,
            id="deliver",
            misfire_grace_time=grace,
        )
        s.add_job(
            self._guarded(self.bot.remind), "interval", seconds=self.remind_every, id="remind", misfire_grace_time=grace
        )
        s.add_job(self._guarded(self.bot.purge), "interval", hours=24, id="purge", misfire_grace_time=3600)
        s.start()

    def wake_delivery(self) -> None:
        """Post now rather than at the next tick (after a queue message or a scan)."""
        self._run_now("deliver")

    def stop(self, timeout: float = 20.0) -> bool:
        """Stop taking work and wait (at most `timeout`) for running jobs; True when they finished.
        What a job did not finish is safe in the store: claims are handed back or reconciled, an
        account whose sweep did not end keeps its cursor."""
        self.stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        with self._idle:
            finished = self._idle.wait_for(lambda: self._running == 0, timeout)
        self.bot.store.leadership.release()
        self._leading = False
        return finished

    def _lead(self) -> None:
        if self.stopping.is_set():
            return
        with self._lock:
            was = self._leading
            self._leading = self.bot.store.leadership.try_acquire()
        if self._leading and not was:
            log.info("this replica now runs the scheduler")
            self._guarded(self.bot.reconcile)()
            self._run_now("sweep")
        elif was and not self._leading:
            log.warning("this replica lost the scheduler lease")

    def _run_now(self, job_id: str) -> None:
        if self.stopping.is_set():
            return
        try:
            self._scheduler.modify_job(job_id, next_run_time=utcnow())
        except (JobLookupError, SchedulerNotRunningError):  # stopping meanwhile
            pass

    def _guarded(self, job: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if not self._leading or self.stopping.is_set():
                return
            with self._idle:
                self._running += 1
            started = time.monotonic()
            try:
                job()
            except Exception:  # noqa: BLE001 - a job's failure is logged; the next tick tries again
                log.exception("job %s failed after %.1fs", getattr(job, "__name__", job), time.monotonic() - started)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        run.__name__ = getattr(job, "__name__", "job")
        return run
