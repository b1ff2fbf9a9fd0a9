"""The architecture in DESIGN.md, enforced: import direction and single owners.

cli -> porcelain -> store / fs / runtime; only store/repo.py touches pygit2, only
runtime/network.py pyroute2, only transport/ dulwich; and start-up stays light.
"""

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules(package: str):
    base = os.path.join(REPO, *package.split("."))
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                yield rel, path


def _imports(module: str, path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    pkg = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
                out.add(target)
                if not node.module:
                    out.update(f"{base}.{a.name}" for a in node.names)
            else:
                out.add(node.module)
    return out


FORBIDDEN = {
    "layergit.store": ["layergit.porcelain", "layergit.fs", "layergit.runtime", "layergit.transport", "cli", "click", "rich"],
    "layergit.fs": ["layergit.porcelain", "layergit.runtime", "layergit.transport", "cli", "click", "rich", "pygit2"],
    "layergit.runtime": ["layergit.porcelain", "layergit.store", "layergit.transport", "cli", "click", "rich", "pygit2", "dulwich"],
    "layergit.porcelain": ["cli", "click", "rich", "pygit2", "pyroute2", "dulwich"],
}
OWNERS = {"pygit2": ["layergit.store.repo"], "pyroute2": ["layergit.runtime.network"], "dulwich": ["layergit.transport"]}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    bad = []
    for module, path in _modules(package):
        for imp in _imports(module, path):
            for forbidden in FORBIDDEN[package]:
                if imp == forbidden or imp.startswith(forbidden + "."):
                    bad.append(f"{module} imports {imp}")
    assert not bad, "\n".join(bad)


def test_single_owners():
    bad = []
    for package in ("layergit", "cli"):
        for module, path in _modules(package):
            for imp in _imports(module, path):
                for lib, owners in OWNERS.items():
                    if (imp == lib or imp.startswith(lib + ".")) and not any(module == o or module.startswith(o + ".") for o in owners):
                        bad.append(f"{module} imports {imp}; only {owners} may")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("argv", [["--help"], ["commit", "--help"]])
def test_startup_imports_stay_light(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['lg'] + {argv!r}\n"
        "import cli.main\n"
        "try:\n    cli.main.main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('pygit2', 'pyroute2', 'dulwich', 'rich') if m in sys.modules)\n"
        "print(','.join(heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"lg {' '.join(argv)} imported {proc.stderr.strip()}"


def test_api_import_is_light():
    proc = subprocess.run([sys.executable, "-c", "import sys, layergit.api; print(','.join(m for m in ('pygit2','pyroute2','dulwich','rich','click') if m in sys.modules))"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
