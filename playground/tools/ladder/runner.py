"""Running the ladder: rising populations against each stage, until it breaks.

For one stage and one population the runner builds a fresh topology, drives it
with ``Population(users, requests_per_user_per_s)`` for a while, and reads the
report: throughput, p50/p99, error rate, the most saturated component (the
bottleneck), the cache hit ratio, the database's load and what the topology
would cost a month (``report.cost()``, default illustrative prices). A step *breaks* the
stage when p99 exceeds the SLO or errors exceed the threshold; the runner then
stops raising the population for that stage and moves to the next stage.

How long a step runs: long enough for a few thousand requests at small
populations, short enough that a million users (tens of thousands of
requests per simulated second) stay within the wall-time budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any, Callable

from ..._errors import ConfigError, check_positive
from ..._report import Report

__all__ = ["LadderOptions", "StepResult", "StageResult", "bottleneck", "run_step"]

DEFAULT_USERS = (5, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class LadderOptions:
    """Knobs of a ladder run. Defaults tell the whole story in under a minute of wall time."""

    users: tuple[int, ...] = DEFAULT_USERS
    requests_per_user_per_s: float = 0.02  # one request every 50 s per user, averaged over a visit
    seed: int = 1
    slo_p99_s: float = 0.5
    max_error_rate: float = 0.01
    target_requests: int = 12_000  # per step; sets the duration for big populations
    min_duration_s: float = 1.0
    max_duration_s: float = 30.0
    scaling: str = "horizontal"  # or "vertical": the same cores in one bigger machine
    budget_cores: int = 32
    stop_at_break: bool = True
    duration_s: float | None = None  # a fixed simulated duration per step instead of target_requests

    def __post_init__(self) -> None:
        if not self.users or any(not (isinstance(u, int) and u >= 1) for u in self.users):
            raise ConfigError(f"users must be integers >= 1, got {self.users!r}")
        check_positive("requests_per_user_per_s", self.requests_per_user_per_s)
        check_positive("slo_p99_s", self.slo_p99_s)
        check_positive("target_requests", self.target_requests)
        check_positive("min_duration_s", self.min_duration_s)
        if self.max_duration_s < self.min_duration_s:
            raise ConfigError(f"max_duration_s must be >= min_duration_s ({self.min_duration_s!r}), "
                              f"got {self.max_duration_s!r}")
        if self.scaling not in ("horizontal", "vertical"):
            raise ConfigError(f"scaling must be 'horizontal' or 'vertical', got {self.scaling!r}")
        if self.duration_s is not None:
            check_positive("duration_s", self.duration_s)
        if not (isinstance(self.budget_cores, int) and self.budget_cores >= 2):
            raise ConfigError(f"budget_cores must be an integer >= 2, got {self.budget_cores!r}")

    def duration_for(self, users: int) -> float:
        if self.duration_s is not None:
            return self.duration_s
        rate = users * self.requests_per_user_per_s
        return min(self.max_duration_s, max(self.min_duration_s, self.target_requests / rate))


@dataclass(frozen=True)
class StepResult:
    users: int
    offered_per_s: float
    throughput_per_s: float
    p50_s: float
    p99_s: float
    error_rate: float
    errors: dict[str, int]
    bottleneck: str
    bottleneck_utilisation: float
    cache_hit_ratio: float | None
    db_queries_per_s: float | None
    db_utilisation: float | None
    broke: bool
    why: str
    events: list[tuple[float, str]] = field(default_factory=list)
    cost_per_month: float = 0.0  # the topology as run, a month of it at default prices (report.cost())
    # operational bounds from this step's measured demands (report.theory()): the population
    # at which the bottleneck station saturates, and that station
    predicted_saturation_users: float | None = None
    predicted_bottleneck: str = ""

    @property
    def cost_per_1k_users(self) -> float:
        return self.cost_per_month / self.users * 1000


@dataclass(frozen=True)
class StageResult:
    key: str
    title: str
    story: str
    steps: list[StepResult]

    @property
    def broke_at(self) -> StepResult | None:
        return next((s for s in self.steps if s.broke), None)

    @property
    def predicted_break(self) -> float | None:
        """Where theory says the stage saturates: the operational bound measured at the
        largest population that was still within the SLO (else the first step)."""
        ok = [s for s in self.steps if not s.broke]
        step = ok[-1] if ok else (self.steps[0] if self.steps else None)
        return step.predicted_saturation_users if step else None

    @property
    def max_users_ok(self) -> int:
        ok = [s.users for s in self.steps if not s.broke]
        return max(ok) if ok else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _saturation(stats) -> tuple[float, str]:
    """How close a component is to its limit, and which resource that is."""
    d = stats.detail
    util = stats.utilisation
    resource = {"app": "CPU", "database": "reads" if d.get("reads", 0) >= d.get("writes", 0) else "writes",
                "cache": "operations", "balancer": "capacity", "cdn": "edge capacity"}.get(stats.kind, "capacity")
    if stats.kind == "database" and "io_utilisation" in d:
        util = max(util, d["io_utilisation"])
    limit = d.get("rate_limit")
    if isinstance(limit, dict) and limit.get("limited"):  # at its limit: offered / admitted
        allowed = max(1, limit.get("allowed", 0))
        return max(util, (allowed + limit["limited"]) / allowed), "rate limit: 429"
    if d.get("oom_kills"):  # the CPU fell behind, queues grew, and memory ran out
        return max(util, 1.0), f"{resource}, then memory: OOM"
    return util, resource


def bottleneck(report: Report) -> tuple[str, float]:
    """The most saturated component, as "name (resource)", and its utilisation."""
    best, best_u = "-", -1.0
    for name, s in report.components.items():
        u, resource = _saturation(s)
        if u > best_u:
            best, best_u = f"{name} ({resource})", u
    return best, max(best_u, 0.0)


def _find(report: Report, kind: str):
    return [s for s in report.components.values() if s.kind == kind]


def run_step(build: Callable[[int, LadderOptions], Any], users: int, opts: LadderOptions,
             on_report: Callable[[Report], None] | None = None) -> StepResult:
    """Run one population on one stage; ``on_report`` gets the run's full report (for an HTML page)."""
    sim = build(users, opts)
    duration = opts.duration_for(users)
    report = sim.run(duration_s=duration)
    if on_report is not None:
        on_report(report)
    offered = users * opts.requests_per_user_per_s
    neck, util = bottleneck(report)
    caches = _find(report, "cache")
    hits = sum(c.detail.get("hits", 0) for c in caches)
    misses = sum(c.detail.get("misses", 0) for c in caches)
    hit_ratio = hits / (hits + misses) if hits + misses else None
    dbs = _find(report, "database")
    db_q = sum(d.detail.get("reads", 0) + d.detail.get("writes", 0) for d in dbs) / duration if dbs else None
    db_u = max((max(d.utilisation, d.detail.get("io_utilisation", 0.0)) for d in dbs), default=None)
    bounds = report.theory().bounds
    # a 429 is an answer (the report counts it as one), but for the ladder it is a user turned away
    shed = sum(c.statuses.get(429, 0) for c in report.clients.values())
    errors = {**report.errors, **({"429": shed} if shed else {})}
    done = report.ok + report.failed
    error_rate = (report.failed + shed) / done if done else 0.0
    why = []
    if report.p99_s > opts.slo_p99_s:
        why.append(f"p99 {report.p99_s * 1000:.0f} ms > SLO {opts.slo_p99_s * 1000:.0f} ms")
    if error_rate > opts.max_error_rate:
        why.append(f"errors {error_rate:.1%} > {opts.max_error_rate:.0%}")
    return StepResult(
        users=users, offered_per_s=offered, throughput_per_s=max(0.0, report.throughput_per_s - shed / duration),
        p50_s=report.p50_s,
        p99_s=report.p99_s, error_rate=error_rate, errors=errors, bottleneck=neck,
        bottleneck_utilisation=util, cache_hit_ratio=hit_ratio, db_queries_per_s=db_q, db_utilisation=db_u,
        broke=bool(why), why="; ".join(why), events=report.events,
        cost_per_month=report.cost().total_per_month,
        predicted_saturation_users=bounds.saturation_users if bounds else None,
        predicted_bottleneck=bounds.bottleneck if bounds else "",
    )
