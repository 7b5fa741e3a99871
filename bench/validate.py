"""Does the engine agree with queueing theory? Run single stations and compare.

A queueing station with Poisson arrivals and known service times has textbook
answers: M/M/1 and M/M/c (Erlang C) for exponential service, Pollaczek-
Khinchine for M/D/1, Little's law L = lambda W for anything that is stable.
An LRU cache under independent Zipf requests has Che's approximation of its
hit ratio. If the engine's clock, queues, cores or metrics were wrong
(a lost wake-up, a worker that idles with work queued, a time average that
forgets a jump), these figures would not match.

How each figure is measured. A station is ``OpenLoop`` (Poisson) ->
``components.AppServer(cores=c, workers=c, queue_limit=None)`` with zero link
latency, so the server's accept queue is the waiting line and its ``c``
workers are the ``c`` servers. Each request carries the time it was sent
(equal to its arrival, since links take no time); the handler notes when a
worker took it (the wait), spends its service time on a core with
``ctx.cpu``, and notes when it finished. The time in system W is also read
from the engine's own ``stats().residence``, and L and Lq from its
time-weighted ``mean_in_system`` and ``mean_queue``. Every replication has its
own seed, discards a warm-up period (the station starts empty) and measures a
window after it; the 95% confidence interval is Student's t over the
replications' means.

Run it (writes docs/VALIDATION.md; ``--quick`` is a smaller run for a look)::

    python bench/validate.py [--quick] [--jobs N] [--out docs/VALIDATION.md]

``tests/test_theory.py`` imports this module and runs the same experiments,
smaller.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from playground import Constant, Distribution, Exponential, OpenLoop, Request, Response, Sim, Workload, Zipf
from playground._network import make_link

ROOT = Path(__file__).resolve().parents[1]

# -- closed forms (pure) -----------------------------------------------------------


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in M/M/c (``offered_load`` = lambda/mu < c)."""
    if not 0 <= offered_load < servers:
        raise ValueError(f"offered_load must be in [0, servers), got {offered_load!r}")
    b = 1.0  # Erlang B by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class Theory:
    """Steady-state figures of one station: P(wait), Wq, W, Lq, L (seconds, requests)."""

    p_wait: float
    wq_s: float
    w_s: float
    lq: float
    l: float  # noqa: E741 - the textbook's name


def mmc(rate_per_s: float, service_s: float, servers: int) -> Theory:
    """M/M/c with arrival rate lambda, mean service 1/mu, ``servers`` = c."""
    a = rate_per_s * service_s
    p = erlang_c(servers, a)
    wq = p * service_s / (servers - a)
    return Theory(p, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


def md1(rate_per_s: float, service_s: float) -> Theory:
    """M/D/1 by Pollaczek-Khinchine: Wq = rho S / (2 (1 - rho))."""
    rho = rate_per_s * service_s
    if not 0 <= rho < 1:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    wq = rho * service_s / (2.0 * (1.0 - rho))
    return Theory(rho, wq, wq + service_s, rate_per_s * wq, rate_per_s * (wq + service_s))


def che_hit_ratio(probabilities: Sequence[float], capacity_items: int) -> float:
    """Che's approximation of an LRU cache's hit ratio under independent requests.

    Solve sum_i (1 - exp(-p_i T)) = C for the characteristic time T (bisection);
    the hit ratio is sum_i p_i (1 - exp(-p_i T)).
    """
    n = len(probabilities)
    if capacity_items >= n:
        return 1.0
    occupancy = lambda t: sum(-math.expm1(-p * t) for p in probabilities)  # noqa: E731
    lo, hi = 0.0, 1.0
    while occupancy(hi) < capacity_items:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if occupancy(mid) < capacity_items:
            lo = mid
        else:
            hi = mid
    t = (lo + hi) / 2.0
    return sum(p * -math.expm1(-p * t) for p in probabilities)


# -- statistics (pure) ---------------------------------------------------------------


def student_t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (q > 0.5) of Student's t with ``df`` degrees of freedom."""
    if not (0.5 < q < 1 and df >= 1):
        raise ValueError(f"need 0.5 < q < 1 and df >= 1, got q={q!r}, df={df!r}")
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(x: float, steps: int = 2000) -> float:  # Simpson's rule on [0, x]
        h = x / steps
        f = lambda t: c * (1 + t * t / df) ** (-(df + 1) / 2)  # noqa: E731
        s = f(0.0) + f(x) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
        return 0.5 + s * h / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < q:
        hi *= 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Estimate:
    """A mean over independent replications with a two-sided confidence interval."""

    mean: float
    half_width: float
    replications: int
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def estimate(samples: Sequence[float], confidence: float = 0.95) -> Estimate:
    n = len(samples)
    if n < 2:
        raise ValueError(f"need at least 2 replications, got {n}")
    t = student_t_quantile(0.5 + confidence / 2, n - 1)
    return Estimate(statistics.fmean(samples), t * statistics.stdev(samples) / math.sqrt(n), n, confidence)


# -- one station, one replication --------------------------------------------------------


@dataclass(frozen=True)
class Station:
    """A queueing station: Poisson arrivals at ``rate_per_s`` to ``servers`` servers."""

    label: str
    rate_per_s: float
    servers: int
    service: Distribution

    @property
    def rho(self) -> float:
        return self.rate_per_s * self.service.mean_s / self.servers

    def theory(self) -> Theory:
        if isinstance(self.service, Exponential):
            return mmc(self.rate_per_s, self.service.mean_s, self.servers)
        if isinstance(self.service, Constant) and self.servers == 1:
            return md1(self.rate_per_s, self.service.mean_s)
        raise ValueError(f"no closed form for {self!r}")


class _Probe:
    """The station's handler: spends the service time and notes each request's wait."""

    def __init__(self, service: Distribution, start_s: float, end_s: float) -> None:
        self.service = service
        self.start_s = start_s
        self.end_s = end_s
        self.count = 0
        self.waited = 0
        self.wait_sum_s = 0.0
        self.system_sum_s = 0.0

    async def handle(self, request: Request, ctx) -> Response:
        arrived = float(request.headers["x-arrived-s"])
        began = ctx.now
        await ctx.cpu(self.service)
        done = ctx.now
        if self.start_s <= done < self.end_s:  # completed inside the measurement window
            self.count += 1
            self.waited += began > arrived
            self.wait_sum_s += began - arrived
            self.system_sum_s += done - arrived
        return Response(200)


def run_station(station: Station, seed: int, warmup_s: float, measure_s: float) -> dict[str, float]:
    """One replication: the station's figures over [warmup_s, warmup_s + measure_s)."""
    from components import AppServer

    end_s = warmup_s + measure_s
    probe = _Probe(station.service, warmup_s, end_s)
    sim = Sim(seed=seed)
    sim.net.default_link = make_link(0.0)
    sim.add(AppServer("station", probe.handle, cores=station.servers, workers=station.servers,
                      queue_limit=None))
    sim.load(OpenLoop("station", rate=station.rate_per_s, timeout_s=1e6,
                      workload=Workload(make=lambda rng: Request("GET", "/", {"x-arrived-s": repr(sim.now)}))))
    snaps = {}
    sim.at(warmup_s, lambda: snaps.__setitem__("start", sim["station"].stats()))
    sim.at(end_s, lambda: snaps.__setitem__("end", sim["station"].stats()))
    sim.run(duration_s=end_s + 10 * station.service.mean_s)
    a, b = snaps["start"], snaps["end"]
    served = b.residence.count - a.residence.count
    w = (b.residence.mean_s * b.residence.count - a.residence.mean_s * a.residence.count) / served
    l = (b.mean_in_system * end_s - a.mean_in_system * warmup_s) / measure_s  # noqa: E741
    lq = (b.mean_queue * end_s - a.mean_queue * warmup_s) / measure_s
    throughput = served / measure_s
    # Little's law over a window is exact but for requests straddling its two ends: at most
    # peak_in_system of them at each end, each inside for at most the longest residence.
    boundary = 2 * b.peak_in_system * b.residence.max_s / measure_s
    return {
        "p_wait": probe.waited / probe.count,
        "wq_s": probe.wait_sum_s / probe.count,
        "w_probe_s": probe.system_sum_s / probe.count,
        "w_s": w,
        "l": l,
        "lq": lq,
        "throughput_per_s": throughput,
        "little_gap": abs(l - throughput * w),
        "little_bound": boundary,
        "requests": float(served),
    }


# -- an LRU cache under independent Zipf requests -----------------------------------------


@dataclass(frozen=True)
class CacheCase:
    label: str
    keys: int
    zipf_s: float
    capacity_items: int

    def theory(self) -> float:
        z = Zipf(self.keys, self.zipf_s)
        return che_hit_ratio([z.probability(k) for k in range(self.keys)], self.capacity_items)


def run_cache(case: CacheCase, seed: int, warmup_requests: int, measure_requests: int) -> dict[str, float]:
    """One replication: the hit ratio of ``components.CacheStore`` (LRU), read-through, after a warm-up."""
    import random

    from components import CacheStore

    store = CacheStore(case.capacity_items, policy="lru")
    zipf = Zipf(case.keys, case.zipf_s)
    keys = [str(k) for k in range(case.keys)]
    rng = random.Random(f"che/{seed}")
    for _ in range(warmup_requests):
        key = keys[zipf.sample(rng)]
        if store.get(key) is None:
            store.set(key, b"v")
    store.reset_counters()
    for _ in range(measure_requests):
        key = keys[zipf.sample(rng)]
        if store.get(key) is None:
            store.set(key, b"v")
    return {"hit_ratio": store.stats().hit_ratio, "requests": float(measure_requests)}


def run_cache_server(case: CacheCase, seed: int, warmup_requests: int, measure_requests: int) -> dict[str, float]:
    """One replication through the engine: ``OpenLoop`` -> ``AppServer`` (cache-aside) -> ``CacheServer``.

    Zero link and operation latency, so a miss and its fill happen at the arrival's instant and the
    cache sees independent requests, as Che's approximation assumes. Hits and misses are the cache
    server's own counters (``stats().detail``) over the window after the warm-up.
    """
    from components import AppServer, CacheAside, CacheServer

    rate_per_s = 1000.0
    aside = CacheAside("cache", coalesce=False)

    async def value() -> bytes:
        return b"v"

    async def handler(request: Request, ctx) -> Response:
        await aside.get(ctx, request.route.rsplit("/", 1)[1], value)
        return Response(200)

    sim = Sim(seed=seed)
    sim.net.default_link = make_link(0.0)
    sim.add(CacheServer("cache", capacity_items=case.capacity_items, op_latency=0.0))
    sim.add(AppServer("app", handler, workers=None, queue_limit=None, calls=("cache",)))
    sim.load(OpenLoop("app", rate=rate_per_s, workload=Workload(keys=case.keys, zipf_s=case.zipf_s)))
    warmup_s, end_s = warmup_requests / rate_per_s, (warmup_requests + measure_requests) / rate_per_s
    snaps = {}
    sim.at(warmup_s, lambda: snaps.__setitem__("start", sim["cache"].stats().detail))
    sim.at(end_s, lambda: snaps.__setitem__("end", sim["cache"].stats().detail))
    sim.run(duration_s=end_s + 1.0)
    a, b = snaps["start"], snaps["end"]
    hits, misses = b["hits"] - a["hits"], b["misses"] - a["misses"]
    return {"hit_ratio": hits / (hits + misses), "requests": float(hits + misses)}


def cache_available() -> bool:
    try:
        from components import CacheAside, CacheServer, CacheStore  # noqa: F401
    except ImportError:
        return False
    return True


# -- the experiments and the table -------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How big the experiments are: replications, and requests per replication."""

    replications: int
    requests: int  # measured requests per replication at the lightest load
    cache_requests: int


FULL = Plan(replications=10, requests=50_000, cache_requests=100_000)
QUICK = Plan(replications=6, requests=10_000, cache_requests=20_000)

SERVICE_S = 0.010  # 10 ms mean service: the units are arbitrary, the ratios are what count


def stations() -> list[Station]:
    out = []
    for rho in (0.5, 0.9):
        out.append(Station(f"M/M/1 rho={rho}", rho / SERVICE_S, 1, Exponential(SERVICE_S)))
    for c in (4, 8):
        for rho in (0.5, 0.7, 0.9):
            out.append(Station(f"M/M/{c} rho={rho}", rho * c / SERVICE_S, c, Exponential(SERVICE_S)))
    for rho in (0.5, 0.9):
        out.append(Station(f"M/D/1 rho={rho}", rho / SERVICE_S, 1, Constant(SERVICE_S)))
    return out


def cache_cases() -> list[CacheCase]:
    """LRU ``CacheStore`` cases (fast: no engine) for three skews and three sizes."""
    return [CacheCase(f"LRU CacheStore s={s} C={c}", 1000, s, c) for s in (0.8, 1.0, 1.2) for c in (10, 50, 200)]


def cache_server_cases() -> list[CacheCase]:
    """The same through the engine (``CacheServer`` behind cache-aside), for two of them."""
    return [CacheCase(f"LRU CacheServer s={s} C={c}", 1000, s, c) for s, c in ((1.0, 50), (0.8, 200))]


def station_window(station: Station, plan: Plan) -> tuple[float, float]:
    """Warm-up and measurement seconds: heavier load gets a longer window.

    The relative variance of a time average in M/M/1 grows like 1/(1-rho)^3; the window grows
    by 0.5/(1-rho) (five-fold at rho=0.9), a compromise between precision and wall time.
    """
    measure_s = plan.requests / station.rate_per_s * max(1.0, 0.5 / (1 - station.rho))
    relaxation_s = station.service.mean_s / (1 - math.sqrt(station.rho)) ** 2
    return max(0.05 * measure_s, 20 * relaxation_s), measure_s


@dataclass(frozen=True)
class Row:
    model: str
    parameters: str
    quantity: str
    theory: float
    measured: Estimate
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.measured.covers(self.theory)


QUANTITIES = (  # (key in run_station's result, label, Theory attribute, unit)
    ("p_wait", "P(wait)", "p_wait", ""),
    ("wq_s", "Wq (mean wait)", "wq_s", "ms"),
    ("w_s", "W (time in system, stats().residence)", "w_s", "ms"),
    ("l", "L (stats().mean_in_system)", "l", ""),
    ("lq", "Lq (stats().mean_queue)", "lq", ""),
)


def station_rows(station: Station, results: list[dict[str, float]], confidence: float = 0.95) -> list[Row]:
    theory = station.theory()
    params = (f"lambda={station.rate_per_s:g}/s, S={station.service.mean_s * 1000:g} ms, "
              f"c={station.servers}, rho={station.rho:g}")
    rows = []
    for key, label, attr, unit in QUANTITIES:
        scale = 1000.0 if unit == "ms" else 1.0
        est = estimate([r[key] * scale for r in results], confidence)
        rows.append(Row(station.label, params, label, getattr(theory, attr) * scale, est, unit))
    return rows


@dataclass(frozen=True)
class LittleCheck:
    """Little's law from the engine's own figures, per replication: |L - lambda W| <= its window bound."""

    station: str
    l: float  # noqa: E741 - mean over replications
    lambda_w: float
    worst_gap: float
    worst_share: float  # the largest gap / bound over replications

    @property
    def passed(self) -> bool:
        return self.worst_share <= 1.0


def little_check(station: Station, results: list[dict[str, float]]) -> LittleCheck:
    shares = [r["little_gap"] / r["little_bound"] for r in results]
    return LittleCheck(station.label, statistics.fmean(r["l"] for r in results),
                       statistics.fmean(r["throughput_per_s"] * r["w_s"] for r in results),
                       max(r["little_gap"] for r in results), max(shares))


_RUNNERS = {"station": run_station, "cache": run_cache, "cache_server": run_cache_server}


def _run(args):
    kind, item, seed, a, b = args
    return _RUNNERS[kind](item, seed, a, b)


def run_all(plan: Plan, jobs: int, progress: Callable[[str], None] = print) -> tuple[list[Row], list[LittleCheck], dict]:
    seeds = list(range(1, plan.replications + 1))
    tasks = []
    for st in stations():
        warm, measure = station_window(st, plan)
        tasks += [("station", st, seed, warm, measure) for seed in seeds]
    cases = cache_cases() if cache_available() else []
    server_cases = cache_server_cases() if cache_available() else []
    for case in cases:
        tasks += [("cache", case, seed, plan.cache_requests // 4, plan.cache_requests) for seed in seeds]
    for case in server_cases:  # about ten times slower per request than the bare store
        tasks += [("cache_server", case, seed, plan.cache_requests // 20, plan.cache_requests // 5) for seed in seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_run, tasks, chunksize=1))
    wall = time.perf_counter() - t0
    by_item: dict = {}
    for task, result in zip(tasks, results):
        by_item.setdefault(task[1], []).append(result)
    rows, little = [], []
    for st in stations():
        rows += station_rows(st, by_item[st])
        little.append(little_check(st, by_item[st]))
        progress(f"{st.label}: {sum(r['requests'] for r in by_item[st]):,.0f} measured requests")
    for case in cases + server_cases:
        est = estimate([r["hit_ratio"] for r in by_item[case]])
        rows.append(Row(case.label, f"keys={case.keys}, zipf s={case.zipf_s}, capacity={case.capacity_items}",
                        "hit ratio (Che)", case.theory(), est))
    measured = sum(r["requests"] for r in results if "w_s" in r)
    return rows, little, {"wall_s": wall, "station_requests": measured, "cache": bool(cases)}


# -- the document ------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import trio

    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, trio {trio.__version__}")


def render(rows: list[Row], little: list[LittleCheck], info: dict, plan: Plan, jobs: int, command: str) -> str:
    passed = sum(r.passed for r in rows)
    lines = [
        "# Validation: the engine against queueing theory",
        "",
        f"Produced by `{command}` on {info['date']} ({machine()}), "
        f"{jobs} worker processes, {info['wall_s']:.0f} s wall time in all.",
        "",
        "Each station is `OpenLoop` (Poisson arrivals) -> `components.AppServer(cores=c, workers=c, "
        "queue_limit=None)` with zero link latency; the handler spends an exponential (M/M) or constant "
        "(M/D) service time on a core with `ctx.cpu` and notes each request's wait (the request carries the "
        "time it was sent, which is its arrival). W, L and Lq are the engine's own figures "
        "(`stats().residence`, the time-weighted `mean_in_system` and `mean_queue`). Every replication has "
        f"its own seed (1..{plan.replications}), starts empty, discards a warm-up of at least 20 relaxation "
        "times and 5% of the window, and measures a window of "
        f"{plan.requests:,} requests at rho=0.5, longer at heavier load (window x max(1, 0.5/(1-rho))). "
        "The 95% confidence interval is Student's t over the replications' means. "
        "**pass** means the theoretical value lies inside that interval; with a correct engine about one row "
        "in twenty falls outside by chance.",
        "",
        f"{passed} of {len(rows)} rows pass; {info['station_requests']:,.0f} station requests measured.",
        "",
        "| model | parameters | quantity | theory | measured | 95% CI | pass |",
        "|---|---|---|---:|---:|---|:---:|",
    ]
    for r in rows:
        unit = f" {r.unit}" if r.unit else ""
        m = r.measured
        lines.append(f"| {r.model} | {r.parameters} | {r.quantity} | {_fmt(r.theory)}{unit} | {_fmt(m.mean)}{unit} | "
                     f"[{_fmt(m.low)}, {_fmt(m.high)}] | {'pass' if r.passed else '**FAIL**'} |")
    if not info["cache"]:
        lines += ["", "The LRU rows are missing: `components/cache.py` (its `LRUStore`) did not exist when this ran."]
    else:
        lines += [
            "",
            "The cache rows draw keys independently from `playground.Zipf` over 1,000 keys and read through "
            "(a miss stores the key). *CacheStore* rows drive `components.CacheStore(policy=\"lru\")` directly, "
            f"{plan.cache_requests:,} measured requests per replication after {plan.cache_requests // 4:,} to warm "
            "up. *CacheServer* rows run through the engine: `OpenLoop` (1,000 req/s) -> `AppServer` with "
            "`CacheAside(coalesce=False)` -> `CacheServer` with zero link and operation latency, "
            f"{plan.cache_requests // 5:,} measured requests after {plan.cache_requests // 20:,}, hits and "
            "misses from the cache server's `stats().detail`. Che's approximation is not exact: a row could fail "
            "by the approximation's own error if the interval became narrower than it.",
        ]
    lines += [
        "",
        "## Little's law",
        "",
        "L = lambda W holds exactly over a window except for the requests that straddle its two ends, so the "
        "check is deterministic, not statistical: for every replication |L - lambda W| must be below "
        "2 x peak in system x longest residence / window length. lambda is the window's completions per "
        "second, W the mean of `stats().residence` over them and L the time average of `mean_in_system`.",
        "",
        "| station | L (mean of replications) | lambda W | worst gap and share of its bound | pass |",
        "|---|---:|---:|---|:---:|",
    ]
    for c in little:
        lines.append(f"| {c.station} | {_fmt(c.l)} | {_fmt(c.lambda_w)} | {c.worst_gap:.2e} ({c.worst_share:.0%}) | "
                     f"{'pass' if c.passed else '**FAIL**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (about a minute)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--out", default=str(ROOT / "docs" / "VALIDATION.md"), help="where to write the table")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    command = "python bench/validate.py" + (" --quick" if args.quick else "")
    rows, little, info = run_all(plan, args.jobs)
    info["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = render(rows, little, info, plan, args.jobs, command)
    Path(args.out).write_text(text)
    print(text)
    return 0 if all(r.passed for r in rows) and all(c.passed for c in little) else 1


if __name__ == "__main__":
    sys.exit(main())
