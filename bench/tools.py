"""Where `lg` and its peers are, what they support, and which versions ran.

`lg` is timed as installed (the console script on PATH, an editable install of this
checkout), not imported: start-up cost is part of what users pay. One wrinkle: on a
pyenv machine the `lg` on PATH is a bash shim that runs `pyenv exec`, which costs
more than lg itself starts in. The shim is not lg's cost, so we resolve past it to
the real console script and time the shim only as one extra, labelled start-up row.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Peers of the container scenarios (7-15): podman (with runc, DESIGN.md), bare runc, and
# the HTTP load generators of the port scenario; skopeo and docker-registry for the
# registry scenarios (22-23). Not needed by scenarios 1-6.
OPTIONAL = ("podman", "runc", "wrk", "curl", "skopeo", "docker-registry")


class ToolMissing(Exception):
    """A program the harness cannot do without (hyperfine is optional; these are not)."""


def _is_pyenv_shim(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyenv" in head and b"exec" in head


def _pyenv_shim_for(name: str) -> str | None:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d.endswith("/shims")]
    for d in dict.fromkeys(dirs + [os.path.join(root, "shims")]):
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK) and _is_pyenv_shim(candidate):
            return candidate
    return None


def _shebang_python(path: str) -> str | None:
    """The interpreter a console script runs on, from its `#!` line."""
    try:
        with open(path, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        return shutil.which(words[1])
    return words[0] if "python" in os.path.basename(words[0]) else None


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


@dataclass
class Tools:
    """The commands the scenarios run, resolved once per harness run."""

    lg: list[str]                 # argv prefix that runs lg
    lg_note: str                  # how lg was found, for the report header
    lg_shim: str | None           # the pyenv shim on PATH, if we resolved past one
    python: str                   # the interpreter lg runs on: the start-up floor
    hyperfine: str | None         # None: fall back to timing in Python
    paths: dict[str, str] = field(default_factory=dict)  # ostree, git, tar, cp; podman, runc, ... if found

    @classmethod
    def find(cls, lg_override: str | None = None) -> "Tools":
        paths = {}
        for name in ("ostree", "git", "tar", "cp"):
            found = shutil.which(name)
            if not found:
                raise ToolMissing(f"{name} not found on PATH (apt-get install {name})")
            paths[name] = found
        # The container scenarios' peers: optional, their rows say "not available" without them.
        for name in OPTIONAL:
            found = shutil.which(name)
            if found:
                paths[name] = found
        lg, note, shim, python = cls._find_lg(lg_override)
        return cls(lg=lg, lg_note=note, lg_shim=shim, python=python,
                   hyperfine=shutil.which("hyperfine"), paths=paths)

    @staticmethod
    def _find_lg(override: str | None):
        if override:
            argv = shlex.split(override)
            exe = shutil.which(argv[0]) or argv[0]
            return [exe, *argv[1:]], f"--lg {override}", None, _shebang_python(exe) or sys.executable
        venv = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv", "bin", "lg")
        if os.access(venv, os.X_OK):  # what bootstrap.sh installed for this checkout (and linked onto PATH)
            python = _shebang_python(venv) or sys.executable
            return [venv], f"{venv} (this checkout's venv, from bootstrap.sh)", None, python
        on_path = shutil.which("lg")
        if on_path is None:
            # Not installed: run the CLI from this checkout, as `python3 -m cli` would.
            argv = [sys.executable, "-m", "cli"]
            return argv, f"{sys.executable} -m cli (no lg on PATH)", None, sys.executable
        if _is_pyenv_shim(on_path):
            real = subprocess.run(["pyenv", "which", "lg"], capture_output=True, text=True)
            if real.returncode == 0 and real.stdout.strip():
                exe = real.stdout.strip()
                python = _shebang_python(exe) or sys.executable
                return [exe], f"{exe} (resolved past the pyenv shim {on_path})", on_path, python
        # Started through pyenv ourselves (bench/run's `env python3` is a shim too), PATH
        # already leads to the real script; the user's shell would still meet the shim.
        shim = _pyenv_shim_for("lg")
        note = f"{on_path} (a user's shell runs the pyenv shim {shim} first)" if shim else on_path
        return [on_path], note, shim, _shebang_python(on_path) or sys.executable

    def __getitem__(self, name: str) -> str:
        return self.paths[name]

    def has(self, name: str) -> bool:
        return name in self.paths

    def lg_command_works(self, command: str) -> str | None:
        """None if `lg COMMAND --help` works, else why not (lg build is written in parallel)."""
        out = subprocess.run([*self.lg, command, "--help"], capture_output=True, text=True)
        if out.returncode == 0:
            return None
        lines = [ln.strip() for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
        return f"`lg {command} --help` exits {out.returncode}" + (f": {lines[-1]}" if lines else "")

    def lg_supports(self, command: str, flag: str) -> bool:
        """Whether `lg COMMAND --help` lists FLAG: lg grows while the harness runs."""
        out = subprocess.run([*self.lg, command, "--help"], capture_output=True, text=True)
        listed = re.search(rf"(^|[\s,]){re.escape(flag)}\b", out.stdout, re.M)
        return out.returncode == 0 and listed is not None

    def lg_code(self) -> str:
        """Where lg's interpreter imports layergit from. An editable install follows
        whoever ran `pip install -e` last: on a shared machine a CI clone elsewhere can
        take over the `lg` being timed in the middle of a run, so the harness checks."""
        script = "import layergit, os; print(os.path.dirname(layergit.__file__))"
        out = subprocess.run([self.python, "-c", script], capture_output=True, text=True, cwd="/")
        if out.stdout.strip():
            return out.stdout.strip()
        return f"unknown ({out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode})"

    def compile_bytecode(self) -> None:
        """Byte-compile the code lg runs, as an installed package is: where
        PYTHONDONTWRITEBYTECODE is set (this VM's shell sets it) a file edited since the
        last compile would otherwise be compiled again by every timed lg command. Forced
        (-f): compileall skips a file whose bytecode records its mtime, though Python also
        compares sizes, so an edit within the second of the last compile (a git stash and
        pop) left a module that every import compiled again, 10 ms of each lg run."""
        code = self.lg_code()
        if os.path.isdir(code):
            cli = os.path.join(os.path.dirname(code), "cli")
            subprocess.run([self.python, "-m", "compileall", "-f", "-q", code, cli],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def versions(self) -> dict[str, str]:
        v = {
            "lg": _first_line([*self.lg, "--version"]),
            "python (lg's)": _first_line([self.python, "--version"]),
            "ostree": "ostree " + _ostree_version(self["ostree"]),
            "git": _first_line([self["git"], "--version"]),
            "tar": _first_line([self["tar"], "--version"]),
        }
        if self.has("podman"):
            v["podman"] = _first_line([self["podman"], "--version"])
        if self.has("runc"):
            v["runc"] = _first_line([self["runc"], "--version"])
        if self.has("wrk"):
            v["wrk"] = " ".join(_first_line([self["wrk"], "--version"]).split()[:2])
        if self.hyperfine:
            v["hyperfine"] = _first_line([self.hyperfine, "--version"])
        else:
            v["hyperfine"] = "no hyperfine (Python timer)"
        return v


def _ostree_version(ostree: str) -> str:
    out = subprocess.run([ostree, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Version:\s*'?([^'\s]+)", out)
    return m.group(1) if m else "unknown"


def checkout_revision() -> str:
    """The commit of this checkout, read-only (never `git status`: it may rewrite the index,
    and other people work in this checkout)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True, env=env)
    return out.stdout.strip() or "unknown"
