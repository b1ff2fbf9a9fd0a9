"""Scenarios 18-21 (issue 14): images to and from git remotes, side by side with git itself.

18. push of a two-version minbase image into an empty bare repository: `lg push` vs
    `git push` of the same refs straight from lg's store, and dulwich's client (the
    naive path the issue measured at 14-17 s), so the table says what runs where.
19. push of one more version (a child of the second) after ten files changed, into a
    repository that holds the first two: wall time (goal under 0.5 s) and what it adds to the remote (goal
    under 100 kB).
20. pull of the image into a fresh root from `lg serve` vs from `git daemon` serving
    the same store (goal: at most 1.3x), and `git clone --bare` from each.
21. an image rebuilt with `--no-cache`: what its git push adds to the remote vs what a
    registry push would upload (goal: at most a tenth).

The servers run for the scenario on loopback ports and are stopped in its cleanups.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

from .scenarios import EDITS, TAG1, TAG2, Context, Scenario, SetupFailed, q, retire
from .timing import Case, Goal

TAG3 = "bench:v3"
REFS = ["refs/heads/bench/v1", "refs/heads/bench/v2"]


def _two_versions(ctx: Context, root) -> tuple[dict, str | None]:
    """An lg root holding bench:v1 (the workload) and bench:v2 (EDITS files changed)."""
    wl = ctx.workload
    src = wl.copy(ctx.path("src"))
    env = {"LG_ROOT": str(root)}
    try:
        ctx.run(ctx.lg("commit", src, "-t", TAG1), env, "lg commit v1")
        wl.edit(src, wl.edits(EDITS))
        ctx.run(ctx.lg("commit", src, "-t", TAG2), env, "lg commit v2")
    except SetupFailed as exc:
        return env, str(exc)
    return env, None


def _fresh_bare(ctx: Context, path) -> str:
    return f"{retire(ctx, path)} && git init -q --bare {q(path)} && sync"


def build_push(ctx: Context) -> list[Case]:
    root = ctx.path("lg-root")
    env, broken = _two_versions(ctx, root)
    store = root / "store.git"
    lg_remote, git_remote, dul_remote = ctx.path("lg.git"), ctx.path("git.git"), ctx.path("dulwich.git")
    # dulwich is lg's dependency: the interpreter lg runs on has it (the harness's may not)
    python = next((p for p in (*[a for a in ctx.tools.lg if os.path.basename(a).startswith("python")],
                               ctx.tools.python)
                   if subprocess.run([p, "-c", "import dulwich"], capture_output=True).returncode == 0), None)
    dulwich = (f"from dulwich import porcelain; porcelain.push({str(store)!r}, {str(dul_remote)!r}, "
               f"{[r.encode() for r in REFS]!r}, errstream=open('/dev/null', 'wb'))")
    ctx.note("rows push bench:v1 and bench:v2 (about 200 MB, two versions ten files apart) into an empty "
             "bare repository; git and dulwich push the same refs from lg's own store")
    return [
        Case("lg", "lg push REMOTE bench:v1 bench:v2", ctx.lg("push", lg_remote, TAG1, TAG2), env=env,
             broken=broken, prepare=_fresh_bare(ctx, lg_remote)),
        Case("git", "git push REMOTE (the same refs, from lg's store)",
             ["git", "--git-dir", str(store), "push", "-q", str(git_remote), *REFS],
             prepare=_fresh_bare(ctx, git_remote), goal=Goal("lg <= 1.2x git push", "ratio", 1.2)),
        Case("dulwich", "dulwich porcelain.push (the same refs)", [python or "python3", "-c", dulwich],
             prepare=_fresh_bare(ctx, dul_remote),
             unavailable=None if python else "no interpreter here imports dulwich"),
    ]


def _remote_kb(path) -> float:
    out = subprocess.run(["git", "--git-dir", str(path), "count-objects", "-v"], capture_output=True,
                         text=True).stdout
    fields = dict(line.split(": ") for line in out.splitlines() if ": " in line)
    return int(fields.get("size", 0)) + int(fields.get("size-pack", 0))


def build_incremental(ctx: Context) -> list[Case]:
    root = ctx.path("lg-root")
    env, broken = _two_versions(ctx, root)
    remote = ctx.path("remote.git")
    ctx.run(["git", "init", "-q", "--bare", str(remote)])
    # what a push sends is kept as the pack it came in, so the remote's growth is its size
    ctx.run(["git", "--git-dir", str(remote), "config", "receive.unpackLimit", "1"])
    src = ctx.path("src")
    if broken is None:
        try:
            ctx.run(ctx.lg("push", remote, TAG1, TAG2), env, "lg push v1 v2")
            ctx.workload.edit(src, ctx.workload.edits(EDITS))
            ctx.run(ctx.lg("commit", src, "-t", TAG3, "--parent", TAG2), env, "lg commit v3")
            before = _remote_kb(remote)
            sent = ctx.run(ctx.lg("push", remote, TAG3, "--json"), env, "lg push v3")
            grew = _remote_kb(remote) - before
            ctx.figures["incremental_push_remote_kb"] = grew
            counted = " ".join(line.strip() for line in sent.splitlines() if '"objects"' in line
                               or '"bytes"' in line)
            ctx.note(f"one push of bench:v3 ({EDITS} files changed): the remote grew by {grew:.0f} kB "
                     f"(goal under 100 kB); lg's own count: {counted}")
        except SetupFailed as exc:
            broken = str(exc)
    delete = f"git --git-dir {q(remote)} update-ref -d refs/heads/bench/v3"
    genv = {"GIT_DIR": str(root / "store.git")}
    return [
        Case("lg", f"lg push REMOTE bench:v3 ({EDITS} files changed)", ctx.lg("push", remote, TAG3), env=env,
             broken=broken, prepare=delete, goal=Goal("lg < 0.5 s", "seconds", 0.5)),
        Case("git", "git push REMOTE refs/heads/bench/v3",
             ["git", "push", "-q", str(remote), "refs/heads/bench/v3"], env=genv, prepare=delete),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(ctx: Context, argv: list[str], env: dict, port: int) -> None:
    proc = subprocess.Popen(argv, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    ctx.cleanups.append(stop)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SetupFailed(f"{argv[0]} exited at start") from None
            time.sleep(0.05)
    raise SetupFailed(f"nothing listens on {port}")


def build_clone(ctx: Context) -> list[Case]:
    root = ctx.path("lg-root")
    env, broken = _two_versions(ctx, root)
    lg_port, git_port = _free_port(), _free_port()
    lg_url, git_url = f"http://127.0.0.1:{lg_port}", f"git://127.0.0.1:{git_port}/store.git"
    try:
        _start(ctx, ctx.lg("serve", "--listen", f"127.0.0.1:{lg_port}"), env, lg_port)
    except SetupFailed as exc:
        broken = broken or str(exc)
    _start(ctx, ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={root}",
                 "--listen=127.0.0.1", f"--port={git_port}", str(root)], {}, git_port)
    dest, clone = ctx.path("pulled"), ctx.path("clone.git")
    fresh = f"{retire(ctx, dest, clone)} && sync"
    denv = {"LG_ROOT": str(dest)}
    pull_serve = "lg pull http://(lg serve) bench:v2, fresh root"
    clone_serve = "git clone --bare http://(lg serve)"
    return [
        Case("lg", pull_serve, ctx.lg("pull", lg_url, TAG2), env=denv, broken=broken, prepare=fresh),
        Case("lg", clone_serve, ["git", "clone", "-q", "--bare", lg_url + "/", str(clone)], prepare=fresh,
             broken=broken),
        Case("git daemon", "lg pull git://(git daemon) bench:v2, fresh root", ctx.lg("pull", git_url, TAG2),
             env=denv, prepare=fresh, vs=pull_serve, goal=Goal("lg serve <= 1.3x git daemon", "ratio", 1.3)),
        Case("git daemon", "git clone --bare git://(git daemon)",
             ["git", "clone", "-q", "--bare", git_url, str(clone)],
             prepare=fresh, vs=clone_serve, goal=Goal("lg serve <= 1.3x git daemon", "ratio", 1.3)),
    ]


# -- 21. rebuild without the cache: git's objects vs a registry's layers --------------------

DOCKERFILE = """FROM base:1
RUN cp -a /usr/share/doc /opt/doc
RUN cp -a /usr/share/zoneinfo /opt/zoneinfo && echo built > /opt/stamp
RUN cp -a /usr/share/perl5 /opt/perl5
"""


def _blobs(layout) -> dict[str, int]:
    """digest -> size of every blob of an OCI layout: what a registry would hold."""
    directory = layout / "blobs" / "sha256"
    return {name: os.stat(directory / name).st_size for name in os.listdir(directory)}


def build_rebuild(ctx: Context) -> list[Case]:
    """An image built twice, the second time with --no-cache: every RUN layer is new to a
    registry (new mtimes, new tar, new digest) although its files are byte-identical. A
    registry push of the second build uploads every blob the first did not have (here
    the blobs of lg's own OCI export, compared by digest: what a push of that layout would
    send); a git push sends only the objects the remote lacks."""
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    context = ctx.path("context")
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    remote = ctx.path("remote.git")
    ctx.run(["git", "init", "-q", "--bare", str(remote)])
    ctx.run(["git", "--git-dir", str(remote), "config", "receive.unpackLimit", "1"])
    broken = None
    try:
        ctx.run(ctx.lg("commit", ctx.workload.rootfs, "-t", "base:1"), env, "lg commit base")
        ctx.run(ctx.lg("build", "-q", "--network", "none", "-t", "app:1", context), env, "lg build")
        ctx.run(ctx.lg("push", remote, "base:1", "app:1"), env, "lg push app:1")
        ctx.run(ctx.lg("export", "--format", "oci", "-o", f"{ctx.path('oci-1')}/", "app:1"), env, "export 1")
        ctx.run(ctx.lg("build", "-q", "--no-cache", "--network", "none", "-t", "app:2", context), env,
                "lg build --no-cache")
        ctx.run(ctx.lg("export", "--format", "oci", "-o", f"{ctx.path('oci-2')}/", "app:2"), env, "export 2")
        first, second = _blobs(ctx.path("oci-1")), _blobs(ctx.path("oci-2"))
        registry = sum(size for digest, size in second.items() if digest not in first)
        before = _remote_kb(remote)
        ctx.run(ctx.lg("push", remote, "app:2"), env, "lg push app:2")
        git_kb = _remote_kb(remote) - before
        ctx.figures.update(rebuild_git_push_kb=git_kb, rebuild_registry_upload_kb=registry / 1024)
        ratio = git_kb * 1024 / registry if registry else 0.0
        new_blobs = len(set(second) - set(first))
        ctx.note(f"after `lg build --no-cache`: the git push of app:2 added {git_kb:.0f} kB to the remote; "
                 f"a registry push would upload {registry / 1024:.0f} kB ({new_blobs} new blobs of lg's "
                 "OCI export)")
        ctx.check("git push sends at most a tenth of what a registry push uploads (issue 14)",
                  f"{ratio:.3f} of it", "met" if ratio <= 0.1 else "MISSED", ratio <= 0.1)
    except SetupFailed as exc:
        broken = str(exc)
    delete = f"git --git-dir {q(remote)} update-ref -d refs/heads/app/2"
    return [Case("lg", "lg push REMOTE app:2 (rebuilt with --no-cache)", ctx.lg("push", remote, "app:2"),
                 env=env, broken=broken, prepare=delete)]


REMOTE_SCENARIOS = [
    Scenario(18, "remote-push", "push of a two-version image into an empty bare repository",
             "`lg push` of bench:v1 and bench:v2 vs `git push` and dulwich's `porcelain.push` of the same "
             "refs from lg's store (goal: lg at most 1.2x git, issue 14).",
             "lg push REMOTE bench:v1 bench:v2", runs=5, quick_runs=2, build=build_push),
    Scenario(19, "remote-push-incremental", "push of one more version after ten files changed",
             "`lg push` of bench:v3 into a repository holding v1 and v2 vs `git push` of the same ref; the "
             "remote's growth in kB (goals: under 0.5 s and 100 kB, issue 14).",
             f"lg push REMOTE bench:v3 ({EDITS} files changed)", runs=9, quick_runs=3,
             build=build_incremental),
    Scenario(20, "remote-clone", "pull from lg serve vs from git daemon",
             "`lg pull` of bench:v2 into a fresh root from `lg serve` and from `git daemon` serving the same "
             "store, and `git clone --bare` from each (goal: lg serve at most 1.3x git daemon, issue 14).",
             "lg pull http://(lg serve) bench:v2, fresh root", runs=5, quick_runs=2, build=build_clone),
    Scenario(21, "rebuild-push", "push of an image rebuilt with --no-cache: git objects vs registry layers",
             "`lg build --no-cache` of a three-RUN Dockerfile on the minbase image, then `lg push` of the "
             "result to a git remote holding the first build; kB it adds vs the blobs a registry push would "
             "upload (goal: at most a tenth, issue 14).",
             "lg push REMOTE app:2 (rebuilt with --no-cache)", runs=3, quick_runs=2, build=build_rebuild),
]
