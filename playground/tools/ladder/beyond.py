"""Stage 6, beyond a million: the patterns of scale put together, for ten million users.

The same application and the same rate per user as the other stages, at ten
times stage 5's population. What changes is the shape of the system:

* the edge: a CDN for static files and one L7 balancer that rate-limits the
  whole site (a global token bucket) to what the app fleet can serve at its
  largest - past that, excess requests get a quick 429 instead of making
  every request slow;
* the app tier: an ``AutoScaler`` with target tracking on CPU (60%), up to
  ``MAX_SERVERS`` servers of 16 cores. Each step measures steady state, so the
  group starts at the size its policy settles on for the step's load (as the
  caches start warm); the scaler keeps running;
* reads: cache-aside over a 16-node cache cluster (keys placed on a
  consistent-hash ring, as memcached clients do), misses to the nearest
  replica of the shard that owns the key;
* writes: the app enqueues them (``MessageQueue``) and answers 202 at once;
  worker pools write them to the owning shard and invalidate the cache;
* the database: 8 shards on a consistent-hash ring, each a primary with two
  replicas and a ``FailoverMonitor``; clients hold each shard's hosts as
  endpoints, so they follow a promotion.

Where it breaks: once the fleet is at ``MAX_SERVERS`` (the budget's ceiling),
the edge's rate limit - sized to that fleet - sheds the excess with 429s.
Capacities (inputs, not measurements) are the module's constants.
"""
from __future__ import annotations

import math

from playground import Response, Sim
from components import (CDN, AppServer, AutoScaler, CacheAside, CacheServer, ConsistentHashSharding, Database,
                        DatabaseClient, FailoverMonitor, HealthCheck, L7Balancer, MessageQueue, QueueClient,
                        RateLimit, ShardRouter, TargetTracking, TokenBucket, WorkerPool)

from .runner import LadderOptions
from .stages import (APP_CPU, ASSET, DB_READ_S, DB_WRITE_S, KEYS, STATIC_CPU, WARM_KEYS, WORKLOAD,
                     _route_static)

__all__ = ["build_beyond", "MAX_SERVERS", "EDGE_LIMIT_PER_S"]

SERVER_CORES = 16
MAX_SERVERS = 150
TARGET_CPU = 0.6
# what 150 servers of 16 cores serve at ~75% CPU with ~10 ms of CPU per dynamic request
EDGE_LIMIT_PER_S = 180_000
SHARDS = 8
CACHES = 16
WORKER_POOLS = 4
CONSUMERS = 32
DB_IO = 8


def _dynamic_rate(users: int, opts: LadderOptions) -> float:
    return users * opts.requests_per_user_per_s * (1 - WORKLOAD.static_share)


def fleet_size(users: int, opts: LadderOptions) -> int:
    """The size target tracking settles on for this load (what the edge lets through), within the group's bounds."""
    admitted = min(_dynamic_rate(users, opts), EDGE_LIMIT_PER_S)
    wanted = math.ceil(admitted * APP_CPU.mean_s / (SERVER_CORES * TARGET_CPU))
    return max(2, min(MAX_SERVERS, wanted))


def _shard_names() -> list[str]:
    return [f"shard{i}" for i in range(SHARDS)]


def _database_tier(sim: Sim, ring: ConsistentHashSharding) -> DatabaseClient:
    shards = _shard_names()
    clients = []
    for name in shards:
        primary = sim.add(Database(name, read_latency_s=DB_READ_S, write_latency_s=DB_WRITE_S, io_capacity=DB_IO,
                                   max_connections=400, queue_limit=2000))
        for k in range(KEYS):  # each shard starts with the rows it owns
            if ring.shard_for(str(k), shards) == name:
                primary.store.kv_put(str(k), f"item {k}")
        replicas = [f"{name}-r{i}" for i in (1, 2)]
        for replica in replicas:
            sim.add(Database(replica, replica_of=name, replication_lag_s=0.05, read_latency_s=DB_READ_S,
                             write_latency_s=DB_WRITE_S, io_capacity=DB_IO, max_connections=400, queue_limit=2000))
        sim.add(FailoverMonitor(f"{name}-monitor", primary=name, replicas=replicas, check_interval_s=1,
                                failures_to_promote=3, promote_delay_s=5))
        clients.append(DatabaseClient(endpoints=[name, *replicas], replicas=replicas, timeout_s=2.0))
    return DatabaseClient(shards=ShardRouter(clients, policy=ring))


def _cache_tier(sim: Sim, ring: ConsistentHashSharding) -> dict[str, CacheAside]:
    names = [f"cache{i}" for i in range(CACHES)]
    caches = {name: sim.add(CacheServer(name, capacity_items=4 * KEYS // CACHES, ttl_s=300, concurrency=8))
              for name in names}
    for k in range(WARM_KEYS):  # warm, as in stages 4 and 5: the hottest half of the keys
        caches[ring.shard_for(f"item:{k}", names)].store.set(f"item:{k}", f"item {k}".encode())
    return {name: CacheAside(name, ttl_s=300, timeout_s=0.05) for name in names}


def build_beyond(users: int, opts: LadderOptions) -> Sim:
    sim = Sim(seed=opts.seed)
    ring = ConsistentHashSharding(vnodes=100)
    db = _database_tier(sim, ring)
    asides = _cache_tier(sim, ring)
    cache_names = list(asides)

    def aside_for(key: str) -> CacheAside:
        return asides[ring.shard_for(f"item:{key}", cache_names)]

    sim.add(MessageQueue("writes", capacity=1_000_000, visibility_timeout_s=30))
    writes = QueueClient("writes", timeout_s=1.0)

    async def app(request, ctx) -> Response:
        path = request.route
        if path.startswith("/static/"):
            await ctx.cpu(STATIC_CPU)
            return Response(200, {"cache-control": "max-age=300", "content-type": "text/javascript"}, ASSET)
        if path == "/health":
            return Response(200, body=b"ok")
        key = path.rsplit("/", 1)[-1]
        await ctx.cpu(APP_CPU)
        if request.method == "POST":
            await writes.send(ctx, request.body, headers={"x-key": key})
            return Response(202, body=b"queued")

        async def load():
            value = await db.get(ctx, key)
            return None if value is None else value.encode()

        value = await aside_for(key).get(ctx, f"item:{key}", load)
        if value is None:
            return Response(404, body=b"no such item")
        return Response(200, {"content-type": "text/plain"}, value)

    async def write(message, ctx):
        key = message.headers["x-key"]
        await db.put(ctx, key, message.body)
        await aside_for(key).invalidate(ctx, f"item:{key}")

    calls = (*db.hosts, *cache_names, "writes")
    for i in range(1, WORKER_POOLS + 1):
        sim.add(WorkerPool(f"writer{i}", queue="writes", handler=write, concurrency=CONSUMERS, calls=calls))

    sim.add(L7Balancer("edge", [], retries=1, timeout_s=2.0,
                       # a burst of 1 ms of traffic: the limit holds on the scale of a short step too
                       rate_limit=RateLimit(TokenBucket(rate_per_s=EDGE_LIMIT_PER_S, burst=EDGE_LIMIT_PER_S // 1000),
                                            key="global"),
                       health_check=HealthCheck(interval_s=1.0, timeout_s=0.25, rise=2, fall=2)))
    size = fleet_size(users, opts)
    sim.add(AutoScaler("web", balancer="edge", min_size=size, max_size=MAX_SERVERS,
                       policy=TargetTracking(cpu_utilisation=TARGET_CPU), boot_s=30, interval_s=10,
                       factory=lambda name: AppServer(name, app, cores=SERVER_CORES, workers=16 * SERVER_CORES, queue_limit=2000,
                                                      calls=calls)))
    cdn = CDN("cdn", origin="edge", regions=["local"], ttl_s=300).add_to(sim)
    _route_static(sim, cdn.edge_for("local"), "edge", users, opts)
    return sim
