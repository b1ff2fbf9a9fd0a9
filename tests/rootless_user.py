"""A real unprivileged user with a subordinate id range, made for a test and removed after.

lg without root is tested as a user would meet it: a login made by useradd, a range
in /etc/subuid and /etc/subgid added by usermod, lg started through setpriv with
that user's ids and groups and a plain environment (no XDG_RUNTIME_DIR, as under
runuser or cron). The user runs this checkout's code and the shared interpreter,
which are world-readable; everything it makes lives in its home under /var/tmp.
On the way out every process of the user is killed by pid (its pause process, a
monitor, containers), the ids are released and the home removed, even on failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass

import pytest

from .conftest import REPO, Lg, cleanup_root

RANGE = 65536
# The test's interpreter may live where other users cannot reach it (a pyenv under /root):
# the user runs the system's python3 of the same version on the same site-packages.
PYTHON = "/usr/bin/python3"
SITE = sysconfig.get_paths()["purelib"]


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    subuid: int  # the host id of uid 1 inside the namespace
    subgid: int

    def host_uid(self, inside: int) -> int:
        return self.uid if inside == 0 else self.subuid + inside - 1

    def host_gid(self, inside: int) -> int:
        return self.gid if inside == 0 else self.subgid + inside - 1

    def env(self, **extra: str) -> dict:
        env = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name, "PATH": os.environ["PATH"],
               "PYTHONPATH": f"{REPO}:{SITE}", "COLUMNS": "200", "LANG": "C.UTF-8"}
        env.update(extra)
        return env

    def run(self, *argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """A command as this user (not lg)."""
        kw.setdefault("env", self.env())
        proc = subprocess.run([*self.prefix(), *argv], capture_output=True, cwd=REPO, **kw)
        if check and proc.returncode:
            raise AssertionError(f"{argv} as {self.name} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        return proc

    def prefix(self) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--"]

    def lg(self, name: str) -> Lg:
        """lg as this user with a root of its own in its home."""
        root = os.path.join(self.home, "roots", name)
        runner = _UserLg(root, self)
        return runner


class _UserLg(Lg):
    def __init__(self, root: str, user: User):
        super().__init__(root, PYTHON, tuple(user.prefix()))
        self.user = user

    def env(self, **extra) -> dict:
        return self.user.env(LG_ROOT=self.root, **extra)

    def __call__(self, *args, **kw):
        kw.setdefault("cwd", REPO)
        return super().__call__(*args, **kw)


def _free_range(path: str) -> int:
    """A start above every range in the subordinate id file."""
    top = 1 << 20
    with open(path) as f:
        for line in f:
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                top = max(top, int(fields[1]) + int(fields[2]))
    return (top // RANGE + 1) * RANGE


def _drop_ranges(name: str) -> None:
    for path in ("/etc/subuid", "/etc/subgid"):
        subprocess.run(["sed", "-i", f"/^{name}:/d", path], check=False)


def _kill_user_processes(uid: int) -> None:
    for _ in range(50):
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        pids.append(int(entry))
                except OSError:
                    pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _make_user(with_range: bool) -> User:
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv to make an unprivileged user")
    version = subprocess.run([PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if version.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip(f"{PYTHON} is not python {sys.version_info[0]}.{sys.version_info[1]}: another user cannot run lg")
    name = f"lgrl{secrets.token_hex(4)}"
    home = tempfile.mkdtemp(prefix=f"{name}-", dir="/var/tmp")
    subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", name], check=True, capture_output=True)
    try:
        import pwd

        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        _drop_ranges(name)  # useradd may have given one by login.defs: ours is the test's alone
        start = 0
        if with_range:
            start = max(_free_range("/etc/subuid"), _free_range("/etc/subgid"))
            span = f"{start}-{start + RANGE - 1}"
            subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name], check=True, capture_output=True)
        return User(name, pw.pw_uid, pw.pw_gid, home, start, start)
    except BaseException:
        _remove_user(name, home, None)
        raise


def _remove_user(name: str, home: str, uid: int | None) -> None:
    if uid is not None:
        _kill_user_processes(uid)
    subprocess.run(["userdel", name], check=False, capture_output=True)
    _drop_ranges(name)  # userdel keeps them on some versions
    shutil.rmtree(home, ignore_errors=True)
    if uid is not None:
        shutil.rmtree(f"/tmp/layergit-run-{uid}", ignore_errors=True)  # lg's run directory without XDG_RUNTIME_DIR


def _made(with_range: bool):
    user = _make_user(with_range)
    try:
        yield user
    finally:
        _remove_user(user.name, user.home, user.uid)


@pytest.fixture(scope="module")
def rootless_user():
    yield from _made(with_range=True)


@pytest.fixture(scope="module")
def rangeless_user():
    """A user with no subordinate ids at all."""
    yield from _made(with_range=False)


@pytest.fixture
def ulg(rootless_user, request):
    """lg as the rootless user, with a root of this test's own, cleaned up after."""
    runner = rootless_user.lg(f"{request.node.name[:40]}-{secrets.token_hex(3)}")
    try:
        yield runner
    finally:
        cleanup_root(runner)
        runner("unshare", "rm", "-rf", runner.root, check=False)  # files of subordinate ids: removable inside
