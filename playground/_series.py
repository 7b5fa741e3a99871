"""Every host's figures, second by second: what a monitoring system would scrape.

A real fleet is watched through time series: a Prometheus scrape every few
seconds of each machine's CPU, queue depth, requests served, errors, and a
latency histogram. The totals in ``NodeStats`` say how a run went on average;
a series says *when* a host saturated, went down or started failing, which is
what a post-mortem needs ("show me what killed my system").

The model keeps, per host and per simulated second: the time-averaged
utilisation, the time-averaged length of its waiting lines (the accept queue
and any resource queue such as an app server's CPU queue), the time-averaged
number of requests in the host, the requests served, the errors by kind
(``rejected``: accept queue full; ``refused``: it was down; ``reset``: it
crashed while holding them; ``handler_errors``: its own code failed), whether
it was up at the end of the second, and the p50/p99 of the time requests spent
in it, from a small fixed histogram (``LatencySketch``: 8 buckets per octave,
about 6% value precision, 264 counters reused every second).

Cost: the hot path pays nothing more than the host's residence histogram's own
record (a list append): the sketch counts the values that histogram drains, a
batch at a time, and the sampler drains it at every second's end. The rest is
read once a simulated second by a scheduler callback (``SeriesSampler``) from
counters the host keeps anyway (deltas of integrals and totals), so a
second with a thousand requests costs the same sampling as an idle one.

Memory is flat: at most ``max_rows`` rows per host. When a run outgrows them
(a live server that runs for days), adjacent rows are merged in pairs and the
interval doubles: counts add, averages weight by time, p50 weights by count
and p99 keeps the larger of the two (so a merged p99 never hides a bad second).
The rows are kept packed, 14 doubles each (112 bytes, against about 384 for a
``HostSeriesRow`` object with its boxed numbers), during the run and in the
report (``HostSeries``, which reads as a list of rows), and unpacked when read.
The model leaves out per-second peaks (a queue that spiked within a second shows
as its average over the second) and per-route breakdowns.
"""
from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from bisect import bisect_right
from collections import Counter
from itertools import repeat
from math import isfinite
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._clock import Scheduler
    from ._node import Node

__all__ = ["HostSeries", "HostSeriesRow", "LatencySketch", "SeriesSampler"]

_PER_OCTAVE = 8
_MIN_EXP = -19  # 2**-20 s, about 1 us: anything below lands in the first bucket
_SIZE = (12 - _MIN_EXP + 2) * _PER_OCTAVE  # up to 2**12 s (over an hour)
_TWICE = 2 * _PER_OCTAVE


def _floor(i: int) -> float:
    """The smallest value of bucket ``i``: ``(0.5 + j / 16) * 2**e``, exact in binary."""
    e, j = divmod(i, _PER_OCTAVE)
    return (0.5 + j / _TWICE) * 2.0 ** (e + _MIN_EXP)


_FLOORS = [_floor(i) for i in range(1, _SIZE)]  # the bucket of v is bisect_right(_FLOORS, v)


class LatencySketch:
    """A tiny fixed-size latency histogram: 8 log-spaced buckets per octave (~6% precision).

        >>> s = LatencySketch(); s.record(0.010); s.record(0.020); round(s.percentile(99), 3)  # the middle of 0.020's bucket
        0.021
    """

    __slots__ = ("counts", "count")

    def __init__(self) -> None:
        self.counts = [0] * _SIZE
        self.count = 0

    def record(self, seconds: float) -> None:
        self.record_many((seconds,))

    def record_many(self, values) -> None:
        """Count each of ``values`` (a host's residence times, as its histogram drains them).

        A value's bucket is the number of bucket floors at or below it (``_FLOORS``): found by
        bisection and counted in C, a batch at a time (200 ns a value against 340 for
        ``frexp`` and the index in bytecode; 1,024 values, the 2-core AMD EPYC development
        machine, Python 3.11.7). Below the second bucket (zero too) is the first; past the
        last floor, the last."""
        counts = self.counts
        for i, n in Counter(map(bisect_right, repeat(_FLOORS), values)).items():
            counts[i] += n
        self.count += len(values)

    @staticmethod
    def _value(i: int) -> float:
        """The middle of bucket ``i``."""
        e, j = divmod(i, _PER_OCTAVE)
        return (0.5 + (j + 0.5) / (2 * _PER_OCTAVE)) * 2.0 ** (e + _MIN_EXP)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in seconds; 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, int(q / 100 * self.count + 0.999999))
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= rank:
                    return self._value(i)
        return self._value(_SIZE - 1)

    def clear(self) -> None:
        if self.count:
            self.counts = [0] * _SIZE
            self.count = 0


@dataclass(frozen=True)
class HostSeriesRow:
    """One host over one interval (normally one simulated second) starting at ``t_s``."""

    t_s: float
    dt_s: float
    up: bool  # up at the end of the interval
    utilisation: float  # time-averaged share of capacity in use
    queue: float  # time-averaged requests waiting (accept queue + resource queues)
    in_flight: float  # time-averaged requests inside the host
    served: int
    rejected: int
    refused: int
    reset: int
    handler_errors: int
    p50_s: float  # time in the host of the requests it answered, from a LatencySketch
    p99_s: float
    crashes: int = 0

    @property
    def errors(self) -> int:
        return self.rejected + self.refused + self.reset + self.handler_errors


_WIDTH = len(fields(HostSeriesRow))
_TYPES = tuple({"bool": bool, "int": int}.get(f.type, float) for f in fields(HostSeriesRow))


class HostSeries(Sequence):
    """One host's rows, kept packed (``_WIDTH`` doubles a row) and unpacked as they are read.

    It reads as a list of ``HostSeriesRow`` (index, slice, iterate, ``len``, ``==``), and
    holds 112 bytes a row instead of about 376 for the row objects (measured with tracemalloc
    on 3,600 rows): a long run's report, which keeps every host's rows up to their cap, makes
    no row objects until they are read. Each read makes a fresh row, so compare rows with
    ``==``, not ``is``.

        >>> rows = HostSeries(array("d", [0.0, 1.0, 1, 0.5, 0, 1.0, 40, 0, 0, 0, 0, 0.01, 0.02, 0]))
        >>> rows[0].served, rows[0].up, len(rows)
        (40, True, 1)
    """

    __slots__ = ("_packed",)

    def __init__(self, packed: array | None = None) -> None:
        self._packed = array("d") if packed is None else packed

    def __len__(self) -> int:
        return len(self._packed) // _WIDTH

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"host series index {index} out of range for {n} rows")
        return _row(self._packed, index * _WIDTH)

    def __iter__(self):
        packed = self._packed
        for k in range(0, len(packed), _WIDTH):
            yield _row(packed, k)

    def __eq__(self, other) -> bool:
        if isinstance(other, HostSeries):
            return self._packed == other._packed
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # mutable-looking, like the list it stands for

    def __repr__(self) -> str:
        return f"HostSeries({list(self)!r})"

    def __reduce__(self):
        return HostSeries, (self._packed,)


def _row(packed: array, k: int) -> HostSeriesRow:
    """The row at offset ``k`` of a packed array, with its bools and ints back."""
    return HostSeriesRow(*[t(v) for t, v in zip(_TYPES, packed[k:k + _WIDTH])])


def _halve(packed: array) -> None:
    """Merge adjacent rows in pairs, in place (an odd last row stays as it is).

    In place, so the array keeps its block and grows back into it: a fresh array at
    every halving would leave the old block behind as a hole in the C heap.
    """
    n = len(packed) // _WIDTH
    for j in range(n // 2):
        a, b = _row(packed, 2 * j * _WIDTH), _row(packed, (2 * j + 1) * _WIDTH)
        packed[j * _WIDTH:(j + 1) * _WIDTH] = array("d", astuple(merge_rows(a, b)))
    if n % 2:
        packed[(n // 2) * _WIDTH:(n // 2 + 1) * _WIDTH] = packed[(n - 1) * _WIDTH:n * _WIDTH]
    del packed[((n + 1) // 2) * _WIDTH:]


def merge_rows(a: HostSeriesRow, b: HostSeriesRow) -> HostSeriesRow:
    """Two adjacent rows as one (see the module docstring for how each figure combines)."""
    dt = a.dt_s + b.dt_s
    n = a.served + b.served
    return HostSeriesRow(
        t_s=a.t_s, dt_s=dt, up=b.up,
        utilisation=(a.utilisation * a.dt_s + b.utilisation * b.dt_s) / dt if dt else 0.0,
        queue=(a.queue * a.dt_s + b.queue * b.dt_s) / dt if dt else 0.0,
        in_flight=(a.in_flight * a.dt_s + b.in_flight * b.dt_s) / dt if dt else 0.0,
        served=n, rejected=a.rejected + b.rejected, refused=a.refused + b.refused, reset=a.reset + b.reset,
        handler_errors=a.handler_errors + b.handler_errors,
        p50_s=(a.p50_s * a.served + b.p50_s * b.served) / n if n else 0.0,
        p99_s=max(a.p99_s, b.p99_s), crashes=a.crashes + b.crashes,
    )


def _area(tw, now: float) -> float:
    """The integral of a ``TimeWeighted`` from its start to ``now``."""
    return tw._area + tw.value * (now - tw._since)


class _HostTrack:
    """The running totals of one host at the last sample, and its rows so far (packed)."""

    __slots__ = ("node", "_packed", "last", "max_rows")

    def __init__(self, node: "Node", now: float, max_rows: int) -> None:
        self.node = node
        self._packed = array("d")  # the rows, _WIDTH doubles each: no boxed numbers, no object per row
        self.max_rows = max_rows
        self.last = self._totals(now)

    @property
    def rows(self) -> list[HostSeriesRow]:
        return list(HostSeries(self._packed))

    def _totals(self, now: float) -> tuple:
        n = self.node
        lines = n.waiting_lines()
        return (now, n.utilisation() * (now - n._busy._start), sum(_area(tw, now) for tw in lines),
                _area(n._in_system, now), n.served, n.rejected, n.refused, n.reset_count, n.handler_errors,
                n.crashes)

    def sample(self, now: float, t0: float) -> None:
        cur = self._totals(now)
        last, self.last = self.last, cur
        dt = cur[0] - last[0]
        if dt <= 0:
            return
        self.node.residence._drain()  # the sketch counts what the histogram drains
        sketch = self.node._second_latency
        row = HostSeriesRow(
            t_s=round(last[0] - t0, 9), dt_s=round(dt, 9), up=self.node.up,
            utilisation=_clean((cur[1] - last[1]) / dt), queue=_clean((cur[2] - last[2]) / dt),
            in_flight=_clean((cur[3] - last[3]) / dt),
            served=cur[4] - last[4], rejected=cur[5] - last[5], refused=cur[6] - last[6], reset=cur[7] - last[7],
            handler_errors=cur[8] - last[8], p50_s=sketch.percentile(50), p99_s=sketch.percentile(99),
            crashes=cur[9] - last[9],
        )
        sketch.clear()
        self._packed.extend(astuple(row))
        if len(self._packed) > self.max_rows * _WIDTH:  # flat memory: halve the resolution
            _halve(self._packed)


def _clean(x: float) -> float:
    return x if isfinite(x) and x > 1e-12 else 0.0


class SeriesSampler:
    """Samples every host once per ``interval_s`` of simulated time (a scheduler callback).

    The sampler re-arms itself only while the scheduler has other work pending,
    so an open-ended run with nothing scheduled does not spin virtual time
    forward; ``finish`` closes the last (possibly longer or partial) interval.
    """

    def __init__(self, sched: "Scheduler", nodes: list["Node"], t0: float, *, interval_s: float = 1.0,
                 max_rows: int = 3600) -> None:
        self.sched = sched
        self.t0 = t0
        self.interval_s = interval_s
        self.tracks = {n.name: _HostTrack(n, t0, max_rows) for n in nodes}
        self._k = 0
        self._timer = None
        for n in nodes:
            n.residence._drain()
            n._second_latency.clear()
        self._arm()

    def _arm(self) -> None:
        self._k += 1
        # a negative place in the firing order: the sample at t comes before anything else at t,
        # so a crash scheduled at t = 5 s shows in the second that starts at 5 s
        self._timer = self.sched.call_at_seq(self.t0 + self._k * self.interval_s, -self._k, self._tick)

    def _tick(self, _=None) -> None:
        self.sched.fired -= 1  # bookkeeping, not a simulated event
        now = self.sched.now
        for track in self.tracks.values():
            track.sample(now, self.t0)
        if self.sched.next_time() < float("inf"):
            self._arm()
        else:
            self._timer = None

    def stop(self) -> None:
        """Sample no more (the run ended, or was cancelled)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def finish(self, now: float) -> dict[str, HostSeries]:
        """Stop sampling, close the open interval, and hand over the rows by host, still packed
        (once: the sampler keeps none of them)."""
        self.stop()
        out = {}
        for name, track in self.tracks.items():
            track.sample(now, self.t0)
            out[name] = HostSeries(track._packed)  # handed over as it is: no row objects made
            track._packed = array("d")
        return out


def rows_at(rows: list[HostSeriesRow], t_s: float) -> HostSeriesRow | None:
    """The row covering time ``t_s`` (seconds since the run started), if any."""
    for row in rows:
        if row.t_s <= t_s < row.t_s + row.dt_s:
            return row
    return None

