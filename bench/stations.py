"""Single-station experiments in the engine, one replication at a time.

A station is ``OpenLoop`` (Poisson) -> ``components.AppServer(cores=c,
workers=c, queue_limit=None)`` with zero link latency, so the server's accept
queue is the waiting line and its ``c`` workers are the ``c`` servers. Each
request carries the time it was sent (its arrival, since links take no time);
the handler notes when a worker took it (the wait), spends its service time
on a core with ``ctx.cpu`` and notes when it finished. W, L and Lq are the
engine's own figures: ``stats().residence`` and the time-weighted
``mean_in_system`` and ``mean_queue``, read at the start and the end of a
measurement window after a warm-up (the station starts empty).

The cache experiments draw keys independently from a Zipf law and read
through an LRU cache, either the bare ``components.CacheStore`` or a
``CacheServer`` behind cache-aside in the engine.
"""
from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass

from playground import Constant, Distribution, Exponential, OpenLoop, Request, Response, Sim, Workload, Zipf
from playground._network import make_link
from queueing import Theory, che_hit_ratio, md1, mmc

__all__ = ["Station", "station_window", "run_station", "CacheCase", "run_cache", "run_cache_server", "cache_available"]

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


def station_window(station: Station, requests: int) -> tuple[float, float]:
    """Warm-up and measurement seconds for about ``requests`` measured requests at rho <= 0.5.

    Heavier load gets a longer window: the relative variance of a time average in M/M/1 grows
    like 1/(1-rho)^3, and the window grows by 0.5/(1-rho) (five-fold at rho=0.9), a compromise
    between precision and wall time. The warm-up is at least 20 relaxation times, S/(1-sqrt(rho))^2.
    """
    measure_s = requests / station.rate_per_s * max(1.0, 0.5 / (1 - station.rho))
    relaxation_s = station.service.mean_s / (1 - math.sqrt(station.rho)) ** 2
    return max(0.05 * measure_s, 20 * relaxation_s), measure_s


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
    zipf_exponent: float
    capacity_items: int

    def theory(self) -> float:
        z = Zipf(self.keys, self.zipf_exponent)
        return che_hit_ratio([z.probability(k) for k in range(self.keys)], self.capacity_items)


def run_cache(case: CacheCase, seed: int, warmup_requests: int, measure_requests: int) -> dict[str, float]:
    """One replication: the hit ratio of ``components.CacheStore`` (LRU), read-through, after a warm-up.

    A reference LRU (an ``OrderedDict``, most recent last) sees the same keys; ``mismatches``
    counts the requests on which the two disagree about hit or miss (an exact LRU has none).
    """
    from components import CacheStore

    store = CacheStore(case.capacity_items, policy="lru")
    reference: OrderedDict[str, None] = OrderedDict()
    zipf = Zipf(case.keys, case.zipf_exponent)
    keys = [str(k) for k in range(case.keys)]
    rng = random.Random(f"che/{seed}")
    mismatches = 0
    for i in range(warmup_requests + measure_requests):
        if i == warmup_requests:
            store.reset_counters()
        key = keys[zipf.sample(rng)]
        hit = store.get(key) is not None
        if not hit:
            store.set(key, b"v")
        if key in reference:
            reference.move_to_end(key)
            mismatches += not hit
        else:
            reference[key] = None
            if len(reference) > case.capacity_items:
                reference.popitem(last=False)
            mismatches += hit
    return {"hit_ratio": store.stats().hit_ratio, "requests": float(measure_requests),
            "checked": float(warmup_requests + measure_requests), "mismatches": mismatches}


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
    sim.add(CacheServer("cache", capacity_items=case.capacity_items, op_latency_s=0.0))
    sim.add(AppServer("app", handler, workers=None, queue_limit=None, calls=("cache",)))
    sim.load(OpenLoop("app", rate=rate_per_s, workload=Workload(keys=case.keys, zipf_exponent=case.zipf_exponent)))
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
