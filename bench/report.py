"""Results: the printed table, the goal summary and the JSON file.

The table is for people: per scenario one row per tool with the median wall time and,
on each peer's row, the ratio lg / peer (below 1: lg is faster), plus the goal where
an issue states one and whether this run met it. Figures that are not a command's wall
time (memory per container, requests per second) come as checks under the table. The JSON is for machines and for
comparing runs later: every individual time, the exact commands, the environment.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .timing import Case, Measurement

OK, FAILED, UNAVAILABLE = "ok", "failed", "not available"


@dataclass
class Row:
    case: Case
    measurement: Measurement | None = None
    status: str = OK
    message: str = ""
    ratio: float | None = None      # peer rows: median(lg counterpart) / median(this)
    against: str | None = None      # label of that lg counterpart
    relative: float | None = None   # lg rows with `vs` another lg row: median(this) / median(that)
    goal_met: bool | None = None

    @property
    def median(self) -> float | None:
        return self.measurement.median if self.measurement else None

    @property
    def spread(self) -> float | None:
        """Interquartile range over median: how much this row's runs wandered, robust to
        one outlier. A ratio between rows whose spreads are wide is a rough figure."""
        m = self.measurement
        if not m or len(m.times) < 3 or not m.median:
            return None
        q1, _, q3 = statistics.quantiles(m.times, n=4)
        return (q3 - q1) / m.median


@dataclass
class Check:
    """A goal judged on a figure that is not a row's wall time (memory per container,
    requests per second): what the issue asks, the figure measured, and the verdict."""

    text: str
    figure: str
    met: bool | None


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
            if row.case.tool != "lg":
                row.against = row.case.vs or self.scenario.primary
                lg = lg_rows.get(row.against)
                if lg and lg.median is not None and row.median:
                    row.ratio = lg.median / row.median
            elif row.case.vs and row.case.vs != row.case.label:
                # Two lg rows (first run vs cached, monitor down vs up): how they relate.
                row.against = row.case.vs
                other = lg_rows.get(row.against)
                if other and other.median and row.median is not None:
                    row.relative = row.median / other.median
            goal = row.case.goal
            if goal and goal.kind == "ratio" and row.ratio is not None:
                row.goal_met = row.ratio <= goal.limit
            elif goal and goal.kind == "seconds" and row.median is not None:
                row.goal_met = row.median <= goal.limit

    @property
    def failed(self) -> bool:
        return self.error is not None or any(r.status == FAILED for r in self.rows)


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value >= 0.1 else f"{value:.4f}"


def _goal_text(row: Row) -> str:
    goal = row.case.goal
    if not goal:
        return ""
    verdict = {True: "met", False: "MISSED", None: "not measured"}[row.goal_met]
    return f"goal {goal.text}: {verdict}"


def format_scenario(result: ScenarioResult) -> str:
    s = result.scenario
    out = [f"{s.number}. {s.name}: {s.title}  [median of {result.runs} runs, {result.seconds:.0f} s with setup]"]
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
        if row.relative is not None:
            notes.append(f"{row.relative:.2f}x the time of '{row.against}'")
        if row.case.goal:
            notes.append(_goal_text(row))
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        spread = f"{row.spread * 100:.0f}%" if row.spread is not None else ""
        table.append([row.case.tool, row.case.label, seconds(row.median), spread, ratio, "; ".join(notes)])
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    align = ["<", "<", ">", ">", ">", "<"]

    def line(cells):
        return "   " + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    if table:
        out.append(line(headers))
        out.extend(line(r) for r in table)
    out.extend(f"   check: {c.text}: {c.figure}, {_verdict(c.met)}" for c in result.checks)
    out.extend(f"   note: {n}" for n in result.notes)
    return "\n".join(out)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def format_goals(results: list[ScenarioResult]) -> str:
    lines = []
    for res in results:
        for row in res.rows:
            if not row.case.goal:
                continue
            if row.case.goal.kind == "ratio":
                figure = f"{row.ratio:.2f}x" if row.ratio is not None else "no ratio"
            else:
                figure = f"{seconds(row.median)} s" if row.median is not None else "no time"
            verdict = {True: "met", False: "MISSED", None: "not measured"}[row.goal_met]
            lines.append(f"  {res.scenario.name}: {row.case.goal.text}: {figure}, {verdict}")
        for c in res.checks:
            lines.append(f"  {res.scenario.name}: {c.text}: {c.figure}, {_verdict(c.met)}")
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
                "median_s": row.median, "iqr_over_median": row.spread,
                "measurement": row.measurement.to_json() if row.measurement else None,
                "ratio_lg_over_peer": row.ratio, "ratio_against": row.against,
                "relative_to_lg_row": row.relative,
                "goal": {"text": c.goal.text, "kind": c.goal.kind, "limit": c.goal.limit, "met": row.goal_met}
                        if c.goal else None,
            })
        scenarios.append({"number": s.number, "name": s.name, "title": s.title, "measures": s.measures,
                          "primary": s.primary, "runs": res.runs, "seconds_with_setup": res.seconds,
                          "error": res.error, "notes": res.notes,
                          "checks": [{"text": c.text, "figure": c.figure, "met": c.met} for c in res.checks],
                          "figures": res.figures, "rows": rows})
    return {"format": "layergit-bench/1", "interrupted": interrupted, **meta, "scenarios": scenarios}


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a half-written figures file is worse than none."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
