"""lg installed as a tool (issue 20): ``pipx install`` of this checkout gives a working lg.

The checkout is copied first (without its venv, git directory and caches), because a
build in place would leave build/ and *.egg-info in the tree the suite runs from.
pipx makes a venv of its own with the system's python3 and installs lg's dependencies
from the package index, as a user's machine would; the lg it links then commits an
image and runs a container, which needs every file the package ships (the exec
trampoline, the seccomp filter's source, the systemd units) and none from this tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from .conftest import REPO, Lg, cleanup_root

pytestmark = pytest.mark.root  # lg run needs root; pipx itself would not


@pytest.fixture(scope="module")
def installed():
    if not shutil.which("pipx"):
        pytest.skip("pipx is not installed (bootstrap.sh installs it)")
    top = tempfile.mkdtemp(prefix="lg-pipx-")
    try:
        src = os.path.join(top, "src")
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
            ".venv", ".git", "__pycache__", "*.egg-info", "build", ".*_cache", ".hypothesis"))
        env = dict(os.environ, PIPX_HOME=os.path.join(top, "pipx"), PIPX_BIN_DIR=os.path.join(top, "bin"))
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(["pipx", "install", "--python", "/usr/bin/python3", src], env=env,
                              capture_output=True, text=True, cwd=top)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield os.path.join(top, "bin", "lg")
    finally:
        shutil.rmtree(top, ignore_errors=True)


class _InstalledLg(Lg):
    """The pipx lg, run as a user runs it: its own script, no PYTHONPATH into this tree."""

    def __init__(self, root: str, script: str):
        super().__init__(root)
        self.script = script

    def __call__(self, *args, check: bool = True, **kw) -> subprocess.CompletedProcess:
        env = self.env()
        env.pop("PYTHONPATH", None)
        proc = subprocess.run([self.script, *map(str, args)], capture_output=True, env=env, cwd="/", **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"lg {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                                 f"{proc.stderr.decode(errors='replace')}")
        return proc


def test_pipx_install_gives_a_working_lg(installed, tmp_path, busybox_rootfs):
    lg = _InstalledLg(str(tmp_path / "root"), installed)
    try:
        python = os.path.join(os.path.dirname(os.path.realpath(installed)), "python")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        where = subprocess.run([python, "-c", "import layergit; print(layergit.__file__)"], capture_output=True,
                               text=True, env=env, cwd="/")
        assert not where.stdout.startswith(REPO), where.stdout  # the installed package, not this tree
        assert lg.out("--version").startswith("lg, version ")
        info = lg.out("info")
        for program in ("git", "nft", "newuidmap"):
            assert any(line.split(":")[0].strip() == program and "/" in line for line in info.splitlines()), info
        lg("commit", busybox_rootfs, "-t", "bb:1")
        assert lg.out("run", "--rm", "--network", "none", "bb:1", "echo", "from", "pipx") == "from pipx\n"
    finally:
        cleanup_root(lg)
