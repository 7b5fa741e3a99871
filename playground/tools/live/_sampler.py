"""Turning a running simulation into the dashboard's figures, once a second.

A dashboard wants *recent* figures - what happened in the last second - while
the engine keeps figures since the run started (counters, time averages,
latency histograms). The sampler keeps the previous reading of each host and
takes differences: throughput and errors from counters; utilisation and
queue length from time averages (a mean since the start times the elapsed
time is an area, and the difference of two areas over the interval is the
mean over the interval); mean latency from the histogram's sum and count.
Per-host p50/p99 are since the start (an HDR histogram cannot be subtracted);
the clients' figures are per second, from the per-second series the loads
already keep (percentiles of separate streams cannot be merged, so a point's
p50/p99 are those of the stream that completed most requests that second).
The history kept here is bounded (``history_points``). In real time a
snapshot also says how far the simulation is behind the wall clock
(``lag``: it pauses when this machine cannot keep up, see ``_clock``).

Pure: it reads the ``Sim`` and returns plain dicts; nothing here waits.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground import Sim
    from playground._metrics import ClientMetrics, SeriesRow

__all__ = ["Sampler", "ejected_hosts", "hit_counts"]



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
    """Backends some balancer has taken out of rotation (failed health checks, outlier ejection).

    Read from what balancers report in ``detail()``: ``"down"`` (the backends
    it will not use now) or ``"ejected"``; a backend that is itself down is
    shown as down, not ejected.
    """
    out: set[str] = set()
    for node in sim.net.hosts.values():
        try:
            detail = node.detail()
        except Exception:  # a component bug must not break the dashboard
            continue
        for key in ("down", "ejected"):
            names = detail.get(key, ())
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


def _second(metrics: "ClientMetrics", i: int) -> "SeriesRow | None":
    """Second ``i`` of a load's per-second series (one row, not the whole series)."""
    buckets = getattr(metrics, "_series", None)
    if isinstance(buckets, dict):
        b = buckets.get(i)
        return b.row(i * metrics.interval_s) if b is not None else None
    t_s = i * metrics.interval_s  # fallback: the public series, read whole
    return next((r for r in metrics.series() if abs(r.t_s - t_s) < 1e-9), None)


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
        self._next_second = 0

    def reset(self) -> None:
        self.history.clear()
        self._marks.clear()
        self._next_second = 0

    # -- clients: per-second points ------------------------------------------------
    def _client_points(self, metrics: list["ClientMetrics"], now_abs: float) -> list[dict[str, Any]]:
        if not metrics:
            return []
        interval = metrics[0].interval_s
        done = int((now_abs - metrics[0].start) / interval)  # seconds before this one are complete
        points = []
        for i in range(max(self._next_second, done - 30), done):
            rows = [r for r in (_second(m, i) for m in metrics) if r is not None]
            ok = sum(r.ok for r in rows)
            busiest = max(rows, key=lambda r: r.ok, default=None)
            points.append({"t_s": round((i + 1) * interval, 3), "ok_per_s": ok,
                           "errors_per_s": sum(r.errors for r in rows),
                           "p50_ms": round(busiest.p50_s * 1000, 3) if ok else None,
                           "p99_ms": round(busiest.p99_s * 1000, 3) if ok else None})
        self._next_second = max(self._next_second, done)
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
            # the host's top error messages (NodeStats.errors), for the dashboard to show
            "top_errors": [{"error": r.error, "message": r.message, "count": r.count, "first_s": r.first_s,
                            "last_s": r.last_s, "path": r.path, "hint": r.hint} for r in s.errors[:5]],
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
            "lag": sim.sched.lag() if sim.sched.realtime else None,
        }
