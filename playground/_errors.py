"""The project's exceptions.

    PlaygroundError
    ├── ConfigError (also a ValueError)   bad value in a config or wiring call
    │   └── WiringError                    the pieces do not fit together (unknown host, cycle, ...)
    └── RequestError                       a simulated request failed; ``kind`` says how
        ├── Timeout            ("timeout")  no answer before the deadline
        ├── Refused            ("refused")  the host is down: connection refused
        ├── Reset              ("reset")    the host crashed while holding the request
        └── Dropped            ("dropped")  the network lost the message (counted, surfaced as timeout)

Configuration errors are raised when a topology is wired, never deep inside a
run. Request errors are what simulated clients see; the engine counts them by
``kind`` and never lets one escape and crash the simulation.
"""
from __future__ import annotations

__all__ = [
    "PlaygroundError",
    "ConfigError",
    "WiringError",
    "RequestError",
    "Timeout",
    "Refused",
    "Reset",
    "Dropped",
]


class PlaygroundError(Exception):
    """Base class of every error the playground raises on purpose."""


class ConfigError(PlaygroundError, ValueError):
    """A configuration value is out of range; the message names the value and the constraint."""


class WiringError(ConfigError):
    """Components were wired in a way that cannot work (unknown host, no backends, a loop)."""


class RequestError(PlaygroundError):
    """A simulated request failed. ``kind`` is the counter it is reported under."""

    kind = "error"


class Timeout(RequestError):
    kind = "timeout"


class Refused(RequestError):
    kind = "refused"


class Reset(RequestError):
    kind = "reset"


class Dropped(RequestError):
    kind = "dropped"


def check(condition: bool, message: str, error: type[ConfigError] = ConfigError) -> None:
    """Raise ``error(message)`` unless ``condition``; used by every config's validation."""
    if not condition:
        raise error(message)


_MAX_FLOAT = 1.7976931348623157e308


def shown(value) -> str:
    """``repr(value)``, but a huge integer is shown by its size, not by its 400 digits."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def counted(n: int, noun: str) -> str:
    """``"1 host"``, ``"3 hosts"``: a count and its noun, plural unless it is one."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def check_positive(name: str, value, *, allow_zero: bool = False, allow_inf: bool = False) -> None:
    """``value`` must be a real number > 0 (>= 0 with ``allow_zero``), finite unless ``allow_inf``.

    NaN is refused; so is an integer too large to be a float (``10**400``), as not finite.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if ok and not allow_inf and (value == float("inf") or value > _MAX_FLOAT):
        raise ConfigError(f"{name} must be finite, got {shown(value)}")
    if ok and allow_inf and value > _MAX_FLOAT and value != float("inf"):
        raise ConfigError(f"{name} must be a float or inf, got {shown(value)}")
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        raise ConfigError(f"{name} must be {'' if number else 'a number '}{bound}, got {shown(value)}")


def check_at_most(name: str, value, limit: float, unit: str, why: str) -> None:
    """``value`` must be <= ``limit`` (one of ``playground.limits``); the message says why."""
    if value > limit:
        bound = f"{limit:,}" if isinstance(limit, int) else f"{limit:,.10g}"
        raise ConfigError(f"{name} must be at most {bound}{unit} ({why}), got {shown(value)}")


def check_at_least(name: str, value, limit: float, unit: str, why: str) -> None:
    """``value`` must be >= ``limit`` (one of ``playground.limits``); the message says why."""
    if value < limit:
        raise ConfigError(f"{name} must be at least {limit:g}{unit} ({why}), got {shown(value)}")


def check_probability(name: str, value) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    if not ok:
        raise ConfigError(f"{name} must be between 0 and 1, got {value!r}")
