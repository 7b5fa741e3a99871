"""What a run measures for queueing theory: each host's queues, sampled in batches.

A host is, to queueing theory, one or more *stations*: c servers (cores, disk
channels, cache slots) and a line of requests waiting for one. ``Node.stations()``
names them: how many servers, the time-weighted count of busy servers and of
waiting requests the engine already keeps, how many services completed, how
many arrivals were turned away, how much room the line has, and the service
time distribution when the component declares one (an ``AppServer`` without a
handler spends exactly its ``cpu_s`` per request).

``StationSampler`` reads those integrals at a few dozen moments of the run (a
scheduler callback each, nothing on the request path) and turns the
differences into batches: utilisation, queue and completions per slice of
time. Batch means give the run's own confidence interval for each figure, in
flat memory: when a run without a set end fills 64 batches, neighbours merge and
the interval doubles (the classic batch-means doubling). A warm-up leaves out the
batches that begin before it ends. ``StationMeasure`` is the
frozen result that the report keeps and ``report.theory()`` reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from ._distributions import Constant, Distribution, Empirical, Exponential, Jittered, LogNormal, Scaled, Uniform
from ._metrics import TimeWeighted

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["Station", "StationMeasure", "StationSampler", "service_moments"]

BATCHES = 32  # slices of a run of known length
MAX_BATCHES = 64  # a run without a set end merges neighbours beyond this


@dataclass(frozen=True)
class Station:
    """One queue of a host, as ``Node.stations()`` describes it to the theory.

    ``waiting`` may be several integrals (a request waits for a worker, then for a
    core: one line as far as the request can tell). ``service`` is the declared
    ``(mean_s, scv)`` when the component knows it (or a function giving it at the
    end of the run), else ``None``: the theory then measures the mean and assumes
    exponential service.
    ``capacity`` is the most requests the station holds, in service and waiting
    (``None``: unbounded) - beyond it arrivals are rejected (M/M/c/K).
    """

    name: str
    servers: int
    busy: TimeWeighted
    waiting: tuple[TimeWeighted, ...]
    completions: Callable[[], int]
    rejected: Callable[[], int] = lambda: 0
    capacity: int | None = None
    service: tuple[float, float] | Callable[[], tuple[float, float] | None] | None = None
    discipline: str = "fifo"


@dataclass(frozen=True)
class StationMeasure:
    """A station's figures over a run's measurement window, with its batches.

    Each batch is ``(seconds, busy server-seconds, waiting request-seconds,
    completions, rejections, arrivals)``; arrivals count those still in the station
    at the batch's end (a saturated line grows: its completions understate the load).
    """

    host: str
    station: str
    servers: int
    capacity: int | None
    discipline: str
    declared_mean_s: float | None
    declared_scv: float | None
    window_s: float
    batches: tuple[tuple[float, float, float, int, int, int], ...]

    @property
    def arrivals(self) -> int:
        return sum(b[5] for b in self.batches)

    @property
    def completions(self) -> int:
        return sum(b[3] for b in self.batches)

    @property
    def rejected(self) -> int:
        return sum(b[4] for b in self.batches)

    @property
    def busy_s(self) -> float:
        return sum(b[1] for b in self.batches)

    @property
    def waiting_s(self) -> float:
        return sum(b[2] for b in self.batches)


def _area(tw: TimeWeighted, now: float) -> float:
    """The integral of ``tw`` from its start to ``now``."""
    return tw._area + tw.value * (now - tw._since)


class StationSampler:
    """Reads every host's stations at fixed moments of a run (scheduler callbacks)."""

    def __init__(self, sched, hosts: Sequence["Node"], start: float, duration_s: float) -> None:
        self.sched = sched
        self.start = start
        self.end = start + duration_s
        self.step = duration_s / BATCHES if math.isfinite(duration_s) else 1.0
        self.stations: list[tuple[str, Station]] = [(h.name, st) for h in hosts for st in h.stations()]
        self._last = [self._read(st, start) for _, st in self.stations]
        self._t_last = start
        self._end = start
        self._batches: list[list[tuple[float, float, float, int, int, int]]] = [[] for _ in self.stations]
        self._starts: list[float] = []  # when each batch began (the same for every station)
        self._timer = None
        self._schedule()

    @staticmethod
    def _read(st: Station, now: float) -> tuple[float, float, int, int, float]:
        inside = st.busy.value + sum(w.value for w in st.waiting)
        return (_area(st.busy, now), sum(_area(w, now) for w in st.waiting), st.completions(), st.rejected(), inside)

    def _schedule(self) -> None:
        nxt = self._t_last + self.step
        if nxt < self.end - 1e-12:
            self._timer = self.sched.call_at(nxt, self._tick)
        else:
            self._timer = None

    def _tick(self, _=None) -> None:
        self._cut(self.sched.now)
        self._schedule()

    def _cut(self, now: float) -> None:
        dt = now - self._t_last
        if dt <= 0:
            return
        self._starts.append(self._t_last)
        for i, (_, st) in enumerate(self.stations):
            cur = self._read(st, now)
            prev = self._last[i]
            arrived = int(round(cur[2] - prev[2] + cur[3] - prev[3] + cur[4] - prev[4]))
            delta = (dt, cur[0] - prev[0], cur[1] - prev[1], cur[2] - prev[2], cur[3] - prev[3], max(arrived, 0))
            # a counter that went back (a component reset it) spoils the batch: it counts as empty
            self._batches[i].append(delta if min(delta[1:5]) >= 0 else (dt, 0.0, 0.0, 0, 0, 0))
            self._last[i] = cur
        self._t_last = now
        if len(self._starts) >= MAX_BATCHES:
            self._batches = [[_merge(b[j], b[j + 1]) for j in range(0, len(b) - 1, 2)] + b[len(b) - len(b) % 2:]
                             for b in self._batches]
            self._starts = self._starts[::2]
            self.step *= 2

    def finish(self, now: float) -> None:
        """Close the last batch at ``now`` (the end of the load)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cut(now)
        self._end = now

    def measures(self, from_s: float) -> list[StationMeasure]:
        """The stations' figures over the batches that start at or after ``from_s`` (the warm-up's end)."""
        keep = [i for i, t in enumerate(self._starts) if t >= from_s - 1e-9]
        first = self._starts[keep[0]] if keep else self._end
        out = []
        for (host, st), all_batches in zip(self.stations, self._batches):
            batches = [all_batches[i] for i in keep]
            service = st.service() if callable(st.service) else st.service
            mean, scv = service if service is not None else (None, None)
            out.append(StationMeasure(host, st.name, st.servers, st.capacity, st.discipline, mean, scv,
                                      self._end - first, tuple(batches)))
        return out


def _merge(a, b):
    return tuple(x + y for x, y in zip(a, b))


def service_moments(dist: Distribution) -> tuple[float, float] | None:
    """``(mean_s, scv)`` of a service-time distribution, when the shape is known."""
    mean = dist.mean_s
    if isinstance(dist, Constant):
        return mean, 0.0
    if isinstance(dist, Exponential):
        return mean, 1.0
    if isinstance(dist, Uniform):
        return (mean, ((dist.high_s - dist.low_s) / mean) ** 2 / 12) if mean > 0 else (0.0, 0.0)
    if isinstance(dist, LogNormal):
        return mean, math.expm1(dist.sigma**2)
    if isinstance(dist, Empirical):
        xs = dist.samples_s
        if mean <= 0 or len(xs) < 2:
            return mean, 0.0
        m = sum(xs) / len(xs)
        return mean, sum(((x - m) / mean) ** 2 for x in xs) / len(xs)  # ratios first: no underflow
    if isinstance(dist, Scaled):
        inner = service_moments(dist.base)
        return None if inner is None else (mean, inner[1])
    if isinstance(dist, Jittered):
        inner = service_moments(dist.base)
        if inner is None or mean <= 0:
            return None
        return mean, inner[1] * (inner[0] / mean) ** 2 + (dist.jitter_s / mean) ** 2 / 12
    return None


def mixture_moments(parts: Sequence[tuple[float, tuple[float, float] | None]]) -> tuple[float, float] | None:
    """``(mean_s, scv)`` of a mix: ``parts`` are (weight, moments) - reads and writes of a database."""
    total = sum(w for w, _ in parts)
    if total <= 0 or any(m is None for w, m in parts if w > 0):
        return None
    mean = sum(w * m[0] for w, m in parts if w > 0) / total
    if not mean > 0:
        return 0.0, 0.0
    # E[S^2] / E[S]^2 - 1, each part's mean taken relative to the mix's first: a mean of 1e-170 s
    # would underflow to zero when squared
    relative = sum(w * (m[0] / mean) ** 2 * (1 + m[1]) for w, m in parts if w > 0) / total
    return mean, max(relative - 1, 0.0)
