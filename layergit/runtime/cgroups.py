"""Resource limits and process tracking with cgroups, v1 (hybrid hosts) and v2.

Each container gets ``layergit/<id>`` in every hierarchy: on cgroup v2 the unified
tree (memory.max, cpu.max, pids.max, cgroup.freeze, cgroup.kill), on v1 each
mounted controller (memory.limit_in_bytes, cpu.cfs_quota_us, pids.max,
freezer.state) plus the named and accounting hierarchies, so ``lg exec`` can join
the container everywhere. A v2 host is recognised by controllers in its unified
root; a hybrid host (v1 controllers, an empty unified tree) is treated as v1.
lg without root uses the cgroup v2 subtree delegated to its user, when it runs in one
(systemd's user@.service, or a scope run with Delegate=yes): ``DELEGATED/layergit/<id>``
(see :func:`delegated`), with the controllers that delegation gives; elsewhere it has
no cgroup. Either way a container may only use the devices of a minimal /dev (DEVICE_RULES):
v1's devices controller is given the rules, on v2 they become an eBPF program
(bpf/devices.py, imported only where a v2 host builds it: every container start imports
this module).
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import LgError
from . import syscalls
from .rootless.idmap import inside

ROOT = "/sys/fs/cgroup"
PARENT = "layergit"
_PERIOD = 100_000
# devices.allow syntax, for v1's devices controller and v2's eBPF filter alike.
DEVICE_RULES = [
    "c *:* m", "b *:* m",  # creating nodes is fine; using them is what the rules below govern
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts
    "c 10:200 rwm",  # tun, for VPN clients
]

# What lg without root says where a cgroup is missing: at create, and for what needs a freezer.
WITHOUT_LIMITS = ("lg without root has no cgroup to enforce --memory, --cpus or --pids-limit on this host"
                  " (cgroup v1, or v2 without delegation): the container runs without them")
NO_FREEZER = ("lg without root cannot freeze a container here (no cgroup v2 subtree delegated to this user):"
              " stop the container first")
_LIMIT_FLAGS = {"memory": "--memory", "cpu": "--cpus", "pids": "--pids-limit"}


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def unified() -> bool:
    try:
        return bool(_read(os.path.join(ROOT, "cgroup.controllers")).split())
    except OSError:
        return False


def _mounts(fstype: str) -> dict[str, set[str]]:
    """Mount point -> super options, for each mount of ``fstype``."""
    out: dict[str, set[str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == fstype:
                out[fields[4]] = set(fields[sep + 3].split(","))
    return out


def v1_hierarchies() -> dict[str, set[str]]:
    """Mount point -> controllers of each v1 hierarchy ({} on a v2 host), for Cgroup's
    ``hierarchies``: read once by a command that makes many."""
    return {} if unified() else _v1_hierarchies()


def _v1_hierarchies() -> dict[str, set[str]]:
    """Mount point -> controllers, for each mounted v1 hierarchy."""
    return _mounts("cgroup")


@functools.cache
def v2_mount() -> str | None:
    """Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on hybrid hosts):
    programs attached to its root see every process, whatever version runs containers.
    Read once per process: lg without root asks for it per container (of_container), and
    a host's cgroup2 mount does not move under a running lg."""
    return next(iter(_mounts("cgroup2")), None)


def delegated() -> str | None:
    """The cgroup v2 directory delegated to this process's user, where lg without root makes
    its containers' cgroups; None when it runs in none.

    Delegation, as systemd's ``Delegate=yes`` does it, hands a user a subtree: its
    directory and its ``cgroup.procs`` are the user's. The kernel lets a process move
    another only when it may write the ``cgroup.procs`` of both cgroups' common ancestor,
    so the subtree must hold lg itself. Among the ancestors of lg's own cgroup (``0::`` in
    /proc/self/cgroup, itself included) that are still the user's, it is the nearest one
    systemd marks as delegated (the ``user.delegate`` attribute, systemd 251 and later):
    the unit lg runs in, not the user manager's own tree above it. Without a mark (an
    older systemd, a hand-made delegation), the topmost. A login session's scope is
    root's, and so gives none: run lg under ``systemd-run --user --scope -p Delegate=yes``
    or a user service (docs/architecture.md, lg without root).
    """
    mount = v2_mount()
    if mount is None:
        return None
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return None
    if not own or not own.startswith("/"):
        return None
    me, found = os.geteuid(), None
    path = os.path.normpath(mount + own)
    while path.startswith(mount + "/"):
        try:
            st = os.stat(path)
        except OSError:
            break
        if st.st_uid != me or not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
            break
        found = path
        if _marked_delegated(path):
            break
        path = os.path.dirname(path)
    return found


SUPERVISOR = "lg-supervisor"  # the leaf of a delegated unit that its own processes move to


def _vacate(unit: str) -> None:
    """Move the processes of a delegated unit's own cgroup (lg, its monitor and pause
    process, started there) into a leaf of it, SUPERVISOR: the kernel enables a
    controller for a cgroup's children only when the cgroup itself holds no process,
    and systemd's delegation rules ask the delegatee to do exactly this. A process that
    ends meanwhile is skipped; one started meanwhile is moved on the next round."""
    leaf = os.path.join(unit, SUPERVISOR)
    os.makedirs(leaf, exist_ok=True)
    for _ in range(3):
        pids = _read(os.path.join(unit, "cgroup.procs")).split()
        if not pids:
            return
        for pid in pids:
            try:
                _write(os.path.join(leaf, "cgroup.procs"), pid)
            except ProcessLookupError:
                continue


def _marked_delegated(path: str) -> bool:
    try:
        return os.getxattr(path, "user.delegate") == b"1"
    except OSError:  # no mark, or a kernel whose cgroupfs has no user.* attributes
        return False


class _ContainerDir(Protocol):  # state.ContainerDir, which this module does not import
    id: str

    def file(self, name: str) -> str: ...


_PLACE = "cgroup-root"  # in the container's directory: where its cgroup goes without root


def record_place(cdir: _ContainerDir, path: str | None) -> None:
    """Record where a container made without root has its cgroup: the subtree
    :func:`delegated` found (an empty record: none; the container runs without one).
    Nothing with root, whose containers' cgroups are always in the host's hierarchies."""
    if not inside():
        return
    tmp = cdir.file(f".{_PLACE}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write((path or "") + "\n")
    os.replace(tmp, cdir.file(_PLACE))


def of_container(cdir: _ContainerDir, hierarchies: dict[str, set[str]] | None = None,
                 starting: bool = False) -> Cgroup:
    """A container's cgroup. Without root, it lives in the cgroup v2 subtree that was
    delegated to the user where the container was made (:func:`record_place`),
    whichever cgroup the calling lg or monitor runs in.

    A container made before places were recorded reads as its caller's subtree, as it
    did then. A place that is gone (systemd removed its scope, the machine rebooted) is
    found again by the lg that starts the container (``starting``), and recorded anew;
    the others see no cgroup there, as there is none."""
    if not inside():
        return Cgroup(cdir.id, hierarchies=hierarchies)
    place = _recorded_place(cdir)
    if place is None or (starting and place and not os.path.isdir(place)):
        place = delegated() or ""
        if starting:
            record_place(cdir, place)
    return Cgroup(cdir.id, hierarchies=hierarchies, delegated_root=place or None)


def _recorded_place(cdir: _ContainerDir) -> str | None:
    """The recorded place ("" for none), None when the container has no record of one.
    The file is the user's own, but it names where lg writes: only an absolute,
    normalised directory of the cgroup v2 mount is taken."""
    try:
        fd = os.open(cdir.file(_PLACE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:  # a link or a FIFO in its place: not a record lg made
        return ""
    with os.fdopen(fd) as f:
        place = f.read(4096).strip()
    mount = v2_mount()
    if not place or mount is None or os.path.normpath(place) != place or not place.startswith(mount + "/"):
        return ""
    return place


@dataclass(frozen=True)
class Usage:
    """What a container's cgroup has counted (``lg stats``), as Docker reads it: memory
    without the inactive page cache, block I/O summed over devices."""

    cpu_ns: int  # CPU time used, all processes, since the cgroup was made
    memory: int
    memory_limit: int  # 0: none set
    pids: int
    block_read: int
    block_write: int


def _number(path: str) -> int:
    try:
        text = _read(path).strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _keyed(path: str) -> dict[str, int]:
    """``KEY VALUE`` lines (memory.stat, cpu.stat) as a dict."""
    try:
        lines = _read(path).splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


class Cgroup:
    def __init__(self, container_id: str, root: str | None = None,
                 hierarchies: dict[str, set[str]] | None = None, delegated_root: str | None = None):
        """``root`` names a cgroup v2 hierarchy to use instead of what this host runs containers in
        (/sys/fs/cgroup if it is v2, else the v1 controllers): the tests exercise the v2 code on a
        hybrid host's own unified tree this way.

        lg without root has a cgroup only in a v2 subtree delegated to its user (v1's
        hierarchies are root's), ``delegated_root``: the one recorded for the container
        when it was made (:func:`of_container`), never the calling process's own, so
        that every lg command and the monitor find the same. Without one, containers run
        without a cgroup, their PID namespace standing in for it where processes are counted.
        """
        self.delegated = root is None and inside()
        if self.delegated:
            root = delegated_root
        self.enabled = root is not None or not self.delegated
        if root is not None:
            self.v2 = True
        elif hierarchies is not None:  # given by callers that make many (lg stats): mountinfo read once
            self.v2 = not hierarchies
        else:
            self.v2 = self.enabled and unified()
        self.root = root or ROOT
        self.name = f"{PARENT}/{container_id}"
        if hierarchies is None:
            hierarchies = {} if self.v2 or not self.enabled else _v1_hierarchies()
        self._by_controller = {c: os.path.join(m, self.name) for m, cs in hierarchies.items() for c in cs}
        if self.v2:
            self.paths = [os.path.join(self.root, self.name)]
        else:
            self.paths = sorted(os.path.join(m, self.name) for m in hierarchies)

    def _controller(self, name: str) -> str | None:
        """The directory holding a controller's files for this container."""
        return self.paths[0] if self.v2 else self._by_controller.get(name)

    def _limited(self, name: str) -> str:
        """The directory of a controller that ``create`` found available before setting its limit."""
        path = self._controller(name)
        if path is None:
            raise LgError(f"this host has no {name} cgroup controller")
        return path

    def create(self, memory: int | None, cpus: float | None, pids: int | None,
               devices: Sequence[str] = ()) -> None:
        """Make the cgroup with its limits and device rules (DEVICE_RULES, then ``devices``:
        the rules of the container's --device nodes)."""
        if not self.enabled:  # limits were warned about when the container was made (WITHOUT_LIMITS)
            return
        needed = {c for c, limit in (("memory", memory), ("cpu", cpus), ("pids", pids)) if limit is not None}
        try:
            available = self._available()
            missing = sorted(needed - available)
            if missing and self.delegated:  # warned about when the container was made (unenforceable)
                memory = None if "memory" in missing else memory
                cpus = None if "cpu" in missing else cpus
                pids = None if "pids" in missing else pids
            elif missing:  # before anything exists: a limit we cannot enforce is refused, never ignored
                where = f"cgroup v2 at {self.root}" if self.v2 else "this host's cgroup v1 hierarchies"
                wanted, offered = " and ".join(missing), " or ".join(missing)
                raise LgError(f"cannot limit {wanted}: {where} offers no {offered} controller")
            if self.v2:
                self._create_v2(available)
            else:
                for path in self.paths:
                    self._mkdir_v1(path)
            self._limits(memory, cpus, pids, devices)
        except OSError as exc:
            self.remove()
            where = f" ({exc.filename})" if exc.filename else ""
            raise LgError(f"cannot set up the container's cgroup: {exc.strerror}{where}") from None

    def _available(self) -> set[str]:
        """The controllers this container's cgroup can have. A unit systemd marks as
        delegated hands on what it was given (its ``cgroup.controllers``: lg enables them,
        :meth:`_create_v2`); an unmarked subtree (the user manager's own tree, found
        without a mark) only what its owner enabled for its children already."""
        if self.v2:
            own = self.delegated and not _marked_delegated(self.root)
            knob = "cgroup.subtree_control" if own else "cgroup.controllers"
            return set(_read(os.path.join(self.root, knob)).split())
        return set(self._by_controller)

    def unenforceable(self, memory: bool, cpus: bool, pids: bool) -> list[str]:
        """The flags among --memory, --cpus and --pids-limit (those asked for) whose controller
        lg without root was not delegated here: :meth:`create` drops those limits, and
        lg says so once when the container is made."""
        asked = {c for c, wanted in (("memory", memory), ("cpu", cpus), ("pids", pids)) if wanted}
        if not self.enabled:
            return sorted(_LIMIT_FLAGS[c] for c in asked)
        try:
            available = self._available()
        except OSError:
            available = set()
        return sorted(_LIMIT_FLAGS[c] for c in asked - available)

    def _create_v2(self, available: set[str]) -> None:
        parent = os.path.join(self.root, PARENT)
        os.makedirs(parent, exist_ok=True)
        wanted = {"memory", "cpu", "pids"} & available
        marked = self.delegated and _marked_delegated(self.root)
        for directory in (parent,) if self.delegated and not marked else (self.root, parent):
            enabled = set(_read(os.path.join(directory, "cgroup.subtree_control")).split())
            missing = wanted - enabled
            if missing:
                if marked and directory == self.root:
                    _vacate(directory)
                enable = " ".join("+" + c for c in sorted(missing))
                _write(os.path.join(directory, "cgroup.subtree_control"), enable)
        os.makedirs(self.paths[0])

    @staticmethod
    def _mkdir_v1(path: str) -> None:
        parent = os.path.dirname(path)
        for directory in (parent, path):
            try:
                os.mkdir(directory)
            except FileExistsError:
                continue
            # A new cpuset starts with no CPUs or memory nodes: inherit the parent's.
            for knob in ("cpuset.cpus", "cpuset.mems"):
                mine = os.path.join(directory, knob)
                if os.path.exists(mine) and not _read(mine).strip():
                    _write(mine, _read(os.path.join(os.path.dirname(directory), knob)).strip())

    def _devices(self, extra: Sequence[str]) -> None:
        """Only the devices of a minimal /dev and ``extra`` (--device), as Docker allows, on either version.

        mknod stays allowed (CAP_MKNOD is in the default set) but opening anything
        else, a host disk for instance, is refused. v1 has the devices controller;
        v2 has no such files but runs the eBPF programs attached to the cgroup.
        """
        if self.delegated:
            # Loading eBPF takes root, and none is needed: in a user namespace mknod refuses
            # devices and its mounts are nodev, and --device binds the host's own node.
            return
        rules = [*DEVICE_RULES, *extra]
        if self.v2:
            self._attach_device_filter(rules)
            return
        devices = self._controller("devices")
        if devices is None:
            return
        _write(os.path.join(devices, "devices.deny"), "a")
        for rule in rules:
            _write(os.path.join(devices, "devices.allow"), rule)

    def _attach_device_filter(self, rules: list[str]) -> None:
        """Load the rules' program and attach it to the cgroup, then close both fds: the attachment
        holds the program until the cgroup is removed. ALLOW_MULTI, as runc and systemd attach theirs,
        so an ancestor's filter (systemd's on its slices) still applies too and does not block ours."""
        from .bpf import devices

        directory = os.open(self.paths[0], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            code = devices.program(rules)
            prog = syscalls.bpf_prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, code, "lg_devices")
            try:
                syscalls.bpf_prog_attach(
                    directory, prog, syscalls.BPF_CGROUP_DEVICE, syscalls.BPF_F_ALLOW_MULTI, self.paths[0]
                )
            finally:
                os.close(prog)
        finally:
            os.close(directory)

    def _limits(self, memory: int | None, cpus: float | None, pids: int | None,
                devices: Sequence[str]) -> None:
        self._devices(devices)
        if memory is not None:
            mem = self._limited("memory")
            if self.v2:
                _write(os.path.join(mem, "memory.max"), str(memory))
                if os.path.exists(os.path.join(mem, "memory.swap.max")):
                    _write(os.path.join(mem, "memory.swap.max"), "0")
            else:
                _write(os.path.join(mem, "memory.limit_in_bytes"), str(memory))
                swap = os.path.join(mem, "memory.memsw.limit_in_bytes")
                if os.path.exists(swap):
                    _write(swap, str(memory))
        if cpus is not None:
            quota = max(1000, int(cpus * _PERIOD))
            cpu = self._limited("cpu")
            if self.v2:
                _write(os.path.join(cpu, "cpu.max"), f"{quota} {_PERIOD}")
            else:
                _write(os.path.join(cpu, "cpu.cfs_period_us"), str(_PERIOD))
                _write(os.path.join(cpu, "cpu.cfs_quota_us"), str(quota))
        if pids is not None:
            _write(os.path.join(self._limited("pids"), "pids.max"), str(pids))

    def join_self(self) -> None:
        """Move the calling process, which must be single-threaded (a child just forked), here.

        On v1 it writes 0 to each hierarchy's ``tasks``: a thread moving itself is the
        one migration the kernel does without write-locking cgroup_threadgroup_rwsem,
        whose RCU grace period makes a write to ``cgroup.procs`` cost 5-20 ms here, a
        sixth of a whole ``lg run``. v2 has no such file: its ``cgroup.procs`` it is.
        """
        for path in self.paths:
            try:
                _write(os.path.join(path, "cgroup.procs" if self.v2 else "tasks"), "0")
            except OSError as exc:
                why = (": without root, the container's cgroup is in the subtree delegated where it was made,"
                       " and lg's monitor must run there too" if self.delegated else "")
                raise LgError(f"cannot move the container into its cgroup {path}:"
                              f" {exc.strerror}{why}") from None

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths)

    def pids(self) -> list[int]:
        if not self.paths:
            return []
        try:
            return [int(p) for p in _read(os.path.join(self.paths[0], "cgroup.procs")).split()]
        except OSError:
            return []

    def usage(self) -> Usage:
        """The counters of a running container's cgroup, from either version's files."""
        if self.v2:
            path = self.paths[0]
            memory = _number(os.path.join(path, "memory.current"))
            inactive = _keyed(os.path.join(path, "memory.stat")).get("inactive_file", 0)
            limit = _number(os.path.join(path, "memory.max"))  # "max" reads as 0: none
            cpu = _keyed(os.path.join(path, "cpu.stat")).get("usage_usec", 0) * 1000
            pids_file = os.path.join(path, "pids.current")  # none without the pids controller (a delegation)
            pids = _number(pids_file) if os.path.exists(pids_file) else len(self.pids())
            read = write = 0
            try:
                lines = _read(os.path.join(path, "io.stat")).splitlines()
            except OSError:
                lines = []
            for line in lines:
                fields = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
                read += int(fields.get("rbytes", 0))
                write += int(fields.get("wbytes", 0))
            return Usage(cpu, max(memory - inactive, 0), limit, pids, read, write)
        mem, acct, pid_dir, blk = (self._controller(c) for c in ("memory", "cpuacct", "pids", "blkio"))
        memory = limit = 0
        if mem:
            memory = _number(os.path.join(mem, "memory.usage_in_bytes"))
            memory -= _keyed(os.path.join(mem, "memory.stat")).get("total_inactive_file", 0)
            limit = _number(os.path.join(mem, "memory.limit_in_bytes"))
            limit = 0 if limit >= 1 << 62 else limit  # v1's "no limit" is a page-rounded LONG_MAX
        cpu = _number(os.path.join(acct, "cpuacct.usage")) if acct else 0
        pids = _number(os.path.join(pid_dir, "pids.current")) if pid_dir else 0
        read = write = 0
        if blk:
            try:
                lines = _read(os.path.join(blk, "blkio.throttle.io_service_bytes_recursive")).splitlines()
            except OSError:
                lines = []
            for line in lines:
                words = line.split()
                if len(words) == 3 and words[2].isdigit():
                    read += int(words[2]) if words[1] == "Read" else 0
                    write += int(words[2]) if words[1] == "Write" else 0
        return Usage(cpu, max(memory, 0), limit, pids, read, write)

    def oom_killed(self) -> bool:
        mem = self._controller("memory")
        if mem is None:
            return False
        try:
            text = _read(os.path.join(mem, "memory.events" if self.v2 else "memory.oom_control"))
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value or 0) > 0:
                return True
        return False

    def freeze(self, frozen: bool, timeout: float = 5.0) -> None:
        """Stop or resume every process in the container, returning once the kernel reports it done.

        Freezing takes effect as each task reaches a safe point, on both versions, so
        the state is polled (v2: ``frozen`` in cgroup.events). A container that does
        not freeze in time is thawed again and the caller told: reading its files
        while it still runs would pass a half-written state off as a snapshot.
        """
        if not self.enabled:
            raise LgError(NO_FREEZER)
        if self.v2:
            knob, states = os.path.join(self.paths[0], "cgroup.freeze"), ("1", "0")
            events = os.path.join(self.paths[0], "cgroup.events")

            def state() -> str:
                return dict(line.split(" ", 1) for line in _read(events).splitlines())["frozen"]
        else:
            freezer = self._controller("freezer")
            if freezer is None:
                raise LgError("this host has no freezer cgroup")
            knob, states = os.path.join(freezer, "freezer.state"), ("FROZEN", "THAWED")

            def state() -> str:
                return _read(knob).strip()

        want = states[0] if frozen else states[1]
        _write(knob, want)
        deadline = time.monotonic() + timeout
        while state() != want:
            if time.monotonic() > deadline:
                if frozen:
                    _write(knob, states[1])
                raise LgError(f"the container did not {'freeze' if frozen else 'thaw'} within {timeout:g} s")
            time.sleep(0.005)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process in the container (all of them, not just PID 1)."""
        if self.v2 and sig == signal.SIGKILL and os.path.exists(os.path.join(self.paths[0], "cgroup.kill")):
            _write(os.path.join(self.paths[0], "cgroup.kill"), "1")
            return
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the cgroup directories (waiting briefly for dying processes to leave)."""
        deadline = time.monotonic() + timeout
        for path in self.paths:
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise LgError(f"cannot remove cgroup {path}: {exc.strerror}") from None
                    time.sleep(0.01)
