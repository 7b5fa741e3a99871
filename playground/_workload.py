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

import math
import random
import string
from dataclasses import dataclass, field
from typing import Callable

from . import limits
from ._errors import ConfigError, check_at_most, check_positive, check_probability
from ._messages import Request

__all__ = ["Zipf", "Workload", "Shape", "Steady", "Ramp", "Steps", "Spike", "as_shape"]


@dataclass(frozen=True)
class Zipf:
    """Ranks 0..n-1 with P(rank k) proportional to 1/(k+1)**s, in O(1) memory for any ``n``.

        >>> Zipf(10**9).sample(random.Random(1)) < 10**9     # a billion keys, no table
        True

    Sampling is rejection-inversion (Hörmann and Derflinger, "Rejection-inversion
    to generate variates from monotone discrete distributions", 1996; the method
    of Apache Commons RNG's ``RejectionInversionZipfSampler``): invert the
    integral of a continuous hat function over the ranks, and accept the draw
    unless it falls in the small gap between the hat and the true mass. Fewer
    than about 1.1 uniform draws a sample on average, no table of ``n`` weights.
    """

    n: int
    s: float = 1.0
    _h_x1: float = field(init=False, repr=False, compare=False)
    _h_n: float = field(init=False, repr=False, compare=False)
    _squeeze: float = field(init=False, repr=False, compare=False)
    _norm: list = field(init=False, repr=False, compare=False)  # [H(n, s)] once computed

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and not isinstance(self.n, bool) and self.n >= 1):
            raise ConfigError(f"Zipf n must be an integer >= 1, got {self.n!r}")
        check_at_most("Zipf n (the number of keys)", self.n, limits.MAX_KEYS, "", limits.WHY["keys"])
        check_positive("Zipf s", self.s, allow_zero=True)
        set_ = object.__setattr__
        set_(self, "_h_x1", self._hint(1.5) - 1.0)
        set_(self, "_h_n", self._hint(self.n + 0.5))
        set_(self, "_squeeze", 2.0 - self._hint_inverse(self._hint(2.5) - self._h(2.0)))
        set_(self, "_norm", [])

    # -- the hat: h(x) = x**-s, its integral H and H's inverse (numerically stable near s = 1) --
    def _h(self, x: float) -> float:
        return math.exp(-self.s * math.log(x))

    def _hint(self, x: float) -> float:
        log_x = math.log(x)
        return _expm1_over((1.0 - self.s) * log_x) * log_x

    def _hint_inverse(self, y: float) -> float:
        t = y * (1.0 - self.s)
        if t < -1.0:  # rounding at the edge of the domain
            t = -1.0
        return math.exp(_log1p_over(t) * y)

    def sample(self, rng: random.Random) -> int:
        n = self.n
        if self.s == 0.0:
            return int(rng.random() * n)
        h_n, span, one_minus_s = self._h_n, self._h_x1 - self._h_n, 1.0 - self.s
        random_ = rng.random
        while True:
            u = h_n + random_() * span  # uniform over (H(1.5) - 1, H(n + 0.5)]
            t = u * one_minus_s  # x = H^-1(u), written out: this runs once a request
            if t < -1.0:
                t = -1.0
            if t > 1e-8 or t < -1e-8:
                x = _exp(_log1p(t) / t * u)
            else:  # s near 1 (t is 0 at s = 1, the usual exponent): log1p(t)/t is 1 - t/2 + ...
                x = _exp(_log1p_over(t) * u) if t else _exp(u)
            k = int(x + 0.5)
            if k < 1:
                k = 1
            elif k > n:
                k = n
            if k - x <= self._squeeze or u >= self._hint(k + 0.5) - self._h(k):
                return k - 1

    # -- exact probabilities --------------------------------------------------------------
    def probability(self, rank: int) -> float:
        """P(rank): (rank+1)**-s over the generalised harmonic number H(n, s)."""
        if not self._norm:
            self._norm.append(harmonic(self.n, self.s))
        return (rank + 1) ** -self.s / self._norm[0]


_exp, _log1p = math.exp, math.log1p


def _expm1_over(x: float) -> float:
    """expm1(x) / x, and its limit 1 at 0."""
    if abs(x) > 1e-8:
        return math.expm1(x) / x
    return 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))


def _log1p_over(x: float) -> float:
    """log1p(x) / x, and its limit 1 at 0."""
    if abs(x) > 1e-8:
        return math.log1p(x) / x
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))


_EXACT_UP_TO = 100_000


def harmonic(n: int, s: float) -> float:
    """The generalised harmonic number H(n, s) = sum of k**-s for k = 1..n.

    Summed exactly up to 100,000 terms; beyond, the first 1,000 terms are summed
    and the rest is the Euler-Maclaurin formula (integral, end corrections and
    three Bernoulli terms), whose error there is far below a float's precision.
    """
    if n <= _EXACT_UP_TO:
        return math.fsum(k ** -s for k in range(n, 0, -1))
    m = 1000
    head = math.fsum(k ** -s for k in range(m - 1, 0, -1))
    f = lambda x: x ** -s  # noqa: E731
    integral = math.log(n / m) if s == 1.0 else (n ** (1.0 - s) - m ** (1.0 - s)) / (1.0 - s)

    def derivative(x: float, order: int) -> float:  # d^order/dx^order of x**-s
        c = 1.0
        for i in range(order):
            c *= -(s + i)
        return c * x ** (-s - order)

    tail = integral + (f(m) + f(n)) / 2
    for coeff, order in ((1 / 12, 1), (-1 / 720, 3), (1 / 30240, 5)):
        tail += coeff * (derivative(n, order) - derivative(m, order))
    return head + tail


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
    # (text before, text after) a template's one plain field, or None: formatted as it is
    _item: tuple[str, str] | None = field(init=False, repr=False, compare=False)
    _static: tuple[str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_probability("write_share", self.write_share)
        check_probability("static_share", self.static_share)
        if not (isinstance(self.static_assets, int) and not isinstance(self.static_assets, bool) and self.static_assets >= 1):
            raise ConfigError(f"static_assets must be an integer >= 1, got {self.static_assets!r}")
        if self.make is not None and not callable(self.make):
            raise ConfigError(f"make must be a callable rng -> Request, got {self.make!r}")
        if not (isinstance(self.keys, int) and not isinstance(self.keys, bool) and self.keys >= 1):
            raise ConfigError(f"keys must be an integer >= 1, got {self.keys!r}")
        check_at_most("keys", self.keys, limits.MAX_KEYS, "", limits.WHY["keys"])
        object.__setattr__(self, "_zipf", Zipf(self.keys, self.zipf_exponent))
        object.__setattr__(self, "_item", _around(self.item_path, "key"))
        object.__setattr__(self, "_static", _around(self.static_path, "asset"))

    def request(self, rng: random.Random) -> Request:
        if self.make is not None:
            return self.make(rng)
        u = rng.random()
        if u < self.static_share:
            asset = int(rng.random() * self.static_assets)
            around = self._static
            return Request("GET", f"{around[0]}{asset}{around[1]}" if around else self.static_path.format(asset=asset))
        key = self._zipf.sample(rng)
        around = self._item  # the path without ``str.format``'s parsing: this runs once a request
        path = f"{around[0]}{key}{around[1]}" if around else self.item_path.format(key=key)
        if u < self.static_share + self.write_share:
            return Request("POST", path, {}, b"v")
        return Request("GET", path)


def _around(template: str, name: str) -> tuple[str, str] | None:
    """The text before and after ``template``'s one field when it is a plain ``{name}``
    (so ``before + str(n) + after == template.format(name=n)``); None for any other template."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:  # malformed: ``format`` raises its own error at the first request
        return None
    if parts and parts[0][1:] == (name, "", None) and (len(parts) == 1 or len(parts) == 2 and parts[1][1] is None):
        return parts[0][0], parts[1][0] if len(parts) == 2 else ""
    return None


class Shape:
    """A request rate over time: ``rate_at(t_s)`` requests per second."""

    def rate_at(self, t_s: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def peak(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def _rate(name: str, value, allow_zero: bool = True) -> float:
    check_positive(name, value, allow_zero=allow_zero)
    check_at_most(name, value, limits.MAX_RATE_PER_S, " requests per second", limits.WHY["rate"])
    return float(value)


@dataclass(frozen=True)
class Steady(Shape):
    rate_per_s: float

    def __post_init__(self) -> None:
        _rate("rate_per_s", self.rate_per_s, allow_zero=False)

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
        check_positive("rate", rate)  # finite
        check_at_most("rate", rate, limits.MAX_RATE_PER_S, " requests per second", limits.WHY["rate"])
        return Steady(float(rate))
    raise ConfigError(f"rate must be a number of requests per second or a Shape, got {rate!r}")
