"""Starting a container's first process: the parent side and the child side of the fork.

Parent: put the child in a new PID namespace (unshare, fork, then setns back so
later forks are unaffected), connect its network if it has one, release it, and
learn through a close-on-exec pipe whether setup and exec worked. Child (PID 1 of
the container): its cgroup (it moves itself: see Cgroup.join_self), new mount,
UTS, IPC, network and cgroup namespaces, the rootfs recipe, hostname, stdio, user,
seccomp, capabilities, exec. Failures come back as one line and
Docker's exit codes: 125 for our own failure, 126 for a command that cannot be
executed, 127 for a command that is not found.

The child is a fork of lg, so until its last exec it *is* the host's Python
interpreter. It never execs the container's command itself: it execs the
trampoline (runtime/trampoline.py) from a sealed memfd, which execs the command,
so no path from inside the container (``#!/proc/self/exe``, /proc/PID/exe) reaches
a host executable. Until then it is not dumpable (the container's processes cannot
open its /proc entries), and it dies with its parent (PDEATHSIG), so an lg killed
at any moment never leaves a half-made container blocked or holding lg's locks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import select
import signal
import stat
import struct
import termios
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ExitCode, LgError
from . import rootfs, security, trampoline, users
from . import syscalls as sc
from .cgroups import Cgroup
from .rootless.idmap import current_map, inside, read_small
from .spec import Process, Spec
from .trampoline import REPORT_FD

if TYPE_CHECKING:
    import socket

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SIOCSIFFLAGS = 0x8914
_IFF_UP, _IFF_LOOPBACK, _IFF_RUNNING = 0x1, 0x8, 0x40


class SpawnError(LgError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


@dataclass
class Stdio:
    """The child's stdio: three fds, or (tty) a socket to send back the master of a
    pty the child opens inside the container, from the container's own devpts."""

    stdin: int = -1
    stdout: int = -1
    stderr: int = -1
    pty_socket: int = -1
    winsize: bytes | None = None  # struct winsize for the pty, set before the command runs

    @property
    def tty(self) -> bool:
        return self.pty_socket >= 0


def pty_pair() -> tuple[socket.socket, Stdio]:
    """(our end, the child's Stdio) for a tty container or exec, sized like our terminal.

    socket is imported by the tty paths only: its import costs ~1.5 ms of every start."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(theirs.fileno(), False)
    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8) if os.isatty(0) else None
    except OSError:
        size = None
    return ours, Stdio(pty_socket=theirs.detach(), winsize=size)


def receive_master(ours: socket.socket) -> int:
    """The pty master the child sent (call after spawn returned)."""
    import socket

    with ours:
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    if not fds:
        raise LgError("the container did not hand over its terminal")
    return fds[0]


_TIOCGPTN = 0x80045430
_TIOCSPTLCK = 0x40045431


def _container_pty(stdio: Stdio) -> int:
    """Open a pty on the container's devpts, send the master to the parent, return the slave."""
    import socket  # already loaded (pty_pair ran before the fork): no lookup in the new root

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, b"\0" * 4))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    if stdio.winsize:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, stdio.winsize)
    with socket.socket(fileno=stdio.pty_socket) as sock:
        socket.send_fds(sock, [b"m"], [master])
    os.close(master)
    return slave


def spawn(
    spec: Spec, stdio: Stdio, cgroup: Cgroup, prepare=None, init_binary: str | None = None,
    netns: str | None = None, die_with_parent: bool = False,
) -> int:
    """Fork the container's PID 1 into ``cgroup`` and return its pid once it has exec'd its command.

    ``prepare(pid)``, if given, runs once the child has its namespaces and before it
    goes on: it connects the child's network. ``netns`` is the path of a network
    namespace to join (``--network container:ID``) instead of a new one. With
    ``die_with_parent`` the container is killed when this process dies (a foreground
    lg run is the container's only supervisor); without it (the monitor) it dies
    with us only until its command runs.
    """
    handshake = _Handshake(prepare) if prepare else None
    return _launch(
        True,
        lambda err_w: _child(spec, stdio, cgroup, handshake, err_w, init_binary, netns, die_with_parent),
        spec.process.args[0] if spec.process.args else "",
        handshake,
    )


_JOINED = (("cgroup", sc.CLONE_NEWCGROUP), ("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS),
           ("net", sc.CLONE_NEWNET), ("mnt", sc.CLONE_NEWNS))


def spawn_in(target_pid: int, process: Process, hostname: str, stdio: Stdio, cgroup: Cgroup) -> int:
    """Start a process in a running container's namespaces and cgroup (lg exec); its pid.

    Other processes already live in that PID namespace, and with CAP_SYS_PTRACE the
    container's root passes the dumpable check: so the forked child (still the host's
    interpreter) never enters it. It joins the other namespaces and is prepared
    outside, then execs the FORK trampoline, whose child is the first process the
    container sees. That child is reparented to us (a child subreaper) when the
    trampoline exits, so that we can wait for it. It does not die with us, as a
    docker exec'd process does not.
    """
    fds = {name: os.open(f"/proc/{target_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
           for name, _ in _JOINED + (("pid", 0),)}
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    try:
        return _launch(
            False,
            lambda err_w: _exec_child(fds, process, hostname, stdio, cgroup, err_w),
            process.args[0] if process.args else "",
            forks=True,
        )
    finally:
        for fd in fds.values():
            os.close(fd)


class _Handshake:
    """Ready/go pipes: the child says its namespaces exist and waits while the parent
    ``prepare``s it (connects its network). Made only when there is something to
    prepare, so that a container without a network pays no round trip."""

    def __init__(self, prepare):
        self.prepare = prepare
        self.ready_r, self.ready_w = os.pipe2(os.O_CLOEXEC)
        self.go_r, self.go_w = os.pipe2(os.O_CLOEXEC)

    def child_side(self) -> None:
        """Right after the fork, in the child: drop our copies of the parent's ends, so
        that a parent that dies reads as EOF here instead of blocking us forever."""
        os.close(self.ready_r)
        os.close(self.go_w)

    def wait(self) -> None:
        """The child's side."""
        os.write(self.ready_w, b"1")
        if not os.read(self.go_r, 1):  # the parent failed to prepare us and is killing us
            os._exit(ExitCode.RUN_FAILED)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)  # if _child_main left us dumpable for prepare's sake

    def release(self, pid: int, err_r: int) -> None:
        """The parent's side: prepare the child once it is ready, then let it go on; kill it if that fails."""
        os.close(self.go_r)
        os.close(self.ready_w)
        try:
            if os.read(self.ready_r, 1):
                self.prepare(pid)
                os.write(self.go_w, b"1")
        except BaseException as exc:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(err_r)
            if isinstance(exc, OSError):
                raise LgError(f"cannot prepare the container: {exc.strerror}") from None
            raise
        finally:
            os.close(self.go_w)
            os.close(self.ready_r)


def _launch(
    new_pidns: bool, body, command: str, handshake: _Handshake | None = None, forks: bool = False
) -> int:
    """Fork a child (into a new PID namespace with ``new_pidns``); return the command's pid once it exec'd.

    The child reports a failure before exec through a close-on-exec pipe; with a
    ``handshake``, the parent prepares it first. With ``forks`` the child runs the
    FORK trampoline, which names the command's process in a record and exits.
    """
    trampoline.prepare()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = _fork(new_pidns)
    if pid == 0:
        _child_main(body, err_r, err_w, command, handshake)
    os.close(err_w)
    if handshake:
        handshake.release(pid, err_r)
    report = _read_report(err_r)
    records = trampoline.records(report)
    if records is None and report:  # lg's own failure before the exec
        os.waitpid(pid, 0)
        code, _, message = report.decode(errors="surrogateescape").partition(" ")
        raise SpawnError(message, int(code) if code.isdigit() else ExitCode.RUN_FAILED)
    named = [value for tag, value in records or () if tag == trampoline.TAG_PID]
    failed = [value for tag, value in records or () if tag == trampoline.TAG_ERRNO]
    command_pid = pid
    if forks:
        os.waitpid(pid, 0)  # the trampoline, which exits once it forked: its child is ours now
        command_pid = _forked_child(named)
    elif named:
        os.waitpid(pid, 0)
        raise SpawnError("the exec trampoline sent a malformed report", ExitCode.RUN_FAILED)
    if failed:
        if forks:  # a forged errno must not leave us waiting on a command that runs
            os.kill(command_pid, signal.SIGKILL)
        os.waitpid(command_pid, 0)
        raise SpawnError(*_exec_failure(OSError(failed[0], os.strerror(failed[0])), command))
    return command_pid


def _fork(new_pidns: bool) -> int:
    """os.fork(), the child in a new PID namespace with ``new_pidns``: 0 in the child.

    As root the namespace is entered for our children only and left right after the
    fork. lg without root cannot go back (the host's PID namespace belongs to the
    host's user namespace), so an intermediate child unshares and forks the
    container's PID 1, which we, a child subreaper, adopt when the intermediate exits.
    """
    if not new_pidns:
        return os.fork()
    if inside():
        return _fork_adopted()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        sc.unshare(sc.CLONE_NEWPID)
        pid = os.fork()
    finally:  # in the parent, also when interrupted: our later forks stay in our namespace
        if pid != 0:
            sc.setns(own_pidns, sc.CLONE_NEWPID)
            os.close(own_pidns)
    return pid


def _fork_adopted() -> int:
    """:func:`_fork` through an intermediate child (lg in a user namespace)."""
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    gone_r, gone_w = os.pipe2(os.O_CLOEXEC)  # EOF once the intermediate has exited
    middle = os.fork()
    if middle == 0:
        child = -1
        try:
            os.close(pid_r)
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child:
                os.write(pid_w, str(child).encode())
        finally:
            if child:  # the intermediate, done or failed (-1): the parent reads what it wrote
                os._exit(0)
        os.close(pid_w)
        os.close(gone_w)
        os.read(gone_r, 1)  # the intermediate is exiting: its files close before its children move
        os.close(gone_r)
        while _parent_of("self") != me:  # /proc is still the host's, so is the pid it shows
            time.sleep(0.0002)
        return 0  # adopted: PDEATHSIG, set next, is about us
    os.close(pid_w)
    os.close(gone_w)
    os.close(gone_r)
    os.waitpid(middle, 0)
    with os.fdopen(pid_r, "rb") as f:
        answer = f.read(32)
    if not answer.isdigit():
        raise SpawnError("cannot create the container's PID namespace", ExitCode.RUN_FAILED)
    return int(answer)


def _forked_child(named: list[int]) -> int:
    """The process FORK named, once checked to be our child.

    With CAP_SYS_PTRACE a container's root can reach the report pipe in the instant
    before the command's exec and write records of its own: a pid that is not our
    child would have lg exec wait for, and forward signals to, a process of the
    attacker's choosing. Anything but exactly one record naming our child fails, and
    a child of ours it named is killed.
    """
    ours = [p for p in named if _parent_of(p) == os.getpid()]
    if len(named) == 1 and ours:
        return ours[0]
    for child in ours:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    raise SpawnError("the exec trampoline's report was forged or lost", ExitCode.RUN_FAILED)


def _parent_of(pid: int | str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[1])


def _read_report(fd: int) -> bytes:
    """What the child wrote on the report pipe until every writer closed it, at most REPORT_MAX bytes."""
    report = bytearray()
    try:
        while len(report) < trampoline.REPORT_MAX:
            chunk = os.read(fd, trampoline.REPORT_MAX - len(report))
            if not chunk:
                break
            report += chunk
    finally:
        os.close(fd)
    return bytes(report)


def _child_main(body, err_r: int, err_w: int, command: str, handshake: _Handshake | None) -> None:
    """Never returns: exec the container's command or report and exit.

    First, before anything can block: not dumpable (the processes of a container we
    join cannot open our /proc/PID/exe, fds or memory while we are still the host's
    interpreter), our copies of the parent's pipe ends closed, and killed if the
    parent dies; a parent already dead before that took effect shows as a pipe with
    no reader.
    """
    try:
        # lg without root may open a child's /proc/PID/ns/* only while it is dumpable (they are
        # the host root's otherwise): a child to prepare stays so until the handshake is done,
        # in a PID namespace of its own where nothing else runs yet.
        if handshake is None or not inside():
            sc.prctl(sc.PR_SET_DUMPABLE, 0)
        os.close(err_r)
        if handshake:
            handshake.child_side()
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if _reader_gone(err_w):
            os._exit(ExitCode.RUN_FAILED)
        body(err_w)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        code, message = _classify(exc, command)
        try:
            os.write(err_w, f"{code} {message}".encode(errors="surrogateescape"))  # argv may hold any bytes
        finally:
            os._exit(code)


def _reader_gone(fd: int) -> bool:
    """Whether the pipe we write to at ``fd`` has lost its reader (our parent died)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))


def _exec_failure(err: OSError, command: str) -> tuple[str, int]:
    """(message, exit code) as Docker gives them for a command that could not be executed."""
    if err.errno == errno.ENOENT:
        return f"{command}: no such file or directory", ExitCode.COMMAND_NOT_FOUND
    return f"{command}: cannot execute: {err.strerror}", ExitCode.CANNOT_EXECUTE


def _classify(exc: BaseException, command: str) -> tuple[int, str]:
    if isinstance(exc, _ExecError):
        err = exc.__cause__
        if isinstance(err, FileNotFoundError) and "/" not in command:
            return ExitCode.COMMAND_NOT_FOUND, f"{command}: executable file not found in $PATH"
        cause = err if isinstance(err, OSError) else OSError(errno.EACCES, str(err))
        message, code = _exec_failure(cause, command)
        return code, message
    if isinstance(exc, LgError):
        return ExitCode.RUN_FAILED, str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return ExitCode.RUN_FAILED, f"container setup failed: {exc.strerror or exc}{where}"
    return ExitCode.RUN_FAILED, f"container setup failed: {type(exc).__name__}: {exc}"


def _take_ids(user: users.User, extra_groups: tuple[int, ...]) -> None:
    """The container user's groups, gid and uid. A single-id user namespace (lg without
    subordinate ids) denies setgroups, and maps gid 0 alone: the groups are left as they are."""
    if read_small("/proc/self/setgroups") != "deny":
        os.setgroups(list(dict.fromkeys(user.groups + extra_groups)))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)


def _check_mapped(uid: int, gids: list[int]) -> None:
    """lg without root can become only ids its user namespace maps: one line naming the fix."""
    uids, gids_map = current_map("uid"), current_map("gid")
    # no /proc/self there (lg exec reads the container's /proc): the kernel judges
    if not uids.ranges or not inside():
        return
    outside = [f"uid {uid}"] if not uids.contains(uid) else []
    outside += [f"gid {g}" for g in dict.fromkeys(gids) if not gids_map.contains(g)]
    if outside:
        raise LgError(f"{', '.join(outside)} of the container's user is outside lg's user namespace: no"
                      " subordinate ids for this user in /etc/subuid or /etc/subgid (an administrator adds"
                      " a range with usermod --add-subuids and --add-subgids)")


class _ExecError(Exception):
    pass


def loopback_up() -> None:
    """Bring up ``lo`` in the child's new network namespace (127.0.0.1 and ::1 come with it).

    One ioctl, here rather than in runtime/net/, so that a container start loads no
    networking module beyond the values its Spec holds."""
    fd = sc.socket_fd(sc.AF_INET, sc.SOCK_DGRAM)
    try:
        fcntl.ioctl(fd, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", _IFF_UP | _IFF_LOOPBACK | _IFF_RUNNING))
    finally:
        os.close(fd)


def _child(
    spec: Spec, stdio: Stdio, cgroup: Cgroup, handshake: _Handshake | None, err_w: int,
    init_binary: str | None, netns: str | None, die_with_parent: bool,
) -> None:
    cgroup.join_self()  # first, so that what the namespaces below cost is charged to the container
    os.setsid()
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if netns:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        sc.setns(fd, sc.CLONE_NEWNET)
        os.close(fd)
    elif not spec.network.is_host:
        flags |= sc.CLONE_NEWNET
    sc.unshare(flags)
    if handshake:
        handshake.wait()  # the parent connects our network namespace
    sc.unshare(sc.CLONE_NEWCGROUP)
    if not spec.network.is_host and not netns:
        loopback_up()
    # Everything Python must import happens before pivot_root: the host's modules are gone after.
    seccomp = security.read_seccomp(spec.process.seccomp) if spec.process.seccomp else None
    init = _init_memfd(init_binary) if spec.init else None
    rootfs.enter(spec)
    if spec.hostname:
        sc.sethostname(spec.hostname)
    if stdio.tty:
        slave = _container_pty(stdio)
        rootfs.console(slave)
        stdio = Stdio(slave, slave, slave)
    _become(spec.process, spec.hostname, spec.process.args, stdio, seccomp, err_w, spec.process.tty,
            die_with_parent, init)


def _init_memfd(init_binary: str | None) -> int:
    """--init: tini copied from the host into a sealed memfd, read before pivot_root.

    Exec'd from the copy, PID 1's /proc/1/exe is never the host's tini either.
    """
    if not init_binary:
        raise LgError("--init needs tini (Debian: apt-get install tini)")
    src = os.open(init_binary, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return trampoline.sealed_memfd("lg-init", src)
    finally:
        os.close(src)


def _exec_child(fds: dict, process: Process, hostname: str, stdio: Stdio, cgroup: Cgroup, err_w: int) -> None:
    cgroup.join_self()
    os.setsid()
    # A host file: read before setns(mnt).
    seccomp = security.read_seccomp(process.seccomp) if process.seccomp else None
    for name, nstype in _JOINED:
        sc.setns(fds[name], nstype)  # joining the mount namespace also moves us to its root
    sc.setns(fds["pid"], sc.CLONE_NEWPID)  # for our children only: the trampoline's child is born there
    if stdio.tty:
        slave = _container_pty(stdio)
        stdio = Stdio(slave, slave, slave)
        tty = True
    else:
        tty = False
    _become(process, hostname, process.args, stdio, seccomp, err_w, tty, True, None, fork=True)


def _become(
    process: Process, hostname: str, args: list[str], stdio: Stdio, seccomp, err_w: int, tty: bool,
    die_with_parent: bool, init: int | None, fork: bool = False,
) -> None:
    """The common end of both paths: stdio, user, working dir, seccomp, capabilities, exec.

    The exec is of the trampoline (or, with ``init``, of tini's sealed copy, which
    execs the command itself), never of the command: see the module docstring.
    """
    for target, fd in ((0, stdio.stdin), (1, stdio.stdout), (2, stdio.stderr)):
        os.dup2(fd, target, inheritable=True)
    if tty and not fork:  # FORK's child, the session's leader, takes the terminal itself
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Close every inherited fd before anything resolves a path: a working directory of
    # /proc/self/fd/N must not reach a host directory we happened to hold open. Only 0-2
    # survive exec; the error pipe is close-on-exec and reports failures until then.
    keep = sorted({err_w, init if init is not None else err_w})
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))
    if init is None:
        # The trampoline's report fd: a copy of the error pipe it marks close-on-exec itself.
        if err_w == REPORT_FD:
            os.set_inheritable(REPORT_FD, True)
        else:
            os.dup2(err_w, REPORT_FD, inheritable=True)
        program = trampoline.memfd(fork)
    else:
        program = init
    user = users.resolve(process.user)
    _check_mapped(user.uid, [user.gid, *user.groups])
    env = _environment(process, hostname, user)
    _default_signals()
    cwd = process.cwd or "/"
    os.makedirs(cwd, 0o755, exist_ok=True)
    os.chdir(cwd)
    if seccomp is not None:
        security.load_seccomp(seccomp)
    caps = security.drop_bounding(process.caps)
    _set_rlimits(process.rlimits)
    _take_ids(user, users.extra_groups(process.groups_add))
    security.set_process_caps(caps if user.uid == 0 else [])
    if process.no_new_privileges:
        security.no_new_privileges()
    try:
        if init is not None:
            argv = [rootfs.INIT_PATH, "--", *args]
        else:
            argv = [trampoline.ARGV0, _find_executable(args[0], env), *args]
    except OSError as exc:
        raise _ExecError() from exc
    if not die_with_parent:
        sc.prctl(sc.PR_SET_PDEATHSIG, 0)  # the monitor: a container outlives it once running
    try:
        os.execve(program, argv, env)
    except OSError as exc:
        raise _ExecError() from exc


def _default_signals() -> None:
    """Every signal's default action and nothing blocked, as a fresh process has them.

    An ignored signal stays ignored across exec, and lg ignores some (Python ignores
    SIGPIPE and SIGXFSZ at start, the monitor SIGPIPE): a container would inherit
    that, and ``yes | head -1`` would report "Broken pipe" instead of dying quietly.
    """
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # the C library's own real-time signals
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _find_executable(name: str, env: dict[str, str]) -> str:
    """``name`` looked up in the command's PATH as execvp would (run as the final user).

    A name with a slash is used as it is; otherwise the first regular file on PATH
    that we may execute. Only a name found nowhere is "not found" (127); one found
    but not executable is refused (126).
    """
    if "/" in name:
        return name
    denied = None
    for directory in os.get_exec_path(env):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if os.access(candidate, os.X_OK):
            return candidate
        denied = denied or candidate
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), denied)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


def _set_rlimits(rlimits: list[list[int]]) -> None:
    """--ulimit, set before the ids change: raising a hard limit needs CAP_SYS_RESOURCE.
    (``resource`` is imported with this module: here the host's library is out of reach.)"""
    for which, soft, hard in rlimits:
        resource.setrlimit(which, (soft, hard))


def _environment(process: Process, hostname: str, user: users.User) -> dict[str, str]:
    env = {}
    for item in process.env:
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH.partition("=")[2])
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", user.home or "/")
    if process.tty:
        env.setdefault("TERM", "xterm")
    return env
