"""How a balancer decides a backend is fit to serve: health checks, outlier ejection, slow start, retry budget.

Real balancers learn about backends two ways. *Active* checks (HAProxy
``check rise 2 fall 3``, Envoy ``health_checks``) probe each backend on a
timer; one bad probe is noise, so a backend goes down only after ``fall``
failures in a row and comes back after ``rise`` good ones. *Passive* outlier
detection (Envoy ``outlier_detection``, nginx ``max_fails``) watches real
traffic: after ``consecutive_errors`` failures in a row (5xx, timeout, reset,
refused) the backend is ejected for ``ejection_s`` and then simply returns,
but never more than ``max_ejection_percent`` of a pool at once (at least one
may always go), so detection cannot empty a pool by itself.

A returning backend is cold (empty caches, JIT not warm); *slow start*
(Envoy ``slow_start_config``, nginx ``slow_start``) ramps its weight from
``min_factor`` to full over ``slow_start_s``.

Retries help with a lost request and hurt in an outage: three retries turn
one request into four on an already failing service. A *retry budget*
(Finagle ``RetryBudget``, Envoy ``retry_budget``) allows retries only up to
``ratio`` of the requests seen in the last ``window_s``, plus a small floor
(``min_retries_per_s``) so a quiet service can still retry.

Everything here is a pure, synchronous state machine fed with results and
times; the balancer's trio tasks only send probes and requests. Left out:
Envoy's growing ejection time per repeat offender, success-rate (statistical)
ejection, and TCP-level checks (a check is an HTTP GET; any status below 500
counts as healthy).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from playground import ConfigError
from playground import limits
from playground._errors import check_at_least, check_positive

__all__ = [
    "HealthCheck",
    "OutlierDetection",
    "RetryBudget",
    "HealthTracker",
    "OutlierTracker",
    "RetryBudgetTracker",
    "slow_start_factor",
]


def _check_count(name: str, value) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class HealthCheck:
    """Active checks: GET ``path`` every ``interval_s``; down after ``fall`` failures, up after ``rise`` passes.

    Defaults: path "/health", every 1.0 s, 0.5 s timeout, rise 2, fall 3.
    A response with status < 500 passes; an error status, timeout, reset or refusal fails.

        >>> HealthCheck(interval_s=0.5, fall=2)   # doctest: +ELLIPSIS
        HealthCheck(path='/health', interval_s=0.5, ...)
    """

    path: str = "/health"
    interval_s: float = 1.0
    timeout_s: float = 0.5
    rise: int = 2
    fall: int = 3

    def __post_init__(self) -> None:
        if not (isinstance(self.path, str) and self.path.startswith("/")):
            raise ConfigError(f"health check path must start with '/', got {self.path!r}")
        check_positive("interval_s", self.interval_s)
        check_at_least("interval_s", self.interval_s, limits.MIN_INTERVAL_S, " s", limits.WHY["interval"])
        check_positive("timeout_s", self.timeout_s)
        _check_count("rise", self.rise)
        _check_count("fall", self.fall)


@dataclass(frozen=True)
class OutlierDetection:
    """Passive ejection: ``consecutive_errors`` failures in a row eject a backend for ``ejection_s``.

    Defaults: 5 errors, 30 s, at most 50% of a pool ejected (at least one may always be).
    """

    consecutive_errors: int = 5
    ejection_s: float = 30.0
    max_ejection_percent: float = 50.0

    def __post_init__(self) -> None:
        _check_count("consecutive_errors", self.consecutive_errors)
        check_positive("ejection_s", self.ejection_s)
        ok = isinstance(self.max_ejection_percent, (int, float)) and 0 <= self.max_ejection_percent <= 100
        if not ok:
            raise ConfigError(f"max_ejection_percent must be between 0 and 100, got {self.max_ejection_percent!r}")


@dataclass(frozen=True)
class RetryBudget:
    """Retries allowed: ``ratio`` of the requests in the last ``window_s``, plus ``min_retries_per_s``.

    Defaults (Finagle's): ratio 0.2, 10 retries per second, a 10 s window.
    """

    ratio: float = 0.2
    min_retries_per_s: float = 10.0
    window_s: float = 10.0

    def __post_init__(self) -> None:
        check_positive("ratio", self.ratio, allow_zero=True)
        check_positive("min_retries_per_s", self.min_retries_per_s, allow_zero=True)
        check_positive("window_s", self.window_s)


class HealthTracker:
    """One backend's active-check state: ``record(passed)`` returns True when up/down flips.

        >>> t = HealthTracker(HealthCheck(rise=2, fall=2))
        >>> t.record(False), t.record(False), t.up
        (False, True, False)
    """

    __slots__ = ("rise", "fall", "up", "_streak", "changes")

    def __init__(self, config: HealthCheck, up: bool = True) -> None:
        self.rise = config.rise
        self.fall = config.fall
        self.up = up
        self._streak = 0  # consecutive results that disagree with the current state
        self.changes = 0

    def record(self, passed: bool) -> bool:
        if passed == self.up:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak >= (self.rise if passed else self.fall):
            self.up = passed
            self._streak = 0
            self.changes += 1
            return True
        return False


class OutlierTracker:
    """Passive ejection for one pool of backends, driven by ``record(name, ok, now)``.

    ``record`` returns True when that result ejected the backend. ``ejected(name, now)``
    says whether it is out now; an ejection ends by itself after ``ejection_s``.
    """

    def __init__(self, config: OutlierDetection, names) -> None:
        self.config = config
        self.names = tuple(dict.fromkeys(names))
        self._errors = {n: 0 for n in self.names}
        self._until: dict[str, float] = {}
        self.ejections = {n: 0 for n in self.names}
        self.skipped = 0  # ejections the max percentage prevented

    def ejected(self, name: str, now: float) -> bool:
        until = self._until.get(name)
        if until is None:
            return False
        if now >= until:
            del self._until[name]
            self._errors[name] = 0
            return False
        return True

    def ejected_until(self, name: str) -> float | None:
        return self._until.get(name)

    def record(self, name: str, ok: bool, now: float) -> bool:
        if name not in self._errors or self.ejected(name, now):
            return False
        if ok:
            self._errors[name] = 0
            return False
        self._errors[name] += 1
        if self._errors[name] < self.config.consecutive_errors:
            return False
        out = sum(1 for n in self.names if self.ejected(n, now))
        allowed = max(1, math.floor(len(self.names) * self.config.max_ejection_percent / 100))
        if out + 1 > allowed:
            self.skipped += 1
            return False
        self._until[name] = now + self.config.ejection_s
        self._errors[name] = 0
        self.ejections[name] += 1
        return True

    def with_names(self, names) -> "OutlierTracker":
        """The same tracker over a changed set of backends (one added to or removed from the pool)."""
        new = OutlierTracker(self.config, names)
        for n in new.names:
            if n in self._errors:
                new._errors[n] = self._errors[n]
                new.ejections[n] = self.ejections[n]
                if n in self._until:
                    new._until[n] = self._until[n]
        new.skipped = self.skipped
        return new

    def forget(self) -> None:
        """Drop every ejection and error streak (the balancer restarted)."""
        self._until.clear()
        for n in self._errors:
            self._errors[n] = 0


def slow_start_factor(since_s: float, slow_start_s: float, min_factor: float = 0.1) -> float:
    """Share of its weight a backend gets ``since_s`` after it returned: ramps min_factor -> 1."""
    if slow_start_s <= 0 or since_s >= slow_start_s:
        return 1.0
    return max(min_factor, since_s / slow_start_s)


class RetryBudgetTracker:
    """Counts requests and retries per second over a sliding window; ``try_retry`` spends one token.

        >>> b = RetryBudgetTracker(RetryBudget(ratio=0.5, min_retries_per_s=0, window_s=10))
        >>> for _ in range(4): b.request(0.0)
        >>> [b.try_retry(0.0) for _ in range(3)]
        [True, True, False]
    """

    def __init__(self, config: RetryBudget) -> None:
        self.config = config
        self._buckets: deque[list] = deque()  # [second, requests, retries]
        self._requests = 0
        self._retries = 0
        self.used = 0
        self.denied = 0

    def _bucket(self, now: float) -> list:
        second = math.floor(now)
        horizon = second - self.config.window_s
        buckets = self._buckets
        while buckets and buckets[0][0] <= horizon:
            _, req, ret = buckets.popleft()
            self._requests -= req
            self._retries -= ret
        if not buckets or buckets[-1][0] != second:
            buckets.append([second, 0, 0])
        return buckets[-1]

    def request(self, now: float) -> None:
        """A first attempt was made (each one earns ``ratio`` of a retry)."""
        self._bucket(now)[1] += 1
        self._requests += 1

    @property
    def balance(self) -> float:
        c = self.config
        return c.ratio * self._requests + c.min_retries_per_s * c.window_s - self._retries

    def try_retry(self, now: float) -> bool:
        """Spend a token for one retry if the budget allows it; count the outcome."""
        bucket = self._bucket(now)
        if self.balance < 1.0:
            self.denied += 1
            return False
        bucket[2] += 1
        self._retries += 1
        self.used += 1
        return True
