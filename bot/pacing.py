"""Run many small calls (AWS API calls, Slack posts) on a bounded pool without letting pacing or polling hold a worker.

LookupEvents allows 2 requests/s per account and Region and people share that budget, so
rootcheck keeps to 1/s. A call that must wait is put back on a timer instead of sleeping in a
worker, so the pool stays busy with other accounts and a sweep takes about
calls x latency / workers.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

Task = Callable[["TaskRunner"], None]


class Pacer:
    """At most one call per `interval` for each key, counted from the last real call."""

    def __init__(
        self, interval: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ):
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def delay(self, key: Hashable) -> float:
        """0 and the slot is taken, or the seconds to wait before asking again."""
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is None or now - last >= self._interval:
                self._last[key] = now
                return 0.0
            return last + self._interval - now

    def ready_in(self, key: Hashable) -> float:
        """Seconds until the slot is free (0: now), without taking it."""
        with self._lock:
            last = self._last.get(key)
            return 0.0 if last is None else max(0.0, last + self._interval - self._clock())

    def hold(self, key: Hashable) -> None:
        """Block until the slot is free, then take it: the last word, at the moment of sending."""
        while (wait := self.delay(key)) > 0:
            self._sleep(wait)


class TaskRunner:
    """A thread pool plus a timer heap; `wait()` returns when no task is queued or running.

    The timer thread wakes only for a new earliest timer, and `wait()` only when the last task ends:
    at thousands of tasks a second, a wake-up per task costs more CPU than the tasks themselves.
    """

    def __init__(self, workers: int, clock: Callable[[], float] = time.monotonic):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rootcheck-aws")
        self._clock = clock
        self._timers: list[tuple[float, int, Task]] = []
        self._order = itertools.count()
        self._outstanding = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # no task outstanding
        self._timer_due = threading.Condition(self._lock)  # a new earliest timer, or closing
        self._closed = False
        self._timer_thread = threading.Thread(target=self._timer_loop, name="rootcheck-aws-timer", daemon=True)
        self._timer_thread.start()

    def submit(self, task: Task, delay: float = 0.0) -> None:
        with self._lock:
            self._outstanding += 1
            if delay > 0:
                entry = (self._clock() + delay, next(self._order), task)
                heapq.heappush(self._timers, entry)
                if self._timers[0] is entry:
                    self._timer_due.notify()
                return
        self._pool.submit(self._run, task)

    def wait(self) -> None:
        with self._lock:
            while self._outstanding:
                self._idle.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._timer_due.notify()
        self._pool.shutdown(wait=True)

    def _run(self, task: Task) -> None:
        try:
            task(self)
        finally:
            with self._lock:
                self._outstanding -= 1
                if not self._outstanding:
                    self._idle.notify_all()

    def _timer_loop(self) -> None:
        with self._lock:
            while not self._closed:
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    _, _, task = heapq.heappop(self._timers)
                    self._pool.submit(self._run, task)
                timeout = self._timers[0][0] - now if self._timers else None
                self._timer_due.wait(timeout)
