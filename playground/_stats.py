"""Confidence intervals over replications: the mean of n runs and how sure we are of it.

One run of a stochastic system is one draw. Running the same configuration
with n seeds gives n independent estimates of (say) its p99; their mean is the
estimate, and Student's t gives the 95% interval around it:

    mean +- t(0.975, n - 1) * s / sqrt(n)

where ``s`` is the sample standard deviation. The interval narrows as 1/sqrt(n)
(and t shrinks towards 1.96 too). It assumes the replications are
independent and roughly normal - true of means of long runs; percentiles of
short runs are skewed, so quote intervals of p99 with some care.

The t quantile is computed here (regularised incomplete beta by Lentz's
continued fraction, then bisection), so no SciPy is needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Estimate", "estimate", "t_quantile", "t_cdf"]


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` replications with its confidence interval (``low``/``high`` None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    level: float = 0.95

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else (self.high - self.low) / 2

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.mean:.4g} (n={self.n})"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"


def estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean and Student-t interval of ``values`` (one per replication)."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(xs)
    if n == 0:
        return Estimate(math.nan, None, None, 0, level)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean, None, None, n, level)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    half = t_quantile(0.5 + level / 2, n - 1) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n, level)


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        even = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
        odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
        for num in (even, odd):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
            last = d * c
        if abs(last - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (e.g. ``t_quantile(0.975, 4)`` = 2.776)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0
