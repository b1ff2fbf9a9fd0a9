"""What COPY and ADD put into an image: sources placed at their destination in an
in-memory snapshot (store.mutable), with ``--chown`` and ``--chmod`` applied.

Sources come from the build context (build.context), from another stage or image
(``--from``), from here-documents, from a URL (ADD) or from a local tar archive that
ADD unpacks. Archives are read with the same parser and limits as ``lg import``
(fs.tarlayer): nothing is ever extracted on the host, ``..`` entries are refused and
symlinks in entry paths resolve inside the image. Destination rules are Docker's:
relative to WORKDIR; a directory's contents (not the directory) are copied; a
destination ending in ``/`` (or an existing directory) receives files by name;
several sources need such a destination.
"""

from __future__ import annotations

import bz2
import dataclasses
import email.utils
import hashlib
import os
import posixpath
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from ..fs.tarlayer import ArchiveError, Digesting, Limits, apply_layer, decompressed, read_tar
from ..runtime.users import MAX_DATABASE
from ..store import meta as M
from ..store.mutable import Dir, Inode, MutableTree, PathError
from .context import Source, SourceEntry, expand_glob
from .dockerfile import DockerfileError

_DOWNLOAD_TIMEOUT = 60


def dest_path(workdir: str | None, dest: str) -> list[bytes]:
    path = posixpath.normpath(posixpath.join(workdir or "/", dest))
    return [os.fsencode(p) for p in path.split("/") if p]


def names_a_dir(dest: str) -> bool:
    return dest.endswith("/") or posixpath.basename(dest) in (".", "..")


class Chmod:
    """``--chmod``: an octal mode (``755``), or BuildKit's symbolic form as chmod(1)
    reads it (``u+x``, ``go-w``, ``a=rX``, clauses joined by commas), applied to each
    entry's own mode; ``X`` adds execute to directories and to what some already has."""

    _CLAUSE = r"[ugoa]*[-+=][rwxXst]*"

    def __init__(self, text: str):
        self.octal: int | None = None
        self.clauses: list[tuple[str, str, str]] = []
        if re.fullmatch(r"[0-7]{3,4}", text):
            self.octal = int(text, 8)
        elif re.fullmatch(rf"{self._CLAUSE}(,{self._CLAUSE})*", text):
            for clause in text.split(","):
                m = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
                assert m is not None  # the pattern above admitted it
                self.clauses.append((m.group(1) or "a", m.group(2), m.group(3)))
        else:
            raise DockerfileError(f"--chmod={text}: expected an octal mode (755) or u+x, go-w, a=rX, ...")

    def apply(self, mode: int, is_dir: bool) -> int:
        if self.octal is not None:
            return self.octal
        for who, op, perms in self.clauses:
            bits = 0
            for w in who.replace("a", "ugo"):
                shift = {"u": 6, "g": 3, "o": 0}[w]
                for p in perms:
                    if p == "X" and not (is_dir or mode & 0o111):
                        continue
                    bits |= {"r": 4, "w": 2, "x": 1, "X": 1}.get(p, 0) << shift
                    bits |= {("s", "u"): 0o4000, ("s", "g"): 0o2000}.get((p, w), 0)
                    bits |= 0o1000 if p == "t" and w == "o" else 0
            if op == "=":
                cleared = 0
                for w in who.replace("a", "ugo"):
                    cleared |= 0o7 << {"u": 6, "g": 3, "o": 0}[w]
                    cleared |= {"u": 0o4000, "g": 0o2000, "o": 0o1000}[w]
                mode = (mode & ~cleared) | bits
            else:
                mode = mode | bits if op == "+" else mode & ~bits
        return mode



def _table(tree: MutableTree, name: bytes) -> list[list[str]]:
    node = tree.get([b"etc", name])
    if not isinstance(node, Inode) or node.meta.kind != "f":
        return []
    text = tree.store.read_blob(node.oid, MAX_DATABASE, f"/etc/{name.decode()}").decode("utf-8", "replace")
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def owner(tree: MutableTree, spec: str) -> tuple[int, int]:
    """``--chown USER[:GROUP]``: names from the image's /etc/passwd and /etc/group.

    Without a group, a number is also the gid and a name means the group of that
    name, else the user's primary group (Docker's classic builder).
    """
    user, _, group = spec.partition(":")
    if user.isdigit():
        uid = primary = int(user)
    else:
        entry = next((p for p in _table(tree, b"passwd") if len(p) >= 4 and p[0] == user), None)
        if entry is None:
            raise DockerfileError(f"--chown={spec}: no user {user!r} in the image's /etc/passwd")
        uid, primary = int(entry[2]), int(entry[3])
    if not group:
        if user.isdigit():
            return uid, primary
        group, explicit = user, False
    else:
        explicit = True
    if group.isdigit():
        return uid, int(group)
    entry = next((g for g in _table(tree, b"group") if len(g) >= 3 and g[0] == group), None)
    if entry is not None:
        return uid, int(entry[2])
    if explicit:
        raise DockerfileError(f"--chown={spec}: no group {group!r} in the image's /etc/group")
    return uid, primary


def place(
    tree: MutableTree, target: list[bytes], source: Source, ids: tuple[int, int] | None, mode: Chmod | None
) -> None:
    """Put ``source`` at ``target``: a directory source merges its contents into it.

    ``ids`` replaces every owner (None keeps the source's), ``mode`` every mode but
    a symlink's. An existing target directory keeps its own metadata.
    """
    inodes: dict[object, Inode] = {}
    try:
        for e in source.entries:
            m = e.meta
            uid, gid = ids if ids is not None else (m.uid, m.gid)
            new_mode = m.mode if mode is None or m.kind == "l" else mode.apply(m.mode, m.kind == "d")
            meta = M.EntryMeta(m.kind, new_mode, uid, gid, m.mtime_ns, m.rdev, None, m.xattrs)
            path = target + e.parts
            if m.kind == "d":
                if e.parts or tree.resolve_dir(path, create=False) is None:
                    tree.put(path, Dir(meta))
                continue
            inode = inodes.get(e.inode) if e.inode is not None else None
            if inode is None:
                inode = Inode(meta, e.oid, e.target)
                if e.inode is not None:
                    inodes[e.inode] = inode
            tree.put(path, inode)
    except PathError as exc:
        raise DockerfileError(str(exc)) from None


def put_source(
    tree: MutableTree,
    dest: str,
    target: list[bytes],
    source: Source,
    ids: tuple[int, int] | None,
    mode: Chmod | None,
) -> None:
    """Place a source at COPY's destination ``dest`` (resolved to ``target``).

    A directory's contents go into ``target``; anything else goes inside it when
    ``dest`` names a directory (a trailing ``/``, or an existing directory), else
    becomes ``target`` itself.
    """
    if not source.is_dir and (names_a_dir(dest) or tree.resolve_dir(target, create=False) is not None):
        target = target + [os.fsencode(source.name.rsplit("/", 1)[-1])]
    place(tree, target, source, ids, mode)


# -- sources other than the context --------------------------------------------------


def heredoc_source(name: str, body: bytes, writer) -> Source:
    """A here-document as a file: 0644, root-owned, mtime 0 (its text is in the step's key)."""
    return Source(name, False, [SourceEntry([], M.EntryMeta("f", 0o644, 0, 0, 0), writer.put_blob(body))])


def _tree_entries(node: Dir | Inode, parts: list[bytes]) -> Iterator[SourceEntry]:
    """``node`` and everything below it, parents first, in byte order (without
    recursion: an image may nest deeper than Python recurses)."""
    stack: list[tuple[Dir | Inode, list[bytes]]] = [(node, parts)]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, Dir):
            yield SourceEntry(parts, node.meta)
            below = sorted(node.children, reverse=True)  # popped in byte order
            stack.extend((node.children[name], parts + [name]) for name in below)
        else:
            yield SourceEntry(parts, node.meta, node.oid, node.target, node)


def image_sources(tree: MutableTree, pattern: str) -> list[Source]:
    """``COPY --from``: the entries a (glob) path names in another image's snapshot."""

    def listdir(parts: list[str]) -> list[str] | None:
        directory = tree.resolve_dir([os.fsencode(p) for p in parts], create=False)
        return [os.fsdecode(n) for n in directory.children] if directory is not None else None

    sources = []
    for parts in expand_glob(pattern, listdir):
        node = tree.get([os.fsencode(p) for p in parts])
        if node is not None:
            entries = list(_tree_entries(node, []))
            sources.append(Source("/" + "/".join(parts), isinstance(node, Dir), entries))
    if not sources:
        raise DockerfileError(f"{pattern}: not found in the source image")
    return sources


def fetch(url: str, writer) -> tuple[Source, str]:
    """ADD URL: the downloaded file (0600, mtime from Last-Modified) and its content digest."""
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    limit = Limits().max_bytes
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "layergit"})
        with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT) as resp:
            data = resp.read(limit + 1)
            modified = resp.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        raise DockerfileError(f"ADD {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DockerfileError(f"ADD {url}: {getattr(exc, 'reason', exc)}") from None
    if len(data) > limit:
        raise DockerfileError(f"ADD {url}: larger than {limit} bytes")
    mtime = 0
    if modified:
        try:
            mtime = int(email.utils.parsedate_to_datetime(modified).timestamp()) * 1_000_000_000
        except (TypeError, ValueError):
            pass
    meta = M.EntryMeta("f", 0o600, 0, 0, mtime)
    digest = hashlib.sha256(data).hexdigest() + f" {mtime}"
    return Source(name, False, [SourceEntry([], meta, writer.put_blob(data))]), digest


def _unpacked(f, limits: Limits):
    """The tar stream inside ``f``, undoing gzip, xz, zstd or bzip2."""
    if f.peek(3)[:3] == b"BZh":
        return Digesting(bz2.BZ2File(f), limits)
    return decompressed(f, limits)


def is_archive(open_file) -> bool:
    """Whether ADD unpacks this file: a tar archive, compressed or not (by content, not name)."""
    with open_file() as f:
        try:
            block = _unpacked(f, Limits()).read(tarfile.BLOCKSIZE)
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except (ArchiveError, tarfile.TarError, EOFError, OSError):
            return False
    return True


def extract(tree: MutableTree, target: list[bytes], open_file, writer) -> None:
    """ADD of a local archive: its entries below ``target``, as ``lg import`` reads layers."""
    limits = Limits()
    with open_file() as f:
        entries = read_tar(_unpacked(f, limits), writer, limits, whiteouts=False)
    try:
        tree.resolve_dir(target, create=True)
    except PathError as exc:
        raise DockerfileError(str(exc)) from None
    moved = [
        dataclasses.replace(e, parts=target + e.parts, link=target + e.link if e.link is not None else None)
        for e in entries
    ]
    apply_layer(tree, moved)
