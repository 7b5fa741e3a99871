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


def check_positive(name: str, value, *, allow_zero: bool = False, allow_inf: bool = False) -> None:
    """``value`` must be a real number > 0 (>= 0 with ``allow_zero``), finite unless ``allow_inf``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if ok and not allow_inf and value == float("inf"):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def check_probability(name: str, value) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    if not ok:
        raise ConfigError(f"{name} must be between 0 and 1, got {value!r}")
