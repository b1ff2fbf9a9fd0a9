"""layergit.background: jobs run in order in one thread; the first failure stops the rest
and reaches the submitting thread; an abandoned worker runs nothing more."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from layergit.background import _HELD, Background

from .conftest import Terminated


def test_jobs_run_in_order_in_another_thread():
    ran: list[tuple[int, str]] = []
    bg = Background("test", depth=2)
    for i in range(50):
        bg.submit(lambda i=i: ran.append((i, threading.current_thread().name)))
    bg.close()
    assert bg.stopped
    assert [i for i, _ in ran] == list(range(50))
    assert {name for _, name in ran} == {"test"}


def test_the_first_failure_stops_the_rest_and_reaches_the_caller():
    started, release = threading.Event(), threading.Event()
    ran = []

    def fail():
        started.set()
        release.wait(10)
        raise OSError(28, "No space left on device")

    bg = Background("test", depth=8)
    bg.submit(fail)
    started.wait(10)
    for i in range(3):  # queued behind the failing job: never run
        bg.submit(lambda i=i: ran.append(i))
    release.set()
    with pytest.raises(OSError, match="No space"):
        bg.wait()
    with pytest.raises(OSError, match="No space"):
        bg.submit(lambda: ran.append("late"))
    with pytest.raises(OSError, match="No space"):
        bg.close()
    assert ran == []


def test_abandoning_runs_nothing_more_and_raises_nothing():
    """The job in progress finishes (here: fails, once the abandon is under way); the
    queued ones never run, and its failure is not raised: the caller's own counts."""
    started = threading.Event()
    ran = []
    bg = Background("test", depth=8)

    def in_progress():
        started.set()
        for _ in range(1000):
            if bg._abandoned:
                raise OSError(28, "No space left on device")
            time.sleep(0.01)

    bg.submit(in_progress)
    started.wait(10)
    for i in range(3):
        bg.submit(lambda i=i: ran.append(i))
    bg.abandon()
    assert bg.stopped and ran == []


def test_a_read_ahead_failure_stays_raised():
    """A caller that caught the failure and read on must not take what follows for a
    clean end of the stream."""
    from layergit.background import ReadAhead

    class Broken:
        def __init__(self):
            self.calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise ValueError("digest mismatch")
            return b"x" * 10

    with ReadAhead(Broken(), chunk=10) as ahead:
        assert ahead.read(10) == b"x" * 10
        for _ in range(3):
            with pytest.raises(ValueError, match="digest mismatch"):
                ahead.read(10)


@pytest.mark.parametrize("signals, raised", [
    ((signal.SIGINT,), KeyboardInterrupt),
    ((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), KeyboardInterrupt),  # Ctrl-C, then kill, then hang-up
    ((signal.SIGTERM, signal.SIGINT), Terminated),
])
def test_abandon_waits_for_the_job_under_way_however_often_it_is_interrupted(interrupts, signals, raised):
    """The caller undoes what the jobs wrote once abandon returns (a pack being sealed
    is removed): Ctrl-Cs, a SIGTERM or a SIGHUP during the wait must not end it early.
    The first signal is raised, as lg would have raised it, once the job has ended."""
    started, release = threading.Event(), threading.Event()
    ended = []
    bg = Background("test", depth=1)

    def job():
        started.set()
        release.wait(10)
        ended.append(bg.stopped)

    bg.submit(job)
    started.wait(10)
    interrupts.send(3, when=started, then=release.set, signals=signals)
    with pytest.raises(raised), interrupts.armed():
        bg.abandon()
    assert ended == [False] and bg.stopped


def test_abandon_holds_a_signal_even_when_it_cannot_say_so(interrupts):
    """The notice goes to stderr, which a SIGHUP's terminal may have taken along: a
    failed write must not end the wait either."""
    started, release = threading.Event(), threading.Event()
    ended = []
    bg = Background("test", depth=1)
    bg.submit(lambda: (started.set(), release.wait(10), ended.append(bg.stopped)))
    started.wait(10)
    interrupts.send(2, when=started, then=release.set, signals=(signal.SIGHUP,))
    saved = os.dup(2)
    os.close(2)
    try:
        with pytest.raises(Terminated), interrupts.armed():
            bg.abandon()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert ended == [False] and bg.stopped


def test_abandon_ends_when_a_submit_was_interrupted_before_it_woke_the_worker():
    """An interrupt inside submit's put can land after the job is queued and before the
    worker is woken: the state is made here directly. abandon must still end (it used
    to wait forever for room in the full queue, deaf to Ctrl-C)."""
    ran = []
    bg = Background("test", depth=1)
    with bg._queue.mutex:  # queued, never notified
        bg._queue.queue.append(lambda: ran.append(1))
        bg._queue.unfinished_tasks += 1
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (bg.abandon(), done.set()), daemon=True)
    waiter.start()
    assert done.wait(10), "abandon did not end"
    assert bg.stopped and ran == []


def _held_job(bg: Background) -> tuple[threading.Event, threading.Event, list[bool]]:
    """A job under way until released (abandoned before it began, it would never run):
    (started, release, ended), where ended gets whether abandon had returned as the
    job ended."""
    started, release = threading.Event(), threading.Event()
    ended: list[bool] = []
    bg.submit(lambda: (started.set(), release.wait(10), ended.append(bg.stopped)))
    assert started.wait(10)
    return started, release, ended


def test_a_signal_during_the_notice_comes_second_and_is_not_said_again(interrupts, monkeypatch):
    """A SIGTERM while the notice of a Ctrl-C is written (stderr a slow terminal): the
    nested handler found nothing taken yet, said the notice again and came first."""
    bg = Background("test", depth=1)
    started, release, ended = _held_job(bg)
    said: list[bytes] = []
    write = os.write

    def slow_stderr(fd, data):
        if fd == 2 and interrupts.active:
            said.append(bytes(data))
            if len(said) == 1:
                signal.raise_signal(signal.SIGTERM)  # run at once, inside this write
            return len(data)
        return write(fd, data)

    interrupts.send(1, when=started, then=release.set)
    monkeypatch.setattr(os, "write", slow_stderr)
    with pytest.raises(KeyboardInterrupt), interrupts.armed():
        bg.abandon()
    assert ended == [False] and bg.stopped
    assert said == [b"lg: waiting for a write under way to end\n"]


def test_an_ignored_signal_stays_ignored_and_hides_no_later_one(interrupts):
    """lg run in the background by a shell ignores SIGINT. Held anyway, a Ctrl-C was
    delivered again into SIG_IGN in place of the SIGTERM held after it: the kill was
    lost, and the caller went on as if nothing had come."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    bg = Background("test", depth=1)
    started, release, ended = _held_job(bg)
    interrupts.send(2, when=started, then=release.set, signals=(signal.SIGINT, signal.SIGTERM))
    with pytest.raises(Terminated), interrupts.armed():
        bg.abandon()
    assert ended == [False] and bg.stopped
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.parametrize("signum, raised", [
    (signal.SIGINT, KeyboardInterrupt),  # to its own handler, just put back: it raises
    (signal.SIGTERM, Terminated),  # to its holder, not yet taken out
])
def test_a_signal_while_the_handlers_are_put_back_leaves_no_holder_in(interrupts, monkeypatch, signum, raised):
    """A signal just after the wait, once SIGINT's handler is back: signal.signal runs
    the pending handlers before it installs one, and SIGINT's raises. The putting back
    stopped there, and SIGTERM and SIGHUP stayed held for good: a later kill was lost."""
    _abandon_with_a_signal(interrupts, monkeypatch, signum, raised,
                           after=lambda sig, handler: sig == signal.SIGINT and handler == interrupts._handler)
    with pytest.raises(Terminated), interrupts.armed():
        signal.raise_signal(signal.SIGTERM)


def test_a_signal_while_another_handler_goes_back_leaves_no_holder_in(interrupts, monkeypatch):
    """A SIGTERM pending as SIGINT's handler is put back: signal.signal runs SIGTERM's
    handler (its holder, which passes it on: Terminated) before it installs SIGINT's,
    and the putting back went on to the next signal, SIGINT's holder left in."""
    _abandon_with_a_signal(interrupts, monkeypatch, signal.SIGTERM, Terminated, before=True,
                           after=lambda sig, handler: sig == signal.SIGINT and handler == interrupts._handler)


def test_a_signal_while_the_holders_go_in_is_held_too(interrupts, monkeypatch):
    """A SIGTERM once SIGINT's holder is in, before SIGTERM's: lg's handler raised
    Terminated out of the holding's setting up, and abandon returned without waiting,
    for the abort to run beside the write."""
    _abandon_with_a_signal(interrupts, monkeypatch, signal.SIGTERM, Terminated,
                           after=lambda sig, handler: sig == signal.SIGINT and handler != interrupts._handler)


def _abandon_with_a_signal(interrupts, monkeypatch, signum, raised, after, before=False) -> None:
    """abandon() of a job under way, ``signum`` raised once right after the first
    signal.signal(sig, handler) call for which ``after(sig, handler)`` holds (with
    ``before``, as that call begins, as a signal pending then is run): abandon must
    still wait for the job, raise ``raised``, and leave the test's handlers in."""
    bg = Background("test", depth=1)
    started, release, ended = _held_job(bg)
    install = signal.signal
    sent = threading.Event()

    def send_once(sig, handler):
        if interrupts.active and not sent.is_set() and after(sig, handler):
            sent.set()
            signal.raise_signal(signum)

    def then_a_signal(sig, handler):
        if before:
            send_once(sig, handler)
        previous = install(sig, handler)
        if not before:
            send_once(sig, handler)
        return previous

    interrupts.send(0, when=started, then=release.set)
    with monkeypatch.context() as patched:
        patched.setattr(signal, "signal", then_a_signal)
        with pytest.raises(raised), interrupts.armed():
            bg.abandon()
    assert sent.is_set() and ended == [False] and bg.stopped
    assert [signal.getsignal(s) == interrupts._handler for s in _HELD] == [True] * len(_HELD)


def test_signals_are_played_once_they_are_held(interrupts):
    """The interrupts fixture sends once the call under test holds signals, however
    late that is after the job began: sent before, they tested nothing, or the test
    failed for a signal that came early."""
    bg = Background("test", depth=1)
    started, release, ended = _held_job(bg)
    interrupts.send(2, when=started, then=release.set)
    with pytest.raises(KeyboardInterrupt), interrupts.armed():
        time.sleep(0.1)  # the caller is slow to give up: the holding begins late
        bg.abandon()
    assert ended == [False] and bg.stopped
