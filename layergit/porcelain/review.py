"""Reviewing an image like a repository: which versions touched a path, who last changed
each line or entry, a file's bytes, a directory's listing, and grep across versions.

Everything here reads the store only (no checkout, no cache) and walks the first-parent
chain as ``lg log`` does. The walk leans on the snapshot format: an unchanged directory
keeps its tree id, so whether a version touched ``/etc/passwd`` is answered by comparing
the ids along the path and, only where they differ, the entry and its metadata line;
nothing reads a whole tree unless a directory's own history is asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Iterator

from ..errors import CorruptStore, LgError, NotFound, UsageError
from ..store import treenames
from ..store.meta import (
    HEADER,
    META_BLOB_MAX,
    META_ONLY,
    EntryMeta,
    decode_blob,
    default_meta,
    read_link_target,
)
from ..store.rawobj import MODE_TREE
from ..store.snapshot import KIND_FOR_MODE, Node, read_dir, walk
from ..store.treediff import diff_trees, meta_aspects
from . import sizes
from .history import LogEntry, who
from .repo import Repo, signature_time

if TYPE_CHECKING:
    from ..store.store import CommitInfo

_RAW = "surrogateescape"  # names and paths are bytes; as str they keep every byte
BLAME_MAX = 16 << 20  # bytes of one version of a file blame or grep --first read whole
SYMLINK_HOPS = 40  # Linux's limit on symlinks followed while resolving one path (ELOOP)
BINARY_PROBE = 8000  # git's heuristic: a NUL in the first 8000 bytes means binary
GREP_LINE_MAX = 1 << 20  # a line longer than this is matched on its first MiB only
GREP_CACHE_LINES = 1000  # a blob several versions share is searched once if it matches at most this often


def path_parts(path: str) -> list[bytes]:
    """A path as the user typed it, as real names below ``/``: ``.`` and empty parts
    dropped, ``..`` taken lexically and never above ``/`` (as in a chroot)."""
    parts: list[bytes] = []
    for part in path.encode("utf-8", "surrogateescape").split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def joined(parts: list[bytes]) -> bytes:
    return b"/" + b"/".join(parts)


class _Trees:
    """Raw tree entries and parsed directories by tree id, read once per command: the
    tree a version has is its child's parent tree in the next step of a walk."""

    # What the caches hold before they start again: an image controls how big its trees and
    # metadata blobs are, so the bound is on their contents, not on how many there are.
    ENTRIES_KEPT = 500_000
    BYTES_KEPT = 32 << 20

    def __init__(self, store):
        self.store = store
        self._raw: dict[bytes, dict[bytes, tuple[int, bytes]]] = {}
        self._dirs: dict[bytes, dict[bytes, Node]] = {}
        self._blobs: dict[bytes, bytes] = {}
        self._held = {"raw": 0, "dirs": 0, "blobs": 0}

    def _room(self, cache: dict, kind: str, size: int, limit: int) -> None:
        if self._held[kind] + size > limit:
            cache.clear()
            self._held[kind] = 0
        self._held[kind] += size

    def raw(self, tree: bytes) -> dict[bytes, tuple[int, bytes]]:
        hit = self._raw.get(tree)
        if hit is None:
            hit = {name: (mode, oid) for name, mode, oid in self.store.tree(tree)}
            self._room(self._raw, "raw", len(hit), self.ENTRIES_KEPT)
            self._raw[tree] = hit
        return hit

    def meta_line(self, blob: tuple[int, bytes] | None, stored: bytes) -> bytes | None:
        """The raw line of ``stored`` in a directory's metadata blob, found without parsing
        the blob (a line is the name, a TAB, the fields: docs/format.md); None if absent."""
        if blob is None:
            return None
        data = self._blobs.get(blob[1])
        if data is None:
            data = self.store.read_blob(blob[1], META_BLOB_MAX, "metadata")
            self._room(self._blobs, "blobs", len(data), self.BYTES_KEPT)
            self._blobs[blob[1]] = data
        key = b"\n" + stored + b"\t"
        at = data.find(key)
        if at < 0:
            return None
        end = data.find(b"\n", at + len(key))
        return data[at + 1:end if end >= 0 else len(data)]

    def nodes(self, tree: bytes) -> dict[bytes, Node]:
        hit = self._dirs.get(tree)
        if hit is None:
            hit = {n.name: n for n in read_dir(self.store, tree)[1]}
            self._room(self._dirs, "dirs", len(hit), self.ENTRIES_KEPT)
            self._dirs[tree] = hit
        return hit

    def child_tree(self, tree: bytes | None, name: bytes) -> bytes | None:
        """The subtree ``name`` of ``tree`` by its raw entry (None when not a directory)."""
        if tree is None:
            return None
        hit = self.raw(tree).get(treenames.encode(name))
        return hit[1] if hit is not None and hit[0] == MODE_TREE else None

    def parent_tree(self, rootfs: bytes, parts: list[bytes]) -> bytes | None:
        tree: bytes | None = rootfs
        for name in parts[:-1]:
            tree = self.child_tree(tree, name)
        return tree

    def node(self, rootfs: bytes, parts: list[bytes]) -> Node | None:
        """The entry at ``parts`` (no symlink followed); ``/`` is a directory node of its own."""
        if not parts:
            own = read_dir(self.store, rootfs)[0] or default_meta(MODE_TREE)
            return Node(b"/", b"", own, rootfs)
        parent = self.parent_tree(rootfs, parts)
        return self.child(parent, parts[-1]) if parent is not None else None

    def child(self, tree: bytes, name: bytes) -> Node | None:
        """The entry ``name`` of directory ``tree`` from its raw tree entry and its one line
        of metadata, checked as snapshot.read_dir checks them, without the whole directory."""
        raw = self.raw(tree)
        stored = treenames.encode(name)
        entry = raw.get(stored)
        line = self.meta_line(raw.get(treenames.META_NAME_B), stored)
        if line is None:
            if entry is None:
                return None
            meta = default_meta(entry[0])
        else:
            meta = decode_blob(HEADER + line + b"\n")[stored]
        if entry is None and meta.kind not in META_ONLY:
            raise CorruptStore(f"entry {stored!r} is a {meta.kind} without content in {tree.hex()[:12]}")
        if entry is not None and KIND_FOR_MODE.get(entry[0]) != meta.kind:
            raise CorruptStore(f"entry {stored!r}: git mode {entry[0]:o} disagrees with metadata type"
                               f" {meta.kind}")
        return Node(name, stored, meta, entry[1] if entry is not None else None)


def node_change(trees: _Trees, old: Node | None, new: Node | None, include_mtime: bool) -> tuple[str, ...]:
    """How an entry changed between two versions, () if it did not: ``added``,
    ``deleted``, ``type``, or the aspects ``lg diff`` names (``content`` for a
    directory: something below it changed)."""
    if old is None or new is None:
        return () if old is new else ("added",) if old is None else ("deleted",)
    if old.meta.kind != new.meta.kind:
        return ("type",)
    aspects = meta_aspects(old.meta, new.meta, include_mtime)
    if old.oid != new.oid:
        if new.meta.kind != "d":
            aspects.insert(0, "content")
        elif any(diff_trees(trees.store, old.oid, new.oid, include_mtime)):
            aspects.insert(0, "content")
    return tuple(aspects)


def path_change(trees: _Trees, old_root: bytes | None, new_root: bytes, parts: list[bytes],
                include_mtime: bool) -> tuple[str, ...]:
    """:func:`node_change` of the entry at ``parts``, cheaply: equal tree ids on the way
    down mean nothing below changed, and an entry whose id and whose directory's metadata
    blob are both unchanged is unchanged, before any metadata is parsed."""
    if old_root == new_root:
        return ()
    if old_root is None:
        return ("added",) if trees.node(new_root, parts) is not None else ()
    if parts:
        old_parent, new_parent = trees.parent_tree(old_root, parts), trees.parent_tree(new_root, parts)
        if old_parent == new_parent:
            return ()
        if old_parent is not None and new_parent is not None:
            old_raw, new_raw = trees.raw(old_parent), trees.raw(new_parent)
            stored, meta = treenames.encode(parts[-1]), treenames.META_NAME_B
            if old_raw.get(stored) == new_raw.get(stored):
                old_meta, new_meta = old_raw.get(meta), new_raw.get(meta)
                line = trees.meta_line
                if old_meta == new_meta or line(old_meta, stored) == line(new_meta, stored):
                    return ()  # the same id and the same metadata line: a sibling changed
    return node_change(trees, trees.node(old_root, parts), trees.node(new_root, parts), include_mtime)


@dataclass(frozen=True)
class Version:
    """One commit of a first-parent walk, without its config (which a path walk never needs)."""

    id: bytes
    rootfs: bytes
    info: CommitInfo


def _rootfs(store, tree: bytes) -> bytes:
    """The rootfs of an image commit's tree, without reading its config (image.read_image_tree)."""
    from ..store.image import ROOTFS_NAME

    for name, _, oid in store.tree(tree):
        if name == ROOTFS_NAME:
            return oid
    raise LgError(f"tree {tree.hex()[:12]} is not an image (it has no rootfs)")


def versions(repo: Repo, rev: str) -> Iterator[Version]:
    """The first-parent chain from ``rev``, newest first."""
    oid: bytes | None = repo.resolve(rev)
    while oid is not None:
        info = repo.store.commit(oid)
        yield Version(oid, _rootfs(repo.store, info.tree), info)
        oid = info.parents[0] if info.parents else None


def _pairs(repo: Repo, rev: str) -> Iterator[tuple[Version, bytes | None]]:
    """Each version with its first parent's rootfs (None for the first version)."""
    chain = versions(repo, rev)
    current = next(chain, None)
    while current is not None:
        parent = next(chain, None)
        yield current, parent.rootfs if parent is not None else None
        current = parent


def log_entry(repo: Repo, v: Version, parent_rootfs: bytes | None) -> LogEntry:
    info = v.info
    size = sizes.layer_size(repo, v.id, v.rootfs, parent_rootfs)
    return LogEntry(v.id.hex(), signature_time(info.author), who(info.author), info.message.rstrip("\n"),
                    size, tuple(p.hex() for p in info.parents))


@dataclass(frozen=True)
class PathLogEntry:
    entry: LogEntry
    paths: tuple[str, ...]  # the paths as they were named in this version (--follow renames them)
    changes: tuple[tuple[str, tuple[str, ...]], ...]  # (path, how it changed) for each path that did


def _renamed_from(trees: _Trees, old_root: bytes, new_root: bytes, parts: list[bytes]) -> list[bytes] | None:
    """The path a file added at ``parts`` had in the parent, when the parent deleted a file
    of exactly the same content (git's exact rename; similarity is not looked for)."""
    node = trees.node(new_root, parts)
    if node is None or node.meta.kind != "f":
        return None
    for change in diff_trees(trees.store, old_root, new_root):
        if change.status == "D" and change.old is not None and change.old.oid == node.oid \
                and change.old.meta.kind == "f":
            return path_parts(change.path.decode("utf-8", _RAW))
    return None


def path_log(repo: Repo, rev: str, paths: list[str], limit: int | None = None, follow: bool = False,
             include_mtime: bool = False) -> list[PathLogEntry]:
    """The versions of ``rev``'s first-parent chain that changed any of ``paths`` (content,
    type or metadata; mtime only when asked), newest first. ``follow`` (one path only)
    goes on under the old name when the path was added by renaming a file."""
    if not paths:
        raise UsageError("name at least one path after --")
    if follow and len(paths) != 1:
        raise UsageError("--follow takes exactly one path")
    trees = _Trees(repo.store)
    current = [path_parts(p) for p in paths]
    out: list[PathLogEntry] = []
    for v, parent_rootfs in _pairs(repo, rev):
        if limit is not None and len(out) >= limit:
            break
        changes = []
        for parts in current:
            how = path_change(trees, parent_rootfs, v.rootfs, parts, include_mtime)
            if how:
                changes.append((joined(parts).decode("utf-8", _RAW), how))
        if changes:
            named = tuple(joined(p).decode("utf-8", _RAW) for p in current)
            out.append(PathLogEntry(log_entry(repo, v, parent_rootfs), named, tuple(changes)))
        if follow and parent_rootfs is not None and changes and changes[0][1] == ("added",):
            source = _renamed_from(trees, parent_rootfs, v.rootfs, current[0])
            if source is not None:
                current = [source]
    return out


# -- blame ------------------------------------------------------------------------


@dataclass(frozen=True)
class BlameLine:
    number: int  # 1-based, in the file as REV has it
    text: bytes  # without its newline
    version: LogEntry  # the version that last changed this line


@dataclass(frozen=True)
class BlameEntry:
    name: str
    kind: str
    version: LogEntry  # the version that last changed this entry
    how: tuple[str, ...]  # added, type, content, mode, owner, xattrs, rdev, link (, mtime)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def _bounded_text(store, node: Node, path: str) -> bytes:
    assert node.oid is not None  # a file's blob
    size = store.object_size(node.oid)
    if size > BLAME_MAX:
        raise UsageError(f"{path} is {size} bytes in one version; lg blames files of at most"
                         f" {BLAME_MAX} bytes")
    return store.read_blob(node.oid, BLAME_MAX)


def kind_at(repo: Repo, rev: str, path: str) -> str:
    """The type letter of the entry at ``path`` in ``rev`` (no symlink followed)."""
    node = _Trees(repo.store).node(repo.image_at(rev).rootfs, path_parts(path))
    if node is None:
        raise NotFound(f"{path} does not exist in {rev}")
    return node.meta.kind


def _rev_lines(store, node: Node | None, path: str, rev: str) -> list[bytes]:
    if node is None:
        raise NotFound(f"{path} does not exist in {rev}")
    if node.meta.kind != "f":
        raise UsageError(f"{path} is not a regular file in {rev}; blame a directory's entries"
                         " with lg blame REV DIR")
    data = _bounded_text(store, node, path)
    if _is_binary(data):
        raise UsageError(f"{path} is a binary file; lg blame reads text")
    return _lines(data)


def _carry(older: list[bytes], newer: list[bytes], pending: dict[int, int]) -> dict[int, int]:
    """Moves the lines of ``pending`` (index in ``newer`` -> index in REV's file) that
    ``older`` already had into the returned map (index in ``older`` -> the same)."""
    carried: dict[int, int] = {}
    for a, b, size in SequenceMatcher(None, older, newer, autojunk=False).get_matching_blocks():
        for k in range(size):
            if b + k in pending:
                carried[a + k] = pending.pop(b + k)
    return carried


def blame_file(repo: Repo, rev: str, path: str) -> list[BlameLine]:
    """Each line of the file at ``path`` in ``rev`` with the version that last changed it,
    as git blame does without -M/-C: walking back through the versions that changed the
    file's content, a line matched (difflib's longest matching blocks) in the older
    version passes the blame on; the rest stays with the newer one. A version where the
    file was added (or was not a file) takes every line still unclaimed."""
    trees = _Trees(repo.store)
    parts = path_parts(path)
    lines = newer = _rev_lines(repo.store, trees.node(repo.image_at(rev).rootfs, parts), path, rev)
    pending = {i: i for i in range(len(lines))}
    out: dict[int, LogEntry] = {}
    for v, parent_rootfs in _pairs(repo, rev):
        if not pending:
            break
        how = path_change(trees, parent_rootfs, v.rootfs, parts, False)
        if "content" not in how and how not in (("added",), ("type",)):
            continue
        old = trees.node(parent_rootfs, parts) if parent_rootfs is not None else None
        older: list[bytes] = []
        if old is not None and old.meta.kind == "f":
            older = _lines(_bounded_text(repo.store, old, path))
        carried = _carry(older, newer, pending)
        out.update(dict.fromkeys(pending.values(), log_entry(repo, v, parent_rootfs)))
        pending, newer = carried, older
    return [BlameLine(i + 1, line, out[i]) for i, line in enumerate(lines)]


def blame_dir(repo: Repo, rev: str, path: str) -> list[BlameEntry]:
    """Each entry of the directory at ``path`` in ``rev`` with the newest version that
    changed it and how, as a code host's tree view shows a directory; mtime-only changes
    are not changes (as in ``lg diff``)."""
    trees = _Trees(repo.store)
    parts = path_parts(path)
    unresolved: dict[bytes, Node] | None = None
    out: dict[bytes, BlameEntry] = {}
    for v, parent_rootfs in _pairs(repo, rev):
        new_dir = trees.node(v.rootfs, parts)
        if unresolved is None:
            if new_dir is None:
                raise NotFound(f"{path} does not exist in {rev}")
            if new_dir.meta.kind != "d":
                raise UsageError(f"{path} is not a directory in {rev}")
            unresolved = dict(trees.nodes(new_dir.tree))
        old_dir = trees.node(parent_rootfs, parts) if parent_rootfs is not None else None
        if old_dir is not None and new_dir is not None and old_dir.oid == new_dir.oid:
            continue
        new_nodes = trees.nodes(new_dir.tree) if new_dir is not None and new_dir.meta.kind == "d" else {}
        old_nodes = trees.nodes(old_dir.tree) if old_dir is not None and old_dir.meta.kind == "d" else {}
        entry = None
        for name in list(unresolved):
            how = node_change(trees, old_nodes.get(name), new_nodes.get(name), False)
            if how:
                entry = entry or log_entry(repo, v, parent_rootfs)
                out[name] = BlameEntry(name.decode("utf-8", _RAW), unresolved.pop(name).meta.kind,
                                       entry, how)
        if not unresolved:
            break
    return [out[name] for name in sorted(out)]


# -- cat and ls ---------------------------------------------------------------------


def resolve(trees: _Trees, rootfs: bytes, path: str, follow_last: bool = True) -> tuple[list[bytes], Node]:
    """The entry ``path`` names in the image, symlinks followed as inside a chroot: an
    absolute target starts again at the image's ``/`` and ``..`` never climbs above it,
    so nothing outside the image is ever named. Returns its real path and node."""
    todo = list(reversed(path_parts(path)))
    done: list[bytes] = []
    hops = 0
    while todo:
        name = todo.pop()
        if name == b"..":
            if done:
                done.pop()
            continue
        node = trees.node(rootfs, done + [name])
        if node is None:
            missing = joined(done + [name]).decode(errors="replace")
            raise NotFound(f"{path} does not exist in the image ({missing})")
        if node.meta.kind == "l" and (todo or follow_last):
            hops += 1
            if hops > SYMLINK_HOPS:
                raise LgError(f"{path}: too many levels of symbolic links in the image")
            target = read_link_target(trees.store, node.oid)
            if target.startswith(b"/"):
                done = []
            todo.extend(reversed([p for p in target.split(b"/") if p not in (b"", b".")]))
            continue
        if todo and node.meta.kind != "d":
            raise NotFound(f"{path}: {joined(done + [name]).decode(errors='replace')} is not a directory")
        done.append(name)
    node = trees.node(rootfs, done)
    assert node is not None  # every step above found its entry
    return done, node


def cat(repo: Repo, rev: str, path: str) -> tuple[int, Iterator[bytes]]:
    """(size, content in pieces) of the regular file ``path`` names in ``rev``."""
    trees = _Trees(repo.store)
    parts, node = resolve(trees, repo.image_at(rev).rootfs, path)
    if node.meta.kind != "f":
        what = {"d": "a directory", "c": "a device", "b": "a device", "p": "a fifo", "s": "a socket"}
        shown = joined(parts).decode(errors="replace")
        raise UsageError(f"{shown} is {what[node.meta.kind]} in {rev}, not a file")
    assert node.oid is not None  # a file's blob
    return repo.store.open_blob(node.oid)


@dataclass(frozen=True)
class LsEntry:
    path: str  # real path from /
    name: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int  # bytes of content (a file's, a symlink target's), 0 otherwise
    mtime_ns: int
    target: str | None  # a symlink's target
    hardlink: str | None  # the real path of the first name of a hardlinked file
    rdev: tuple[int, int] | None
    xattrs: tuple[str, ...]


def _ls_entry(store, path: bytes, node: Node) -> LsEntry:
    from ..fs.tarwrite import leader_path

    m: EntryMeta = node.meta
    target = read_link_target(store, node.oid).decode("utf-8", _RAW) if m.kind == "l" else None
    size = store.object_size(node.oid) if m.kind == "f" and node.oid else len(target.encode(
        "utf-8", "surrogateescape")) if target is not None else 0
    leader = leader_path(m.link).decode("utf-8", _RAW) if m.link else None
    return LsEntry(path.decode("utf-8", _RAW), node.name.decode("utf-8", _RAW), m.kind, m.mode, m.uid, m.gid,
                   size, m.mtime_ns, target, leader, m.rdev, tuple(k for k, _ in m.xattrs))


def ls(repo: Repo, rev: str, path: str = "/", recursive: bool = False) -> Iterator[LsEntry]:
    """The entries of the directory ``path`` names in ``rev`` (the entry itself when it
    names anything else), from the stored metadata; every entry below it with
    ``recursive``, depth first in byte order. Symlinks on the way are followed in the
    image; the last one is listed, not followed, unless the path ends with ``/``."""
    trees = _Trees(repo.store)
    parts, node = resolve(trees, repo.image_at(rev).rootfs, path, follow_last=path.endswith("/"))
    base = joined(parts)
    if node.meta.kind != "d":
        yield _ls_entry(repo.store, base, node)
        return
    prefix = b"" if base == b"/" else base
    if recursive:
        for sub, child in walk(repo.store, node.tree, prefix):
            yield _ls_entry(repo.store, sub, child)
        return
    for child in read_dir(repo.store, node.tree)[1]:
        yield _ls_entry(repo.store, prefix + b"/" + child.name, child)


# -- grep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GrepMatch:
    rev: str  # as the user named it
    path: str
    number: int  # 1-based line number (0 with files_only)
    line: bytes
    first: LogEntry | None = None  # --first: the version where this line appeared at this path


def _is_binary(head: bytes) -> bool:
    return b"\0" in head[:BINARY_PROBE]


def _matching_lines(store, oid: bytes, pattern: LineFilter, text: bool) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every matching line, as the blob is read in pieces; none for
    a binary file unless ``text``. A line longer than GREP_LINE_MAX is matched on its start."""
    _, chunks = store.open_blob(oid)
    carry, number, first = b"", 0, True
    for chunk in chunks:
        if first:
            first = False
            if not text and _is_binary(chunk):
                return
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()[:GREP_LINE_MAX]
        for line in lines:
            number += 1
            if pattern.selects(line):
                yield number, line
    if carry and pattern.selects(carry):
        yield number + 1, carry


@dataclass(frozen=True)
class LineFilter:
    """The lines lg grep selects: those its pattern matches, or with ``invert`` (-v)
    those it does not."""

    regex: re.Pattern[bytes]
    invert: bool = False

    def selects(self, line: bytes) -> bool:
        return (self.regex.search(line) is None) == self.invert


def compile_pattern(patterns: list[str], ignore_case: bool = False, fixed: bool = False, word: bool = False,
                    invert: bool = False) -> LineFilter:
    """One filter for git grep's options: a line is matched by any of ``patterns`` (-e),
    as strings with ``fixed`` (-F), only as whole words with ``word`` (-w: not preceded
    or followed by a letter, digit or underscore)."""
    parts = []
    for pattern in patterns:
        raw = pattern.encode("utf-8", "surrogateescape")
        raw = re.escape(raw) if fixed else raw
        try:
            re.compile(raw)
        except re.error as exc:
            raise UsageError(f"bad pattern {pattern!r}: {exc}") from None
        parts.append(rb"(?<!\w)(?:" + raw + rb")(?!\w)" if word else rb"(?:" + raw + rb")")
    return LineFilter(re.compile(b"|".join(parts), re.IGNORECASE if ignore_case else 0), invert)


def _under(path: bytes, prefixes: list[bytes]) -> bool:
    return not prefixes or any(p == b"/" or path == p or path.startswith(p + b"/") for p in prefixes)


def grep(repo: Repo, revs: list[str], pattern: LineFilter, paths: list[str] | None = None,
         text: bool = False, files_only: bool = False, first: bool = False) -> Iterator[GrepMatch]:
    """Matching lines of the regular files of each version, path order; a blob that
    several versions share is read once. ``first`` adds, for each match, the oldest version
    of the unbroken run back from that revision in which the file at that path held the line."""
    prefixes = [joined(path_parts(p)) for p in paths or []]
    cache: dict[bytes, list[tuple[int, bytes]]] = {}  # blob -> its matches, when few
    for rev in revs:
        rootfs = repo.image_at(rev).rootfs
        for path, node in _files_under(repo.store, rootfs, prefixes):
            assert node.oid is not None
            name = path.decode("utf-8", _RAW)
            hits: Iterator[tuple[int, bytes]] | list[tuple[int, bytes]] | None = cache.get(node.oid)
            if hits is None:
                hits = _matching_lines(repo.store, node.oid, pattern, text)
            if files_only:
                if next(iter(hits), None) is not None:
                    yield GrepMatch(rev, name, 0, b"")
                continue
            if first and repo.store.object_size(node.oid) <= BLAME_MAX:
                hits = list(hits)  # --first reads the file's versions whole: it is small
                origins = _origins(repo, rev, path, [line for _, line in hits]) if hits else {}
            else:
                origins = {}
            kept: list[tuple[int, bytes]] | None = []
            for number, line in hits:
                if kept is not None:
                    kept.append((number, line))
                    if len(kept) > GREP_CACHE_LINES:
                        kept = None
                yield GrepMatch(rev, name, number, line, origins.get(line))
            if kept is not None and len(revs) > 1:
                cache[node.oid] = kept


def _files_under(store, rootfs: bytes, prefixes: list[bytes]) -> Iterator[tuple[bytes, Node]]:
    """Regular files below the prefixes (all when none), descending only into directories
    on the way to one."""
    trees = _Trees(store)
    starts = sorted(set(prefixes)) or [b"/"]
    for start in starts:
        if any(start != p and start.startswith(p + b"/") for p in starts):
            continue  # inside another prefix: walked with it
        parts = path_parts(start.decode("utf-8", _RAW))
        node = trees.node(rootfs, parts)
        if node is None:
            continue
        if node.meta.kind == "f":
            yield start, node
        elif node.meta.kind == "d":
            base = b"" if not parts else joined(parts)
            for path, sub in walk(store, node.tree, base):
                if sub.meta.kind == "f":
                    yield path, sub


def _origins(repo: Repo, rev: str, path: bytes, lines: list[bytes]) -> dict[bytes, LogEntry]:
    """For each line, the oldest version in the unbroken run of versions back from ``rev``
    whose file at ``path`` holds it."""
    trees = _Trees(repo.store)
    parts = path_parts(path.decode("utf-8", _RAW))
    wanted = set(lines)
    origin: dict[bytes, LogEntry] = {}
    alive = set(wanted)
    for v, parent_rootfs in _pairs(repo, rev):
        if not alive:
            break
        how = path_change(trees, parent_rootfs, v.rootfs, parts, False)
        if not how or how == ("deleted",):
            continue
        old = trees.node(parent_rootfs, parts) if parent_rootfs is not None else None
        held: set[bytes] = set()
        if old is not None and old.meta.kind == "f" and "content" not in how:
            continue  # only metadata changed: the lines live on
        if old is not None and old.oid is not None and old.meta.kind == "f" \
                and repo.store.object_size(old.oid) <= BLAME_MAX:
            held = set(_lines(repo.store.read_blob(old.oid, BLAME_MAX))) & alive
        entry = None
        for line in alive - held:
            entry = entry or log_entry(repo, v, parent_rootfs)
            origin[line] = entry
        alive = held
    return origin
