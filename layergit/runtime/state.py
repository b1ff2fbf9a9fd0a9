"""Container records on disk, and a status that never lies.

Each container has a directory under ``ROOT/containers/ID`` with ``container.json``
(what it is: spec, image, creation time; written once), ``state.json`` (what it is
doing: status, pid, exit code; replaced atomically on every change) and its upper,
work and merged directories, log and /etc files. Names are reserved with one
symlink each in ``ROOT/containers/by-name``, so two racing creations can never
share a name. ``ROOT/containers/owners`` names, for the containers in flight, the
process that will remove them (Registry.own), so that what a killed lg leaves is
found without reading every container's state.

A recorded "running" is checked against the kernel every time it is read: the pid
must exist and have the same start time as when we started it (pids are reused).
A container whose process vanished without anyone recording its exit (its
monitor was killed, the machine rebooted) reads as exited with exit code -1.
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

from .. import procstat
from ..errors import Conflict, NotFound, UsageError
from ..flock import locked
from ..root import Root
from . import events
from .spec import Spec


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class State:
    """What a container is doing now (state.json; docs/format.md): written whole at each
    change, a new file renamed over the old, so that any lg command reads one
    consistent answer."""

    status: str = "created"  # created, running, paused, restarting (waiting to), exited
    pid: int = 0
    pid_start: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    monitor_pid: int = 0
    restart_count: int = 0  # restarts by its policy since the user last started it
    stopped_by_user: bool = False  # lg stop or kill: no policy restarts it (Docker's HasBeenManuallyStopped)

    @classmethod
    def started(cls, pid: int, restart_count: int = 0) -> State:
        """A container whose first process ``pid`` we just started, and parent: the
        monitor, or lg itself in the foreground. The start time tells its pid from a
        later process's that got the same number."""
        start = procstat.start_time(pid) or 0
        return cls("running", pid, start, started_at=now_iso(), monitor_pid=os.getpid(),
                   restart_count=restart_count)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@dataclass
class Record:
    """What a container is (written at creation; lg rename alone rewrites it, for its name)."""

    id: str
    name: str
    image: str  # as the user named it
    image_id: str  # commit id
    created: str
    spec: Spec
    config: dict = field(default_factory=dict)  # the image config.json it was created from
    host_config: dict = field(default_factory=dict)  # Docker-style HostConfig echo
    auto_remove: bool = False
    labels: dict = field(default_factory=dict)  # --label: shown over the image's labels

    def to_json(self) -> dict:
        """As container.json holds it (docs/format.md): the spec in Spec.to_dict's form."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["spec"] = self.spec.to_dict()
        if not self.labels:  # written only when used: a record stays what the previous lg wrote
            del raw["labels"]
        return raw

    @classmethod
    def from_json(cls, raw: dict) -> Record:
        return cls(**dict(raw, spec=Spec.from_dict(raw["spec"])))


class ContainerDir:
    def __init__(self, root: Root, container_id: str):
        self.root = root
        self.id = container_id
        self.path = root.container(container_id)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @contextmanager
    def lock(self):
        """Serialise state changes of one container (start, stop, rm, the monitor's reap).

        The lock file lives beside the container directories, not in one, so that it
        survives the removal it protects.
        """
        with locked(self.root.container_lock(self.id)):
            yield

    def write_json(self, name: str, value) -> None:
        tmp = self.file(f".{name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(value, f, indent=2, sort_keys=True)
        os.replace(tmp, self.file(name))

    def record(self) -> Record:
        return Record.from_json(self.raw_record())

    def raw_record(self) -> dict:
        """container.json as JSON, for readers of a field or two over many containers
        (lg stats): building the Record is most of the cost of reading one."""
        try:
            with open(self.file("container.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound(f"no such container: {self.id[:12]}") from None

    def raw_state(self) -> State:
        try:
            with open(self.file("state.json")) as f:
                return State(**json.load(f))
        except FileNotFoundError:
            return State()

    def state(self) -> State:
        """The recorded state, corrected by what the kernel says about the pid.

        A process that has just ended while its watcher (the monitor, or lg in the
        foreground) lives is being recorded right now, with its exit code and, under a
        restart policy, as restarting: that record is waited for (briefly), rather than
        reporting an unknown exit the watcher is about to give."""
        st = self.raw_state()
        if st.running and procstat.start_time(st.pid) != st.pid_start:
            st = self._recorded_soon(st)
        if st.running and procstat.start_time(st.pid) != st.pid_start:
            st.status = "exited"
            if not st.finished_at or st.finished_at < st.started_at:
                st.exit_code = -1
                st.error = "the container's process ended with nobody watching; exit code unknown"
                st.finished_at = now_iso()
        return st

    def _recorded_soon(self, st: State, seconds: float = 2.0) -> State:
        watcher = st.monitor_pid
        if not watcher or watcher == os.getpid() or not procstat.alive(watcher):
            return st
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
            again = self.raw_state()
            if (again.status, again.pid) != (st.status, st.pid):
                return again
        return st

    def save_state(self, st: State) -> None:
        """Write the state, and log the event its change amounts to (events.transition)."""
        try:
            with open(self.file("state.json")) as f:
                before = json.load(f).get("status")
        except (OSError, ValueError, AttributeError):
            before = None
        self.write_json("state.json", asdict(st))
        action = events.transition(before, st.status)
        if action == "die":
            self.log_event(action, exitCode=str(st.exit_code))
        elif action:
            self.log_event(action)

    def log_event(self, action: str, **attributes: str) -> None:
        """Append a container event with its name and image (runtime/events.py). A log
        that cannot be written loses the event, never the change it reports."""
        try:
            raw = self.raw_record()
            attrs = {"name": str(raw.get("name", "")), "image": str(raw.get("image", "")), **attributes}
            events.emit(self.root.run, action, self.id, attrs)
        except (OSError, NotFound, ValueError):
            pass

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def forget_lock(self) -> None:
        try:
            os.unlink(self.root.container_lock(self.id))
        except FileNotFoundError:
            pass


OWNERS = "owners"  # kinds of marker: who removes a container in flight (Registry.own)
FREEZERS = "freezers"  # who thaws a container frozen for a commit or diff


@dataclass(frozen=True)
class Owner:
    """A process in charge of removing a container (see Registry.own)."""

    container_id: str
    pid: int
    start: int  # its start time (procstat.start_time): pids are reused
    entry: str  # the marker's path

    def alive(self) -> bool:
        return procstat.start_time(self.pid) == self.start

    def name(self) -> str | None:
        """The container's name, as reserved when the marker was made."""
        try:
            return os.readlink(self.entry) or None
        except OSError:
            return None


# Docker's grammar for container names, and a length a file name can hold.
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
ID = re.compile(r"[0-9a-f]{64}")


def check_name(name: str) -> None:
    """Refuse a container name outside Docker's grammar (one line)."""
    if not NAME.fullmatch(name):
        raise UsageError(f"invalid container name {name[:80]!r}:"
                         " use [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128 characters")


def check_ref(ref: str) -> None:
    """A reference that is neither a name nor an id (prefix) names no container. NotFound,
    not a usage error: commands that take a container or an image (inspect, diff) go on
    to the image."""
    if not NAME.fullmatch(ref):
        raise NotFound(f"no such container: {ref[:80]}")


class Registry:
    """All containers under a root: ids, names, lookup by either, and owners."""

    def __init__(self, root: Root):
        self.root = root
        self.dir = root.containers
        self.names = root.container_names
        self._marks = {OWNERS: root.container_owners, FREEZERS: root.container_freezers}

    def container(self, container_id: str) -> ContainerDir:
        return ContainerDir(self.root, container_id)

    def own(self, container_id: str, name: str, pid: int | None = None, kind: str = OWNERS) -> None:
        """Record ``pid`` (default: us) as the process that removes the container when it is done.

        One symlink, ``owners/ID.PID.START`` -> NAME, made before anything of the
        container exists and removed after everything of it is gone, so that once the
        owner is dead (whatever killed it) a sweep finds what it left, listing one small
        directory, not every container's state. A container may have several owners
        while it is handed over (lg run to the monitor): it is abandoned once all are dead.
        With ``kind`` FREEZERS, the same for a process that froze the container and
        must thaw it.
        """
        pid = pid or os.getpid()
        start = procstat.start_time(pid)
        if start is None:
            return  # already gone: nobody to hand the container to
        entry = os.path.join(self._marks[kind], f"{container_id}.{pid}.{start}")
        for _ in range(2):
            try:
                os.symlink(name, entry)
                return
            except FileExistsError:
                return
            except FileNotFoundError:
                os.makedirs(os.path.dirname(entry), exist_ok=True)

    def owned(self, kind: str = OWNERS) -> dict[str, list[Owner]]:
        """Every container that has owners (of ``kind``), with them."""
        marks = self._marks[kind]
        out: dict[str, list[Owner]] = {}
        for entry in _entries(marks):
            cid, _, rest = entry.partition(".")
            pid, _, start = rest.partition(".")
            if len(cid) == 64 and pid.isdigit() and start.isdigit():
                owner = Owner(cid, int(pid), int(start), os.path.join(marks, entry))
                out.setdefault(cid, []).append(owner)
        return out

    def disown(self, container_id: str, pid: int | None = None, kind: str = OWNERS) -> None:
        """Drop the container's owner ``pid``, or all of them."""
        for owner in self.owned(kind).get(container_id, []):
            if pid is None or owner.pid == pid:
                try:
                    os.unlink(owner.entry)
                except FileNotFoundError:
                    pass

    def ids(self) -> list[str]:
        return sorted(n for n in _entries(self.dir)
                      if len(n) == 64 and os.path.isfile(os.path.join(self.dir, n, "container.json")))

    def leftovers(self) -> list[str]:
        """Lock files, name links and supervision files of no container and of no creation
        in flight.

        A lock outlives the removal it guards (ContainerDir.lock), so a killed
        ``lg rm`` leaves one; a name link stays when the monitor removes a ``--rm``
        container; a supervision mark or output FIFO (run/supervised, run/fifo) stays
        when a container is removed while no monitor runs. None harms (a name is
        retaken, a lock reused, a mark of no container dropped by the next monitor),
        but they pile up: ``lg fsck`` counts them and ``lg gc`` removes them
        (:meth:`drop_leftovers`).
        """
        locks, names = self._leftovers()
        return locks + [os.path.join(self.names, name) for name in names]

    def drop_leftovers(self) -> int:
        """Remove what :meth:`leftovers` lists; returns how many. A name goes only while it
        still holds the id it held when listed: one retaken since is a new container's."""
        locks, names = self._leftovers()
        for path in locks:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for name, target in names.items():
            self.release_name(name, target)
        return len(locks) + len(names)

    def _leftovers(self) -> tuple[list[str], dict[str, str]]:
        """Stale lock paths, and stale names with the link each held.

        The order is what makes this safe against creations in flight: every creation
        makes its owner marker before its name (porcelain/containers.py, create), and
        writes container.json before it drops that marker. So the names and locks are
        read first, the markers next (one a name seen here had is listed), the
        containers last (one whose marker went is complete by then).
        """
        locks = [os.path.join(self.root.container_locks, n) for n in _entries(self.root.container_locks)]
        locks += [os.path.join(self.root.supervised, n) for n in _entries(self.root.supervised)]
        locks += [os.path.join(self.root.output_fifos, n) for n in _entries(self.root.output_fifos)]
        names: dict[str, str] = {}
        for name in _entries(self.names):
            try:
                names[name] = os.readlink(os.path.join(self.names, name))
            except OSError:  # gone since, or not a link: nothing lg made
                pass
        busy = set(self.owned())
        busy |= set(self.ids())
        stale_locks = [path for path in locks if os.path.basename(path).partition(".")[0] not in busy]
        return stale_locks, {name: cid for name, cid in names.items() if cid not in busy}

    def reserve_name(self, name: str, container_id: str) -> None:
        """Make the name's link; one held by a container, or by a creation in flight (owned,
        its directory not made yet), is in use. Any other is a leftover, retaken."""
        os.makedirs(self.names, exist_ok=True)
        link = os.path.join(self.names, name)
        for _ in range(3):
            try:
                os.symlink(container_id, link)
                return
            except FileExistsError:
                owner = self.by_name(name)
                if owner and (os.path.isdir(self.root.container(owner)) or owner in self.owned()):
                    raise Conflict(f"the container name {name!r} is already in use"
                                   f" by container {owner[:12]}") from None
                self.release_name(name, owner or "")  # left behind by a container removed with --rm
        raise Conflict(f"the container name {name!r} is being taken by another container")

    def release_name(self, name: str, container_id: str) -> None:
        link = os.path.join(self.names, name)
        try:
            if os.readlink(link) == container_id:
                os.unlink(link)
        except FileNotFoundError:
            pass

    def by_name(self, name: str) -> str | None:
        """The id a name is reserved for; None for a name that is not one (never a path)
        or a link that does not hold an id."""
        if not NAME.fullmatch(name):
            return None
        try:
            cid = os.readlink(os.path.join(self.names, name))
        except OSError:
            return None
        return cid if ID.fullmatch(cid) else None

    def find(self, ref: str) -> ContainerDir:
        """A container by name, full id or unique id prefix.

        ``ref`` is checked against the grammar of names (which id prefixes also
        follow) before anything touches the disk: a reference is never a path.
        """
        check_ref(ref)
        cid = self.by_name(ref)
        if cid is None:
            hexadecimal = bool(ref) and all(c in "0123456789abcdef" for c in ref)
            matches = [i for i in self.ids() if i.startswith(ref)] if hexadecimal else []
            if len(matches) > 1:
                raise Conflict(f"container id prefix {ref} is ambiguous")
            cid = matches[0] if matches else None
        if cid is None or not os.path.isdir(self.root.container(cid)):
            raise NotFound(f"no such container: {ref}")
        return ContainerDir(self.root, cid)


def _entries(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout: float | None, interval: float = 0.02) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
