"""Scenarios 22 and 23 (issue 15): lg pull and lg push against a loopback registry.

Both use Debian's docker-registry on 127.0.0.1 (fixtures/registry.py: its own config,
storage and port, stopped when the scenario ends) and a two-layer image: the minbase
tarball imported, plus ten edited files and 5 MB as a second commit, as scenario 8.

22 registry-pull: `lg pull` into a fresh root and the first `lg run` of it vs `podman pull`
    (then `podman run`), the image removed before each run.
23 registry-push: `lg push` to an emptied registry (layer cache cold, and warm) vs `skopeo copy`
    of lg's own OCI export to the same registry; then, untimed, a push after a one-layer
    change, counting the blobs and requests it took.
"""

from __future__ import annotations

import json
import os
import shlex

from fixtures.registry import start_registry

from .containers import NO_PODMAN, lg_root, or_true, podman, try_setup
from .scenarios import Context, Scenario, q, retire
from .timing import Case, Goal

LG_PULL = "lg pull REG/IMG && lg run --rm --network none REG/IMG true (fresh root)"
LG_PUSH_COLD = "lg push REG/IMG (empty registry, layer cache cold)"


def _registry(ctx: Context):
    reg = start_registry(ctx.path("registry"))
    ctx.cleanups.append(reg.stop)
    return reg


def _image(ctx: Context, env: dict, img: str) -> str | None:
    """The two-layer image in the root ``env`` names; the set-up error if it failed."""
    wl = ctx.workload

    def make():
        ctx.run(ctx.lg("import", wl.tarball, "-t", img), env, "lg import minbase.tar")
        src = wl.copy(ctx.path("layer2"))
        wl.edit(src, wl.edits(10))
        with open(src / "opt" / "bench-5mb.bin", "wb") as f:
            f.write(os.urandom(5 * 10**6))
        ctx.run(ctx.lg("commit", src, "-t", img, "-m", "bench: second layer"), env,
                "lg commit (second layer)")

    return try_setup(make)


def build_pull(ctx: Context) -> list[Case]:
    if not ctx.tools.has("docker-registry"):
        return [Case("lg", LG_PULL, unavailable="docker-registry not found (bootstrap.sh installs it)")]
    reg = _registry(ctx)
    src_root, src_env = lg_root(ctx, "lg-src")
    name = f"{reg.host}/bench/minbase:1"
    err = _image(ctx, src_env, name)
    err = err or try_setup(lambda: ctx.run(ctx.lg("push", name), src_env, "lg push (the image to pull)"))
    root, env = lg_root(ctx)
    pull = ctx.lg("pull", "-q", name)
    run_it = ctx.lg("run", "--rm", "--network", "none", name, "true")
    cases = [
        Case("lg", LG_PULL, ["sh", "-c", f"{shlex.join(pull)} >/dev/null && {shlex.join(run_it)}"], env=env,
             broken=err, prepare=f"{retire(ctx, root)} && sync"),
        Case("lg", "lg pull REG/IMG (fresh root)", pull, env=env, broken=err,
             prepare=f"{retire(ctx, root)} && sync"),
    ]
    pm = podman(ctx, "pull")
    if pm is None:
        return cases + [Case("podman", "podman pull", unavailable=NO_PODMAN)]
    rmi = or_true(pm.sh("rmi", "-f", name))
    pm_pull = pm.argv("pull", "-q", "--tls-verify=false", name)
    pm_run = pm.argv("run", "--rm", "--network", "none", name, "true")
    return cases + [
        Case("podman", "podman pull REG/IMG && podman run --rm --network none REG/IMG true",
             ["sh", "-c", f"{shlex.join(pm_pull)} >/dev/null && {shlex.join(pm_run)}"], vs=LG_PULL,
             prepare=f"{rmi} && sync", broken=err,
             goal=Goal("lg <= 0.7x podman pull, to a runnable image (issue 15)", "ratio", 0.7)),
        Case("podman", "podman pull REG/IMG", pm_pull, vs="lg pull REG/IMG (fresh root)",
             prepare=f"{rmi} && sync", broken=err),
    ]


def build_push(ctx: Context) -> list[Case]:
    if not ctx.tools.has("docker-registry"):
        return [Case("lg", LG_PUSH_COLD, unavailable="docker-registry not found (bootstrap.sh installs it)")]
    reg = _registry(ctx)
    root, env = lg_root(ctx)
    name = f"{reg.host}/bench/minbase:1"
    layout = ctx.path("layout")
    err = _image(ctx, env, name)
    err = err or try_setup(lambda: ctx.run(ctx.lg("export", name, "--format", "oci", "-o", f"{layout}/"), env,
                                           "lg export --format oci (skopeo's source)"))
    # An empty registry each run: its blobs and repositories go (distribution has no
    # cache in this config), and so does the root's digest index, which would mount.
    store = os.path.join(reg.storage, "docker")
    git = f"git -C {q(root / 'store.git')}"
    forget = (f"{git} for-each-ref --format='delete %(refname)' refs/layergit/digests/"
              f" | {git} update-ref --stdin")
    empty = f"rm -rf {q(store)} && {forget}"
    layers = root / "cache" / "layers"
    cases = [
        Case("lg", LG_PUSH_COLD, ctx.lg("push", "-q", name), env=env, broken=err,
             prepare=f"{empty} && {retire(ctx, layers)} && sync"),
        Case("lg", "lg push REG/IMG (empty registry, layers cached)", ctx.lg("push", "-q", name), env=env,
             broken=err, prepare=f"{empty} && sync"),
    ]
    skopeo = ctx.tools["skopeo"] if ctx.tools.has("skopeo") else None
    if skopeo is None:
        cases.append(Case("skopeo", "skopeo copy", unavailable="skopeo not found (bootstrap.sh installs it)"))
    else:
        cases.append(Case("skopeo", "skopeo copy oci:LAYOUT docker://REG/IMG (lg's export)",
                          [skopeo, "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{name}"],
                          vs=LG_PUSH_COLD, prepare=f"{empty} && sync", broken=err,
                          goal=Goal("lg push <= 1.0x skopeo copy (issue 15)", "ratio", 1.0)))

    def repush():
        src = ctx.path("layer3")
        ctx.run(["cp", "-a", str(ctx.workload.rootfs), str(src)])
        ctx.run(ctx.lg("push", "-q", name), env)
        with open(src / "opt" / "bench-more.bin", "wb") as f:
            f.write(os.urandom(10**6))
        ctx.run(ctx.lg("commit", src, "-t", name, "-m", "bench: third layer"), env)
        result = json.loads(ctx.run(ctx.lg("push", "--json", name), env))
        ctx.note(f"re-push after a one-layer change: {result['uploaded']} blobs uploaded (the layer and the "
                 f"config), {result['skipped']} skipped, {result['requests']} HTTP requests")

    if err is None:
        ctx.after.append(repush)
    return cases


REGISTRY_SCENARIOS = [
    Scenario(22, "registry-pull", "lg pull of a two-layer minbase image from a loopback registry",
             "`lg pull` into a fresh root then the first `lg run` vs `podman pull` then `podman run`, "
             "from Debian's docker-registry on 127.0.0.1; each half of lg's alone too.",
             LG_PULL, runs=5, quick_runs=2, build=build_pull),
    Scenario(23, "registry-push", "lg push of a two-layer minbase image to an empty loopback registry",
             "`lg push` (layer cache cold, and warm) vs `skopeo copy oci:LAYOUT docker://…` of lg's own "
             "export, the registry emptied before each run; then a push after a one-layer change.",
             LG_PUSH_COLD, runs=5, quick_runs=2, build=build_push),
]
