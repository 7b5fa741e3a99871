"""Measurements that stay flat in memory however long a run is.

Latencies go into HDR histograms (the ``hdrhistogram`` package: fixed memory,
about 0.1% value precision at three significant figures), never into a list of
samples. Counters are plain integers. Quantities that change over time (queue
length, busy cores) are integrated over virtual time, so their mean is a true
time average. A per-second series keeps one small record per second, up to
``SERIES_MAX_ROWS``; past that, old rows merge in pairs (as a host's series does).
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from itertools import accumulate, compress
from operator import itemgetter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

__all__ = ["LatencyHistogram", "LatencySummary", "TimeWeighted", "ClientMetrics", "ClientStats", "SeriesRow"]

_US = 1_000_000
_HIGHEST_US = 3_600 * _US  # one hour
SERIES_MAX_ROWS = 3_600  # a load's series rows before old ones merge in pairs (an hour of seconds)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    mean_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    p999_s: float
    max_s: float


class LatencyHistogram:
    """Latencies in seconds, counted in the buckets of an HDR histogram of microseconds.

        >>> h = LatencyHistogram(); h.record(0.010); h.percentile(50)  # the top of 0.010's bucket
        0.010007

    The buckets are those of the ``hdrhistogram`` package (1 us to an hour,
    about 0.1% value precision at three significant figures) and every figure
    read is exactly what ``HdrHistogram`` gives for the same values; the
    package lends its bucket arithmetic (one instance per precision, shared)
    but not its storage.

    Recording is the hot path (several per simulated request), so ``record``
    only appends to a short buffer; every ``BATCH`` values the buffer is
    turned into bucket indices a whole list at a time and counted into a
    sparse ``Counter`` (a few hundred live buckets, not the 23,552 slots of
    a dense array). A long run with a wide spread of latencies fills
    thousands of buckets, and a ``Counter`` entry costs ~110 bytes against a
    dense slot's 8; past ``DENSE_AT`` live buckets the counts move into a
    dense ``array`` (184 KiB at three figures), which then never grows.
    Memory is fixed: the buffer is bounded, the counts are bounded by the
    bucket count, and by the dense array's size.
    """

    __slots__ = ("_geo", "_mask", "_bits", "_half_bits", "_buf", "_counts", "_dense", "_n", "_sum", "_max", "tap")

    BATCH = 1024  # values buffered before they are counted
    DENSE_AT = 1_700  # live buckets from which a dense array is smaller than the Counter

    def __init__(self, significant_figures: int = 3) -> None:
        geo = _GEOMETRY.get(significant_figures)
        if geo is None:
            geo = _GEOMETRY[significant_figures] = HdrHistogram(1, _HIGHEST_US, significant_figures)
        self._geo = geo
        self._mask = geo.sub_bucket_count - 1
        self._bits = self._mask.bit_length()
        self._half_bits = self._bits - 1
        self._buf: list[float] = []
        self._counts: Counter[int] = Counter()  # HDR counts index -> count, while sparse
        self._dense: array | None = None  # the counts by index, once there are many live buckets
        self._n = 0  # values counted (the buffer not included)
        self._sum = 0.0
        self._max = 0.0
        # something else that counts the same values (a host's per-second ``LatencySketch``): it
        # is handed each batch as it drains (``tap.record_many``), so a value is recorded once
        self.tap = None

    def record(self, seconds: float) -> None:
        buf = self._buf
        buf.append(seconds)
        if len(buf) >= 1024:  # BATCH, written out
            self._drain()

    def _drain(self) -> None:
        """Count the buffered values: the HDR index of each, computed a whole list at a time."""
        buf = self._buf
        if not buf:
            return
        self._buf = []
        if self.tap is not None:
            self.tap.record_many(buf)
        # us = int(seconds * 1e6 + 0.5), clamped to [1, an hour]; then the HDR counts index.
        # Comprehensions, not chains of ``map`` over bound methods such as ``float.__mul__``:
        # those cost 680 ns a value against 430 (1,024 exponential latencies; the
        # 2-core AMD EPYC development machine, Python 3.11.7). ``us`` rises with ``seconds``,
        # so the batch's extremes say whether any value needs the clamp; the usual batch
        # needs none and is indexed in one pass.
        mask, bits, half_bits = self._mask, self._bits, self._half_bits
        top = max(buf)
        if int(min(buf) * 1e6 + 0.5) < 1 or int(top * 1e6 + 0.5) > _HIGHEST_US:
            us = [int(seconds * 1e6 + 0.5) for seconds in buf]
            us = [1 if u < 1 else _HIGHEST_US if u > _HIGHEST_US else u for u in us]
            indices = [((b := (u | mask).bit_length() - bits) << half_bits) + (u >> b) for u in us]
        else:
            indices = [((b := ((u := int(seconds * 1e6 + 0.5)) | mask).bit_length() - bits) << half_bits) + (u >> b)
                       for seconds in buf]
        if self._dense is None:
            self._counts.update(indices)
            if len(self._counts) > self.DENSE_AT:
                self._densify()
        else:
            self._add_dense(Counter(indices))
        self._n += len(buf)
        self._sum = sum(buf, self._sum)  # in order, as one addition per value would give
        if top > self._max:
            self._max = top

    def _densify(self) -> None:
        self._dense = array("q", bytes(8 * self._geo.counts_len))
        self._add_dense(self._counts)
        self._counts = Counter()

    def _add_dense(self, counts) -> None:
        dense = self._dense
        for i, c in counts.items():
            dense[i] += c

    def _add(self, counts) -> None:
        """Count ``counts`` (index -> count) into whichever form the counts are in."""
        if self._dense is None:
            self._counts.update(counts)
            if len(self._counts) > self.DENSE_AT:
                self._densify()
        else:
            self._add_dense(counts)

    def _live(self) -> list[tuple[int, int]]:
        """The buckets with a count, in index (that is, value) order, with their counts."""
        if self._dense is None:
            counts = self._counts
            return [(i, counts[i]) for i in sorted(counts)]
        dense = self._dense
        return list(compress(enumerate(dense), dense))  # 23,552 slots: walked in C, not in bytecode

    def _items(self):
        return self._counts.items() if self._dense is None else self._live()

    @property
    def count(self) -> int:
        return self._n + len(self._buf)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile in seconds (``q`` in 0..100); 0.0 when empty."""
        if not self.count:
            return 0.0
        return self.percentiles((q,))[0]

    def percentiles(self, qs) -> list[float]:
        """Several percentiles in one pass over the live buckets, each exactly
        ``HdrHistogram.get_value_at_percentile`` of the same values."""
        self._drain()
        total = self._n
        if not total:
            return [0.0 for _ in qs]
        live = self._live()
        cumulative = list(accumulate(map(itemgetter(1), live)))
        geo = self._geo
        out = []
        for q in qs:
            target = max(int(min(q, 100.0) * total / 100 + 0.5), 1)
            k = bisect_left(cumulative, target)  # the first bucket where the running count reaches it
            value = 0
            if k < len(live):
                v = geo.get_value_from_index(live[k][0])
                value = geo.get_highest_equivalent_value(v) if q else geo.get_lowest_equivalent_value(v)
            out.append(value / _US)
        return out

    @property
    def mean_s(self) -> float:
        n = self.count
        if not n:
            return 0.0
        self._drain()
        return self._sum / n

    @property
    def max_s(self) -> float:
        self._drain()
        return self._max

    def index(self, seconds: float) -> int:
        """The slot ``seconds`` falls in (what ``record`` counts); for sparse per-second counts."""
        us = min(max(int(seconds * _US + 0.5), 1), _HIGHEST_US)
        bucket = (us | self._mask).bit_length() - self._bits
        return (bucket << self._half_bits) + (us >> bucket)

    def add_counts(self, counts: dict[int, int], sum_s: float, max_s: float) -> None:
        """Add values already counted by slot (``index``): as if each had been recorded."""
        n = sum(counts.values())
        if n:
            self._drain()
            self._add(counts)
            self._n += n
            self._sum += sum_s
            self._max = max(self._max, max_s)

    def merge(self, other: "LatencyHistogram") -> None:
        if other._geo is not self._geo:
            raise ValueError("can only merge histograms of the same precision")
        self._drain()
        other._drain()
        self._add(dict(other._items()))
        self._n += other._n
        self._sum += other._sum
        self._max = max(self._max, other._max)

    def summary(self) -> LatencySummary:
        p50, p90, p99, p999 = self.percentiles((50, 90, 99, 99.9))
        return LatencySummary(self.count, self.mean_s, p50, p90, p99, p999, self._max)


_GEOMETRY: dict[int, HdrHistogram] = {}  # one per precision: only its bucket arithmetic is used


class TimeWeighted:
    """The time average of a quantity that jumps (queue length, busy workers)."""

    __slots__ = ("value", "_area", "_since", "_start", "peak")

    def __init__(self, now: float = 0.0, value: float = 0.0) -> None:
        self.value = value
        self._area = 0.0
        self._since = now
        self._start = now
        self.peak = value

    def set(self, value: float, now: float) -> None:
        self._area += self.value * (now - self._since)
        self._since = now
        self.value = value
        if value > self.peak:
            self.peak = value

    def add(self, delta: float, now: float) -> None:
        value = self.value  # ``set(value + delta, now)`` written out: it runs several times a request
        self._area += value * (now - self._since)
        self._since = now
        value += delta
        self.value = value
        if value > self.peak:
            self.peak = value

    def integral(self, now: float) -> float:
        """The area under the curve since the start (value x seconds): busy-core-seconds, server-seconds."""
        return self._area + self.value * (now - self._since)

    def mean(self, now: float) -> float:
        span = now - self._start
        if span <= 0:
            return self.value
        return (self._area + self.value * (now - self._since)) / span

    def restart(self, now: float) -> None:
        """Forget the history (a new measurement window), keep the current value."""
        self._area = 0.0
        self._since = now
        self._start = now
        self.peak = self.value


@dataclass(frozen=True)
class SeriesRow:
    """One interval of a run (normally a second; longer once a long run's rows merge), as the client saw it."""

    t_s: float
    ok: int
    errors: int
    p50_s: float
    p99_s: float
    mean_s: float = 0.0
    dt_s: float = 1.0


class _Bucket:
    """One interval's counts. Its histogram is summarised and dropped when the
    interval closes, so a long run keeps a few numbers per second, not a histogram."""

    __slots__ = ("ok", "errors", "hist", "p50_s", "p99_s", "mean_s", "span")

    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0
        self.hist: LatencyHistogram | None = LatencyHistogram(2)
        self.p50_s = self.p99_s = self.mean_s = 0.0
        self.span = 1  # intervals covered: more once merged with later ones

    def record(self, latency_s: float) -> None:
        self.ok += 1
        if self.hist is not None:
            self.hist.record(latency_s)

    def close(self) -> None:
        h = self.hist
        if h is not None:
            (self.p50_s, self.p99_s), self.mean_s = h.percentiles((50, 99)), h.mean_s
            self.hist = None

    def row(self, t_s: float, interval_s: float = 1.0) -> SeriesRow:
        h = self.hist
        dt = self.span * interval_s
        if h is None:
            return SeriesRow(t_s, self.ok, self.errors, self.p50_s, self.p99_s, self.mean_s, dt)
        p50, p99 = h.percentiles((50, 99))
        return SeriesRow(t_s, self.ok, self.errors, p50, p99, h.mean_s, dt)

    def merged(self, later: "_Bucket", gap: int) -> "_Bucket":
        """This closed interval and a ``later`` one ``gap`` intervals on, as one: counts add, p50 and
        the mean weight by answers, p99 keeps the larger (a merged p99 never hides a bad second)."""
        m = _Bucket.__new__(_Bucket)
        n = self.ok + later.ok
        m.ok, m.errors, m.hist = n, self.errors + later.errors, None
        m.p50_s = (self.p50_s * self.ok + later.p50_s * later.ok) / n if n else 0.0
        m.p99_s = max(self.p99_s, later.p99_s)
        m.mean_s = (self.mean_s * self.ok + later.mean_s * later.ok) / n if n else 0.0
        m.span = gap + later.span
        return m


@dataclass(frozen=True)
class ClientStats:
    """What one load stream saw: every request it issued is in exactly one of
    ``ok``, ``errors`` (by kind) or ``in_flight``."""

    name: str
    sent: int
    ok: int
    errors: dict[str, int]
    in_flight: int
    retries: int
    duration_s: float
    latency: LatencySummary
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        done = self.ok + self.failed
        return self.failed / done if done else 0.0


class _Window:
    """What the requests that *arrived* in one interval did (for a warm-up chosen after the run)."""

    __slots__ = ("sent", "ok", "retries", "errors", "statuses", "counts", "sum_s", "max_s")

    def __init__(self) -> None:
        self.sent = self.ok = self.retries = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.counts: dict[int, int] = {}  # latency histogram slot -> count: sparse, a few hundred at most
        self.sum_s = 0.0
        self.max_s = 0.0


class ClientMetrics:
    """Counters, a latency histogram and a per-second series for one load stream.

    The measurement window: requests that arrive before ``measure_from`` (a
    warm-up) are left out of the counters and the histogram; they still show
    in the per-second ``series``. A request belongs to the window it arrived
    in, so ``sent == ok + errors + in_flight`` holds for the window too. With
    ``windows``, the same figures are also kept per arrival interval, so that
    the warm-up can be chosen after the run (``stats(since_s=...)``).
    """

    def __init__(self, name: str, start: float, interval_s: float = 1.0, *, measure_from: float | None = None,
                 windows: bool = False, max_rows: int = SERIES_MAX_ROWS) -> None:
        self.name = name
        self.start = start
        self.interval_s = interval_s
        self.max_rows = max(max_rows, 4)
        self.measure_from = start if measure_from is None else measure_from
        self.windows: dict[int, _Window] | None = {} if windows else None
        self.sent = 0
        self.ok = 0
        self.retries = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.latency = LatencyHistogram()
        self._series: dict[int, _Bucket] = {}
        self._current = -1  # index of the open interval; earlier ones are closed

    @property
    def in_flight(self) -> int:
        return self.sent - self.ok - sum(self.errors.values())

    def _bucket(self, now: float) -> _Bucket:
        i = int((now - self.start) / self.interval_s)
        b = self._series.get(i)
        if b is None:
            b = self._series[i] = _Bucket()
            if i > self._current:  # time only moves forward: the previous interval is complete
                old = self._series.get(self._current)
                if old is not None:
                    old.close()
                self._current = i
                if len(self._series) > self.max_rows:
                    self._merge_old()
        return b

    def _merge_old(self) -> None:
        """Flat memory: merge the closed intervals in adjacent pairs, all but the newest closed one
        (a live dashboard reads it next) and the open one. Keys stay in time order (time only moves on)."""
        items = list(self._series.items())
        old, keep = items[:-2], items[-2:]
        merged = {i: a.merged(b, j - i) for (i, a), (j, b) in zip(old[0::2], old[1::2])}
        if len(old) % 2:
            merged[old[-1][0]] = old[-1][1]
        merged.update(keep)
        self._series = merged

    def _window(self, start: float) -> _Window:
        i = int((start - self.start) / self.interval_s)
        w = self.windows.get(i)
        if w is None:
            w = self.windows[i] = _Window()
        return w

    def record_sent(self, start: float) -> None:
        """A request arrived (was due) at ``start``."""
        if self.windows is not None:
            self._window(start).sent += 1
        if start >= self.measure_from:
            self.sent += 1

    def record_retry(self, start: float) -> None:
        if self.windows is not None:
            self._window(start).retries += 1
        if start >= self.measure_from:
            self.retries += 1

    def record_ok(self, now: float, latency_s: float, status: int = 200, *, start: float | None = None) -> None:
        """An answer at ``now`` to a request that arrived at ``start`` (default ``now - latency_s``)."""
        # ``self._bucket(now).record(latency_s)`` and ``self.latency.record(latency_s)``, written
        # out: this runs once a request
        bucket = self._series.get(int((now - self.start) / self.interval_s))
        if bucket is None:
            bucket = self._bucket(now)
        bucket.ok += 1
        hist = bucket.hist
        if hist is not None:
            buf = hist._buf
            buf.append(latency_s)
            if len(buf) >= 1024:
                hist._drain()
        if start is None:
            start = now - latency_s
        if self.windows is not None:
            w = self._window(start)
            w.ok += 1
            w.statuses[status] += 1
            i = self.latency.index(latency_s)
            w.counts[i] = w.counts.get(i, 0) + 1
            w.sum_s += latency_s
            if latency_s > w.max_s:
                w.max_s = latency_s
        if start < self.measure_from:
            return
        self.ok += 1
        self.statuses[status] += 1
        buf = self.latency._buf
        buf.append(latency_s)
        if len(buf) >= 1024:
            self.latency._drain()

    def record_error(self, now: float, kind: str, status: int | None = None, *, start: float | None = None) -> None:
        self._bucket(now).errors += 1
        if self.windows is not None and start is not None:
            w = self._window(start)
            w.errors[kind] += 1
            if status is not None:
                w.statuses[status] += 1
        if start is not None and start < self.measure_from:
            return
        self.errors[kind] += 1
        if status is not None:
            self.statuses[status] += 1

    def arrival_series(self) -> list[tuple[int, int, float]]:
        """Per arrival interval: (index, answered ok, sum of their latencies); needs ``windows``."""
        if self.windows is None:
            return []
        return [(i, w.ok, w.sum_s) for i, w in sorted(self.windows.items())]

    def window_stats(self, since_s: float, now: float, duration_s: float) -> tuple[ClientStats, LatencyHistogram]:
        """The figures of the requests that arrived ``since_s`` or more after the start (needs ``windows``)."""
        first = int(round(since_s / self.interval_s))
        sent = ok = retries = 0
        errors: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        hist = LatencyHistogram()
        for i, w in sorted(self.windows.items()):
            if i < first:
                continue
            sent += w.sent
            ok += w.ok
            retries += w.retries
            errors.update(w.errors)
            statuses.update(w.statuses)
            hist.add_counts(w.counts, w.sum_s, w.max_s)
        stats = ClientStats(name=self.name, sent=sent, ok=ok, errors=dict(sorted(errors.items())),
                            in_flight=sent - ok - sum(errors.values()), retries=retries, duration_s=duration_s,
                            latency=hist.summary(), statuses=dict(sorted(statuses.items())))
        return stats, hist

    def series(self) -> list[SeriesRow]:
        return [self._series[i].row(i * self.interval_s, self.interval_s) for i in sorted(self._series)]

    def stats(self, now: float, duration_s: float | None = None) -> ClientStats:
        """Figures at ``now``; ``duration_s`` (default: since the start) is what throughput divides by."""
        return ClientStats(
            name=self.name,
            sent=self.sent,
            ok=self.ok,
            errors=dict(sorted(self.errors.items())),
            in_flight=self.in_flight,
            retries=self.retries,
            duration_s=now - self.start if duration_s is None else duration_s,
            latency=self.latency.summary(),
            statuses=dict(sorted(self.statuses.items())),
        )
