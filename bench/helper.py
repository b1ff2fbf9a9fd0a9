#!/usr/bin/env python3
"""Untimed helpers that prepares call as commands (`python3 bench/helper.py ...`).

    helper.py kill-monitor ROOT      stop lg's monitor for ROOT (by pid), if one runs
    helper.py density-reset CONFIG   record the memory of the helper processes the last
                                     density run left, then remove all its containers
    helper.py peak-rss FILE LABEL -- ARGV...
                                     run ARGV, append its peak RSS (wait4's ru_maxrss, what
                                     /usr/bin/time -v reports) and CPU time to FILE as a JSON
                                     line, exit with its status (scenario 16 runs through it)

The density scenario (11) times `lg run -d` x N against `podman run -d` x N. Before every
run, and once more after the last, `density-reset` looks at what the previous run left:
the processes that are not the containers' own (lg's monitor; podman's conmons), their
PSS and RSS, appended as one JSON line per tool to the scenario's figures file. Then it
removes every container of both tools (`lg rm -f`, `podman rm -af -t 0`) and stops lg's
monitor, so every timed run starts from no containers and no monitor, as the first
`lg run -d` on an idle machine does. CONFIG is a JSON file the scenario writes:
{"lg": [argv], "lg_root": DIR, "podman": [argv prefix] or null, "podman_marks": [...],
"figures": FILE}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

if __name__ == "__main__":
    # Run as a script: import the bench package from the repository root, as bench/run does.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

from bench.procs import helpers_of, memory_kb, monitors, stop  # noqa: E402


def kill_monitor(root: str) -> None:
    stop(monitors(root))


def footprint(tool: str, marks: list[str]) -> dict | None:
    """What `tool` has running beside its containers' own processes, or None if nothing."""
    helpers, contained = helpers_of(marks)
    if not contained:
        return None
    ids = {p.pid for p in helpers}
    # A container is the init of its pid namespace; lg's monitor also parents health checks
    # run in the containers' namespaces (scenario 28), which are not containers.
    tops = [p for p in contained if p.ppid in ids and _namespace_init(p.pid)]
    rows = []
    for p in helpers:
        pss, rss = memory_kb(p.pid)
        rows.append({"pid": p.pid, "name": p.name, "argv0": p.argv[:3], "pss_kb": pss, "rss_kb": rss})
    cpss = sum(memory_kb(p.pid)[0] for p in contained)
    return {"tool": tool, "time": time.time(), "containers": len(tops), "container_processes": len(contained),
            "helpers": rows, "helper_pss_kb": sum(r["pss_kb"] for r in rows),
            "helper_rss_kb": sum(r["rss_kb"] for r in rows), "container_pss_kb": cpss}


def _namespace_init(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("NSpid:") and line.split()[-1] == "1" for line in f)
    except OSError:
        return False


def density_reset(config: str) -> None:
    with open(config) as f:
        cfg = json.load(f)
    lg_env = dict(os.environ, LG_ROOT=cfg["lg_root"])
    seen = [footprint("lg", [cfg["lg_root"]])]
    if cfg.get("podman"):
        seen.append(footprint("podman", cfg["podman_marks"]))
    with open(cfg["figures"], "a") as f:
        for record in filter(None, seen):
            f.write(json.dumps(record) + "\n")
    failures = []
    ids = subprocess.run([*cfg["lg"], "ps", "-aq"], env=lg_env, capture_output=True, text=True)
    if ids.returncode != 0:
        failures.append(f"lg ps -aq: exit {ids.returncode}: {ids.stderr.strip()[-300:]}")
    elif ids.stdout.split():
        rm = subprocess.run(
            [*cfg["lg"], "rm", "-f", *ids.stdout.split()], env=lg_env, capture_output=True, text=True
        )
        if rm.returncode != 0:
            failures.append(f"lg rm -f: exit {rm.returncode}: {rm.stderr.strip()[-300:]}")
    stop(monitors(cfg["lg_root"]))
    if cfg.get("podman"):
        rm = subprocess.run([*cfg["podman"], "rm", "-af", "-t", "0"], capture_output=True, text=True)
        if rm.returncode != 0:
            failures.append(f"podman rm -af: exit {rm.returncode}: {rm.stderr.strip()[-300:]}")
    os.sync()
    if failures:
        sys.exit("density-reset: " + "; ".join(failures))


def peak_rss(figures: str, label: str, argv: list[str]) -> int:
    """Run ``argv`` (inheriting stdio) and record its peak RSS, CPU and wall time;
    returns its exit status."""
    started = time.monotonic()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    with open(figures, "a") as f:
        f.write(json.dumps({"label": label, "maxrss_kb": usage.ru_maxrss, "status": code,
                            "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall}) + "\n")
    return code


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "kill-monitor":
        kill_monitor(argv[1])
    elif len(argv) == 2 and argv[0] == "density-reset":
        density_reset(argv[1])
    elif len(argv) > 4 and argv[0] == "peak-rss" and argv[3] == "--":
        sys.exit(peak_rss(argv[1], argv[2], argv[4:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
