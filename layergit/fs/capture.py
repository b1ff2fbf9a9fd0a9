"""Capturing a directory as a snapshot tree (see layergit.store.meta for the format).

The walk is depth-first in byte order of names, never following symlinks, with a
stack of its own and a bounded number of directory fds, however deep the tree. Each
directory becomes a git tree of its files, symlinks and subdirectories plus a
metadata blob; a tree or blob that the store already holds is
not written again, which is what makes an unchanged subtree free.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from ..errors import LgError, NotFound
from ..store import meta as M
from ..store import treenames
from ..store.rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from ..store.snapshot import MAX_DEPTH, too_deep
from .content import Deposit, put_file
from .safeio import DirStack, open_dir, read_xattrs
from .statcache import StatCache

Progress = Callable[[int, int], None]  # (entries done, bytes done)


@dataclass
class CaptureResult:
    tree: bytes
    entries: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def entry_meta(st: os.stat_result, xattrs, link: bytes | None = None) -> M.EntryMeta:
    kind = M.TYPE_CHARS.get(stat.S_IFMT(st.st_mode))
    if kind is None:
        raise LgError(f"unsupported file type {stat.S_IFMT(st.st_mode):o}")
    rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in "cb" else None
    return M.EntryMeta(
        kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, rdev, link, xattrs
    )


class _Frame:
    """One directory being captured: what its entries were found to be so far.

    The walk first looks at every entry (one lstat each, and down into each
    subdirectory); only when the directory is done does it decide how to make its
    tree: the cached one if the directory and every entry are as the stat cache
    remembers them, else built from the entries (:meth:`_Walker.build`).
    """

    def __init__(self, names: list[bytes], stored_path: bytes, st: os.stat_result, own: M.EntryMeta | None,
                 cached) -> None:
        self.names = names
        self.next = 0
        self.path = stored_path
        self.st = st
        self.cached = cached  # (names, found, tree) from the stat cache, or None
        self.metas: dict[bytes, M.EntryMeta] = {b".": own} if own else {}
        self.found: list[tuple] = []  # per entry: (name, stored, stat key, link, subtree)
        self.stats: list[os.stat_result] = []
        self.stored = b""  # this directory's name in its parent's tree
        self.settled = True  # every entry old enough for the cache to remember


def _listing(fd: int) -> list[bytes]:
    return sorted(os.fsencode(e.name) for e in os.scandir(fd))


class _Walker:
    def __init__(
        self, writer, cache: StatCache, progress: Progress | None, source: str, deposit: Deposit | None
    ):
        self.w = writer
        self.deposit = deposit  # a fs.farm.FarmDeposit for the files read, or None
        self.cache = cache
        self.progress = progress
        self.source = source
        self.leaders: dict[tuple[int, int], bytes] = {}
        self.result = CaptureResult(b"")

    def open_frame(self, fd: int, stored_path: bytes, st: os.stat_result, own: M.EntryMeta | None) -> _Frame:
        """A frame for the open directory ``fd``: its listing is the cached one if the
        directory's mtime says no entry came or went since (git's untracked cache)."""
        cached = self.cache.directory(stored_path, st)
        return _Frame(cached[0] if cached else _listing(fd), stored_path, st, own, cached)

    def tree(self, fd: int, own: M.EntryMeta) -> bytes:
        """The tree for the open directory ``fd`` and everything below it.

        Depth first with a stack of our own (trees nest deeper than Python recurses)
        and a bounded one of fds (safeio.DirStack); a directory deeper than git reads
        is refused on the way down, before its trees are written.
        """
        frames = [self.open_frame(fd, b"", os.fstat(fd), own)]
        with DirStack(fd) as dirs:
            while True:
                frame = frames[-1]
                sub = self.entries(dirs, frame)
                if sub is not None:
                    frames.append(sub)
                    continue
                tree = self.finish(dirs.fd, frame)
                frames.pop()
                if not frames:
                    return tree
                dirs.pop()
                parent = frames[-1]
                name, stored, key, _, _ = parent.found[-1]
                parent.found[-1] = (name, stored, key, None, tree)
                parent.settled = parent.settled and frame.settled

    def entries(self, dirs: DirStack, frame: _Frame) -> _Frame | None:
        """Look at the directory's entries up to its next subdirectory, which is opened,
        pushed on ``dirs`` and returned to be captured first; None when all are seen.

        The loop runs once per entry of the tree (a million for a million files), so
        what it needs is held in locals and its counts are added up once a call.
        """
        fd = dirs.fd
        cached = frame.cached[1] if frame.cached else ()
        names, stats, found = frame.names, frame.stats, frame.found
        before = self.cache.settled_before
        result, leaders, progress = self.result, self.leaders, self.progress
        lstat, keyof, encode = os.stat, StatCache.key, treenames.encode
        isdir, isreg = stat.S_ISDIR, stat.S_ISREG
        i, end, seen, size = frame.next, len(names), 0, 0
        try:
            while i < end:
                name = names[i]
                est = lstat(name, dir_fd=fd, follow_symlinks=False)
                key = keyof(est)
                old = cached[i] if i < len(cached) and cached[i][0] == name else None
                stored = old[1] if old is not None else encode(name)
                i += 1
                seen += 1
                if est.st_ctime_ns >= before or est.st_mtime_ns >= before:  # StatCache.settled, inline
                    frame.settled = False
                stats.append(est)
                if isdir(est.st_mode):
                    if len(dirs) >= MAX_DEPTH:
                        raise too_deep(dirs.names + [name], self.source + ":")
                    found.append((name, stored, key, None, None))  # its tree: when it is done
                    return self.subdirectory(dirs, frame, name, est, stored, frame.path + b"/" + stored)
                link = None
                if est.st_nlink > 1:
                    child = frame.path + b"/" + stored
                    link = leaders.setdefault((est.st_dev, est.st_ino), child)
                    link = None if link == child else link
                if link is None and isreg(est.st_mode):
                    size += est.st_size
                found.append((name, stored, key, link, None))
                if progress and (result.entries + seen) % 256 == 0:
                    progress(result.entries + seen, result.bytes + size)
            return None
        finally:
            frame.next = i
            result.entries += seen
            result.bytes += size

    def subdirectory(self, dirs: DirStack, frame: _Frame, name: bytes, est: os.stat_result, stored: bytes,
                     child: bytes) -> _Frame:
        fd = dirs.fd
        sub = open_dir(fd, name)
        try:
            sst = os.fstat(sub)
            if (sst.st_ino, sst.st_dev) != (est.st_ino, est.st_dev):
                raise LgError(f"{os.fsdecode(child)} changed while being read; try again")
            frame.metas[stored] = entry_meta(est, read_xattrs(fd, name, sub))
            below = self.open_frame(sub, child, sst, None)
        except BaseException:
            os.close(sub)
            raise
        dirs.push(sub, name, sst)
        below.stored = stored
        return below

    def finish(self, fd: int, frame: _Frame) -> bytes:
        """The tree of a directory whose entries have all been looked at (``fd``, open)."""
        found = tuple(frame.found)
        cached = frame.cached
        if cached is not None and cached[1] == found and self.w.has(cached[2]):
            prefix = frame.path + b"/"
            self.cache.keep(prefix + stored for _, stored, _, _, subtree in found if subtree is None)
            tree = cached[2]
        else:
            tree = self.build(fd, frame)
        if frame.settled and self.cache.settled(frame.st):
            self.cache.record_directory(frame.path, frame.st, frame.names, found, tree)
        return tree

    def build(self, fd: int, frame: _Frame) -> bytes:
        """Write the directory's tree and metadata blob from its entries."""
        entries: list[tuple[bytes, int, bytes]] = []
        for (name, stored, key, link, subtree), est in zip(frame.found, frame.stats, strict=True):
            if subtree is not None:
                entries.append((stored, MODE_TREE, subtree))  # its meta: read when it was opened
                continue
            child = frame.path + b"/" + stored
            if stat.S_ISREG(est.st_mode):
                hit = self.cache.lookup(child, key)
                if hit is not None and self.w.has(hit[0]):
                    blob, xattrs = hit
                else:
                    # A hardlink's follower has its leader's farm object (the key leaves out the link).
                    deposit = self.deposit if link is None else None
                    meta_for = partial(entry_meta, est, link=link)
                    blob, xattrs = put_file(self.w, fd, name, est, deposit, meta_for)
                    self.cache.record(child, est, key, blob, xattrs)
                entries.append((stored, MODE_EXEC if est.st_mode & 0o100 else MODE_BLOB, blob))
            elif stat.S_ISLNK(est.st_mode):
                xattrs = read_xattrs(fd, name)
                entries.append((stored, MODE_LINK, self.w.put(OBJ_BLOB, os.readlink(name, dir_fd=fd))))
            else:
                xattrs = read_xattrs(fd, name)
            frame.metas[stored] = entry_meta(est, xattrs, link)
        meta = self.w.put(OBJ_BLOB, M.encode_blob(frame.metas))
        entries.append((treenames.META_NAME_B, MODE_BLOB, meta))
        return self.w.put(OBJ_TREE, tree_bytes(entries))


def capture(
    writer, source: str, cache: StatCache | None = None, progress: Progress | None = None,
    deposit: Deposit | None = None,
) -> CaptureResult:
    """Write ``source`` (a directory; the path itself may be a symlink) as a snapshot tree;
    the files it reads go into ``deposit`` (a fs.farm.FarmDeposit) too when given."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such directory: {source}") from None
    except NotADirectoryError:
        raise LgError(f"not a directory: {source}") from None
    except PermissionError:
        raise LgError(f"cannot read directory {source}: permission denied") from None
    walker = _Walker(writer, cache or StatCache(None), progress, source, deposit)
    try:
        walker.result.tree = walker.tree(fd, entry_meta(os.fstat(fd), read_xattrs(fd, b".", fd)))
    except PermissionError as exc:
        raise LgError(f"cannot read {exc.filename or source}: permission denied") from None
    finally:
        os.close(fd)
    walker.cache.save()
    if progress:
        progress(walker.result.entries, walker.result.bytes)
    return walker.result
