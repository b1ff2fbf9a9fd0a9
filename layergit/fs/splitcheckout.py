"""Checkouts written by two processes at once.

Writing a checkout is system calls (create, copy or link, owner, mode, times, close)
and the Python between them, about half each. One process leaves a core idle; two
Python threads would queue for the GIL after every call (fs.farmwriter says what that
cost), so the checkout forks: parent and child each take pieces of the tree from a
shared queue until it is empty. A 6,768-entry image is then copied in a little more
than half the time (``ostree checkout -C`` and ``-H`` write with one process).

The pieces (:func:`plan`). The parent reads the top of the tree, the directories with
the most entries first, and makes those directories, until there are :data:`PIECES`
pieces: each directory it did not open is one (its whole subtree, finished by whoever
takes it), and the files of each one it did open are another. The queue is a pipe of
piece numbers in the tree's order, written before the fork; each process reads one
number at a time, so the one that ends a big piece late takes none of the small ones
left.

What the two must agree on comes after (:class:`PieceWriter`): the child sends what it
wrote in a pickle down a pipe, the parent may ask it one question back (which
hardlink leaders it made), and the parent ends the checkout. An error in the child
comes back as the same exception; an error in the parent kills the child first, so
the caller removes the destination only once nothing writes in it any more.

A small tree (:data:`SPLIT_FROM`), or a process with other threads (a fork would copy
the locks they hold, held for ever), is written by the parent alone, through the same
pieces.
"""

from __future__ import annotations

import heapq
import os
import pickle
import signal
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from ..errors import LgError
from ..store import meta as M
from ..store.snapshot import Node, read_dir
from .checkout import CheckoutResult, DirectoryWriter, unmade

PIECES = 64  # enough that the two processes end within a small piece of each other
SPLIT_FROM = 512  # entries seen while planning; below, a fork costs more than it saves
_QUEUE_MAX = 4096  # numbers a pipe holds before anyone reads it (64 KiB): pieces beyond go in groups
_NUMBER = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")

P = TypeVar("P")  # where a piece's entries go
E = TypeVar("E")  # an entry, as the tree being written lists it


@dataclass(frozen=True)
class Piece(Generic[P, E]):
    key: tuple[int, ...]  # its place in the tree's order
    place: P  # the directory its entries go into
    entries: list[E]
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
        """The pieces in the order they are taken: the whole subtrees first, those with
        the most entries at their top first (a subtree's size is not known, but one
        taken last would keep one process busy alone), then the files of the opened
        directories, most first, to even out the end. On minbase the two processes
        wrote 3,221 and 3,440 entries, against 2,712 and 3,949 in the tree's order."""
        return sorted(range(len(self.pieces)),
                      key=lambda i: (not self.pieces[i].whole, -len(self.pieces[i].entries)))


def plan(
    root: P, entries: list[E], is_dir: Callable[[E], bool],
    expand: Callable[[P, list[E]], list[tuple[int, P, list[E]]]],
) -> Plan[P, E]:
    """Open directories from ``root`` (listing ``entries``), those with the most entries
    first, until there are PIECES pieces or that many were opened. ``expand`` makes the
    subdirectories of a directory being opened in the destination and returns each
    (its index in ``entries``, its place, its entries). A directory without
    subdirectories is never opened: it would make no more pieces."""
    seen, order = len(entries), 0
    waiting: list[tuple[int, int, tuple[int, ...], P, list[E]]] = []  # (-entries, order, key, place, entries)
    heapq.heappush(waiting, (-len(entries), order, (), root, entries))
    pieces: list[Piece[P, E]] = []
    opened: list[P] = []
    while waiting and len(waiting) + len(pieces) < PIECES and len(opened) < PIECES:
        _, _, key, place, listed = heapq.heappop(waiting)
        if key:
            opened.append(place)
        files = [e for e in listed if not is_dir(e)]
        if files:
            pieces.append(Piece(key + (-1,), place, files, whole=False))
        for i, below_place, below in expand(place, listed):
            seen += len(below)
            if any(is_dir(e) for e in below):
                order += 1
                heapq.heappush(waiting, (-len(below), order, key + (i,), below_place, below))
            else:
                pieces.append(Piece(key + (i,), below_place, below, whole=True))
    pieces += [Piece(key, place, listed, whole=True) for _, _, key, place, listed in waiting]
    pieces.sort(key=lambda p: p.key)
    return Plan(pieces, opened, seen)


class PieceWriter(Protocol):
    """A writer of pieces, and what its two processes say to each other."""

    def take(self, number: int) -> None:
        """Write piece ``number``."""

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


def write_pieces(writer: PieceWriter, order: list[int], two: bool) -> None:
    """Write the pieces numbered in ``order`` with ``writer``, in that order, in two
    processes if ``two`` (and this process has no other thread)."""
    size = -(-len(order) // _QUEUE_MAX)
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    queue, feed = os.pipe()
    try:
        os.write(feed, b"".join(_NUMBER.pack(g) for g in range(len(groups))))
        os.close(feed)
        if two and threading.active_count() == 1:
            _Pair(writer, queue, groups).run()
        else:
            _take_all(writer, queue, groups)
            writer.join(None)
    finally:
        os.close(queue)


def _take_all(writer: PieceWriter, queue: int, groups: list[list[int]]) -> None:
    while number := os.read(queue, _NUMBER.size):
        for piece in groups[_NUMBER.unpack(number)[0]]:
            writer.take(piece)


class _Pair:
    """The parent's side of a two-process write, and the child's whole life."""

    def __init__(self, writer: PieceWriter, queue: int, groups: list[list[int]]):
        self.writer, self.queue, self.groups = writer, queue, groups
        self.child = 0

    def run(self) -> None:
        from_child, report = os.pipe()
        ask, to_child = os.pipe()
        self.child = os.fork()
        if self.child == 0:  # pragma: no cover - the child reports through its pipe
            os.close(from_child)
            os.close(to_child)
            self._child_life(report, ask)
        os.close(report)
        os.close(ask)
        try:
            _take_all(self.writer, self.queue, self.groups)
            question = self.writer.merge(self._receive(from_child))
            _send(to_child, ("ok", question))
            answer = self._receive(from_child)
            self._reap()
            self.writer.join(answer)
        finally:
            if self.child:
                os.kill(self.child, signal.SIGKILL)  # the parent failed: nothing may write on
                self._reap()
            os.close(from_child)
            os.close(to_child)

    def _child_life(self, report: int, ask: int) -> NoReturn:
        """Write pieces, send the ledger, answer the question, and leave without running
        anything of the parent's (its finally blocks, atexit)."""
        code = 1
        try:
            self.writer.forked()
            _take_all(self.writer, self.queue, self.groups)
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

    def _receive(self, fd: int) -> Any:
        """The child's next value; raises its failure, or says how it ended."""
        message = _receive(fd)
        if message is not None and message[0] == "ok":
            return message[1]
        status = self._reap()
        if message is not None:
            raise message[1]
        how = (f"killed by {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        raise LgError(f"the checkout's second process failed ({how})")

    def _reap(self) -> int:
        _, status = os.waitpid(self.child, 0)
        self.child = 0
        return status


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - an exception whose arguments do not pickle: its words do
        return LgError(f"{type(exc).__name__}: {exc}")
    return exc


def _send(fd: int, value: tuple[str, object]) -> None:
    body = pickle.dumps(value)
    data = memoryview(_LENGTH.pack(len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


def _receive(fd: int) -> tuple[str, Any] | None:
    """The (kind, value) the other process sent, or None if it ended first. Only ever
    our own process at the other end: a parent and its fork."""
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


# -- a copy checkout of a snapshot ---------------------------------------------------


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
class _Link:
    """A hardlink put off until every leader is made."""

    key: tuple[int, ...]  # the piece's key, then its place in the piece
    place: _Place
    node: Node
    admitted: Node  # as the policy lets it onto the host (DirectoryWriter.admit)
    path: bytes  # its stored path


@dataclass
class _Ledger:
    result: CheckoutResult
    links: list[_Link]
    deferred: list[tuple[list[bytes], M.EntryMeta]]


class SplitWriter(DirectoryWriter):
    """A DirectoryWriter that writes a snapshot by two processes: a user's copy
    checkout as it is, and the cache's farm checkout (fs.cache.FarmSplitWriter, which
    puts it before FarmWriter: so it has no constructor of its own).

    A hardlink whose leader the process did not make itself is put off: the parent
    makes it at the end, once the child has said which of those leaders it made (a
    leader must still be an entry this checkout created), and then puts back the
    mtime of the directory it went into.
    """

    _pieces: list[Piece[_Place, Node]]
    _links: list[_Link]
    _theirs: list[_Link]  # the child's put-off links
    _key: tuple[int, ...]  # where the piece being written is, and where in it

    def directory(self, fd: int, tree: bytes) -> M.EntryMeta | None:
        self._links, self._theirs, self._key = [], [], ()
        own, nodes = read_dir(self.store, tree)
        planned = plan(_Place((), (b"",)), nodes, _is_dir, self._expand)
        self._pieces = planned.pieces
        write_pieces(self, planned.queue, planned.worth_two)
        for place in sorted(planned.opened, key=lambda p: len(p.stack), reverse=True):
            self._finish(place)
        self._deferred.sort(key=lambda d: len(d[0]), reverse=True)  # finish() goes from the top down
        return own

    def _expand(self, place: _Place, nodes: list[Node]) -> list[tuple[int, _Place, list[Node]]]:
        fd = self._open_path(place.parts)
        try:
            made = []
            for i, node in enumerate(nodes):
                if node.meta.kind == "d":
                    self.result.entries += 1
                    os.mkdir(node.name, 0o700, dir_fd=fd)
                    made.append((i, place.below(node), read_dir(self.store, node.tree)[1]))
            return made
        finally:
            os.close(fd)

    def take(self, number: int) -> None:
        piece = self._pieces[number]
        self._key = piece.key + (0,)
        fd = self._open_path(piece.place.parts)
        try:
            self._stack, self._paths = list(piece.place.stack), list(piece.place.paths)
            self.write_below(fd, piece.entries)
            if piece.whole:
                self.finish_dir(fd)
        finally:
            os.close(fd)

    def unmade_leader(self, node: Node, admitted: Node, path: bytes) -> None:
        place = _Place(tuple(self._stack), tuple(self._paths))
        self._links.append(_Link(self._key, place, node, admitted, path))
        self._key = self._key[:-1] + (self._key[-1] + 1,)

    def forked(self) -> None:
        self.result = CheckoutResult()
        self._deferred = []

    def ledger(self) -> _Ledger:
        return _Ledger(self.result, self._links, self._deferred)

    def merge(self, ledger: _Ledger) -> set[bytes]:
        """Count what the child wrote, take over what it put off, and ask which of the
        leaders only it may have made it did make."""
        self.result.add(ledger.result)
        self._deferred += ledger.deferred
        self._theirs = ledger.links
        leaders = {link.node.meta.link for link in self._links + self._theirs}
        return {lead for lead in leaders if lead is not None} - self._made - self._skipped

    def answer(self, question: set[bytes]) -> tuple[set[bytes], set[bytes]]:
        return question & self._made, question & self._skipped

    def join(self, answer: tuple[set[bytes], set[bytes]] | None) -> None:
        """Make the put-off links, then put back the mtimes they changed."""
        if answer is not None:
            self._made |= answer[0]
            self._skipped |= answer[1]
        touched: dict[tuple[bytes, ...], _Place] = {}
        for link in sorted(self._links + self._theirs, key=lambda lk: lk.key):
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
        """Finish a directory the planner opened."""
        fd = self._open_path(place.parts)
        try:
            self._stack, self._paths = list(place.stack), list(place.paths)
            self.finish_dir(fd)
        finally:
            os.close(fd)


def _is_dir(node: Node) -> bool:
    return node.meta.kind == "d"
