"""fs.background: jobs run in order in one thread; the first failure stops the rest,
whose drops run instead, and reaches the submitting thread."""

from __future__ import annotations

import threading
import time

import pytest

from layergit.fs.background import Background


def test_jobs_run_in_order_in_another_thread():
    ran: list[tuple[int, str]] = []
    with Background("test", depth=2) as bg:
        for i in range(50):
            bg.submit(lambda i=i: ran.append((i, threading.current_thread().name)))
    assert [i for i, _ in ran] == list(range(50))
    assert {name for _, name in ran} == {"test"}


def test_the_first_failure_stops_the_rest_and_reaches_the_caller():
    started, release = threading.Event(), threading.Event()
    ran, dropped = [], []

    def fail():
        started.set()
        release.wait(10)
        raise OSError(28, "No space left on device")

    bg = Background("test", depth=8)
    bg.submit(fail)
    started.wait(10)
    for i in range(3):  # queued behind the failing job: dropped, never run
        bg.submit(lambda i=i: ran.append(i), lambda i=i: dropped.append(i))
    release.set()
    with pytest.raises(OSError, match="No space"):
        bg.wait()
    with pytest.raises(OSError, match="No space"):
        bg.submit(lambda: ran.append("late"))
    with pytest.raises(OSError, match="No space"):
        bg.close()
    assert ran == [] and dropped == [0, 1, 2]


def test_abandoning_drops_what_is_queued():
    ran, dropped = [], []
    bg = Background("test", depth=8)

    def until_abandoned():  # the job in progress when the caller fails
        for _ in range(1000):
            if bg._abandoned:
                return
            time.sleep(0.01)

    with pytest.raises(KeyboardInterrupt), bg:
        bg.submit(until_abandoned)
        for i in range(3):
            bg.submit(lambda i=i: ran.append(i), lambda i=i: dropped.append(i))
        raise KeyboardInterrupt
    assert ran == [] and dropped == [0, 1, 2]


def test_abandon_keeps_the_callers_exception_not_a_jobs():
    bg = Background("test", depth=2)
    bg.submit(lambda: 1 / 0)
    with pytest.raises(KeyError), bg:
        raise KeyError("the caller's own failure")
