"""Scenario 30 (issue 18): `lg stats --no-stream` over running containers, beside podman's.

COUNT busybox containers sleep, started detached on `--network none` by lg and by
podman alike; what is timed is one `stats --no-stream` reading of them all (cgroup
files and /proc/PID/net/dev per container). podman with 100 containers is heavy on a
shared 2-core machine: `LG_BENCH_STATS_COUNT` sets another count, and the row labels
say which was used.
"""

from __future__ import annotations

import os

from .containers import LG_BB, PM_BB, busybox_images, lg_root, podman, podman_case
from .scenarios import Context, Scenario
from .timing import Case, Goal

COUNT = int(os.environ.get("LG_BENCH_STATS_COUNT", "100"))
LG_STATS = f"lg stats --no-stream, {COUNT} running containers"
GOAL = Goal("lg <= 0.5x podman (issue 18)", "ratio", 0.5)


def build_stats(ctx: Context) -> list[Case]:
    root, env = lg_root(ctx)
    pm = podman(ctx, "stats")
    lg_err, pm_err = busybox_images(ctx, pm, env)
    names = [f"st{i}" for i in range(COUNT)]
    if lg_err is None:
        for name in names:
            ctx.run(ctx.lg("run", "-d", "--name", name, "--network", "none", LG_BB, "sleep", "3600"), env)
    if pm is not None and pm_err is None:
        for name in names:
            ctx.run(pm.argv("run", "-d", "--name", name, "--network", "none", PM_BB, "sleep", "3600"))
    return [
        Case("lg", LG_STATS, ctx.lg("stats", "--no-stream"), env=env, broken=lg_err),
        podman_case(pm, f"podman stats --no-stream, {COUNT} running containers", ["stats", "--no-stream"],
                    broken=pm_err, vs=LG_STATS, goal=GOAL),
    ]


STORAGE_SCENARIOS = [
    Scenario(30, "stats", f"stats --no-stream over {COUNT} running containers",
             f"`lg stats --no-stream` with {COUNT} running containers vs `podman stats --no-stream` with as"
             " many: one reading of every container's cgroup counters.",
             LG_STATS, runs=5, quick_runs=2, build=build_stats),
]
