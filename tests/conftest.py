"""Shared fixtures: a throw-away layergit root per test, the lg command, the busybox rootfs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A suite started in the background (`nohup ... &`, a CI runner's job) inherits SIGINT
# ignored, and every lg it starts would too: exec keeps an ignored signal ignored, so the
# tests that interrupt lg as Ctrl-C does would see it carry on. A handler here (not an
# ignore) makes each child start with SIGINT at its default, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (CI runs as root)")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


class Lg:
    """Runs ``lg`` as a user would, against this test's own root."""

    def __init__(self, root: str, python: str = sys.executable, prefix: tuple[str, ...] = ()):
        self.root = root
        self.python = python  # the interpreter lg runs on (a test may give it a copy to watch)
        self.prefix = list(prefix)  # what lg runs under (setpriv as another user)

    def env(self, **extra) -> dict:
        env = dict(os.environ, LG_ROOT=self.root, COLUMNS="200")
        env.pop("LG_DEBUG", None)
        env.update(extra)
        return env

    def __call__(self, *args, check: bool = True, input: bytes | None = None, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.prefix, self.python, "-m", "cli", *map(str, args)], input=input, capture_output=True, env=env or self.env(), **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"lg {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
        return proc

    def out(self, *args, **kw) -> str:
        return self(*args, **kw).stdout.decode()

    def fails(self, *args, code: int | None = None, **kw) -> str:
        """Run an lg command that must fail; returns its stderr (one line expected)."""
        proc = self(*args, check=False, **kw)
        assert proc.returncode != 0, f"lg {' '.join(map(str, args))} unexpectedly succeeded"
        if code is not None:
            assert proc.returncode == code, (proc.returncode, proc.stderr)
        err = proc.stderr.decode()
        assert err.strip() and len(err.strip().splitlines()) == 1, f"expected one line on stderr, got: {err!r}"
        return err


def cleanup_root(runner: Lg) -> None:
    """Leave nothing of a test's root on the host: containers, bridges, rules, monitor."""
    root = runner.root
    if os.path.isdir(os.path.join(root, "containers")):
        ids = runner("ps", "-aq", check=False).stdout.decode().split()
        if ids:
            runner("rm", "-f", *ids, check=False)
    if os.path.isdir(os.path.join(root, "networks")):
        runner("network", "prune", check=False)
    subprocess.run(["pkill", "-f", f"layergit.runtime.monitor {root}$"], check=False)


@pytest.fixture
def lg(tmp_path) -> Lg:
    root = tmp_path / "lgroot"
    runner = Lg(str(root))
    yield runner
    cleanup_root(runner)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_rootfs() -> str:
    """The busybox fixture rootfs (built by fixtures/busybox.sh, cached)."""
    path = os.environ.get("LG_FIXTURE_BUSYBOX")
    if not path or not os.path.isdir(path):
        out = subprocess.run(["bash", os.path.join(REPO, "fixtures", "busybox.sh")], check=True, capture_output=True, text=True).stdout
        path = out.strip().splitlines()[-1]
    return path


@pytest.fixture
def busybox_copy(tmp_path, busybox_rootfs) -> str:
    """A private, writable copy of the busybox rootfs."""
    dest = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", busybox_rootfs, str(dest)], check=True)
    return str(dest)


@pytest.fixture
def outside(tmp_path):
    """A directory next to a source tree that a snapshot must never read through a link."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_bytes(b"outside the tree: must never be captured\n")
    return d
