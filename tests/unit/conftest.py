"""The unit layer: in-process tests of the pure modules of store/ and fs/, no root, no lg.

Hypothesis keeps no example database (it would be a stray .hypothesis/ in the
checkout) and no per-example deadline (CI machines are noisy); a failure prints the
seed and the smallest example it found. The default profile draws from a seed fixed by
each test's name, so a tree passes or fails the same way on every run;
``LG_HYPOTHESIS=thorough`` tries 50 times as many examples from a fresh seed, for a
change to the formats.
"""

import contextlib
import os
import signal
import threading
import time

import pytest
from hypothesis import settings

from layergit.background import _Holder

settings.register_profile("layergit", database=None, deadline=None, print_blob=True, derandomize=True)
settings.register_profile(
    "thorough", parent=settings.get_profile("layergit"), max_examples=5000, derandomize=False
)
settings.load_profile(os.environ.get("LG_HYPOTHESIS", "layergit"))


class Terminated(BaseException):
    """What lg raises for SIGTERM and SIGHUP (cli.main), played here by the fixture."""


_PLAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PATIENCE = 10.0  # seconds a sender waits for what it needs to see before it fails the test


class Interrupts:
    """Ctrl-C, kill and a closed terminal played for real: signals sent to the main
    thread (where Python raises KeyboardInterrupt or, as lg's handler does, Terminated;
    a blocked wait included) from a thread of its own. The test's handlers raise only
    inside :meth:`armed`, so a signal that comes after the call under test (one that
    returned too early) fails the test, not the session.

    A sender waits for what it can see rather than for a while: for the call under test
    to hold signals (background.signals_held's holder in for every signal not ignored),
    and for each signal to be taken before it sends the next, so that they are held in
    the order sent. What it waited for in vain fails the test at its teardown."""

    def __init__(self):
        self.active = False
        self.failures: list[str] = []
        self._threads: list[threading.Thread] = []
        self._cancelled = threading.Event()

    @contextlib.contextmanager
    def armed(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def _handler(self, signum, frame):
        if self.active:
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    def send(self, count: int, when: threading.Event, then, signals: tuple[int, ...] = (signal.SIGINT,)) -> None:
        """Once ``when`` is set and signals are held: ``count`` signals (``signals`` in
        turn), each once the one before was taken, then ``then()``; nothing more once
        the test has ended."""

        def play():
            try:
                self._until(when.is_set, "the call under test never began")
                holder = self._until(self._holder, "the call under test never held signals")
                for i in range(count):
                    signum = signals[i % len(signals)]
                    taken = len(holder.taken)
                    signal.pthread_kill(threading.main_thread().ident, signum)
                    if signal.getsignal(signum) is not signal.SIG_IGN:  # else gone at once
                        self._until(lambda taken=taken: len(holder.taken) > taken, f"signal {signum} was not held")
            except _Cancelled:
                return
            except TimeoutError as exc:
                self.failures.append(str(exc))
            then()

        thread = threading.Thread(target=play, name="interrupts", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _holder(self) -> _Holder | None:
        """signals_held's holder, once it is in for every signal played but an ignored one."""
        handlers = {signal.getsignal(signum) for signum in _PLAYED} - {signal.SIG_IGN}
        holder = handlers.pop() if len(handlers) == 1 else None
        return holder if isinstance(holder, _Holder) else None

    def _until(self, seen, what: str):
        """What ``seen()`` returns once it is true; looked at every millisecond."""
        deadline = time.monotonic() + _PATIENCE
        while not (result := seen()):
            if self._cancelled.is_set():
                raise _Cancelled
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} (waited {_PATIENCE:.0f} s)")
            time.sleep(0.001)
        return result


class _Cancelled(Exception):
    """The test ended before its sender was done: nothing more is sent."""


@pytest.fixture
def interrupts():
    played = Interrupts()
    previous = {signum: signal.signal(signum, played._handler) for signum in _PLAYED}
    try:
        yield played
    finally:
        played._cancelled.set()  # a sender still waiting sends nothing
        for thread in played._threads:
            thread.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if played.failures:
        pytest.fail("; ".join(played.failures))
