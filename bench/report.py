"""Results: the printed table, the goal summary and the JSON file.

The table is for people: per scenario one row per tool with the median wall time and
its spread, on each peer's row the ratio lg / peer (below 1: lg is faster), plus the
goal where an issue states one and whether this run met it. Figures that are not a
command's wall time (memory per container, requests per second) come as checks and
notes under the table, with their spreads formatted here too. The JSON is for machines
and for comparing runs later: every individual time, the exact commands, the
environment.

Why every figure carries its spread and verdicts are judged on it: on a shared machine
two rows can differ by more than a goal's margin from one run to the next (scenario 14's
wrk figures once went from 4,381 to 863 req/s between rows). A verdict taken from
medians alone then flips at random; one taken from the spreads says "within noise"
instead of claiming "met" or "MISSED" when the runs cannot tell.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .timing import Case, Goal, Measurement

OK, FAILED, UNAVAILABLE = "ok", "failed", "not available"
MET, MISSED, NOISE, UNMEASURED = "met", "MISSED", "within noise", "not measured"


@dataclass(frozen=True)
class Spread:
    """A figure measured several times: the median and the middle half of the runs
    (interquartile range). With two or three runs that is their whole range, which is
    what quartiles of so few come to anyway; with one run there is no spread to show."""

    median: float
    lo: float
    hi: float
    runs: int

    @classmethod
    def of(cls, values) -> Spread:
        v = sorted(values)
        lo, hi = (v[0], v[-1]) if len(v) < 3 else statistics.quantiles(v, n=4)[::2]
        return cls(statistics.median(v), lo, hi, len(v))

    @property
    def relative(self) -> float | None:
        """Width over median: the table's `spread` column."""
        return (self.hi - self.lo) / self.median if self.runs > 1 and self.median else None

    def overlaps(self, other: Spread) -> bool:
        return self.lo <= other.hi and other.lo <= self.hi

    def text(self, fmt: str = "{:.0f}", unit: str = "") -> str:
        """'4381 req/s (4210-4502)': the median, then the spread."""
        median = fmt.format(self.median) + unit
        if self.runs < 2:
            return f"{median} (1 run)"
        return f"{median} ({fmt.format(self.lo)}-{fmt.format(self.hi)})"


def ratio_range(num: Spread, den: Spread) -> tuple[float, float]:
    """The lowest and highest num/den that the two spreads allow: a ratio is only as firm
    as the figures it divides."""
    return num.lo / den.hi if den.hi else float("inf"), num.hi / den.lo if den.lo else float("inf")


def judge(lo: float, hi: float, limit: float) -> str:
    """A goal "figure <= limit", for a figure known to lie between lo and hi: met or
    MISSED only when the whole spread is on one side of the limit, "within noise" when
    the limit falls inside it, whichever side the median is on."""
    if hi <= limit:
        return MET
    if lo > limit:
        return MISSED
    return NOISE


def verdict_text(verdict: str, median_met: bool | None) -> str:
    """The verdict as printed; within noise, what the medians alone would have said, as a lean."""
    if verdict == NOISE and median_met is not None:
        return f"{NOISE} (medians: {MET if median_met else MISSED})"
    return verdict


@dataclass
class Verdict:
    """A row's goal as judged: MET, MISSED or NOISE (UNMEASURED without a figure), and
    what the medians alone say of it."""

    goal: Goal
    verdict: str = UNMEASURED
    median_met: bool | None = None

    @property
    def text(self) -> str:
        return verdict_text(self.verdict, self.median_met)


@dataclass
class Row:
    case: Case
    measurement: Measurement | None = None
    status: str = OK
    message: str = ""
    ratio: float | None = None      # peer rows: median(lg counterpart) / median(this)
    against: str | None = None      # label of that lg counterpart
    relative: float | None = None   # lg rows with `vs` another lg row: median(this) / median(that)
    ratio_range: tuple[float, float] | None = None  # what the spreads allow for ratio (or relative)
    overlap: bool = False           # this row's spread and its counterpart's overlap
    verdicts: list[Verdict] = field(default_factory=list)  # one per goal of the case, in its order

    @property
    def median(self) -> float | None:
        return self.measurement.median if self.measurement else None

    @property
    def spread(self) -> Spread | None:
        return Spread.of(self.measurement.times) if self.measurement else None


@dataclass
class Check:
    """A goal judged on a figure that is not a row's wall time (memory per container,
    requests per second): what the issue asks, the figure measured (with its spread),
    and the verdict (judge()), with what the medians alone say as its lean."""

    text: str
    figure: str
    verdict: str
    median_met: bool | None = None


@dataclass
class ScenarioResult:
    scenario: "object"               # scenarios.Scenario (not imported: no cycle)
    runs: int
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # scenario-specific raw figures, for the JSON
    error: str | None = None
    seconds: float = 0.0

    def finish(self) -> None:
        """Ratios and goals, once every row is measured."""
        lg_rows = {r.case.label: r for r in self.rows if r.case.tool == "lg"}
        for row in self.rows:
            mine = row.spread
            if row.case.tool != "lg":
                row.against = row.case.vs or self.scenario.primary
                lg = lg_rows.get(row.against)
                theirs = lg.spread if lg else None
                if theirs and mine:
                    row.ratio = theirs.median / mine.median
                    row.ratio_range, row.overlap = ratio_range(theirs, mine), theirs.overlaps(mine)
            elif row.case.vs and row.case.vs != row.case.label:
                # Two lg rows (first run vs cached, monitor down vs up): how they relate.
                row.against = row.case.vs
                other = lg_rows.get(row.against)
                theirs = other.spread if other else None
                if theirs and mine:
                    row.relative = mine.median / theirs.median
                    row.ratio_range, row.overlap = ratio_range(mine, theirs), mine.overlaps(theirs)
            row.verdicts = [_judged(row, mine, goal) for goal in row.case.goals]

    @property
    def failed(self) -> bool:
        return self.error is not None or any(r.status == FAILED for r in self.rows)


def _judged(row: Row, mine: Spread | None, goal: Goal) -> Verdict:
    if goal.kind == "ratio" and row.ratio is not None and row.ratio_range:
        lo, hi = row.ratio_range
        return Verdict(goal, judge(lo, hi, goal.limit), row.ratio <= goal.limit)
    if goal.kind == "seconds" and mine:
        return Verdict(goal, judge(mine.lo, mine.hi, goal.limit), mine.median <= goal.limit)
    return Verdict(goal)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.1 else f"{value:.4f}"


def _goal_text(row: Row) -> str:
    return "; ".join(f"goal {v.goal.text}: {v.text}" for v in row.verdicts)


def _range_text(row: Row) -> str:
    """The ratio's range as the spreads allow it, and whether the two rows' spreads overlap
    (then the two cannot be told apart in this run, whatever the medians say); nothing when
    single runs leave no range to give."""
    if not row.ratio_range or row.ratio_range[0] == row.ratio_range[1]:
        return ""
    lo, hi = row.ratio_range
    return f"{lo:.2f}-{hi:.2f}x" + (", spreads overlap" if row.overlap else "")


def _ratio_text(row: Row, ratio: float) -> str:
    """'1.10x (0.95-1.33x, spreads overlap)'."""
    span = _range_text(row)
    return f"{ratio:.2f}x" + (f" ({span})" if span else "")


def format_scenario(result: ScenarioResult) -> str:
    s = result.scenario
    runs = f"median of {result.runs} runs, {result.seconds:.0f} s with setup"
    out = [f"{s.number}. {s.name}: {s.title}  [{runs}]"]
    if result.error:
        out.append(f"   setup failed: {result.error}")
    headers = ["tool", "what", "median s", "spread", "lg/peer", "notes"]
    table = []
    for row in result.rows:
        notes = []
        if row.status == FAILED:
            notes.append(f"FAILED: {row.message}")
        elif row.status == UNAVAILABLE:
            notes.append(f"not available: {row.message}")
        if row.against and row.against != s.primary and row.ratio is not None:
            notes.append(f"ratio vs {row.against}")
        if row.ratio is not None and _range_text(row):
            notes.append(_range_text(row))
        if row.relative is not None:
            notes.append(f"{_ratio_text(row, row.relative)} the time of '{row.against}'")
        if row.verdicts:
            notes.append(_goal_text(row))
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        width = row.spread.relative if row.spread else None
        spread = f"{width * 100:.0f}%" if width is not None else ""
        table.append([row.case.tool, row.case.label, seconds(row.median), spread, ratio, "; ".join(notes)])
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    align = ["<", "<", ">", ">", ">", "<"]

    def line(cells):
        return "   " + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True)).rstrip()

    if table:
        out.append(line(headers))
        out.extend(line(r) for r in table)
    out.extend(f"   check: {_check_text(c)}" for c in result.checks)
    out.extend(f"   note: {n}" for n in result.notes)
    return "\n".join(out)


def _check_text(check: Check) -> str:
    return f"{check.text}: {check.figure}, {verdict_text(check.verdict, check.median_met)}"


def format_goals(results: list[ScenarioResult]) -> str:
    lines = []
    for res in results:
        for row in res.rows:
            for v in row.verdicts:
                if v.goal.kind == "ratio":
                    figure = _ratio_text(row, row.ratio) if row.ratio is not None else "no ratio"
                else:
                    figure = row.spread.text("{:.3f}", " s") if row.spread else "no time"
                lines.append(f"  {res.scenario.name}: {v.goal.text}: {figure}, {v.text}")
        for c in res.checks:
            lines.append(f"  {res.scenario.name}: {_check_text(c)}")
    return "goals (from the issues):\n" + "\n".join(lines) if lines else ""


def to_json(meta: dict, results: list[ScenarioResult], interrupted: bool) -> dict:
    scenarios = []
    for res in results:
        s = res.scenario
        rows = []
        for row in res.rows:
            c = row.case
            rows.append({
                "tool": c.tool, "label": c.label,
                "command": c.command if c.argv else None,
                "prepare": c.prepare, "env": c.env,
                "status": row.status, "message": row.message or None,
                "median_s": row.median, "spread_s": asdict(row.spread) if row.spread else None,
                "measurement": row.measurement.to_json() if row.measurement else None,
                "ratio_lg_over_peer": row.ratio, "ratio_against": row.against,
                "relative_to_lg_row": row.relative, "ratio_range": row.ratio_range,
                "spreads_overlap": row.overlap if row.ratio_range else None,
                "goals": [{"text": v.goal.text, "kind": v.goal.kind, "limit": v.goal.limit,
                           "verdict": v.verdict, "median_met": v.median_met} for v in row.verdicts],
            })
        scenarios.append({"number": s.number, "name": s.name, "title": s.title, "measures": s.measures,
                          "primary": s.primary, "runs": res.runs, "seconds_with_setup": res.seconds,
                          "error": res.error, "notes": res.notes,
                          "checks": [{"text": c.text, "figure": c.figure, "verdict": c.verdict,
                                      "median_met": c.median_met} for c in res.checks],
                          "figures": res.figures, "rows": rows})
    return {"format": "layergit-bench/2", "interrupted": interrupted, **meta, "scenarios": scenarios}


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a half-written figures file is worse than none."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
