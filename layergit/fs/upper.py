"""A container's writable layer (an overlayfs upper directory) as snapshot changes.

overlayfs records a deletion as a 0:0 character device (a whiteout) and a directory
that hides everything below it with the ``trusted.overlay.opaque`` xattr (``user.``
in a user namespace, where lg without root mounts it with ``userxattr``); every
other entry in the upper directory is the new version of that path, with its full
metadata. Applying the upper directory to the image's snapshot (store.mutable) gives
the container's filesystem exactly, without reading the unchanged lower files.
Overlay's own ``trusted.overlay.*`` (or ``user.overlay.*``) xattrs are bookkeeping and are not kept.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Set

from ..store.mutable import Dir, Inode, MutableTree
from .capture import entry_meta
from .content import put_file
from .safeio import DirStack, open_dir, read_xattrs


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _own_xattrs(xattrs, overlay: str):
    return tuple((k, v) for k, v in xattrs if not k.startswith(overlay))


def apply_upper(
    tree: MutableTree, upper: str, writer, mount_points: Set[tuple[bytes, ...]] = frozenset(),
    userxattr: bool = False,
) -> int:
    """Apply the upper directory at ``upper`` to ``tree``; returns the entries it changed.

    ``mount_points`` are paths the runtime created only to mount something on
    (/etc/hosts, volume targets, ...): where the image has nothing, they are not
    part of the container's changes. ``userxattr``: the overlay kept its bookkeeping in
    user.overlay.* xattrs (mounted in a user namespace).
    """
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _apply(tree, fd, writer, mount_points, "user.overlay." if userxattr else "trusted.overlay.")
    finally:
        os.close(fd)


def _listing(fd: int) -> Iterator[bytes]:
    return iter(sorted(os.fsencode(e.name) for e in os.scandir(fd)))


def _apply(tree: MutableTree, root_fd: int, writer, mount_points, overlay: str) -> int:
    """Depth first, with a stack of our own and a bounded number of directory fds
    (safeio.DirStack): the container decides how deep its upper dir nests."""
    changed = 0
    inodes: dict[tuple[int, int], Inode] = {}
    pending = [_listing(root_fd)]  # per level: the names still to apply
    with DirStack(root_fd) as dirs:
        while True:
            name = next(pending[-1], None)
            if name is None:
                pending.pop()
                if not pending:
                    return changed
                dirs.pop()
                continue
            fd = dirs.fd
            path = dirs.names + [name]
            if tuple(path) in mount_points and tree.get(path) is None:
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            changed += 1
            if _is_whiteout(st):
                tree.remove(path)
                continue
            if stat.S_ISDIR(st.st_mode):
                sub = open_dir(fd, name)
                dirs.push(sub, name)
                xattrs = read_xattrs(fd, name, sub)
                if ((overlay + "opaque", b"y") in xattrs) or not isinstance(tree.get(path), Dir):
                    tree.remove(path)
                tree.put(path, Dir(entry_meta(st, _own_xattrs(xattrs, overlay))))
                pending.append(_listing(sub))
                continue
            _apply_file(tree, fd, name, st, path, writer, inodes, overlay)


def _apply_file(
    tree: MutableTree, fd: int, name: bytes, st: os.stat_result, path: list[bytes], writer, inodes: dict,
    overlay: str,
) -> None:
    """Put an entry that is not a directory (a hardlink to one seen before shares its inode)."""
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in inodes:
        tree.put(path, inodes[key])
        return
    target = None
    if stat.S_ISREG(st.st_mode):
        oid, xattrs = put_file(writer, fd, name, st)
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=fd)
        oid = writer.put_blob(target)
        xattrs = read_xattrs(fd, name)
    else:
        oid, xattrs = None, read_xattrs(fd, name)
    inode = Inode(entry_meta(st, _own_xattrs(xattrs, overlay)), oid, target)
    inodes[key] = inode
    tree.put(path, inode)
