"""procstat: a process's state and start time, read from /proc/PID/stat as the kernel writes it."""

import os
import signal
import time

from layergit import procstat


def _child(comm: bytes) -> int:
    """A forked child named ``comm`` (what /proc/PID/stat shows in parentheses), waiting to be killed."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open("/proc/self/comm", "wb") as f:
                f.write(comm)
            os.write(ready_w, b"x")
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return pid


def test_a_running_process_is_alive_and_keeps_its_start_time():
    me = os.getpid()
    assert procstat.alive(me)
    start = procstat.start_time(me)
    assert start is not None and start > 0
    assert procstat.start_time(me) == start


def test_a_command_name_that_looks_like_fields_is_skipped():
    """The name is the process's to choose: ") Z 1 (" must not read as a zombie whose
    fields start inside the name."""
    pid = _child(b"x) Z 1 (")
    try:
        assert procstat.alive(pid)
        start = procstat.start_time(pid)
        assert start is not None and start >= procstat.start_time(os.getpid())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_zombie_has_exited_and_a_reaped_pid_is_gone():
    pid = _child(b"doomed")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procstat.alive(pid) and time.monotonic() < deadline:  # until the kernel has made it a zombie
        time.sleep(0.01)
    try:
        assert not procstat.alive(pid)
        assert procstat.start_time(pid) is None
        assert os.path.exists(f"/proc/{pid}/stat")  # not reaped yet: a zombie, not a gone pid
    finally:
        os.waitpid(pid, 0)
    assert not procstat.alive(pid)
    assert procstat.start_time(pid) is None
