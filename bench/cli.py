"""bench/run: arguments, the order things run in, and cleaning up afterwards.

One invocation: find the tools, prepare the workload once (shared, read-only), then for
each chosen scenario build its state in a fresh directory, time its rows interleaved
(see timing.Timer) and print its table. Everything lives under one scratch directory in
/var/tmp (on a dedicated filesystem: see scratch.py), deleted only at exit (deleting
earlier would slow later file creation, see scenarios.retire), also on Ctrl-C or
SIGTERM; --keep keeps it for a post-mortem. Progress goes to stderr, tables to stdout.

The exit status is 0 when every row ran (a "not available" row is fine), 1 when a row or
a scenario's setup failed (an lg error, usually: the table says which), 130 when
interrupted. Timings never affect it: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import report
from .catalog import SCENARIOS, select
from .podman import mounts_under
from .report import FAILED, UNAVAILABLE, Row, ScenarioResult
from .scenarios import Context, Scenario, SetupFailed
from .scratch import Scratch, remove
from .timing import CaseFailed, Timer
from .tools import ToolMissing, Tools, checkout_revision
from .workload import Workload, WorkloadError

# Below this much free space in the work directory a finished scenario's files are
# deleted straight away rather than at exit.
MIN_FREE = 8 * 2**30


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv):
    names = ", ".join(f"{s.number}/{s.name}" for s in SCENARIOS)
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Time lg against its peers side by side: ostree, git, tar and cp on a Debian minbase "
                    "rootfs (scenarios 1-6); podman, runc and a direct connection for import, export, "
                    "containers, networking and builds (7-15).",
        epilog="See bench/README.md for what each scenario measures.")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"run only these (name or number): {names}")
    p.add_argument("--quick", action="store_true",
                   help="fewer runs per row (a rough figure in a couple of minutes)")
    p.add_argument("--runs", type=int, metavar="N", help="exactly N timed runs per row (overrides --quick)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure as JSON to FILE")
    p.add_argument("--lg", metavar="CMD",
                   help="command that runs lg (default: lg on PATH, past a pyenv shim)")
    p.add_argument("--scratch", type=Path, default=Path("/var/tmp"),
                   help="where the temporary directory goes (default: /var/tmp)")
    p.add_argument("--no-loop", dest="loop", action="store_false",
                   help="work directly on the scratch directory's filesystem instead of a dedicated "
                        "journaled ext4 loop filesystem inside it (see bench/README.md)")
    p.add_argument("--python-timer", action="store_true",
                   help="time runs in Python even if hyperfine is installed")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (for a post-mortem)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = p.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv=None) -> int:  # noqa: C901 (one session: set up, run, clean up in its finally)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.number:>2}. {s.name:16} {s.title}\n    {s.measures}")
        return 0
    try:
        scenarios = select(args.scenarios)
        tools = Tools.find(args.lg)
        if args.python_timer:
            tools.hyperfine = None
        tools.compile_bytecode()
    except (ValueError, ToolMissing) as exc:
        print(f"bench/run: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        log("warning: not root; the fixture, ownership and checkouts need root, expect failures")

    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally below still cleans up.
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)

    results: list[ScenarioResult] = []
    meta: dict = {}
    interrupted = False
    scratch = None
    try:
        scratch = Scratch(args.scratch, args.loop, log)
        workload = Workload.prepare(scratch.work, log)
        meta = collect_meta(tools, workload, scratch, args)
        print(format_header(meta), flush=True)
        code = meta["lg"]["code"]
        for scenario in scenarios:
            runs = args.runs or (scenario.quick_runs if args.quick else scenario.runs)
            result = run_scenario(scenario, tools, workload, scratch, runs, args.keep, args.quick)
            now = tools.lg_code()
            if now != code:
                # Someone re-ran `pip install -e` elsewhere: part of this scenario may have
                # timed another checkout's lg.
                result.notes.append(f"warning: lg's code moved from {code} to {now} during this scenario")
                log(f"warning: lg now imports layergit from {now}, not {code}")
                meta["lg"].setdefault("code_changes", []).append({"after": scenario.name, "code": now})
                code = now
            results.append(result)
            print("\n" + report.format_scenario(result), flush=True)
        goals = report.format_goals(results)
        if goals:
            print("\n" + goals, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted")
    except (WorkloadError, subprocess.CalledProcessError) as exc:
        log(f"workload preparation failed: {exc}")
        return 1
    finally:
        # A second Ctrl-C must not leave a loop filesystem mounted: finish cleaning up first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if args.json and meta:
            report.write_json(args.json, report.to_json(meta, results, interrupted))
            log(f"figures written to {args.json}")
        if scratch is not None:
            scratch.close(args.keep)
    if interrupted:
        return 130
    return 1 if any(r.failed for r in results) else 0


def run_scenario(scenario: Scenario, tools: Tools, workload: Workload, scratch: Scratch,
                 runs: int, keep: bool, quick: bool = False) -> ScenarioResult:
    sdir = scratch.work / f"{scenario.number}-{scenario.name}"
    sdir.mkdir()
    result = ScenarioResult(scenario, runs)
    started = time.monotonic()
    ctx = Context(tools, workload, sdir, log, runs, quick)
    log(f"[{scenario.name}] setting up")
    try:
        try:
            cases = scenario.build(ctx)
        except (SetupFailed, WorkloadError, subprocess.CalledProcessError, OSError) as exc:
            result.error, cases = str(exc), []
        runnable = [c for c in cases if not (c.unavailable or c.broken)]
        log(f"[{scenario.name}] timing {len(runnable)} rows, {runs} runs each, interleaved")
        timer = Timer(tools.hyperfine, sdir, lambda m: log(f"[{scenario.name}] {m}"))
        measured = timer.measure_all(runnable, runs)
        for hook in ctx.after:
            try:
                hook()
            except (SetupFailed, subprocess.CalledProcessError, OSError, ValueError, KeyError) as exc:
                ctx.note(f"measuring after the runs failed: {exc}")
        for case in cases:
            row = Row(case)
            if case.unavailable:
                row.status, row.message = UNAVAILABLE, case.unavailable
            elif case.broken:
                row.status, row.message = FAILED, case.broken
            elif isinstance(measured[case.label], CaseFailed):
                row.status, row.message = FAILED, str(measured[case.label])
            else:
                row.measurement = measured[case.label]
            result.rows.append(row)
        result.notes, result.checks, result.figures = ctx.notes, ctx.checks, ctx.figures
        result.finish()
    finally:
        cleanup(ctx, sdir, scenario.name)
        result.seconds = time.monotonic() - started
        # Deleting now would slow the next scenario's file creation (see scenarios.retire);
        # the scratch directory goes at exit, unless the disk is getting full.
        if not keep and scratch.free() < MIN_FREE:
            log(f"[{scenario.name}] low on disk space: deleting {sdir} now")
            remove(sdir, log)
    return result


def cleanup(ctx: Context, sdir: Path, name: str) -> None:
    """Undo what a scenario left running: its containers, lg monitors, podman store (the
    builders register how); then make sure nothing is still mounted in its directory,
    which would keep the scratch filesystem from unmounting."""
    for undo in reversed(ctx.cleanups):
        try:
            undo()
        except Exception as exc:  # one failed clean-up must not skip the others
            log(f"[{name}] clean-up step failed: {exc}")
    left = mounts_under(sdir)
    if left:
        log(f"[{name}] warning: {len(left)} mounts left under {sdir} after clean-up "
            f"(e.g. {left[0]}); unmounting them")
        ctx.note(f"{len(left)} mounts were still there after the scenario's clean-up (e.g. {left[0]})")
        for target in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)


def _mount_of(path: Path) -> tuple[str, str]:
    """(filesystem type, source) of the mount holding path, from /proc/mounts."""
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            source, target, fstype = line.split()[:3]
            target = target.replace("\\040", " ")
            if (str(path) + "/").startswith(target.rstrip("/") + "/") and len(target) >= len(best[0]):
                best = (target, fstype, source)
    except OSError:
        pass
    return best[1], best[2]


def _journal_note(fstype: str, source: str) -> str:
    """ext4 without a journal behaves differently after mass deletes (scenarios.retire)."""
    if fstype != "ext4" or not os.path.isdir("/proc/fs/jbd2"):
        return ""
    dev = os.path.basename(source)
    journaled = any(e.startswith(dev + "-") for e in os.listdir("/proc/fs/jbd2"))
    return "" if journaled else ", no journal"


def collect_meta(tools: Tools, workload: Workload, scratch: Scratch, args) -> dict:
    fstype, source = _mount_of(scratch.work)
    fstype += _journal_note(fstype, source)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "checkout": {"path": str(Path(__file__).resolve().parent.parent), "head": checkout_revision()},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "load_average_at_start": os.getloadavg()[0],
                    "scratch": str(scratch.work), "scratch_description": scratch.description,
                    "scratch_fs": fstype, "scratch_device": source},
        "lg": {"argv": tools.lg, "found": tools.lg_note, "python": tools.python, "code": tools.lg_code()},
        "versions": tools.versions(),
        "workload": {"description": workload.describe(), "fixture": str(workload.fixture),
                     "entries": workload.entries, "bytes": workload.size, "removed": workload.removed,
                     "device_free_copy_for_all_tools": True},
        "timer": "hyperfine" if tools.hyperfine else "python",
        "quick": args.quick, "runs_override": args.runs,
    }


def format_header(meta: dict) -> str:
    m = meta["machine"]
    versions = ", ".join(f"{v}" for v in meta["versions"].values())
    return "\n".join([
        f"layergit benchmarks, {meta['date']}, checkout {meta['checkout']['path']}"
        f" at {meta['checkout']['head']}",
        f"machine:  {m['cpus']} CPUs, Linux {m['kernel']},"
        f" load average {m['load_average_at_start']:.2f} at start; "
        f"work directory on {m['scratch_fs']} ({m['scratch_device']}): {m['scratch_description']}; "
        "the workload copy, stores and checkouts all live there",
        f"lg:       {meta['lg']['found']}, importing layergit from {meta['lg']['code']}"
        + ("" if meta["lg"]["code"].startswith(meta["checkout"]["path"] + "/") else "  (NOT this checkout)"),
        f"versions: {versions}",
        f"workload: {meta['workload']['description']}",
        f"method:   median wall time per row ({meta['timer']}); one untimed warm-up run per row (warm "
        "page cache), then the rows' runs interleaved (run 1 of every row, run 2 of every row, ...), each "
        "after an untimed prepare (fresh store or empty destination, edits, sync; old results moved aside, "
        "deleted only at exit); lg/peer = lg median / peer median, below 1 means lg is faster",
    ])
