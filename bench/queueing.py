"""Queueing theory and the statistics to compare a simulation with it: pure functions, no engine.

Closed forms for single stations (M/M/c by Erlang C, M/D/1 by Pollaczek-
Khinchine), Che's approximation of an LRU cache's hit ratio under independent
requests, and Student's t confidence intervals over independent replications.
``bench/validate.py`` and ``tests/test_theory.py`` compare the engine with these.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

__all__ = ["erlang_c", "Theory", "mmc", "md1", "che_hit_ratio", "student_t_quantile", "Estimate", "estimate"]

# -- closed forms (pure) -----------------------------------------------------------


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c (``offered_load`` = lambda/mu < c)."""
    if not 0 <= offered_load < servers:
        raise ValueError(f"offered_load must be in [0, servers), got {offered_load!r}")
    b = 1.0  # Erlang B by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class Theory:
    """Steady-state figures of one station: P(wait), Wq, W, Lq, L (seconds, requests)."""

    p_wait: float
    wq_s: float
    w_s: float
    lq: float
    l: float  # noqa: E741 - the textbook's name


def mmc(rate_per_s: float, service_s: float, servers: int) -> Theory:
    """M/M/c with arrival rate lambda, mean service 1/mu, ``servers`` = c."""
    a = rate_per_s * service_s
    p = erlang_c(servers, a)
    wq = p * service_s / (servers - a)
    return Theory(p, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


def md1(rate_per_s: float, service_s: float) -> Theory:
    """M/D/1 by Pollaczek-Khinchine: Wq = rho S / (2 (1 - rho))."""
    rho = rate_per_s * service_s
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    wq = rho * service_s / (2.0 * (1.0 - rho))
    return Theory(rho, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


def che_hit_ratio(probabilities: Sequence[float], capacity_items: int) -> float:
    """Che's approximation of an LRU cache's hit ratio under independent requests.

    Solve sum_i (1 - exp(-p_i T)) = C for the characteristic time T (bisection);
    the hit ratio is sum_i p_i (1 - exp(-p_i T)).
    """
    n = len(probabilities)
    if capacity_items >= n:
        return 1.0
    occupancy = lambda t: sum(-math.expm1(-p * t) for p in probabilities)  # noqa: E731
    lo, hi = 0.0, 1.0
    while occupancy(hi) < capacity_items:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if occupancy(mid) < capacity_items:
            lo = mid
        else:
            hi = mid
    t = (lo + hi) / 2.0
    return sum(p * -math.expm1(-p * t) for p in probabilities)


# -- statistics (pure) ---------------------------------------------------------------


def student_t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (q > 0.5) of Student's t with ``df`` degrees of freedom."""
    if not (0.5 < q < 1 and df >= 1):
        raise ValueError(f"need 0.5 < q < 1 and df >= 1, got q={q!r}, df={df!r}")
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float, steps: int = 2000) -> float:  # Simpson's rule on [0, x]
        h = x / steps
        f = lambda t: c * (1 + t * t / df) ** (-(df + 1) / 2)  # noqa: E731
        s = f(0.0) + f(x) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
        return 0.5 + s * h / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < q:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Estimate:
    """A mean over independent replications with a two-sided confidence interval."""

    mean: float
    half_width: float
    replications: int
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def estimate(samples: Sequence[float], confidence: float = 0.95) -> Estimate:
    n = len(samples)
    if n < 2:
        raise ValueError(f"need at least 2 replications, got {n}")
    t = student_t_quantile(0.5 + confidence / 2, n - 1)
    return Estimate(statistics.fmean(samples), t * statistics.stdev(samples) / math.sqrt(n), n, confidence)
