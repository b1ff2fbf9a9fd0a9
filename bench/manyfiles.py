"""Scenario 36 (issue 13): a tree of a million small files, beside the minbase workload.

Cost must grow with the tree, not faster: `lg commit`, `lg import` (of lg's own
docker-archive of the tree) and `lg checkout` of it, per entry, within 1.5x of the same
commands on the minbase workload (6,760 entries), measured in the same run; peak RSS
under 1 GB; and `lg log`, `lg images` and `lg show` of the image under 0.2 s (sizes
are computed once and kept).

The tree is 1,000 directories of 1,000 files of a few dozen bytes each (--quick: 100
directories, 100,000 files), written once in set-up. The long rows run under
`helper.py peak-rss` (wall time, CPU and peak RSS as `/usr/bin/time -v` gives it), with
no warm-up and their output removed by the prepare; the minbase rows run the same way
so the per-entry figures compare like with like. At full size the scenario needs about
five million inodes at its peak: run it with --no-loop (the loop filesystem has two).
"""

from __future__ import annotations

import json
import os

from .bigfiles import peak_rss_case
from .report import Spread, judge
from .scenarios import Context, Scenario, SetupFailed, q
from .timing import Case, Goal

DIRS, FILES_PER_DIR = 1000, 1000
QUICK_DIRS = 100
RSS_LIMIT_MB = 1024
PER_ENTRY_LIMIT = 1.5
SECONDS = 0.2
COMMANDS = ("commit", "import", "checkout")


def make_tree(path, dirs: int) -> int:
    """``dirs`` directories of FILES_PER_DIR small files; returns the entries (root included)."""
    os.mkdir(path)
    for d in range(dirs):
        sub = os.path.join(path, f"d{d:04d}")
        os.mkdir(sub)
        for f in range(FILES_PER_DIR):
            with open(os.path.join(sub, f"f{f:04d}"), "w") as out:
                out.write(f"file {f} of directory {d}: a few dozen bytes\n")
    return 1 + dirs * (1 + FILES_PER_DIR)


def label(which: str, command: str) -> str:
    return f"lg {command}, {which}"


def build_many_files(ctx: Context) -> list[Case]:
    dirs = QUICK_DIRS if ctx.quick else DIRS
    figures = ctx.path("peak-rss.jsonl")
    src = ctx.path("tree")
    ctx.log(f"[many-files] writing {dirs * FILES_PER_DIR:,} files")
    entries = {"many": make_tree(src, dirs), "minbase": ctx.workload.entries}
    sources = {"many": src, "minbase": ctx.workload.rootfs}
    many = f"{entries['many']:,} entries"
    cases: list[Case] = []
    broken = None
    made = {}
    for which, source in sources.items():
        made[which] = root = ctx.path(f"made-{which}")
        archive = ctx.path(f"{which}.tar")
        try:
            ctx.run(ctx.lg("commit", source, "-t", "many:1"), {"LG_ROOT": str(root)}, f"lg commit ({which})")
            ctx.run(ctx.lg("export", "many:1", "-o", archive), {"LG_ROOT": str(root)}, f"lg export ({which})")
        except SetupFailed as exc:
            broken = str(exc)
        fresh, dest = ctx.path(f"fresh-{which}"), ctx.path(f"dest-{which}")
        rows = {
            "commit": (["commit", source, "-t", "many:1"], fresh, f"rm -rf {q(fresh)}"),
            "import": (["import", archive, "-t", "many:2"], fresh, f"rm -rf {q(fresh)}"),
            "checkout": (["checkout", "many:1", dest], root, f"rm -rf {q(dest)}"),
        }
        shown = many if which == "many" else "minbase"
        for command in COMMANDS:
            args, where, prepare = rows[command]
            cases.append(peak_rss_case(ctx, figures, label(shown, command), args, where, prepare, broken))
    env = {"LG_ROOT": str(made["many"])}
    goal = Goal(f"under {SECONDS} s for an image of {many} (issue 13)", "seconds", SECONDS)
    for what, args in (("log", ["log", "many:1"]), ("images", ["images"]), ("show", ["show", "many:1"])):
        cases.append(Case("lg", f"lg {what}, {many}", ctx.lg(*args), env=env, broken=broken, goal=goal))

    def judged():
        records = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
        ctx.figures["peak_rss"] = records

        def ok(name: str) -> list[dict]:
            return [r for r in records if r["label"] == name and r["status"] == 0]

        worst = None
        for command in COMMANDS:
            big, small = ok(label(many, command)), ok(label("minbase", command))
            if not big or not small:
                continue
            rss = Spread.of(r["maxrss_kb"] / 1024 for r in big)
            worst = rss if worst is None or rss.hi > worst.hi else worst
            per_big = Spread.of(r["wall_s"] / entries["many"] * 1e6 for r in big)
            per_small = Spread.of(r["wall_s"] / entries["minbase"] * 1e6 for r in small)
            ratio = Spread.of([per_big.median / per_small.median])
            ctx.note(f"{command}: {per_big.text('{:.0f}', ' µs')} an entry ({many}) against "
                     f"{per_small.text('{:.0f}', ' µs')} (minbase); peak RSS {rss.text(unit=' MB')}, "
                     f"minbase {Spread.of(r['maxrss_kb'] / 1024 for r in small).text(unit=' MB')}")
            lo, hi = per_big.lo / per_small.hi, per_big.hi / per_small.lo
            ctx.check(f"lg {command}: time an entry within {PER_ENTRY_LIMIT}x of minbase's (issue 13)",
                      f"{ratio.median:.2f}x ({lo:.2f}-{hi:.2f}x)", judge(lo, hi, PER_ENTRY_LIMIT),
                      ratio.median <= PER_ENTRY_LIMIT)
        if worst is not None:
            ctx.check(f"peak RSS under {RSS_LIMIT_MB} MB for commit, import, checkout of {many} (issue 13)",
                      f"highest {worst.text(unit=' MB')}", judge(worst.lo, worst.hi, RSS_LIMIT_MB),
                      worst.median <= RSS_LIMIT_MB)

    ctx.after.append(judged)
    return cases


MANY_FILES_SCENARIOS = [
    Scenario(36, "many-files", "a million small files: commit, import, checkout; log, images, show",
             "`lg commit`, `lg import` and `lg checkout` of 1,000,000 small files (--quick: 100,000), "
             "time per entry against the same commands on minbase in the same run (goal: within 1.5x) "
             "and peak RSS (goal: under 1 GB); `lg log`, `lg images`, `lg show` of that image (goal: "
             "under 0.2 s).",
             label("minbase", "commit"), runs=2, quick_runs=1, build=build_many_files),
]
