"""Entering the user's namespace: created once per user, kept by a pause process, joined after.

Creating a user namespace with other ids than one's own takes the setuid helpers
newuidmap and newgidmap (Debian's uidmap), which write the map of another process:
so a child unshares and waits, the parent (still outside) runs the helpers on it,
and the child becomes the pause process (``sleep infinity`` in a new session) that
keeps the namespace alive for every later lg of the same user. Joining it is two
``setns`` calls (user, then mount), which need a single-threaded process: lg enters
before it starts any thread. Its pid and start time are in the run directory, so a
recycled pid is never joined.

The run directory is ``$XDG_RUNTIME_DIR/layergit`` when that directory is the user's,
else ``/tmp/layergit-run-UID``, made 0700 and refused if someone else made it first.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass

from ... import procstat
from ...flock import locked
from .. import syscalls
from . import NamespaceRefused, RootlessError, netstack
from .idmap import SUBGID, SUBUID, IdMap, current_map, read_small, read_subordinate, user_map

HINT = "usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST USER"


@dataclass(frozen=True)
class Namespace:
    """The user namespace lg entered: the maps in force and what the user should know."""

    uids: IdMap
    gids: IdMap
    run_dir: str
    created: bool  # this command made it (and says what follows from its maps)

    @property
    def single(self) -> bool:
        return self.uids.single or self.gids.single


def check_enabled(proc_sys: str = "/proc/sys") -> None:
    """Refuse, naming the setting, where the host forbids unprivileged user namespaces."""
    settings = (
        ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone"),
        ("user/max_user_namespaces", "0", "user.max_user_namespaces"),
        ("kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns"),
    )
    for path, bad, name in settings:
        if read_small(os.path.join(proc_sys, path)) == bad:
            raise NamespaceRefused(f"user namespaces are disabled for unprivileged users on this host"
                                f" ({name}={bad}): lg needs root or that sysctl changed")


def run_dir(uid: int) -> str:
    """The user's run directory for lg (pause pid, network stacks), made private."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            st = os.lstat(xdg)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
            return _private_dir(os.path.join(xdg, "layergit"), uid)
    return _private_dir(f"/tmp/layergit-run-{uid}", uid)


def _private_dir(path: str, uid: int) -> str:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or stat.S_IMODE(st.st_mode) & 0o077:
        raise RootlessError(f"{path} is not a private directory of uid {uid}: refusing it as lg's"
                            " run directory (remove it, or set XDG_RUNTIME_DIR to a directory of your own)")
    return path


def maps_for(uid: int, gid: int) -> tuple[IdMap, IdMap]:
    """The maps lg asks for: the user's own ids as 0, then its subordinate ranges."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return (user_map(uid, read_subordinate(SUBUID, name, uid)),
            user_map(gid, read_subordinate(SUBGID, name, gid)))


def enter() -> Namespace:
    """Join the user's namespace, creating it (and its pause process) when none lives."""
    uid, gid = os.getuid(), os.getgid()
    directory = run_dir(uid)
    uids, gids = maps_for(uid, gid)
    pidfile = os.path.join(directory, "pause.pid")
    created = False
    with locked(os.path.join(directory, "pause.lock"), purpose="entering the user namespace"):
        pid = _live_pause(pidfile)
        if pid is None:
            check_enabled()
            pid = _create(uids, gids, directory)
            _write_pidfile(pidfile, pid)
            created = True
        user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        mnt_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _live_pause(pidfile) != pid:  # it died while we opened its namespaces
            raise RootlessError("lg's pause process exited while joining its user namespace:"
                                " run the command again")
        cwd = os.getcwd()
        try:
            syscalls.setns(user_fd, syscalls.CLONE_NEWUSER)
        except PermissionError as exc:  # joining is refused the way creating would be
            raise NamespaceRefused(f"cannot join lg's user namespace ({exc.strerror}):"
                                   " unprivileged user namespaces are refused to this process") from None
        syscalls.setns(mnt_fd, syscalls.CLONE_NEWNS)
        try:
            os.chdir(cwd)  # setns(CLONE_NEWNS) moved us to the namespace's root
        except OSError:
            os.chdir("/")
    finally:
        os.close(user_fd)
        os.close(mnt_fd)
    os.environ[netstack.ENV] = f"{pid} {procstat.start_time(pid)} {directory}"  # for lg's children
    return Namespace(current_map("uid"), current_map("gid"), directory, created)


def _live_pause(pidfile: str) -> int | None:
    text = read_small(pidfile)
    if not text:
        return None
    try:
        pid, start = (int(v) for v in text.split())
    except ValueError:
        return None
    if procstat.start_time(pid) != start:
        return None
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return None
    except OSError:
        return None
    return pid


def _write_pidfile(pidfile: str, pid: int) -> None:
    tmp = f"{pidfile}.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{pid} {procstat.start_time(pid)}\n")
    os.rename(tmp, pidfile)


def _create(uids: IdMap, gids: IdMap, directory: str) -> int:
    """Fork the pause process into new user, mount and network namespaces and map it; its pid."""
    from ..process import loopback_up

    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the pause process to be
        try:
            os.close(go_w)
            os.close(ready_r)
            os.setsid()
            try:
                syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS | syscalls.CLONE_NEWNET)
                loopback_up()  # the user's network namespace (netstack.py)
                os.write(ready_w, b"u")
            except OSError as exc:
                os.write(ready_w, b"E%d" % (exc.errno or errno.EPERM))
                os._exit(1)
            if os.read(go_r, 1) != b"g":  # the parent failed to map us
                os._exit(1)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # hold none of lg's pipes open
            sleep = shutil.which("sleep") or "/bin/sleep"
            os.execv(sleep, [sleep, "infinity"])
        finally:
            os._exit(1)
    os.close(go_r)
    os.close(ready_w)
    try:
        answer = os.read(ready_r, 16)
        if answer != b"u":
            code = int(answer[1:] or errno.EPERM) if answer.startswith(b"E") else errno.EPERM
            raise NamespaceRefused(f"cannot create a user namespace ({os.strerror(code)}):"
                                " unprivileged user namespaces are refused on this host"
                                " (kernel.unprivileged_userns_clone or user.max_user_namespaces)")
        _write_maps(pid, uids, gids)
        os.write(go_w, b"g")
        if netstack.pasta_usable():
            netstack.start_pasta(pid, directory)
    except BaseException:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(ready_r)
        os.close(go_w)
    # The pause process stays our child until lg exits, then init adopts and reaps it.
    return pid


def _write_maps(pid: int, uids: IdMap, gids: IdMap) -> None:
    """Map ``pid``'s namespace: through newuidmap/newgidmap with subordinate ranges, else
    by writing its own single id, which the kernel lets any user do (setgroups denied)."""
    for kind, idmap, helper in (("uid", uids, "newuidmap"), ("gid", gids, "newgidmap")):
        if idmap.single:
            if kind == "gid":
                with open(f"/proc/{pid}/setgroups", "w") as f:
                    f.write("deny")
            with open(f"/proc/{pid}/{kind}_map", "w") as f:
                f.write(" ".join(idmap.args()) + "\n")
            continue
        program = shutil.which(helper)
        if program is None:
            raise RootlessError(f"{helper} is not installed: lg without root needs it"
                                " (Debian's uidmap package)")
        proc = subprocess.run([program, str(pid), *idmap.args()], capture_output=True, text=True)
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise RootlessError(f"{helper} refused the map of /etc/sub{kind} ({why})")
