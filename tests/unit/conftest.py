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


class Interrupts:
    """Ctrl-C played for real: SIGINT sent to the main thread (where Python raises
    KeyboardInterrupt, a blocked wait included) from a thread of its own. The test's
    handler raises only inside :meth:`armed`, so a signal that comes after the call
    under test (one that returned too early) fails the test, not the session."""

    def __init__(self):
        self.active = False
        self._threads: list[threading.Thread] = []

    @contextlib.contextmanager
    def armed(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def _handler(self, signum, frame):
        if self.active:
            raise KeyboardInterrupt

    def send(self, count: int, when: threading.Event, then) -> None:
        """Once ``when`` is set: ``count`` SIGINTs 20 ms apart, then ``then()``."""

        def play():
            when.wait(10)
            for _ in range(count):
                time.sleep(0.02)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.02)
            then()

        thread = threading.Thread(target=play, name="interrupts", daemon=True)
        thread.start()
        self._threads.append(thread)


@pytest.fixture
def interrupts():
    played = Interrupts()
    previous = signal.signal(signal.SIGINT, played._handler)
    try:
        yield played
    finally:
        for thread in played._threads:
            thread.join(10)
        signal.signal(signal.SIGINT, previous)
