"""/proc/PID/stat, read in one place: whether a process still runs, and since when.

A pid names a process only while it lives (the kernel reuses pids), so a record
that must find its process again keeps the pid with the process's start time and
checks both. The second field of the file, the command name, is in parentheses and
may itself hold spaces and ")": the fields are counted from the last ")".
"""

from __future__ import annotations


def _fields(pid: int) -> list[bytes] | None:
    """The fields after the command name, the state letter first; None if ``pid`` is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited: a zombie has, only its parent has not reaped it yet."""
    fields = _fields(pid)
    return fields is not None and fields[0] != b"Z"


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone or a zombie."""
    fields = _fields(pid)
    if fields is None or fields[0] == b"Z":
        return None
    return int(fields[19])
