"""Services that stay up (issue 18, supervision): restart policies with Docker's back-off,
a monitor killed with SIGKILL taken over by the next lg command, a simulated reboot
through the shipped systemd unit's ExecStart, health checks, rotated logs.

Everything runs lg as a user would, in the test's own root (runtime_helpers.rt), and
looks from the outside: lg's output, the kernel's processes, the log files, a TCP port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime

import pytest

from layergit.procstat import alive

from .conftest import REPO
from .runtime_helpers import (  # noqa: F401
    RuntimeLg,
    cgroup_dirs,
    cgroup_pids,
    kill_monitor,
    monitor_pids,
    mountinfo_lines,
    rt,
    runtime_template,
)

pytestmark = pytest.mark.root

TICKS = "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def _stamp(text: str) -> float:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            if data:
                return data
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answered on port {port}")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    """Whether some socket of the host listens on TCP ``port`` (the monitor's port proxy)."""
    with open("/proc/net/tcp") as f:
        return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A" for line in f.readlines()[1:])


def _ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"tick (\d+)", text)]


def test_on_failure_backs_off_then_gives_up(rt):
    rt.run_d("--name", "flaky", "--restart", "on-failure:5", rt.image, "sh", "-c", "echo run; exit 3")
    seen = rt.wait_until(lambda: (lambda out: out if "Restarting (3)" in out else None)(rt.out("ps")), 10,
                         interval=0.05, what="Restarting (3) in lg ps")
    assert "flaky" in seen
    state = rt.wait_exited("flaky", 20)
    info = rt.inspect("flaky")
    assert (info["RestartCount"], state["ExitCode"], state["Restarting"]) == (5, 3, False)
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    times = [_stamp(line.split()[0]) for line in rt.logs("flaky", "-t").splitlines()]
    assert len(times) == 6  # the first run and five restarts, then no more
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8, 1.6), strict=True):
        assert gap >= delay * 0.9, gaps  # Docker's back-off: 100 ms, doubling
    time.sleep(0.5)
    assert rt.inspect("flaky")["RestartCount"] == 5


def test_stop_and_kill_are_not_failures(rt):
    rt.run_d("--name", "svc", "--restart", "always", "--stop-timeout", "1", rt.image, "sleep", "1000")
    rt.out("stop", "svc")
    rt.out("start", "svc")
    rt.wait_running("svc")
    rt.out("kill", "svc")
    time.sleep(1)
    state = rt.state("svc")
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert rt.inspect("svc")["RestartCount"] == 0


def test_always_survives_sigkill_of_its_process_and_of_the_monitor(rt):
    port = _free_port()
    rt.network = ""  # the default bridge: ports are published
    script = f"echo served > /tmp/index.html; httpd -p 8080 -h /tmp; {TICKS}"
    rt.run_d("--name", "always", "--restart", "always", "-p", f"{port}:8080", rt.image, "sh", "-c", script)
    first = rt.wait_running("always")["Pid"]
    assert b"served" in _get(port)
    os.kill(first, signal.SIGKILL)
    second = rt.wait_until(lambda: (lambda s: s["Pid"] if s["Running"] and s["Pid"] != first else None)(
        rt.state("always")), 10, what="a restart")
    assert rt.inspect("always")["RestartCount"] == 1
    rt.wait_log("always", "tick 3")

    kill_monitor(rt.root)
    time.sleep(1.5)  # no monitor: the container keeps running and writing (into its FIFO)
    assert alive(second) and not monitor_pids(rt.root)
    rt.out("ps")  # the next lg command brings supervision back
    assert rt.wait_until(lambda: monitor_pids(rt.root), 10, what="a new monitor")
    text = rt.wait_log("always", f"tick {max(_ticks(rt.logs('always'))) + 5}", 15)
    after = _ticks(text[text.rindex("tick 0"):])  # the second run's ticks, across the monitor's death
    assert after == list(range(len(after))), "lines were lost while no monitor read them"
    rt.wait_until(lambda: _listening(port), 10, what="the port served again")
    assert b"served" in _get(port)

    os.kill(second, signal.SIGKILL)  # adopted: not the new monitor's child, its policy still holds
    rt.wait_until(lambda: (lambda s: s["Running"] and s["Pid"] != second)(rt.state("always")), 10,
                  what="a restart by the new monitor")
    assert rt.inspect("always")["RestartCount"] == 2
    assert b"served" in _get(port)


def _lg_wrapper(tmp_path) -> str:
    """An lg executable running this checkout, as the unit's ExecStart names it."""
    path = tmp_path / "lg"
    path.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m cli \"$@\"\n")
    path.chmod(0o755)
    return str(path)


def _reboot(rt: RuntimeLg, cids: list[str]) -> None:
    """What a reboot does to the runtime: every container process and the monitor killed,
    overlays unmounted, cgroups gone, the run directory emptied."""
    pids = [rt.state(cid)["Pid"] for cid in cids]
    kill_monitor(rt.root)
    for cid in cids:
        for pid in cgroup_pids(cid):
            os.kill(pid, signal.SIGKILL)
    rt.wait_until(lambda: not any(alive(p) for p in pids if p), 10, what="the containers' death")
    for line in mountinfo_lines():  # overlays live in the containers' namespaces: none on the host
        assert rt.root not in line
    for cid in cids:
        for path in cgroup_dirs(cid):
            rt.wait_until(lambda path=path: _rmdir(path), 5, what=f"{path} removed")
    shutil.rmtree(os.path.join(rt.root, "run"))


def _rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def test_simulated_reboot_through_the_systemd_unit(rt, tmp_path):
    units = tmp_path / "units"
    written = rt.out("system", "install-service", "--unit-dir", units, "--lg", _lg_wrapper(tmp_path)).split()[0]
    verify = subprocess.run(["systemd-analyze", "verify", written], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    user_unit = rt.out("system", "install-service", "--user", "--unit-dir", tmp_path / "user",
                       "--lg", _lg_wrapper(tmp_path), "--no-enable").split()[0]
    assert "WantedBy=default.target" in open(user_unit).read()

    names = {"always": "always", "kept": "unless-stopped", "stopped": "unless-stopped", "plain": "no",
             "failing": "on-failure:2"}
    cids = [rt.run_d("--name", name, "--restart", policy, "--stop-timeout", "1", rt.image, "sleep", "1000")
            for name, policy in names.items()]
    rt.out("stop", "stopped")
    rt.out("stop", "always")  # stopped by the user too: always comes back at boot all the same
    _reboot(rt, cids)

    exec_start = next(line for line in open(written).read().splitlines() if line.startswith("ExecStart="))
    argv = exec_start[len("ExecStart="):].split()
    boot = subprocess.run(argv, capture_output=True, text=True, env=rt.env(), timeout=120)
    assert boot.returncode == 0, boot.stderr
    assert sorted(boot.stdout.split()) == ["always", "failing", "kept"]
    running = {row["name"] for row in rt.ps_json()}
    assert running == {"always", "kept", "failing"}
    assert rt.state("stopped")["ExitCode"] == 137 and rt.state("plain")["ExitCode"] == -1


def test_health_checks(rt):
    rt.run_d("--name", "h", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
             rt.image, "sh", "-c", "touch /tmp/ok; sleep 1000")
    assert rt.out("wait", "--condition", "healthy", "h", timeout=20).strip() == "0"
    assert "(healthy)" in rt.out("ps")
    rt.out("exec", "h", "rm", "/tmp/ok")
    rt.wait_until(lambda: "(unhealthy)" in rt.out("ps"), 10, what="unhealthy")
    health = rt.state("h")["Health"]
    assert health["Status"] == "unhealthy" and health["FailingStreak"] >= 2 and health["Log"][-1]["ExitCode"] == 1
    assert rt.state("h")["Running"]  # no policy: an unhealthy container is left running
    assert rt.out("ps", "--format", "{{.Names}}", "-f", "health=unhealthy").split() == ["h"]
    assert rt.out("ps", "--format", "{{.Names}}", "-f", "health=healthy").split() == []
    rt.out("exec", "h", "touch", "/tmp/ok")
    rt.wait_until(lambda: "(healthy)" in rt.out("ps"), 10, what="healthy again")

    rt.run_d("--name", "hang", "--health-cmd", "sleep 60", "--health-interval", "100ms", "--health-timeout", "300ms",
             "--health-retries", "1", rt.image, "sleep", "1000")
    err = rt.fails("wait", "--condition", "healthy", "hang", code=1, timeout=20)
    assert "unhealthy" in err
    log = rt.state("hang")["Health"]["Log"][-1]
    assert (log["ExitCode"], log["Output"]) == (-1, "Health check exceeded timeout (0.3s)")

    rt.run_d("--name", "sick", "--restart", "always", "--health-cmd", "false", "--health-interval", "100ms",
             "--health-retries", "1", rt.image, "sleep", "1000")
    rt.wait_until(lambda: rt.inspect("sick")["RestartCount"] >= 1, 15, what="an unhealthy container restarted")


def test_logs_rotate_and_read_across_files(rt):
    script = "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done"
    cid = rt.run_d("--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
                   rt.image, "sh", "-c", script)
    rt.wait_exited("chatty")
    directory = os.path.join(rt.containers_dir, cid)
    logs = sorted(n for n in os.listdir(directory) if n.startswith("container.log"))
    assert logs == ["container.log", "container.log.1", "container.log.2"]
    assert all(os.path.getsize(os.path.join(directory, n)) <= 2000 for n in logs)
    kept = sum(1 for n in logs for _ in open(os.path.join(directory, n)))
    lines = rt.logs("chatty").splitlines()
    assert len(lines) == kept > 40  # about 20 entries of ~95 bytes per file
    assert lines == [f"line {i}" for i in range(400 - kept, 400)]
    assert rt.logs("chatty", "--tail", "3").splitlines() == ["line 397", "line 398", "line 399"]
    config = rt.inspect("chatty")["HostConfig"]["LogConfig"]
    assert config == {"Type": "json-file", "Config": {"max-size": "2000", "max-file": "3"}}
    default = rt.inspect(rt.run_d(rt.image, "true"))["HostConfig"]["LogConfig"]["Config"]
    assert default == {"max-size": str(10 << 20), "max-file": "3"}


def test_follow_reads_on_across_a_rotation(rt):
    script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); sleep 0.005; done"
    rt.run_d("--name", "slow", "--log-opt", "max-size=1k", "--log-opt", "max-file=5", rt.image, "sh", "-c", script)
    followed = rt.out("logs", "-f", "slow", timeout=60).splitlines()
    numbers = [int(line.split()[1]) for line in followed]
    assert numbers[-1] == 299 and numbers == list(range(numbers[0], 300))


@pytest.mark.parametrize("args, message", [
    (["--restart", "sometimes"], "invalid restart policy"),
    (["--restart", "always:3"], "only on-failure takes a maximum"),
    (["--rm", "--restart", "always"], "--restart and --rm"),
    (["--health-interval", "soon", "--health-cmd", "true"], "--health-interval"),
    (["--no-healthcheck", "--health-cmd", "true"], "conflicts"),
    (["--log-opt", "max-size=lots"], "max-size"),
    (["--log-opt", "compress=true"], "unknown --log-opt"),
    (["--log-driver", "syslog"], "json-file"),
])
def test_bad_input_is_one_line_and_leaves_nothing(rt, args, message):
    before = rt.container_ids()
    err = rt.fails("run", "-d", *args, rt.image, "true", code=125)
    assert message in err
    assert rt.container_ids() == before


def test_update_changes_the_policy(rt):
    rt.run_d("--name", "u", rt.image, "sh", "-c", "sleep 0.3; exit 1")
    rt.out("update", "--restart", "on-failure:1", "u")
    rt.wait_until(lambda: rt.inspect("u")["RestartCount"] == 1 and rt.state("u")["Status"] == "exited", 15,
                  what="one restart")
    assert "invalid restart policy" in rt.fails("update", "--restart", "often", "u", code=2)
    assert json.loads(rt.out("inspect", "u"))[0]["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"


def test_output_waits_for_a_new_monitor_instead_of_killing_the_container(rt):
    """With no monitor, a container that writes more than a pipe holds blocks (its output
    FIFO still has a reader: itself); it is neither killed by SIGPIPE nor loses a byte."""
    script = "sleep 1; head -c 300000 /dev/zero | tr '\\0' x; echo; echo done; sleep 1000"
    rt.run_d("--name", "writer", rt.image, "sh", "-c", script)
    pid = rt.wait_running("writer")["Pid"]
    kill_monitor(rt.root)
    time.sleep(3)  # it wrote the first 64 KiB and now waits in write()
    assert alive(pid) and not monitor_pids(rt.root)
    assert rt.state("writer")["Running"]  # the next command: a monitor takes the FIFOs over
    text = rt.wait_log("writer", "done", 15)
    assert text.count("x") == 300000 and alive(pid)


def test_a_foreground_run_is_restarted_by_the_monitor(rt):
    proc = rt("run", "--name", "fg", "--restart", "on-failure:2", rt.image, "sh", "-c", "echo once; exit 3",
              check=False, timeout=60)
    assert proc.returncode == 3 and proc.stdout == b"once\n"
    rt.wait_until(lambda: rt.inspect("fg")["RestartCount"] == 2 and rt.state("fg")["Status"] == "exited", 15,
                  what="two restarts by the monitor")
    assert rt.logs("fg").splitlines() == ["once"] * 3


def test_a_restart_that_cannot_start_counts_and_ends(rt):
    rt.run_d("--name", "gone", "--restart", "on-failure:2", rt.image, "sh", "-c", "rm /bin/sh; exit 1")
    rt.wait_until(lambda: rt.inspect("gone")["RestartCount"] == 2 and rt.state("gone")["Status"] == "exited", 15,
                  what="two failed restarts")
    state = rt.state("gone")
    assert state["ExitCode"] == 127 and "not found" in state["Error"]
    assert os.listdir(os.path.join(rt.root, "run", "supervised")) == []
