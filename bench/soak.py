"""Soak: a million requests through a stage-4 web stack, for speed and memory.

The topology is the scaling ladder's stage 4 without the CDN: Poisson users ->
an L7 balancer -> app servers that read through an LRU cache (cache-aside) and
write to a database. A long run shows whether the engine's memory stays flat
(histograms, counters and per-second rows only; no per-request records survive)
and how many simulated requests it pushes through per second of wall time.

    python bench/soak.py                       # 1,000,000 requests
    python bench/soak.py --requests 10000000   # does 10M stay at 1M's memory?
    python bench/soak.py --requests 100000     # a quicker look
    python bench/soak.py --requests 200000 --tracemalloc   # what grew between 20% and 100%

It prints the wall time, simulated requests per wall-second, the resident
memory sampled ``--samples`` times during the run (by simulated time, so at
about every 10% of the requests; it should stay level) and the peak RSS
(``getrusage`` ``ru_maxrss``, taken when the run ends, before the report is
rendered). The last line is one grep-able summary:

    soak requests=<sent> peak_rss_mib=<peak> rss_growth_last_half_mib=<RSS at the end - RSS at half way>

The workload writes (5% POSTs over 50,000 Zipf keys). The database's ``kv``
table starts with those 50,000 keys, as a production database holds its data
before the traffic comes, so its size is the workload's and not the run's
length (``--empty-db`` starts it empty: it then grows as keys are first
written, by about 3.6 MiB of SQLite memory from a 1M to a 10M run); everything
else the run keeps is bounded (LRU cache of 5,000 items, per-host series merged in
pairs past 3,600 rows, error tables of 20 rows, fixed-size histograms).
Targets: peak RSS under 60 MiB at 1M requests, and 10M requests no more than 1M's.
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from components import AppServer, CacheAside, CacheServer, Database, DatabaseClient, HealthCheck, L7Balancer
from playground import Exponential, LogNormal, OpenLoop, Request, Response, Sim, Workload

PAGE_MB = resource.getpagesize() / 2**20


def rss_mib() -> float:
    """Resident memory now (Linux ``/proc``; falls back to the peak elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_MB
    except OSError:
        return peak_rss_mib()


def peak_rss_mib() -> float:
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


KEYS = 50_000
PREFILL = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
           "INSERT INTO kv (key, value, version) SELECT CAST(i AS TEXT), 'v', 0 FROM n")


def stage4(seed: int, rate_per_s: float, apps: int, *, prefill: bool = False) -> tuple[Sim, OpenLoop]:
    """The topology; ``prefill`` starts the database with a row for every key the workload asks for."""
    sim = Sim(seed=seed)
    names = [f"app{i}" for i in range(1, apps + 1)]
    sim.add(L7Balancer("lb", names, health_check=HealthCheck(interval_s=1.0), timeout_s=2.0))
    for name in names:
        handler = app_handler(CacheAside("cache", ttl_s=300, timeout_s=0.05), DatabaseClient("db", timeout_s=2.0))
        sim.add(AppServer(name, handler, cores=4, cpu_s=Exponential(0.002), calls=("cache", "db")))
    sim.add(CacheServer("cache", capacity_items=5_000, ttl_s=300, concurrency=8))
    sim.add(Database("db", read_latency_s=LogNormal(0.002, 0.5), write_latency_s=LogNormal(0.005, 0.5), io_capacity=8,
                     schema=[PREFILL.format(last=KEYS - 1)] if prefill else ()))
    load = sim.load(OpenLoop("lb", rate=rate_per_s, timeout_s=5.0,
                             workload=Workload(keys=KEYS, zipf_exponent=1.0, write_share=0.05)))
    return sim, load


def tracemalloc_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = 15) -> str:
    """The source lines whose live allocations grew most between two snapshots."""
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    stats = after.filter_traces(skip).compare_to(before.filter_traces(skip), "lineno")
    lines = [f"  {st.size_diff / 1024:+10,.1f} KiB {st.count_diff:+9,d} blocks  {st.traceback[0]}" for st in stats[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to send (default 1,000,000)")
    parser.add_argument("--rate", type=float, default=2_000.0, help="arrivals per simulated second")
    parser.add_argument("--apps", type=int, default=4, help="app servers behind the balancer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samples", type=int, default=10, help="RSS samples along the run (default 10: every 10%%)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also print the allocations that grew between 20%% and 100%% of the run (slow)")
    parser.add_argument("--empty-db", action="store_true",
                        help="start the kv table empty instead of with the workload's 50,000 keys")
    parser.add_argument("--no-report", action="store_true", help="skip the run's report table")
    parser.add_argument("--progress", action="store_true", help="print each RSS sample to stderr as it is taken")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error(f"--requests must be >= 1, got {args.requests}")
    if args.samples < 2:
        parser.error(f"--samples must be >= 2 (the growth needs a half-way and an end sample), got {args.samples}")

    rss_start = rss_mib()
    sim, load = stage4(args.seed, args.rate, args.apps, prefill=not args.empty_db)
    duration_s = args.requests / args.rate * 1.005  # Poisson: five standard deviations over the target
    samples: list[tuple[float, int, float]] = []
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    wall0 = time.perf_counter()

    def sample(t: float) -> None:  # printed as it is taken, so a long run shows its curve while it goes
        samples.append((t, load.metrics.sent, rss_mib()))
        if args.progress:
            print(f"  at {t:,.0f} simulated s: {samples[-1][1]:,} sent, RSS {samples[-1][2]:.1f} MiB "
                  f"({time.perf_counter() - wall0:,.0f} s wall)", file=sys.stderr, flush=True)

    for i in range(1, args.samples + 1):
        sim.at(duration_s * i / args.samples, sample, duration_s * i / args.samples)
    if args.tracemalloc:
        tracemalloc.start()
        sim.at(duration_s * 0.2, lambda: snapshots.setdefault("20%", tracemalloc.take_snapshot()))
        sim.at(duration_s, lambda: snapshots.setdefault("100%", tracemalloc.take_snapshot()))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    report = sim.run(duration_s=duration_s)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = peak_rss_mib()  # the run's high-water mark, before rendering the report allocates anything

    cache = report.components["cache"].detail
    db = report.components["db"].detail
    if not args.no_report:
        print(report.render(width=160))
    print(f"machine: {cpu_model()}, Python {platform.python_version()}")
    print(f"requests sent: {report.sent:,} (ok {report.ok:,}, failed {report.failed:,}, in flight {report.in_flight})")
    print(f"simulated: {report.simulated_s:,.0f} s at {args.rate:,.0f} req/s; heap entries fired: {report.events_fired:,}")
    print(f"cache hit ratio: {cache['hit_ratio']:.1%}; database reads {db['reads']:,}, writes {db['writes']:,}, "
          f"kv rows {db.get('kv_rows', 0):,}")
    print(f"wall time: {wall:,.1f} s (CPU {cpu:,.1f} s)")
    print(f"simulated requests per wall-second: {report.sent / wall:,.0f} (per CPU-second: {report.sent / cpu:,.0f})")
    print(f"RSS: {rss_start:.1f} MiB before building, peak {peak:.1f} MiB (ru_maxrss at the end of the run)")
    print("RSS during the run (simulated s, requests sent, MiB): "
          + ", ".join(f"({t:.0f}, {n:,}, {mib:.1f})" for t, n, mib in samples))
    if len(snapshots) == 2:
        print("tracemalloc: allocations that grew between 20% and 100% of the run (note: tracemalloc inflates RSS)")
        print(tracemalloc_growth(snapshots["20%"], snapshots["100%"]))
    half = samples[len(samples) // 2 - 1][2] if len(samples) >= 2 else samples[-1][2]
    print(f"soak requests={report.sent} peak_rss_mib={peak:.1f} rss_growth_last_half_mib={samples[-1][2] - half:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
