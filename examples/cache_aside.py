"""Cache-aside in front of a slow database: warming up, hit ratio, and an LRU that is too small.

An app server reads rows (``GET /item/<key>``, Zipf-popular over 1,000 keys,
360 reads/s) from a database that manages about 400 reads/s (8 IO channels,
20 ms mean per read): without a cache it runs at ~90% and queues. With
cache-aside (``components.CacheAside`` over a ``CacheServer`` holding 250
items, LRU) the app asks the cache first and loads from the database only on
a miss.

What to look for: the cache starts cold, so the first second's hit ratio is
low and climbs as the hot keys arrive; overall ~70% of reads hit, database
queries drop by more than half and p99 halves. Then a cache far
too small for a uniform working set (6 items for 300 keys) thrashes: almost
every read misses and almost every set evicts something.

    python examples/cache_aside.py
"""
from __future__ import annotations

from components import AppServer, CacheAside, CacheServer, Database
from playground import Exponential, OpenLoop, Request, Response, Sim, Workload


WARMUP = (0.1, 0.25, 0.5, 1, 2, 5, 10)  # seconds


def run(aside: CacheAside | None, *, keys=1000, zipf_exponent=1.0, rate=360, capacity_items=250, seconds=10):
    sim = Sim(seed=7)
    db = sim.add(Database("db", read_latency_s=Exponential(0.02), io_capacity=8, max_connections=500,
                          queue_limit=1000))
    for k in range(keys):
        db.store.kv_put(str(k), f"row {k}")

    async def handler(request, ctx):
        key = request.route.rsplit("/", 1)[1]

        async def load():  # the database read, only on a miss
            resp = await ctx.call("db", Request("GET", f"/kv/{key}"), timeout_s=5.0)
            return resp.body if resp.status == 200 else None

        value = await load() if aside is None else await aside.get(ctx, key, load)
        return value or Response(404)

    if aside is not None:
        sim.add(CacheServer("cache", capacity_items=capacity_items))
    calls = ("db", "cache") if aside else ("db",)
    sim.add(AppServer("app", handler, cores=4, workers=128, queue_limit=1000, calls=calls))
    sim.load(OpenLoop("app", rate=rate, workload=Workload(keys=keys, zipf_exponent=zipf_exponent)))
    seen = []  # (t, hits, misses) so far, at each edge of WARMUP
    if aside is not None:
        for t in WARMUP:
            sim.at(t - 1e-9, lambda t=t: seen.append((t, aside.hits, aside.misses)))
    return sim.run(seconds), seen


without, _ = run(None)
aside = CacheAside("cache", ttl_s=300)
with_cache, warmup = run(aside)
ratios, last = [], (0, 0, 0)
for t, hits, misses in warmup:
    reads = hits - last[1] + misses - last[2]
    ratios.append(f"{last[0]:g}-{t:g}s {(hits - last[1]) / max(1, reads):.0%}")
    last = (t, hits, misses)
cache = with_cache.component("cache").detail
print("Cold cache warming up, hit ratio: " + ", ".join(ratios))
print(f"Overall hit ratio {cache['hit_ratio']:.1%} ({cache['hits']} hits, {cache['misses']} misses, "
      f"{cache['items']} items held)")
print(f"Database queries: {without.component('db').detail['reads']} without the cache -> "
      f"{with_cache.component('db').detail['reads']} with it")
print(f"p50 {without.p50_s * 1000:.1f} -> {with_cache.p50_s * 1000:.1f} ms, "
      f"p99 {without.p99_s * 1000:.1f} -> {with_cache.p99_s * 1000:.1f} ms "
      f"(errors {without.failed}, {with_cache.failed})")

print("\nUniform reads over 300 keys, 200/s:")
for capacity in (300, 6):
    report, _ = run(CacheAside("cache"), keys=300, zipf_exponent=0.0, rate=200, capacity_items=capacity)
    d = report.component("cache").detail
    print(f"  LRU with room for {capacity:>3} items: hit ratio {d['hit_ratio']:.1%}, "
          f"{d['evictions']} evictions for {d['sets']} sets, p99 {report.p99_s * 1000:.1f} ms")
