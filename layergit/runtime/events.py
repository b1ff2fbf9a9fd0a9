"""Container events as ``docker events`` reports them: a bounded log beside a root's running state.

Every change of a container's state is saved through ``ContainerDir.save_state``,
which appends the event it amounts to (:func:`transition`): create, start, die (with
the exit code), pause and unpause, whether lg, the monitor or a restart policy made
it. What no state shows, lg's commands append themselves: kill (with the signal),
stop, rename and destroy. So the log comes from where the state already changes,
with nothing watching for it.

One JSON object a line, each written by one ``O_APPEND`` write, so that writers
(lg commands, the monitor) never interleave within a line. A writer that finds the
file past MAX_BYTES renames it to ``events.jsonl.1`` first, keeping one older
generation: ``lg events --since`` reaches back about 2 MiB of events (some thousands).
Two writers cutting at once may drop that older generation, and a follower that looks
less often than the log fills twice misses one; the log is a courtesy to scripts, not
a record lg relies on. Lines are read bounded and malformed ones skipped:
the run directory is the root's own, but a torn last line must not stop a reader.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

FILE = "events.jsonl"
MAX_BYTES = 1 << 20
_LINE_MAX = 64 << 10  # a longer line is not ours: skipped
_POLL = 0.1  # seconds between looks at the file while following


@dataclass(frozen=True)
class Event:
    """One line of the root's event log, as ``lg events`` reads it back and prints it
    in Docker's shape."""

    time_ns: int
    type: str  # container (the only kind lg logs so far)
    action: str  # Docker's: create, start, die, kill, stop, pause, unpause, rename, destroy
    id: str
    attributes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Docker's shape of an event (what ``--format '{{json .}}'`` prints)."""
        return {
            "status": self.action, "id": self.id, "from": self.attributes.get("image", ""),
            "Type": self.type, "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": dict(self.attributes)},
            "scope": "local", "time": self.time_ns // 1_000_000_000, "timeNano": self.time_ns,
        }

    @classmethod
    def from_json(cls, raw: dict) -> Event:
        actor = raw["Actor"]
        attributes = {str(k): str(v) for k, v in actor.get("Attributes", {}).items()}
        return cls(int(raw["timeNano"]), str(raw["Type"]), str(raw["Action"]), str(actor["ID"]), attributes)


def transition(before: str | None, after: str) -> str | None:
    """The event a container's status going from ``before`` (None: no state saved yet)
    to ``after`` amounts to, if any. A restart by policy is a die, then a start, as
    Docker logs it: the monitor records an exit its policy restarts straight as
    "restarting" (no reader sees it exited between runs), and that is the die."""
    if before is None and after == "created":
        return "create"
    if after == "running":
        return "unpause" if before == "paused" else None if before == "running" else "start"
    if after == "paused" and before == "running":
        return "pause"
    if after in ("exited", "restarting") and before in ("running", "paused"):
        return "die"
    return None


def emit(run_dir: str, action: str, container_id: str, attributes: dict[str, str]) -> None:
    """Append one container event (the directory exists: the root made it)."""
    event = Event(time.time_ns(), "container", action, container_id, attributes)
    line = (json.dumps(event.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()
    path = os.path.join(run_dir, FILE)
    try:
        if os.stat(path).st_size > MAX_BYTES:
            os.replace(path, path + ".1")
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _events(f) -> Iterator[Event]:
    """Whole lines from ``f`` as events; a partial last line is left for the next read."""
    while True:
        start = f.tell()
        line = f.readline(_LINE_MAX + 1)
        if not line:
            return
        if not line.endswith(b"\n"):
            if len(line) > _LINE_MAX:  # not ours: skip to its end
                while line and not line.endswith(b"\n"):
                    line = f.readline(_LINE_MAX)
                continue
            f.seek(start)  # being written: read again later
            return
        try:
            yield Event.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue


def _open(path: str):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _older(path: str) -> Iterator[Event]:
    older = _open(path + ".1")
    if older is not None:
        with older:
            yield from _events(older)


class _Log:
    """The log as one reader follows it: the same open file from first read to last, so
    that nothing is lost or repeated, and the new file once the log is cut."""

    def __init__(self, path: str):
        self.path = path
        self.f = _open(path)

    def skip(self) -> None:
        if self.f is not None:
            self.f.seek(0, os.SEEK_END)

    def new(self) -> Iterator[Event]:
        """What was written since the last call."""
        if self.f is None:
            self.f = _open(self.path)
            if self.f is None:
                return
        yield from _events(self.f)
        try:
            cut = os.stat(self.path).st_ino != os.fstat(self.f.fileno()).st_ino
        except FileNotFoundError:
            cut = False
        if cut:  # what is left of our file, a generation cut since if we never saw it, then the new file
            ours = os.fstat(self.f.fileno()).st_ino
            yield from _events(self.f)
            self.close()
            missed = _open(self.path + ".1")
            if missed is not None:
                with missed:
                    if os.fstat(missed.fileno()).st_ino != ours:
                        yield from _events(missed)
            yield from self.new()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def _polled(log: _Log, until_ns: int | None) -> Iterator[Event]:
    while until_ns is None or time.time_ns() < until_ns:
        yield from log.new()
        time.sleep(_POLL)


def watch(run_dir: str, since_ns: int | None = None, until_ns: int | None = None) -> Iterator[Event]:
    """The events from ``since_ns`` (None: from now) to ``until_ns`` (None: for ever), oldest
    first: the logged ones, then each new one as it is written."""
    path = os.path.join(run_dir, FILE)
    log = _Log(path)
    try:
        if since_ns is None:
            log.skip()
        logged = itertools.chain(_older(path), log.new()) if since_ns is not None else iter(())
        for event in itertools.chain(logged, _polled(log, until_ns)):
            if until_ns is not None and event.time_ns > until_ns:
                return
            if since_ns is None or event.time_ns >= since_ns:
                yield event
    finally:
        log.close()
