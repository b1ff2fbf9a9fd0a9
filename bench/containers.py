"""The scenarios of issues 3-6: import and export, running containers, networking, build.

Peers: podman (with runc, as DESIGN.md prescribes for this machine), bare `runc run`
as the floor of a container start, and for the published-port scenario the same
container reached directly at its address. Each podman comparison uses a private
podman store in the scenario's directory (see podman.py); each lg row its own
LG_ROOT there. Without podman (or runc, wrk) the rows that need it say "not
available" and the others still run.

Images: the import/export/first-run scenarios use the Debian minbase workload (the
same device-free copy and tarball as scenarios 1-6); the container scenarios use the
busybox fixture (fixtures/busybox.sh): committed into lg with `lg commit ROOTFS -t
bbench:1` and imported into podman from a tar of the same directory
(`podman import`), so neither side depends on the other's export.

Nothing a scenario starts outlives it: builders register clean-ups (lg rm -f of every
container of their roots, lg's monitors stopped by pid, podman rm/rmi -af on the
private store) that cli.py runs at the end of the scenario, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from .podman import Podman
from .procs import monitors, stop
from .report import MISSED, UNMEASURED, Spread, judge, ratio_range
from .scenarios import Context, Scenario, SetupFailed, q, retire
from .timing import Case, Goal, run
from .tools import REPO
from .workload import TAR_FLAGS

BUSYBOX_SCRIPT = REPO / "fixtures" / "busybox.sh"
HELPER = Path(__file__).resolve().parent / "helper.py"
LG_BB, PM_BB = "bbench:1", "localhost/lgbench-bb:1"
NO_PODMAN = "podman not found on PATH (bootstrap.sh installs it)"


# -- shared set-up -----------------------------------------------------------------------

_busybox: Path | None = None


def busybox_rootfs(ctx: Context) -> Path:
    """The busybox fixture's rootfs (built once, cached by the script itself)."""
    global _busybox
    if _busybox is None:
        ctx.log(f"fixture: {BUSYBOX_SCRIPT}")
        out = subprocess.run(["bash", str(BUSYBOX_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr,
                             text=True)
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or not lines or not Path(lines[-1]).is_dir():
            raise SetupFailed(f"{BUSYBOX_SCRIPT} failed (exit {out.returncode})")
        _busybox = Path(lines[-1])
    return _busybox


def lg_root(ctx: Context, name: str = "lg-root") -> tuple[Path, dict]:
    """A fresh LG_ROOT in the scenario's directory, cleaned up (containers removed, its
    monitor stopped) when the scenario ends."""
    root = ctx.path(name)
    env = {"LG_ROOT": str(root)}
    ctx.cleanups.append(lambda: lg_teardown(ctx, root))
    return root, env


def lg_teardown(ctx: Context, root: Path) -> None:
    if root.exists():
        env = dict(os.environ, LG_ROOT=str(root))
        ids = run(ctx.lg("ps", "-aq"), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if ids.returncode == 0 and ids.stdout.split():
            rm = run(ctx.lg("rm", "-f", *ids.stdout.split()), env=env, stdin=subprocess.DEVNULL,
                     capture_output=True, text=True, errors="replace")
            if rm.returncode != 0:
                ctx.note(f"clean-up: lg rm -f of {len(ids.stdout.split())} containers"
                         f" exited {rm.returncode}: "
                         f"{(rm.stderr.strip().splitlines() or ['no output'])[-1]}")
    # The monitor would exit 30 s after its last container; do not leave it to that.
    stop(monitors(str(root)))
    if (root / "networks").is_dir():
        # Bridges and nftables rules are host-wide and outlive the root's directory:
        # `lg network prune` is how lg removes an idle root's (README, "Containers, ...").
        env = dict(os.environ, LG_ROOT=str(root))
        out = run(ctx.lg("network", "prune"), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                  text=True, errors="replace")
        if out.returncode != 0:
            ctx.note(f"clean-up: lg network prune exited {out.returncode}: "
                     f"{(out.stderr.strip().splitlines() or ['no output'])[-1]}")
        leaked = host_leftovers(root)
        if leaked:
            ctx.note(f"lg leak: after lg rm -f and lg network prune, {leaked} remained on the host"
                     " (removed by the harness)")


def host_leftovers(root: Path) -> str | None:
    """lg's per-root nftables table (named layergit_ + sha256(root)[:10] since dff8b4d) and
    the bridges its rules name, if still there: removed, and described."""
    table = "layergit_" + hashlib.sha256(str(root).encode()).hexdigest()[:10]
    body = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    if body.returncode != 0:
        return None
    found = [f"nftables table ip {table}"]
    for bridge in sorted(set(re.findall(r'oifname != "([^"]+)"', body.stdout))):
        members = subprocess.run(["ip", "-br", "link", "show", "master", bridge],
                                 capture_output=True, text=True)
        if members.returncode == 0 and not members.stdout.strip():
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
            found.append(f"bridge {bridge}")
    subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
    return ", ".join(found)


def podman(ctx: Context, tag: str) -> Podman | None:
    """A private podman store for this scenario (podman.py), or None without podman."""
    if not ctx.tools.has("podman"):
        return None
    pm = Podman(ctx.tools["podman"], ctx.dir, tag)
    ctx.cleanups.append(lambda: pm.cleanup(ctx.log))
    return pm


def try_setup(fn) -> str | None:
    """Run a set-up step; its error line if it failed (the rows it feeds are then FAILED)."""
    try:
        fn()
    except SetupFailed as exc:
        return str(exc)
    return None


def busybox_images(ctx: Context, pm: Podman | None, lg_env: dict) -> tuple[str | None, str | None]:
    """bbench:1 in lg (`lg commit` of the fixture) and lgbench-bb:1 in podman (`podman
    import` of a tar of the same directory). Returns the (lg, podman) set-up errors."""
    bb = busybox_rootfs(ctx)
    lg_err = try_setup(
        lambda: ctx.run(ctx.lg("commit", bb, "-t", LG_BB), lg_env, "lg commit BUSYBOX -t bbench:1")
    )
    pm_err = None
    if pm is not None:
        tar = ctx.path("busybox.tar")
        if not tar.exists():
            ctx.run(["tar", *TAR_FLAGS, "-cf", str(tar), "-C", str(bb), "."])
        pm_err = try_setup(lambda: ctx.run(pm.argv("import", tar, PM_BB), what="podman import busybox.tar"))
    return lg_err, pm_err


def podman_case(pm: Podman | None, label: str, args: list, broken: str | None = None, **kw) -> Case:
    if pm is None:
        kept = {k: v for k, v in kw.items() if k in ("vs", "goal", "also")}
        return Case("podman", label, unavailable=NO_PODMAN, **kept)
    return Case("podman", label, pm.argv(*args), broken=broken, **kw)


def or_true(shell: str) -> str:
    """Shell code that runs `shell` quietly and never fails (removing what may not exist)."""
    return f"{{ {shell} >/dev/null 2>&1 || true; }}"


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", "--", str(path)], capture_output=True, text=True)
    try:
        return int(out.stdout.split()[0]) / 1024
    except (ValueError, IndexError):
        return 0.0


# -- 7. import ---------------------------------------------------------------------------

LG_IMPORT = "lg import minbase.tar -t x (fresh root)"


def build_import(ctx: Context) -> list[Case]:
    """The minbase tarball (the workload's device-free tar, as in scenario 3) into a
    fresh LG_ROOT every run vs `podman import` of the same tarball into podman's store,
    the image removed again (untimed) before each run."""
    tarball = ctx.workload.tarball
    root, env = lg_root(ctx)
    pm = podman(ctx, "import")
    cases = [Case("lg", LG_IMPORT, ctx.lg("import", tarball, "-t", "x"), env=env,
                  prepare=f"{retire(ctx, root)} && sync")]
    broken = None
    if pm is not None:
        broken = try_setup(lambda: ctx.run(pm.argv("images"), what="podman images (creates the store)"))
        name = "lgbench-import:x"
        cases.append(Case("podman", "podman import minbase.tar lgbench-import:x",
                          pm.argv("import", tarball, name),
                          prepare=f"{or_true(pm.sh('rmi', '-f', name))} && sync", broken=broken,
                          goal=Goal("lg faster than podman (issue 3)", "ratio", 1.0)))
    else:
        cases.append(Case("podman", "podman import minbase.tar", unavailable=NO_PODMAN))
    return cases


# -- 8. export ---------------------------------------------------------------------------

LG_EXPORT = "lg export IMG --format docker-archive -o FILE"


def build_export(ctx: Context) -> list[Case]:
    """One two-layer image in both tools: lg imports the minbase tarball, then commits a
    copy of it with ten files edited and a 5 MB file added on top (a second layer); lg
    exports it once and `podman load` reads that archive, so podman holds the very
    same two layers. Then `lg export` vs `podman save` of it, both docker-archive."""
    wl = ctx.workload
    root, env = lg_root(ctx)
    pm = podman(ctx, "export")
    img = "bexp:1"
    lg_err = try_setup(lambda: ctx.run(ctx.lg("import", wl.tarball, "-t", img), env, "lg import minbase.tar"))
    if lg_err is None:
        src = wl.copy(ctx.path("layer2"))
        wl.edit(src, wl.edits(10))
        with open(src / "opt" / "bench-5mb.bin", "wb") as f:
            f.write(os.urandom(5 * 10**6))
        lg_err = try_setup(lambda: ctx.run(ctx.lg("commit", src, "-t", img, "-m", "bench: second layer"), env,
                                           "lg commit (second layer)"))
    pm_err, pm_name = None, "lgbench-export:1"
    if pm is not None:
        setup_tar = ctx.path("setup-export.tar")
        loaded = None
        if lg_err is None:
            export = ctx.lg("export", img, "--format", "docker-archive", "-o", setup_tar)
            loaded = try_setup(lambda: ctx.run(export, env, "lg export (for podman load)"))
            if loaded is None:
                load = pm.argv("load", "-i", setup_tar)
                loaded = try_setup(lambda: ctx.run(load, what="podman load of lg's export"))
            if loaded is None:
                tag = pm.argv("tag", f"localhost/{img}", pm_name)
                loaded = try_setup(lambda: ctx.run(tag, what="podman tag"))
        if lg_err is not None or loaded is not None:
            # Fall back to the one-layer tarball so the podman row still has an image.
            ctx.note("podman's image is a plain `podman import` of minbase.tar (one layer):"
                     f" {lg_err or loaded}")
            pm_err = try_setup(lambda: ctx.run(pm.argv("import", wl.tarball, pm_name), what="podman import"))
        else:
            try:
                inspect = pm.argv("image", "inspect", "--format", "{{len .RootFS.Layers}}", pm_name)
                layers = ctx.run(inspect).strip()
            except SetupFailed as exc:
                layers = f"? ({exc})"
            ctx.note(f"podman's copy is lg's docker-archive export, loaded with `podman load`:"
                     f" {layers} layers")
    out_lg, out_pm = ctx.path("lg-out.tar"), ctx.path("podman-out.tar")

    def sizes():
        parts = [f"{name} {p.stat().st_size / 1e6:.0f} MB" for name, p in (("lg", out_lg), ("podman", out_pm))
                 if p.exists()]
        if parts:
            ctx.note("archive sizes: " + ", ".join(parts))

    ctx.after.append(sizes)
    return [
        Case("lg", LG_EXPORT, ctx.lg("export", img, "--format", "docker-archive", "-o", out_lg), env=env,
             broken=lg_err, prepare=f"{retire(ctx, out_lg)} && sync"),
        podman_case(pm, "podman save -o FILE IMG (docker-archive)", ["save", "-o", out_pm, pm_name],
                    broken=pm_err, prepare=f"{retire(ctx, out_pm)} && sync",
                    goal=Goal("lg faster than podman (issue 3)", "ratio", 1.0)),
    ]


# -- 9. run ------------------------------------------------------------------------------

LG_RUN = "lg run --rm --network none IMG true"


def runc_bundle(ctx: Context, rootfs: Path, args: list[str]) -> Path:
    """An OCI bundle for bare `runc run`: `runc spec`'s defaults (new pid, net, ipc, uts
    and mount namespaces: no network but loopback), no terminal, the given args."""
    bundle = ctx.path("runc-bundle")
    bundle.mkdir()
    subprocess.run(["cp", "-a", "--", str(rootfs), str(bundle / "rootfs")], check=True)
    ctx.run([ctx.tools["runc"], "spec", "--bundle", str(bundle)], what="runc spec")
    path = bundle / "config.json"
    spec = json.loads(path.read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    path.write_text(json.dumps(spec, indent=2))
    return bundle


def build_run(ctx: Context) -> list[Case]:
    """A container's whole life, start to removal, for a command that does nothing:
    lg vs podman vs bare runc, all on the busybox image, no network."""
    root, env = lg_root(ctx)
    pm = podman(ctx, "run")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    cases = [
        Case("lg", LG_RUN, ctx.lg("run", "--rm", "--network", "none", LG_BB, "true"), env=env, broken=lg_err),
        podman_case(pm, "podman run --rm --network none IMG true",
                    ["run", "--rm", "--network", "none", PM_BB, "true"],
                    broken=pm_err, goal=Goal("lg <= 0.5x podman (issue 4)", "ratio", 0.5),
                    also=(Goal("lg <= 0.35x podman (issue 13)", "ratio", 0.35),)),
    ]
    if ctx.tools.has("runc"):
        runc = ctx.tools["runc"]
        cid = f"lgbench-{os.getpid()}-run"
        bundle = runc_bundle(ctx, busybox_rootfs(ctx), ["true"])
        ctx.cleanups.append(lambda: subprocess.run([runc, "delete", "-f", cid], capture_output=True))
        # One id for every run (`runc run` deletes its container when it exits); the
        # prepare deletes a leftover, should a run have been interrupted.
        cases.append(Case("runc", "runc run (bundle from runc spec, read-only rootfs)",
                          [runc, "run", "--bundle", str(bundle), cid],
                          prepare=or_true(shlex.join([runc, "delete", "-f", cid]))))
    else:
        cases.append(Case("runc", "runc run", unavailable="runc not found on PATH"))
    return cases


# -- 10. first run -----------------------------------------------------------------------

LG_FIRST = "lg run --rm --network none IMG true, commit never materialised (fresh root)"
LG_CACHED = "lg run --rm --network none IMG true, commit materialised before"


def build_first_run(ctx: Context) -> list[Case]:
    """What the first container of a new commit costs over the next ones: the commit
    must be materialised (written out as directories overlayfs can mount). The image is
    the minbase workload, so that cost is visible. Every first-run row starts from a
    copy of a root that holds the commit and has never run it (restored in --prepare,
    as scenario 3 does); the cached row runs in a root that ran it once in set-up.
    podman, for scale, unpacked its image when it imported it."""
    wl = ctx.workload
    pristine, root_a, root_b = ctx.path("lg-pristine"), ctx.path("lg-root-first"), ctx.path("lg-root-cached")
    env_a, env_b = {"LG_ROOT": str(root_a)}, {"LG_ROOT": str(root_b)}
    ctx.cleanups.append(lambda: lg_teardown(ctx, root_b))
    img, argv = "mb:1", ["run", "--rm", "--network", "none", "mb:1", "true"]
    commit = ctx.lg("commit", wl.rootfs, "-t", img)
    err = try_setup(lambda: ctx.run(commit, {"LG_ROOT": str(pristine)}, "lg commit ROOTFS"))
    if err is None:
        subprocess.run(["cp", "-a", str(pristine), str(root_b)], check=True)
        before = du_mb(root_b)
        err = try_setup(lambda: ctx.run(ctx.lg(*argv), env_b, "first lg run (materialises the commit)"))
        if err is None:
            ctx.note(f"the first run grew the root from {before:.0f} MB to {du_mb(root_b):.0f} MB (du)")
    pm = podman(ctx, "first-run")
    pm_err = None
    if pm is not None:
        pm_import = pm.argv("import", wl.tarball, "lgbench-mb:1")
        pm_err = try_setup(lambda: ctx.run(pm_import, what="podman import minbase.tar"))
    return [
        Case("lg", LG_FIRST, ctx.lg(*argv), env=env_a, broken=err, vs=LG_CACHED,
             prepare=f"{retire(ctx, root_a)} && cp -a {q(pristine)} {q(root_a)} && sync"),
        Case("lg", LG_CACHED, ctx.lg(*argv), env=env_b, broken=err),
        podman_case(pm, "podman run --rm --network none IMG true (image unpacked at import)",
                    ["run", "--rm", "--network", "none", "localhost/lgbench-mb:1", "true"],
                    broken=pm_err, vs=LG_CACHED),
    ]


# -- 17. import to running --------------------------------------------------------------

LG_IMPORT_RUN = "lg import minbase.tar -t x && lg run --rm --network none x true"
LG_IMPORT_ONLY = "lg import minbase.tar -t x (the first half)"
LG_RUN_IMPORTED = "lg run --rm --network none x true, x just imported (the second half)"
LG_COMMIT_RUN = "lg commit ROOTFS -t x && lg run --rm --network none x true"


def build_import_to_run(ctx: Context) -> list[Case]:
    """What a user waits for from an image tarball to a container that ran: `lg import`
    and the first `lg run` of the image, in a root that has run a container before (its
    seccomp filter compiled, as any root in use has) but never saw the image, restored
    per run; vs `podman import` and `podman run` of the same tarball, the image removed
    before each run. Each half is timed alone too, and `lg commit` of the same tree
    followed by its first run."""
    wl = ctx.workload
    pristine, root = ctx.path("lg-pristine"), ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    ctx.cleanups.append(lambda: lg_teardown(ctx, root))
    pm = podman(ctx, "import-run")
    lg_err, _ = busybox_images(ctx, None, {"LG_ROOT": str(pristine)})
    if lg_err is None:
        lg_err = try_setup(lambda: ctx.run(ctx.lg("run", "--rm", "--network", "none", LG_BB, "true"),
                                           {"LG_ROOT": str(pristine)}, "lg run of busybox (the root in use)"))
    fresh = f"{retire(ctx, root)} && cp -a {q(pristine)} {q(root)}"
    imp = ctx.lg("import", wl.tarball, "-t", "x")
    run_x = ctx.lg("run", "--rm", "--network", "none", "x", "true")
    both = ["sh", "-c", f"{shlex.join(imp)} && {shlex.join(run_x)}"]
    commit = ctx.lg("commit", wl.rootfs, "-t", "x")
    cases = [
        Case("lg", LG_IMPORT_RUN, both, env=env, broken=lg_err, prepare=f"{fresh} && sync"),
        Case("lg", LG_IMPORT_ONLY, imp, env=env, broken=lg_err, prepare=f"{fresh} && sync"),
        Case("lg", LG_RUN_IMPORTED, run_x, env=env, broken=lg_err,
             prepare=f"{fresh} && LG_ROOT={q(root)} {shlex.join(imp)} >/dev/null && sync"),
        Case("lg", LG_COMMIT_RUN, ["sh", "-c", f"{shlex.join(commit)} && {shlex.join(run_x)}"], env=env,
             broken=lg_err, prepare=f"{fresh} && sync"),
    ]
    name = "localhost/lgbench-import-run:x"
    rmi = or_true(pm.sh("rmi", "-f", name)) if pm is not None else ""
    pm_imp = pm.argv("import", wl.tarball, name) if pm is not None else []
    pm_run = pm.argv("run", "--rm", "--network", "none", name, "true") if pm is not None else []
    pm_both = ["sh", "-c", f"{shlex.join(pm_imp)} >/dev/null && {shlex.join(pm_run)}"]
    goal = Goal("lg <= 0.8x podman, import to running (issue 13)", "ratio", 0.8)
    if pm is None:
        return cases + [Case("podman", "podman import && podman run", unavailable=NO_PODMAN)]
    pm_err = try_setup(lambda: ctx.run(pm.argv("images"), what="podman images (creates the store)"))
    return cases + [
        Case("podman", "podman import minbase.tar IMG && podman run --rm --network none IMG true",
             pm_both, prepare=f"{rmi} && sync", broken=pm_err, vs=LG_IMPORT_RUN, goal=goal),
        Case("podman", "podman import minbase.tar IMG (the first half)", pm_imp,
             prepare=f"{rmi} && sync", broken=pm_err, vs=LG_IMPORT_ONLY),
        Case("podman", "podman run --rm --network none IMG true, IMG just imported (the second half)", pm_run,
             prepare=f"{rmi} && {shlex.join(pm_imp)} >/dev/null && sync", broken=pm_err, vs=LG_RUN_IMPORTED),
        Case("podman", "podman import && podman run, vs lg commit && lg run", pm_both,
             prepare=f"{rmi} && sync", broken=pm_err, vs=LG_COMMIT_RUN,
             goal=Goal("lg <= 0.8x podman, commit to running (issue 13)", "ratio", 0.8)),
    ]


# -- 11. density -------------------------------------------------------------------------

DENSITY = 100


def build_density(ctx: Context) -> list[Case]:
    """N detached `sleep infinity` containers, started one after another (sequentially,
    no parallelism), with lg and with podman: the time to start them all, then the host
    memory each tool keeps per container beyond the container's own process (helper.py
    density-reset measures it before removing them; see procs.py for PSS)."""
    return density_cases(ctx, "density", [], "issue 4", time_goal=True)


# Scenario 28: the same containers under supervision (issue 18): a restart policy, a health
# check every 2 s, a log size limit. Memory is measured after the last start, by which time
# the first containers' checks have run many times.
SUPERVISED = ["--restart", "always", "--health-cmd", "true", "--health-interval", "2s"]


def build_supervised(ctx: Context) -> list[Case]:
    """Scenario 11's containers with a restart policy and a health check each (lg's monitor
    carries both; podman gives each container a conmon and runs checks by timer)."""
    return density_cases(ctx, "supervised", SUPERVISED + ["--log-opt", "max-size=1m"], "issue 18",
                         SUPERVISED + ["--log-opt", "max-size=1m"])


def density_cases(ctx: Context, tag: str, lg_flags: list[str], issue: str,
                  pm_flags: list[str] | None = None, time_goal: bool = False) -> list[Case]:
    """The density measurement with ``lg_flags`` (and ``pm_flags`` for podman) on every run;
    the start time is judged only where the issue set a goal for it (``time_goal``)."""
    root, env = lg_root(ctx)
    pm = podman(ctx, tag)
    lg_err, pm_err = busybox_images(ctx, pm, env)
    figures = ctx.path(f"{tag}.jsonl")
    config = ctx.path(f"{tag}.json")
    config.write_text(json.dumps({"lg": ctx.tools.lg, "lg_root": str(root), "figures": str(figures),
                                  "podman": pm.prefix if pm else None,
                                  "podman_marks": pm.marks if pm else []}))
    reset = shlex.join([sys.executable, str(HELPER), "density-reset", str(config)])

    def loop(argv_of) -> list[str]:
        one = " ".join(argv_of("$i"))
        # Errors to stdout (ids to /dev/null): a row without warm-up keeps only stdout.
        return ["sh", "-c", f'i=1; while [ "$i" -le {DENSITY} ]; do {one} 2>&1 >/dev/null || exit $?;'
                            ' i=$((i + 1)); done']

    shown = " ".join(lg_flags) + " " if lg_flags else ""
    lg_loop = loop(lambda i: [shlex.join(ctx.lg("run", "-d", "--network", "none", *lg_flags, "--name"))
                              + f" dens{i}", shlex.join([LG_BB, "sleep", "infinity"])])
    cases = [Case("lg", f"lg run -d --network none {shown}IMG sleep infinity, x{DENSITY} one after another",
                  lg_loop, env=env, broken=lg_err, prepare=reset, warmup=False)]
    if pm is not None:
        pm_loop = loop(lambda i: [pm.sh("run", "-d", "--network", "none", *(pm_flags or []), "--name")
                                  + f" lgbench-dens{i}", shlex.join([PM_BB, "sleep", "infinity"])])
        cases.append(Case("podman", f"podman run -d --network none {shown}IMG sleep infinity, x{DENSITY}",
                          pm_loop, broken=pm_err, prepare=reset, warmup=False,
                          goal=Goal(f"lg below podman ({issue})", "ratio", 1.0) if time_goal else None))
    else:
        cases.append(Case("podman", f"podman run -d ... x{DENSITY}", unavailable=NO_PODMAN))

    def memory():
        from .helper import density_reset

        density_reset(str(config))  # the last run's containers: measure, then remove
        records = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
        ctx.figures[tag] = records
        per: dict[str, Spread] = {}
        for tool in ("lg", "podman"):
            full = [r for r in records if r["tool"] == tool and r["containers"] == DENSITY]
            if not full:
                continue
            pss, rss, own = (Spread.of(r[key] / DENSITY for r in full)
                             for key in ("helper_pss_kb", "helper_rss_kb", "container_pss_kb"))
            names: dict[str, int] = {}
            for h in full[-1]["helpers"]:
                names[h["name"]] = names.get(h["name"], 0) + 1
            per[tool] = pss
            what = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(names.items())) or "nothing"
            ctx.note(f"{tool}: {DENSITY} containers left {what} running; "
                     f"their PSS {pss.median * DENSITY / 1024:.1f} MB = {pss.text(unit=' kB')} per container "
                     f"(RSS {rss.text(unit=' kB')} per container); "
                     f"the containers' own processes: {own.text(unit=' kB')} PSS each")
        if "lg" in per and "podman" in per:
            lg_pss, pm_pss = per["lg"], per["podman"]
            ctx.check(f"host memory per container beyond its own process (PSS), lg below podman ({issue})",
                      f"lg {lg_pss.text(unit=' kB')} vs podman {pm_pss.text(unit=' kB')}",
                      judge(*ratio_range(lg_pss, pm_pss), 1.0), lg_pss.median < pm_pss.median)
        elif records or per:
            ctx.note(f"memory: not every tool completed a run of {DENSITY} containers, so no comparison")

    ctx.after.append(memory)
    return cases


# -- 12. commit a container --------------------------------------------------------------

LG_CCOMMIT = "lg commit C -t x:y (C wrote 10 files, 5 MB)"
WRITE_5MB = ('mkdir -p /data && i=0; while [ "$i" -lt 10 ]; do head -c 500000 /dev/urandom >/data/f$i;'
             ' i=$((i + 1)); done')


def build_commit_container(ctx: Context) -> list[Case]:
    """A container that wrote 10 files of 500,000 random bytes (made afresh, untimed,
    before every run: the writes are part of the state, not of the time), then
    `lg commit C` vs `podman commit C`. Both containers have exited when committed."""
    root, env = lg_root(ctx)
    pm = podman(ctx, "commit")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    lg_write = shlex.join(ctx.lg("run", "--name", "cc", "--network", "none", LG_BB, "sh", "-c", WRITE_5MB))
    cases = [Case("lg", LG_CCOMMIT, ctx.lg("commit", "cc", "-t", "ccommit:y"), env=env, broken=lg_err,
                  prepare=f"{or_true(shlex.join(ctx.lg('rm', '-f', 'cc')))} && {lg_write} && sync")]
    if pm is not None:
        pm_write = pm.sh("run", "--name", "lgbench-cc", "--network", "none", PM_BB, "sh", "-c", WRITE_5MB)
        pm_rm = or_true(pm.sh("rm", "-f", "-t", "0", "lgbench-cc"))
        cases.append(Case("podman", "podman commit C lgbench-ccommit:y",
                          pm.argv("commit", "lgbench-cc", "lgbench-ccommit:y"),
                          broken=pm_err,
                          prepare=f"{pm_rm} && {pm_write} && sync"))
    else:
        cases.append(Case("podman", "podman commit", unavailable=NO_PODMAN))
    return cases


# -- 13. bridge run ----------------------------------------------------------------------

LG_BRIDGE = "lg run --rm IMG true (default bridge; lg's monitor up)"
LG_BRIDGE_COLD = "lg run --rm IMG true (default bridge; monitor started by the run)"


def bridge_check(ctx: Context, env: dict, network: str = "bridge") -> str | None:
    """Whether lg's network has its gateway on its bridge (the host reaches the containers
    only then). Returns a description of the problem, or None."""
    try:
        shown = ctx.run(ctx.lg("network", "inspect", network), env, f"lg network inspect {network}")
        info = json.loads(shown)[0]
    except (SetupFailed, ValueError, IndexError, KeyError) as exc:
        return f"cannot inspect lg's {network} network: {exc}"
    bridge = info.get("Bridge")
    gateways = [c.get("Gateway") for c in info.get("IPAM", {}).get("Config", [])]
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", str(bridge)],
                         capture_output=True, text=True)
    have = re.findall(r"inet (\S+)", out.stdout)
    if not any(g and any(h.split("/")[0] == g for h in have) for g in gateways):
        return (f"lg's {network} network in this root ({info.get('IPAM', {}).get('Config')})"
                f" uses bridge {bridge}, which holds {', '.join(have) or 'no IPv4 address'}"
                f" but not the gateway {', '.join(map(str, gateways))} "
                f"(made by another root?): the host cannot reach these containers")
    return None


def build_bridge_run(ctx: Context) -> list[Case]:
    """`lg run --rm IMG true` on the default bridge network: the container gets a veth,
    an address and a route from lg's monitor. Two lg rows: the monitor already running
    (as when other containers run), and the monitor stopped before the run, so the run
    pays for starting it (python and pyroute2). podman uses its default bridge (netavark)."""
    root, env = lg_root(ctx)
    pm = podman(ctx, "bridge-run")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    argv = ctx.lg("run", "--rm", LG_BB, "true")
    if lg_err is None:
        lg_err = try_setup(lambda: ctx.run(argv, env, "first bridged lg run"))
        problem = bridge_check(ctx, env) if lg_err is None else None
        if problem:
            ctx.note(f"lg bug: {problem} (`true` needs no traffic, so the timings stand)")
    kill = shlex.join([sys.executable, str(HELPER), "kill-monitor", str(root)])
    return [
        Case("lg", LG_BRIDGE, argv, env=env, broken=lg_err),
        Case("lg", LG_BRIDGE_COLD, argv, env=env, broken=lg_err, prepare=kill, vs=LG_BRIDGE),
        podman_case(pm, "podman run --rm IMG true (podman's default bridge)", ["run", "--rm", PM_BB, "true"],
                    broken=pm_err, goal=Goal("lg <= 0.5x podman (issue 5)", "ratio", 0.5)),
    ]


# -- 14. published port ------------------------------------------------------------------

REQUESTS = 300          # per timed run of the sequential client
PARALLEL = 8
WRK_CONNECTIONS = (1, 8)  # one connection at a time (latency), then 8 at once (throughput)
WRK_SECONDS = 1
WRK_PORT = 8000         # the containers' first wrk listener (see build_port)
CONNTRACK = Path("/proc/sys/net/netfilter")
CONNTRACK_WAIT = 130    # s: a closed connection's entry lives 120 s (nf_conntrack_tcp_timeout_time_wait)
LG_PORT = f"{REQUESTS} sequential GETs (curl), through lg's published port 127.0.0.1:PORT"
LG_PORT_PAR = f"{REQUESTS} GETs, {PARALLEL} at a time (curl -Z), through lg's published port"
LG_HOST = f"{REQUESTS} sequential GETs (curl), through lg's published port HOST_ADDRESS:PORT3"
LG_HOST_PAR = f"{REQUESTS} GETs, {PARALLEL} at a time (curl -Z), through lg's port on the host address"


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports: all are held while choosing, so none comes twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def host_address() -> str | None:
    """One of this host's own non-loopback IPv4 addresses (not an lg bridge's), if any."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 3 and not fields[1].startswith("lg"):
            return fields[3].split("/")[0]
    return None


def reachable(url: str, curl: str) -> str | None:
    out = subprocess.run([curl, "-sS", "-f", "--noproxy", "*", "-m", "3", "-o", "/dev/null", url],
                         capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stderr.strip() or f"curl exit {out.returncode}")


def container_ip(ctx: Context, argv: list[str], env: dict | None = None) -> str:
    data = json.loads(ctx.run(argv, env))
    ip = data[0]["NetworkSettings"]["IPAddress"]
    ipaddress.ip_address(ip)  # ValueError if empty or malformed
    return ip


def ephemeral_ports() -> int:
    """How many source ports connect() can choose from towards one destination."""
    lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return hi - lo + 1


def conntrack_room(need: int) -> float:
    """Wait until `need` more entries fit in three quarters of the host's connection-tracking
    table, at most CONNTRACK_WAIT seconds; returns the seconds waited.

    Why: each connection the host makes while lg's or podman's NAT rules are loaded holds
    an entry there until 120 s after it closes, and the table is host-wide. Unpaced, the
    wrk runs of one scenario filled it (262,144 entries on the 2-core VM): the kernel then
    dropped new connections' packets, for every user of the machine, and the last rounds
    fell to a few requests/s. The last quarter is left to the machine's other users."""
    start = time.monotonic()
    while time.monotonic() - start < CONNTRACK_WAIT:
        try:
            count, limit = (int((CONNTRACK / f"nf_conntrack_{n}").read_text()) for n in ("count", "max"))
        except (OSError, ValueError):
            break  # no connection tracking here
        if count + need <= limit * 3 // 4:
            break
        time.sleep(1)
    return time.monotonic() - start


def publish(prefix: str, hosts: list[int], ports: range) -> list[str]:
    """`-p PREFIX HOST:CONTAINER` for each host port and the container port beside it."""
    return [arg for h, c in zip(hosts, ports, strict=True) for arg in ("-p", f"{prefix}{h}:{c}")]


def httpd(wrk_ports: range) -> list[str]:
    """busybox httpd on port 80 (the timed curl rows) as the container's main process,
    after one daemonised httpd per port of `wrk_ports`, so that every wrk run can have a
    destination of its own (see build_port)."""
    daemons = "".join(f"httpd -p {p} -h /var/www && " for p in wrk_ports)
    return ["sh", "-c", daemons + "exec httpd -f -p 80 -h /var/www"]


def build_port(ctx: Context) -> list[Case]:  # noqa: C901 (one scenario's set-up, in the order it runs)
    """A busybox httpd container serving the fixture's index.html (about 150 bytes),
    published on 127.0.0.1:PORT (for host processes a connect-time BPF redirect straight to
    the container; lg's userland proxy for the rest) and on every address as PORT3,
    reached through 127.0.0.1:PORT, through the host's own non-loopback address on
    PORT3 (kernel NAT) and straight at its address. Timed rows: REQUESTS GETs by one
    curl process, sequential (busybox httpd closes every connection, so each is a new
    TCP connection: latency per request = time / REQUESTS) and PARALLEL at a time
    (throughput). After them, wrk: rounds of one short run per path, paths interleaved
    within each round, with 1 and with 8 connections. Traffic goes only to 127.0.0.1, the
    host's own address and the containers' addresses, bounded in count and time.

    Why every wrk run gets a destination (address and port) no earlier run used: wrk
    closes each connection first, so each request leaves a TIME_WAIT socket on the host
    for 60 s, keyed by its 4-tuple. A 1 s run makes thousands, all towards one destination,
    and connect() may only pick a source port whose tuple towards that destination is
    free (tcp_tw_reuse, at its default, helps only towards 127.0.0.0/8, i.e. podman's
    published port but not lg's, which the BPF redirect turns into the container's
    address, nor the direct path). Runs sharing a destination therefore ran out of
    source ports after a few rounds and dropped from thousands to hundreds of requests/s,
    whichever path came later. So the containers listen on a port per wrk run and path
    besides 80, published one to one on fresh host ports: each run starts with an empty
    tuple space, as the first did, and rounds compare like with like. The runs are also
    paced so that their connection-tracking entries never fill the host's table
    (conntrack_room)."""
    if not ctx.tools.has("curl"):
        return [Case("lg", "published port", unavailable="curl not found on PATH")]
    curl = ctx.tools["curl"]
    root, env = lg_root(ctx)
    pm = podman(ctx, "port")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    rounds = 5 if ctx.runs >= 5 else 3
    per_path = len(WRK_CONNECTIONS) * rounds        # wrk runs per path
    # Container ports of the wrk runs: the direct, 127.0.0.1 and host-address paths each
    # have their own block (the first two meet at the container's address); podman's
    # container has an address of its own and reuses the first block.
    ports = range(WRK_PORT, WRK_PORT + 3 * per_path)
    direct_ports, pub_ports, host_ports = (ports[i * per_path:(i + 1) * per_path] for i in range(3))
    port, hport, pport, *spare = free_ports(3 + 3 * per_path)
    pub_hosts, host_hosts, pm_hosts = (spare[i * per_path:(i + 1) * per_path] for i in range(3))
    host = host_address()
    lg_pub = lg_direct = lg_host = None
    host_err = None if host else "the host has no non-loopback IPv4 address"
    network = "bridge"
    wrk_urls: dict[str, list[str]] = {}
    if lg_err is None:
        published = ["-p", f"127.0.0.1:{port}:80", "-p", f"{hport}:80",
                     *publish("127.0.0.1:", pub_hosts, pub_ports), *publish("", host_hosts, host_ports)]

        def start(net: str):
            ctx.run(ctx.lg("run", "-d", "--name", "web", "--network", net, *published, LG_BB, *httpd(ports)),
                    env, f"lg run -d -p 127.0.0.1:{port}:80 -p {hport}:80 (and {2 * per_path} -p for wrk) "
                    f"--network {net} (httpd)")
            time.sleep(0.5)
            return container_ip(ctx, ctx.lg("inspect", "web"), env)

        try:
            ip = start(network)
            why = reachable(f"http://{ip}/", curl) or reachable(f"http://127.0.0.1:{port}/", curl)
            if why:
                problem = bridge_check(ctx, env) or "no bridge problem found"
                ctx.note(f"lg bug: the httpd container on the default bridge does not answer ({why});"
                         f" {problem}. "
                         "Measured on a user-defined network instead (`lg network create lgbench-port`)")
                ctx.run(ctx.lg("rm", "-f", "web"), env)
                network = "lgbench-port"
                ctx.run(ctx.lg("network", "create", network), env, "lg network create")
                def remove_network():
                    # Its containers first (clean-ups run last-registered-first, and
                    # `lg network rm` refuses a network in use).
                    lg_teardown(ctx, root)
                    out = run(ctx.lg("network", "rm", network), env=dict(os.environ, **env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
                    if out.returncode != 0:
                        ctx.note(f"clean-up: lg network rm {network} exited {out.returncode}: "
                                 f"{(out.stderr.strip().splitlines() or ['no output'])[-1]}")

                ctx.cleanups.append(remove_network)
                ip = start(network)
                why = reachable(f"http://{ip}/", curl) or reachable(f"http://127.0.0.1:{port}/", curl)
                if why:
                    raise SetupFailed(f"httpd container on {network} does not answer either: {why}")
            lg_pub, lg_direct = f"http://127.0.0.1:{port}/", f"http://{ip}/"
            wrk_urls["direct"] = [f"http://{ip}:{c}/" for c in direct_ports]
            wrk_urls["lg published"] = [f"http://127.0.0.1:{h}/" for h in pub_hosts]
            if host:
                host_err = reachable(f"http://{host}:{hport}/", curl)
                lg_host = None if host_err else f"http://{host}:{hport}/"
                if lg_host:
                    wrk_urls["lg host address"] = [f"http://{host}:{h}/" for h in host_hosts]
        except (SetupFailed, ValueError, KeyError, IndexError) as exc:
            lg_err = str(exc)
        if host:
            ctx.note(f"HOST_ADDRESS is {host}, one of this host's own addresses: lg DNATs it in the kernel; "
                     "a host process's connect to 127.0.0.1:PORT is redirected to the container by lg's BPF "
                     "program (the userland proxy if the kernel refused it)")
    pm_pub = None
    if pm is not None and pm_err is None:
        try:
            ctx.run(pm.argv("run", "-d", "--name", "lgbench-web", "-p", f"127.0.0.1:{pport}:80",
                            *publish("127.0.0.1:", pm_hosts, direct_ports), PM_BB, *httpd(ports)),
                    what="podman run -d -p (httpd)")
            time.sleep(0.5)
            why = reachable(f"http://127.0.0.1:{pport}/", curl)
            if why:
                raise SetupFailed(f"podman's published port does not answer: {why}")
            pm_pub = f"http://127.0.0.1:{pport}/"
            wrk_urls["podman published"] = [f"http://127.0.0.1:{h}/" for h in pm_hosts]
        except SetupFailed as exc:
            pm_err = str(exc)

    def client(url: str | None, parallel: bool = False) -> list[str]:
        # URL globbing: REQUESTS GETs in one curl process, bodies to stdout (discarded);
        # sequential, or PARALLEL at a time (-Z).
        if not url:
            return []
        return [curl, "-sS", "-f", "--noproxy", "*", "-m", "10",
                *(["-Z", "--parallel-max", str(PARALLEL)] if parallel else []), f"{url}?[1-{REQUESTS}]"]

    if lg_err is None:
        on = "default bridge" if network == "bridge" else network + " network"
        ctx.note(f"lg's httpd container is on lg's {on}")
    goal = Goal("published-port overhead under 20% (issue 5)", "ratio", 1.2)
    cases = []
    for parallel, lg_label in ((False, LG_PORT), (True, LG_PORT_PAR)):
        if parallel:
            what = f"{REQUESTS} GETs, {PARALLEL} at a time (curl -Z), "
        else:
            what = f"{REQUESTS} sequential GETs (curl), "
        host_label = LG_HOST_PAR if parallel else LG_HOST
        cases += [
            Case("lg", lg_label, client(lg_pub, parallel), broken=lg_err),
            Case("direct", what + "straight to the lg container's address", client(lg_direct, parallel),
                 broken=lg_err, vs=lg_label, goal=goal),
            Case("lg", host_label, client(lg_host, parallel), broken=lg_err or host_err),
            Case("direct", what + "straight to the lg container's address (vs the host-address row)",
                 client(lg_direct, parallel), broken=lg_err or host_err, vs=host_label, goal=goal),
        ]
        if pm is None:
            cases.append(Case("podman", what + "podman's published port", unavailable=NO_PODMAN, vs=lg_label))
        else:
            cases.append(Case("podman", what + "podman's published port 127.0.0.1:PORT2",
                              client(pm_pub, parallel), broken=pm_err, vs=lg_label))

    def throughput():  # noqa: C901 (the wrk rounds, then their verdicts; split, each half needs all the state)
        if not ctx.tools.has("wrk"):
            ctx.note("throughput: not measured, wrk is not installed (bootstrap.sh installs it)")
            return
        if wrk_urls:
            ctx.note(f"wrk: {rounds} rounds of {WRK_SECONDS} s per path and connection count, paths "
                     "interleaved; each run to a container port (and published port) of its own, so no run "
                     "meets an earlier one's TIME_WAIT sockets. Figures: median (interquartile range, or the "
                     "whole range for 2-3 rounds)")
        targets = {}
        for name, urls in wrk_urls.items():
            why = next(filter(None, (reachable(url, curl) for url in urls)), None)
            if why:
                ctx.note(f"wrk: {name} not measured, one of its ports does not answer: {why}")
            else:
                targets[name] = urls
        results: dict[tuple[int, str], list[dict]] = {}
        dead = None
        waited, need = 0.0, 0    # need: the most connections a run has made so far
        # Each round starts one path further on, so that no path always runs first (after
        # a pause for the conntrack table, say) or right after the same other one. Direct
        # starts the first: should lg's proxy die, the lg container has lost its monitor,
        # so none of its paths is measured after that.
        names = list(targets)
        for i, conns in enumerate(WRK_CONNECTIONS):
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    if name != "podman published" and dead:
                        continue
                    url = targets[name][i * rounds + r]
                    wait = conntrack_room(need)
                    if wait >= CONNTRACK_WAIT:
                        ctx.note(f"wrk: the host's connection-tracking table stayed three quarters full for "
                                 f"{CONNTRACK_WAIT} s (other users' connections?); ran on regardless")
                    waited += wait
                    result = wrk(ctx.tools["wrk"], url, conns) | {"waited_s": round(wait, 1)}
                    need = max(need, result.get("requests", 0))
                    results.setdefault((conns, name), []).append(result)
                    why = reachable(url, curl) if name == "lg published" else None
                    if why:
                        dead = why
                        ctx.note(f"lg bug: the published port stopped answering during wrk -c{conns}"
                                 f" ({why}); lg's monitor: {monitor_failure(root)}."
                                 " No further wrk runs to lg's container")
        ctx.figures["wrk"] = [{"connections": c, "target": n, "runs": r} for (c, n), r in results.items()]
        ctx.figures["wrk_conntrack_wait_s"] = waited
        if waited >= 1:
            ctx.note(f"wrk: waited {waited:.0f} s in all between runs for room in the host's "
                     "connection-tracking table (the bench keeps it under three quarters full; each "
                     "connection's entry lasts 120 s)")
        summary = wrk_summary(ctx, results)
        paths = {"lg published": "127.0.0.1 (BPF connect redirect)",
                 "lg host address": "the host's address (kernel NAT)"}
        for conns in WRK_CONNECTIONS:
            direct = summary.get((conns, "direct"))
            for name, path in paths.items():
                what = (f"wrk -c{conns}: throughput through lg's published port on {path}"
                        " within 20% of direct (issue 5)")
                if (conns, name) not in results or direct is None:
                    if dead and lg_pub:
                        ctx.check(what, "no figure, lg's port proxy had crashed", UNMEASURED)
                    continue
                got = summary.get((conns, name))
                if got is None:
                    ctx.check(what, "no successful wrk run through lg's port", MISSED, False)
                    continue
                # Overhead under 20%: got/direct above 0.8, i.e. 1 - got/direct at most 0.2.
                lo, hi = ratio_range(got["rps"], direct["rps"])
                share = got["rps"].median / direct["rps"].median
                ctx.check(what, f"{got['rps'].text(unit=' req/s')} vs {direct['rps'].text(unit=' req/s')}, "
                                f"{share:.0%} of direct ({lo:.0%}-{hi:.0%} within the spreads); "
                                f"p50 latency {got['p50_ms'].text('{:.2f}', ' ms')} vs "
                                f"{direct['p50_ms'].text('{:.2f}', ' ms')}",
                          judge(1 - hi, 1 - lo, 0.2), share > 0.8)

    ctx.after.append(throughput)
    return cases


def wrk_summary(ctx: Context, results: dict[tuple[int, str], list[dict]]) -> dict[tuple[int, str], dict]:
    """Per (connections, path): the spread of requests/s and of p50/p99 latency over the
    successful rounds, each noted; and a warning where a run came near running out of
    source ports on its own (a machine so much faster that one run fills its tuple space:
    connect() then skips ever more ports still in TIME_WAIT, and near the end finds none)."""
    summary = {}
    ports = ephemeral_ports()
    limit = ports * 3 // 4
    for (conns, name), runs in results.items():
        what = f"wrk -t{min(2, conns)} -c{conns} -d{WRK_SECONDS}s, {name}"
        ok = [r for r in runs if r.get("rps")]
        if not ok:
            last = runs[-1]
            ctx.note(f"{what}: {last.get('error') or 'no successful requests'}"
                     + (f" ({last['errors']} socket errors/non-2xx)" if last.get("errors") else ""))
            continue
        s = summary[conns, name] = {k: Spread.of(r[k] for r in ok) for k in ("rps", "p50_ms", "p99_ms")}
        errors = sum(r["errors"] for r in ok)
        lost = [r.get("error") or "no successful requests" for r in runs if not r.get("rps")]
        ctx.note(f"{what}: {s['rps'].text(unit=' req/s')} over {len(ok)} rounds; latency p50 "
                 f"{s['p50_ms'].text('{:.2f}', ' ms')}, p99 {s['p99_ms'].text('{:.2f}', ' ms')}"
                 + (f"; {errors} socket errors/non-2xx" if errors else "")
                 + (f"; {len(lost)} more rounds failed ({lost[-1]})" if lost else ""))
        most = max(r["requests"] for r in ok)
        if most > limit:
            ctx.note(f"{what}: a run made {most} connections, near the {ports} source ports one "
                     "destination allows; connect() hunting for free ports may have held it back "
                     "(shorten WRK_SECONDS on a machine this fast)")
    return summary


def monitor_failure(root: Path) -> str:
    """The monitor's last words (the end of ROOT/run/monitor.log), or that it still runs."""
    if monitors(str(root)):
        return "still running"
    try:
        text = (root / "run" / "monitor.log").read_text(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    except OSError:
        return "exited, no monitor.log"
    frames = [ln for ln in lines if ln.startswith("File ")]
    where = frames[-1] if frames else ""
    last = lines[-1] if lines else "nothing"
    return f"exited; monitor.log ends with {last}" + (f" at {where}" if where else "")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def wrk(exe: str, url: str, conns: int) -> dict:
    """One bounded wrk run: requests/s, requests made, latency percentiles (ms), failed
    requests; or an error."""
    argv = [exe, f"-t{min(2, conns)}", f"-c{conns}", f"-d{WRK_SECONDS}s", "--timeout", "2s", "--latency", url]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=WRK_SECONDS + 30)
    except subprocess.TimeoutExpired:
        return {"url": url, "error": "wrk timed out"}
    text = out.stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    made = re.search(r"(\d+) requests in", text)
    pcts = {key: re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
            for key, pct in (("p50_ms", "50"), ("p99_ms", "99"))}
    if out.returncode != 0 or not rps or not made or not all(pcts.values()):
        return {"url": url, "error": f"wrk exit {out.returncode}: {(out.stderr or text).strip()[-200:]}"}
    # Requests that failed (connection errors, non-2xx) do not count as throughput.
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = (sum(int(x) for x in e.groups()) if e else 0) + (int(n.group(1)) if n else 0)
    return {"url": url, "rps": float(rps.group(1)), "requests": int(made.group(1)), "errors": errors,
            **{key: float(m.group(1)) * _UNITS[m.group(2)] for key, m in pcts.items() if m}}


# -- 15. build ---------------------------------------------------------------------------

DOCKERFILE = """\
FROM {base}
ENV APP_HOME=/app GREETING=hello
WORKDIR /app
RUN mkdir -p /app/data && echo "$GREETING" >/app/data/greeting
COPY a.txt /app/
RUN i=0; while [ "$i" -lt 200 ]; do echo "line $i" >>/app/data/lines; i=$((i + 1)); done
COPY b.txt /app/
RUN wc -l /app/data/lines >/app/data/count && chmod 0644 /app/data/count
COPY last.txt /app/
CMD ["cat", "/app/data/count"]
"""
LG_BUILD_CACHED = "lg build (10 steps, all cached)"
LG_BUILD_LAST = "lg build, last COPY's source changed"
LG_BUILD_COLD = "lg build --no-cache (cold)"


def build_build(ctx: Context) -> list[Case]:
    """A 10-instruction Dockerfile on the busybox image (RUN steps need no network; both
    tools build with --network none and -q): a fully cached rebuild, a rebuild after
    the last COPY's source changed (the prepare writes new content into it: that COPY
    and the CMD after it run again), and a build with --no-cache. Each row has its own
    context directory (lg's and podman's Dockerfiles differ only in FROM), built once
    in set-up. "Cold" is --no-cache for both: the base image is already unpacked on both
    sides, the steps all run again."""
    why = ctx.tools.lg_command_works("build")
    root, env = lg_root(ctx)
    pm = podman(ctx, "build")
    lg_err, pm_err = (None, None)
    if why is None:
        lg_err, pm_err = busybox_images(ctx, pm, env)
    elif pm is not None:
        _, pm_err = busybox_images(ctx, pm, {"LG_ROOT": str(root)})

    def context(name: str, base: str) -> Path:
        d = ctx.path(name)
        d.mkdir()
        (d / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        (d / "a.txt").write_text("a\n")
        (d / "b.txt").write_text("b\n" * 1000)
        (d / "last.txt").write_text("version 0\n")
        return d

    def touch_last(d: Path) -> str:
        # New content every run (nanoseconds), so the step really changes each time.
        return f"date +%s%N >{q(d / 'last.txt')}"

    cases = []
    rows = [("cached", LG_BUILD_CACHED, "podman build (all cached)", [], False,
             Goal("lg <= 0.5x podman (issue 6)", "ratio", 0.5)),
            ("last", LG_BUILD_LAST, "podman build, last COPY's source changed", [], True, None),
            ("cold", LG_BUILD_COLD, "podman build --no-cache (cold)", ["--no-cache"], False, None)]
    for key, lg_label, pm_label, extra, touch, goal in rows:
        if why is not None:
            cases.append(Case("lg", lg_label, unavailable=why))
        else:
            d = context(f"ctx-lg-{key}", LG_BB)
            argv = ctx.lg("build", "-q", "--network", "none", *extra, "-t", f"built-{key}:1", d)
            what = f"first lg build ({key})"
            err = lg_err or try_setup(lambda argv=argv, what=what: ctx.run(argv, env, what))
            lg_goal = Goal("lg < 1 s (issue 6)", "seconds", 1.0) if key == "cached" else None
            cases.append(Case("lg", lg_label, argv, env=env, broken=err,
                              prepare=touch_last(d) if touch else None, goal=lg_goal))
        if pm is None:
            cases.append(Case("podman", pm_label, unavailable=NO_PODMAN, vs=lg_label))
            continue
        d = context(f"ctx-podman-{key}", PM_BB)
        argv = pm.argv("build", "-q", "--network", "none", *extra, "-t", f"lgbench-built-{key}:1", d)
        what = f"first podman build ({key})"
        err = pm_err or try_setup(lambda argv=argv, what=what: ctx.run(argv, what=what))
        cases.append(Case("podman", pm_label, argv, broken=err, prepare=touch_last(d) if touch else None,
                          vs=lg_label, goal=goal))
    if why is not None:
        ctx.note(f"lg build: not available ({why}); podman's rows still run")
    return cases


CONTAINER_SCENARIOS = [
    Scenario(7, "import", "import of the minbase tarball",
             "`lg import minbase.tar -t x` into a fresh LG_ROOT vs `podman import` of the same tarball "
             "(the image removed before each run).",
             LG_IMPORT, runs=5, quick_runs=2, build=build_import),
    Scenario(8, "export", "export of a two-layer image as a docker-archive",
             "`lg export IMG --format docker-archive -o FILE` vs `podman save -o FILE IMG` of the same two "
             "layers (minbase plus ten edited files and 5 MB), podman's copy loaded from lg's export.",
             LG_EXPORT, runs=5, quick_runs=2, build=build_export),
    Scenario(9, "run", "start, run `true`, remove: no network",
             "`lg run --rm --network none IMG true` vs `podman run --rm --network none IMG true` and bare "
             "`runc run` of a bundle, on the busybox image.",
             LG_RUN, runs=15, quick_runs=5, build=build_run),
    Scenario(10, "first-run", "first run of a never-materialised commit vs a cached one",
             "`lg run --rm --network none IMG true` of the minbase commit in a root that never ran it "
             "(restored per run) vs in a root that did; podman's run of the same image for scale.",
             LG_FIRST, runs=5, quick_runs=3, build=build_first_run),
    Scenario(17, "import-to-run", "from a tarball to a container that ran: import, then the first run",
             "`lg import minbase.tar -t x && lg run --rm --network none x true` in a root in use that never "
             "saw the image vs `podman import` then `podman run` of the same tarball; each half alone, and "
             "`lg commit ROOTFS` then its first run.",
             LG_IMPORT_RUN, runs=7, quick_runs=3, build=build_import_to_run),
    Scenario(11, "density", f"{DENSITY} detached containers: start time and memory per container",
             f"{DENSITY} `lg run -d --network none IMG sleep infinity` one after another vs podman's; then "
             "the PSS of what each tool keeps running beside the containers (lg's monitor; podman's "
             "conmons), per container.",
             f"lg run -d --network none IMG sleep infinity, x{DENSITY} one after another",
             runs=3, quick_runs=1, build=build_density),
    Scenario(32, "supervised", f"{DENSITY} supervised containers: a restart policy and a health check each",
             f"{DENSITY} `lg run -d --network none {' '.join(SUPERVISED)} --log-opt max-size=1m IMG sleep "
             "infinity` one after another vs podman's with the same flags; then the PSS of what each tool "
             "keeps running beside the containers (lg's one monitor running every check; podman's conmons), "
             "per container.",
             f"lg run -d --network none {' '.join(SUPERVISED)} --log-opt max-size=1m IMG sleep infinity,"
             f" x{DENSITY} one after another",
             runs=2, quick_runs=1, build=build_supervised),
    Scenario(12, "commit-container", "commit of a container that wrote 10 files, 5 MB",
             "`lg commit C -t x:y` vs `podman commit C`, the container (busybox) having written 10 files of "
             "500,000 random bytes.",
             LG_CCOMMIT, runs=7, quick_runs=3, build=build_commit_container),
    Scenario(13, "bridge-run", "start, run `true`, remove: default bridge network",
             "`lg run --rm IMG true` on lg's default bridge (monitor up, and monitor down) vs "
             "`podman run --rm IMG true` on podman's.",
             LG_BRIDGE, runs=11, quick_runs=5, build=build_bridge_run),
    Scenario(14, "port", "HTTP through a published port vs straight to the container",
             f"{REQUESTS} GETs (sequential, and {PARALLEL} at a time) to a busybox httpd container through "
             "`-p 127.0.0.1:PORT:80` vs to its address (and through podman's published port); then wrk "
             "throughput and latency.",
             LG_PORT, runs=9, quick_runs=3, build=build_port),
    Scenario(15, "build", "10-step Dockerfile: cached, last step changed, cold",
             "`lg build` fully cached, after changing the last COPY's source, and with --no-cache, vs "
             "`podman build` of the same Dockerfile on the same busybox image.",
             LG_BUILD_CACHED, runs=7, quick_runs=3, build=build_build),
]
