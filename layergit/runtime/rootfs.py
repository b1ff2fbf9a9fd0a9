"""The container's filesystem, as one recipe run inside its new mount namespace.

overlayfs (the image's materialised rootfs as lower, the container's upper/work),
fresh /proc and read-only /sys, a minimal /dev on tmpfs that never shows the host's
devices, pivot_root into the overlay (not chroot) with the old root detached, then
the bind mounts (hosts files, volumes), tmpfs mounts, masked and read-only paths.
Bind mounts are made before pivot_root, from and onto ``/proc/self/fd/N``: the
target is found (or created) with openat2(RESOLVE_IN_ROOT), so a symlink in the
image can never redirect a mount to the host.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable

from ..errors import ExitCode, LgError
from ..removal import remove_tree
from . import syscalls as sc
from .rootless.idmap import inside
from .spec import Device, Spec

# Paths Docker hides from containers: files get /dev/null, directories an empty tmpfs.
MASKED = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEVICES = [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
DEV_LINKS = [
    ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"),
]
INIT_PATH = "/dev/init"  # --init's argv[0]; tini runs from a sealed memfd, not from a file (process.py)


def init_binary() -> str | None:
    """The host's tini, which --init copies into the container as its PID 1 (as Docker does)."""
    import shutil  # with its bz2 and lzma: a run without --init does not pay for them

    return shutil.which("tini-static") or shutil.which("tini")
_NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
_IN_ROOT = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS  # openat2: the rootfs is /, magic links refused


class RootfsError(LgError):
    exit_code = ExitCode.RUN_FAILED


def _ensure_dir(root: str, name: str) -> str:
    path = os.path.join(root, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.mkdir(path, 0o755)
        return path
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RootfsError(f"the image's /{name} is not a directory (a symlink or a file); refusing to run it")
    return path


def _bind_host_node(host: str, path: str) -> None:
    """The host's device node ``host`` bound at ``path`` (a new file it is mounted over): what
    lg without root gives a container instead of a node of its own."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    sc.mount(host, path, None, sc.MS_BIND)


def _device_node(dev: str, device: Device, rootless: bool) -> None:
    """A --device node at its place below ``dev`` (its path was checked to be there), as the
    host's: made with its numbers, mode and owner, or the host's bound where lg may not mknod."""
    path = os.path.join(dev, os.path.relpath(device.path, "/dev"))
    if os.path.realpath(os.path.dirname(path)) != os.path.dirname(path):  # /dev/fd/X: not through a link
        raise RootfsError(f"--device {device.host}: {device.path} is below a symbolic link of /dev")
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if os.path.lexists(path):  # one of the defaults given again, as Docker takes it
        os.unlink(path)
    if rootless:
        _bind_host_node(device.host, path)
        return
    kind = stat.S_IFCHR if device.kind == "c" else stat.S_IFBLK
    os.mknod(path, device.mode | kind, os.makedev(device.major, device.minor))
    os.chown(path, device.uid, device.gid)
    os.chmod(path, device.mode)


def _make_dev(dev: str, shm_size: int | None, rootless: bool, devices: list[Device]) -> None:
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = os.path.join(dev, name)
        if rootless:  # a user namespace may not mknod: the host's node is bound in, as Docker rootless does
            _bind_host_node(f"/dev/{name}", path)
            continue
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))
    for device in devices:
        _device_node(dev, device, rootless)
    for sub in ("pts", "shm", "mqueue"):
        os.mkdir(os.path.join(dev, sub), 0o755)
    pts = os.path.join(dev, "pts")
    try:
        sc.mount("devpts", pts, "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620,gid=5")
    except OSError as exc:  # a single-id user namespace has no gid 5 (tty)
        if not rootless or exc.errno != errno.EINVAL:
            raise
        sc.mount("devpts", pts, "devpts", sc.MS_NOSUID | sc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", _NOSUID_NODEV_NOEXEC,
             f"mode=1777,size={shm_size or 65536 << 10}")
    sc.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", _NOSUID_NODEV_NOEXEC)
    console = os.path.join(dev, "console")
    with open(console, "w"):
        pass
    # /dev/null until a tty container's own terminal takes its place (console()); never the host's.
    sc.mount(os.path.join(dev, "null"), console, None, sc.MS_BIND)


def console(slave: int) -> None:
    """Make the container's pty (on its own devpts) its /dev/console (after pivot_root)."""
    sc.mount(f"/proc/self/fd/{slave}", "/dev/console", None, sc.MS_BIND)


def _in_root(root_fd: int, path: str) -> int:
    """An O_PATH fd for ``path`` resolved inside the rootfs: symlinks and .. cannot leave it."""
    return sc.openat2(root_fd, path.lstrip("/") or ".", os.O_PATH | os.O_CLOEXEC, _IN_ROOT)


def _mount_point(root_fd: int, path: str, is_dir: bool) -> int:
    """Find or create a mount point inside the rootfs; returns an O_PATH fd to it."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        try:
            os.close(_in_root(root_fd, "/".join(parts[:i])))
            continue
        except FileNotFoundError:
            pass
        above = "/".join(parts[: i - 1]) or "."
        parent = sc.openat2(root_fd, above, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _IN_ROOT)
        try:
            if i < len(parts) or is_dir:
                os.mkdir(parts[i - 1], 0o755, dir_fd=parent)
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(parts[i - 1], flags, 0o644, dir_fd=parent))
        finally:
            os.close(parent)
    return _in_root(root_fd, "/".join(parts))


def _bind(root_fd: int, source_fd: int, target: str, readonly: bool) -> None:
    is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
    target_fd = _mount_point(root_fd, target, is_dir)
    try:
        sc.mount(f"/proc/self/fd/{source_fd}", f"/proc/self/fd/{target_fd}", None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(target_fd)
    if readonly:
        mounted = _in_root(root_fd, target)  # reopened: the old fd still names what is underneath
        try:
            where = f"/proc/self/fd/{mounted}"
            flags = sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC | _kept_flags(where)
            sc.mount(None, where, None, flags)
        finally:
            os.close(mounted)


def _mask(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0")
    else:
        sc.mount("/dev/null", path, None, sc.MS_BIND)


def _kept_flags(path: str) -> int:
    """The nosuid/nodev/noexec of the mount at ``path``: a remount must repeat them, and in a
    user namespace (lg without root) one that would drop them is refused."""
    flags = os.statvfs(path).f_flag
    return flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)  # statvfs's ST_* bits are the MS_* ones


def _readonly(path: str) -> None:
    if os.path.exists(path):
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        flags = sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_REC | _kept_flags(path)
        sc.mount(None, path, None, flags)


def open_sources(spec: Spec) -> list[tuple[int, str, bool]]:
    """Open every bind source on the host before pivot_root: (fd, target, readonly)."""
    binds = []
    for name in ("hosts", "hostname", "resolv.conf"):
        path = os.path.join(spec.state_dir, name)
        if os.path.exists(path):
            binds.append((os.open(path, os.O_PATH | os.O_CLOEXEC), f"/etc/{name}", False))
    for m in spec.mounts:
        if m.kind in ("bind", "volume"):
            try:
                binds.append((os.open(m.source, os.O_PATH | os.O_CLOEXEC), m.target, m.readonly))
            except OSError as exc:
                raise RootfsError(f"volume source {m.source}: {exc.strerror}") from None
    return binds


def _sysctls(values: dict[str, str]) -> None:
    """--sysctl: written to the container's own /proc/sys, before it becomes read-only;
    the keys are namespaced ones (porcelain.runopts.sysctls checked them)."""
    for key, value in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise RootfsError(f"--sysctl {key}={value}: {exc.strerror}") from None


def _overlay(spec: Spec, merged: str, rootless: bool) -> None:
    """The image's rootfs under the container's upper dir at ``merged``.

    In a user namespace overlayfs keeps its own metadata in user.overlay.* xattrs
    (``userxattr``, Linux 5.11); where the kernel refuses an unprivileged overlay,
    fuse-overlayfs mounts it instead, started here so that it lives in the container's
    PID namespace and dies with its PID 1.
    """
    options = f"lowerdir={spec.rootfs_lower},upperdir={spec.state_dir}/upper,workdir={spec.state_dir}/work"
    if spec.volatile and _volatile(spec, merged, options + (",userxattr" if rootless else "")):
        return
    if not rootless:
        sc.mount("overlay", merged, "overlay", 0, options)
        return
    try:
        sc.mount("overlay", merged, "overlay", 0, options + ",userxattr")
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EINVAL, errno.ENODEV):
            raise
        native = exc.strerror
    import shutil
    import subprocess

    fuse = shutil.which("fuse-overlayfs")
    if fuse is None:
        raise RootfsError(f"the kernel refuses overlayfs without root here ({native}) and fuse-overlayfs"
                          " is not installed")
    proc = subprocess.run([fuse, "-o", options, merged], capture_output=True)
    if proc.returncode:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise RootfsError(f"the kernel refuses overlayfs without root here ({native}), and so does"
                          f" fuse-overlayfs: {why}")


def _volatile(spec: Spec, merged: str, options: str) -> bool:
    """Mount the overlay of an --rm container with ``volatile``, as podman does; False
    where the kernel refuses it (before Linux 5.10, or no overlay without root here),
    for the caller to mount it as any other.

    Unmounting an overlay otherwise syncs the whole filesystem under its upper dir: the
    end of every container waited for all the host's dirty pages (``lg run --rm IMG
    true`` took 0.3 s, and 1.1 s after 300 MB were written elsewhere). A volatile
    overlay never syncs, so its upper dir may be torn by a crash; an --rm container's
    is thrown away with it. The kernel marks a volatile work dir (work/incompat/volatile)
    and refuses it at the next mount, to say the upper dir saw such a mount: a second
    mount of an --rm container's (lg cp before its start) is ours, so the mark goes.
    A build step's container is --rm too: its upper dir is read into a layer before it
    goes, from the page cache, and the layer's pack has durability of its own.
    """
    mark = os.path.join(spec.state_dir, "work", "work", "incompat")  # holds volatile/dirty
    remove_tree(mark)
    try:
        sc.mount("overlay", merged, "overlay", 0, options + ",volatile")
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EPERM, errno.ENODEV):
            raise
        remove_tree(mark)  # made before the kernel found what it refused
        return False
    return True


def _sysfs(target: str, rootless: bool) -> None:
    """A read-only /sys: a new sysfs, or, where a user namespace may not mount one (a network
    namespace it does not own: --network host), the host's, bound read-only as podman does."""
    try:
        sc.mount("sysfs", target, "sysfs", _NOSUID_NODEV_NOEXEC | sc.MS_RDONLY)
    except PermissionError:
        if not rootless:
            raise
        sc.mount("/sys", target, None, sc.MS_BIND | sc.MS_REC)
        flags = sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | _kept_flags(target) | _NOSUID_NODEV_NOEXEC
        sc.mount(None, target, None, flags)


def enter(spec: Spec) -> None:
    """Build the container's root and pivot into it (run in the new mount namespace)."""
    merged = os.path.join(spec.state_dir, "merged")
    rootless = inside()
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    _overlay(spec, merged, rootless)
    for name in ("proc", "sys", "dev"):
        _ensure_dir(merged, name)
    sc.mount("proc", os.path.join(merged, "proc"), "proc", _NOSUID_NODEV_NOEXEC)
    _sysfs(os.path.join(merged, "sys"), rootless)
    _make_dev(os.path.join(merged, "dev"), spec.shm_size, rootless, spec.devices)
    root_fd = os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for fd, target, readonly in open_sources(spec):
        _bind(root_fd, fd, target, readonly)
        os.close(fd)
    for m in spec.mounts:
        if m.kind == "tmpfs":
            os.close(_mount_point(root_fd, m.target, True))
    os.close(root_fd)
    os.chdir(merged)
    sc.pivot_root(".", ".")
    sc.umount(".", sc.MNT_DETACH)
    os.chdir("/")
    for m in spec.mounts:
        if m.kind == "tmpfs":
            flags = sc.MS_NOSUID | sc.MS_NODEV | (sc.MS_RDONLY if m.readonly else 0)  # --mount ...,readonly
            sc.mount("tmpfs", m.target, "tmpfs", flags, m.options or "mode=1777")
    _sysctls(spec.sysctls)
    for path in MASKED:
        _mask(path)
    for path in READONLY:
        _readonly(path)
    if spec.readonly:
        sc.mount(None, "/", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | _kept_flags("/"))


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """An fd for ``path`` resolved inside the tree open as ``root_fd`` (a container's root):
    symlinks and ``..`` in it cannot leave that tree."""
    return sc.openat2(root_fd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, _IN_ROOT)


def with_view(spec: Spec, pid: int | None, work: Callable[[int], None]) -> None:
    """Run ``work(root_fd)`` in a child process whose ``root_fd`` is the container's root
    as its processes see it, volumes and binds included (``lg cp``).

    A running container's root is ``/proc/PID/root``: reached through it, lookups cross
    the mounts of the container's own mount namespace. A stopped one's is built in a
    private mount namespace of the child (the overlay and the bind mounts, as ``enter``
    makes them), which vanishes with it: nothing stays mounted on the host, whatever
    kills us. The caller keeps the container from starting meanwhile (its lock). An
    LgError in ``work`` comes back as the same message and exit code.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        code = 0
        try:
            os.close(read_end)
            if pid:
                root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            else:
                sc.unshare(sc.CLONE_NEWNS)
                sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
                merged = os.path.join(spec.state_dir, "merged")
                _overlay(spec, merged, inside())
                root = os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                for fd, target, readonly in open_sources(spec):
                    _bind(root, fd, target, readonly)
                    os.close(fd)
                os.close(root)
                root = os.open(merged, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # with the mounts on it
            work(root)
        except LgError as exc:
            os.write(write_end, f"{int(exc.exit_code)}\n{exc}".encode())
            code = 1
        except OSError as exc:
            os.write(write_end, f"{int(ExitCode.FAILURE)}\n{exc.strerror or exc}".encode())
            code = 1
        except BaseException as exc:  # noqa: BLE001 - reported as lg's internal error, never lost
            why = f"internal error: {type(exc).__name__}: {exc}"
            os.write(write_end, f"{int(ExitCode.FAILURE)}\n{why}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        report = f.read(65536).decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if report or status:
        number, _, message = report.partition("\n")
        error = LgError(message or f"the copy's process failed (status {status})")
        error.exit_code = int(number) if number.isdigit() else ExitCode.FAILURE
        raise error
