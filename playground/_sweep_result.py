"""What a sweep found: one row per (point, seed), one summary per point.

Rows are the raw material (CSV, JSON, pandas); points are what a decision is
made on: each metric's mean over the seeds with its 95% Student-t interval.
"""
from __future__ import annotations

import csv as _csv
import dataclasses
import io
import json as _json
import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import counted
from ._stats import Estimate, estimate

WARNING_SEPARATOR = " | "  # between a row's warnings (``playground._sweep`` joins them so)

__all__ = ["SweepResult", "SweepPoint", "METRICS"]

# the numeric figures of a row that a point summarises (busiest_host is a name, not summarised)
METRICS = ("p50_ms", "p99_ms", "mean_ms", "throughput_per_s", "error_rate", "busiest_utilisation",
           "cache_hit_ratio", "db_queries_per_s", "cost_per_month", "warmup_s")


@dataclass(frozen=True)
class SweepPoint:
    """One grid point over its seeds: ``point["p99_ms"]`` is an ``Estimate`` (mean, low, high, n)."""

    params: dict[str, Any]
    n: int  # runs that finished
    failed: int
    metrics: dict[str, Estimate]
    busiest_host: str = ""
    verdict: str | None = None  # met / missed / not sure, when the sweep had an SLO
    saturated: tuple[str, ...] = ()  # stations offered more than they serve (rho >= 1) in some run
    saturated_runs: int = 0  # how many of the point's runs had one
    warnings: tuple[str, ...] = ()  # what the point's runs warned about, each once

    def __getitem__(self, metric: str) -> Estimate:
        return self.metrics[metric]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items()) or "(no parameters)"


@dataclass(repr=False)
class SweepResult:
    """The rows and per-point summaries of ``sweep``; print it for a table.

    Its ``repr`` says what was swept in one line (the rows can be thousands)."""

    grid: dict[str, list]
    seeds: list
    duration_s: float
    warmup_s: float | str = 0.0
    fixed: dict[str, Any] = field(default_factory=dict)
    slo: Any = None
    prices: Any = None
    build: str = ""
    rows: list[dict] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0

    # -- summaries --------------------------------------------------------------------
    @property
    def points(self) -> list[SweepPoint]:
        groups: dict[tuple, list[dict]] = {}
        for row in self.rows:
            groups.setdefault(tuple(row[k] for k in self.grid), []).append(row)
        out = []
        for key, rows in groups.items():
            ok = [r for r in rows if r["status"] == "ok"]
            metrics = {m: estimate([r[m] for r in ok if r.get(m) is not None]) for m in METRICS}
            hosts = [r["busiest_host"] for r in ok if r.get("busiest_host")]
            saturated = [r["saturated"] for r in ok if r.get("saturated")]
            stations = dict.fromkeys(part.split(" (rho", 1)[0] for text in saturated for part in text.split(", "))
            warned = dict.fromkeys(w for r in ok if r.get("warnings") for w in r["warnings"].split(WARNING_SEPARATOR))
            point = SweepPoint(dict(zip(self.grid, key)), len(ok), len(rows) - len(ok), metrics,
                               max(set(hosts), key=hosts.count) if hosts else "", None, tuple(stations),
                               len(saturated), tuple(warned))
            if self.slo is not None and callable(getattr(self.slo, "verdict", None)):
                point = dataclasses.replace(point, verdict=self.slo.verdict(point))
            out.append(point)
        return out

    def summary(self, metric: str = "p99_ms") -> list[dict]:
        """Per point: its parameters, and ``mean``, ``ci_low``, ``ci_high``, ``n`` of ``metric``."""
        if metric not in METRICS:
            raise KeyError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        return [{**p.params, "mean": p[metric].mean, "ci_low": p[metric].low, "ci_high": p[metric].high,
                 "n": p[metric].n} for p in self.points]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "ok"]

    # -- exports ------------------------------------------------------------------------
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [k for k in row if k not in cols]
        return cols

    def to_csv(self, path=None) -> str:
        """The rows as CSV (None shows as an empty cell); written to ``path`` when given."""
        buf = io.StringIO()
        w = _csv.DictWriter(buf, fieldnames=self.columns() or list(self.grid) + ["seed"], lineterminator="\n")
        w.writeheader()
        for row in self.rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text

    def to_dict(self) -> dict:
        points = []
        for p in self.points:
            d = {"params": p.params, "n": p.n, "failed": p.failed, "busiest_host": p.busiest_host}
            d.update({m: {"mean": _num(e.mean), "ci_low": e.low, "ci_high": e.high, "n": e.n}
                      for m, e in p.metrics.items()})
            if p.verdict is not None:
                d["verdict"] = p.verdict
            d["saturated"], d["saturated_runs"], d["warnings"] = list(p.saturated), p.saturated_runs, list(p.warnings)
            points.append(d)
        return {"build": self.build, "grid": self.grid, "fixed": self.fixed, "seeds": self.seeds,
                "duration_s": self.duration_s, "warmup_s": self.warmup_s, "interrupted": self.interrupted,
                "rows": self.rows, "points": points}

    def to_json(self, path=None, *, indent: int | None = 2) -> str:
        text = _json.dumps(self.to_dict(), indent=indent, default=str)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is not a dependency: ``pip install pandas``)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("SweepResult.to_pandas() needs pandas, which playground does not install: "
                              "pip install pandas") from None
        return pandas.DataFrame(self.rows, columns=self.columns() or None)

    def __rich__(self):
        from rich.table import Table

        state = ", interrupted" if self.interrupted else ""
        warm = f", warm-up {self.warmup_s}" + (" s" if self.warmup_s != "auto" else "") if self.warmup_s else ""
        t = Table(title=f"Sweep: {len(self.rows)} runs, {len(self.seeds)} seeds, {self.duration_s:g} s each"
                        f"{warm}{state} - mean [95% CI]", title_justify="left")
        for col in (*self.grid, "runs", "p50 ms", "p99 ms", "ok/s", "errors", "busiest", "cache hit", "$/month"):
            t.add_column(col, justify="left" if col in ("busiest",) else "right")
        auto = self.warmup_s == "auto"
        if auto:
            t.add_column("warm-up s", justify="right")
        has_verdict = self.slo is not None
        if has_verdict:
            t.add_column("SLO")
        for p in self.points:
            runs = f"{p.n}" + (f" ({p.failed} failed)" if p.failed else "")
            cells = [*(str(v) for v in p.params.values()), runs, _ci(p["p50_ms"]), _ci(p["p99_ms"]),
                     _ci(p["throughput_per_s"], ".1f"), _ci(p["error_rate"], ".2%"),
                     f"{p.busiest_host} {p['busiest_utilisation'].mean:.0%}" if p.busiest_host else "-",
                     _ci(p["cache_hit_ratio"], ".1%"), _ci(p["cost_per_month"], ",.0f")]
            if auto:
                cells.append(f"{p['warmup_s'].mean:.0f}" if p["warmup_s"].n else "-")  # MSER-5's mean pick
            if has_verdict:
                cells.append((p.verdict or "-") + (" (saturated)" if p.saturated and p.verdict == "missed" else ""))
            t.add_row(*cells)
        notes = self.notes()
        if not notes:
            return t
        from rich.console import Group
        from rich.text import Text

        return Group(t, Text("\n".join(notes)))

    def notes(self) -> list[str]:
        """What the table's figures do not show: saturated stations and the runs' warnings, per point."""
        lines = []
        for p in self.points:
            if p.saturated:
                lines.append(f"{p.label()}: saturated in {p.saturated_runs} of {counted(p.n, 'run')}: "
                             f"{', '.join(p.saturated)} offered more than it serves (rho >= 1), so its queue "
                             "grows for as long as the run lasts and a longer run shows a higher p99")
            for w in p.warnings:
                lines.append(f"{p.label()}: warning: {w}")
        return lines

    def render(self, width: int = 160) -> str:
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=width, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        grid = "; ".join(f"{k}={v!r}" for k, v in self.grid.items()) or "no grid"
        ok = sum(1 for r in self.rows if r.get("status") == "ok")
        failed = f", {len(self.rows) - ok:,} failed" if len(self.rows) > ok else ""
        stopped = ", interrupted" if self.interrupted else ""
        build = f"{self.build} " if self.build else ""
        return (f"<SweepResult {build}over {grid}, {counted(len(self.seeds), 'seed')}: "
                f"{counted(len(self.rows), 'run')} of {self.duration_s:g} s ({ok:,} ok{failed}{stopped}); print it for the table>")

    def pareto(self, x: str = "cost_per_month", y: str = "p99_ms") -> list[SweepPoint]:
        """The points not beaten on both ``x`` and ``y`` (their means; lower is better), by ascending ``x``."""
        from ._cost import pareto_front

        return pareto_front(self.points, x, y)

    def plot(self, path, metric: str = "p99_ms", x: str | None = None):
        """``metric`` against parameter ``x``: one line per combination of the other parameters, CI bands.

        Needs matplotlib (the ``plots`` extra). Returns the path written.
        """
        from .plots import sweep_plot

        return sweep_plot(self, path, metric=metric, x=x)


def _num(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def _ci(e: Estimate, fmt: str = ".1f") -> str:
    if e.n == 0:
        return "-"
    if e.low is None or e.high - e.low <= 1e-12 * max(1.0, abs(e.mean)):  # one run, or all runs alike
        return format(e.mean, fmt)
    return f"{format(e.mean, fmt)} [{format(e.low, fmt)}, {format(e.high, fmt)}]"
