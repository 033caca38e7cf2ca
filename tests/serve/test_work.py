"""The listeners' work pool: bounded, so a flood of requests is refused, not queued without end."""

from __future__ import annotations

import threading

import pytest

from bot.serve.app import Busy, Work
from tests.harness import wait_for


def test_a_full_work_queue_refuses_and_frees_its_slots_as_jobs_finish():
    work = Work(threads=2, queue=3)
    gate = threading.Event()
    done = []
    for n in range(5):  # 2 running, 3 waiting
        work.submit(lambda n=n: (gate.wait(10), done.append(n)))
    with pytest.raises(Busy):
        work.submit(lambda: done.append("too many"))
    gate.set()
    work.shutdown()
    assert sorted(done) == [0, 1, 2, 3, 4]
    work = Work(threads=1, queue=0)
    work.submit(lambda: None)
    work.shutdown()


def test_a_failing_job_is_logged_and_gives_back_its_slot(caplog):
    work = Work(threads=1, queue=0)
    finished = threading.Event()

    def boom():
        finished.set()
        raise RuntimeError("boom")

    work.submit(boom)
    finished.wait(5)

    def again() -> bool:
        try:
            work.submit(lambda: None)
            return True
        except Busy:
            return False

    wait_for(again, timeout=5, interval=0.01)
    work.shutdown()
    assert "background work failed" in caplog.text
