"""The build context as COPY and ADD see it.

Every path is reached from the context directory one component at a time through
directory fds with ``O_NOFOLLOW`` (fs.safeio), so nothing a context holds can make
the build read outside it: a symlink is copied as a symlink (whether it is a source
itself or inside a copied directory) and a source path through a symlinked directory
is refused. What .dockerignore excludes is invisible. Owners and xattrs of context
files are host details and are not copied (Docker gives COPY'd files 0:0).

File contents become blobs as they are read; a per-context stat cache (as lg commit
keeps one) lets an unchanged file skip the read, so checking a cached COPY step costs
a stat per source file.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from typing import Callable

from ..fs.capture import entry_meta
from ..fs.content import put_file
from ..fs.safeio import DIR_FLAGS, FILE_FLAGS, DirStack, open_below, open_dir
from ..fs.statcache import StatCache
from ..store import meta as M
from .dockerfile import DockerfileError
from .dockerignore import Ignore, compile_pattern

_GLOB = re.compile(r"[*?\[]")


def expand_glob(pattern: str, listdir: Callable[[list[str]], list[str] | None]) -> list[list[str]]:
    """The paths (as components) a COPY source pattern names; ``listdir`` reads a directory.

    Each component may be a glob (``*``, ``?``, ``[...]``, never matching ``/``);
    the pattern is cleaned first, so ``..`` cannot climb above the root.
    """
    found: list[list[str]] = [[]]
    for component in [c for c in posixpath.normpath("/" + pattern).split("/") if c]:
        nxt = []
        for parts in found:
            if not _GLOB.search(component):
                nxt.append(parts + [component])
                continue
            regex = compile_pattern(component)
            nxt += [parts + [name] for name in sorted(listdir(parts) or []) if regex.match(name)]
        found = nxt
    return found


@dataclass
class SourceEntry:
    """One entry to copy: its path below the source (``[]`` for the source itself)."""

    parts: list[bytes]
    meta: M.EntryMeta  # link=None, no xattrs
    oid: bytes | None = None  # blob of a file or a symlink's target
    target: bytes | None = None  # symlink target, when known
    inode: object = None  # shared by the names of one hardlinked file


@dataclass
class Source:
    name: str  # what the Dockerfile named, resolved ("." for the whole context)
    is_dir: bool
    entries: list[SourceEntry]


def digest(sources: list[Source]) -> str:
    """What a COPY step's result depends on: names, types, modes, contents, hardlinks.

    Owners are not included (COPY replaces them) and neither are mtimes, as in
    Docker: a fresh clone of the same sources must hit the cache.
    """
    h = hashlib.sha256()
    leaders: dict[object, int] = {}
    for source in sources:
        h.update(b"S" + source.name.encode("utf-8", "surrogateescape") + b"\0")
        for n, e in enumerate(source.entries):
            m = e.meta
            link = leaders.setdefault(e.inode, n) if e.inode is not None else n
            fields = b"\0%s %o %r %d " % (m.kind.encode(), m.mode, m.rdev, link)
            h.update(b"/".join(e.parts) + fields + (e.oid or b"") + b"\n")
    return h.hexdigest()


class Context:
    """A context directory, opened once; ``close`` saves the stat cache."""

    def __init__(self, path: str, ignore: Ignore, cache: StatCache):
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise DockerfileError(f"cannot open build context {path}: {exc.strerror}") from None
        self.ignore = ignore
        self.cache = cache

    def close(self) -> None:
        os.close(self.fd)
        self.cache.save()

    # -- finding sources -----------------------------------------------------------

    def _open_parent(self, parts: list[str]) -> int:
        """A new fd for the directory ``parts`` (no symlinks followed); OSError if absent."""
        return open_below(self.fd, [os.fsencode(part) for part in parts])

    def _lstat(self, parts: list[str]) -> os.stat_result | None:
        if not parts:
            return os.fstat(self.fd)
        try:
            fd = self._open_parent(parts[:-1])
        except OSError:
            return None
        try:
            return os.stat(os.fsencode(parts[-1]), dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _listdir(self, parts: list[str]) -> list[str] | None:
        try:
            fd = self._open_parent(parts)
        except OSError:
            return None
        try:
            return [e.name for e in os.scandir(fd)]
        finally:
            os.close(fd)

    def match(self, pattern: str) -> list[str]:
        """Context-relative paths a COPY source names (globs expanded), never excluded ones."""
        found = expand_glob(pattern, self._listdir)
        out = [
            "/".join(p) or "." for p in found
            if self._lstat(p) is not None and not self.ignore.excluded("/".join(p))
        ]
        if not out:
            raise DockerfileError(
                f"{pattern}: not found in the build context (or excluded by .dockerignore);"
                " symlinked directories are not followed"
            )
        return out

    # -- reading -------------------------------------------------------------------

    def open_file(self, rel: str):
        """A regular file of the context, opened without following symlinks (binary reader)."""
        parts = rel.split("/")
        parent = self._open_parent(parts[:-1])
        try:
            fd = os.open(os.fsencode(parts[-1]), FILE_FLAGS & ~os.O_NONBLOCK, dir_fd=parent)
        finally:
            os.close(parent)
        return os.fdopen(fd, "rb")

    def read(self, rel: str, writer) -> Source:
        """Every entry of source ``rel`` (a file, a symlink or a whole directory)."""
        parts = [] if rel == "." else rel.split("/")
        try:
            parent = self._open_parent(parts[:-1])
        except OSError:
            raise DockerfileError(f"{rel}: not found in the build context") from None
        try:
            name = os.fsencode(parts[-1]) if parts else b"."
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            inodes: dict = {}
            if not stat.S_ISDIR(st.st_mode):
                return Source(rel, False, [self._entry(parent, name, st, [], rel, writer, inodes)])
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            try:
                entries = [SourceEntry([], entry_meta(os.fstat(fd), ()))]
                entries += self._walk(fd, [], "" if rel == "." else rel + "/", writer, inodes)
            finally:
                os.close(fd)
            return Source(rel, True, entries)
        finally:
            os.close(parent)

    def _walk(self, fd: int, parts: list[bytes], prefix: str, writer, inodes: dict) -> list[SourceEntry]:
        """Every entry below the directory ``fd``, parents first, in byte order of names.

        Depth first from stacks of our own and a bounded number of directory fds
        (safeio.DirStack): a context may nest deeper than Python recurses. An
        excluded directory is kept when something below it is not (a ``!`` rule).
        """
        frames = [_Level(fd, parts, prefix, None, False)]
        with DirStack(fd) as dirs:
            while True:
                level = frames[-1]
                name = next(level.names, None)
                if name is not None:
                    rel = level.prefix + os.fsdecode(name)
                    excluded = self.ignore.excluded(rel)
                    st = os.stat(name, dir_fd=dirs.fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        if excluded and not self.ignore.has_exclusions:
                            continue
                        sub = open_dir(dirs.fd, name)
                        dirs.push(sub, name)
                        meta = entry_meta(os.fstat(sub), ())
                        frames.append(_Level(sub, level.parts + [name], rel + "/", meta, excluded))
                    elif not excluded:
                        entry = self._entry(dirs.fd, name, st, level.parts + [name], rel, writer, inodes)
                        level.out.append(entry)
                    continue
                frames.pop()
                if not frames:
                    return level.out
                dirs.pop()
                if not level.excluded or level.out:
                    assert level.meta is not None  # every level but the first is a directory met
                    frames[-1].out.append(SourceEntry(level.parts, level.meta))
                    frames[-1].out += level.out

    def _entry(
        self, dirfd: int, name: bytes, st: os.stat_result, parts: list[bytes], rel: str, writer, inodes: dict
    ) -> SourceEntry:
        meta = entry_meta(st, ())
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(name, dir_fd=dirfd)
            return SourceEntry(parts, meta, writer.put_blob(target), target)
        inode = None
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            inode = inodes.setdefault((st.st_dev, st.st_ino), (st.st_dev, st.st_ino))
        if not stat.S_ISREG(st.st_mode):
            return SourceEntry(parts, meta, inode=inode)
        path, state = os.fsencode("/" + rel), StatCache.key(st)
        hit = self.cache.lookup(path, state)
        if hit is not None and writer.has(hit[0]):
            oid = hit[0]
        else:
            oid, _ = put_file(writer, dirfd, name, st)
            self.cache.record(path, st, state, oid, ())
        return SourceEntry(parts, meta, oid, inode=inode)


class _Level:
    """One directory of a context walk: its listing, and the entries found below it."""

    def __init__(self, fd: int, parts: list[bytes], prefix: str, meta: M.EntryMeta | None, excluded: bool):
        self.names = iter(sorted(os.fsencode(e.name) for e in os.scandir(fd)))
        self.parts = parts
        self.prefix = prefix
        self.meta = meta  # the directory's own, None for the walk's top
        self.excluded = excluded
        self.out: list[SourceEntry] = []
