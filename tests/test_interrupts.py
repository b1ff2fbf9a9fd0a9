"""Interrupting lg at any moment (issue 10's review): no orphan, no leftover, no stuck lock.

``lg run --rm`` and ``lg build`` are killed with SIGINT (to the whole process group,
as a terminal's Ctrl-C), SIGTERM and SIGKILL at the points where a container is
half made: while lg waits for the store before the container exists, while the
container is created and the monitor has not started it yet, while its network is
being connected (the child forked and waiting), and while its command runs, and
then at moments spread over a whole run, as the store's crash tests do. The slow
points are real waits made long: the store lock held by the test, and a monitor
(a socket on the root's monitor path, served by the test) that takes its time
over one request. Afterwards, and after the sweep that the next lg command runs:
no process of the container, no container ``--rm`` asked for, no cgroup, no
mount of the root, ``lg gc`` completes, and no lock on the root's files is held
by a dead process. Last, ``lg gc`` against a live holder of the store lock gives
up after its timeout naming it, and a writer says whom it waits for.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from layergit.procstat import alive

from .conftest import REPO
from .runtime_helpers import IMAGE, cgroup_dirs, cgroup_pids, mountinfo_lines, rt, runtime_template  # noqa: F401

pytestmark = pytest.mark.root

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
IDS = ["SIGINT", "SIGTERM", "SIGKILL"]
_tokens = iter(range(424201, 424300))


def token() -> str:
    """A sleep duration no other process on this machine runs: what pgrep looks for."""
    return str(next(_tokens))


class Lg:
    """One lg process started in the background, its output in files, killed (its group) when done."""

    def __init__(self, rt, tmp_path, *args, **env):
        self.out_path = tmp_path / f"lg-{os.getpid()}-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli", *map(str, args)], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=rt.env(**env), cwd=REPO, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def interrupt(self, sig: int) -> int:
        """Ctrl-C reaches the terminal's whole foreground group; kill(1) reaches one process."""
        if sig == signal.SIGINT:
            os.killpg(self.pid, sig)
        else:
            os.kill(self.pid, sig)
        return self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=60)


class SlowMonitor:
    """Serves the root's monitor socket: answers every request but those in ``hold``,
    which it keeps waiting (as a monitor busy elsewhere would) until closed."""

    def __init__(self, root: str, hold: set[str]):
        self.hold = hold
        self.held: list[socket.socket] = []
        self.got = threading.Event()
        run = os.path.join(root, "run")
        os.makedirs(run, exist_ok=True)
        self.path = os.path.join(run, "monitor.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                data += chunk
            if json.loads(data).get("op") in self.hold:
                self.held.append(conn)
                self.got.set()
                return
            conn.sendall(b'{"ok": true}\n')
        except OSError:
            pass
        conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.held:
            conn.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


@pytest.fixture
def store_locked(rt):
    """The store lock of the test's root, held exclusively by the test until released."""
    fd = os.open(os.path.join(rt.root, "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield fd
    os.close(fd)


# -- what must hold after any interruption ------------------------------------------------


def left_behind(rt) -> set[str]:
    """Ids of containers on disk or with owners, read without running lg (so without a sweep)."""
    owners = os.path.join(rt.containers_dir, "owners")
    marked = {e.partition(".")[0] for e in os.listdir(owners)} if os.path.isdir(owners) else set()
    return set(rt.container_ids()) | marked


def leftovers(rt) -> str:
    """What is left of each container the sweep did not remove: its files, owners and processes."""
    owners = os.path.join(rt.containers_dir, "owners")
    lines = [f"ps -a: {rt.out('ps', '-a', '--no-trunc', timeout=60)!r}"]
    for marker in sorted(os.listdir(owners)) if os.path.isdir(owners) else []:
        pid = marker.split(".")[1]
        try:
            with open(f"/proc/{pid}/stat") as f, open(f"/proc/{pid}/cmdline", "rb") as c:
                who = f"{f.read(200)!r} {c.read(300)!r}"
        except OSError:
            who = "gone"
        lines.append(f"owner {marker}: {who}; the sweep's removal: {_sweep_step(rt, marker)}")
    for cid in sorted(left_behind(rt)):
        path = os.path.join(rt.containers_dir, cid)
        files = {}
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
            if name.endswith(".json"):
                with open(os.path.join(path, name), errors="replace") as f:
                    files[name] = f.read(2000)
            else:
                files[name] = "..."
        procs = {}
        for pid in cgroup_pids(cid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    procs[pid] = f.read(200)
            except OSError:
                procs[pid] = "gone"
        lines.append(f"{cid[:12]}: files {files}, cgroups {cgroup_dirs(cid)}, processes {procs}")
    return "\n".join(lines)


def _sweep_step(rt, marker: str) -> str:
    """What the sweep's removal of the container ``marker`` names does when run here, its
    error included (the sweep itself keeps quiet: it runs on behalf of other commands)."""
    import traceback

    from layergit.porcelain.container_lookup import registry
    from layergit.porcelain.container_removal import _abandoned
    from layergit.porcelain.repo import open_repo

    try:
        repo = open_repo(rt.root)
        reg = registry(repo)
        cid = marker.partition(".")[0]
        owners = reg.owned().get(cid, [])
        return f"owners alive {[o.alive() for o in owners]}, removed {_abandoned(repo, reg, cid, owners)}"
    except Exception:  # noqa: BLE001 - the evidence is the point
        return traceback.format_exc()


def dead_lock_holders(root: str) -> list[str]:
    """/proc/locks entries on files under ``root`` whose locking process is dead."""
    inodes = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                st = os.stat(os.path.join(dirpath, f))
            except OSError:
                continue
            inodes[f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"] = os.path.join(dirpath, f)
    bad = []
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[1] != "->" and fields[5] in inodes and not alive(int(fields[4])):
                bad.append(f"{inodes[fields[5]]} locked by dead pid {fields[4]}: {line.strip()}")
    return bad


def assert_clean(rt, sleep_token: str, cids: set[str], gc: bool = True) -> None:
    """Nothing of an interrupted --rm container remains, once lg ps has swept."""
    rt.wait_until(lambda: not subprocess.run(["pgrep", "-f", f"sleep {sleep_token}$"], capture_output=True).stdout, 20, 0.02, what=f"no 'sleep {sleep_token}' process")
    rt.wait_until(lambda: rt.out("ps", "-a", "-q", timeout=60).strip() == "" and not left_behind(rt), 20, 0.02,
                  what="lg ps -a to sweep every --rm container", explain=lambda: leftovers(rt))
    for cid in cids:
        rt.wait_until(lambda cid=cid: not cgroup_dirs(cid), 20, 0.02, what=f"the cgroups of {cid[:12]} to go")
    mounts = [line for line in mountinfo_lines() if rt.root in line]
    assert not mounts, mounts
    if gc:
        started = time.monotonic()
        proc = rt("gc", check=False, timeout=60, env=rt.env(LG_LOCK_TIMEOUT="10"))
        assert proc.returncode == 0, proc.stderr.decode()
        assert time.monotonic() - started < 30
    # A process killed with its parent (PDEATHSIG) lets go of the lock copies it inherited only once the
    # kernel has finished its exit, a moment after its parent is gone: "no dead holder" holds from then on.
    rt.wait_until(lambda: not dead_lock_holders(rt.root), 10, 0.02, what="no lock of the root held by a dead process")


# -- lg run --rm ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_run_rm_killed_before_the_container_exists(rt, tmp_path, store_locked, sig):
    """lg run --rm of an image not yet materialised waits for the store lock (and says so); killed there,
    it leaves nothing, and the lock it waited for is not held by anyone dead."""
    t = token()
    with Lg(rt, tmp_path, "run", "--rm", "--network", "none", f"{IMAGE}~1", "sleep", t) as lg:
        rt.wait_until(lambda: "waiting for" in lg.err(), 20, 0.02, what="lg run to wait for the store lock")
        assert f"pid {os.getpid()}" in lg.err()
        assert not left_behind(rt)
        assert lg.interrupt(sig) != 0
    fcntl.flock(store_locked, fcntl.LOCK_UN)
    assert_clean(rt, t, set())


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_run_rm_killed_while_created(rt, tmp_path, sig):
    """lg run -d --rm killed while the monitor has not started the Created container yet."""
    t = token()
    with SlowMonitor(rt.root, {"start"}) as monitor, Lg(rt, tmp_path, "run", "-d", "--rm", "--network", "none", IMAGE, "sleep", t) as lg:
        assert monitor.got.wait(30), lg.err()
        cids = left_behind(rt)
        assert len(cids) == 1 and rt.inspect(next(iter(cids)))["State"]["Status"] == "created"
        lg.interrupt(sig)
        assert_clean(rt, t, cids)


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_run_rm_killed_during_spawn(rt, tmp_path, sig):
    """lg run --rm on a bridged network killed while the monitor connects it: the container's first
    process is forked and waits in its new namespaces for the go-ahead."""
    t = token()
    with SlowMonitor(rt.root, {"net-attach"}) as monitor, Lg(rt, tmp_path, "run", "--rm", "--network", "bridge", IMAGE, "sleep", t) as lg:
        assert monitor.got.wait(30), lg.err()
        cids = left_behind(rt)
        assert len(cids) == 1
        assert any(os.path.isdir(p) for cid in cids for p in cgroup_dirs(cid))
        assert lg.interrupt(sig) != 0
        assert_clean(rt, t, cids)


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_run_rm_killed_while_the_command_runs(rt, tmp_path, sig):
    """lg run --rm killed while its command runs: SIGINT and SIGTERM reach the container, SIGKILL takes
    it down with lg; either way it is gone afterwards."""
    t = token()
    with Lg(rt, tmp_path, "run", "--rm", "--network", "none", IMAGE, "sh", "-c", f"echo ready; exec sleep {t}") as lg:
        rt.wait_until(lambda: "ready" in lg.out(), 20, 0.02, what="the command to run")
        cids = left_behind(rt)
        assert len(cids) == 1
        assert lg.interrupt(sig) != 0
    assert_clean(rt, t, cids)


def test_a_removal_killed_inside_the_ref_update_is_finished(rt, tmp_path):
    """lg killed while it updates the container's ref leaves git's NAME.lock, which nothing tells
    from a live writer's: the sweep leaves a fresh one for later, and takes one older than a ref
    update ever lasts as a killed writer's, breaks it and finishes the removal (found by the spread
    moments below, once in some hundred kills)."""
    t = token()
    with Lg(rt, tmp_path, "run", "--rm", "--network", "none", IMAGE, "sh", "-c", f"echo ready; exec sleep {t}") as lg:
        rt.wait_until(lambda: "ready" in lg.out(), 20, 0.02, what="the command to run")
        (cid,) = left_behind(rt)
        lock = os.path.join(rt.root, "store.git", "refs", "layergit", "containers", cid + ".lock")
        open(lock, "x").close()  # as a writer killed between creating the lock and renaming it leaves it
        assert lg.interrupt(signal.SIGKILL) != 0
    rt.wait_until(lambda: not subprocess.run(["pgrep", "-f", f"sleep {t}$"], capture_output=True).stdout, 20, 0.02, what=f"no 'sleep {t}' process")
    rt.out("ps", "-a")
    assert left_behind(rt) == {cid} and os.path.exists(lock)  # a writer may hold it yet: later
    past = time.time() - 60
    os.utime(lock, (past, past))
    assert_clean(rt, t, {cid})
    assert not os.path.exists(lock)
    assert not os.path.exists(lock[:-len(".lock")])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_run_rm_killed_at_spread_moments(rt, tmp_path, sig):
    """Killed at moments spread evenly over a whole lg run --rm (measured first): whatever the moment,
    no container, process or cgroup is left once swept."""
    t = token()
    started = time.monotonic()
    rt("run", "--rm", IMAGE, "sleep", "0")
    duration = time.monotonic() - started
    n = 6
    cids: set[str] = set()
    for i in range(n):
        with Lg(rt, tmp_path, "run", "--rm", "--network", "none", IMAGE, "sleep", "0") as lg:
            deadline = time.monotonic() + duration * (i + 0.5) / n
            while time.monotonic() < deadline and lg.proc.poll() is None:
                time.sleep(0.002)
            if lg.proc.poll() is None:
                lg.interrupt(sig)
        print(f"lg pid {lg.pid}, exit {lg.proc.returncode}, err {lg.err()!r}")
        cids |= left_behind(rt)
        assert_clean(rt, t, cids, gc=False)
    assert_clean(rt, t, cids)


# -- lg build -------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS, ids=IDS)
def test_build_killed_during_a_run_step(rt, tmp_path, sig):
    """lg build killed while a RUN step's command runs: the step's runner and container go, the container
    is removed (build steps are --rm), and the store lock the build held is free for gc."""
    t = token()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo ready && exec sleep {t}\n")
    with Lg(rt, tmp_path, "build", "--network", "none", "--progress", "plain", "-t", "out", context) as lg:
        rt.wait_until(lambda: re.search(r"^#\d+ [\d.]+ ready$", lg.out(), re.M), 60, 0.02, what="the RUN step to run")
        cids = left_behind(rt)
        assert len(cids) == 1
        runner = [int(p) for p in subprocess.run(["pgrep", "-P", str(lg.pid)], capture_output=True, text=True).stdout.split()]
        assert lg.interrupt(sig) != 0
    for pid in runner:
        rt.wait_until(lambda pid=pid: not alive(pid), 20, 0.02, what=f"the build's step runner {pid} to die with it")
    assert_clean(rt, t, cids)
    assert "out:latest" not in rt.out("images")


# -- lg commit of a running container --------------------------------------------------------


def frozen(cid: str) -> bool:
    """Whether the container's cgroup is frozen (v1 freezer or v2 cgroup.freeze)."""
    for path in cgroup_dirs(cid):
        knob = os.path.join(path, "freezer.state" if "/freezer/" in path else "cgroup.freeze")
        try:
            with open(knob) as f:
                if f.read().strip() in ("FROZEN", "FREEZING", "1"):
                    return True
        except FileNotFoundError:
            continue
    return False


def test_commit_killed_while_the_container_is_frozen(rt, tmp_path):
    """lg commit of a running container freezes it while it reads the writable layer; killed then (SIGINT,
    SIGTERM, SIGKILL in turn), the container is thawed (by lg itself, or for SIGKILL by the next sweep)
    and runs on."""
    cid = rt.run_d("--name", "live", IMAGE, "sh", "-c", "mkdir /d && cd /d && seq 40000 | xargs touch && echo ready && exec sleep 1000")
    rt.wait_log("live", "ready", timeout=60)
    for sig in SIGNALS:
        with Lg(rt, tmp_path, "commit", "live", "-t", "snap") as lg:
            rt.wait_until(lambda lg=lg: frozen(cid) or lg.proc.poll() is not None, 30, 0.005, what="lg commit to freeze the container")
            assert lg.proc.poll() is None, "lg commit finished before it could be interrupted"
            assert lg.interrupt(sig) != 0
        rt("ps")
        rt.wait_until(lambda: not frozen(cid), 10, 0.02, what=f"the container to be thawed after {sig.name}")
        assert rt("exec", "live", "true", check=False, timeout=20).returncode == 0
        assert not os.listdir(os.path.join(rt.containers_dir, "freezers"))


# -- the store lock -------------------------------------------------------------------------

HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "fcntl.flock(fd, fcntl.LOCK_SH if sys.argv[2] == 'shared' else fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


def hold_store_lock(rt, mode: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, os.path.join(rt.root, "gc.lock"), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"locked\n"
    return holder


def test_gc_gives_up_naming_the_holder(rt):
    """lg gc waits LG_LOCK_TIMEOUT seconds for a live holder of the store lock, then fails with one line
    naming its pid; once the holder is gone, it runs."""
    holder = hold_store_lock(rt, "shared")
    try:
        started = time.monotonic()
        err = rt.fails("gc", env=rt.env(LG_LOCK_TIMEOUT="1"), timeout=60)
        took = time.monotonic() - started
        assert f"(pid {holder.pid})" in err and "gc.lock" in err and "LG_LOCK_TIMEOUT" in err, err
        assert 1 <= took < 15, took
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    rt("gc", env=rt.env(LG_LOCK_TIMEOUT="10"), timeout=60)


def test_writer_says_whom_it_waits_for(rt, tmp_path, busybox_rootfs):
    """A store writer blocked by an exclusive holder (gc) says once whom it waits for, then goes on."""
    holder = hold_store_lock(rt, "exclusive")
    try:
        with Lg(rt, tmp_path, "commit", busybox_rootfs, "-t", "waited") as lg:
            rt.wait_until(lambda: "waiting for" in lg.err(), 20, 0.02, what="lg commit to say it waits")
            assert f"(pid {holder.pid}) to finish" in lg.err()
            holder.stdin.close()
            assert lg.proc.wait(timeout=60) == 0, lg.err()
            assert len(lg.err().strip().splitlines()) == 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert "waited" in rt.out("images")
