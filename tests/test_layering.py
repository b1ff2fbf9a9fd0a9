"""The architecture in DESIGN.md, enforced: import direction and single owners.

cli -> porcelain and build -> store / fs / runtime; only store/store.py touches pygit2,
only runtime/net/link.py pyroute2, only transport/ dulwich; and start-up stays light.
build/ (the Dockerfile engine) sits beside porcelain: it uses porcelain's Repo and
containers for its steps, and porcelain uses only build.changes (``lg commit -c``).
"""

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _modules(package: str, root: str = REPO):
    base = os.path.join(root, *package.split("."))
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                yield rel, path


def _imports(module: str, path: str) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    pkg = module.rsplit(".", 1)[0]  # a module's package; for "P.__init__", P itself
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
    "layergit.store": ["layergit.porcelain", "layergit.build", "layergit.fs", "layergit.runtime", "layergit.transport", "cli", "click", "rich"],
    "layergit.fs": ["layergit.porcelain", "layergit.build", "layergit.runtime", "layergit.transport", "cli", "click", "rich", "pygit2"],
    "layergit.runtime": ["layergit.porcelain", "layergit.build", "layergit.store", "layergit.transport", "cli", "click", "rich", "pygit2", "dulwich"],
    "layergit.porcelain": ["cli", "click", "rich", "pygit2", "pyroute2", "dulwich"],
    "layergit.build": ["layergit.transport", "cli", "click", "rich", "pygit2", "pyroute2", "dulwich"],
    "layergit.transport": ["layergit.porcelain", "layergit.build", "layergit.fs", "layergit.runtime", "cli", "click", "rich", "pygit2", "pyroute2"],
}
OWNERS = {"pygit2": ["layergit.store.store"], "pyroute2": ["layergit.runtime.net.link"], "dulwich": ["layergit.transport"]}

# Networking is reached through its facade (net.controller), its records (net.ipam) and
# its values (the package itself); the kernel-facing modules are the controller's steps.
# The exceptions: runtime/network.py and firewall.py, the old paths a monitor started by
# the previous lg imports late, name what moved (delete them with the two modules).
NET = "layergit.runtime.net"
NET_ENTRY_POINTS = {NET, f"{NET}.controller", f"{NET}.ipam"}
NET_EXTRA = {
    "layergit.runtime.network": {f"{NET}.link"},
    "layergit.runtime.firewall": {f"{NET}.firewall"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    bad = []
    for module, path in _modules(package):
        for imp in _imports(module, path):
            for forbidden in FORBIDDEN[package]:
                if imp == forbidden or imp.startswith(forbidden + "."):
                    bad.append(f"{module} imports {imp}")
    assert not bad, "\n".join(bad)


def test_network_is_reached_through_its_facade():
    bad = []
    for module, imports in _import_graph().items():
        if module != NET and not module.startswith(NET + "."):
            allowed = NET_ENTRY_POINTS | NET_EXTRA.get(module, set())
            bad += [f"{module} imports {imp}" for imp in imports if imp.startswith(NET + ".") and imp not in allowed]
    assert not bad, "\n".join(bad)


def test_network_bookkeeping_calls_no_kernel():
    """net.ipam (networks and leases on disk) reaches no kernel-facing module, so it can be
    read anywhere and tested in-process; the controller runs the kernel's steps around it."""
    kernel = {f"{NET}.link", f"{NET}.firewall", f"{NET}.sockredirect", f"{NET}.portproxy", f"{NET}.controller",
              "layergit.runtime.syscalls", "layergit.runtime.cgroups"}
    graph = _import_graph()
    reached, todo = set(), [f"{NET}.ipam"]
    while todo:
        for imp in graph[todo.pop()]:
            if imp not in reached:
                reached.add(imp)
                todo.append(imp)
    assert not reached & kernel, f"{NET}.ipam reaches {sorted(reached & kernel)}"


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


# -- import cycles ------------------------------------------------------------------------

def _module_name(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _import_graph(packages=("layergit", "cli"), root: str = REPO) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}, for modules of ``packages``.

    Every import counts wherever it is: at the top, inside a function (imported late for
    start-up time, still a dependency) or under TYPE_CHECKING (two modules that name each
    other's types are one module in two files). ``from P import X`` depends on P.X when
    that is a module, else on P.
    """
    paths = {}
    for package in packages:
        for _, path in _modules(package, root):
            paths[_module_name(path, root)] = path
    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        is_package = path.endswith("__init__.py")
        edges = graph.setdefault(module, {})
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = module.split(".") if is_package else module.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            for target in targets:
                while target and target not in paths:  # "import a.b.c" of a non-module: its package
                    target = target.rpartition(".")[0]
                if target and target != module and target not in edges:
                    edges[target] = node.lineno
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle_path(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    """One shortest cycle through the first module of ``component``, with import lines."""
    start = component[0]
    members = set(component)
    came_from: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                path.reverse()
                steps = [f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:] + [start], strict=True)]
                return " -> ".join(steps + [start])
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    return " <-> ".join(component)


def test_graph_sees_every_kind_of_import(tmp_path):
    """The parser behind the cycle check: absolute, relative, package-relative, late and
    TYPE_CHECKING imports all become edges to the module they load."""
    pkg = tmp_path / "layergit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("import layergit.sub.b\nfrom .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    graph = _import_graph(("layergit",), str(tmp_path))
    assert graph == {
        "layergit": {"layergit.a": 1},
        "layergit.a": {"layergit.sub.b": 1, "layergit.sub.c": 2},
        "layergit.sub": {"layergit.sub.b": 1},
        "layergit.sub.b": {"layergit.a": 2},
        "layergit.sub.c": {"layergit.a": 3},
    }
    assert sorted(_cycles(graph)) == [["layergit.a", "layergit.sub.b", "layergit.sub.c"]]
    assert _cycle_path(graph, ["layergit.a", "layergit.sub.b", "layergit.sub.c"]) == (
        "layergit.a (line 1) -> layergit.sub.b (line 2) -> layergit.a"
    )


def test_no_import_cycles():
    graph = _import_graph()
    found = [_cycle_path(graph, c) for c in _cycles(graph)]
    assert not found, "import cycles (move the shared part down, or import in one direction only):\n" + "\n".join(found)
