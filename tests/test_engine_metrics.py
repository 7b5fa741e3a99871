"""The measurements are right: percentiles within HDR precision, true time averages, Little's law.

``LatencyHistogram`` keeps three significant figures (a value is known to
about 0.1%, or to the microsecond below 2 ms); here it is checked against the
exact percentiles of the same samples. A host's ``mean_in_system`` is a time
average; over a run that starts and ends empty it must equal, to rounding,
the total time requests spent inside divided by the run's length - Little's
law, L = lambda W, with no statistics in between.
"""
from __future__ import annotations

import functools
import math
import random
import statistics
from collections import Counter

import pytest

from playground import Exponential, LatencyHistogram, LogNormal, Node, OpenLoop, Response, Sim, TimeWeighted


def exact_percentile(ordered: list[float], q: float) -> float:
    """Nearest rank, the definition HDR histograms use."""
    rank = max(1, int(q / 100 * len(ordered) + 0.5))
    return ordered[rank - 1]


@pytest.mark.parametrize("dist", [Exponential(0.004), LogNormal(0.020, 1.5)], ids=repr)
def test_percentiles_match_the_exact_ones_within_hdr_precision(dist):
    rng = random.Random(5)
    samples = [dist.sample(rng) for _ in range(20_000)]
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    ordered = sorted(samples)
    for q in (1, 10, 50, 90, 99, 99.9, 99.99):
        exact = exact_percentile(ordered, q)
        # HDR answers with the top of the bucket the exact value falls in: never below,
        # above by at most one bucket width (1/1024 of the value, or 1 us) plus rounding to the us
        assert exact - 0.5e-6 <= h.percentile(q) <= exact * (1 + 1 / 1024) + 1.5e-6, q
    assert h.count == len(samples)
    assert h.mean_s == pytest.approx(statistics.fmean(samples), rel=1e-12)  # the mean is exact
    assert h.max_s == max(samples)


def test_a_summary_reads_the_same_figures_and_merging_adds_counts():
    a, b = LatencyHistogram(), LatencyHistogram()
    for ms in range(1, 101):
        a.record(ms / 1000)
        b.record(ms / 1000 + 1.0)
    s = a.summary()
    assert (s.count, s.p50_s, s.p99_s, s.max_s) == (100, 0.050015, 0.099007, 0.1)
    a.merge(b)
    assert a.count == 200 and a.max_s == 1.1
    assert a.percentile(50) == pytest.approx(0.1, rel=1e-3)
    assert a.percentile(75) == pytest.approx(1.050, rel=1e-3)
    assert LatencyHistogram().summary().p99_s == 0.0  # empty: zeros, not an error


def test_a_histogram_with_many_live_buckets_turns_dense_and_reads_exactly_what_hdr_reads():
    """Past ``DENSE_AT`` live buckets the counts move to a fixed array: the figures stay HdrHistogram's."""
    from hdrh.histogram import HdrHistogram

    rng = random.Random(11)
    samples = [rng.lognormvariate(-5.5, 1.2) for _ in range(60_000)]  # thousands of distinct buckets
    h, ref = LatencyHistogram(), HdrHistogram(1, 3_600_000_000, 3)
    small = LatencyHistogram()
    for s in samples:
        h.record(s)
        ref.record_value(max(1, int(s * 1e6 + 0.5)))
    for s in samples[:500]:
        small.record(s)
    small.percentile(50)
    assert h._dense is not None and small._dense is None  # the long one went dense, the short one did not
    for q in (0, 1, 50, 90, 99, 99.9, 100):
        assert h.percentile(q) == ref.get_value_at_percentile(q) / 1e6, q
    merged, other = LatencyHistogram(), LatencyHistogram()  # merging either way round counts the same
    merged.merge(small)
    merged.merge(h)
    other.merge(h)
    other.merge(small)
    assert merged.summary() == other.summary() and merged.count == len(samples) + 500


def _edge_latencies() -> list[float]:
    """Values at and beside every place the index can change: each microsecond rounding edge
    (k - 0.5 us) near each power of two, sub-bucket edges, the clamps at 0 and at an hour."""
    values = [0.0, 1e-9, 4.99e-7, 5e-7, 1e-6, 1.5e-6, 3599.9999995, 3600.0, 3600.0000005, 3999.0, 4000.0,
              4294.0, 5000.0, 7200.0, 1e6, 1e7]
    for k in range(44):
        for us in (2**k - 1, 2**k, 2**k + 1, 3 * 2**k, 2**k + 2 ** max(k - 11, 0)):
            edge = (us - 0.5) / 1e6
            values += [math.nextafter(edge, 0.0), edge, math.nextafter(edge, 1.0), us / 1e6]
    return [v for v in values if v >= 0.0]


@pytest.mark.parametrize("figures", [2, 3])
def test_each_latency_lands_in_the_bucket_hdr_histogram_gives_it(figures):
    """The batch path (``_drain``) and the one-value path (``index``) give every value HdrHistogram's counts
    index for ``int(seconds * 1e6 + 0.5)`` clamped to [1 us, an hour]: at every rounding and
    bucket edge, and for a wide random spread."""
    from hdrh.histogram import HdrHistogram

    rng = random.Random(figures)
    values = _edge_latencies() + [rng.lognormvariate(-6, 3) for _ in range(20_000)]
    ref = HdrHistogram(1, 3_600_000_000, figures)
    expected = [ref.get_counts_array_index(min(max(int(v * 1e6 + 0.5), 1), 3_600_000_000)) for v in values]
    h = LatencyHistogram(figures)
    assert [h.index(v) for v in values] == expected  # the one-value path
    for v in values:
        h.record(v)
    h._drain()  # the batch path
    got = h._counts if h._dense is None else {i: c for i, c in enumerate(h._dense) if c}
    assert dict(got) == dict(Counter(expected))
    assert h.count == len(values) and h.max_s == max(values)


def test_values_outside_the_range_are_clamped_not_lost():
    h = LatencyHistogram()
    h.record(0.0)
    h.record(7200.0)  # two hours: beyond the histogram's one hour
    assert h.count == 2
    assert h.percentile(0) == 1e-6
    assert h.percentile(100) == pytest.approx(3600.0, rel=1e-3)


def test_a_time_weighted_mean_weights_each_value_by_how_long_it_held():
    queue = TimeWeighted(now=0.0)
    queue.set(4, now=1.0)  # 0 for 1 s
    queue.set(1, now=2.0)  # 4 for 1 s
    assert queue.mean(now=4.0) == pytest.approx((0 * 1 + 4 * 1 + 1 * 2) / 4)
    assert queue.peak == 4
    queue.restart(now=4.0)
    assert queue.mean(now=6.0) == 1.0 and queue.peak == 1


class Server(Node):
    """c workers in front of one FIFO queue; exponential service: an M/M/c queue."""

    kind = "server"

    async def handle(self, request):
        await self.sleep(self.rng.expovariate(150.0))
        return Response(200)


@functools.cache
def mmc_report(duration_s: float = 30.0):
    sim = Sim(seed=11, default_latency_s=0.0)
    sim.add(Server("server", concurrency=8, queue_limit=None))
    sim.load(OpenLoop("server", rate=1000, timeout_s=5.0))
    return sim.run(duration_s=duration_s)


def test_littles_law_holds_exactly_on_a_run_that_starts_and_ends_empty():
    report = mmc_report()
    server = report.components["server"]
    assert server.in_flight == 0 and server.served == report.sent  # everyone got in and out
    total_time_inside = server.served * server.residence.mean_s
    assert server.mean_in_system == pytest.approx(total_time_inside / report.simulated_s, rel=1e-9)


def test_littles_law_with_the_offered_rate_and_the_queueing_theory_behind_it():
    report = mmc_report()
    server = report.components["server"]
    arrival_rate = report.sent / report.duration_s
    assert server.mean_in_system == pytest.approx(arrival_rate * server.residence.mean_s, rel=0.01)
    # and the numbers are the M/M/8 ones (Erlang C): W = 9.33 ms at 1000/s, 150/s per server
    a, c = 1000 / 150, 8
    top = a**c / math.factorial(c) / (1 - a / c)
    wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top) / (c * 150 - 1000)
    assert server.residence.mean_s == pytest.approx(wait + 1 / 150, rel=0.05)
    assert server.utilisation == pytest.approx(1000 / 1200, rel=0.03)
    assert report.latency.mean_s == pytest.approx(server.residence.mean_s, rel=1e-9)  # zero-latency links


def test_a_long_runs_load_series_stays_bounded_and_keeps_every_answer():
    from playground._metrics import ClientMetrics

    m = ClientMetrics("users", 0.0, max_rows=8)
    for second in range(1000):  # a quiet second every ten: the series is sparse
        if second % 10 == 9:
            continue
        for k in range(3):
            m.record_ok(second + 0.1 * k, 0.010 if second != 500 else 0.500)
        m.record_error(second + 0.5, "timeout")
        assert len(m._series) <= 8 + 1
    rows = m.series()
    assert sum(r.ok for r in rows) == 900 * 3 and sum(r.errors for r in rows) == 900
    assert all(a.t_s + a.dt_s <= b.t_s for a, b in zip(rows, rows[1:]))  # in order, no overlap
    assert any(r.dt_s > 1 for r in rows) and rows[-1].dt_s == 1.0  # old rows merged, the newest are seconds
    assert max(r.p99_s for r in rows) > 0.4  # a merged p99 keeps the bad second
