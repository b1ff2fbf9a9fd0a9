"""Writing a tree by two processes at once: the pieces, the queue and the fork.

Writing a checkout is system calls (create, copy or link, owner, mode, times, close)
and the Python between them, about half each. One process leaves a core idle; two
Python threads would queue for the GIL after every call (fs.farmwriter says what that
cost), so the writer forks: parent and child each take pieces of the tree from a
shared queue until it is empty. A copy checkout of minbase (6,756 entries) went from
0.49 s to 0.31-0.34 s, against ``ostree checkout -C``'s 0.40 s (ostree writes with one
process). What a piece's entries are, and how they are written, is the writer's
(:class:`PieceWriter`): fs.checkout.DirectoryWriter writes a snapshot's, and
fs.cache.RootfsClone a cached directory tree's.

The pieces (:func:`plan`). The parent reads the top of the tree, the directories with
the most entries first, and makes those directories, until there are :data:`PIECES`
subdirectory pieces or it has read :data:`PLAN_ENTRIES` entries: each directory it did
not open is a piece (its whole subtree, finished by whoever takes it), and so is each
run of files between the subdirectories of one it did open. The queue is a pipe of
piece numbers (:attr:`Plan.queue`), written before the fork; each process reads one
number at a time, so the one that ends a big piece late takes none of the small ones
left.

What the two must agree on comes after (:class:`PieceWriter`): the child sends what it
wrote in a pickle down a pipe, the parent may ask it one question back, and the
parent ends the write. An error in the child comes back as the same exception, and
the parent stops at its next piece; an error in the parent kills the child, so the
caller removes the destination only once nothing writes in it any more. Ctrl-C,
SIGTERM and SIGHUP are blocked across the fork, so each process meets them where it
knows what to do. A child whose parent died stops at its next piece (fs may not reach
runtime's prctl for a PDEATHSIG).

A small tree (:data:`SPLIT_FROM`) is written by the parent alone, through the same
pieces in the tree's order, and so is any tree when a fork would be unsafe or its
child unreapable: beside other threads (a fork copies the locks they hold, held for
ever) or with SIGCHLD not at its default (ignored, children reap themselves).
"""

from __future__ import annotations

import heapq
import os
import select
import signal
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from ..errors import LgError

PIECES = 64  # subdirectory pieces: enough that the two processes end within a small one of each other
PLAN_ENTRIES = 1 << 15  # entries the plan reads at most (a tree may list a shared subtree a million times)
SPLIT_FROM = 512  # entries seen while planning; below, a fork costs more than it saves
_QUEUE_MAX = select.PIPE_BUF // 4  # numbers one atomic write puts in the smallest pipe: beyond, groups
_HELD = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_NUMBER = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")

P = TypeVar("P")  # where a piece's entries go
E = TypeVar("E")  # an entry, as the tree being written lists it


@dataclass(frozen=True)
class Piece(Generic[P, E]):
    key: tuple[int, ...]  # its place in the tree's order
    place: P  # the directory its entries go into
    entries: list[E] | None  # None: a subdirectory the plan did not read (its taker does)
    whole: bool  # the directory is the piece's: finished once its entries are written


@dataclass
class Plan(Generic[P, E]):
    pieces: list[Piece[P, E]]  # in the tree's order
    opened: list[P]  # the directories the planner opened (the root aside): the parent finishes them
    seen: int  # entries read while planning

    @property
    def worth_two(self) -> bool:
        return self.seen >= SPLIT_FROM and len(self.pieces) > 1

    @property
    def queue(self) -> list[int]:
        """The order two processes take the pieces in: the whole subtrees first, those
        with the most entries at their top first (a subtree's size is not known, but
        one taken last would keep one process busy alone), then the runs of files,
        longest first, to even out the end. On minbase the two processes wrote 3,221
        and 3,440 entries, against 2,712 and 3,949 in the tree's order."""
        def size(i: int) -> int:
            return len(self.pieces[i].entries or ())

        return sorted(range(len(self.pieces)), key=lambda i: (not self.pieces[i].whole, -size(i)))


def plan(
    root: P, entries: list[E], is_dir: Callable[[E], bool],
    expand: Callable[[P, list[E], int], list[tuple[int, P, list[E] | None]]],
) -> Plan[P, E]:
    """Open directories from ``root`` (listing ``entries``), those with the most entries
    first, until there are PIECES subdirectory pieces, that many were opened or
    PLAN_ENTRIES were read. ``expand(place, entries, budget)`` makes the subdirectories
    of a directory being opened in the destination and returns each (its index in
    ``entries``, its place, its entries, read while the budget of entries lasts, else
    None). A directory without subdirectories is never opened: it would make no more
    pieces."""
    seen, order = len(entries), 0
    waiting: list[tuple[int, int, tuple[int, ...], P, list[E]]] = []  # (-entries, order, key, place, entries)
    heapq.heappush(waiting, (-len(entries), order, (), root, entries))
    pieces: list[Piece[P, E]] = []
    subdirectories = 0  # pieces that are subtrees
    opened: list[P] = []
    while waiting and len(waiting) + subdirectories < PIECES and len(opened) < PIECES and seen < PLAN_ENTRIES:
        _, _, key, place, listed = heapq.heappop(waiting)
        if key:
            opened.append(place)
        run: list[E] = []
        for i, e in enumerate(listed):  # the runs of files between subdirectories, keyed by their first
            if is_dir(e):
                if run:
                    pieces.append(Piece(key + (i - len(run),), place, run, whole=False))
                    run = []
            else:
                run.append(e)
        if run:
            pieces.append(Piece(key + (len(listed) - len(run),), place, run, whole=False))
        for i, below_place, below in expand(place, listed, PLAN_ENTRIES - seen):
            seen += len(below or ())
            if below is not None and any(is_dir(e) for e in below):
                order += 1
                heapq.heappush(waiting, (-len(below), order, key + (i,), below_place, below))
            else:
                pieces.append(Piece(key + (i,), below_place, below, whole=True))
                subdirectories += 1
    pieces += [Piece(key, place, listed, whole=True) for _, _, key, place, listed in waiting]
    pieces.sort(key=lambda p: p.key)
    return Plan(pieces, opened, seen)


class PieceWriter(Protocol):
    """A writer of pieces, and what its two processes say to each other."""

    def take(self, number: int) -> None:
        """Write piece ``number``."""

    def begun(self) -> None:
        """In the parent, once the pieces are being written: after the fork when there
        is one, else before the first piece. A thread the caller wants running meanwhile
        starts here, not before: beside it, no fork would be safe."""

    def forked(self) -> None:
        """In the child, before its first piece: count from nothing."""

    def ledger(self) -> object:
        """In the child, after its last piece: what the parent needs of its work."""

    def merge(self, ledger: Any) -> object:
        """In the parent: take in the child's ledger; returns the question for the child."""

    def answer(self, question: Any) -> object:
        """In the child: the answer to the parent's question."""

    def join(self, answer: Any) -> None:
        """In the parent, once the child has ended (``answer`` None when there was none)."""


def write_pieces(writer: PieceWriter, planned: Plan) -> None:
    """Write the pieces of ``planned`` with ``writer``: in two processes if the plan is
    worth it and a fork is safe here (and the kernel grants it), else in this one, in
    the tree's order."""
    safe = threading.active_count() == 1 and signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    if planned.worth_two and safe:
        try:
            _write_pieces(writer, planned, two=True)
            return
        except _NoFork:
            pass  # no process to spare (a pids limit, strict overcommit): nothing was taken yet
    _write_pieces(writer, planned, two=False)


def _write_pieces(writer: PieceWriter, planned: Plan, two: bool) -> None:
    order = planned.queue if two else list(range(len(planned.pieces)))
    size = max(1, -(-len(order) // _QUEUE_MAX))
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    queue, feed = os.pipe()
    try:
        numbers = b"".join(_NUMBER.pack(g) for g in range(len(groups)))
        assert os.write(feed, numbers) == len(numbers)  # at most PIPE_BUF: all at once, or nothing
        os.close(feed)
        if two:
            _Pair(writer, queue, groups).run()
        else:
            writer.begun()
            _take_all(writer, queue, groups)
            writer.join(None)
    finally:
        os.close(queue)


def _take_all(writer: PieceWriter, queue: int, groups: list[list[int]],
              between: Callable[[], None] | None = None) -> None:
    """Take groups of pieces from the queue until it is empty; ``between`` them, look up."""
    while number := os.read(queue, _NUMBER.size):
        for piece in groups[_NUMBER.unpack(number)[0]]:
            writer.take(piece)
        if between is not None:
            between()


class _Orphaned(Exception):
    """The child's parent died: what it would write, nobody would finish or remove."""


class _NoFork(Exception):
    """fork(2) failed: the pieces are all still in the queue, for one process to write."""


class _Pair:
    """The parent's side of a two-process write, and the child's whole life."""

    def __init__(self, writer: PieceWriter, queue: int, groups: list[list[int]]):
        self.writer, self.queue, self.groups = writer, queue, groups
        self.child = 0
        self.ledger: tuple[str, Any] | None = None  # the child's first message, if it came early

    def run(self) -> None:
        import pickle  # noqa: F401 - loaded once, before the fork, for both; a tree one process writes never needs it

        from_child, report = os.pipe()
        ask, to_child = os.pipe()
        parent = os.getpid()
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            self.child = os.fork()
        except BaseException as exc:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            for fd in (from_child, report, ask, to_child):
                os.close(fd)
            if isinstance(exc, OSError):
                raise _NoFork from exc
            raise
        if self.child == 0:  # pragma: no cover - the child reports through its pipe
            self._child_life(parent, report, ask, (from_child, to_child))
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            os.close(report)
            os.close(ask)
            self.writer.begun()
            _take_all(self.writer, self.queue, self.groups, lambda: self._peek(from_child))
            question = self.writer.merge(self._receive(from_child))
            _send(to_child, ("ok", question))
            answer = self._receive(from_child)
            self._reap()
            self.writer.join(answer)
        finally:
            if self.child:
                try:
                    os.kill(self.child, signal.SIGKILL)  # the parent failed: nothing may write on
                except ProcessLookupError:
                    pass
                self._reap()
            os.close(from_child)
            os.close(to_child)

    def _child_life(self, parent: int, report: int, ask: int, theirs: tuple[int, int]) -> NoReturn:
        """Write pieces, send the ledger, answer the question, and leave without running
        anything of the parent's (its finally blocks, atexit)."""
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
            for fd in theirs:
                os.close(fd)
            self.writer.forked()
            _take_all(self.writer, self.queue, self.groups, lambda: _orphaned(parent))
            _send(report, ("ok", self.writer.ledger()))
            question = _receive(ask)
            if question is not None:
                _send(report, ("ok", self.writer.answer(question[1])))
                code = 0
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
            try:
                _send(report, ("failed", _picklable(exc)))
            except BaseException:  # noqa: BLE001 - the parent or its pipe is gone: it says so itself
                pass
        finally:
            os._exit(code)

    def _peek(self, fd: int) -> None:
        """Between the parent's pieces: a child that failed stops the parent now, not
        when the queue is empty."""
        if self.ledger is None and select.select([fd], [], [], 0)[0]:
            self.ledger = _receive(fd)
            if self.ledger is None or self.ledger[0] != "ok":
                self._failed(self.ledger)

    def _receive(self, fd: int) -> Any:
        """The child's next value; raises its failure, or says how it ended."""
        message = self.ledger if self.ledger is not None else _receive(fd)
        self.ledger = None
        if message is None or message[0] != "ok":
            self._failed(message)
        return message[1]

    def _failed(self, message: tuple[str, Any] | None) -> NoReturn:
        status = self._reap()
        if message is not None:
            raise message[1]
        how = (f"killed by {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        raise LgError(f"the checkout's second process failed ({how})")

    def _reap(self) -> int:
        """Wait for the child; its status (0 if something else reaped it: SIGCHLD was
        made ignored meanwhile, by a signal handler of a library's caller)."""
        try:
            _, status = os.waitpid(self.child, 0)
        except ChildProcessError:
            status = 0
        self.child = 0
        return status


def _orphaned(parent: int) -> None:
    if os.getppid() != parent:
        raise _Orphaned


def _picklable(exc: BaseException) -> BaseException:
    """``exc`` if it goes through a pickle and comes back, else an LgError in its words."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - an exception that does not round-trip: its words do
        return LgError(f"{type(exc).__name__}: {exc}")
    return exc


def _send(fd: int, value: tuple[str, object]) -> None:
    import pickle

    body = pickle.dumps(value)
    data = memoryview(_LENGTH.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


def _receive(fd: int) -> tuple[str, Any] | None:
    """The (kind, value) the other process sent, or None if it ended first. Only ever
    our own process at the other end: a parent and its fork."""
    import pickle

    head = _read(fd, _LENGTH.size)
    body = None if head is None else _read(fd, _LENGTH.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _read(fd: int, n: int) -> bytes | None:
    pieces, left = [], n
    while left:
        data = os.read(fd, min(left, 1 << 20))
        if not data:
            return None
        pieces.append(data)
        left -= len(data)
    return b"".join(pieces)
