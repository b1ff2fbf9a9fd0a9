"""lg cp: files between a container and the host, Docker's grammar, nothing followed out.

``CONTAINER:PATH`` names a path in the container (a path starting with ``/`` or
``.`` is always the host's, so ``./a:b`` is a host file). Inside the container,
every path is resolved with openat2(RESOLVE_IN_ROOT) from its root
(runtime.rootfs.with_view), so a symlink the container made (to ``/``, to a host
path) resolves inside it, whichever way the copy goes; the entries themselves are
copied by fs/copy.py, which never follows a link. Owners, modes, times and xattrs
are kept both ways (Docker's ``-a``; lg always does it). As Docker: a directory
destination receives SOURCE under its own name; ``SOURCE/.`` copies a directory's
content; a missing destination is created with the source's name replaced.
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass

from ..errors import Conflict, NotFound, UsageError
from .repo import Repo


@dataclass(frozen=True)
class CpPath:
    container: str | None  # a container reference, or None for the host
    path: str


def parse(arg: str) -> CpPath:
    if arg.startswith(("/", ".")) or ":" not in arg:
        return CpPath(None, arg)
    ref, _, path = arg.partition(":")
    if not ref:
        return CpPath(None, arg)
    return CpPath(ref, path or "/")


@dataclass(frozen=True)
class _Plan:
    """What to copy where: the source entry (or its content) and the destination's
    directory and name, each still a path in its own tree."""

    src: str
    contents: bool  # SOURCE/. : the directory's content, not the directory
    dst: str


def _source(path: str) -> tuple[str, bool]:
    contents = path.endswith("/.") or path == "."
    clean = posixpath.normpath(path) if path else "."
    return clean, contents


def copy(repo: Repo, source: str, dest: str) -> None:
    from .container_lookup import find

    src, dst = parse(source), parse(dest)
    if (src.container is None) == (dst.container is None):
        raise UsageError("lg cp copies between a container and the host: one of SOURCE and DEST is"
                         " CONTAINER:PATH, the other a host path")
    if "-" in (src.path, dst.path) and (src.container is None or dst.container is None):
        raise UsageError("lg cp does not stream tar archives (-): give a host path")
    ref = src.container or dst.container or ""
    cdir = find(repo, ref)
    spec = cdir.record().spec
    src_path, contents = _source(src.path)
    plan = _Plan(src_path, contents, dst.path)
    work = (lambda root: _out_of(root, plan)) if src.container else (lambda root: _into(root, plan))
    from ..runtime.rootfs import with_view

    st = cdir.state()
    if st.running:
        with_view(spec, st.pid, work)
        return
    with cdir.lock():  # a stopped container: it must not start while its overlay is mounted for us
        st = cdir.state()
        with_view(spec, st.pid if st.running else None, work)


def _dir_fd(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _in_container(root: int, path: str, flags: int = os.O_PATH) -> int | None:
    from ..runtime.rootfs import open_in_root

    try:
        return open_in_root(root, path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _split(path: str) -> tuple[str, str]:
    parent, name = posixpath.split(path.rstrip("/") or "/")
    return parent or ".", name


def _is_dir(fd: int, name: str) -> bool:
    return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)


def _out_of(root: int, plan: _Plan) -> None:
    """Container -> host."""
    from ..fs.copy import copy_contents

    where = plan.src if plan.src.startswith("/") else "/" + plan.src
    parent_path, name = _split(where)
    parent = _in_container(root, parent_path, os.O_RDONLY | os.O_DIRECTORY)
    if parent is None or not name and where != "/":
        raise NotFound(f"no such file or directory in the container: {where}")
    try:
        if where == "/":
            name, parent_of_root = ".", parent
        else:
            parent_of_root = parent
        try:
            is_dir = _is_dir(parent_of_root, name)
        except FileNotFoundError:
            raise NotFound(f"no such file or directory in the container: {where}") from None
        _place(plan, is_dir, _entry_from(parent, name),
               lambda dst_dir: _contents(parent, name, dst_dir, copy_contents), host=True)
    finally:
        os.close(parent)


def _entry_from(parent: int, name: str):
    """What copies the source entry to a destination directory and name."""
    from ..fs.copy import copy_entry

    def entry(dst_dir: int, dst_name: str, shown: str = "") -> None:
        copy_entry(parent, name, dst_dir, dst_name, shown=shown)

    return entry


def _contents(parent: int, name: str, dst_dir: int, copy_contents) -> None:
    from ..fs.safeio import DIR_FLAGS

    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    try:
        copy_contents(fd, dst_dir)
    finally:
        os.close(fd)


def _into(root: int, plan: _Plan) -> None:
    """Host -> container."""
    from ..fs.copy import copy_contents

    parent_path, name = _split(os.path.abspath(plan.src))
    parent = _dir_fd(parent_path)
    try:
        if parent is None or not os.path.lexists(plan.src):
            raise NotFound(f"no such file or directory: {plan.src}")
        is_dir = _is_dir(parent, name) if name else True
        _place(plan, is_dir, _entry_from(parent, name),
               lambda dst_dir: _contents(parent, name, dst_dir, copy_contents), host=False, root=root)
    finally:
        if parent is not None:
            os.close(parent)


def _whole(parent: int, name: str, entry) -> None:
    """Copy to ``name`` in ``parent``, all or nothing when nothing is there yet: under a
    temporary name, renamed into place once complete, removed if the copy fails. An
    existing entry is merged into (a directory) or replaced (anything else), as cp does."""
    from ..removal import remove_at

    try:
        os.stat(name, dir_fd=parent, follow_symlinks=False)
        entry(parent, name)
        return
    except FileNotFoundError:
        pass
    tmp = f".lg-cp-{os.getpid()}-{name}"[:255]
    try:
        entry(parent, tmp, name)
        os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        remove_at(parent, os.fsencode(tmp))
        raise


def _place(plan: _Plan, is_dir: bool, entry, contents, host: bool, root: int = -1) -> None:
    """Docker's destination rules: into an existing directory under the source's name (or its
    content, with ``/.``); else as the destination's name, in its parent, which must exist."""
    def open_dir(path: str) -> int | None:
        return _dir_fd(path) if host else _in_container(root, path, os.O_RDONLY | os.O_DIRECTORY)

    dst = plan.dst if host or plan.dst.startswith("/") else "/" + plan.dst
    existing = open_dir(dst)
    if existing is not None:
        try:
            if plan.contents:
                contents(existing)
            else:
                _whole(existing, posixpath.basename(plan.src.rstrip("/")) or ".", entry)
        finally:
            os.close(existing)
        return
    if dst.endswith("/") and not is_dir:
        raise NotFound(f"destination directory {dst} does not exist")
    parent_path, name = _split(dst)
    parent = open_dir(parent_path)
    if parent is None:
        raise NotFound(f"no such directory: {parent_path}")
    try:
        if plan.contents:
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                contents(fd)
            finally:
                os.close(fd)
        else:
            _whole(parent, name, entry)
    except FileExistsError:
        raise Conflict(f"{dst} exists and is not a directory") from None
    finally:
        os.close(parent)
