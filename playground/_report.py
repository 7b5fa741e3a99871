"""What a run measured, as a record you can print, save and compare.

``print(report)`` shows rich tables: what the clients saw (throughput,
latency percentiles, errors by kind) and what each component did
(utilisation, queues, its own counters). ``report.host_series`` has every
host second by second; ``report.traces`` the slowest and a sample of the
traced requests (``traces_otlp(path)`` writes them for Jaeger or Tempo);
``report.to_html(path)`` draws it all on one offline page. ``report.to_json()``
saves the figures (not the traces); ``Report.from_json`` reads them back;
``report.compare(other)`` puts two runs side by side (before/after adding a
cache, two seeds, two policies). ``report.check(SLO(p99_ms=200))`` judges it
against thresholds (``playground._slo``); ``report.cost()`` prices the
topology as run, a month of it (``playground._cost``).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from ._cost import CostBreakdown, cost_of
from ._errors import ConfigError, counted
from ._errortable import ErrorRecord
from ._metrics import ClientStats, LatencySummary, SeriesRow
from ._series import HostSeries
from ._slo import SLO, SLOCheck
from ._trace import TraceRecord
from ._stations import StationMeasure

__all__ = ["Report", "Comparison"]


def text_width(width: int | None) -> int:
    """Columns for text output: ``width`` if given, else ``$COLUMNS`` (a pipe has no terminal), else 100."""
    if width is not None:
        return width
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    return columns if columns >= 40 else 100


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _plain(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, HostSeries)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 9)
    return obj


@dataclass(frozen=True, repr=False)
class Report:
    """The result of ``Sim.run``. Client figures are per load; ``components`` per host.

    Its ``repr`` is one line of headline figures (a REPL shows that, not every
    series row); ``print(report)`` gives the tables, ``to_json()`` everything.
    """

    seed: Any
    duration_s: float
    wall_s: float
    clients: dict[str, ClientStats]
    components: dict[str, Any]
    network: dict[str, int] = field(default_factory=dict)
    events: list[tuple[float, str]] = field(default_factory=list)
    series: dict[str, list[SeriesRow]] = field(default_factory=dict)
    simulated_s: float = 0.0
    events_fired: int = 0
    title: str = ""
    overall: LatencySummary | None = None  # every load's latencies together
    host_series: dict[str, HostSeries] = field(default_factory=dict)  # per host, per second: reads as a list of HostSeriesRow
    warmup_s: float = 0.0  # left out at the start; ``duration_s`` is the measured window after it
    warmup_rule: str = ""  # how warmup_s was chosen: "" (given) or "MSER-5" (warmup_s="auto")
    topology: dict[str, Any] = field(default_factory=dict)  # hosts, their settings, who calls whom
    traces: list[TraceRecord] = field(default_factory=list)  # the slowest and a sample (not in to_json)
    stations: tuple[StationMeasure, ...] = ()  # each host's queues, for theory()
    loads: dict[str, dict] = field(default_factory=dict)  # load -> what it offers (rate, users, think time)
    client_errors: dict[str, tuple[ErrorRecord, ...]] = field(default_factory=dict)  # a load failing to make requests
    wall_warnings: list[str] = field(default_factory=list)  # from the wall clock (``_watchdog``): not in to_json()
    run_warnings: list[str] = field(default_factory=list)  # about the run as a whole (user code's randomness)

    # -- what went wrong ----------------------------------------------------------------
    def error_table(self) -> list[tuple[str, ErrorRecord]]:
        """Every host's top error messages as (host, record), most frequent first."""
        rows = [(name, r) for name, s in self.components.items() for r in getattr(s, "errors", ())]
        rows += [(name, r) for name, records in self.client_errors.items() for r in records]
        rows.sort(key=lambda hr: (-hr[1].count, hr[1].first_s, hr[0]))
        return rows

    @property
    def warnings(self) -> list[str]:
        """What the hosts noticed during the run (undeclared calls, calls without await, ...), then what
        the run noticed about itself (user code drawing from Python's shared ``random``)."""
        return [w for s in self.components.values() for w in getattr(s, "warnings", ())] + list(self.run_warnings)

    # -- headline figures (all loads together) --------------------------------------
    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.clients.values())

    @property
    def ok(self) -> int:
        return sum(c.ok for c in self.clients.values())

    @property
    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.clients.values():
            for k, v in c.errors.items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items()))

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def in_flight(self) -> int:
        return sum(c.in_flight for c in self.clients.values())

    @property
    def error_rate(self) -> float:
        done = self.ok + self.failed
        return self.failed / done if done else 0.0

    @property
    def throughput_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    @property
    def latency(self) -> LatencySummary:
        """Latency of successful requests over all loads together."""
        if self.overall is not None:
            return self.overall
        if not self.clients:
            return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return max(self.clients.values(), key=lambda c: c.sent).latency

    @property
    def p50_s(self) -> float:
        return self.latency.p50_s

    @property
    def p99_s(self) -> float:
        return self.latency.p99_s

    @property
    def sim_rate(self) -> float:
        """Simulated requests per wall-clock second."""
        return self.sent / self.wall_s if self.wall_s > 0 else 0.0

    def component(self, name: str):
        """One host's figures (``NodeStats``) by name."""
        try:
            return self.components[name]
        except KeyError:
            raise KeyError(f"no host {name!r} in this report (hosts: {', '.join(self.components)}; the load's "
                           "own client is in report.clients)") from None

    # -- judging and pricing -----------------------------------------------------------
    def check(self, slo: SLO | None = None, *, prices=None) -> SLOCheck:
        """Pass/fail per threshold of ``slo`` (default ``SLO()``: p99 <= 200 ms, errors <= 1%)."""
        return (slo or SLO()).check(self, prices=prices)

    def cost(self, prices=None) -> CostBreakdown:
        """Dollars a month per host and in total for this topology as run (``prices``: dict, TOML path)."""
        return cost_of(self, prices)

    def theory(self, confidence: float = 0.99):
        """Queueing theory beside the run: per-station predictions, bottleneck bounds, MVA
        (``playground._theory``). Works on a report read back from JSON too."""
        from ._theory import theory_of

        return theory_of(self, confidence)

    # -- output ------------------------------------------------------------------------
    def __rich__(self):
        parts = []
        window = f"{self.duration_s + self.warmup_s:g} s simulated"
        if self.warmup_s or self.warmup_rule:
            window += f", warm-up {self.warmup_s:g} s left out" + (f" (chosen by {self.warmup_rule})"
                                                                  if self.warmup_rule else "")
        t = Table(title=self.title or f"Run: {window}, seed {self.seed!r}", title_justify="left")
        t.caption, t.caption_justify = "latency of successful requests, in ms", "left"
        for col in ("load", "sent", "ok", "errors", "in flight", "ok/s", "p50", "p90", "p99", "p99.9", "max"):
            if col in ("load", "errors"):
                t.add_column(col, justify="left", overflow="fold", min_width=6)
            else:
                t.add_column(col, justify="right", no_wrap=True)
        for c in self.clients.values():
            L = c.latency
            errs = ", ".join(f"{k} {v}" for k, v in c.errors.items()) or "-"
            t.add_row(c.name, str(c.sent), str(c.ok), errs, str(c.in_flight), f"{c.throughput_per_s:.1f}",
                      _ms(L.p50_s), _ms(L.p90_s), _ms(L.p99_s), _ms(L.p999_s), _ms(L.max_s))
        parts.append(t)
        if self.components:
            ct = Table(title="Components", title_justify="left")
            for col in ("host", "kind", "state", "served", "rejected", "util", "queue", "peak", "p99 ms"):
                if col in ("host", "kind", "state"):
                    ct.add_column(col, justify="left", overflow="fold", min_width=4)
                else:
                    ct.add_column(col, justify="right", no_wrap=True)
            ct.caption = "queue: mean requests waiting (accept queue, CPU or I/O); peak: longest line"
            ct.caption_justify = "left"
            details = []
            for s in self.components.values():
                ct.add_row(s.name, s.kind, "up" if s.up else "DOWN", str(s.served), str(s.rejected),
                           f"{s.utilisation:.0%}", f"{s.mean_queue:.2f}", f"{s.peak_queue:g}",
                           _ms(s.residence.p99_s))
                if s.detail:  # a component's own counters, on a line of their own: they can be long
                    details.append(f"  {s.name}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in s.detail.items()))
            parts.append(ct)
            if details:
                parts.append("Component counters:\n" + "\n".join(details))
        if self.stations:
            th = self.theory()
            if th.stations:
                parts.append(th.table(compact=True))
                parts.extend(th.summary_lines())
        errors = self.error_table()
        if errors:
            et = Table(title="Errors (top messages per host)", title_justify="left")
            for col in ("host", "count", "first s", "last s", "path", "error"):
                et.add_column(col, justify="right" if col in ("count", "first s", "last s") else "left",
                              overflow="fold")
            for host, r in errors:
                text = f"{r.error}: {r.message}" + (f" - {r.hint}" if r.hint else "")
                et.add_row(host, f"{r.count:,}", f"{r.first_s:.3f}", f"{r.last_s:.3f}", r.path or "-", text)
            parts.append(et)
            other = sum(getattr(s, "errors_other", 0) for s in self.components.values())
            if other:
                parts.append(f"... and {other:,} more errors with other messages")
        for w in self.warnings + self.wall_warnings:
            parts.append(f"Warning: {w}")
        if self.events:
            parts.append("Events: " + "; ".join(f"t={t:.2f}s {d}" for t, d in self.events))
        return Group(*parts)

    def render(self, width: int | None = None) -> str:
        """The report as text tables, ``width`` columns wide (default: ``$COLUMNS``, else 100)."""
        buf = io.StringIO()
        Console(file=buf, width=text_width(width), force_terminal=False, color_system=None).print(self)
        return buf.getvalue()

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        window = f"{self.duration_s:g} s" + (f" after a {self.warmup_s:g} s warm-up" if self.warmup_s else "")
        parts = [f"{self.sent:,} sent", f"{self.ok:,} ok"]
        if self.failed:
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.errors.items(), key=lambda kv: -kv[1])[:3])
            parts.append(f"{self.failed:,} failed ({kinds})")
        else:
            parts.append("0 failed")
        if self.in_flight:
            parts.append(f"{self.in_flight:,} in flight")
        if self.ok:
            parts.append(f"p50 {self.p50_s * 1000:,.1f} ms, p99 {self.p99_s * 1000:,.1f} ms")
        return (f"<Report seed={self.seed!r}, {window}: {', '.join(parts)}; {counted(len(self.components), 'host')} "
                "(print it for the tables)>")

    def to_dict(self) -> dict:
        d = _plain(self)
        d.pop("wall_s", None)  # wall time differs between identical runs; see to_json(wall=True)
        d.pop("traces", None)  # spans go to traces_otlp(); the JSON keeps the figures
        d.pop("wall_warnings", None)
        return d

    def to_json(self, *, wall: bool = False, indent: int | None = 2) -> str:
        """JSON of the report. Without ``wall`` it is identical for identical runs."""
        d = self.to_dict()
        if wall:
            d["wall_s"] = round(self.wall_s, 6)
            d["wall_warnings"] = list(self.wall_warnings)
        return json.dumps(d, indent=indent, sort_keys=True)

    def traces_otlp(self, path, *, start_unix_s: int | None = None) -> int:
        """Write the kept traces as OTLP/JSON (load it in Jaeger or Grafana Tempo); returns how many.

        Simulated time 0 is placed at ``start_unix_s`` (default 2024-01-01 00:00 UTC).
        """
        from pathlib import Path

        from . import _otlp

        start = _otlp.START_UNIX_S if start_unix_s is None else start_unix_s
        Path(path).write_text(_otlp.dumps(self.traces, start_unix_s=start))
        return len(self.traces)

    def to_html(self, path, *, sections=None) -> None:
        """Write a self-contained HTML page of the run: topology, a time slider, charts, errors, traces.

        ``sections`` (default ``playground._html.SECTIONS``) is the list of functions that draw the
        page, one section each: append one to add a view.
        """
        from pathlib import Path

        from ._html import render

        Path(path).write_text(render(self, sections), encoding="utf-8")

    def save(self, path, *, wall: bool = True) -> None:
        from pathlib import Path

        Path(path).write_text(self.to_json(wall=wall))

    @staticmethod
    def from_json(text: str) -> dict:
        """The saved figures as plain dicts (for notebooks, ``CostBreakdown.of`` and ``compare``)."""
        return json.loads(text)

    def compare(self, other: "Report | dict", labels: tuple[str, str] = ("A", "B")) -> "Comparison":
        """This run beside ``other``: another Report, or a saved one (``Report.from_json(text)``)."""
        if not isinstance(other, (Report, dict)):
            raise ConfigError(f"compare() takes a Report or the dict Report.from_json reads back, got {other!r}")
        _headline(other)  # a dict that is not a saved report is refused now, not when printed
        return Comparison(self, other, labels)


def _headline(r: "Report | dict") -> tuple[float, ...]:
    """What a comparison shows of a run, from a Report or from its saved JSON (the same figures)."""
    if isinstance(r, Report):
        return (r.throughput_per_s, r.p50_s * 1000, r.p99_s * 1000, r.error_rate * 100, r.sent, r.failed)
    try:
        clients = list(r["clients"].values())
        sent = sum(c["sent"] for c in clients)
        ok = sum(c["ok"] for c in clients)
        failed = sum(sum(c["errors"].values()) for c in clients)
        latency = r.get("overall") or (max(clients, key=lambda c: c["sent"])["latency"] if clients else {})
        duration = r["duration_s"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"compare() needs a report saved by Report.to_json or save(); this dict lacks {exc}") \
            from None
    return (ok / duration if duration else 0.0, latency.get("p50_s", 0.0) * 1000, latency.get("p99_s", 0.0) * 1000,
            failed / (ok + failed) * 100 if ok + failed else 0.0, sent, failed)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


@dataclass(frozen=True)
class Comparison:
    """Two reports side by side, with the change from the first to the second."""

    a: "Report | dict"
    b: "Report | dict"
    labels: tuple[str, str] = ("A", "B")

    def rows(self) -> list[tuple[str, float, float]]:
        a, b = _headline(self.a), _headline(self.b)
        return [(name, a[i], b[i]) for i, name in enumerate(
            ("throughput ok/s", "p50 ms", "p99 ms", "error rate %", "sent", "failed"))]

    def __rich__(self):
        t = Table(title=f"{self.labels[0]} vs {self.labels[1]}", title_justify="left")
        t.add_column("metric")
        t.add_column(self.labels[0], justify="right")
        t.add_column(self.labels[1], justify="right")
        t.add_column("change", justify="right")
        for name, x, y in self.rows():
            change = f"{(y - x) / x:+.0%}" if x else "-"
            t.add_row(name, f"{x:,.2f}", f"{y:,.2f}", change)
        return t

    def __str__(self) -> str:
        buf = io.StringIO()
        Console(file=buf, width=text_width(None), force_terminal=False, color_system=None).print(self)
        return buf.getvalue()
