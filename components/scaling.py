"""Scaling policies: how many servers a group should have, given what it measured.

An autoscaler (an AWS Auto Scaling group, a Kubernetes HorizontalPodAutoscaler)
looks at its fleet every few seconds and asks a policy for a *desired* size.
Three policies cover what real systems use:

* ``TargetTracking(cpu_utilisation=0.6)`` - keep a metric near a target: the
  desired size is ``ceil(size * observed / target)`` (the HPA's formula). It
  scales in only when the metric is clearly below the target (a 10% dead band,
  as the HPA's tolerance), so the fleet does not flap around the target.
* ``StepScaling(scale_out=((0.7, 1), (0.9, 3)), scale_in=((0.3, 1),))`` - fixed
  steps: above 70% add one server, above 90% add three; below 30% remove one.
* ``QueueDepth(target_per_server=100, queue="jobs")`` - a backlog per server:
  ``ceil(backlog / target)``, the backlog being a ``MessageQueue``'s visible
  messages (scaling workers on SQS depth) or, without ``queue``, the requests
  waiting and in service on the servers themselves.

Each is a pure strategy object with one method, ``decide(metrics) ->
(desired, reason)``; the ``AutoScaler`` clamps the answer to its min and max
and applies boot time and cooldowns. Left out: predictive scaling, scheduled
actions, and warm pools.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from playground import ConfigError
from playground._errors import check_positive

__all__ = ["FleetMetrics", "ScalingPolicy", "TargetTracking", "StepScaling", "QueueDepth"]


@dataclass(frozen=True)
class FleetMetrics:
    """What the autoscaler measured over its last interval.

    ``size`` counts servers in service and booting (capacity already paid for);
    ``cpu_utilisation`` is the mean busy share of the in-service servers' cores;
    ``in_system`` the requests queued and in service on them; ``queue_depth`` the
    visible messages of the policy's queue (0 without one).
    """

    size: int
    in_service: int
    booting: int
    cpu_utilisation: float
    in_system: int
    queue_depth: int = 0


class ScalingPolicy(Protocol):
    """Anything with ``decide(metrics) -> (desired size, reason)``."""

    def decide(self, m: FleetMetrics) -> tuple[int, str]: ...


def _fraction(name: str, value) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
    if not ok:
        raise ConfigError(f"{name} must be between 0 (excluded) and 1, got {value!r}")


class TargetTracking:
    """Keep the fleet's CPU utilisation near ``cpu_utilisation`` (0..1).

        >>> TargetTracking(cpu_utilisation=0.6).decide(FleetMetrics(4, 4, 0, 0.9, 0))
        (6, 'cpu 90% > target 60%')
    """

    def __init__(self, cpu_utilisation: float = 0.6, *, tolerance: float = 0.1) -> None:
        _fraction("cpu_utilisation", cpu_utilisation)
        if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 <= tolerance < 1):
            raise ConfigError(f"tolerance must be >= 0 and < 1, got {tolerance!r}")
        self.target = float(cpu_utilisation)
        self.tolerance = float(tolerance)

    def decide(self, m: FleetMetrics) -> tuple[int, str]:
        u = m.cpu_utilisation
        if m.in_service == 0:
            return m.size, "no server in service yet"
        ratio = u / self.target
        if abs(ratio - 1) <= self.tolerance:
            return m.size, f"cpu {u:.0%} near target {self.target:.0%}"
        desired = math.ceil(m.in_service * ratio - 1e-9)
        if desired > m.size:
            return desired, f"cpu {u:.0%} > target {self.target:.0%}"
        if desired < m.in_service and m.booting == 0:
            return desired, f"cpu {u:.0%} < target {self.target:.0%}"
        return m.size, f"cpu {u:.0%}"

    def __repr__(self) -> str:
        return f"TargetTracking(cpu_utilisation={self.target:g})"


def _steps(name: str, steps) -> tuple[tuple[float, int], ...]:
    try:
        pairs = tuple((t, n) for t, n in steps)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be pairs (cpu_utilisation, servers), got {steps!r}") from None
    for t, n in pairs:
        _fraction(f"{name} threshold", t)
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
            raise ConfigError(f"{name} servers must be an integer >= 1, got {n!r}")
    return pairs


class StepScaling:
    """Add servers by steps above thresholds of CPU utilisation, remove them below.

        >>> StepScaling(scale_out=((0.7, 1), (0.9, 3))).decide(FleetMetrics(4, 4, 0, 0.95, 0))
        (7, 'cpu 95% >= 90%: +3')

    ``scale_out``: pairs (threshold, servers to add), the highest threshold
    reached wins. ``scale_in``: pairs (threshold, servers to remove), the lowest
    threshold the utilisation is under wins. Defaults: +1 at 70%, +3 at 90%;
    -1 under 30%.
    """

    def __init__(self, scale_out=((0.7, 1), (0.9, 3)), scale_in=((0.3, 1),)) -> None:
        self.scale_out = tuple(sorted(_steps("scale_out", scale_out)))
        self.scale_in = tuple(sorted(_steps("scale_in", scale_in)))
        if not self.scale_out:
            raise ConfigError(f"scale_out must have at least one step, got {scale_out!r}")
        if self.scale_in and self.scale_in[-1][0] >= self.scale_out[0][0]:
            raise ConfigError(f"scale_in thresholds must be below the scale_out ones, got "
                              f"scale_in={scale_in!r}, scale_out={scale_out!r}")

    def decide(self, m: FleetMetrics) -> tuple[int, str]:
        u = m.cpu_utilisation
        if m.in_service == 0:
            return m.size, "no server in service yet"
        for threshold, n in reversed(self.scale_out):
            if u >= threshold:
                return m.size + n, f"cpu {u:.0%} >= {threshold:.0%}: +{n}"
        if m.booting == 0:
            for threshold, n in self.scale_in:
                if u < threshold:
                    return m.in_service - n, f"cpu {u:.0%} < {threshold:.0%}: -{n}"
        return m.size, f"cpu {u:.0%}"

    def __repr__(self) -> str:
        return f"StepScaling(scale_out={self.scale_out!r}, scale_in={self.scale_in!r})"


class QueueDepth:
    """``target_per_server`` waiting items per server: a queue's backlog, or the servers' own requests.

        >>> QueueDepth(target_per_server=100, queue="jobs").decide(FleetMetrics(2, 2, 0, 0.5, 0, 950))
        (10, 'backlog 950 > 100 per server')
    """

    def __init__(self, target_per_server: float, *, queue: str | None = None) -> None:
        check_positive("target_per_server", target_per_server)
        if queue is not None and not (isinstance(queue, str) and queue):
            raise ConfigError(f"queue must be the name of a MessageQueue host or None, got {queue!r}")
        self.target = float(target_per_server)
        self.queue = queue

    def decide(self, m: FleetMetrics) -> tuple[int, str]:
        backlog = m.queue_depth if self.queue is not None else m.in_system
        desired = math.ceil(backlog / self.target - 1e-9)
        per = f"{self.target:g} per server"
        if desired > m.size:
            return desired, f"backlog {backlog} > {per}"
        if desired < m.in_service and m.booting == 0:
            return desired, f"backlog {backlog} < {per}"
        return m.size, f"backlog {backlog}"

    def __repr__(self) -> str:
        return f"QueueDepth(target_per_server={self.target:g}, queue={self.queue!r})"
