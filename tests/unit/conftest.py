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

settings.register_profile("layergit", database=None, deadline=None, print_blob=True, derandomize=True)
settings.register_profile(
    "thorough", parent=settings.get_profile("layergit"), max_examples=5000, derandomize=False
)
settings.load_profile(os.environ.get("LG_HYPOTHESIS", "layergit"))


class Terminated(BaseException):
    """What lg raises for SIGTERM and SIGHUP (cli.main), played here by the fixture."""


_PLAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """Ctrl-C, kill and a closed terminal played for real: signals sent to the main
    thread (where Python raises KeyboardInterrupt or, as lg's handler does, Terminated;
    a blocked wait included) from a thread of its own. The test's handlers raise only
    inside :meth:`armed`, so a signal that comes after the call under test (one that
    returned too early) fails the test, not the session."""

    def __init__(self):
        self.active = False
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
        """Once ``when`` is set: ``count`` signals 20 ms apart (``signals`` in turn),
        then ``then()``; nothing more once the test has ended."""

        def play():
            when.wait(10)
            for i in range(count):
                time.sleep(0.02)
                if self._cancelled.is_set():
                    return
                signal.pthread_kill(threading.main_thread().ident, signals[i % len(signals)])
            time.sleep(0.02)
            then()

        thread = threading.Thread(target=play, name="interrupts", daemon=True)
        thread.start()
        self._threads.append(thread)


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
