"""Scenarios 28-29 (issue 17): changing history.

28 `rebase`: `lg rebase --onto base:2 base:1 app:5` of a 5-version app on the minbase
   workload onto a new base that upgraded a package (its dpkg status record and files in
   /usr/lib) and changed /etc; the app's versions add files under /srv, one installs a
   package (a status record, files in /usr/lib and /usr/share/doc), one edits a config.
   Both sides change dpkg's status, so every version after that one merges it record
   by record. No ld.so.cache conflict here: ldconfig's container is what scenario 9
   times. Goal: under 1 s. Peer: git's own three-way tree merge of the same commits in
   the same store (`git merge-tree --write-tree` then `git commit-tree`, one per
   version). git merges text: it conflicts on the .lgmeta lines both sides change (the
   status file's own), writes its tree with conflict markers anyway, and knows nothing
   of modes, owners or packages; it is the floor of a tree merge, not an equivalent.
   crane rebase (which splices layers, with no merge at all) is not installed here.
29 `bisect-run`: `lg bisect run --rm --network none sh -c CHECK` over 64 versions of the
   busybox fixture, the check failing from version 41 on. The number of containers it
   starts must be at most ceil(log2 64) + 1 = 7; beside it `lg run --rm` of the same
   check once, what each candidate should cost.
"""

from __future__ import annotations

import math
import shlex

from .containers import busybox_rootfs, lg_teardown, try_setup
from .report import judge
from .scenarios import Context, Scenario, SetupFailed
from .timing import Case, Goal

APP_VERSIONS = 5
LG_REBASE = f"lg rebase --onto base:2 base:1 app:5 ({APP_VERSIONS} versions, minbase)"
BISECT_VERSIONS = 64
BROKEN_FROM = 41
CHECK = "test ! -e /broken"
LG_BISECT = f"lg bisect run --rm over {BISECT_VERSIONS} versions (busybox)"
STATUS = "var/lib/dpkg/status"


def _stanza(name: str, version: str) -> str:
    return (f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
            f"Architecture: amd64\nVersion: {version}\nDescription: bench package {name}\n")


def _append_record(path, name: str, version: str) -> None:
    text = path.read_text()
    path.write_text(text.rstrip("\n") + "\n\n" + _stanza(name, version))


def build_rebase(ctx: Context) -> list[Case]:
    src = ctx.workload.copy(ctx.path("src"))
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    broken = None
    try:
        ctx.log("[rebase] committing base:1, five app versions, base:2")
        ctx.run(ctx.lg("commit", src, "-t", "base:1", "-m", "base 1"), env)
        for i in range(1, APP_VERSIONS + 1):
            srv = src / "srv" / f"v{i}"
            srv.mkdir(parents=True)
            for n in range(20):
                (srv / f"file{n}").write_text(f"app version {i} file {n}\n" * 10)
            if i == 2:  # the app installs a package
                _append_record(src / STATUS, "libbench-app", "1.0")
                (src / "usr" / "lib" / "libbench-app.so.1").write_bytes(b"\x7fELF app" * 100)
                (src / "usr" / "share" / "doc" / "libbench-app").mkdir()
                (src / "usr" / "share" / "doc" / "libbench-app" / "copyright").write_text("bench\n")
            if i == 4:
                (src / "etc" / "bench-app.conf").write_text("workers=4\n")
            ctx.run(ctx.lg("commit", src, "-t", "app:5", "--parent", "base:1" if i == 1 else "app:5",
                           "-m", f"app {i}"), env)
        ctx.run(ctx.lg("checkout", "base:1", ctx.path("base2"), "--mode", "0755"), env)
        base2 = ctx.path("base2")
        status = base2 / STATUS
        text = status.read_text()
        first = text.split("\nVersion: ", 1)
        status.write_text(first[0] + "\nVersion: 99:" + first[1])  # an upgrade of the first package
        (base2 / "usr" / "lib" / "libbench-base.so.2").write_bytes(b"\x7fELF base" * 100)
        (base2 / "etc" / "motd").write_text("patched base\n")
        ctx.run(ctx.lg("commit", base2, "-t", "base:2", "--parent", "base:1", "-m", "base 2"), env)
        out = ctx.run(ctx.lg("rebase", "--onto", "base:2", "base:1", "app:5", "-t", "app:check"), env)
        merged = [line for line in out.splitlines() if "merged record by record" in line]
        ctx.note(f"lg resolved dpkg's status record by record in {len(merged)} of {APP_VERSIONS} versions")
    except SetupFailed as exc:
        broken = str(exc)
    genv = ctx.git_env(root / "store.git")
    git_loop = (
        'p=$(git rev-parse base/2); for c in $(git rev-list --reverse --first-parent base/1..app/5); do '
        't=$(git merge-tree --write-tree "$p" "$c" | head -n 1); '
        'p=$(git commit-tree "$t" -p "$p" -m replay); done; git update-ref refs/heads/git/replayed "$p"'
    )
    return [
        Case("lg", LG_REBASE,
             ctx.lg("rebase", "--onto", "base:2", "base:1", "app:5", "-t", "app:rebased"),
             env=env, broken=broken,
             goal=Goal("lg rebase of 5 versions under 1 s (issue 17)", "seconds", 1.0)),
        Case("lg", "lg log -n 1 app:5 (the floor: start-up, the store opened)",
             ctx.lg("log", "-n", "1", "app:5"), env=env, broken=broken),
        Case("git", "git merge-tree --write-tree + commit-tree, 5 versions (same store)",
             ["sh", "-c", git_loop], env=genv, broken=broken, vs=LG_REBASE),
    ]


def build_bisect(ctx: Context) -> list[Case]:
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    ctx.cleanups.append(lambda: lg_teardown(ctx, root))
    src = ctx.path("bb")
    counts = ctx.path("trials")
    errors = ctx.path("bisect.err")

    def setup() -> None:
        ctx.run(["cp", "-a", str(busybox_rootfs(ctx)), str(src)])
        ctx.log(f"[bisect-run] committing {BISECT_VERSIONS} versions")
        for i in range(1, BISECT_VERSIONS + 1):
            (src / "version").write_text(f"{i}\n")
            if i == BROKEN_FROM:
                (src / "broken").write_text("x\n")
            ctx.run(ctx.lg("commit", src, "-t", "bb:latest", "-m", f"v{i}"), env)

    broken = try_setup(setup)
    start = shlex.join(ctx.lg("bisect", "start", "bb:latest", f"bb:latest~{BISECT_VERSIONS - 1}"))
    reset = shlex.join(ctx.lg("bisect", "reset"))
    run = shlex.join(ctx.lg("bisect", "run", "--rm", "--network", "none", "sh", "-c", CHECK))
    counted = (f"{run} >/dev/null 2>{shlex.quote(str(errors))} || exit $?; "
               f"grep -c '^lg bisect run:' {shlex.quote(str(errors))} >> {shlex.quote(str(counts))}")

    def trials() -> None:
        if not counts.exists():
            return
        started = [int(n) for n in counts.read_text().split()]
        ctx.figures["bisect_containers"] = started
        limit = math.ceil(math.log2(BISECT_VERSIONS)) + 1
        ctx.note(f"containers started per bisect run: {started}")
        if started:
            ctx.check(f"containers started by lg bisect run over {BISECT_VERSIONS} versions at most {limit}"
                      " (issue 17)", f"{min(started)}-{max(started)}",
                      judge(min(started), max(started), limit), max(started) <= limit)

    ctx.after.append(trials)
    return [
        Case("lg", LG_BISECT, ["sh", "-c", counted], env=env, broken=broken,
             prepare=f"{reset} >/dev/null 2>&1; {start} >/dev/null"),
        Case("lg", "lg run --rm --network none IMG sh -c CHECK (one candidate)",
             ctx.lg("run", "--rm", "--network", "none", "bb:latest~30", "sh", "-c", CHECK),
             env=env, broken=broken),
        Case("lg", "lg bisect start + reset (bookkeeping only)",
             ["sh", "-c", f"{start} >/dev/null && {reset}"], env=env, broken=broken,
             prepare=f"{reset} >/dev/null 2>&1 || true"),
    ]


HISTORY_SCENARIOS = [
    Scenario(28, "rebase", "lg rebase of a 5-version app onto a new base (minbase)",
             "`lg rebase --onto base:2 base:1 app:5`: five app versions on the minbase workload replayed "
             "onto a base that upgraded a package, both sides changing dpkg's status (goal: under 1 s, "
             "issue 17), beside git's merge-tree of the same commits in the same store.",
             LG_REBASE, runs=10, quick_runs=5, build=build_rebase),
    Scenario(29, "bisect-run", "lg bisect run over 64 versions: containers started and time",
             "`lg bisect run --rm` over 64 busybox versions, the check failing from version 41: containers "
             "started (at most ceil(log2 64)+1 = 7, issue 17), beside one `lg run --rm` of the same check.",
             LG_BISECT, runs=5, quick_runs=3, build=build_bisect),
]
