"""Cache stampede: a hot key expires under load.

An app server reads rows through cache-aside (``components.CacheAside``) at
500 requests/s, Zipf-skewed over 100 keys so that about 28% of the requests
are for key "0". A database read takes 100 ms. Key "0" is in the cache and
expires 2 s into the run.

Without request coalescing, every request for "0" that misses during the
100 ms the first reload takes goes to the database too: a thundering herd on
the hottest row. With coalescing (the default; "single flight"), the first miss
loads it and the others wait for that one load. What to look for: the number
of database queries for key "0" (many vs exactly 1) and how many requests
waited for the one load.

    python examples/stampede.py
"""
from __future__ import annotations

from collections import Counter

from components import AppServer, CacheAside, CacheServer, Database
from playground import OpenLoop, Request, Response, Sim, Workload


def run(coalesce: bool):
    sim = Sim(seed=7)
    db = sim.add(Database("db", read_latency_s=0.1, io_capacity=16, max_connections=500, queue_limit=1000))
    for k in range(100):
        db.store.kv_put(str(k), f"row {k}")
    cache = sim.add(CacheServer("cache", capacity_items=250))
    cache.store.set("0", b"row 0", ttl_s=2.0)  # the hot key, cached already, expires at t=2 s
    aside = CacheAside("cache", ttl_s=60, coalesce=coalesce)
    loads = Counter()

    async def handler(request, ctx):
        key = request.route.rsplit("/", 1)[1]

        async def load():
            loads[key] += 1
            resp = await ctx.call("db", Request("GET", f"/kv/{key}"), timeout_s=5.0)
            return resp.body if resp.status == 200 else None

        return await aside.get(ctx, key, load) or Response(404)

    sim.add(AppServer("app", handler, cores=2, workers=64, queue_limit=1000, calls=("db", "cache")))
    sim.load(OpenLoop("app", rate=500, workload=Workload(keys=100, zipf_exponent=1.2)))
    report = sim.run(3)
    print(f"coalesce={coalesce!s:5}: {loads['0']:3} database queries for the hot key; "
          f"{aside.stats().coalesced_waits:3} requests waited for a load in flight (any key); "
          f"{report.component('db').detail['reads']} database reads in all; {report.failed} errors")
    return loads["0"]


herd = run(coalesce=False)
single = run(coalesce=True)
print(f"\nHot key expiry: {herd} database queries without coalescing, {single} with coalescing.")
