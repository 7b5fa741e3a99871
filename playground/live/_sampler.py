"""Turning a running simulation into the dashboard's figures, once a second.

A dashboard wants *recent* figures - what happened in the last second - while
the engine keeps figures since the run started (counters, time averages,
latency histograms). The sampler keeps the previous reading of each host and
takes differences: throughput and errors from counters; utilisation and
queue length from time averages (a mean since the start times the elapsed
time is an area, and the difference of two areas over the interval is the
mean over the interval); mean latency from the histogram's sum and count.
Per-host p50/p99 are since the start (an HDR histogram cannot be subtracted);
the clients' p50/p99 are per second, from the per-second buckets the loads
already keep.

The sampler also keeps memory flat however long the server runs: it keeps a
bounded history of points, and drops the loads' per-second buckets it has
read (so a live run's final report carries only the last seconds' series).

Pure: it reads the ``Sim`` and returns plain dicts; nothing here waits.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from hdrh.histogram import HdrHistogram

if TYPE_CHECKING:
    from playground import Sim
    from playground._metrics import ClientMetrics

__all__ = ["Sampler", "ejected_hosts", "hit_counts"]

_US = 1_000_000
_KEEP_BUCKETS = 3


@dataclass
class _Mark:
    t_s: float
    served: int
    errors: int
    util_area: float
    queue_area: float
    latency_sum_s: float
    latency_count: int
    hits: int
    lookups: int


def ejected_hosts(sim: "Sim") -> set[str]:
    """Backends some balancer has taken out of rotation (health checks, outlier ejection).

    Read from what balancers report: a ``detail()`` entry ``"ejected"`` (names),
    or an ``ejected_backends()`` method.
    """
    out: set[str] = set()
    for node in sim.net.hosts.values():
        method = getattr(node, "ejected_backends", None)
        names: Iterable = ()
        if callable(method):
            try:
                names = method()
            except Exception:  # a balancer bug must not break the dashboard
                names = ()
        else:
            try:
                names = node.detail().get("ejected", ())
            except Exception:
                names = ()
        if isinstance(names, (list, tuple, set, frozenset)):
            out.update(n for n in names if isinstance(n, str))
    return out


def hit_counts(detail: dict[str, Any]) -> tuple[int, int] | None:
    """(hits, lookups) from a cache-like host's counters, or None if it keeps none."""
    hits = detail.get("hits")
    misses = detail.get("misses")
    if isinstance(hits, int) and isinstance(misses, int):
        return hits, hits + misses
    return None


def _plain(value):
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value][:20]
    return str(value)[:80]


class Sampler:
    """Reads a running ``Sim`` and its client metrics; ``sample()`` returns one snapshot."""

    def __init__(self, history_points: int = 600) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=history_points)
        self._marks: dict[str, _Mark] = {}
        self._next_bucket: dict[int, int] = {}

    def reset(self) -> None:
        self.history.clear()
        self._marks.clear()
        self._next_bucket.clear()

    # -- clients: per-second points ------------------------------------------------
    def _client_points(self, metrics: list["ClientMetrics"], now_abs: float) -> list[dict[str, Any]]:
        if not metrics:
            return []
        start = metrics[0].start
        done = int((now_abs - start) / metrics[0].interval_s)  # buckets before this one are complete
        first = min(self._next_bucket.get(id(m), 0) for m in metrics)
        points = []
        for i in range(max(first, done - 30), done):
            ok = errors = 0
            hist = HdrHistogram(1, 3_600 * _US, 2)
            for m in metrics:
                if i < self._next_bucket.get(id(m), 0):
                    continue
                b = m._series.get(i)  # the per-second buckets ClientMetrics keeps
                if b is not None:
                    ok += b.ok
                    errors += b.errors
                    if b.ok:
                        hist.add(b.hist)
            p = hist.get_value_at_percentile
            points.append({"t_s": round((i + 1) * metrics[0].interval_s, 3), "ok_per_s": ok,
                           "errors_per_s": errors, "p50_ms": p(50) / 1000 if ok else None,
                           "p99_ms": p(99) / 1000 if ok else None})
        for m in metrics:
            self._next_bucket[id(m)] = max(self._next_bucket.get(id(m), 0), done)
            for i in [k for k in m._series if k < done - _KEEP_BUCKETS]:
                del m._series[i]  # keep memory flat in an open-ended run
        return points

    # -- hosts: differences since the last sample ------------------------------------------
    def _node(self, node, now_s: float, ejected: set[str]) -> dict[str, Any]:
        s = node.stats()
        errors = s.rejected + s.refused + s.reset + s.handler_errors
        hc = hit_counts(s.detail)
        hits, lookups = hc if hc else (0, 0)
        mark = _Mark(now_s, s.served, errors, s.utilisation * now_s, s.mean_queue * now_s,
                     s.residence.mean_s * s.residence.count, s.residence.count, hits, lookups)
        prev = self._marks.get(node.name)
        self._marks[node.name] = mark
        if prev is None or now_s <= prev.t_s:
            dt = 0.0
        else:
            dt = now_s - prev.t_s
        if dt > 0:
            util = min(1.0, max(0.0, (mark.util_area - prev.util_area) / dt))
            queue = max(0.0, (mark.queue_area - prev.queue_area) / dt)
            thr = (mark.served - prev.served) / dt
            err = max(0, mark.errors - prev.errors) / dt
            n = mark.latency_count - prev.latency_count
            mean_ms = (mark.latency_sum_s - prev.latency_sum_s) / n * 1000 if n > 0 else None
            looked = mark.lookups - prev.lookups
            hit_ratio = (mark.hits - prev.hits) / looked if hc and looked > 0 else None
        else:
            util, queue, thr, err = s.utilisation, s.mean_queue, 0.0, 0.0
            mean_ms = s.residence.mean_s * 1000 if s.residence.count else None
            hit_ratio = hits / lookups if hc and lookups else None
        if not s.up:
            state = "down"
        elif node.name in ejected:
            state = "ejected"
        else:
            state = "up"
        return {
            "kind": s.kind, "state": state, "util": round(util, 4), "queue": round(queue, 3),
            "in_flight": s.in_flight, "throughput_per_s": round(thr, 2), "errors_per_s": round(err, 2),
            "mean_ms": None if mean_ms is None else round(mean_ms, 3),
            "p50_ms": round(s.residence.p50_s * 1000, 3), "p99_ms": round(s.residence.p99_s * 1000, 3),
            "served": s.served, "errors": errors,
            "hit_ratio": None if hit_ratio is None else round(hit_ratio, 4),
            "detail": {k: _plain(v) for k, v in list(s.detail.items())[:12]},
        }

    # -- one snapshot -----------------------------------------------------------------------
    def sample(self, sim: "Sim", metrics: list["ClientMetrics"]) -> dict[str, Any]:
        """Figures now; also appends the newly completed seconds to ``history``."""
        now_s = sim.now
        ejected = ejected_hosts(sim)
        nodes = {name: self._node(node, now_s, ejected)
                 for name, node in sim.net.hosts.items() if node.kind != "client"}
        points = self._client_points(metrics, sim.sched.now)
        self.history.extend(points)
        totals = {"sent": 0, "ok": 0, "failed": 0, "in_flight": 0}
        errors: dict[str, int] = {}
        for m in metrics:
            totals["sent"] += m.sent
            totals["ok"] += m.ok
            totals["in_flight"] += m.in_flight
            for k, v in m.errors.items():
                errors[k] = errors.get(k, 0) + v
        totals["failed"] = sum(errors.values())
        faults = sim.net.faults
        return {
            "t_s": round(now_s, 3),
            "running": sim.running,
            "nodes": nodes,
            "clients": {**totals, "errors": errors, "last": self.history[-1] if self.history else None},
            "points": points,
            "links": {k: [list(p) for p in v] for k, v in faults.items()},
            "events": [[round(t, 3), d] for t, d in sim._events[-200:]],
        }
