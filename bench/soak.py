"""Soak: a million requests through a stage-4 web stack, for speed and memory.

The topology is the scaling ladder's stage 4 without the CDN: Poisson users ->
an L7 balancer -> app servers that read through an LRU cache (cache-aside) and
write to a database. A long run shows whether the engine's memory stays flat
(histograms, counters and per-second rows only; no per-request records survive)
and how many simulated requests it pushes through per second of wall time.

    python bench/soak.py                       # 1,000,000 requests
    python bench/soak.py --requests 100000     # a quicker look

It prints the wall time, simulated requests per wall-second, peak RSS, and
the resident memory sampled ten times during the run (it should stay level).
Targets: peak RSS under 300 MB, at least 10,000 simulated requests per second.
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

from components import AppServer, CacheAside, CacheServer, Database, DatabaseClient, HealthCheck, L7Balancer
from playground import Exponential, LogNormal, OpenLoop, Request, Response, Sim, Workload

PAGE_MB = resource.getpagesize() / 2**20


def rss_mb() -> float:
    """Resident memory now (Linux ``/proc``; falls back to the peak elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_MB
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def app_handler(aside: CacheAside, db: DatabaseClient):
    async def load(ctx, key: str) -> bytes:
        return ((await db.get(ctx, key)) or "").encode()

    async def handler(request: Request, ctx) -> Response:
        if request.route == "/health":
            return Response(200)
        key = request.route.rsplit("/", 1)[1]
        if request.method == "POST":
            await db.put(ctx, key, request.body.decode())
            await aside.invalidate(ctx, key)
            return Response(201)
        return Response(200, body=await aside.get(ctx, key, lambda: load(ctx, key)))

    return handler


def stage4(seed: int, rate_per_s: float, apps: int) -> tuple[Sim, OpenLoop]:
    sim = Sim(seed=seed)
    names = [f"app{i}" for i in range(1, apps + 1)]
    sim.add(L7Balancer("lb", names, health_check=HealthCheck(interval_s=1.0), timeout_s=2.0))
    for name in names:
        handler = app_handler(CacheAside("cache", ttl_s=300, timeout_s=0.05), DatabaseClient("db", timeout_s=2.0))
        sim.add(AppServer(name, handler, cores=4, cpu_s=Exponential(0.002), calls=("cache", "db")))
    sim.add(CacheServer("cache", capacity_items=5_000, ttl_s=300, concurrency=8))
    sim.add(Database("db", read_latency_s=LogNormal(0.002, 0.5), write_latency_s=LogNormal(0.005, 0.5), io_capacity=8))
    load = sim.load(OpenLoop("lb", rate=rate_per_s, timeout_s=5.0,
                             workload=Workload(keys=50_000, zipf_exponent=1.0, write_share=0.05)))
    return sim, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to send (default 1,000,000)")
    parser.add_argument("--rate", type=float, default=2_000.0, help="arrivals per simulated second")
    parser.add_argument("--apps", type=int, default=4, help="app servers behind the balancer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rss_start = rss_mb()
    sim, load = stage4(args.seed, args.rate, args.apps)
    duration_s = args.requests / args.rate * 1.005  # Poisson: five standard deviations over the target
    samples: list[tuple[float, int, float]] = []
    for i in range(1, 11):
        t = duration_s * i / 10
        sim.at(t, lambda t=t: samples.append((t, load.metrics.sent, rss_mb())))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    report = sim.run(duration_s=duration_s)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    cache = report.components["cache"].detail
    db = report.components["db"].detail
    print(report.render(width=160))
    print(f"machine: {cpu_model()}, Python {platform.python_version()}")
    print(f"requests sent: {report.sent:,} (ok {report.ok:,}, failed {report.failed:,}, in flight {report.in_flight})")
    print(f"simulated: {report.simulated_s:,.0f} s at {args.rate:,.0f} req/s; heap entries fired: {report.events_fired:,}")
    print(f"cache hit ratio: {cache['hit_ratio']:.1%}; database reads {db['reads']:,}, writes {db['writes']:,}")
    print(f"wall time: {wall:,.1f} s (CPU {cpu:,.1f} s)")
    print(f"simulated requests per wall-second: {report.sent / wall:,.0f} (per CPU-second: {report.sent / cpu:,.0f})")
    print(f"RSS: {rss_start:.0f} MB before building, peak {peak_rss_mb():.0f} MB")
    print("RSS during the run (simulated s, requests sent, MB): "
          + ", ".join(f"({t:.0f}, {n:,}, {mb:.0f})" for t, n, mb in samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
