"""Scenario 35 (issue 13): a store as a team's grows, 1,000 images and 20,000 commits.

What a user does with such a store must not grow with it: `lg images`, `lg log` of one
image, `lg ps` and a revision lookup (`lg show IMG~10`) each under 0.2 s (issue 13);
`lg gc` against `git gc` of the very same repository at most 1.2x.

The store is written in seconds with `git fast-import`, not with 20,000 `lg commit`s
(hours): one seed image is committed by lg, and every generated commit reuses its
`config.json` and its root's metadata blob, with a `/version` file of its own, so each
commit is a valid image and each layer a real one-file diff; then the store is
repacked as `lg gc` leaves one (refs packed, objects deltified). That takes seconds,
so --quick builds the whole store too.
"""

from __future__ import annotations

import subprocess

from .scenarios import Context, Scenario, SetupFailed, q, retire
from .timing import Case, Goal

IMAGES, COMMITS_PER_IMAGE = 1000, 20
LG_IMAGES = "lg images (every image of the store)"
LG_GC = "lg gc (the whole store)"
SECONDS = 0.2


def _stream(images: int, config: str, meta: str) -> bytes:
    """A fast-import stream: ``images`` branches app<i>/1 of COMMITS_PER_IMAGE commits each."""
    out: list[bytes] = []
    when = 1_700_000_000
    for i in range(images):
        for j in range(COMMITS_PER_IMAGE):
            when += 1
            message = f"app {i} version {j}\n".encode()
            version = f"{i}.{j}\n".encode()
            out.append(b"commit refs/heads/app%d/1\n" % i)
            out.append(b"committer Bench <bench@example.invalid> %d +0000\n" % when)
            out.append(b"data %d\n%s" % (len(message), message))
            out.append(f"M 100644 {config} config.json\nM 100644 {meta} rootfs/.lgmeta\n".encode())
            out.append(b"M 100644 inline rootfs/version\ndata %d\n%s\n" % (len(version), version))
    return b"".join(out)


def _make_store(ctx: Context, root, images: int) -> None:
    seed = ctx.path("seed")
    seed.mkdir()
    (seed / "version").write_text("seed\n")
    env = {"LG_ROOT": str(root)}
    ctx.run(ctx.lg("commit", seed, "-t", "seed:1", "-m", "seed"), env)
    git = ["git", f"--git-dir={root / 'store.git'}"]

    def blob(path: str) -> str:
        return subprocess.run([*git, "rev-parse", f"refs/heads/seed/1:{path}"], check=True,
                              capture_output=True, text=True).stdout.strip()

    ctx.log(f"[big-store] writing {images} images of {COMMITS_PER_IMAGE} commits with git fast-import")
    stream = _stream(images, blob("config.json"), blob("rootfs/.lgmeta"))
    for argv, data in (([*git, "fast-import", "--quiet"], stream),
                       # as lg gc leaves a store lg wrote: refs packed, deltas git chose afresh
                       ([*git, "-c", "pack.compression=1", "repack", "-a", "-d", "-f", "-q"], None),
                       ([*git, "pack-refs", "--all"], None)):
        proc = subprocess.run(argv, input=data, capture_output=True)
        if proc.returncode:
            raise SetupFailed(f"{argv[2]}: {proc.stderr.decode(errors='replace').strip()[-200:]}")


def build_big_store(ctx: Context) -> list[Case]:
    pristine = ctx.path("pristine")
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    broken = None
    try:
        _make_store(ctx, pristine, IMAGES)
        ctx.run(["cp", "-a", str(pristine), str(root)])
    except SetupFailed as exc:
        broken = str(exc)
    ctx.note(f"{IMAGES} images, {IMAGES * COMMITS_PER_IMAGE} commits")
    middle = f"app{IMAGES // 2}:1"
    goal = Goal(f"under {SECONDS} s with {IMAGES} images (issue 13)", "seconds", SECONDS)
    gc_root, git_dir = ctx.path("gc-root"), ctx.path("gc-git")
    fresh_root = f"{retire(ctx, gc_root)} && cp -a {q(pristine)} {q(gc_root)} && sync"
    fresh_git = f"{retire(ctx, git_dir)} && cp -a {q(pristine / 'store.git')} {q(git_dir)} && sync"
    return [
        Case("lg", LG_IMAGES, ctx.lg("images"), env=env, broken=broken, goal=goal),
        Case("lg", f"lg log {middle} ({COMMITS_PER_IMAGE} versions)", ctx.lg("log", middle), env=env,
             broken=broken, goal=goal),
        Case("lg", f"lg show {middle}~10 (a revision lookup)", ctx.lg("show", f"{middle}~10"), env=env,
             broken=broken, goal=goal),
        Case("lg", "lg ps -a", ctx.lg("ps", "-a"), env=env, broken=broken, goal=goal),
        Case("lg", LG_GC, ctx.lg("gc"), env={"LG_ROOT": str(gc_root)}, broken=broken, prepare=fresh_root),
        Case("git", "git gc (the same repository)", ["git", f"--git-dir={git_dir}", "gc", "--quiet"],
             broken=broken, prepare=fresh_git, vs=LG_GC,
             goal=Goal("lg gc <= 1.2x git gc (issue 13)", "ratio", 1.2)),
    ]


BIG_STORE_SCENARIOS = [
    Scenario(35, "big-store", "a store of 1,000 images and 20,000 commits: listing, log, lookup, gc",
             "`lg images`, `lg log`, `lg show IMG~10` and `lg ps -a` in a store of 1,000 images of 20 "
             "versions each, written by git fast-import from an lg seed (goal: each under 0.2 s), and "
             "`lg gc` against `git gc` of the same repository (goal: at most 1.2x).",
             LG_IMAGES, runs=10, quick_runs=3, build=build_big_store),
]
