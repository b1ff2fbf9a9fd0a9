"""The rules that run: lint (ruff) over the whole tree, types (mypy) over the code that keeps them.

Both tools are pinned in pyproject.toml's ``test`` extra (bootstrap.sh installs it) and
read their settings from pyproject.toml, so running them by hand gives the same answer.
A failure shows the tool's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(*argv: str) -> subprocess.CompletedProcess:
    """Run a tool installed in this interpreter's environment (the checkout's venv)."""
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=REPO)
    assert "No module named" not in proc.stderr, f"{argv[0]} is missing: run ./bootstrap.sh test ({proc.stderr.strip()})"
    return proc


def test_ruff_finds_nothing():
    proc = _tool("ruff", "check", "--no-fix", ".")
    assert proc.returncode == 0, f"ruff check .:\n{proc.stdout}{proc.stderr}"


def test_mypy_finds_nothing():
    proc = _tool("mypy")
    assert proc.returncode == 0, f"mypy:\n{proc.stdout}{proc.stderr}"
