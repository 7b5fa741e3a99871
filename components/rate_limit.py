"""Rate limiting: how many requests a client may make, and what it is told when it makes more.

An API in front of many clients protects itself and the others from a noisy
one by counting each client's requests and answering ``429 Too Many
Requests`` with ``Retry-After`` beyond a limit (nginx ``limit_req``, Envoy's
local rate limit, an API gateway's usage plans). Two algorithms:

* ``TokenBucket(rate_per_s, burst)`` - a bucket of ``burst`` tokens refilled at
  ``rate_per_s``; a request takes one. Bursts up to ``burst`` pass, the
  long-run rate is capped at ``rate_per_s`` (nginx's leaky bucket, AWS API
  Gateway's throttling).
* ``SlidingWindow(limit, window_s)`` - at most ``limit`` requests in any
  ``window_s``, estimated from this window's count and the previous one's
  weighted by how much of it still overlaps (Cloudflare's sliding window
  counter: two counters per client instead of a log of timestamps).

``RateLimit(algorithm, key=...)`` says what is counted: ``"client"`` (the
client's address: the first ``x-forwarded-for`` entry, else the sender),
``"header:<name>"`` (an API key; without the header, the address) or
``"global"`` (one budget for everyone). At most ``max_keys`` clients are
remembered (least recently seen forgotten first), so memory stays bounded.

The algorithms are pure: ``allow(state, now) -> retry_after_s`` (0.0 when
allowed) over a small per-key state; ``RateLimiter`` keeps the keys. An
``L7Balancer(rate_limit=...)`` or an ``APIGateway`` applies them. Left out:
distributed limits shared between balancers (each keeps its own counts) and
quotas per day.
"""
from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

from playground import ConfigError, Request, Response
from playground._errors import check_positive

__all__ = ["TokenBucket", "SlidingWindow", "RateLimit", "RateLimiter"]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; each request takes one.

        >>> b = TokenBucket(rate_per_s=1, burst=2); s = b.new_state(0.0)
        >>> b.allow(s, 0.0), b.allow(s, 0.0), b.allow(s, 0.0)
        (0.0, 0.0, 1.0)
    """

    def __init__(self, rate_per_s: float, burst: int | None = None) -> None:
        check_positive("rate_per_s", rate_per_s)
        if burst is None:
            burst = max(1, math.ceil(rate_per_s))
        if not (isinstance(burst, int) and not isinstance(burst, bool) and burst >= 1):
            raise ConfigError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = burst

    def new_state(self, now: float) -> list[float]:
        return [float(self.burst), now]  # [tokens, last refill]

    def allow(self, state: list[float], now: float) -> float:
        tokens = min(self.burst, state[0] + (now - state[1]) * self.rate_per_s)
        state[1] = now
        if tokens >= 1.0:
            state[0] = tokens - 1.0
            return 0.0
        state[0] = tokens
        return (1.0 - tokens) / self.rate_per_s

    def describe(self) -> str:
        return f"{self.rate_per_s:g} requests per s (burst {self.burst})"

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_s={self.rate_per_s:g}, burst={self.burst})"


class SlidingWindow:
    """At most ``limit`` requests in any ``window_s`` (the sliding window counter estimate).

        >>> w = SlidingWindow(limit=2, window_s=1.0); s = w.new_state(0.0)
        >>> w.allow(s, 0.1), w.allow(s, 0.2), w.allow(s, 0.3)
        (0.0, 0.0, 0.7)
    """

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        if not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
            raise ConfigError(f"limit must be an integer >= 1, got {limit!r}")
        check_positive("window_s", window_s)
        self.limit = limit
        self.window_s = float(window_s)

    def new_state(self, now: float) -> list[float]:
        start = math.floor(now / self.window_s) * self.window_s
        return [start, 0.0, 0.0]  # [this window's start, its count, the previous window's count]

    def allow(self, state: list[float], now: float) -> float:
        w = self.window_s
        start = math.floor(now / w) * w
        if start > state[0]:  # a new window: the current count becomes the previous (or 0 if skipped)
            state[2] = state[1] if start - state[0] < w * 1.5 else 0.0
            state[0], state[1] = start, 0.0
        elapsed = now - start
        previous, current = state[2], state[1]
        if previous * (1.0 - elapsed / w) + current + 1.0 <= self.limit + 1e-9:
            state[1] = current + 1.0
            return 0.0
        if current + 1.0 > self.limit or previous <= 0:
            return start + w - now  # full on its own: wait for the next window
        # the previous window's weight must fall until one more fits
        t = w * (1.0 - (self.limit - current - 1.0) / previous) - elapsed
        return max(t, 1e-6)

    def describe(self) -> str:
        return f"{self.limit} requests per {self.window_s:g} s"

    def __repr__(self) -> str:
        return f"SlidingWindow(limit={self.limit}, window_s={self.window_s:g})"


@dataclass(frozen=True)
class RateLimit:
    """An algorithm and what it counts by. Default key: the client's address; 100,000 keys remembered.

        >>> RateLimit(TokenBucket(rate_per_s=10, burst=20), key="header:x-api-key")   # doctest: +ELLIPSIS
        RateLimit(algorithm=TokenBucket(rate_per_s=10, burst=20), key='header:x-api-key', max_keys=100000)
    """

    algorithm: TokenBucket | SlidingWindow
    key: str = "client"
    max_keys: int = 100_000

    def __post_init__(self) -> None:
        if not (callable(getattr(self.algorithm, "allow", None)) and callable(getattr(self.algorithm, "new_state", None))):
            raise ConfigError(f"algorithm must be a TokenBucket or a SlidingWindow, got {self.algorithm!r}")
        ok = self.key in ("client", "global") or (isinstance(self.key, str) and self.key.startswith("header:")
                                                  and len(self.key) > len("header:"))
        if not ok:
            raise ConfigError(f"key must be 'client', 'global' or 'header:<name>', got {self.key!r}")
        if not (isinstance(self.max_keys, int) and not isinstance(self.max_keys, bool) and self.max_keys >= 1):
            raise ConfigError(f"max_keys must be an integer >= 1, got {self.max_keys!r}")


def client_address(request: Request) -> str:
    """The original client: the first ``x-forwarded-for`` entry, else the sender."""
    xff = request.headers.get("x-forwarded-for")
    return xff.split(",", 1)[0].strip() if xff else request.client


class RateLimiter:
    """The counts of one ``RateLimit``: ``check(request, now)`` is None (pass) or the 429 to answer."""

    def __init__(self, config: RateLimit) -> None:
        if not isinstance(config, RateLimit):
            raise ConfigError(f"rate_limit must be a RateLimit, got {config!r}")
        self.config = config
        self.algorithm = config.algorithm
        self._header = config.key.split(":", 1)[1].lower() if config.key.startswith("header:") else None
        self._states: OrderedDict[str, list[float]] = OrderedDict()
        self.allowed = 0
        self.limited = 0
        self.limited_by_key: Counter[str] = Counter()
        self.forgotten = 0

    def key_of(self, request: Request) -> str:
        if self.config.key == "global":
            return "*"
        if self._header is not None:
            value = request.headers.get(self._header)
            if value:
                return value
        return client_address(request)

    def retry_after_s(self, key: str, now: float) -> float:
        """0.0 if a request under ``key`` may pass now (and counts it), else how long to wait."""
        states = self._states
        state = states.get(key)
        if state is None:
            state = states[key] = self.algorithm.new_state(now)
            if len(states) > self.config.max_keys:
                states.popitem(last=False)
                self.forgotten += 1
        else:
            states.move_to_end(key)
        return self.algorithm.allow(state, now)

    def check(self, request: Request, now: float) -> Response | None:
        key = self.key_of(request)
        wait = self.retry_after_s(key, now)
        if wait <= 0.0:
            self.allowed += 1
            return None
        self.limited += 1
        self.limited_by_key[key] += 1
        headers = {"retry-after": str(max(1, math.ceil(wait))), "x-retry-after-s": f"{wait:.3f}",
                   "x-error": "rate-limited"}
        return Response(429, headers, f"rate limit exceeded for {key!r}: {self.algorithm.describe()}".encode())

    def detail(self) -> dict:
        top = sorted(self.limited_by_key.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return {"limit": self.algorithm.describe(), "key": self.config.key, "allowed": self.allowed,
                "limited": self.limited, "limited_by_key": dict(top), "keys": len(self._states)}
