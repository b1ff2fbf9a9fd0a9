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
from typing import Callable

from ..errors import LgError, NotFound
from ..store import meta as M
from ..store import treenames
from ..store.rawobj import MODE_BLOB, MODE_EXEC, MODE_LINK, MODE_TREE, OBJ_BLOB, OBJ_TREE, tree_bytes
from ..store.snapshot import MAX_DEPTH, too_deep
from .content import put_file
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
    """One directory being captured: its listing and the entries made of it so far."""

    def __init__(self, names: list[bytes], stored_path: bytes, own: M.EntryMeta | None):
        self.names = iter(names)
        self.path = stored_path
        self.metas: dict[bytes, M.EntryMeta] = {b".": own} if own else {}
        self.entries: list[tuple[bytes, int, bytes]] = []
        self.stored = b""  # this directory's name in its parent's tree

    def tree(self, writer) -> bytes:
        meta = writer.put(OBJ_BLOB, M.encode_blob(self.metas))
        self.entries.append((treenames.META_NAME_B, MODE_BLOB, meta))
        return writer.put(OBJ_TREE, tree_bytes(self.entries))


def _listing(fd: int) -> list[bytes]:
    return sorted(os.fsencode(e.name) for e in os.scandir(fd))


class _Walker:
    def __init__(self, writer, cache: StatCache, progress: Progress | None, source: str):
        self.w = writer
        self.cache = cache
        self.progress = progress
        self.source = source
        self.leaders: dict[tuple[int, int], bytes] = {}
        self.result = CaptureResult(b"")

    def tree(self, fd: int, own: M.EntryMeta) -> bytes:
        """The tree for the open directory ``fd`` and everything below it.

        Depth first with a stack of our own (trees nest deeper than Python recurses)
        and a bounded one of fds (safeio.DirStack); a directory deeper than git reads
        is refused on the way down, before its trees are written.
        """
        frames = [_Frame(_listing(fd), b"", own)]
        with DirStack(fd) as dirs:
            while True:
                frame = frames[-1]
                sub = self.entries(dirs, frame)
                if sub is not None:
                    frames.append(sub)
                    continue
                tree = frame.tree(self.w)
                frames.pop()
                if not frames:
                    return tree
                dirs.pop()
                frames[-1].entries.append((frame.stored, MODE_TREE, tree))

    def entries(self, dirs: DirStack, frame: _Frame) -> _Frame | None:
        """Capture the directory's entries up to its next subdirectory, which is opened,
        pushed on ``dirs`` and returned to be captured first; None when it is done."""
        fd = dirs.fd
        for name in frame.names:
            est = os.stat(name, dir_fd=fd, follow_symlinks=False)
            stored = treenames.encode(name)
            child = frame.path + b"/" + stored
            self.result.entries += 1
            if stat.S_ISDIR(est.st_mode):
                if len(dirs) >= MAX_DEPTH:
                    raise too_deep(dirs.names + [name], self.source + ":")
                sub = open_dir(fd, name)
                try:
                    sst = os.fstat(sub)
                    if (sst.st_ino, sst.st_dev) != (est.st_ino, est.st_dev):
                        raise LgError(f"{os.fsdecode(child)} changed while being read; try again")
                    frame.metas[stored] = entry_meta(est, read_xattrs(fd, name, sub))
                    listing = _listing(sub)
                except BaseException:
                    os.close(sub)
                    raise
                dirs.push(sub, name, sst)
                below = _Frame(listing, child, None)
                below.stored = stored
                return below
            self.non_directory(fd, name, est, frame, stored, child)
            if self.progress and self.result.entries % 256 == 0:
                self.progress(self.result.entries, self.result.bytes)
        return None

    def non_directory(
        self, fd: int, name: bytes, est: os.stat_result, frame: _Frame, stored: bytes, child: bytes
    ) -> None:
        link = None
        if est.st_nlink > 1:
            key = (est.st_dev, est.st_ino)
            link = self.leaders.get(key)
            if link is None:
                self.leaders[key] = child
        if stat.S_ISREG(est.st_mode):
            hit = self.cache.lookup(child, est)
            if hit is not None and self.w.has(hit[0]):
                blob, xattrs = hit
            else:
                blob, xattrs = put_file(self.w, fd, name, est)
                self.cache.record(child, est, blob, xattrs)
            if link is None:
                self.result.bytes += est.st_size
            frame.entries.append((stored, MODE_EXEC if est.st_mode & 0o100 else MODE_BLOB, blob))
        elif stat.S_ISLNK(est.st_mode):
            xattrs = read_xattrs(fd, name)
            frame.entries.append((stored, MODE_LINK, self.w.put(OBJ_BLOB, os.readlink(name, dir_fd=fd))))
        else:
            xattrs = read_xattrs(fd, name)
        frame.metas[stored] = entry_meta(est, xattrs, link)


def capture(
    writer, source: str, cache: StatCache | None = None, progress: Progress | None = None
) -> CaptureResult:
    """Write ``source`` (a directory; the path itself may be a symlink) as a snapshot tree."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such directory: {source}") from None
    except NotADirectoryError:
        raise LgError(f"not a directory: {source}") from None
    except PermissionError:
        raise LgError(f"cannot read directory {source}: permission denied") from None
    walker = _Walker(writer, cache or StatCache(None), progress, source)
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
