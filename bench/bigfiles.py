"""Scenario 16 (issue 13): a tree holding one 4 GB file, dense and sparse, through lg
commit, checkout, export and import: wall time and peak RSS of each.

The goal is bounded memory: peak RSS under 200 MB whatever the file's size, because
content is streamed (read, hashed, deflated, inflated and written in pieces) rather
than held whole. Every timed command runs under `helper.py peak-rss`, which records its
peak RSS the way `/usr/bin/time -v` does (wait4's ru_maxrss); the timed figure includes
that wrapper's start-up (a few tens of ms, against runs of seconds). The notes also
give each command's CPU time (user + system), which a busy machine disturbs less than
wall time.

The dense file is incompressible (one random MiB repeated: further apart than
deflate's window, so nothing matches); the sparse one is 4 GiB of holes with four 1 MiB
islands of data. Both are made once in set-up, as are the commits checkout and export
start from and the archives import reads (lg's own docker-archive export).

Unlike the other scenarios, prepares delete the previous run's output: each is one
4 GB file (not thousands of inodes, see scenarios.retire), and keeping them would fill
the scratch filesystem. Export's prepare also empties lg's layer cache, so every run
writes its layer. No warm-up runs: set-up ran the same commands on the same data.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

from .report import Spread, judge
from .scenarios import Context, Scenario, SetupFailed, q
from .timing import Case

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper.py")
SIZE = 4 << 30
MIB = 1 << 20
ISLANDS = (0, 1 << 30, 3 << 30, SIZE - MIB)
RSS_LIMIT_MB = 200
COMMANDS = ("commit", "checkout", "export", "import")


def make_dense(path: str) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(SIZE // MIB):
            f.write(block)


def make_sparse(path: str) -> None:
    with open(path, "wb") as f:
        for at in ISLANDS:
            f.seek(at)
            f.write(os.urandom(MIB))
        f.truncate(SIZE)


def label(kind: str, command: str) -> str:
    return f"lg {command}, 4 GB {kind} file"


def peak_rss_case(
    ctx: Context, figures, name: str, args: list, root, prepare: str, broken: str | None
) -> Case:
    """A row that runs ``lg ARGS`` in ``root`` under helper.py peak-rss (its figures go to
    ``figures``), with no warm-up and ``prepare`` (then sync) before each run."""
    argv = [sys.executable, HELPER, "peak-rss", str(figures), name, "--", *ctx.lg(*args)]
    return Case("lg", name, argv, prepare=f"{prepare} && sync", env={"LG_ROOT": str(root)},
                broken=broken, warmup=False)


def build_big_file(ctx: Context) -> list[Case]:
    figures = ctx.path("peak-rss.jsonl")
    cases = []
    for kind, make in (("dense", make_dense), ("sparse", make_sparse)):
        src = ctx.path(f"src-{kind}")
        src.mkdir()
        ctx.log(f"[big-file] writing the 4 GB {kind} file")
        make(str(src / "big"))
        made = ctx.path(f"lg-{kind}")  # the commit that checkout and export start from
        archive = ctx.path(f"{kind}.tar")  # the archive import reads
        broken = None
        try:
            ctx.run(ctx.lg("commit", src, "-t", "big:1"), {"LG_ROOT": str(made)}, f"lg commit ({kind})")
            ctx.run(ctx.lg("export", "big:1", "-o", archive), {"LG_ROOT": str(made)}, f"lg export ({kind})")
        except SetupFailed as exc:
            broken = str(exc)
        fresh, dest, out = ctx.path(f"root-{kind}"), ctx.path(f"dest-{kind}"), ctx.path(f"out-{kind}.tar")
        layers = made / "cache" / "layers"
        rows = {
            "commit": (["commit", src, "-t", "big:1"], fresh, f"rm -rf {q(fresh)}"),
            "checkout": (["checkout", "big:1", dest], made, f"rm -rf {q(dest)}"),
            "export": (["export", "big:1", "-o", out], made, f"rm -rf {q(out)} {q(layers)}"),
            "import": (["import", archive, "-t", "big:2"], fresh, f"rm -rf {q(fresh)}"),
        }
        for command in COMMANDS:
            args, root, prepare = rows[command]
            cases.append(peak_rss_case(ctx, figures, label(kind, command), args, root, prepare, broken))

    def memory():
        records = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
        ctx.figures["peak_rss"] = records
        worst = None
        for kind in ("dense", "sparse"):
            parts = []
            for command in COMMANDS:
                ok = [r for r in records if r["label"] == label(kind, command) and r["status"] == 0]
                if ok:
                    spread = Spread.of(r["maxrss_kb"] / 1024 for r in ok)
                    cpu = Spread.of(r["cpu_s"] for r in ok)
                    parts.append(f"{command} {spread.text(unit=' MB')}, CPU {cpu.text('{:.1f}', ' s')}")
                    worst = spread if worst is None or spread.hi > worst.hi else worst
            ctx.note(f"peak RSS and CPU time (user + system), 4 GB {kind} file: "
                     + ("; ".join(parts) or "no successful run"))
        if worst is not None:
            ctx.check(f"peak RSS under {RSS_LIMIT_MB} MB for commit, checkout, export, import of a 4 GB file "
                      "(issue 13)", f"highest {worst.text(unit=' MB')}",
                      judge(worst.lo, worst.hi, RSS_LIMIT_MB), worst.median <= RSS_LIMIT_MB)

    ctx.after.append(memory)
    sizes = {kind: os.stat(ctx.path(f"src-{kind}") / "big").st_blocks * 512 / 1e9
             for kind in ("dense", "sparse")}
    ctx.note("on disk: " + ", ".join(f"the {kind} file {gb:.2f} GB" for kind, gb in sizes.items()))
    ctx.note("commands: " + shlex.join(ctx.lg("export", "big:1", "-o", "OUT")) + " is lg's default "
             "docker-archive; prepares empty the layer cache so each export writes its layer")
    return cases


BIG_FILE_SCENARIOS = [
    Scenario(16, "big-file", "a 4 GB file, dense and sparse: commit, checkout, export, import",
             "`lg commit`, `lg checkout`, `lg export` (docker-archive) and `lg import` of a tree holding one "
             "4 GB file, incompressible or sparse: wall time and peak RSS (goal: under 200 MB, issue 13).",
             label("dense", "commit"), runs=2, quick_runs=1, build=build_big_file),
]
