"""Running a container's health check from the monitor's event loop (runtime/health.py
says what the results mean).

A check is ``lg exec`` of the test (runtime/process.spawn_in: the container's
namespaces, cgroup, user and limits) with stdout and stderr on one pipe, started
every ``interval`` once the container runs. Nothing here blocks the loop but the
spawn itself (the exec handshake): the check's end arrives on a pidfd, its output
on the pipe, and one still running at ``timeout`` is SIGKILLed and fails with
Docker's message. Each result is written to ``health.json`` beside the container's
state; ``on_unhealthy`` is called when the status turns unhealthy.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from ..errors import LgError
from .cgroups import of_container
from .health import OUTPUT_MAX, Health, HealthConfig, Result
from .process import Stdio, spawn_in
from .spec import Spec
from .state import ContainerDir, now_iso
from .supervise import exit_code

HEALTH_NAME = "health.json"

Schedule = Callable[[float, Callable[[], None]], None]  # (seconds from now, what to run)


def read_health(cdir: ContainerDir) -> Health | None:
    """The container's last recorded health; None if it has no check or never ran one."""
    import json

    try:
        with open(cdir.file(HEALTH_NAME)) as f:
            return Health.from_json(json.load(f))
    except (FileNotFoundError, ValueError):
        return None


class Checker:
    """The health checks of one running container."""

    def __init__(self, sel: selectors.BaseSelector, schedule: Schedule, cdir: ContainerDir, spec: Spec,
                 config: HealthConfig, container_pid: int, started: float,
                 on_unhealthy: Callable[[], None], fresh: bool = True):
        self.sel, self.schedule, self.cdir, self.spec, self.config = sel, schedule, cdir, spec, config
        self.container_pid, self.started, self.on_unhealthy = container_pid, started, on_unhealthy
        self.health = (None if fresh else read_health(cdir)) or Health()
        self.active = True
        self.pid = 0
        self.pidfd = self.out = -1
        self.output = bytearray()
        self.began = ""
        self.timed_out = False
        self._save()
        schedule(config.next_check(time.monotonic() - started, self.health.status), self.run)

    def run(self) -> None:
        """Start one check, unless the container ended or a check still runs."""
        if not self.active or self.pid:
            return
        process = replace(self.spec.process, args=self.config.argv(), stdin=False, tty=False)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        self.began, self.timed_out, self.output = now_iso(), False, bytearray()
        try:
            self.pid = spawn_in(self.container_pid, process, self.spec.hostname, Stdio(devnull, out_w, out_w),
                                of_container(self.cdir))
        except (LgError, OSError) as exc:
            os.close(out_r)
            code = getattr(exc, "exit_code", 1)
            self._finish(Result(self.began, now_iso(), code, str(exc)))
            return
        finally:
            os.close(devnull)
            os.close(out_w)
        self.out = out_r
        os.set_blocking(out_r, False)
        self.sel.register(out_r, selectors.EVENT_READ, self._read)
        self.pidfd = os.pidfd_open(self.pid)
        self.sel.register(self.pidfd, selectors.EVENT_READ, self._ended)
        pid = self.pid
        self.schedule(self.config.timeout, lambda: self._expire(pid))

    def _read(self, key, mask) -> None:
        if not self._take():
            self._close_output()

    def _take(self) -> bool:
        """Read what the check wrote; False at its end (EOF) or when nothing is there now."""
        try:
            data = os.read(self.out, 4096)
        except BlockingIOError:
            return bool(self.pid)  # a running check may write more; at its end, stop here
        except OSError:
            data = b""
        self.output += data[:max(OUTPUT_MAX - len(self.output), 0)]
        return bool(data)

    def _close_output(self) -> None:
        if self.out >= 0:
            self.sel.unregister(self.out)
            os.close(self.out)
            self.out = -1

    def _expire(self, pid: int) -> None:
        if self.pid == pid:  # still this check: it hangs
            self.timed_out = True
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _ended(self, key, mask) -> None:
        _, status = os.waitpid(self.pid, 0)
        self._release()
        if self.timed_out:
            message = f"Health check exceeded timeout ({self.config.timeout:g}s)"
            result = Result(self.began, now_iso(), -1, message)
        else:
            result = Result(self.began, now_iso(), exit_code(status), self.output.decode("utf-8", "replace"))
        self._finish(result)

    def _release(self) -> None:
        """Stop watching the check process (it ended, or its container did); keep what
        it wrote, without waiting for descendants that hold the pipe open."""
        self.pid = 0
        while self.out >= 0 and self._take():
            pass
        self._close_output()
        if self.pidfd >= 0:
            self.sel.unregister(self.pidfd)
            os.close(self.pidfd)
        self.pidfd = -1

    def _finish(self, result: Result) -> None:
        self._close_output()
        if not self.active:
            return
        was = self.health.status
        in_start = time.monotonic() - self.started < self.config.start_period
        self.health.record(result, self.config, in_start)
        self._save()
        if self.health.status == "unhealthy" and was != "unhealthy":
            self.on_unhealthy()
        if self.active:
            since = time.monotonic() - self.started
            self.schedule(self.config.next_check(since, self.health.status), self.run)

    def _save(self) -> None:
        """Write health.json, under the container's lock: ``lg rm`` removes the directory
        under it, and a file written in the middle would make that removal fail."""
        with self.cdir.lock():
            if self.cdir.exists():
                self.cdir.write_json(HEALTH_NAME, self.health.to_json())

    def stop(self) -> None:
        """The container ended: kill a check in flight, start no more."""
        self.active = False
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._release()
