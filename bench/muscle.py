"""Scenario 27 (issue 20): Docker's --format, as scripts call it, beside podman's.

`lg ps -a --format '{{.Names}}'` over 100 created containers, and a loop of 100
`lg inspect -f '{{.State.Status}}' C` calls (a monitoring one-liner), against the
same commands of podman on the same busybox image with as many containers. Created
containers, never started: what is timed is listing and templating, not running.
"""

from __future__ import annotations

import shlex

from .containers import LG_BB, PM_BB, busybox_images, lg_root, podman, podman_case
from .scenarios import Context, Scenario
from .timing import Case, Goal

COUNT = 100
LG_PS = f"lg ps -a --format '{{{{.Names}}}}', {COUNT} containers"
LG_INSPECT = f"lg inspect -f '{{{{.State.Status}}}}' C, a loop of {COUNT} calls"
GOAL = Goal("lg <= 0.7x podman (issue 20)", "ratio", 0.7)


def build_format(ctx: Context) -> list[Case]:
    root, env = lg_root(ctx)
    pm = podman(ctx, "format")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    names = [f"fmt{i}" for i in range(COUNT)]
    if lg_err is None:
        for name in names:
            ctx.run(ctx.lg("create", "--name", name, "--network", "none", LG_BB, "true"), env)
    if pm is not None and pm_err is None:
        for name in names:
            ctx.run(pm.argv("create", "--name", name, "--network", "none", PM_BB, "true"))
    lg_loop = " ".join(shlex.join(ctx.lg("inspect", "-f", "{{.State.Status}}", n)) for n in names[:1])
    lg_loop = f"for c in {' '.join(names)}; do {lg_loop.replace(names[0], '$c')} >/dev/null; done"
    pm_loop = shlex.join(pm.argv("inspect", "-f", "{{.State.Status}}", names[0])) if pm else ""
    pm_loop = f"for c in {' '.join(names)}; do {pm_loop.replace(names[0], '$c')} >/dev/null; done"
    return [
        Case("lg", LG_PS, ctx.lg("ps", "-a", "--format", "{{.Names}}"), env=env, broken=lg_err),
        podman_case(pm, f"podman ps -a --format '{{{{.Names}}}}', {COUNT} containers",
                    ["ps", "-a", "--format", "{{.Names}}"], broken=pm_err, vs=LG_PS, goal=GOAL),
        Case("lg", LG_INSPECT, ["sh", "-c", lg_loop], env=env, broken=lg_err),
        Case("podman", f"podman inspect -f '{{{{.State.Status}}}}' C, a loop of {COUNT} calls",
             ["sh", "-c", pm_loop], broken=pm_err, vs=LG_INSPECT, goal=GOAL) if pm else
        podman_case(None, "podman inspect -f loop", [], vs=LG_INSPECT, goal=GOAL),
    ]


MUSCLE_SCENARIOS = [
    Scenario(27, "format", f"--format over {COUNT} containers: ps, and inspect in a loop",
             f"`lg ps -a --format '{{{{.Names}}}}'` with {COUNT} created containers vs podman's, and "
             f"{COUNT} `lg inspect -f '{{{{.State.Status}}}}' C` calls in a shell loop vs podman's.",
             LG_PS, runs=5, quick_runs=2, build=build_format),
]
