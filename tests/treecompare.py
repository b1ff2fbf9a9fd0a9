"""Entry-by-entry description of a directory tree, for comparing checkouts with sources.

Each entry is reduced to everything layergit promises to keep: type, full mode,
owner, mtime in nanoseconds, content digest (or link target, or device number),
xattrs, and which other entries it is hardlinked to. Directory sizes and atimes
are deliberately left out: no tool can reproduce them.
"""

from __future__ import annotations

import hashlib
import os
import stat


def _xattrs(path: bytes) -> tuple:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))


def describe(root: str | bytes, mtimes: bool = True) -> dict[bytes, tuple]:
    """{relative path: facts} for every entry below ``root`` (the root itself is b'.')."""
    root = os.fsencode(root)
    out: dict[bytes, tuple] = {}
    inode_paths: dict[tuple, list[bytes]] = {}
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        paths += [os.path.join(dirpath, n) for n in sorted(dirnames + filenames)]
    for path in paths:
        rel = os.path.relpath(path, root)
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        if stat.S_ISREG(kind):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            content = h.hexdigest()
        elif stat.S_ISLNK(kind):
            content = os.readlink(path)
        elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
            content = (os.major(st.st_rdev), os.minor(st.st_rdev))
        else:
            content = None
        if not stat.S_ISDIR(kind) and st.st_nlink > 1:
            inode_paths.setdefault((st.st_dev, st.st_ino), []).append(rel)
        out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns if mtimes else None, content, _xattrs(path))
    # Hardlink groups, expressed by path so they compare across trees.
    groups = {}
    for paths in inode_paths.values():
        if len(paths) > 1:
            for p in paths:
                groups[p] = tuple(sorted(paths))
    return {p: facts + (groups.get(p, ()),) for p, facts in out.items()}


def differences(a: dict, b: dict, limit: int = 20) -> list[str]:
    """Human-readable differences between two descriptions (empty when equal)."""
    out = []
    for path in sorted(set(a) | set(b)):
        if a.get(path) != b.get(path):
            out.append(f"{path!r}: {a.get(path)} != {b.get(path)}")
            if len(out) >= limit:
                break
    return out


def assert_same_tree(a: str | bytes, b: str | bytes, mtimes: bool = True) -> None:
    diffs = differences(describe(a, mtimes), describe(b, mtimes))
    assert not diffs, "trees differ:\n" + "\n".join(diffs)
