"""Service level objectives: thresholds a run (or a sweep's point) must keep.

A service level objective is a promise about what users see: "99% of
requests answer within 200 ms, fewer than 1% fail". Load-testing tools check
one after a test (k6 calls them *thresholds*: ``http_req_duration: p(99)<200``);
here ``SLO(p99_ms=200, error_rate=0.01)`` is that promise and
``report.check(slo)`` says, per threshold, the measured figure and whether it
passed. ``assert_slo(report, p99_ms=200)`` is the same inside a test: it fails
with a message naming the threshold, the figure and the worst host.

One run is one sample. Across a sweep's replications a point has a mean and
a 95% confidence interval per figure, and ``slo.verdict(point)`` judges it
with the interval, not the mean: *met* if the whole interval is inside the
limit (its upper end, for a maximum such as p99; its lower end, for a minimum
such as throughput), *missed* if the whole interval is outside, and *not
sure* otherwise - more seeds or a longer run would tell.

    slo = SLO(p99_ms=200, error_rate=0.01)
    check = report.check(slo)          # truthy iff every threshold passes; prints as a table
    assert_slo(report, slo)            # in pytest
    SLO.parse("p99_ms=200,error_rate=0.05")   # what the command line's --slo gives
"""
from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ._errors import ConfigError, check_positive, check_probability

__all__ = ["SLO", "SLOCheck", "ThresholdResult", "assert_slo", "METRICS", "MET", "MISSED", "NOT_SURE"]

MET, MISSED, NOT_SURE = "met", "missed", "not sure"


@dataclass(frozen=True)
class _Metric:
    label: str
    bound: str  # "max": the figure must stay <= the limit; "min": >= the limit

    def fmt(self, name: str, value: float) -> str:
        if value != value:
            return "n/a"
        if name.endswith("_ms"):
            return f"{value:,.1f} ms" if abs(value) >= 1 or value == 0 else f"{value:.3g} ms"
        if name == "error_rate":
            return f"{value:.2%}"
        if name == "busiest_utilisation":
            return f"{value:.0%}"
        if name == "throughput_per_s":
            return f"{value:,.1f}/s"
        if name == "cost_per_month":
            return f"${value:,.2f}"
        return f"{value:g}"


# The figures an SLO can bound; the names are those of a sweep's rows.
METRICS: dict[str, _Metric] = {
    "p50_ms": _Metric("p50", "max"),
    "p99_ms": _Metric("p99", "max"),
    "mean_ms": _Metric("mean latency", "max"),
    "error_rate": _Metric("errors", "max"),
    "throughput_per_s": _Metric("throughput", "min"),
    "busiest_utilisation": _Metric("busiest host", "max"),
    "cost_per_month": _Metric("cost", "max"),
}


@dataclass(frozen=True)
class SLO:
    """Thresholds on what users see. Defaults: p99 <= 200 ms and errors <= 1%; ``None`` drops one.

    ``p50_ms``, ``p99_ms``, ``mean_ms`` (latency of successful requests),
    ``error_rate`` (failed / answered), ``busiest_utilisation`` (the most
    loaded host) and ``cost_per_month`` (``report.cost()``) are maximums;
    ``throughput_per_s`` (successful requests a second) is a minimum.

        >>> SLO(p99_ms=300, throughput_per_s=1000)
        SLO(p99 <= 300.0 ms, errors <= 1.00%, throughput >= 1,000.0/s)
    """

    p99_ms: float | None = 200.0
    p50_ms: float | None = None
    mean_ms: float | None = None
    error_rate: float | None = 0.01
    throughput_per_s: float | None = None
    busiest_utilisation: float | None = None
    cost_per_month: float | None = None

    def __post_init__(self) -> None:
        for name in METRICS:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("error_rate", "busiest_utilisation"):
                check_probability(name, value)
            else:
                check_positive(name, value)
            object.__setattr__(self, name, float(value))
        if not self.thresholds:
            raise ConfigError("an SLO needs at least one threshold, got none")

    @property
    def thresholds(self) -> dict[str, float]:
        """The thresholds that are set, by metric name."""
        return {name: getattr(self, name) for name in METRICS if getattr(self, name) is not None}

    def describe(self) -> str:
        """``"p99 <= 200.0 ms, errors <= 1.00%"``."""
        parts = []
        for name, limit in self.thresholds.items():
            m = METRICS[name]
            parts.append(f"{m.label} {'<=' if m.bound == 'max' else '>='} {m.fmt(name, limit)}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"SLO({self.describe()})"

    # -- parsing the command line's --slo -----------------------------------------------------
    @classmethod
    def parse(cls, texts: str | Iterable[str], *, flag: str = "--slo") -> "SLO":
        """``"p99_ms=200,error_rate=0.05"`` (or several such strings) as an SLO.

        Thresholds not named keep their defaults; ``error_rate=none`` drops one.
        Errors name ``flag``: ``--slo p99_ms must be a number, got 'abc'``.
        """
        if isinstance(texts, str):
            texts = [texts]
        given: dict[str, float | None] = {}
        for text in texts:
            for item in str(text).split(","):
                item = item.strip()
                if not item:
                    continue
                key, sep, raw = item.partition("=")
                key, raw = key.strip(), raw.strip()
                if not sep or not key or not raw:
                    raise ConfigError(f"{flag} must be METRIC=NUMBER pairs, got {item!r}")
                if key not in METRICS:
                    raise ConfigError(f"{flag} metric must be one of {', '.join(METRICS)}, got {key!r}")
                if raw.lower() == "none":
                    given[key] = None
                    continue
                try:
                    value = float(raw.replace("_", ""))
                except ValueError:
                    raise ConfigError(f"{flag} {key} must be a number, got {raw!r}") from None
                given[key] = value
        try:
            return cls(**given)
        except ConfigError as exc:
            raise ConfigError(f"{flag} {exc}") from None

    # -- judging ---------------------------------------------------------------------------------
    def check(self, report, *, prices=None) -> "SLOCheck":
        """Each threshold against one run's ``Report`` (what ``report.check(slo)`` calls)."""
        results = []
        for name, limit in self.thresholds.items():
            measured = measure(report, name, prices)
            m = METRICS[name]
            passed = measured == measured and (measured <= limit if m.bound == "max" else measured >= limit)
            results.append(ThresholdResult(name, limit, measured, passed))
        return SLOCheck(self, tuple(results), _worst_host(report))

    def verdicts(self, point) -> dict[str, str]:
        """Met / missed / not sure per threshold, for a sweep point's confidence intervals."""
        out = {}
        for name, limit in self.thresholds.items():
            low, high = _interval(point, name)
            out[name] = _judge(METRICS[name].bound, limit, low, high)
        return out

    def verdict(self, point) -> str:
        """``"met"`` if every threshold is met, ``"missed"`` if any is missed, else ``"not sure"``.

        ``point`` is a sweep's per-point summary: for each metric, its 95%
        confidence interval (``low``, ``high``). An interval that is not known
        (a single replication, no successful request) is "not sure".
        A point where some station was offered more than it can serve
        (``point.saturated``: rho >= 1 in ``report.theory()``) is "missed"
        whatever its figures: it has no steady state, so its queue and its p99
        grow for as long as the run lasts and a short run would flatter it.
        """
        if _field(point, "saturated"):
            return MISSED
        judged = self.verdicts(point).values()
        if MISSED in judged:
            return MISSED
        if all(v == MET for v in judged):
            return MET
        return NOT_SURE


def _judge(bound: str, limit: float, low: float, high: float) -> str:
    if low != low or high != high:  # NaN: no interval
        return NOT_SURE
    if bound == "max":
        if high <= limit:
            return MET
        return MISSED if low > limit else NOT_SURE
    if low >= limit:
        return MET
    return MISSED if high < limit else NOT_SURE


def _field(obj, name: str):
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _interval(point, name: str) -> tuple[float, float]:
    """The (low, high) ends of ``name``'s confidence interval in a sweep's point summary.

    ``point[name]`` or ``point.metrics[name]`` with ``low`` and ``high`` (a
    sweep's ``Estimate``), or flat ``{name}_low`` / ``{name}_high`` keys. Ends
    that are None (fewer than two runs) come back as NaN: not known.
    """
    summary = None
    if isinstance(point, Mapping):
        summary = point.get(name)
    if summary is None:
        metrics = _field(point, "metrics")
        summary = _field(metrics, name) if metrics is not None else None
    if summary is None and not isinstance(point, Mapping):
        summary = getattr(point, name, None)
    if summary is None:
        if _field(point, f"{name}_low") is None and _field(point, f"{name}_high") is None:
            raise ConfigError(f"a sweep point must summarise {name} with low and high ends, got {point!r}"[:300])
        low, high = _field(point, f"{name}_low"), _field(point, f"{name}_high")
    elif isinstance(summary, (int, float)):
        raise ConfigError(f"{name} of a sweep point must have a confidence interval (low, high), got {summary!r}")
    else:
        low, high = _field(summary, "low"), _field(summary, "high")
    return (math.nan if low is None else float(low)), (math.nan if high is None else float(high))


# -- one run's figures ------------------------------------------------------------------------
def measure(report, name: str, prices=None) -> float:
    """The figure ``name`` (a key of ``METRICS``) of one run's ``Report``."""
    if name == "p50_ms":
        return report.p50_s * 1000
    if name == "p99_ms":
        return report.p99_s * 1000
    if name == "mean_ms":
        return report.latency.mean_s * 1000
    if name == "error_rate":
        return report.error_rate
    if name == "throughput_per_s":
        return report.throughput_per_s
    if name == "busiest_utilisation":  # as a sweep's rows count it: a database's IO counts too
        return max((max(s.utilisation, float(s.detail.get("io_utilisation", 0.0) or 0.0))
                    for s in report.components.values()), default=0.0)
    if name == "cost_per_month":
        return report.cost(prices).total_per_month
    raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {name!r}")


@dataclass(frozen=True)
class WorstHost:
    name: str
    utilisation: float
    p99_ms: float

    def __str__(self) -> str:
        return f"{self.name} (utilisation {self.utilisation:.0%}, p99 residence {self.p99_ms:,.1f} ms)"


def _worst_host(report) -> WorstHost | None:
    """The busiest component by utilisation; among equally busy ones, the slowest (p99 residence)."""
    best = None
    for s in report.components.values():
        key = (round(s.utilisation, 6), s.residence.p99_s)
        if best is None or key > best[0]:
            best = (key, s)
    if best is None:
        return None
    s = best[1]
    return WorstHost(s.name, s.utilisation, s.residence.p99_s * 1000)


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold: the metric, its limit, what the run measured, and whether it passed."""

    name: str
    limit: float
    measured: float
    passed: bool

    @property
    def bound(self) -> str:
        return METRICS[self.name].bound

    def describe(self) -> str:
        """``"p99_ms 312.4 ms > limit 200.0 ms"``."""
        m = METRICS[self.name]
        if self.passed:
            op = "<=" if m.bound == "max" else ">="
        else:
            op = ">" if m.bound == "max" else "<"
        return f"{self.name} {m.fmt(self.name, self.measured)} {op} limit {m.fmt(self.name, self.limit)}"


@dataclass(frozen=True)
class SLOCheck:
    """Pass or fail per threshold for one run; truthy iff every threshold passed."""

    slo: SLO
    results: tuple[ThresholdResult, ...]
    worst_host: WorstHost | None = None

    def __bool__(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def passed(self) -> bool:
        return bool(self)

    @property
    def failed(self) -> tuple[ThresholdResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def __getitem__(self, name: str) -> ThresholdResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def message(self) -> str:
        """One line: what failed (or that all passed) and the worst host."""
        if self:
            head = "SLO met: " + "; ".join(r.describe() for r in self.results)
        else:
            head = "SLO missed: " + "; ".join(r.describe() for r in self.failed)
        return head + (f"; worst host: {self.worst_host}" if self.worst_host else "")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": bool(self), "results": [dataclasses.asdict(r) for r in self.results],
                "worst_host": dataclasses.asdict(self.worst_host) if self.worst_host else None}

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        t = Table(title=f"SLO: {'met' if self else 'MISSED'}", title_justify="left")
        for col in ("threshold", "limit", "measured", "result"):
            t.add_column(col, justify="left" if col in ("threshold", "result") else "right")
        for r in self.results:
            m = METRICS[r.name]
            t.add_row(r.name, f"{'<=' if m.bound == 'max' else '>='} {m.fmt(r.name, r.limit)}",
                      m.fmt(r.name, r.measured), "pass" if r.passed else "FAIL", style=None if r.passed else "red")
        return Group(t, f"worst host: {self.worst_host}") if self.worst_host else t

    def __str__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        Console(file=buf, width=100, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()


def assert_slo(report, slo: SLO | None = None, *, prices=None, **thresholds) -> SLOCheck:
    """Raise ``AssertionError`` unless ``report`` keeps the SLO; return the check otherwise.

    ``slo`` defaults to ``SLO()``; keyword thresholds (``p99_ms=150``) replace
    its fields, so ``assert_slo(report, p99_ms=150)`` checks p99 <= 150 ms and
    the default errors <= 1%. The message names each failed threshold with its
    figure and limit, and the worst host (busiest by utilisation):

        SLO missed: p99_ms 312.4 ms > limit 200.0 ms; worst host: app1 (utilisation 99%, ...)
    """
    unknown = sorted(k for k in thresholds if k not in METRICS)
    if unknown:
        raise ConfigError(f"threshold must be one of {', '.join(METRICS)}, got {unknown[0]!r}")
    slo = dataclasses.replace(slo or SLO(), **thresholds) if thresholds else (slo or SLO())
    result = slo.check(report, prices=prices)
    if not result:
        raise AssertionError(result.message())
    return result
