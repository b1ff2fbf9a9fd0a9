"""Where layergit keeps its state, and the layout under that root.

The root is ``--root``, else ``$LG_ROOT``, else ``/var/lib/layergit`` for root and
``${XDG_DATA_HOME:-~/.local/share}/layergit`` for everyone else (DESIGN.md).
:meth:`Root.secure` makes the root and the directories directly under it private
before any command uses them (docs/format.md, "Modes"); what is below them appears
when used.

Every path directly under the root, and the shared directories of containers and of
the monitor, is named here and nowhere else, so that the layout docs/format.md
describes has one owner; what is inside one container's or one network's directory
belongs to the module that writes it (runtime/state.py, runtime/net/). The runtime
takes the root as a path and wraps it (``Root(path)``): this module imports nothing
of layergit but ``errors``, so both halves may use it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Callable

PRIVATE_MODE = 0o700  # every directory directly under the root, and a user's root
SYSTEM_ROOT_MODE = 0o711  # a root owned by uid 0: traversable, never listable

# lg's notices (an existing root tightened, a remote-tracking name a local image hides): the CLI prints them
on_notice: Callable[[str], None] | None = None


def default_root() -> str:
    env = os.environ.get("LG_ROOT")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/layergit"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "layergit")


@dataclass(frozen=True)
class Root:
    """An lg root (``$LG_ROOT``): the directory every command's store, cache, containers,
    networks and volumes live under, and the one place that names their paths."""

    path: str

    @classmethod
    def resolve(cls, path: str | None = None) -> Root:
        return cls(os.path.abspath(path or default_root()))

    def _at(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def secure(self) -> None:
        """Create the root and the directories directly under it private, and tighten
        ones an older lg made wider, saying so through ``on_notice`` (once: then they are right).

        Every image's files (/etc/shadow, keys baked into a layer) are in the store,
        and again, unpacked, in the caches, spools and containers: at a umask's 0755
        any local user read them all. With these directories 0700, what is below them
        needs no mode of its own, so its writers keep plain makedirs. A root of uid 0
        is 0711, traversable but not listable, so that containers whose ids a user
        namespace maps elsewhere can be given a way to their own directory without
        another layout; nothing needs that today (every runtime path is reached as
        root). store.git is only tightened here: the store creates it (store/store.py).
        """
        changed: list[str] = []
        try:
            new_mode = SYSTEM_ROOT_MODE if os.geteuid() == 0 else PRIVATE_MODE
            try:
                os.mkdir(self.path, new_mode)
            except FileExistsError:
                self._check_adoptable()
            except FileNotFoundError:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                os.mkdir(self.path, new_mode)
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self._secure_at(fd, changed)
            finally:
                os.close(fd)
        except OSError as exc:
            from .errors import LgError

            where = f" ({exc.filename})" if exc.filename and exc.filename != self.path else ""
            why = f"{exc.strerror or exc}{where}"
            raise LgError(f"cannot use {self.path} as a layergit root: {why}") from None
        if changed and on_notice is not None:
            done = ", ".join(changed)
            on_notice(f"made {self.path} private ({done}): other users could read images through it")

    def _secure_at(self, fd: int, changed: list[str]) -> None:
        """:meth:`secure` on the root open as ``fd``: its owner, then each entry lg keeps in it.

        Everything is checked and tightened through descriptors, never by path: the
        owner of a root (or anyone who could write to it once) can swap an entry for a
        symlink, and a chmod or a mkdir by path would then follow it to a directory of
        the victim's choosing, and lg would fill it. A root another user owns is
        refused as git refuses such a repository (safe.directory): its owner can widen
        it again or plant links at any time after we checked.
        """
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            from .errors import LgError

            raise LgError(f"{self.path} is owned by uid {st.st_uid}, not by uid {os.geteuid()} who runs lg:"
                          " refusing to use another user's directory as a layergit root")
        kept = (self.store, self.cache, self.tmp, self.containers, self.networks, self.volumes, self.run)
        dirs = [os.path.basename(path) for path in kept]
        for name in (*dirs, os.path.basename(self.gc_lock), os.path.basename(self.bisect)):  # checked first
            try:
                mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            want = "a directory" if name in dirs else "a file"
            if stat.S_ISLNK(mode):
                _refuse_entry(self.path, name, "a symbolic link", want)
            if name not in dirs and not stat.S_ISREG(mode):
                _refuse_entry(self.path, name, "not a file", want)
            if name in dirs and not stat.S_ISDIR(mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
        _tighten(fd, st, SYSTEM_ROOT_MODE if st.st_uid == 0 else PRIVATE_MODE, changed, "the root")
        for name in dirs:
            if name != os.path.basename(self.store):  # the store creates store.git (store/store.py)
                try:
                    os.mkdir(name, PRIVATE_MODE, dir_fd=fd)
                except FileExistsError:
                    pass
            try:  # O_NOFOLLOW still: the check above is only for a clear message
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:  # store.git, before the store makes it
                continue
            try:
                _tighten(sub, os.fstat(sub), PRIVATE_MODE, changed, name)
            finally:
                os.close(sub)

    def _check_adoptable(self) -> None:
        """Refuse an existing directory that holds anything but what lg keeps in a root.

        :meth:`secure` takes group and other bits away from the root: ``--root /etc``,
        ``--root ~`` or ``--root /sys/fs/cgroup`` (where a mkdir makes a cgroup) would
        otherwise be chmodded and filled with lg's directories. An empty directory, or
        one holding only the entries this class names, is a root; anything else is
        someone else's. Who owns it and what those entries are: :meth:`_secure_at`.
        """
        entries = os.listdir(self.path)  # NotADirectoryError: secure() says so
        own = (self.store, self.gc_lock, self.bisect, self.cache, self.tmp, self.containers, self.networks,
               self.volumes, self.run)
        names = {os.path.basename(path) for path in own}
        foreign = sorted(e for e in set(entries) - names if not _init_leftover(self.path, e))
        if foreign:
            from .errors import LgError
            from .text import quoted

            raise LgError(f"{self.path} is not a layergit root: it holds {quoted(foreign[0])}"
                          f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}; "
                          "give an empty directory or a new path")

    # -- the store --------------------------------------------------------------

    @property
    def store(self) -> str:
        return self._at("store.git")

    @property
    def gc_lock(self) -> str:
        """Writers of the store hold it shared, ``lg gc`` exclusively."""
        return self._at("gc.lock")

    @property
    def bisect(self) -> str:
        """The bisect in progress, if any (porcelain/bisect.py)."""
        return self._at("bisect.json")

    # -- caches (all rebuilt on demand) -----------------------------------------

    @property
    def cache(self) -> str:
        return self._at("cache")

    def cache_dir(self, kind: str) -> str:
        """``cache/KIND``: ``rootfs`` and ``objects`` (fs/cache.py), ``stat`` and
        ``build-stat`` (fs/statcache.py), ``sizes``, ``layers``, ``seccomp``."""
        return self._at("cache", kind)

    @property
    def tmp(self) -> str:
        return self._at("tmp")

    # -- containers -------------------------------------------------------------

    @property
    def containers(self) -> str:
        return self._at("containers")

    def container(self, container_id: str) -> str:
        """One container's directory (its files: runtime/state.py)."""
        return self._at("containers", container_id)

    @property
    def container_names(self) -> str:
        """``by-name/NAME`` -> ID symlinks: a name is reserved by making its link."""
        return self._at("containers", "by-name")

    @property
    def container_locks(self) -> str:
        """One lock file per container, beside the directories so that it outlives their removal."""
        return self._at("containers", "locks")

    def container_lock(self, container_id: str) -> str:
        return os.path.join(self.container_locks, container_id)

    @property
    def container_owners(self) -> str:
        """``ID.PID.START`` -> NAME markers: who removes a container in flight."""
        return self._at("containers", "owners")

    @property
    def container_freezers(self) -> str:
        """``ID.PID.START`` -> NAME markers: who thaws a container frozen for commit or diff."""
        return self._at("containers", "freezers")

    # -- networks ---------------------------------------------------------------

    @property
    def networks(self) -> str:
        """``NAME/`` per network and the locks (runtime/net/ipam.py)."""
        return self._at("networks")

    # -- volumes ----------------------------------------------------------------

    @property
    def volumes(self) -> str:
        """``NAME/volume.json`` and ``NAME/_data/`` per volume, and their lock (porcelain/volumes.py)."""
        return self._at("volumes")

    # -- the monitor ------------------------------------------------------------

    @property
    def run(self) -> str:
        return self._at("run")

    @property
    def monitor_sock(self) -> str:
        return self._at("run", "monitor.sock")

    @property
    def monitor_lock(self) -> str:
        """Held by the one monitor of the root while it lives."""
        return self._at("run", "monitor.lock")

    @property
    def monitor_log(self) -> str:
        """The monitor's stdout and stderr, appended by every monitor started."""
        return self._at("run", "monitor.log")

    @property
    def supervised(self) -> str:
        """``ID`` files: the containers a monitor parents, watches or is to restart; a new
        monitor adopts them (runtime/monitor.py)."""
        return self._at("run", "supervised")

    def supervises(self) -> bool:
        """Whether containers are marked as supervised (a listdir): the check every
        command makes before anything about monitors is loaded (runtime.client.resume)."""
        try:
            return bool(os.listdir(self.supervised))
        except FileNotFoundError:
            return False

    @property
    def output_fifos(self) -> str:
        """``ID.STREAM``: detached containers' stdout and stderr FIFOs (runtime/monitor.py)."""
        return self._at("run", "fifo")

    def output_fifo(self, container_id: str, stream: str) -> str:
        return os.path.join(self.output_fifos, f"{container_id}.{stream}")

    @property
    def monitor_log_old(self) -> str:
        """The previous monitor.log, moved aside when a monitor starts and finds it over
        MONITOR_LOG_MAX: the two together stay bounded."""
        return self._at("run", "monitor.log.old")


def _refuse_entry(root: str, name: str, what: str, want: str) -> None:
    """Refuse an entry of the root that is not of the type lg keeps there (one line)."""
    from .errors import LgError

    raise LgError(f"cannot use {root} as a layergit root: its {name} is {what}, where lg keeps {want}")


def _tighten(fd: int, st: os.stat_result, mode: int, changed: list[str], label: str) -> None:
    """Take from the directory open as ``fd`` the group and other bits ``mode`` does not have
    (never add one)."""
    have = stat.S_IMODE(st.st_mode)
    want = have & (~0o077 | mode)
    if want != have:
        os.fchmod(fd, want)
        changed.append(f"{label} {have:04o} to {want:04o}")


def _init_leftover(path: str, name: str) -> bool:
    """``store.git.init-PID``, a directory of ours: a store being made (Store._init), or
    left by an lg killed while it made it, which the next Store._init removes."""
    if not is_init_leftover(name):
        return False
    try:
        st = os.lstat(os.path.join(path, name))
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def is_init_leftover(name: str, prefix: str = "store.git.init-") -> bool:
    """Whether ``name`` is ``PREFIXPID`` with a pid of ASCII digits (at most 10)."""
    pid = name[len(prefix):]
    return name.startswith(prefix) and pid.isascii() and pid.isdigit() and len(pid) <= 10
