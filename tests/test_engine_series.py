"""Every host keeps a per-second series: a crash, a saturation and a recovery show when they happened."""
from __future__ import annotations

import json

from playground import Exponential, HostSeriesRow, LatencySketch, OpenLoop, Sim
from playground._series import SeriesSampler, merge_rows, rows_at
from components import AppServer


def crashed_app(seed: int = 1) -> Sim:
    sim = Sim(seed=seed)
    sim.add(AppServer("app", cores=2, cpu_s=Exponential(0.008)))
    sim.load(OpenLoop("app", rate=200))
    sim.at(5, sim.crash, "app", 3)  # down from 5 s to 8 s
    return sim


def test_a_crash_shows_in_the_seconds_it_lasted():
    report = crashed_app().run(duration_s=10)
    rows = report.host_series["app"]
    assert [r.t_s for r in rows[:10]] == [float(t) for t in range(10)]
    assert all(r.dt_s == 1.0 for r in rows[:10])
    assert [r.up for r in rows[:10]] == [True] * 5 + [False] * 3 + [True] * 2
    assert rows[5].crashes == 1 and rows[5].reset > 0  # what it held when it crashed
    assert all(r.served == 0 and r.refused > 0 for r in rows[5:7])
    assert rows_at(rows, 6.5) == rows[6]


def test_the_series_adds_up_to_the_totals():
    report = crashed_app().run(duration_s=10)
    stats, rows = report.components["app"], report.host_series["app"]
    assert sum(r.served for r in rows) == stats.served
    assert sum(r.refused for r in rows) == stats.refused
    assert sum(r.reset for r in rows) == stats.reset
    span = sum(r.dt_s for r in rows)
    assert abs(sum(r.utilisation * r.dt_s for r in rows) / span - stats.utilisation) < 1e-9
    busy = [r for r in rows if r.up and r.served and r.dt_s == 1.0]  # not the short drain at the end
    assert all(0.5 < r.utilisation <= 1.0 + 1e-9 for r in busy)  # 200/s x 8 ms on 2 cores: 80%
    assert all(0 < r.p50_s <= r.p99_s < 1.0 for r in busy)


def test_a_saturated_host_shows_its_queue_and_latency_growing():
    sim = Sim(seed=2)
    sim.add(AppServer("app", cores=1, cpu_s=0.01, queue_limit=None, workers=1000))
    sim.load(OpenLoop("app", rate=150))  # 150/s into 100/s of capacity
    rows = sim.run(duration_s=6).host_series["app"]
    assert rows[1].queue < rows[3].queue < rows[5].queue
    assert rows[1].p99_s < rows[5].p99_s
    assert rows[5].utilisation > 0.99


def test_the_series_is_in_the_json_and_identical_between_runs():
    a, b = crashed_app().run(duration_s=4), crashed_app().run(duration_s=4)
    assert a.to_json() == b.to_json()
    saved = json.loads(a.to_json())["host_series"]["app"]
    assert saved[0]["t_s"] == 0.0 and saved[0]["served"] > 0 and "p99_s" in saved[0]


def test_the_sketch_is_small_and_about_six_percent_precise():
    sketch = LatencySketch()
    for i in range(1, 1001):
        sketch.record(i / 1000)  # 1 ms .. 1 s, uniform
    assert len(sketch.counts) == 264
    assert abs(sketch.percentile(50) - 0.5) / 0.5 < 0.07
    assert abs(sketch.percentile(99) - 0.99) / 0.99 < 0.07
    sketch.clear()
    assert sketch.percentile(99) == 0.0
    sketch.record(0.0)
    sketch.record(1e9)  # out of range values land in the end buckets
    assert sketch.count == 2


def test_a_long_run_keeps_a_bounded_number_of_rows():
    sim = Sim(seed=3)
    sim.add(AppServer("app", cores=1, cpu_s=0.001))
    sim.load(OpenLoop("app", rate=5))
    sim.run(duration_s=1)  # attach the hosts
    sampler = SeriesSampler(sim.sched, [sim["app"]], sim.sched.now, max_rows=8)
    track = sampler.tracks["app"]
    for k in range(1, 40):
        track.sample(sim.sched.now + k, sim.sched.now)
    assert len(track.rows) <= 8
    assert abs(sum(r.dt_s for r in track.rows) - 39) < 1e-9


def test_merging_two_rows_weights_averages_by_time_and_keeps_the_worse_p99():
    a = HostSeriesRow(0.0, 1.0, True, 0.2, 1.0, 2.0, 10, 1, 0, 0, 0, 0.01, 0.05)
    b = HostSeriesRow(1.0, 1.0, False, 0.6, 3.0, 4.0, 30, 0, 2, 0, 0, 0.03, 0.02, crashes=1)
    m = merge_rows(a, b)
    assert (m.t_s, m.dt_s, m.up, m.served, m.errors, m.crashes) == (0.0, 2.0, False, 40, 3, 1)
    assert abs(m.utilisation - 0.4) < 1e-12 and abs(m.p50_s - 0.025) < 1e-12 and m.p99_s == 0.05


def test_packed_rows_read_back_with_their_types():
    sim = Sim(seed=3)
    sim.add(AppServer("app", cores=1, cpu_s=0.001))
    sim.load(OpenLoop("app", rate=50))
    rows = sim.run(duration_s=3).host_series["app"]
    assert [type(v) for v in (rows[0].up, rows[0].served, rows[0].crashes, rows[0].utilisation)] == [bool, int, int, float]
    assert sum(r.served for r in rows) == sim["app"].served


def test_a_reports_host_series_reads_as_a_list_and_stays_packed():
    import pickle

    import pytest

    from playground import HostSeries

    rows = crashed_app().run(duration_s=6).host_series["app"]
    plain = list(rows)
    assert isinstance(rows, HostSeries) and len(rows) == len(plain) >= 6
    assert rows[-1] == plain[-1] and rows[1:4] == plain[1:4] and rows == plain
    assert len(rows._packed) == 14 * len(plain)  # 14 doubles a row, no row objects kept
    assert pickle.loads(pickle.dumps(rows)) == rows
    with pytest.raises(IndexError, match="out of range"):
        rows[len(plain)]


def test_halving_in_place_gives_the_pairwise_merges():
    from array import array
    from dataclasses import astuple

    from playground._series import HostSeries, _halve

    rows = [HostSeriesRow(float(k), 1.0, k % 3 != 0, 0.1 * k, float(k), 2.0, 10 * k, k % 2, 0, 1, 0, 0.001 * k,
                          0.01 * (7 - k), crashes=k % 2) for k in range(7)]
    for n in (6, 7):
        packed = array("d", [v for r in rows[:n] for v in astuple(r)])
        _halve(packed)
        expected = [merge_rows(rows[i], rows[i + 1]) for i in range(0, n - 1, 2)] + rows[n - 1:] * (n % 2)
        assert HostSeries(packed) == expected


def test_a_host_that_answers_at_once_shows_zero_in_its_series_not_a_quarter_second():
    # frexp(0.0) is (0.0, 0): counted as it came, zero landed in the bucket of 0.27 s
    sketch = LatencySketch()
    sketch.record(0.0)
    sketch.record_many([0.0, 0.0])
    assert sketch.count == 3 and sketch.percentile(50) < 1e-5
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=1, cpu_s=0.0))
    sim.load(OpenLoop("app", rate=50))
    rows = sim.run(duration_s=3).host_series["app"]
    assert sum(r.served for r in rows) > 100
    assert all(r.p99_s < 1e-5 for r in rows if r.served)


def test_the_sketch_gets_every_value_the_residence_histogram_drains_and_only_those():
    sim = Sim(seed=2)
    sim.add(AppServer("app", cores=2, cpu_s=Exponential(0.004)))
    sim.load(OpenLoop("app", rate=400))  # over a thousand answers a second in some seconds: full batches drain mid-second
    report = sim.run(duration_s=4)
    rows, stats = report.host_series["app"], report.components["app"]
    assert sum(r.served for r in rows) == stats.served
    for r in rows:
        if r.served:
            assert 0.0 < r.p50_s <= r.p99_s < 0.1


def test_the_sketch_bucket_found_by_bisection_is_the_frexp_formula():
    """``record_many`` bisects bucket floors; the bucket is by definition ``frexp``'s octave and
    sixteenth, clamped: the two agree on every floor, the float just below it, and random values."""
    import math
    import random

    from playground._series import _FLOORS, _MIN_EXP, _PER_OCTAVE, _SIZE

    def by_frexp(v: float) -> int:
        m, e = math.frexp(v)
        i = (e - _MIN_EXP) * _PER_OCTAVE + int(m * 2 * _PER_OCTAVE) - _PER_OCTAVE
        return 0 if i < 0 or not m else min(i, _SIZE - 1)

    rng = random.Random(7)
    values = [0.0, 5e-324, 1e-300, 1e-7, 1e-6, 0.5, 1.0, 4095.0, 4096.0, 1e9]
    values += _FLOORS + [math.nextafter(f, 0.0) for f in _FLOORS]
    values += [rng.lognormvariate(math.log(0.005), 2.0) for _ in range(20_000)]
    sketch = LatencySketch()
    sketch.record_many(values)
    expected = [0] * _SIZE
    for v in values:
        expected[by_frexp(v)] += 1
    assert sketch.counts == expected and sketch.count == len(values)
    sketch.clear()
    sketch.record(math.inf)  # which frexp's int() would not take: past the last floor
    assert sketch.counts[-1] == 1
