"""The pacer and the task runner: spacing per key, and waits that never hold a worker."""

from __future__ import annotations

import threading
import time

from bot.pacing import Pacer, TaskRunner


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_spaces_calls_per_key():
    clock = FakeClock()
    pacer = Pacer(1.0, clock, clock.sleep)
    assert pacer.delay("a") == 0.0
    assert pacer.delay("b") == 0.0  # keys are independent
    clock.now += 0.25
    assert pacer.delay("a") == 0.75
    clock.now += 0.75
    assert pacer.delay("a") == 0.0


def test_hold_blocks_until_the_slot_is_free():
    clock = FakeClock()
    pacer = Pacer(1.0, clock, clock.sleep)
    sends = []
    for _ in range(4):
        pacer.hold(("acct", "us-east-1"))
        sends.append(clock.now)
    assert [round(b - a, 6) for a, b in zip(sends, sends[1:])] == [1.0, 1.0, 1.0]


def test_delayed_tasks_do_not_hold_workers():
    runner = TaskRunner(workers=1)
    done = []
    started = time.monotonic()
    try:
        runner.submit(lambda r: done.append(("late", time.monotonic() - started)), delay=0.3)
        for n in range(5):
            runner.submit(lambda r, n=n: done.append((n, time.monotonic() - started)))
        runner.wait()
    finally:
        runner.close()
    assert [name for name, _ in done] == [0, 1, 2, 3, 4, "late"]
    assert all(at < 0.25 for name, at in done if name != "late")  # one worker, not blocked by the wait
    assert dict(done)["late"] >= 0.3


def test_tasks_may_spawn_continuations_and_wait_sees_them():
    runner = TaskRunner(workers=3)
    seen = []
    lock = threading.Lock()

    def page(n):
        def task(r):
            with lock:
                seen.append(n)
            if n < 5:
                r.submit(page(n + 1), delay=0.01)

        return task

    try:
        runner.submit(page(0))
        runner.wait()
    finally:
        runner.close()
    assert seen == [0, 1, 2, 3, 4, 5]
