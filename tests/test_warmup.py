"""Warm-up: a measurement window that leaves out the start, chosen by hand or by MSER-5."""
from __future__ import annotations

import pytest

from playground import ConfigError, OpenLoop, Sim
from playground._warmup import mser5

from sweep_builds import cold_cache_build, servers_build


def test_mser5_cuts_a_transient_and_keeps_a_stationary_series():
    flat = [10.0, 11.0, 9.0, 10.5, 9.5] * 8
    assert mser5(flat) == 0
    transient = [50.0, 40.0, 30.0, 20.0, 15.0, 12.0, 11.0, 10.0, 10.0, 10.0] + flat
    assert mser5(transient) == 10  # two batches of five
    assert mser5([100.0] * 5 + [1.0, 2.0] * 5) == 5
    assert mser5([1.0, 2.0, 3.0]) == 0  # fewer than two batches: nothing to compare


def test_a_given_warm_up_leaves_out_the_requests_that_arrive_in_it():
    full = servers_build(2, rate=100.0).run(20)
    sim = servers_build(2, rate=100.0)
    warm = sim.run(20, warmup_s=5)
    assert warm.warmup_s == 5 and warm.duration_s == 15
    assert warm.sent < full.sent and warm.sent == warm.ok + warm.failed + warm.in_flight
    assert 0.7 * full.sent * 0.75 < warm.sent < 1.3 * full.sent * 0.75
    assert warm.throughput_per_s == pytest.approx(warm.ok / 15)
    assert sum(r.ok for r in warm.series["openloop->lb"]) == full.ok  # the series still shows every second
    assert "warm-up 5 s left out" in warm.render()


def test_mser5_picks_a_warm_up_on_a_run_with_a_cold_cache():
    def run(seed, cache, warmup_s):
        sim = cold_cache_build(cache=cache, rate=100.0)
        sim.seed = seed
        return sim.run(40, warmup_s=warmup_s)

    cold = [run(seed, True, "auto") for seed in (1, 2, 3)]
    assert all(5 <= r.warmup_s <= 20 for r in cold), [r.warmup_s for r in cold]  # the cache fills first
    report = cold[0]
    assert report.warmup_rule == "MSER-5" and "chosen by MSER-5" in report.render()
    assert report.sent == report.ok + report.failed + report.in_flight
    assert report.latency.mean_s < run(1, True, 0.0).latency.mean_s  # the cold start no longer counts
    steady = [run(seed, False, "auto").warmup_s for seed in (1, 2, 3, 4)]
    assert steady.count(0.0) >= 2, steady  # no transient: mostly nothing to cut (MSER may chase noise)


def test_bad_warm_ups():
    sim = servers_build(2)
    with pytest.raises(ConfigError, match=r"^warmup_s must be 'auto' or a number of seconds >= 0, got -1$"):
        sim.run(10, warmup_s=-1)
    with pytest.raises(ConfigError, match=r"^warmup_s must be shorter than duration_s \(10\), got 10$"):
        sim.run(10, warmup_s=10)
    with pytest.raises(ConfigError, match=r"^warmup_s must be 'auto' or a number of seconds >= 0, got nan$"):
        sim.run(10, warmup_s=float("nan"))
    with pytest.raises(ConfigError, match=r"^warmup_s='auto' needs a finite duration_s, got inf$"):
        sim._check_run_args(float("inf"), None, "auto")
