"""Warm-up: where the start-up transient ends, so that it can be left out.

A simulated system usually starts empty: no queue, a cold cache, no open
connections. The first seconds then differ from the steady state the question
is about, and averaging them in biases the answer (a cold cache makes p99
look worse than it will be). The cure is to truncate: measure only the
requests that arrive after a warm-up.

Choosing the warm-up by eye does not scale to a sweep of hundreds of runs, so
``warmup_s="auto"`` uses MSER-5 (White, 1997; White, Cobb & Spratt, 2000):
group the per-second series into batches of 5, and choose the truncation
``d`` that minimises the squared standard error of the mean of what is left,

    MSER(d) = sum_{j >= d} (Z_j - mean(Z_d..))^2 / (k - d)^2

over the batch means ``Z``, with ``d`` restricted to the first half of the
batches (beyond that the rule is known to chase noise at the end of a run).
The series is the mean latency of the requests that arrived in each second
(all loads together): it carries the transients of queues and caches. The
throughput of an open loop is set by its arrivals, not by the system, so it
is not used: on a stationary series the rule only chases noise.
"""
from __future__ import annotations

import math
from typing import Sequence

from ._errors import ConfigError

__all__ = ["mser5", "check_warmup", "choose_warmup"]

BATCH = 5


def mser5(series: Sequence[float], batch: int = BATCH) -> int:
    """How many leading observations of ``series`` MSER-5 drops (a multiple of ``batch``)."""
    k = len(series) // batch
    if k < 2:
        return 0
    z = [sum(series[j * batch:(j + 1) * batch]) / batch for j in range(k)]
    best_d, best = 0, math.inf
    for d in range(0, k // 2 + 1):
        rest = z[d:]
        if len(rest) < 2:
            break
        m = sum(rest) / len(rest)
        value = sum((x - m) ** 2 for x in rest) / len(rest) ** 2
        if value < best * (1 - 1e-12):  # ties keep the shorter warm-up
            best_d, best = d, value
    return best_d * batch


def check_warmup(warmup_s, duration_s: float) -> None:
    """``warmup_s`` is ``"auto"`` or a number of seconds in [0, duration_s)."""
    if warmup_s == "auto":
        if math.isinf(duration_s):
            raise ConfigError(f"warmup_s='auto' needs a finite duration_s, got {duration_s!r}")
        return
    if isinstance(warmup_s, bool) or not isinstance(warmup_s, (int, float)) or not math.isfinite(warmup_s) \
            or warmup_s < 0:
        raise ConfigError(f"warmup_s must be 'auto' or a number of seconds >= 0, got {warmup_s!r}")
    if warmup_s and warmup_s >= duration_s:
        raise ConfigError(f"warmup_s must be shorter than duration_s ({duration_s:g}), got {warmup_s!r}")


def choose_warmup(metrics: Sequence, duration_s: float) -> float:
    """MSER-5 on the loads' mean latency per arrival second: the warm-up in seconds."""
    seconds = int(duration_s)
    ok = [0] * seconds
    total = [0.0] * seconds
    interval = 1.0
    for m in metrics:
        interval = m.interval_s
        for i, n, sum_s in m.arrival_series():
            if 0 <= i < seconds:
                ok[i] += n
                total[i] += sum_s
    latency = [total[i] / ok[i] if ok[i] else 0.0 for i in range(seconds)]
    return float(mser5(latency) * interval)
