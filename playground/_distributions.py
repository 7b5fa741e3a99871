"""Latency and service-time distributions: pure sampling, no waiting.

Real latencies are rarely constant: a LAN round trip is tight, a disk read has a
long tail, a WAN hop is a floor plus noise. Each distribution here is a small
frozen object with ``sample(rng) -> seconds`` and ``mean_s``; the caller owns
the ``random.Random`` so that every component draws from its own seeded stream.

    >>> import random
    >>> Exponential(mean_s=0.005).sample(random.Random(1)) > 0
    True

A bare number anywhere a distribution is expected means ``Constant``.
``jitter_s`` adds uniform noise in [0, jitter_s) to any distribution.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ._errors import ConfigError, check_positive

__all__ = [
    "Distribution",
    "Constant",
    "Uniform",
    "Exponential",
    "LogNormal",
    "Empirical",
    "Jittered",
    "as_distribution",
]


class Distribution:
    """Base: ``sample(rng)`` returns a non-negative number of seconds."""

    mean_s: float

    def sample(self, rng: random.Random) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def scaled(self, factor: float) -> "Distribution":
        """The same shape, ``factor`` times longer (a slow host, a faster core)."""
        return Scaled(self, factor)

    def jittered(self, jitter_s: float) -> "Distribution":
        return Jittered(self, jitter_s)


@dataclass(frozen=True)
class Constant(Distribution):
    value_s: float

    def __post_init__(self) -> None:
        check_positive("Constant value_s", self.value_s, allow_zero=True)

    @property
    def mean_s(self) -> float:
        return self.value_s

    def sample(self, rng: random.Random) -> float:
        return self.value_s


@dataclass(frozen=True)
class Uniform(Distribution):
    low_s: float
    high_s: float

    def __post_init__(self) -> None:
        check_positive("Uniform low_s", self.low_s, allow_zero=True)
        check_positive("Uniform high_s", self.high_s, allow_zero=True)
        if self.high_s < self.low_s:
            raise ConfigError(f"Uniform high_s must be >= low_s ({self.low_s!r}), got {self.high_s!r}")

    @property
    def mean_s(self) -> float:
        return (self.low_s + self.high_s) / 2

    def sample(self, rng: random.Random) -> float:
        return self.low_s + (self.high_s - self.low_s) * rng.random()


@dataclass(frozen=True)
class Exponential(Distribution):
    mean_s: float

    def __post_init__(self) -> None:
        check_positive("Exponential mean_s", self.mean_s)

    def sample(self, rng: random.Random) -> float:
        return -self.mean_s * math.log(1.0 - rng.random())


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal with the given median and shape ``sigma`` (0.5 is a moderate tail)."""

    median_s: float
    sigma: float = 0.5

    def __post_init__(self) -> None:
        check_positive("LogNormal median_s", self.median_s)
        check_positive("LogNormal sigma", self.sigma, allow_zero=True)

    @property
    def mean_s(self) -> float:
        return self.median_s * math.exp(self.sigma**2 / 2)

    def sample(self, rng: random.Random) -> float:
        return self.median_s * math.exp(self.sigma * rng.gauss(0.0, 1.0))


@dataclass(frozen=True)
class Empirical(Distribution):
    """Resamples measured values (seconds), interpolating between order statistics."""

    samples_s: tuple[float, ...]
    _sorted: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = tuple(self.samples_s)
        if not values:
            raise ConfigError("Empirical samples_s must not be empty, got ()")
        for v in values:
            check_positive("Empirical sample", v, allow_zero=True)
        object.__setattr__(self, "samples_s", values)
        object.__setattr__(self, "_sorted", tuple(sorted(values)))

    @property
    def mean_s(self) -> float:
        # the mean of what ``sample`` draws: uniform along the polyline through the
        # order statistics, so the two extremes count half (not the plain sample mean)
        xs = self._sorted
        if len(xs) == 1:
            return xs[0]
        return (sum(xs) - (xs[0] + xs[-1]) / 2) / (len(xs) - 1)

    def sample(self, rng: random.Random) -> float:
        xs = self._sorted
        if len(xs) == 1:
            return xs[0]
        pos = rng.random() * (len(xs) - 1)
        i = int(pos)
        return xs[i] + (xs[i + 1] - xs[i]) * (pos - i) if i + 1 < len(xs) else xs[i]


@dataclass(frozen=True)
class Jittered(Distribution):
    base: Distribution
    jitter_s: float

    def __post_init__(self) -> None:
        check_positive("jitter_s", self.jitter_s, allow_zero=True)

    @property
    def mean_s(self) -> float:
        return self.base.mean_s + self.jitter_s / 2

    def sample(self, rng: random.Random) -> float:
        return self.base.sample(rng) + self.jitter_s * rng.random()


@dataclass(frozen=True)
class Scaled(Distribution):
    base: Distribution
    factor: float

    def __post_init__(self) -> None:
        check_positive("scale factor", self.factor)

    @property
    def mean_s(self) -> float:
        return self.base.mean_s * self.factor

    def sample(self, rng: random.Random) -> float:
        return self.base.sample(rng) * self.factor


def as_distribution(value, name: str = "latency") -> Distribution:
    """Accept a Distribution or a number of seconds (a constant); reject anything else."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0:
            raise ConfigError(f"{name} must be >= 0 seconds, got {value!r}")
        check_positive(name, value, allow_zero=True)  # finite: inf and 10**400 are not durations
        return Constant(float(value))
    raise ConfigError(f"{name} must be a number of seconds or a Distribution, got {value!r}")
