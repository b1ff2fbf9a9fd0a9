"""One background thread for the system calls of writing files, beside a thread that
parses and deflates (an import or commit depositing into the farm, fs.cache.FarmDeposit).

Writing a small file is mostly system calls (open, write, owner, mode, times, link),
which run without the GIL; on two cores they overlap the Python work of reading the
next member. It does not pay everywhere: a copy checkout that inflated and wrote each
file in a second thread measured slower than one that did not (2.9 s against 2.7 s,
minbase), though ISA-L and the system calls release the GIL: each file's few Python
lines between its calls made the threads take turns at it.

Jobs run in the order they came, at most ``depth`` wait (a bound on the memory they
hold), and the first failure (a full disk) stops the rest and is raised in the
submitting thread at its next call: the caller, not the worker, decides what a
failure undoes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Job = Callable[[], None]


class Background:
    """A worker thread running :data:`Job` s; call :meth:`close` (success) or
    :meth:`abandon` (the caller failed) exactly once. Jobs hold nothing that needs
    releasing when they are skipped (after a failure, or once abandoned)."""

    def __init__(self, name: str, depth: int):
        self._queue: queue.Queue[Job | None] = queue.Queue(depth)
        self._failure: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue ``job`` (waiting while ``depth`` are queued); raise an earlier job's failure."""
        self.check()
        self._queue.put(job)

    def check(self) -> None:
        """Raise the failure that stopped the worker, if one did."""
        if self._failure is not None:
            raise self._failure

    def wait(self) -> None:
        """Wait until every queued job has run; raise a failure among them."""
        self._queue.join()
        self.check()

    def close(self) -> None:
        """Run what is queued, stop the thread, and raise a failure among the jobs."""
        self._stop()
        self.check()

    def abandon(self) -> None:
        """Stop the thread without running what is queued."""
        self._abandoned = True
        self._stop()

    @property
    def stopped(self) -> bool:
        """Whether the thread has ended (close or abandon returned, not interrupted)."""
        return not self._thread.is_alive()

    def _stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if self._failure is None and not self._abandoned:
                    job()
            except BaseException as exc:  # raised in the submitting thread, which decides
                self._failure = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()
