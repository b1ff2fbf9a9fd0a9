"""The rules that run: lint (ruff) and types (mypy) over the code that already keeps them.

Both tools are pinned in pyproject.toml's ``test`` extra (bootstrap.sh installs it) and
read their settings from pyproject.toml, so running them by hand gives the same answer.
A failure shows the tool's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Paths ruff must find clean. The rest of the code joins this list once it is clean:
# layergit/porcelain, the rest of layergit/runtime, layergit/flock.py and cli/ after the moves under
# way land, then layergit/api.py and layergit/__init__.py. (mypy's list is
# ``files`` in pyproject.toml's [tool.mypy].)
RUFF_PATHS = [
    "layergit/store",
    "layergit/fs",
    "layergit/errors.py",
    "layergit/root.py",
    "layergit/removal.py",
    "layergit/build",
    "layergit/runtime/bpf",
    "layergit/runtime/net/firewall.py",
    "layergit/runtime/net/portproxy.py",
    "layergit/runtime/net/sockredirect.py",
    "layergit/runtime/net/link.py",
    "layergit/runtime/net/hostsfile.py",
    "layergit/runtime/cgroups.py",
    "layergit/runtime/syscalls.py",
    "layergit/runtime/security.py",
    "layergit/runtime/users.py",
    "layergit/runtime/rootfs.py",
    "bench",
    "tests",
]


def _tool(*argv: str) -> subprocess.CompletedProcess:
    """Run a tool installed in this interpreter's environment (the checkout's venv)."""
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=REPO)
    assert "No module named" not in proc.stderr, f"{argv[0]} is missing: run ./bootstrap.sh test ({proc.stderr.strip()})"
    return proc


def test_ruff_finds_nothing():
    proc = _tool("ruff", "check", "--no-fix", *RUFF_PATHS)
    assert proc.returncode == 0, f"ruff check {' '.join(RUFF_PATHS)}:\n{proc.stdout}{proc.stderr}"


def test_mypy_finds_nothing():
    proc = _tool("mypy")
    assert proc.returncode == 0, f"mypy:\n{proc.stdout}{proc.stderr}"
