"""What users ask for: a mix of paths and keys, and how fast they arrive.

Real traffic is skewed: a few items are hot and most are cold. ``Zipf`` draws
key ranks with probability proportional to ``1 / rank**s`` (s=0 is uniform,
s~1 is typical of web caches). ``Workload`` turns draws into requests: reads of
``/item/<key>``, a share of writes, a share of static assets that a CDN can
serve. Rate shapes (``Steady``, ``Ramp``, ``Steps``, ``Spike``) say how many
requests per second arrive at each moment. All of it is pure: it samples from
an ``rng`` the caller owns.
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Callable

from ._errors import ConfigError, check_positive, check_probability
from ._messages import Request

__all__ = ["Zipf", "Workload", "Shape", "Steady", "Ramp", "Steps", "Spike", "as_shape"]


@dataclass(frozen=True)
class Zipf:
    """Ranks 0..n-1 with P(rank k) proportional to 1/(k+1)**s."""

    n: int
    s: float = 1.0
    _cum: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and not isinstance(self.n, bool) and self.n >= 1):
            raise ConfigError(f"Zipf n must be an integer >= 1, got {self.n!r}")
        check_positive("Zipf s", self.s, allow_zero=True)
        weights = (1.0 / (k + 1) ** self.s for k in range(self.n))
        object.__setattr__(self, "_cum", tuple(itertools.accumulate(weights)))

    def probability(self, rank: int) -> float:
        return (1.0 / (rank + 1) ** self.s) / self._cum[-1]

    def sample(self, rng: random.Random) -> int:
        cum = self._cum
        return bisect.bisect_left(cum, rng.random() * cum[-1])


@dataclass(frozen=True)
class Workload:
    """The request mix. Defaults: 10,000 keys, Zipf s=1.0, all reads, no static assets.

        >>> Workload(keys=1000, static_share=0.2, write_share=0.05)   # doctest: +ELLIPSIS
        Workload(...)
    """

    keys: int = 10_000
    zipf_exponent: float = 1.0
    write_share: float = 0.0
    static_share: float = 0.0
    static_assets: int = 50
    item_path: str = "/item/{key}"
    static_path: str = "/static/asset-{asset}.js"
    make: Callable[[random.Random], Request] | None = None
    _zipf: Zipf = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_probability("write_share", self.write_share)
        check_probability("static_share", self.static_share)
        if not (isinstance(self.static_assets, int) and not isinstance(self.static_assets, bool) and self.static_assets >= 1):
            raise ConfigError(f"static_assets must be an integer >= 1, got {self.static_assets!r}")
        if self.make is not None and not callable(self.make):
            raise ConfigError(f"make must be a callable rng -> Request, got {self.make!r}")
        object.__setattr__(self, "_zipf", Zipf(self.keys, self.zipf_exponent))

    def request(self, rng: random.Random) -> Request:
        if self.make is not None:
            return self.make(rng)
        u = rng.random()
        if u < self.static_share:
            return Request("GET", self.static_path.format(asset=int(rng.random() * self.static_assets)))
        key = self._zipf.sample(rng)
        if u < self.static_share + self.write_share:
            return Request("POST", self.item_path.format(key=key), body=b"v")
        return Request("GET", self.item_path.format(key=key))


class Shape:
    """A request rate over time: ``rate_at(t_s)`` requests per second."""

    def rate_at(self, t_s: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def peak(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def _rate(name: str, value) -> float:
    check_positive(name, value, allow_zero=True)
    return float(value)


@dataclass(frozen=True)
class Steady(Shape):
    rate_per_s: float

    def __post_init__(self) -> None:
        check_positive("rate_per_s", self.rate_per_s)

    def rate_at(self, t_s: float) -> float:
        return self.rate_per_s

    @property
    def peak(self) -> float:
        return self.rate_per_s


@dataclass(frozen=True)
class Ramp(Shape):
    """From ``start_per_s`` to ``end_per_s`` linearly over ``over_s``, then flat."""

    start_per_s: float
    end_per_s: float
    over_s: float

    def __post_init__(self) -> None:
        _rate("Ramp start_per_s", self.start_per_s)
        _rate("Ramp end_per_s", self.end_per_s)
        check_positive("Ramp over_s", self.over_s)

    def rate_at(self, t_s: float) -> float:
        f = min(max(t_s / self.over_s, 0.0), 1.0)
        return self.start_per_s + (self.end_per_s - self.start_per_s) * f

    @property
    def peak(self) -> float:
        return max(self.start_per_s, self.end_per_s)


@dataclass(frozen=True)
class Steps(Shape):
    """Piecewise constant: ``steps`` is ((from_s, rate_per_s), ...) in time order."""

    steps: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        steps = tuple((float(t), float(r)) for t, r in self.steps)
        if not steps:
            raise ConfigError("Steps needs at least one (from_s, rate_per_s) pair, got ()")
        for t, r in steps:
            _rate("Steps rate_per_s", r)
        if any(b[0] < a[0] for a, b in zip(steps, steps[1:])):
            raise ConfigError(f"Steps must be in time order, got {self.steps!r}")
        object.__setattr__(self, "steps", steps)

    def rate_at(self, t_s: float) -> float:
        rate = 0.0
        for t, r in self.steps:
            if t_s >= t:
                rate = r
        return rate

    @property
    def peak(self) -> float:
        return max(r for _, r in self.steps)


@dataclass(frozen=True)
class Spike(Shape):
    """``base_per_s``, rising to ``peak_per_s`` from ``at_s`` for ``for_s`` seconds."""

    base_per_s: float
    peak_per_s: float
    at_s: float
    for_s: float

    def __post_init__(self) -> None:
        _rate("Spike base_per_s", self.base_per_s)
        _rate("Spike peak_per_s", self.peak_per_s)
        check_positive("Spike at_s", self.at_s, allow_zero=True)
        check_positive("Spike for_s", self.for_s)

    def rate_at(self, t_s: float) -> float:
        return self.peak_per_s if self.at_s <= t_s < self.at_s + self.for_s else self.base_per_s

    @property
    def peak(self) -> float:
        return max(self.base_per_s, self.peak_per_s)


def as_shape(rate) -> Shape:
    if isinstance(rate, Shape):
        return rate
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        if not rate > 0:
            raise ConfigError(f"rate must be > 0 requests per second, got {rate!r}")
        if rate == float("inf"):
            raise ConfigError(f"rate must be finite, got {rate!r}")
        return Steady(float(rate))
    raise ConfigError(f"rate must be a number of requests per second or a Shape, got {rate!r}")
