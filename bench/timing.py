"""Timing commands: a probe run each, then N timed runs, interleaved, each after an untimed setup.

What a case is: a command (argv, never a shell string, so nothing about quoting or a
shell's start-up is timed unless the case asks for `sh -c` itself, as `git add && git
commit` must), an optional `prepare` shell script run before *every* run (hyperfine's
--prepare: move the previous run's store or checkout aside, edit ten files, `sync`), and
the environment (LG_ROOT) it runs in.

Why a probe first: it runs `prepare` and the command once, untimed, with output
captured, so a failing command (an lg bug, a missing flag) is reported with its own
error line instead of a bare "non-zero exit code" from hyperfine; and it is the warm-up
run that fills the page cache. All timings are therefore warm-cache timings: they
measure CPU and writes, not cold reads from disk.

Why `sync` at the end of prepares that write a lot: the previous run's dirty pages
would otherwise be written back during the next run and bill it for its predecessor.

Why prepares move old results aside instead of deleting them: see scenarios.retire().

hyperfine (when installed) times each run, with -N (no intermediate shell) and its JSON
export; without it a plain Python loop does the same. Either way the figure reported is
the median wall time: robust to the odd slow run on a shared machine.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Goal:
    """A target the issue states. kind "ratio": lg/peer <= limit, shown on the peer's row;
    kind "seconds": median <= limit, shown on the lg row."""

    text: str
    kind: str
    limit: float


@dataclass
class Case:
    tool: str                       # "lg", "ostree", "git", "tar", "cp", "python"
    label: str                      # what the row says; unique within a scenario
    argv: list[str] = field(default_factory=list)
    prepare: str | None = None      # shell script run untimed before every run
    env: dict[str, str] = field(default_factory=dict)
    vs: str | None = None           # peer rows: label of the lg row it is compared with
    goal: Goal | None = None
    also: tuple[Goal, ...] = ()     # further goals on the same figure (a later issue's stricter one)
    unavailable: str | None = None  # do not run: "not available" with this reason
    broken: str | None = None       # its setup failed: reported as FAILED with this reason
    warmup: bool = True             # False: no untimed probe run (for rows whose run takes minutes;
                                    # their stdout is kept, so they should print errors there)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    @property
    def goals(self) -> tuple[Goal, ...]:
        return ((self.goal,) if self.goal else ()) + self.also


@dataclass
class Measurement:
    median: float
    mean: float
    stddev: float | None
    min: float
    max: float
    runs: int
    times: list[float]
    timer: str                      # "hyperfine" or "python"

    def to_json(self) -> dict:
        return asdict(self)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run, but the command gets its own process group and an interrupted
    harness (Ctrl-C, SIGTERM) kills the whole group: hyperfine's child, an lg commit,
    would otherwise outlive us and keep writing into the scratch directory being removed."""
    capture = kwargs.pop("capture_output", False)
    if capture:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    with subprocess.Popen(argv, start_new_session=True, **kwargs) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


class CaseFailed(Exception):
    """The command (or its prepare) exited non-zero; the message is its last error line."""


def _last_error_line(text: str, code: int) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return f"exit {code}: {lines[-1]}" if lines else f"exit {code}"


class Timer:
    """Times a scenario's cases *interleaved*: one warm-up probe of every case, then run 1
    of every case, run 2 of every case, and so on. On a shared machine the load drifts
    over minutes; interleaving spreads that drift over all tools alike, so the ratios
    stay fair even when the absolute times wander."""

    def __init__(self, hyperfine: str | None, workdir: Path, log=None):
        self.hyperfine = hyperfine
        self.workdir = workdir
        self.log = log or (lambda message: None)
        self._n = 0

    def measure_all(self, cases: list[Case], runs: int) -> dict[str, Measurement | CaseFailed]:
        """Label -> Measurement, or the CaseFailed that stopped that case."""
        envs = {c.label: dict(os.environ, **c.env) for c in cases}
        failed: dict[str, CaseFailed] = {}
        times: dict[str, list[float]] = {c.label: [] for c in cases}
        for case in cases:
            if not case.warmup:
                continue
            try:
                self._probe(case, envs[case.label])
            except CaseFailed as exc:
                failed[case.label] = exc
        for r in range(runs):
            live = [c for c in cases if c.label not in failed]
            if not live:
                break
            self.log(f"run {r + 1}/{runs} of {len(live)} rows")
            for case in live:
                try:
                    times[case.label].append(self._one_run(case, envs[case.label]))
                except CaseFailed as exc:
                    failed[case.label] = exc
        out: dict[str, Measurement | CaseFailed] = {}
        for case in cases:
            t = times[case.label]
            out[case.label] = failed[case.label] if case.label in failed else Measurement(
                median=statistics.median(t), mean=statistics.fmean(t),
                stddev=statistics.stdev(t) if len(t) > 1 else None, min=min(t), max=max(t),
                runs=len(t), times=t, timer="hyperfine" if self.hyperfine else "python")
        return out

    def _prepare(self, case: Case, env: dict) -> None:
        if case.prepare:
            out = run(["sh", "-c", case.prepare], env=env, cwd=self.workdir,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if out.returncode != 0:
                raise CaseFailed("prepare failed, " + _last_error_line(out.stderr, out.returncode))

    def _probe(self, case: Case, env: dict) -> None:
        self._prepare(case, env)
        out = run(case.argv, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                  capture_output=True, text=True, errors="replace")
        if out.returncode != 0:
            raise CaseFailed(_last_error_line(out.stderr or out.stdout, out.returncode))

    def _one_run(self, case: Case, env: dict) -> float:
        if self.hyperfine:
            return self._with_hyperfine(case, env)
        return self._with_python(case, env)

    def _with_hyperfine(self, case: Case, env: dict) -> float:
        self._n += 1
        export = self.workdir / f".hyperfine-{self._n}.json"
        cmd = [self.hyperfine, "-N", "--style", "none", "--runs", "1", "--export-json", str(export)]
        output = self.workdir / f".hyperfine-{self._n}.out"
        if not case.warmup:
            # No probe captured this row's errors: keep its output (hyperfine keeps stdout
            # only) so a failure names its cause rather than just "non-zero exit code".
            cmd += ["--output", str(output)]
        if case.prepare and not case.warmup:
            # Run it ourselves: hyperfine would swallow its error message, and no probe
            # has shown that it works. Untimed either way.
            self._prepare(case, env)
        elif case.prepare:
            # -N runs the prepare command without a shell too, so give it one explicitly.
            cmd += ["--prepare", shlex.join(["sh", "-c", case.prepare])]
        cmd.append(case.command)
        out = run(cmd, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                  capture_output=True, text=True, errors="replace")
        if out.returncode != 0:
            message = "under hyperfine, " + _last_error_line(out.stderr, out.returncode)
            if not case.warmup:
                try:
                    own = [ln.strip() for ln in output.read_text(errors="replace").splitlines() if ln.strip()]
                except OSError:
                    own = []
                if own:
                    message += f" (its last output line: {own[-1]})"
            raise CaseFailed(message)
        if not case.warmup:
            output.unlink(missing_ok=True)
        result = json.loads(export.read_text())["results"][0]
        export.unlink()
        return result["times"][0]

    def _with_python(self, case: Case, env: dict) -> float:
        self._prepare(case, env)
        start = time.perf_counter()
        out = run(case.argv, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
        elapsed = time.perf_counter() - start
        if out.returncode != 0:
            raise CaseFailed(_last_error_line(out.stderr, out.returncode))
        return elapsed
