"""Queueing theory and the statistics to compare a simulation with it: pure functions.

Closed forms for single stations - M/M/c by Erlang C, M/G/1 by
Pollaczek-Khinchine, M/G/c by the Allen-Cunneen approximation, M/M/c/K (a
bounded queue: blocking) from its birth-death chain - mean value analysis of
a closed network (exact MVA, and Schweitzer's approximation for large
populations), Che's approximation of an LRU cache's hit ratio, and Student's t
confidence intervals. No trio, no engine: ``report.theory()``,
``bench/validate.py`` and the tests all call these.

Conventions: rates per second, times in seconds; ``scv`` is a service time's
squared coefficient of variation (variance / mean^2: 1 exponential, 0 constant).
Prior art: Kleinrock, *Queueing Systems* (1975); Lazowska et al., *Quantitative
System Performance* (1984) for the operational laws and MVA; Allen, *Probability,
Statistics and Queueing Theory* (1990) for Allen-Cunneen.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

__all__ = ["erlang_c", "Theory", "mmc", "md1", "mg1", "mgc", "mmck", "mva", "MVAResult", "Blocking", "che_hit_ratio", "student_t_quantile",
           "Estimate", "estimate"]

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


def mg1(rate_per_s: float, service_s: float, scv: float) -> Theory:
    """M/G/1 by Pollaczek-Khinchine: Wq = rho S (1 + scv) / (2 (1 - rho))."""
    rho = rate_per_s * service_s
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    wq = rho * service_s * (1.0 + scv) / (2.0 * (1.0 - rho))
    return Theory(rho, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


def mgc(rate_per_s: float, service_s: float, servers: int, scv: float = 1.0) -> Theory:
    """M/G/c: exact for c = 1 (Pollaczek-Khinchine) and for scv = 1 (Erlang C); otherwise
    the Allen-Cunneen approximation Wq(M/M/c) (1 + scv) / 2 (within a few percent for
    moderate variability)."""
    if servers == 1:
        return mg1(rate_per_s, service_s, scv)
    base = mmc(rate_per_s, service_s, servers)
    wq = base.wq_s * (1.0 + scv) / 2.0
    return Theory(base.p_wait, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


@dataclass(frozen=True)
class Blocking:
    """M/M/c/K: share of arrivals turned away, and the figures of those admitted."""

    p_block: float
    wq_s: float
    w_s: float
    lq: float
    l: float  # noqa: E741
    utilisation: float


def mmck(rate_per_s: float, service_s: float, servers: int, capacity: int) -> Blocking:
    """M/M/c/K: ``capacity`` = K places in all (in service and waiting); any load, even rho >= 1."""
    if not (servers >= 1 and capacity >= servers):
        raise ValueError(f"need 1 <= servers <= capacity, got servers={servers!r}, capacity={capacity!r}")
    a = rate_per_s * service_s
    # unnormalised p_n by the birth-death recursion, scaled as it goes to stay finite
    p = [1.0]
    for n in range(1, capacity + 1):
        p.append(p[-1] * a / min(n, servers))
        if p[-1] > 1e250:
            p = [x / 1e250 for x in p]
    total = sum(p)
    p = [x / total for x in p]
    l = sum(n * pn for n, pn in enumerate(p))  # noqa: E741
    lq = sum((n - servers) * pn for n, pn in enumerate(p) if n > servers)
    admitted = rate_per_s * (1.0 - p[-1])
    wq = lq / admitted if admitted > 0 else 0.0
    busy = sum(min(n, servers) * pn for n, pn in enumerate(p))
    return Blocking(p[-1], wq, wq + service_s, lq, l, busy / servers)


@dataclass(frozen=True)
class MVAResult:
    """A closed network at one population: throughput, response time, per-station queue and utilisation."""

    users: int
    throughput_per_s: float
    response_s: float
    queue: tuple[float, ...]
    utilisation: tuple[float, ...]
    exact: bool


def mva(demands_s: Sequence[float], servers: Sequence[int], users: int, think_s: float = 0.0,
        *, exact_up_to: int = 2000) -> MVAResult:
    """Mean value analysis of a closed network: ``users`` circulate, each thinking ``think_s``
    between requests, each request visiting station i for a total demand ``demands_s[i]``.

    A station with c > 1 servers is modelled as Seidmann's pair: a queue with demand D/c
    plus a pure delay of D (c - 1) / c. Exact MVA (Reiser and Lavenberg) up to ``exact_up_to``
    users; beyond, Schweitzer's fixed point Q_i(N-1) ~ Q_i(N) (N-1)/N.
    """
    if users < 1:
        raise ValueError(f"users must be >= 1, got {users!r}")
    queue_d = [d / c for d, c in zip(demands_s, servers)]
    delay = think_s + sum(d * (c - 1) / c for d, c in zip(demands_s, servers))
    k = len(queue_d)
    if users <= exact_up_to:
        q = [0.0] * k
        x = r = 0.0
        for n in range(1, users + 1):
            rs = [queue_d[i] * (1.0 + q[i]) for i in range(k)]
            r = sum(rs)
            x = n / (r + delay)
            q = [x * v for v in rs]
        exact = True
    else:
        q = [users / max(k, 1)] * k
        for _ in range(10_000):
            rs = [queue_d[i] * (1.0 + q[i] * (users - 1) / users) for i in range(k)]
            r = sum(rs)
            x = users / (r + delay)
            new = [x * v for v in rs]
            if max((abs(a - b) for a, b in zip(new, q)), default=0.0) < 1e-9 * users:
                q = new
                break
            q = new
        exact = False
    response = r + sum(d * (c - 1) / c for d, c in zip(demands_s, servers))
    return MVAResult(users, x, response, tuple(q), tuple(x * d / c for d, c in zip(demands_s, servers)), exact)


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
