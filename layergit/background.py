"""Threads beside the one that parses and hashes: :class:`Background` runs jobs (objects
deflated into a pack, store.pack), :class:`ReadAhead` reads a stream ahead (a layer
received, hashed and inflated).

A thread pays when its work is long calls that release the GIL (ISA-L, hashlib, big
reads): a 1 MiB deflate runs beside the parser. It does not when the work is many
short system calls: after each one the thread must win the GIL back, and beside a
thread busy in Python that takes up to the switch interval (5 ms). Writing the farm's
small files that way held an import up (fs.farmwriter uses a process instead), and a
copy checkout that inflated and wrote each file in a second thread measured slower
than one that did not (2.9 s against 2.7 s, minbase).

Background's jobs run in the order they came, at most ``depth`` wait (a bound on the
memory they hold), and the first failure (a full disk) stops the rest and is raised in
the submitting thread at its next call: the caller, not the worker, decides what a
failure undoes.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

Job = Callable[[], None]

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # what ends lg: Ctrl-C, kill, a closed terminal
_WAKE = 0.5  # seconds between a worker's looks at its queue when nothing wakes it


@contextmanager
def signals_held(notice: str, hurry: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then deliver them again in
    the order they came, until one raises (lg's handlers all do, so the first decides:
    KeyboardInterrupt, or lg's Terminated; the later ones are dropped): for
    a wait that must not be cut short, such as the undoing of a write that must wait
    for the write to end. Catching the exceptions instead leaves windows, in the
    handler and between bytecodes, where a second signal escapes.

    ``notice`` is said once, on the first signal held; ``hurry``, if given, is called on
    each (in the handler), for the work waited on to end sooner. A signal ignored when
    the block begins stays ignored (SIGINT of lg run in the background by a shell):
    held, it would be delivered again into SIG_IGN, in place of a later one that is not.
    Only the main thread takes signals; elsewhere the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    holder = _Holder(notice, hurry)
    try:
        holder.install()
        yield
    finally:
        holder.release()


class _Holder:
    """The handler :func:`signals_held` puts in for each signal it holds.

    ``signal.signal`` runs the handlers of signals already pending before it installs
    one, and Python runs them between bytecodes: a handler can run, and raise, at any
    point of the installing and of the putting back. Whatever does is taken as a held
    signal, in its place in :attr:`taken`, and both go on to the last signal."""

    def __init__(self, notice: str, hurry: Callable[[], None] | None):
        self._notice = notice
        self._hurry = hurry
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int] = {
            signum: signal.SIG_DFL if handler is None else handler  # None: a handler set outside Python
            for signum in _HELD
            if (handler := signal.getsignal(signum)) is not signal.SIG_IGN
        }
        # What came, in order: a signal held, or what a handler raised while the holders
        # went in or out (lg's Terminated for a SIGTERM that came before its holder).
        self.taken: list[int | BaseException] = []
        self._released = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self._released:
            # Still in after the block: a signal raised out of the putting back between
            # two of its tries. Put back what this replaced, and deliver the signal to it.
            signal.signal(signum, self._previous[signum])
            signal.raise_signal(signum)
        else:
            self._take(signum)

    def install(self) -> None:
        """Put the holder in for every signal held. A handler that raises meanwhile (lg's
        Terminated, for a SIGTERM that came before its holder) ends a round, and the next
        round, in the same try, puts in what is missing: a signal during the installing
        must not end the block before it began (abandon's wait skipped, the abort beside
        the write). What a second signal raises while the first is taken still escapes,
        as a signal just before the holding began does."""
        self._put_in(dict.fromkeys(self._previous, self), self._take)

    def release(self) -> None:
        """Put back every previous handler, then deliver what came. A handler may raise
        while they go back (a signal just after the block, run by signal.signal before
        it installs the next one): that is taken too, and the putting back goes on in
        rounds, as the installing does, until every handler is back."""
        self._released = True
        self._put_in(self._previous, self.taken.append)  # not _take: the wait is over, nothing to say
        for came in self.taken:  # until one raises, as lg's handlers all do
            if isinstance(came, BaseException):
                raise came
            signal.raise_signal(came)

    @staticmethod
    def _put_in(handlers: dict, raised: Callable[[BaseException], None]) -> None:
        """signal.signal for each of ``handlers``, in rounds until every one is in: what
        a pending handler raises as one goes in (before it is installed) is given to
        ``raised``, and the next round puts in those still missing."""
        missing = dict(handlers)
        while missing:
            try:
                for signum, handler in list(missing.items()):
                    signal.signal(signum, handler)
                    del missing[signum]
            except BaseException as exc:
                raised(exc)

    def _take(self, came: int | BaseException) -> None:
        self.taken.append(came)  # first: a signal during the notice's write comes second
        if len(self.taken) == 1:
            try:
                os.write(2, f"lg: {self._notice}\n".encode())
            except OSError:
                pass  # no stderr (closed, or a terminal gone with the SIGHUP): still held
        if self._hurry is not None:
            self._hurry()


class Background:
    """A worker thread running :data:`Job` s; call :meth:`close` (success) or
    :meth:`abandon` (the caller failed, or a close was interrupted). Jobs hold nothing
    that needs releasing when they are skipped (after a failure, or once abandoned)."""

    def __init__(self, name: str, depth: int):
        self._queue: queue.Queue[Job | None] = queue.Queue(depth)
        self._failure: BaseException | None = None
        self._abandoned = False
        # Set by the worker as it ends. Thread.join is not waited on: on Python 3.11 a
        # KeyboardInterrupt in join marks a thread still running as stopped (bpo-45274's
        # fix releases the lock the running thread holds), so a second join returns at once.
        self._ended = threading.Event()
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
        """Stop the thread without running what is queued, once the job under way ends.

        The caller undoes what the jobs wrote next (a pack being sealed is removed), so
        the wait holds Ctrl-C and termination signals (signals_held): a second Ctrl-C
        must not let the undoing run beside a job still writing. The first is raised
        once the thread has ended.
        """
        self._abandoned = True
        with signals_held("waiting for a write under way to end"):
            stop_sent = False
            while not self._ended.is_set():
                if not stop_sent:
                    try:
                        self._queue.put(None, timeout=_WAKE)  # full: a job not yet taken (skipped)
                    except queue.Full:
                        continue
                    stop_sent = True
                self._ended.wait()

    @property
    def stopped(self) -> bool:
        """Whether the worker has ended (close or abandon returned, not interrupted)."""
        return self._ended.is_set()

    def _stop(self) -> None:
        self._queue.put(None)
        self._ended.wait()

    def _work(self) -> None:
        try:
            while (job := self._next()) is not None:
                try:
                    if self._failure is None and not self._abandoned:
                        job()
                except BaseException as exc:  # raised in the submitting thread, which decides
                    self._failure = exc
                finally:
                    self._queue.task_done()
            self._queue.task_done()
        finally:
            self._ended.set()

    def _next(self) -> Job | None:
        """The next job, or None to stop. A timed wait: an interrupt inside submit's put,
        after the job is queued but before the worker is woken, must not leave the
        worker asleep beside a full queue (abandon would wait for room forever)."""
        while True:
            try:
                return self._queue.get(timeout=_WAKE)
            except queue.Empty:
                continue


class ReadAhead:
    """A stream read by a thread of its own, up to ``depth`` chunks ahead of the reader.

    For a layer being pulled or imported: reading it means receiving, hashing and
    inflating it (ISA-L, hashlib and the socket all run without the GIL), while the
    reader parses the tar and stores its members; on two cores the two halves overlap.
    Like :class:`Background`, a failure of the thread (a digest that does not match, a
    limit, a broken connection) is raised to the reader, at the point of the stream
    where it happened.

    ``read(n)`` may return fewer bytes than asked before the end, as a raw stream does.
    Use it as a context manager: leaving the block early stops the thread after the
    read it is in. That read is not waited for (a registry that stopped answering
    takes its timeout), so the source must not be used again afterwards; it is not
    closed here.
    """

    def __init__(self, source, chunk: int = 1 << 20, depth: int = 4):
        self._source = source
        self._chunk = chunk
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self._stop = False
        self._buf = b""
        self._pos = 0
        self._ended = False
        self._failure: BaseException | None = None  # raised again by every later read
        self._thread = threading.Thread(target=self._work, name="read-ahead", daemon=True)
        self._thread.start()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _work(self) -> None:
        try:
            while not self._stop:
                data = self._source.read(self._chunk)
                self._queue.put(data)
                if not data:
                    return
        except BaseException as exc:  # raised in the reader, at this point of the stream
            self._queue.put(exc)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (everything left with -1); b"" only at the end."""
        if n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self._failure is not None:
            raise self._failure
        if self._pos >= len(self._buf):
            if self._ended:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._ended = True
                self._failure = item
                raise item
            if not item:
                self._ended = True
                self._thread.join()  # it returns right after handing over the end
                return b""
            self._buf, self._pos = item, 0
        end = self._pos + n
        out = self._buf[self._pos:end] if self._pos or end < len(self._buf) else self._buf
        self._pos = end
        return out

    def close(self) -> None:
        """Stop the thread: at once at the end, else after the read it is in."""
        self._stop = True
        while True:  # make room for a hand-over it may be blocked in
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
