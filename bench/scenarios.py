"""The scenarios of issue 2 ("Image store and history"), and what every scenario gets.

Context, Scenario, retire() and SetupFailed here are shared with the container
scenarios of issues 3-6 (containers.py); catalog.py lists them all.

Each scenario is a builder: given a fresh scratch directory it sets up the state its
commands need (stores, repositories, checkouts: untimed) and returns the cases to time,
lg first, then the peers. Every scenario gets its own fresh LG_ROOT (and its own
repositories), so no scenario sees another's caches. Nothing is deleted while the
harness runs (see retire()); the whole scratch directory goes at exit.

Rows compare like with like: every tool reads the same device-free copy of the
workload (see workload.py), runs with its default settings except where noted, and
starts each run from the same state (the prepare script restores it, untimed).

If lg's part of a setup fails, the lg rows are reported as FAILED with lg's error and
the peers are still measured; lg's behaviour is reported, never fixed, here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .report import Check
from .timing import Case, Goal, run
from .tools import Tools
from .workload import TAR_FLAGS, Workload

TAG1, TAG2 = "bench:v1", "bench:v2"
EDITS = 10  # "a second commit after changing 10 files"


class SetupFailed(Exception):
    pass


def q(path) -> str:
    return shlex.quote(str(path))


GRAVEYARD = ".retired"


def retire(ctx: "Context", *paths) -> str:
    """Shell code that moves the previous run's output (a store, a checkout) out of the way.

    Not `rm -rf`: on ext4 the inode allocator can skip, testing each one, inodes freed in
    the last minutes (recently_deleted(); without a journal, as on this VM's root
    filesystem, always), so creating thousands of files right after deleting thousands
    is slower, and deleting in --prepare would bill each run for its predecessor's
    delete. A rename is one inode operation; everything retired goes when the harness
    exits (see scratch.py for the measurements).
    """
    grave = q(ctx.dir / GRAVEYARD)
    return " && ".join(f'{{ [ ! -e {q(p)} ] || mv {q(p)} "$(mktemp -u -p {grave})"; }}' for p in paths)


@dataclass
class Context:
    """What a scenario builder gets: tools, the shared read-only workload, its own directory."""

    tools: Tools
    workload: Workload
    dir: Path
    log: Callable[[str], None]
    runs: int = 1           # timed runs per row in this invocation (for figures measured after them)
    quick: bool = False     # --quick: scenarios that scale a workload may take a smaller one

    def __post_init__(self):
        self.notes: list[str] = []
        self.checks: list[Check] = []
        self.figures: dict = {}
        # Run once the rows are timed (figures that are not wall times: memory, req/s) ...
        self.after: list[Callable[[], None]] = []
        # ... and at the end of the scenario whatever happened, last registered first
        # (containers, monitors, podman stores: nothing outlives its scenario).
        self.cleanups: list[Callable[[], None]] = []
        (self.dir / GRAVEYARD).mkdir(exist_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / name

    def note(self, text: str) -> None:
        self.notes.append(text)

    def check(self, text: str, figure: str, verdict: str, median_met: bool | None = None) -> None:
        """A goal judged on a figure that is not a row's time (shown under the table);
        verdict from report.judge(), median_met what the medians alone say."""
        self.checks.append(Check(text, figure, verdict, median_met))

    def lg(self, *args) -> list[str]:
        return [*self.tools.lg, *map(str, args)]

    def run(self, argv: list[str], env: dict | None = None, what: str | None = None) -> str:
        """Run an untimed setup command; SetupFailed carries its last error line."""
        out = run(argv, env=dict(os.environ, **(env or {})), cwd=self.dir,
                  stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
        if out.returncode != 0:
            lines = [ln for ln in (out.stderr or out.stdout).splitlines() if ln.strip()]
            detail = lines[-1].strip() if lines else "no output"
            raise SetupFailed(f"{what or shlex.join(argv)}: exit {out.returncode}: {detail}")
        return out.stdout

    # -- peers' repositories -------------------------------------------------------------

    def git_env(self, gitdir: Path, worktree: Path | None = None) -> dict[str, str]:
        """git driven by environment, so commands read like a user's. Auto-gc is off: with
        a few thousand loose objects `git commit` would start a background `git gc` that
        competes with the next runs. Identity is fixed so no config is needed."""
        env = {"GIT_DIR": str(gitdir), "GIT_CONFIG_COUNT": "1",
               "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
               "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
               "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
        if worktree is not None:
            env["GIT_WORK_TREE"] = str(worktree)
        return env

    def git_commit(self, env: dict, tag: str | None = None) -> None:
        self.run(["sh", "-c", GIT_COMMIT], env, "git add -A && git commit")
        if tag:
            self.run(["git", "tag", tag], env)

    def ostree_repo(self, source: Path, name: str = "ostree-repo") -> Path:
        repo = self.path(name)
        self.run([self.tools["ostree"], f"--repo={repo}", "init", "--mode=bare"])
        self.run([self.tools["ostree"], f"--repo={repo}", "commit", "-b", "x", f"--tree=dir={source}"])
        return repo


GIT_COMMIT = "git add -A && git commit -q -m bench"


@dataclass
class Scenario:
    number: int
    name: str
    title: str
    measures: str          # what it measures and why, for the README and the JSON
    primary: str           # label of the lg row that peer rows are compared with
    runs: int
    quick_runs: int
    build: Callable[[Context], list[Case]]


# -- 1. commit ---------------------------------------------------------------------------

LG_COMMIT = "lg commit ROOTFS -t bench:v1"


def build_commit(ctx: Context) -> list[Case]:
    src = ctx.workload.rootfs
    root, ost, git = ctx.path("lg-root"), ctx.path("ostree-repo"), ctx.path("git-repo")
    ostree = ctx.tools["ostree"]
    return [
        # A fresh LG_ROOT every run: lg keeps a stat cache per source directory under
        # $LG_ROOT/cache/stat, and a warm one would turn this into scenario 2.
        Case("lg", LG_COMMIT, ctx.lg("commit", src, "-t", TAG1),
             prepare=f"{retire(ctx, root)} && sync", env={"LG_ROOT": str(root)}),
        Case("ostree", "ostree commit -b x --tree=dir=ROOTFS (fresh bare repo)",
             [ostree, f"--repo={ost}", "commit", "-b", "x", f"--tree=dir={src}"],
             prepare=f"{retire(ctx, ost)} && {q(ostree)} --repo={q(ost)} init --mode=bare && sync",
             goal=Goal("lg <= 1.5x ostree", "ratio", 1.5)),
        Case("git", "git add -A && git commit (fresh repo)", ["sh", "-c", GIT_COMMIT],
             prepare=f"{retire(ctx, git)} && git init -q && sync", env=ctx.git_env(git, src)),
    ]


# -- 2. recommit -------------------------------------------------------------------------

LG_RECOMMIT = f"lg commit ROOTFS -t bench:v1, {EDITS} files changed"


def build_recommit(ctx: Context) -> list[Case]:
    """Each tool commits its own writable copy once (untimed), then every timed run commits
    again after the prepare appended a line to the same N files. Own copies, because lg's
    stat cache and git's index must only ever see their own tool's edits."""
    wl = ctx.workload
    cases = []

    lg_src, root = wl.copy(ctx.path("lg-src")), ctx.path("lg-root")
    lg_env = {"LG_ROOT": str(root)}
    broken = None
    try:
        ctx.run(ctx.lg("commit", lg_src, "-t", TAG1), lg_env, "first lg commit")
    except SetupFailed as exc:
        broken = str(exc)
    # 0, 1, 10, 100 files: the goal is "proportional to the change", so show the slope;
    # 0 (with --allow-empty) is the floor: a full scan that finds nothing.
    for n in (0, 1, EDITS, 100):
        if n == 0:
            label, extra = "lg commit --allow-empty, nothing changed", ["--allow-empty"]
        else:
            label, extra = (LG_RECOMMIT if n == EDITS else f"lg commit, {n} file{'s' * (n > 1)} changed"), []
        cases.append(Case(
            "lg", label, ctx.lg("commit", lg_src, "-t", TAG1, *extra),
            prepare=f"{wl.edit_script(lg_src, wl.edits(n))} && sync", env=lg_env, broken=broken,
            goal=Goal("lg <= 0.15 s (issue 13; issue 2 asked under 1 s)", "seconds", 0.15)
            if n == EDITS else None))

    ost_src = wl.copy(ctx.path("ostree-src"))
    ost = ctx.ostree_repo(ost_src)
    cases.append(Case(
        "ostree", f"ostree commit -b x --tree=dir=ROOTFS, {EDITS} files changed",
        [ctx.tools["ostree"], f"--repo={ost}", "commit", "-b", "x", f"--tree=dir={ost_src}"],
        prepare=f"{wl.edit_script(ost_src, wl.edits(EDITS))} && sync"))

    git_src = wl.copy(ctx.path("git-src"))
    genv = ctx.git_env(ctx.path("git-repo"), git_src)
    ctx.run(["git", "init", "-q"], genv)
    ctx.git_commit(genv)
    cases.append(Case(
        "git", f"git add -A && git commit, {EDITS} files changed", ["sh", "-c", GIT_COMMIT],
        prepare=f"{wl.edit_script(git_src, wl.edits(EDITS))} && sync", env=genv))
    return cases


# -- 3. checkout -------------------------------------------------------------------------

LG_CHECKOUT = "lg checkout bench:v1 DEST"


def build_checkout(ctx: Context) -> list[Case]:
    """A full, independent copy of an image's rootfs into an empty directory. lg's store
    is restored from a pristine copy before every run, so each run is the *first*
    checkout of that commit in its root, whatever lg may cache after one."""
    wl, ostree = ctx.workload, ctx.tools["ostree"]
    dest, root, pristine = ctx.path("dest"), ctx.path("lg-root"), ctx.path("lg-pristine")
    broken = None
    try:
        ctx.run(ctx.lg("commit", wl.rootfs, "-t", TAG1), {"LG_ROOT": str(pristine)}, "lg commit")
    except SetupFailed as exc:
        broken = str(exc)
    ost = ctx.ostree_repo(wl.rootfs)
    return [
        Case("lg", LG_CHECKOUT, ctx.lg("checkout", TAG1, dest), env={"LG_ROOT": str(root)}, broken=broken,
             prepare=f"{retire(ctx, dest, root)} && cp -a {q(pristine)} {q(root)} && sync"),
        # Plain `ostree checkout` hardlinks from a bare repo on the same filesystem (that is
        # scenario 4); -C forces the copy this scenario is about.
        Case("ostree", "ostree checkout -C x DEST (copy)",
             [ostree, f"--repo={ost}", "checkout", "-C", "x", str(dest)],
             prepare=f"{retire(ctx, dest)} && sync",
             goal=Goal("lg <= 1.0x ostree -C (issue 13)", "ratio", 1.0)),
        Case("tar", "tar -xpf rootfs.tar -C DEST",
             ["tar", *TAR_FLAGS, "-xpf", str(wl.tarball), "-C", str(dest)],
             prepare=f"{retire(ctx, dest)} && mkdir {q(dest)} && sync"),
    ]


# -- 4. cached checkout ------------------------------------------------------------------

LG_HARDLINK = "lg checkout --hardlink bench:v1 DEST"


def build_cached_checkout(ctx: Context) -> list[Case]:
    """A checkout of a commit that is already materialised: hardlinks into a cache instead
    of writing file data, which is what makes starting a container on a seen image cheap.
    `lg checkout --hardlink` is checked for at run time (lg is growing it); without it the
    lg row says "not available" and the peers still run, so the table shows the target."""
    wl, ostree = ctx.workload, ctx.tools["ostree"]
    dest = ctx.path("dest")
    cases = []
    if ctx.tools.lg_supports("checkout", "--hardlink"):
        root = ctx.path("lg-root")
        env = {"LG_ROOT": str(root)}
        broken = None
        try:
            ctx.run(ctx.lg("commit", wl.rootfs, "-t", TAG1), env, "lg commit")
            # The first hardlink checkout materialises the commit; the timed ones reuse it.
            first = ctx.lg("checkout", "--hardlink", TAG1, ctx.path("first"))
            ctx.run(first, env, "first lg checkout --hardlink")
        except SetupFailed as exc:
            broken = str(exc)
        cases.append(Case("lg", LG_HARDLINK, ctx.lg("checkout", "--hardlink", TAG1, dest), env=env,
                          broken=broken, prepare=f"{retire(ctx, dest)} && sync"))
    else:
        cases.append(Case("lg", LG_HARDLINK, unavailable="`lg checkout --help` lists no --hardlink option"))
    ost = ctx.ostree_repo(wl.rootfs)
    cases += [
        Case("ostree", "ostree checkout -H x DEST (hardlinks)",
             [ostree, f"--repo={ost}", "checkout", "-H", "x", str(dest)],
             prepare=f"{retire(ctx, dest)} && sync",
             goal=Goal("lg <= 1.0x ostree -H (issue 13)", "ratio", 1.0)),
        Case("cp", "cp -al ROOTFS DEST", ["cp", "-al", str(wl.rootfs), str(dest)],
             prepare=f"{retire(ctx, dest)} && sync"),
    ]
    return cases


# -- 5. diff and 6. start-up share a two-version setup ------------------------------------

def two_versions(ctx: Context) -> tuple[dict, dict, str | None]:
    """An lg root and a git repository each holding v1 = the workload and v2 = v1 with
    EDITS files changed. Returns lg's env, git's env, and lg's setup error if any."""
    wl = ctx.workload
    src = wl.copy(ctx.path("src"))
    lg_env = {"LG_ROOT": str(ctx.path("lg-root"))}
    genv = ctx.git_env(ctx.path("git-repo"), src)
    broken = None
    try:
        ctx.run(ctx.lg("commit", src, "-t", TAG1), lg_env, "lg commit v1")
    except SetupFailed as exc:
        broken = str(exc)
    ctx.run(["git", "init", "-q"], genv)
    ctx.git_commit(genv, "v1")
    wl.edit(src, wl.edits(EDITS))
    if broken is None:
        try:
            ctx.run(ctx.lg("commit", src, "-t", TAG2), lg_env, "lg commit v2")
        except SetupFailed as exc:
            broken = str(exc)
    ctx.git_commit(genv, "v2")
    return lg_env, {k: v for k, v in genv.items() if k != "GIT_WORK_TREE"}, broken


LG_DIFF = "lg diff bench:v1 bench:v2 --name-status"


def build_diff(ctx: Context) -> list[Case]:
    lg_env, genv, broken = two_versions(ctx)
    lg_argv = ctx.lg("diff", TAG1, TAG2, "--name-status")
    git_argv = ["git", "diff", "--name-status", "v1", "v2"]
    if broken is None:
        # Not a test, but a diff that disagrees with git's would make its time meaningless.
        try:
            lg_out = ctx.run(lg_argv, lg_env, "lg diff").splitlines()
            git_out = ctx.run(git_argv, genv, "git diff").splitlines()
            expect = sorted(f"M\t/{p}" for p in ctx.workload.edits(EDITS))
            differs = "" if sorted(lg_out) == expect else "; lg output differs from the expected M lines"
            ctx.note(f"lg diff lists {len(lg_out)} changes, git diff {len(git_out)} "
                     f"({EDITS} files were edited){differs}")
        except SetupFailed as exc:
            broken = str(exc)
    return [
        Case("lg", LG_DIFF, lg_argv, env=lg_env, broken=broken),
        Case("git", "git diff --name-status v1 v2", git_argv, env=genv),
    ]


LG_HELP, LG_IMAGES = "lg --help", "lg images (2 images)"


def build_startup(ctx: Context) -> list[Case]:
    """Start-up is a product feature (DESIGN.md): `lg --help` must not import pygit2. git
    gives the scale of a native tool; python -c pass is the floor lg cannot go below
    (with site, i.e. with the .pth files of the installed packages, and without)."""
    lg_env, genv, broken = two_versions(ctx)
    py = ctx.tools.python
    cases = [
        Case("lg", LG_HELP, ctx.lg("--help"), env=lg_env),
        Case("lg", LG_IMAGES, ctx.lg("images"), env=lg_env, broken=broken),
    ]
    if ctx.tools.lg_shim:
        cases.append(Case("lg", "lg --help through the pyenv shim on PATH", [ctx.tools.lg_shim, "--help"],
                          env=lg_env))
    cases += [
        Case("git", "git --version", ["git", "--version"], vs=LG_HELP),
        Case("git", "git for-each-ref (2 commits, 2 tags)", ["git", "for-each-ref"], env=genv, vs=LG_IMAGES),
        Case("python", "python3 -c pass (lg's interpreter)", [py, "-c", "pass"], vs=LG_HELP),
        Case("python", "python3 -S -c pass (no site, no .pth)", [py, "-S", "-c", "pass"], vs=LG_HELP),
    ]
    return cases


STORE_SCENARIOS = [
    Scenario(1, "commit", "cold commit of the rootfs into a fresh store",
             "`lg commit ROOTFS -t bench:v1` into an empty LG_ROOT (no stat cache) vs `ostree commit` into a "
             "fresh bare repo and `git add -A && git commit` into a fresh repository.",
             LG_COMMIT, runs=7, quick_runs=3, build=build_commit),
    Scenario(2, "recommit", "second commit after changing a few files",
             "A commit of the same directory after appending a line to N files (N = 0, 1, 10, 100 for lg; "
             "10 for the peers), with lg's stat cache and git's index warm from the first commit.",
             LG_RECOMMIT, runs=9, quick_runs=3, build=build_recommit),
    Scenario(3, "checkout", "full checkout into an empty directory",
             "`lg checkout` of a committed image into a new directory vs `ostree checkout -C` (a copy) and "
             "`tar -xpf` of the same tree.",
             LG_CHECKOUT, runs=7, quick_runs=3, build=build_checkout),
    Scenario(4, "cached-checkout", "checkout of an already materialised commit (hardlinks)",
             "`lg checkout --hardlink` of a commit checked out before vs `ostree checkout -H` and `cp -al`.",
             LG_HARDLINK, runs=12, quick_runs=5, build=build_cached_checkout),
    Scenario(5, "diff", "diff of two versions ten files apart",
             "`lg diff v1 v2 --name-status` vs `git diff --name-status` of the same two trees in git.",
             LG_DIFF, runs=12, quick_runs=5, build=build_diff),
    Scenario(6, "startup", "command start-up",
             "`lg --help` and `lg images` (two images) vs `git --version`, `git for-each-ref` and the Python "
             "interpreter's own start-up.",
             LG_HELP, runs=25, quick_runs=7, build=build_startup),
]

