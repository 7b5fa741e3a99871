"""Theory beside every run: what queueing theory predicts for the run that was simulated.

Capacity tools such as JMT keep the analytic answer in one program and the
simulation in another. Here every report carries both: ``report.theory()``
takes the run's own measured arrivals and service times, station by station
(``playground._stations``), and asks the closed forms what they predict:

* utilisation by the utilisation law, U = X S / c, from the *offered* load;
* mean time in the station from the station's model - M/M/c (Erlang C) with
  exponential or unknown service, M/G/1 by Pollaczek-Khinchine where the
  component declares its service distribution, M/G/c by Allen-Cunneen, and
  M/M/c/K where the line is bounded (the share of arrivals turned away) -
  unless M/M/c/K turns fewer than 0.1% away, when the bound is left out and
  the service distribution's shape kept (M/G/c);
* for the topology, the operational bounds: each station's service demand per
  request D = V S (visit ratio times service time), the bottleneck (largest
  demand per server), the throughput no topology of these demands can exceed,
  X <= min c/D, and the population at which it saturates; for closed-loop users,
  mean value analysis (exact, or Schweitzer's approximation for large N).

Each prediction sits beside the measured figure and the run's own 99%
confidence interval (batch means over the run). Where they differ by more than
that interval, the *divergence* column names what the analytic model leaves out
and the report can see: retries, timeouts, crashes and OOM restarts,
health-check ejection, round robin smoothing the arrivals, closed-loop users,
a fault that slowed a host, saturation. Theory and simulation then explain each
other: agreement says the run is a queue like any other; disagreement says which
effect of a real system made the difference.
"""
from __future__ import annotations

import functools
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table

from ._queueing import mgc, mmck, mva, student_t_quantile

if TYPE_CHECKING:
    from ._report import Report
    from ._stations import StationMeasure

__all__ = ["Theory", "StationTheory", "Forwarding", "Bounds", "ClosedLoopTheory", "theory_of", "describe_load"]

CONFIDENCE = 0.99
ASSUMED_SCV = 1.0  # service variability when a component does not declare it: exponential
UNBOUNDED_BELOW = 1e-3  # a bounded station whose M/M/c/K blocking is below this is modelled as unbounded (M/G/c)


def describe_load(load) -> dict[str, Any]:
    """What a load offers, for the theory: open or closed, users, rate per user, think time."""
    d: dict[str, Any] = {"kind": "closed" if hasattr(load, "think_time_s") else "open", "target": load.target,
                         "retries": load.retries, "timeout_s": load.timeout_s}
    if hasattr(load, "users"):
        d["users"] = load.users
    if hasattr(load, "per_user"):
        d["requests_per_user_per_s"] = load.per_user
    if hasattr(load, "think_time_s"):
        d["think_mean_s"] = load.think_time_s.mean_s
    return d


@dataclass(frozen=True)
class StationTheory:
    """One station: measured figures, the 99% interval of the run, and what the model predicts."""

    host: str
    station: str
    model: str
    servers: int
    offered_per_s: float
    throughput_per_s: float
    service_s: float
    scv: float
    scv_source: str  # "declared" by the component, or "assumed" exponential
    rho: float  # offered utilisation, lambda S / c (>= 1: saturated)
    utilisation: float
    utilisation_ci: float
    predicted_utilisation: float
    wait_s: float
    time_in_system_s: float
    time_in_system_ci: float
    predicted_time_in_system_s: float | None  # None: no steady state (rho >= 1 with an unbounded line)
    blocked: float
    predicted_blocked: float
    agrees: bool
    divergence: str

    @property
    def name(self) -> str:
        return f"{self.host}.{self.station}"


@dataclass(frozen=True)
class Forwarding:
    """A host that passes requests on: attempts sent downstream per request served (1.00 in the model)."""

    host: str
    visits: float
    predicted_visits: float
    agrees: bool
    divergence: str


@dataclass(frozen=True)
class Bounds:
    """Bottleneck analysis over the run's measured service demands."""

    offered_per_s: float
    demands_s: dict[str, float]  # station -> seconds of service per request (V x S)
    bottleneck: str
    bottleneck_utilisation: float  # predicted at the offered load (>= 1: over capacity)
    max_throughput_per_s: float  # X <= min(c_i / D_i)
    users: int | None  # the population offered, when the loads say
    saturation_users: float | None  # the population at which the bottleneck saturates
    cache_hit_ratio: float | None


@dataclass(frozen=True)
class ClosedLoopTheory:
    """Mean value analysis of a closed-loop load, beside what it measured."""

    load: str
    users: int
    think_s: float
    other_delay_s: float  # time outside every station (network, waits the stations do not see)
    predicted_throughput_per_s: float
    throughput_per_s: float
    predicted_response_s: float
    response_s: float
    knee_users: float  # N* = (D + Z) / D_max: below it users rarely wait for each other
    exact: bool


@dataclass(frozen=True)
class Theory:
    """``report.theory()``: the analytic prediction beside what was simulated."""

    stations: tuple[StationTheory, ...]
    forwarding: tuple[Forwarding, ...] = ()
    bounds: Bounds | None = None
    closed_loops: tuple[ClosedLoopTheory, ...] = ()
    confidence: float = CONFIDENCE

    def station(self, name: str) -> StationTheory:
        """A row by ``"host.station"`` or by host name alone (its first station)."""
        for row in self.stations:
            if row.name == name or row.host == name:
                return row
        raise KeyError(f"no station {name!r} (stations: {', '.join(r.name for r in self.stations)})")

    @property
    def divergent(self) -> tuple[StationTheory | Forwarding, ...]:
        return tuple(r for r in (*self.stations, *self.forwarding) if not r.agrees)

    # -- output ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        from ._report import _plain

        return _plain(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def table(self, *, compact: bool = False) -> Table:
        t = Table(title="Theory vs measured" + ("" if compact else f" ({self.confidence:.0%} interval of the run)"),
                  title_justify="left")
        cols = ["station", "model", "rho", "util", "pred", "W ms", "±", "pred", "verdict"]
        for col in cols:
            t.add_column(col, justify="left" if col in ("station", "model", "verdict") else "right")
        for r in self.stations:
            pred_w = "∞" if r.predicted_time_in_system_s is None else f"{r.predicted_time_in_system_s * 1000:.2f}"
            verdict = "agrees" if r.agrees else r.divergence
            if compact and len(verdict) > 34:
                verdict = verdict[:33] + "…"
            t.add_row(r.name, r.model, f"{r.rho:.2f}", f"{r.utilisation:.0%}", f"{r.predicted_utilisation:.0%}",
                      f"{r.time_in_system_s * 1000:.2f}", f"{r.time_in_system_ci * 1000:.2f}", pred_w, verdict)
        for f in self.forwarding:
            t.add_row(f"{f.host} (forwards)", "visits/req", "", "", "", f"{f.visits:.3f}", "",
                      f"{f.predicted_visits:.3f}", "agrees" if f.agrees else f.divergence)
        return t

    def summary_lines(self) -> list[str]:
        lines = []
        b = self.bounds
        if b is not None:
            line = (f"bottleneck {b.bottleneck}: {b.demands_s[b.bottleneck] * 1000:.3g} ms of service per request, "
                    f"saturates at {b.max_throughput_per_s:,.0f} req/s (offered {b.offered_per_s:,.0f}/s, "
                    f"{b.bottleneck_utilisation:.0%} of it)")
            if b.saturation_users is not None:
                line += f"; at this rate per user, ~{_count(b.saturation_users)} users"
            lines.append(line)
        for c in self.closed_loops:
            lines.append(f"{c.load}: MVA predicts {c.predicted_throughput_per_s:,.1f} req/s and "
                         f"{c.predicted_response_s * 1000:.1f} ms for {c.users} users (measured "
                         f"{c.throughput_per_s:,.1f} req/s, {c.response_s * 1000:.1f} ms); knee at ~{c.knee_users:.0f} users")
        return lines

    def __rich__(self):
        return Group(self.table(), *self.summary_lines())

    def render(self, width: int = 100) -> str:
        buf = io.StringIO()
        Console(file=buf, width=width, force_terminal=False, color_system=None).print(self)
        return buf.getvalue()

    def __str__(self) -> str:
        return self.render()


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    if n >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.0f}"


# -- the computation ------------------------------------------------------------------------


# the quantile is a pure function of (q, df), and dear to compute (bisection over a numeric
# integral); a report's stations share a handful of batch counts, and so do the runs of a process
_t_quantile = functools.lru_cache(maxsize=1024)(student_t_quantile)


def _batch_ci(values: list[float], confidence: float) -> float:
    if len(values) < 2:
        return math.inf
    return _t_quantile(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def _context(report: "Report") -> dict[str, list[str]]:
    """Per host, the effects of the run that queueing models leave out, as the report shows them."""
    effects: dict[str, list[str]] = {name: [] for name in report.components}

    def note(host: str, effect: str) -> None:
        if host in effects and effect not in effects[host]:
            effects[host].append(effect)

    client_retries = sum(c.retries for c in report.clients.values())
    timeouts = sum(c.errors.get("timeout", 0) for c in report.clients.values())
    closed = [l for l in report.loads.values() if l.get("kind") == "closed"]
    for load in report.loads.values():
        if client_retries:
            note(load["target"], f"retries ({client_retries} by clients)")
    for name, s in report.components.items():
        d = s.detail
        retried = int(d.get("retries_used", 0) or 0) + int(d.get("refused_retries", 0) or 0)
        backends = list(d.get("sent", {}) or {})
        if retried:
            for host in (name, *backends):
                note(host, f"retries ({retried} by {name})")
        ejected = sum((d.get("health_changes") or {}).values()) + sum((d.get("ejections") or {}).values())
        if ejected:
            for host in (name, *backends):
                note(host, "health-check ejection")
        if backends and str(d.get("policy", "")).startswith("RoundRobin"):
            for host in backends:
                note(host, f"round robin at {name} smooths arrivals (not Poisson)")
        if d.get("oom_kills"):
            note(name, f"OOM restarts ({d['oom_kills']})")
        elif d.get("crashes") or s.reset or s.refused:
            note(name, "crash and restart")
    ratio = _hit_ratio(report)
    if ratio is not None:
        for name, s in report.components.items():
            if s.kind == "database":
                note(name, f"cache hits change its demand ({ratio:.0%} hits)")
    for name, s in report.components.items():
        if s.detail.get("queue_discipline", "fifo") != "fifo":
            note(name, f"non-FIFO discipline ({s.detail['queue_discipline']})")
    for _, text in report.events:
        word, _, rest = text.partition(" ")
        if word == "slow":
            note(rest.split(" ")[0], "slowed mid-run")
        elif word in ("partition", "hold"):
            for host in effects:
                if host in rest:
                    note(host, "network partition")
    if timeouts:
        for host in effects:
            note(host, f"timeouts ({timeouts} abandoned, still served)")
    if closed:
        for host in effects:
            note(host, "closed-loop users (arrivals not Poisson)")
    return effects


def _station_row(m: "StationMeasure", effects: list[str], confidence: float) -> StationTheory | None:
    done = m.completions
    if done == 0 or m.window_s <= 0:
        return None
    T, c = m.window_s, m.servers
    x = done / T
    offered = max(m.arrivals, done + m.rejected) / T
    s = m.busy_s / done
    wq = m.waiting_s / done
    w = wq + s
    util = m.busy_s / (c * T)
    declared = m.declared_mean_s is not None and m.declared_scv is not None and m.declared_mean_s > 0 \
        and abs(m.declared_mean_s - s) <= 0.2 * m.declared_mean_s
    scv = m.declared_scv if declared else ASSUMED_SCV
    rho = offered * s / c
    batches = [b for b in m.batches if b[3] > 0]
    util_ci = _batch_ci([b[1] / (c * b[0]) for b in m.batches if b[0] > 0], confidence)
    w_ci = _batch_ci([(b[1] + b[2]) / b[3] for b in batches], confidence)
    blocked = m.rejected / (done + m.rejected) if done + m.rejected else 0.0
    exponential = abs(scv - 1.0) < 1e-9
    k = mmck(offered, s, c, m.capacity) if m.capacity is not None else None
    if k is not None and (exponential or k.p_block >= UNBOUNDED_BELOW):
        # the bound matters (or service is exponential): M/M/c/K, the one exact finite-queue model
        model = f"M/M/{c}/{m.capacity}"
        pred_util, pred_w, pred_block = k.utilisation, k.w_s, k.p_block
    else:
        # no bound, or one almost never reached: the service distribution's shape matters more
        model = f"M/M/{c}" if exponential else ("M/G/1" if c == 1 else f"M/G/{c}")
        pred_util, pred_block = min(rho, 1.0), (k.p_block if k is not None else 0.0)
        pred_w = mgc(offered, s, c, scv).w_s if rho < 1 else None
    problems = []
    if pred_w is None:
        problems.append("saturated: no steady state")
    elif abs(w - pred_w) > w_ci:
        problems.append(f"W {'above' if w > pred_w else 'below'} theory")
    if abs(util - pred_util) > util_ci + 0.005:
        problems.append("utilisation off")
    agrees = not problems
    divergence = ""
    if not agrees:
        divergence = "; ".join(problems)
        if effects:
            divergence += ": " + ", ".join(effects)
        elif not declared and pred_w is not None:
            divergence += ": service not exponential?"
        elif model.startswith("M/M/") and not exponential and m.capacity is not None:
            divergence += f": service not exponential (scv {scv:.2g}; M/M/{c}/{m.capacity} assumes it)"
    return StationTheory(m.host, m.station, model, c, offered, x, s, scv, "declared" if declared else "assumed",
                         rho, util, util_ci, pred_util, wq, w, w_ci, pred_w, blocked, pred_block, agrees, divergence)


def theory_of(report: "Report", confidence: float = CONFIDENCE) -> Theory:
    """The analytic prediction for ``report``'s run (see the module docstring)."""
    effects = _context(report)
    rows = []
    for m in report.stations:
        row = _station_row(m, effects.get(m.host, []), confidence)
        if row is not None:
            rows.append(row)
    forwarding = []
    for name, s in report.components.items():
        sent = s.detail.get("sent")
        if not isinstance(sent, dict) or not s.served:
            continue
        visits = sum(sent.values()) / s.served
        agrees = abs(visits - 1.0) <= 0.002
        why = [e for e in effects.get(name, []) if e.startswith(("retries", "health", "crash"))]
        forwarding.append(Forwarding(name, visits, 1.0, agrees,
                                     "" if agrees else "more attempts than requests" + (": " + ", ".join(why) if why else "")))
    return Theory(tuple(rows), tuple(forwarding), _bounds(report, rows), _closed(report, rows), confidence)


def _bounds(report: "Report", rows: list[StationTheory]) -> Bounds | None:
    sent = report.sent
    if not rows or not sent or report.duration_s <= 0:
        return None
    # demand per request served: past saturation a station cannot be busier than 100%, so
    # dividing by requests *sent* would understate what each request needs
    served = report.ok or sent
    measures = {f"{m.host}.{m.station}": m for m in report.stations}
    demands = {r.name: measures[r.name].busy_s / served for r in rows}
    per_server = {r.name: demands[r.name] / r.servers for r in rows}
    bottleneck = max(per_server, key=lambda k: (per_server[k], k))
    offered = sent / report.duration_s
    x_max = 1.0 / per_server[bottleneck] if per_server[bottleneck] > 0 else math.inf
    users = sum(int(l["users"]) for l in report.loads.values() if l.get("kind") == "open" and "users" in l) or None
    saturation = users * x_max / offered if users else None
    return Bounds(offered, demands, bottleneck, offered * per_server[bottleneck], x_max, users, saturation,
                  _hit_ratio(report))


def _hit_ratio(report: "Report") -> float | None:
    hits = sum(s.detail.get("hits", 0) for s in report.components.values() if s.kind == "cache")
    misses = sum(s.detail.get("misses", 0) for s in report.components.values() if s.kind == "cache")
    return hits / (hits + misses) if hits + misses else None


def _closed(report: "Report", rows: list[StationTheory]) -> tuple[ClosedLoopTheory, ...]:
    closed = [(name, l) for name, l in report.loads.items() if l.get("kind") == "closed"]
    if len(closed) != 1 or not rows or not report.sent:  # MVA of one class; several classes are not modelled
        return ()
    name, load = closed[0]
    client = report.clients[name]
    measures = {f"{m.host}.{m.station}": m for m in report.stations}
    done = client.ok + client.failed
    if not done:
        return ()
    demands = [measures[r.name].busy_s / done for r in rows]
    servers = [r.servers for r in rows]
    at_stations = sum((measures[r.name].busy_s + measures[r.name].waiting_s) / done for r in rows)
    response = client.latency.mean_s
    other = max(0.0, response - at_stations)  # network hops and the like: a pure delay
    think = float(load.get("think_mean_s", 0.0))
    users = int(load["users"])
    result = mva(demands, servers, users, think + other)
    d_max = max(d / c for d, c in zip(demands, servers))
    knee = (sum(demands) + think + other) / d_max if d_max > 0 else math.inf
    return (ClosedLoopTheory(name, users, think, other, result.throughput_per_s, done / report.duration_s,
                             result.response_s + other, response, knee, result.exact),)
