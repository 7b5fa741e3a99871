"""Latency distributions draw what they promise: each sample mean lands on ``mean_s``.

50,000 draws from a seeded ``random.Random``; the tolerance is about five
standard errors of the mean, so a pass is not luck and a wrong formula fails.
"""
from __future__ import annotations

import math
import random
import statistics

import pytest

from playground import ConfigError, Constant, Empirical, Exponential, LogNormal, Uniform, as_distribution

N = 50_000


def sample_mean(dist, seed: int = 1) -> float:
    rng = random.Random(seed)
    return statistics.fmean(dist.sample(rng) for _ in range(N))


def five_standard_errors(dist, seed: int = 2) -> float:
    rng = random.Random(seed)
    return 5 * statistics.stdev(dist.sample(rng) for _ in range(N)) / math.sqrt(N)


@pytest.mark.parametrize("dist", [
    Uniform(0.001, 0.005),
    Exponential(0.004),
    LogNormal(0.010, 0.5),
    LogNormal(0.010, 1.2),  # a long tail: mean = median * e^(sigma^2 / 2), well above the median
    Empirical((0.001, 0.002, 0.002, 0.010, 0.050)),
    Exponential(0.004).jittered(0.002),
    Constant(0.003).jittered(0.001),
    Exponential(0.004).scaled(3.0),
], ids=repr)
def test_the_sample_mean_is_the_promised_mean(dist):
    assert sample_mean(dist) == pytest.approx(dist.mean_s, abs=five_standard_errors(dist))


def test_the_promised_means_are_the_textbook_ones():
    assert Uniform(0.001, 0.005).mean_s == pytest.approx(0.003)
    assert LogNormal(0.010, 0.5).mean_s == pytest.approx(0.010 * math.exp(0.125))
    assert Empirical((0.001, 0.003)).mean_s == pytest.approx(0.002)
    # draws interpolate between the sorted values, so the extremes weigh half
    assert Empirical((0.001, 0.002, 0.006)).mean_s == pytest.approx((0.0005 + 0.002 + 0.003) / 2)
    assert Empirical((0.004,)).mean_s == 0.004
    assert Exponential(0.004).jittered(0.002).mean_s == pytest.approx(0.005)


def test_a_constant_is_constant_and_a_bare_number_is_a_constant():
    rng = random.Random(1)
    assert {Constant(0.25).sample(rng) for _ in range(100)} == {0.25}
    assert as_distribution(0.25) == Constant(0.25)
    assert as_distribution(Exponential(1.0)) == Exponential(1.0)


def test_every_draw_stays_in_its_range():
    rng = random.Random(3)
    assert all(0.001 <= Uniform(0.001, 0.002).sample(rng) <= 0.002 for _ in range(10_000))
    assert all(0.001 <= Empirical((0.001, 0.009)).sample(rng) <= 0.009 for _ in range(10_000))
    assert all(0.003 <= Constant(0.003).jittered(0.001).sample(rng) < 0.004 for _ in range(10_000))
    assert all(Exponential(0.01).sample(rng) >= 0 for _ in range(10_000))


def test_the_same_seed_draws_the_same_numbers():
    a = [LogNormal(0.01, 0.7).sample(random.Random(9)) for _ in range(3)]
    b = [LogNormal(0.01, 0.7).sample(random.Random(9)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize("make, message", [
    (lambda: Constant(-0.1), r"^Constant value_s must be >= 0, got -0\.1$"),
    (lambda: Uniform(0.2, 0.1), r"^Uniform high_s must be >= low_s \(0\.2\), got 0\.1$"),
    (lambda: Exponential(0), r"^Exponential mean_s must be > 0, got 0$"),
    (lambda: LogNormal(0.01, -1), r"^LogNormal sigma must be >= 0, got -1$"),
    (lambda: Empirical(()), r"^Empirical samples_s must not be empty, got \(\)$"),
    (lambda: Empirical((0.1, -0.2)), r"^Empirical sample must be >= 0, got -0\.2$"),
    (lambda: Exponential(0.1).jittered(-0.1), r"^jitter_s must be >= 0, got -0\.1$"),
    (lambda: as_distribution(-1), r"^latency must be >= 0 seconds, got -1$"),
    (lambda: as_distribution("fast", "think_time_s"),
     r"^think_time_s must be a number of seconds or a Distribution, got 'fast'$"),
])
def test_bad_parameters_are_refused_with_the_value_named(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
