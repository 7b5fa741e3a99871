"""Application code written against aiocache, running on the simulated cache.

``profile`` below is ordinary aiocache code: ``await cache.get(...)``,
``await cache.set(..., ttl=30)``, a pickle serializer, a namespace. Here the
cache is ``components.SimulatedCache``: each call is a request over the
simulated network to a ``CacheServer`` host (with its latency, evictions,
TTLs on virtual time, and crashes). In production the same code would take
aiocache's ``RedisCache``.

What to look for: 200 profile reads/s over 500 users (Zipf) for 10 s; each
second's cache hit ratio and SQL queries. The cache crashes at t=5 s and is
back at t=6 s, empty: during the outage every read is a cache error served
from the database (no user error), then the hit ratio climbs again.

    python examples/aiocache_api.py
"""
from __future__ import annotations

from collections import Counter

from aiocache.serializers import PickleSerializer

from components import AppServer, CacheServer, Database, DatabaseClient, SimulatedCache
from playground import OpenLoop, RequestError, Sim, Workload

db = DatabaseClient("db")
seen = Counter()  # (second, what) -> count


async def profile(request, ctx):
    user_id = int(request.route.rsplit("/", 1)[1])
    cache = SimulatedCache(ctx, "cache", namespace="profile:", serializer=PickleSerializer(), op_timeout_s=0.05)
    second = int(ctx.now)
    try:
        found = await cache.get(user_id)
    except RequestError:  # the cache is down: serve from the database
        found = None
        seen[second, "cache error"] += 1
    if found is not None:
        seen[second, "hit"] += 1
        return found
    seen[second, "sql"] += 1
    (name, plan), = await db.query(ctx, "SELECT name, plan FROM users WHERE id = ?", [user_id])
    found = {"id": user_id, "name": name, "plan": plan}
    try:
        await cache.set(user_id, found, ttl=30)
    except RequestError:
        pass
    return found  # a dict: the app server answers with JSON


sim = Sim(seed=1)
users_db = sim.add(Database("db", schema="CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, plan TEXT)",
                            read_latency_s=0.010))
for i in range(500):
    users_db.direct("INSERT INTO users VALUES (?, ?, ?)", [i, f"user {i}", "pro" if i % 7 == 0 else "free"])
sim.add(CacheServer("cache", capacity_items=200))
sim.add(AppServer("app", profile, cores=2, calls=("db", "cache")))
sim.load(OpenLoop("app", rate=200, workload=Workload(keys=500, item_path="/profile/{key}")))
sim.at(5, sim.crash, "cache", 1.0)
report = sim.run(10)

print("second  reads  cache hits  cache errors  SQL queries  hit ratio   p99 ms")
for row in report.series["openloop->app"]:
    t = int(row.t_s)
    hits, errors, sql = seen[t, "hit"], seen[t, "cache error"], seen[t, "sql"]
    print(f"{t:>6} {hits + sql:>6} {hits:>11} {errors:>13} {sql:>12} {hits / max(1, hits + sql):>10.0%} "
          f"{row.p99_s * 1000:>8.1f}")
cache = report.component("cache").detail
print(f"\n{report.ok} of {report.sent} reads answered ({report.failed} errors); "
      f"cache hits {cache['hits']}, misses {cache['misses']}, evictions {cache['evictions']}; "
      f"{report.component('db').detail['reads']} SQL queries; events: "
      + "; ".join(f"t={t:g}s {what}" for t, what in report.events))
