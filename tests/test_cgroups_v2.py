"""The cgroup v2 half of the runtime's cgroups, on a real cgroup2 hierarchy, and its device filter.

On a pure v2 host that hierarchy is /sys/fs/cgroup; on a hybrid host such as this
one it is the controller-less tree at /sys/fs/cgroup/unified, where process
membership, cgroup.freeze, cgroup.kill and eBPF device programs work all the same
(they are core v2 features, not controllers). Each test uses its own cgroup under
layergit/ and removes it, killing what is left in it, whatever happens.

The device rules are checked from processes inside the cgroup: a node outside
DEVICE_RULES can be made (mknod is allowed) but not opened (EPERM), while the host,
outside the cgroup, can open the very same node. The same checks run in a container
started by ``lg run`` on this host's default cgroups, so v1's devices controller
and v2's eBPF filter are seen to agree.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import signal
import stat
import time
import uuid

import pytest

from layergit.errors import LgError
from layergit.procstat import alive
from layergit.runtime.bpf import devices
from layergit.runtime.cgroups import DEVICE_RULES, PARENT, Cgroup, v2_mount

from .runtime_helpers import IMAGE, rt, runtime_template  # noqa: F401

pytestmark = pytest.mark.root

# Outside DEVICE_RULES and openable by the host's root here: /dev/kmsg's numbers and the first loop device.
REFUSED = {"kmsg": (stat.S_IFCHR, 1, 11), "loop0": (stat.S_IFBLK, 7, 0)}
ALLOWED = ("/dev/null", "/dev/zero")
_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY  # a tty or console node must neither block nor become ours


@pytest.fixture(scope="module")
def v2root():
    """The host's cgroup2 mount; layergit/ under it is removed afterwards if these tests made it."""
    root = v2_mount()
    if root is None:
        pytest.skip("this kernel has no cgroup2 hierarchy mounted")
    parent = os.path.join(root, PARENT)
    made_parent = not os.path.isdir(parent)
    yield root
    if made_parent:
        try:
            os.rmdir(parent)
        except OSError:  # someone else's cgroup appeared in it meanwhile: theirs to remove
            pass


@pytest.fixture
def cgroups(v2root):
    """Makes Cgroups on the v2 hierarchy with unique names; kills their processes, reaps the ones
    this test forked and removes them afterwards."""
    made: list[Cgroup] = []
    forked: list[int] = []

    def make() -> Cgroup:
        cg = Cgroup(f"layergit-test-{uuid.uuid4().hex[:12]}", root=v2root)
        made.append(cg)
        return cg

    make.forked = forked
    yield make
    for cg in made:
        if cg.exists():
            cg.kill()
    for pid in forked:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    for cg in made:
        cg.remove()


def _fork_into(cgroups, cg: Cgroup, child) -> int:
    """Fork a process that joins ``cg`` and runs ``child()``; it never returns into pytest."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            cg.join_self()
            status = child() or 0
        finally:
            os._exit(status)
    cgroups.forked.append(pid)
    return pid


def _wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def _exit_status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return status


def _open_error(path: str) -> str:
    """'ok', or the errno name opening ``path`` fails with."""
    try:
        os.close(os.open(path, _OPEN))
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]


def _device_outcomes_in(cgroups, cg: Cgroup, tmp_path) -> dict[str, str]:
    """What a process in ``cg`` gets from mknod and open of REFUSED's nodes, and open of ALLOWED's."""
    r, w = os.pipe()

    def child():
        os.close(r)
        got = {path: _open_error(path) for path in ALLOWED}
        for name, (kind, major, minor) in REFUSED.items():
            node = str(tmp_path / f"in-{name}")
            try:
                os.mknod(node, kind | 0o600, os.makedev(major, minor))
                got[f"mknod {name}"] = "ok"
            except OSError as exc:
                got[f"mknod {name}"] = errno.errorcode[exc.errno]
            got[f"open {name}"] = _open_error(node)
        os.write(w, json.dumps(got).encode())

    pid = _fork_into(cgroups, cg, child)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    assert _exit_status(pid) == 0
    return json.loads(text)


def _expected_outcomes() -> dict[str, str]:
    expected = {path: "ok" for path in ALLOWED}
    for name in REFUSED:
        expected |= {f"mknod {name}": "ok", f"open {name}": "EPERM"}
    return expected


def _host_can_open(tmp_path) -> None:
    """The control: outside the cgroup, the host's root opens REFUSED's nodes, so an EPERM inside is the filter's."""
    for name, (kind, major, minor) in REFUSED.items():
        node = str(tmp_path / f"host-{name}")
        os.mknod(node, kind | 0o600, os.makedev(major, minor))
        assert _open_error(node) == "ok", (name, _open_error(node))


def _bpf_prog_fds() -> list[str]:
    links = []
    for fd in glob.glob("/proc/self/fd/*"):
        try:
            links.append(os.readlink(fd))
        except OSError:  # the directory listing's own fd, closed by now
            pass
    return [link for link in links if "bpf-prog" in link]


# -- membership ----------------------------------------------------------------------------------


def test_join_self_and_pids(cgroups):
    """A forked process that calls join_self is in the cgroup: pids() lists it, its /proc/PID/cgroup says so."""
    cg = cgroups()
    cg.create(None, None, None)
    assert cg.exists() and cg.pids() == []
    r, w = os.pipe()
    pid = _fork_into(cgroups, cg, lambda: os.read(r, 1) and 0)
    _wait_for(lambda: cg.pids() == [pid], what="the child in cgroup.procs")
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"0::/{cg.name}\n" in f.read().splitlines(keepends=True)
    os.write(w, b"x")
    assert _exit_status(pid) == 0
    _wait_for(lambda: cg.pids() == [], what="an empty cgroup")
    os.close(r)
    os.close(w)


# -- the device filter ---------------------------------------------------------------------------


def test_device_filter_allows_minimal_dev_only(cgroups, tmp_path):
    """In the cgroup /dev/null and /dev/zero open; a char (1:11) and a block (7:0) device outside the rules
    can be mknod'ed but opening them is refused with EPERM, though the host opens the same numbers."""
    _host_can_open(tmp_path)
    cg = cgroups()
    cg.create(None, None, None)
    assert _device_outcomes_in(cgroups, cg, tmp_path) == _expected_outcomes()


def test_device_filter_matches_every_rule(cgroups, tmp_path):
    """Every rule that grants reading lets a node with its numbers (minor 0 for '*') open past the filter,
    and a neighbour of each (same major, next minor, unless the rule covers every minor) is refused:
    the program is the rule list, block for block."""
    readable = []
    for rule in DEVICE_RULES:
        kind, numbers, access = rule.split()
        major, minor = numbers.split(":")
        if "r" in access:
            readable.append((kind, int(major), 0 if minor == "*" else int(minor), minor == "*"))
    covered = {(kind, major, minor) for kind, major, minor, _ in readable}
    cg = cgroups()
    cg.create(None, None, None)
    r, w = os.pipe()

    def child():
        os.close(r)
        got = []
        for kind, major, minor, every_minor in readable:
            tries = [(minor, "allowed")]
            if not every_minor and (kind, major, minor + 1) not in covered:
                tries.append((minor + 1, "refused"))
            for m, want in tries:
                node = str(tmp_path / f"{kind}-{major}-{m}")
                os.mknod(node, (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600, os.makedev(major, m))
                outcome = _open_error(node)
                # ENXIO, EIO, ENODEV: the filter let it through to a driver with no such device.
                got.append((f"{kind} {major}:{m}", want, "refused" if outcome == "EPERM" else "allowed"))
        os.write(w, json.dumps(got).encode())

    pid = _fork_into(cgroups, cg, child)
    os.close(w)
    with os.fdopen(r) as f:
        got = [tuple(entry) for entry in json.loads(f.read())]
    assert _exit_status(pid) == 0
    assert len(got) > len(readable)
    wrong = [(dev, want, outcome) for dev, want, outcome in got if want != outcome]
    assert not wrong, wrong


def test_device_filter_outlives_its_fd(cgroups, tmp_path):
    """create() closes the program's fd after attaching it; the attachment alone keeps the filter in force."""
    before = _bpf_prog_fds()
    cg = cgroups()
    cg.create(None, None, None)
    assert _bpf_prog_fds() == before
    assert _device_outcomes_in(cgroups, cg, tmp_path)["open kmsg"] == "EPERM"


@pytest.mark.parametrize("rule", ["x 1:3 rwm", "c 1:3 rwq", "c 1 rwm", "c 1:3"])
def test_device_filter_refuses_bad_rules(rule):
    """A rule the assembler cannot read stops it, rather than dropping out of the filter unnoticed."""
    with pytest.raises(ValueError, match="bad device rule"):
        devices.program(["c 1:3 rwm", rule])


# -- freeze, kill, remove ------------------------------------------------------------------------


def test_freeze_and_thaw(cgroups, tmp_path):
    """A frozen process makes no progress (its counter file stops changing) and resumes when thawed."""
    counter = tmp_path / "counter"
    counter.write_text("0")

    def count():
        i = 0
        while True:
            i += 1
            with open(counter, "w") as f:
                f.write(str(i))
            time.sleep(0.002)

    cg = cgroups()
    cg.create(None, None, None)
    _fork_into(cgroups, cg, count)
    _wait_for(lambda: int(counter.read_text() or 0) > 10, what="the counter to run")
    cg.freeze(True)
    with open(os.path.join(cg.paths[0], "cgroup.events")) as f:
        assert "frozen 1" in f.read().splitlines()
    frozen_at = counter.read_text()
    time.sleep(0.5)
    assert counter.read_text() == frozen_at
    cg.freeze(False)
    _wait_for(lambda: counter.read_text() not in ("", frozen_at), what="the counter to resume")


def test_kill_kills_every_process(cgroups):
    """kill() ends every process in the cgroup (cgroup.kill), not only the one forked into it."""
    cg = cgroups()
    cg.create(None, None, None)
    pid = _fork_into(cgroups, cg, lambda: os.execv("/bin/sh", ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]))
    members = _wait_for(lambda: (lambda p: p if len(p) == 3 else None)(cg.pids()), what="three processes")
    assert pid in members
    cg.kill()
    status = _exit_status(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    _wait_for(lambda: cg.pids() == [] and not any(alive(p) for p in members), what="every process gone")


def test_remove_leaves_nothing(cgroups):
    """remove() of a cgroup that had a process (killed) leaves no directory."""
    cg = cgroups()
    cg.create(None, None, None)
    _fork_into(cgroups, cg, lambda: os.execv("/bin/sleep", ["sleep", "1000"]))
    _wait_for(lambda: cg.pids(), what="the sleeper")
    cg.kill()
    cg.remove()
    assert not cg.exists() and not os.path.exists(cg.paths[0])


# -- limits need their controllers ---------------------------------------------------------------


@pytest.mark.parametrize(("controller", "limits", "knob", "value"), [
    ("memory", {"memory": 64 << 20}, "memory.max", str(64 << 20)),
    ("cpu", {"cpus": 0.5}, "cpu.max", "50000 100000"),
    ("pids", {"pids": 50}, "pids.max", "50"),
])
def test_limit_needs_its_controller(cgroups, v2root, controller, limits, knob, value):
    """A limit is enforced when the hierarchy offers its controller, and otherwise refused in one line,
    before any directory exists (here, on a hybrid host's controller-less tree, always refused)."""
    with open(os.path.join(v2root, "cgroup.controllers")) as f:
        available = f.read().split()
    cg = cgroups()
    args = {"memory": None, "cpus": None, "pids": None} | limits
    if controller in available:
        cg.create(**args)
        with open(os.path.join(cg.paths[0], knob)) as f:
            assert f.read().strip() == value
        return
    with pytest.raises(LgError) as info:
        cg.create(**args)
    message = str(info.value)
    assert len(message.splitlines()) == 1 and f"no {controller} controller" in message and v2root in message, message
    assert not cg.exists()


# -- v1 agrees -----------------------------------------------------------------------------------


def test_v1_container_gets_the_same_devices(rt, tmp_path):
    """A container on this host's default cgroups (v1's devices controller on a hybrid host) gets what
    a process under the v2 filter gets: /dev/null and /dev/zero work, the nodes outside the rules can be
    made but not opened (EPERM, 'Operation not permitted')."""
    _host_can_open(tmp_path)
    checks = ["for d in " + " ".join(ALLOWED) + '; do if head -c1 $d >/dev/null; then echo "$d ok"; else echo "$d failed"; fi; done']
    for name, (kind, major, minor) in REFUSED.items():
        letter = "c" if kind == stat.S_IFCHR else "b"
        checks.append(
            f'if mknod /tmp/{name} {letter} {major} {minor}; then echo "mknod {name} ok"; else echo "mknod {name} failed"; fi; '
            f'if err=$(head -c1 /tmp/{name} 2>&1 >/dev/null); then echo "open {name} ok"; '
            f'else case "$err" in *"Operation not permitted"*) echo "open {name} EPERM";; *) echo "open {name} $err";; esac; fi'
        )
    out = rt.out("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "; ".join(checks), timeout=60)
    got = dict(line.rsplit(" ", 1) for line in out.splitlines())
    assert got == _expected_outcomes(), out
