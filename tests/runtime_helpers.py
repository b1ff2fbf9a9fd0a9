"""Shared fixtures and helpers for the container runtime tests (test_runtime*.py).

Every test gets its own layergit root (the ``lg`` fixture of conftest.py), filled by
copying a template root built once per session: the busybox fixture committed
twice on ``bb:latest`` (so ``bb:latest~1`` exists; /etc/release reads 1 then 2)
and already materialised in the cache. Copying (cp -a keeps modes, owners, mtimes,
xattrs and hardlinks) costs a few milliseconds where a commit costs most of a
second on this machine.

The ``rt`` fixture's finaliser removes whatever the test left: ``lg rm -f`` of
every container of the root, then (whatever that managed) the root's monitor,
any process still in one of the root's containers' cgroups, and those cgroups.
Processes are only ever killed by pid, found through this root's cgroups or the
monitor's exact command line.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .conftest import Lg

CGROUP_ROOT = "/sys/fs/cgroup"
IMAGE = "bb:latest"

# Docker's default capability set (moby's oci/caps/defaults.go), by capability number.
DOCKER_DEFAULT_CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8,
    "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31,
}
CAP_NET_ADMIN = 12


def caps_mask(numbers) -> int:
    mask = 0
    for n in numbers:
        mask |= 1 << n
    return mask


DEFAULT_CAP_MASK = caps_mask(DOCKER_DEFAULT_CAPS.values())


# -- the template root and the per-test root -------------------------------------------


def _lg_at(root: str, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, LG_ROOT=root, COLUMNS="200")
    env.pop("LG_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "cli", *map(str, args)], capture_output=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"lg {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc


@pytest.fixture(scope="session")
def runtime_template(tmp_path_factory, busybox_rootfs) -> str:
    """A layergit root holding bb:latest (2 commits) with its rootfs materialised."""
    base = tmp_path_factory.mktemp("lg-runtime-template")
    root = str(base / "root")
    tree = str(base / "rootfs")
    subprocess.run(["cp", "-a", busybox_rootfs, tree], check=True)
    with open(os.path.join(tree, "etc", "release"), "w") as f:
        f.write("1\n")
    _lg_at(root, "commit", tree, "-t", IMAGE, "-m", "release 1")
    with open(os.path.join(tree, "etc", "release"), "w") as f:
        f.write("2\n")
    _lg_at(root, "commit", tree, "-t", IMAGE, "-m", "release 2")
    # The first run materialises the rootfs into the cache; later copies start warm. No network:
    # copies of this root must not inherit a network record whose bridge belongs to the template.
    _lg_at(root, "run", "--rm", "--network", "none", IMAGE, "true")
    kill_monitor(root)
    return root


class RuntimeLg(Lg):
    """``lg`` against a test's own root, with a few runtime-specific conveniences.

    ``lg run`` and ``lg create`` get ``--network none`` unless the test names a
    network: these tests are about the runtime, and the default bridge network is
    the networking issue's (its concurrency bug is exposed once, on purpose, by
    test_runtime_lifecycle.py::test_parallel_foreground_runs_on_the_default_network).
    """

    image = IMAGE
    network = "none"

    def __call__(self, *args, **kw):
        args = [str(a) for a in args]
        if self.network and args and args[0] in ("run", "create") and not any(a in ("--network", "--net") or a.startswith(("--network=", "--net=")) for a in args):
            args = [args[0], "--network", self.network, *args[1:]]
        return super().__call__(*args, **kw)

    @property
    def containers_dir(self) -> str:
        return os.path.join(self.root, "containers")

    def run_d(self, *args, **kw) -> str:
        """``lg run -d ARGS``; returns the full container id."""
        cid = self.out("run", "-d", *args, timeout=60, **kw).strip()
        assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
        return cid

    def inspect(self, ref: str) -> dict:
        data = json.loads(self.out("inspect", ref, timeout=60))
        assert isinstance(data, list) and len(data) == 1
        return data[0]

    def state(self, ref: str) -> dict:
        return self.inspect(ref)["State"]

    def ps_json(self, all_: bool = False) -> list[dict]:
        return json.loads(self.out("ps", *(["-a"] if all_ else []), "--json", timeout=60))

    def wait_until(self, predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition",
                   explain=None):
        """Poll ``predicate`` until it is true; on timeout, fail saying ``what``, and what
        ``explain()`` finds then (the evidence a rare failure in CI needs)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                found = f": {explain()}" if explain is not None else ""
                raise AssertionError(f"timed out after {timeout}s waiting for {what}{found}")
            time.sleep(interval)

    def try_state(self, ref: str) -> dict | None:
        """The container's State, or None while it does not exist yet."""
        proc = self("inspect", ref, check=False, timeout=60)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)
        return data[0].get("State") if data else None

    def wait_running(self, ref: str, timeout: float = 10.0) -> dict:
        return self.wait_until(lambda: (lambda s: s if s and s["Running"] else None)(self.try_state(ref)), timeout, what=f"{ref} running")

    def wait_exited(self, ref: str, timeout: float = 15.0) -> dict:
        return self.wait_until(lambda: (lambda s: s if s["Status"] == "exited" else None)(self.state(ref)), timeout, what=f"{ref} exited")

    def logs(self, ref: str, *args) -> str:
        return self.out("logs", *args, ref, timeout=60)

    def wait_log(self, ref: str, text: str, timeout: float = 10.0) -> str:
        """Wait until ``text`` shows in the container's log (stdout or stderr); returns both, concatenated."""

        def both():
            proc = self("logs", ref, timeout=60)
            out = (proc.stdout + proc.stderr).decode(errors="replace")
            return out if text in out else None

        return self.wait_until(both, timeout, what=f"{text!r} in the log of {ref}")

    def container_ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.containers_dir) if re.fullmatch(r"[0-9a-f]{64}", n))
        except FileNotFoundError:
            return []


@pytest.fixture
def rt(lg, runtime_template):
    """This test's own root, holding bb:latest; everything the test started is removed afterwards."""
    subprocess.run(["cp", "-a", runtime_template, lg.root], check=True)
    r = RuntimeLg(lg.root)
    yield r
    cleanup_root(r)


def cleanup_root(r: RuntimeLg) -> None:
    """Remove every container of the root, then kill and remove whatever lg rm -f missed."""
    try:  # the monitor's own log, shown by pytest when the test failed
        with open(os.path.join(r.root, "run", "monitor.log"), errors="replace") as f:
            text = f.read()
        if text.strip():
            print(f"--- {r.root}/run/monitor.log ---\n{text}")
    except OSError:
        pass
    ids = r.container_ids()
    if ids:
        r("rm", "-f", *ids, check=False, timeout=120)
    for cid in r.container_ids() + ids:
        for pid in cgroup_pids(cid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in cgroup_dirs(cid):
            deadline = time.monotonic() + 5
            while os.path.isdir(path):
                try:
                    os.rmdir(path)
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
    kill_monitor(r.root)


# -- processes, cgroups, namespaces ------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def monitor_pids(root: str) -> list[int]:
    """Pids of the monitor process serving ``root`` (matched on its exact argv)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = cmdline(int(entry))
            if len(argv) >= 3 and argv[-3:] == ["-m", "layergit.runtime.monitor", root]:
                out.append(int(entry))
    return out


def kill_monitor(root: str, timeout: float = 5.0) -> None:
    for pid in monitor_pids(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while monitor_pids(root) and time.monotonic() < deadline:
        time.sleep(0.02)


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def cgroup_dirs(cid: str) -> list[str]:
    """The container's cgroup directories that exist now, in every hierarchy."""
    return sorted(p for p in glob.glob(os.path.join(CGROUP_ROOT, "*", "layergit", cid)) + glob.glob(os.path.join(CGROUP_ROOT, "layergit", cid)) if os.path.isdir(p))


def cgroup_pids(cid: str) -> list[int]:
    pids = set()
    for path in cgroup_dirs(cid):
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids |= {int(p) for p in f.read().split()}
        except OSError:
            pass
    return sorted(pids)


def all_layergit_cgroups() -> set[str]:
    return {p for p in glob.glob(os.path.join(CGROUP_ROOT, "*", "layergit", "*")) + glob.glob(os.path.join(CGROUP_ROOT, "layergit", "*")) if os.path.isdir(p)}


def host_ns(kind: str) -> str:
    """The host's namespace of ``kind`` (this test process runs in the host's namespaces; /proc/1/ns is
    not readable in this VM's sandbox)."""
    return os.readlink(f"/proc/self/ns/{kind}")


def mountinfo_lines() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


# -- "nothing left behind" -------------------------------------------------------------


def snapshot(r: RuntimeLg) -> dict:
    """What a failed or removed container could leave behind in this root and on the host."""
    refs = subprocess.run(
        ["git", "--git-dir", os.path.join(r.root, "store.git"), "for-each-ref", "--format=%(refname)", "refs/layergit/"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    by_name = os.path.join(r.containers_dir, "by-name")
    return {
        "containers": r.container_ids(),
        # "locks" holds one lock file per live container (removed with it) and appears with the first one.
        "entries": sorted(e for e in os.listdir(r.containers_dir) if e != "locks") if os.path.isdir(r.containers_dir) else [],
        "locks": sorted(os.listdir(os.path.join(r.containers_dir, "locks"))) if os.path.isdir(os.path.join(r.containers_dir, "locks")) else [],
        "names": sorted(os.listdir(by_name)) if os.path.isdir(by_name) else [],
        "refs": sorted(refs),
        "ps": r.out("ps", "-a", "-q", timeout=60),
        "cgroups": all_layergit_cgroups(),
    }


def _empty_cgroup(path: str) -> bool:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return not f.read().split()
    except OSError:
        return False


def assert_nothing_left(r: RuntimeLg, before: dict) -> None:
    """No new container dir, name, ref, ps row, or cgroup since ``before``.

    Other people's containers (other roots on this machine) come and go, so a new
    cgroup counts as ours only if it persists for a second and holds no process
    (what a cgroup left behind by a failed start looks like).
    """
    after = snapshot(r)
    for key in ("containers", "entries", "names", "refs", "ps"):
        assert after[key] == before[key], f"{key} changed: {before[key]!r} -> {after[key]!r}"
    new = after["cgroups"] - before["cgroups"]
    deadline = time.monotonic() + 1.0
    while new and time.monotonic() < deadline:
        time.sleep(0.1)
        new = {p for p in new if os.path.isdir(p)}
    leaked = sorted(p for p in new if _empty_cgroup(p))
    assert not leaked, f"cgroups left behind: {leaked}"


def image_id(r: RuntimeLg, rev: str) -> str:
    return r.inspect(rev)["Id"]
