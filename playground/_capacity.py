"""Capacity search: the smallest setting that meets an SLO, and the load at which a topology breaks.

The capacity planner's two questions. "How many servers do we need for this
load?" is the smallest value of a knob (servers, cores, cache size) at which
the system meets its SLO; "how much load does this topology hold?" is the
largest load at which it still does. Both assume the answer is *monotone* -
more servers never hurt, more users never help - so bisection finds it in
about log2(hi - lo) probes instead of trying every value.

Each probe is a small sweep (``playground.sweep``): the knob at one value,
every seed, a mean and 95% confidence interval per figure, and the SLO's
verdict on that interval. A value counts as meeting the SLO only when the
verdict is *met* (the whole interval inside the limit). *Not sure* is treated
as not met - the conservative reading: the answer is a value shown to meet the
SLO, never one that merely might. With ``max_seeds`` a probe that is not sure
is first run again with twice the seeds (up to ``max_seeds``), which narrows
the interval by about 1/sqrt(2) each time.

The search probes ``hi`` first (if even that misses, no value in the range
meets it), then ``lo``, then halves the range between a value that misses and
one that meets. It ends with both neighbours probed: the answer ``n`` met, and
``n - step`` did not.

A probe in which some station was offered more than it can serve (rho >= 1
in ``report.theory()``) is missed whatever its figures say: such a run has no
steady state, and a short one flatters it (its queue has not grown yet). What
the runs warned about (calls made without ``await``, user code drawing from
Python's shared ``random``) is printed under the probe and kept in
``result.warnings``: it can make the answer wrong.

    result = capacity_search(build, knob="servers", lo=1, hi=64, slo=SLO(p99_ms=200), seeds=5,
                             fixed={"users": 1_000_000})
    result.value          # 6, or None
    print(result)         # every probe, then "minimum servers=6"
    breaking_point(build, knob="users", lo=1_000, hi=1_000_000, step=1_000, fixed={"servers": 6})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ._errors import ConfigError, counted
from ._slo import MET, NOT_SURE, SLO

__all__ = ["capacity_search", "breaking_point", "CapacityResult", "Probe"]


@dataclass(frozen=True)
class Probe:
    """One value of the knob, run for every seed, and the SLO's verdict on its intervals."""

    value: int
    verdict: str
    seeds: int
    point: Any  # the sweep's point summary (``point["p99_ms"]`` has mean, low, high, n)

    @property
    def meets(self) -> bool:
        return self.verdict == MET

    def _figure(self, metric: str):
        try:
            return self.point[metric]
        except (KeyError, TypeError):
            return None

    def describe(self, knob: str) -> str:
        """``servers=4: p99 182.3 ms [171.0, 193.6], errors 0.00%, $1,234/month - met``."""
        parts = [f"{knob}={self.value}:"]
        p99 = self._figure("p99_ms")
        if p99 is not None and p99.n:
            ci = f" [{p99.low:,.1f}, {p99.high:,.1f}]" if p99.low is not None else ""
            parts.append(f"p99 {p99.mean:,.1f} ms{ci},")
        err = self._figure("error_rate")
        if err is not None and err.n:
            parts.append(f"errors {err.mean:.2%},")
        cost = self._figure("cost_per_month")
        if cost is not None and cost.n and cost.mean == cost.mean:
            parts.append(f"${cost.mean:,.0f}/month,")
        failed = getattr(self.point, "failed", 0)
        runs = f"{self.seeds} seeds" + (f", {failed} failed" if failed else "")
        saturated = getattr(self.point, "saturated", ())
        why = f" (saturated: {', '.join(saturated)})" if saturated and self.verdict != MET else ""
        warnings = getattr(self.point, "warnings", ())
        warned = f"; {counted(len(warnings), 'warning')}" if warnings else ""
        return " ".join(parts) + f" {runs} - {self.verdict}{why}{warned}"


@dataclass(frozen=True, repr=False)
class CapacityResult:
    """What a search found: the value (or None), every probe, and the one-line answer.

    Its ``repr`` is the answer in one line; ``print`` it for every probe."""

    knob: str
    lo: int
    hi: int
    slo: SLO
    value: int | None
    probes: tuple[Probe, ...] = field(default_factory=tuple)
    mode: str = "minimum"  # "minimum": smallest value that meets; "breaking": largest value that holds
    step: int = 1

    @property
    def answer(self) -> str:
        """``minimum servers=4`` / ``no value in [1, 64] meets the SLO``; for a load, ``holds ... breaks at ...``."""
        if self.value is None:
            return f"no value in [{self.lo}, {self.hi}] meets the SLO"
        if self.mode == "minimum":
            return f"minimum {self.knob}={self.value}"
        if self.breaks_at is None:
            return f"holds {self.knob}={self.value}: did not break in [{self.lo}, {self.hi}]"
        return f"holds {self.knob}={self.value}, breaks at {self.knob}={self.breaks_at}"

    @property
    def breaks_at(self) -> int | None:
        """For a load: the smallest probed value above the answer that missed (its neighbour)."""
        above = [p.value for p in self.probes if not p.meets and (self.value is None or p.value > self.value)]
        return min(above) if above else None

    def probe(self, value: int) -> Probe:
        for p in self.probes:
            if p.value == value:
                return p
        raise KeyError(value)

    @property
    def point(self):
        """The sweep point of the answer (None when there is none)."""
        return self.probe(self.value).point if self.value is not None else None

    def __repr__(self) -> str:
        return (f"<CapacityResult {self.answer} ({self.knob} in [{self.lo}, {self.hi}], SLO {self.slo.describe()}; "
                f"{counted(len(self.probes), 'probe')}: print it for each)>")

    def __str__(self) -> str:
        lines = [f"{'Capacity search' if self.mode == 'minimum' else 'Breaking point'} over "
                 f"{self.knob} in [{self.lo}, {self.hi}], SLO {self.slo.describe()}:"]
        lines += ["  " + p.describe(self.knob) for p in sorted(self.probes, key=lambda p: p.value)]
        lines += self.warning_lines()
        lines.append(self.answer)  # the last line, as on the command line
        return "\n".join(lines)

    @property
    def warnings(self) -> dict[str, tuple[int, ...]]:
        """Each warning the probes' runs gave, with the knob values whose runs gave it."""
        out: dict[str, list[int]] = {}
        for p in sorted(self.probes, key=lambda p: p.value):
            for w in getattr(p.point, "warnings", ()):
                out.setdefault(w, []).append(p.value)
        return {w: tuple(v) for w, v in out.items()}

    def warning_lines(self) -> list[str]:
        """``warning (servers=1, 2): ...``: what the runs warned about, which can make the answer wrong."""
        return [f"warning ({', '.join(f'{self.knob}={v}' for v in values)}): {w}" for w, values in self.warnings.items()]


def _check_int(name: str, value, minimum: int | None = None) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _search(judge: Callable[[int], bool], lo: int, hi: int, step: int, want_smallest: bool) -> int | None:
    """Bisection over lo, lo + step, ..., hi for a monotone ``judge``.

    ``want_smallest``: the smallest value judged True, assuming True from some
    value upwards. Otherwise the largest value judged True, assuming True up
    to some value. Probes the far end first, then the near one, then halves.
    """
    values = list(range(lo, hi + 1, step))
    if values[-1] != hi:
        values.append(hi)
    if want_smallest:
        if not judge(values[-1]):
            return None
        if judge(values[0]):
            return values[0]
        bad, good = 0, len(values) - 1  # indices: bad misses, good meets
        while good - bad > 1:
            mid = (bad + good) // 2
            if judge(values[mid]):
                good = mid
            else:
                bad = mid
        return values[good]
    if not judge(values[0]):
        return None
    if judge(values[-1]):
        return values[-1]
    good, bad = 0, len(values) - 1
    while bad - good > 1:
        mid = (bad + good) // 2
        if judge(values[mid]):
            good = mid
        else:
            bad = mid
    return values[good]


def _run(build, knob: str, lo: int, hi: int, mode: str, *, slo: SLO | None, seeds: int, duration_s: float,
         warmup_s, fixed: Mapping[str, Any] | None, executor, workers: int | None, prices, step: int,
         max_seeds: int | None, echo: Callable[[str], None] | None) -> CapacityResult:
    from ._sweep import sweep

    if not isinstance(knob, str) or not knob:
        raise ConfigError(f"knob must be a parameter name of build, got {knob!r}")
    _check_int("lo", lo)
    _check_int("hi", hi)
    if hi < lo:
        raise ConfigError(f"hi must be >= lo ({lo!r}), got {hi!r}")
    _check_int("step", step, 1)
    _check_int("seeds", seeds, 2)  # an interval needs two runs; one seed would never be "met"
    if max_seeds is not None:
        _check_int("max_seeds", max_seeds, seeds)
    slo = slo if slo is not None else SLO()
    if not isinstance(slo, SLO):
        raise ConfigError(f"slo must be an SLO, got {slo!r}")
    fixed = dict(fixed or {})
    if knob in fixed:
        raise ConfigError(f"the knob is searched, not fixed: remove {knob!r} from fixed")
    from ._buildref import BuildRef
    from ._sweep import _check_grid

    fn = BuildRef.parse(build).resolve() if isinstance(build, str) else build
    if callable(fn):  # a knob build does not take fails before the search starts (sweep says why otherwise)
        _check_grid(fn, {knob: [lo]}, fixed)
    probes: dict[int, Probe] = {}

    def judge(value: int) -> bool:
        n = seeds
        while True:
            result = sweep(build, grid={knob: [value]}, seeds=n, duration_s=duration_s, warmup_s=warmup_s,
                           executor=executor, workers=workers, progress=False, prices=prices, slo=slo,
                           fixed=fixed)
            if result.interrupted:
                raise KeyboardInterrupt
            point = result.points[0]
            if point.n == 0:  # every run of this value failed: a broken build, not a capacity answer
                why = result.rows[0].get("error", "") if result.rows else ""
                raise ConfigError(f"every run with {knob}={value!r} failed: {why}")
            verdict = slo.verdict(point)
            if verdict != NOT_SURE or max_seeds is None or n >= max_seeds:
                break
            if echo is not None:
                echo(f"  {knob}={value}: not sure with {n} seeds; running {min(2 * n, max_seeds)}")
            n = min(2 * n, max_seeds)
        probes[value] = probe = Probe(value, verdict, n, point)
        if echo is not None:
            echo("  " + probe.describe(knob))
            for w in point.warnings:
                echo(f"    warning: {w}")
        return probe.meets

    if echo is not None:
        echo(f"{'Searching' if mode == 'minimum' else 'Loading'} {knob} in [{lo}, {hi}] for "
             f"SLO {slo.describe()} ({seeds} seeds of {duration_s:g} s per probe)")
    value = _search(judge, lo, hi, step, want_smallest=(mode == "minimum"))
    return CapacityResult(knob, lo, hi, slo, value, tuple(sorted(probes.values(), key=lambda p: p.value)),
                          mode, step)


def capacity_search(build, knob: str = "servers", lo: int = 1, hi: int = 64, *, slo: SLO | None = None,
                    seeds: int = 5, duration_s: float = 10.0, warmup_s: float | str = 0.0,
                    fixed: Mapping[str, Any] | None = None, executor=None, workers: int | None = None,
                    prices=None, step: int = 1, max_seeds: int | None = None,
                    echo: Callable[[str], None] | None = print) -> CapacityResult:
    """The smallest value of ``knob`` in [lo, hi] whose runs meet ``slo`` (default ``SLO()``) with confidence.

    ``build(**{knob: value}, **fixed)`` returns a ``Sim`` (or ``build`` is
    ``"MODULE:FUNCTION"``); more of the knob must never make things worse.
    Each probe runs ``seeds`` seeds of ``duration_s`` through ``sweep``
    (``executor``, ``workers``, ``warmup_s`` and ``prices`` as there) and is
    printed through ``echo`` (None: quiet). "Not sure" counts as not met; with
    ``max_seeds`` it is first retried with twice the seeds. ``result.value``
    is None when not even ``hi`` meets the SLO.
    """
    return _run(build, knob, lo, hi, "minimum", slo=slo, seeds=seeds, duration_s=duration_s, warmup_s=warmup_s,
                fixed=fixed, executor=executor, workers=workers, prices=prices, step=step, max_seeds=max_seeds,
                echo=echo)


def breaking_point(build, knob: str = "users", lo: int = 1, hi: int = 1_000_000, *, slo: SLO | None = None,
                   seeds: int = 5, duration_s: float = 10.0, warmup_s: float | str = 0.0,
                   fixed: Mapping[str, Any] | None = None, executor=None, workers: int | None = None,
                   prices=None, step: int = 1, max_seeds: int | None = None,
                   echo: Callable[[str], None] | None = print) -> CapacityResult:
    """The largest load ``knob`` in [lo, hi] (in ``step``s) that a fixed topology holds within ``slo``.

    The mirror of ``capacity_search``: more of the knob must never make
    things better. ``result.answer`` reads ``holds users=40000, breaks at
    users=41000`` (with ``step=1000``); ``result.value`` is None when even
    ``lo`` misses the SLO.
    """
    return _run(build, knob, lo, hi, "breaking", slo=slo, seeds=seeds, duration_s=duration_s, warmup_s=warmup_s,
                fixed=fixed, executor=executor, workers=workers, prices=prices, step=step, max_seeds=max_seeds,
                echo=echo)
