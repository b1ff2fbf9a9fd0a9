"""A copy checkout written by two processes at once.

Writing a checkout is system calls (create, copy, owner, mode, times, close) and the
Python between them, about half each. One process leaves a core idle; two Python
threads would queue for the GIL after every call (fs.farmwriter says what that
cost), so the checkout forks: parent and child each take pieces of the tree from a
shared queue until it is empty, and a 6,768-entry image is written in a little more
than half the time (``ostree checkout -C`` writes with one).

The pieces. The parent reads the top of the snapshot, the directories with the most
entries first, and makes those directories, until there are :data:`PIECES` pieces:
each directory it did not open is one (its whole subtree, finished by whoever takes
it), and the files of each one it did are another. The queue is a pipe of piece
numbers in snapshot order, written before the fork; each process reads a number at a
time, so the one that finishes a big piece early takes the small ones left.

What the two must agree on comes after: a hardlink whose leader the process did not
make itself is put off, and the parent makes it at the end, once the child has said
which of those leaders it made (every leader must still be an entry this checkout
created), and then puts back the mtime of the directory it went into. The directories
the parent opened are finished by the parent last, deepest first. The child sends what
it wrote (counts, warnings, put-off links and directories) in a pickle down a pipe;
an error in it comes back as the same exception, and an error in the parent kills
it, so the caller removes the destination only once nothing writes in it any more.

A small tree (:data:`SPLIT_FROM`) or a process with other threads (a fork would copy
their locks held) is written by the parent alone, through the same pieces.
"""

from __future__ import annotations

import heapq
import os
import pickle
import signal
import struct
import threading
from dataclasses import dataclass
from typing import NoReturn

from ..errors import LgError
from ..store import meta as M
from ..store.snapshot import Node, read_dir
from .checkout import CheckoutResult, DirectoryWriter, unmade

PIECES = 64  # enough that the two processes end within a small piece of each other
SPLIT_FROM = 512  # entries seen while planning; below, a fork costs more than it saves
_PIECE = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class _Place:
    """A directory of the checkout: the directory nodes from the root down to it,
    and the stored path of each (the root's, b"", first)."""

    stack: tuple[Node, ...]
    paths: tuple[bytes, ...]

    @property
    def parts(self) -> list[bytes]:
        return [n.name for n in self.stack]

    def below(self, node: Node) -> _Place:
        return _Place(self.stack + (node,), self.paths + (self.paths[-1] + b"/" + node.stored,))


@dataclass(frozen=True)
class _Piece:
    key: tuple[int, ...]  # its place in snapshot order
    place: _Place  # the directory its entries go into
    nodes: list[Node]
    whole: bool  # the directory is the piece's: finished once its entries are written


@dataclass(frozen=True)
class _Link:
    """A hardlink put off until every leader is made."""

    key: tuple[int, ...]  # the piece's key, then its place in the piece
    place: _Place
    node: Node
    admitted: Node  # as the policy lets it onto the host (DirectoryWriter.admit)
    path: bytes  # its stored path


@dataclass
class _Ledger:
    """What one process wrote that the parent must know to finish the checkout."""

    result: CheckoutResult
    links: list[_Link]
    deferred: list[tuple[list[bytes], M.EntryMeta]]


class SplitWriter(DirectoryWriter):
    """A DirectoryWriter for a user's copy checkout, written by two processes."""

    def __init__(self, store, policy=None, copies=None):
        super().__init__(store, policy, copies)
        self._links: list[_Link] = []
        self._key: tuple[int, ...] = ()
        self._child = 0  # the child's pid while it runs

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        own, nodes = read_dir(self.store, tree)
        pieces, opened, seen = self._plan(nodes)
        queue, feed = os.pipe()
        try:
            os.write(feed, b"".join(_PIECE.pack(i) for i in range(len(pieces))))
            os.close(feed)
            if seen >= SPLIT_FROM and len(pieces) > 1 and threading.active_count() == 1:
                self._split(pieces, queue)
            else:
                self._take(pieces, queue)
                self._join([], set(), set())
        finally:
            os.close(queue)
        for place in sorted(opened, key=lambda p: len(p.stack), reverse=True):
            self._finish(place)
        self._deferred.sort(key=lambda d: len(d[0]), reverse=True)  # finish() goes from the top down
        return own

    def _plan(self, nodes: list[Node]) -> tuple[list[_Piece], list[_Place], int]:
        """Open the directories with the most entries from the top until there are
        PIECES pieces (or that many were opened): returns the pieces in snapshot order,
        the directories opened (the root aside) and how many entries were seen. A
        directory without subdirectories is never opened: it would make no more pieces."""
        root = _Place((), (b"",))
        seen, order = len(nodes), 0
        # directories to open, biggest first: (-entries, order, key, place, entries)
        waiting: list[tuple[int, int, tuple[int, ...], _Place, list[Node]]] = []
        heapq.heappush(waiting, (-len(nodes), order, (), root, nodes))
        pieces: list[_Piece] = []
        opened: list[_Place] = []
        while waiting and len(waiting) + len(pieces) < PIECES and len(opened) < PIECES:
            _, _, key, place, entries = heapq.heappop(waiting)
            if place is not root:
                opened.append(place)
            files = [n for n in entries if n.meta.kind != "d"]
            if files:
                pieces.append(_Piece(key + (-1,), place, files, whole=False))
            fd = self._open_path(place.parts)
            try:
                for i, node in enumerate(entries):
                    if node.meta.kind != "d":
                        continue
                    self.result.entries += 1
                    os.mkdir(node.name, 0o700, dir_fd=fd)
                    below = read_dir(self.store, node.tree)[1]
                    seen += len(below)
                    if any(n.meta.kind == "d" for n in below):
                        order += 1
                        heapq.heappush(waiting, (-len(below), order, key + (i,), place.below(node), below))
                    else:
                        pieces.append(_Piece(key + (i,), place.below(node), below, whole=True))
            finally:
                os.close(fd)
        pieces += [_Piece(key, place, below, whole=True) for _, _, key, place, below in waiting]
        pieces.sort(key=lambda p: p.key)
        return pieces, opened, seen

    def _take(self, pieces: list[_Piece], queue: int) -> None:
        """Write pieces from the queue until it is empty."""
        while number := os.read(queue, _PIECE.size):
            piece = pieces[_PIECE.unpack(number)[0]]
            self._key = piece.key + (0,)
            fd = self._open_path(piece.place.parts)
            try:
                self._stack, self._paths = list(piece.place.stack), list(piece.place.paths)
                self.write_below(fd, piece.nodes)
                if piece.whole:
                    self.finish_dir(fd)
            finally:
                os.close(fd)

    def unmade_leader(self, node: Node, admitted: Node, path: bytes) -> None:
        place = _Place(tuple(self._stack), tuple(self._paths))
        self._links.append(_Link(self._key, place, node, admitted, path))
        self._key = self._key[:-1] + (self._key[-1] + 1,)

    def _split(self, pieces: list[_Piece], queue: int) -> None:
        """Write the pieces with a child process, then join what it wrote."""
        from_child, report = os.pipe()
        ask, to_child = os.pipe()
        self._child = os.fork()
        if self._child == 0:  # pragma: no cover - the child reports through its pipe
            os.close(from_child)
            os.close(to_child)
            self._child_life(pieces, queue, report, ask)
        os.close(report)
        os.close(ask)
        try:
            self._take(pieces, queue)
            ledger = _receive(from_child)
            if not isinstance(ledger, _Ledger):
                self._child_failed(ledger)
            self._merge(ledger)
            _send(to_child, self._needed(ledger.links))
            answer = _receive(from_child)
            if not isinstance(answer, tuple):
                self._child_failed(answer)
            self._reap()
            self._join(ledger.links, *answer)
        finally:
            if self._child:
                os.kill(self._child, signal.SIGKILL)  # the parent failed: nothing may write on
                self._reap()
            os.close(from_child)
            os.close(to_child)

    def _child_life(self, pieces: list[_Piece], queue: int, report: int, ask: int) -> None:
        """The child's life: write pieces, send its ledger, answer which leaders it made,
        and leave without running anything of the parent's (its finally blocks, atexit)."""
        code = 1
        try:
            self.result = CheckoutResult()
            self._deferred = []
            self._take(pieces, queue)
            _send(report, _Ledger(self.result, self._links, self._deferred))
            needed = _receive(ask)
            if isinstance(needed, set):
                _send(report, (needed & self._made, needed & self._skipped))
                code = 0
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
            try:
                _send(report, _picklable(exc))
            except BaseException:  # noqa: BLE001 - the parent is gone, or its pipe is: it says so itself
                pass
        finally:
            os._exit(code)

    def _reap(self) -> int:
        _, status = os.waitpid(self._child, 0)
        self._child = 0
        return status

    def _child_failed(self, report: object) -> NoReturn:
        """Raise what stopped the child: its exception, else how it ended."""
        if isinstance(report, BaseException):
            self._reap()
            raise report
        status = self._reap()
        how = (f"killed by {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        raise LgError(f"the checkout's second process failed ({how})")

    def _merge(self, ledger: _Ledger) -> None:
        """Count what the child wrote, and take over the directories it put off."""
        mine, theirs = self.result, ledger.result
        mine.entries += theirs.entries
        mine.bytes += theirs.bytes
        assert mine.privileged is not None and theirs.privileged is not None  # this writer counts them
        mine.privileged += theirs.privileged
        mine.devices_left_out += theirs.devices_left_out
        mine.privileges_cleared += theirs.privileges_cleared
        mine.warnings += [w for w in theirs.warnings if w not in mine.warnings]
        self._deferred += ledger.deferred

    def _needed(self, theirs: list[_Link]) -> set[bytes]:
        """The leaders of put-off links (``theirs`` the child's) that only the child may have made."""
        leaders = {link.node.meta.link for link in self._links + theirs}
        return {lead for lead in leaders if lead is not None} - self._made - self._skipped

    def _join(self, theirs: list[_Link], made: set[bytes], skipped: set[bytes]) -> None:
        """Make the put-off links (``theirs`` the child's; ``made`` and ``skipped`` the
        leaders the child made and could not), then put back the mtimes they changed."""
        self._made |= made
        self._skipped |= skipped
        touched: dict[tuple[bytes, ...], _Place] = {}
        for link in sorted(self._links + theirs, key=lambda lk: lk.key):
            leader = link.node.meta.link
            assert leader is not None  # only hardlinks are put off
            if leader in self._skipped:
                self._skipped.add(link.path)
                continue
            if leader not in self._made:
                raise unmade(link.path, leader)
            fd = self._open_path(link.place.parts)
            try:
                self.link(fd, link.node.name, leader)
            finally:
                os.close(fd)
            self.written(link.admitted)
            if link.place.stack:  # the root's metadata comes last anyway
                touched[link.place.paths] = link.place
        for place in touched.values():
            m = place.stack[-1].meta
            fd = self._open_path(place.parts)
            try:
                os.utime(fd, ns=(m.mtime_ns, m.mtime_ns))
            finally:
                os.close(fd)

    def _finish(self, place: _Place) -> None:
        """Finish a directory the parent opened while planning."""
        fd = self._open_path(place.parts)
        try:
            self._stack, self._paths = list(place.stack), list(place.paths)
            self.finish_dir(fd)
        finally:
            os.close(fd)


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - an exception whose arguments do not pickle: its words do
        return LgError(f"{type(exc).__name__}: {exc}")
    return exc


def _send(fd: int, value: object) -> None:
    body = pickle.dumps(value)
    data = memoryview(_LENGTH.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


def _receive(fd: int) -> object:
    """The value the other process sent, or None if it ended first."""
    head = _read(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read(fd, _LENGTH.unpack(head)[0])
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
