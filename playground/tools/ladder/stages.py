"""The five topologies of the ladder, built from ``components``.

The same application runs on every stage: ``GET /item/<key>`` reads a row
(Zipf-popular keys), ``POST /item/<key>`` writes one, ``GET /static/...``
returns an asset. Costs, chosen to be ordinary for a Python web app and a
small SQL database (they are inputs, not measurements):

* app CPU per dynamic request: log-normal, median 9 ms (mean ~10 ms); 1 ms per static file;
* database read 4 ms, write 6 ms of IO, on 4 IO channels (a modest server);
* in the monolith the database runs on the app's own cores and memory
  (each query also costs 8 ms of the shared CPU).

Each stage's handler, capacities and wiring are below; ``STAGES`` lists them in
order with the story each one tells.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from ..._distributions import LogNormal
from ..._load import Population
from ..._messages import Request, Response
from ..._sim import Sim
from ..._workload import Workload
from .runner import LadderOptions

__all__ = ["Stage", "STAGES", "WORKLOAD", "app_handler"]

KEYS = 10_000
WORKLOAD = Workload(keys=KEYS, zipf_exponent=1.0, write_share=0.02, static_share=0.3, static_assets=50)
APP_CPU = LogNormal(median_s=0.009, sigma=0.45)
STATIC_CPU = 0.001
DB_READ_S = 0.004
DB_WRITE_S = 0.006
DB_IO = 4
ASSET = b"/* app.js */" + b"x" * 20_000
CLIENT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Stage:
    """One rung. ``users`` replaces the ladder's default populations for this stage; a stage that is
    not ``in_default`` runs only when asked for (``--stages 6``)."""

    key: str
    title: str
    story: str
    build: Callable[[int, LadderOptions], Sim]
    users: tuple[int, ...] | None = None
    in_default: bool = True


def _load(sim: Sim, target: str, users: int, opts: LadderOptions, **kw) -> None:
    sim.load(Population(target, users=users, requests_per_user_per_s=opts.requests_per_user_per_s,
                        workload=WORKLOAD, timeout_s=CLIENT_TIMEOUT_S, **kw))


@functools.lru_cache(maxsize=1)
def _seeded_store():
    """The rows every stage's database starts with, written once per process: a step copies them."""
    from components.database_store import SqlStore

    store = SqlStore()
    for k in range(KEYS):
        store.kv_put(str(k), f"item {k}")
    return store


def _seed_rows(db) -> None:
    # the same rows and version as writing them one by one (SQLite's backup copies the pages)
    db.store.copy_from(_seeded_store())


WARM_KEYS = 5_000


def _warm(cache) -> None:
    """Start a cache as production traffic leaves it: holding the hottest half of the keys.

    The ladder measures each stage in steady state; a cold start (every key a
    miss) is what tests/test_caching_story.py and examples/cache_aside.py show.
    """
    for k in range(WARM_KEYS):  # Zipf rank k is key k: the lowest keys are the hottest
        cache.store.set(f"item:{k}", f"item {k}".encode())


def _database(name: str = "db", **kw):
    from components import Database

    db = Database(name, read_latency_s=DB_READ_S, write_latency_s=DB_WRITE_S, io_capacity=DB_IO,
                  max_connections=200, queue_limit=2000, **kw)
    if kw.get("replica_of") is None:
        _seed_rows(db)
    return db


def app_handler(db, aside=None):
    """The application: the same code on every stage from 2 on (the monolith has its own)."""

    async def handler(request: Request, ctx) -> Response:
        path = request.route
        if path.startswith("/static/"):
            await ctx.cpu(STATIC_CPU)
            return Response(200, {"cache-control": "max-age=300", "content-type": "text/javascript"}, ASSET)
        if path == "/health":
            return Response(200, body=b"ok")
        key = path.rsplit("/", 1)[-1]
        await ctx.cpu(APP_CPU)
        if request.method == "POST":
            await db.put(ctx, key, request.body)
            if aside is not None:
                await aside.invalidate(ctx, f"item:{key}")
            return Response(201, body=b"saved")
        if aside is not None:
            async def load():
                value = await db.get(ctx, key)
                return None if value is None else value.encode()

            value = await aside.get(ctx, f"item:{key}", load)
        else:
            value = await db.get(ctx, key)
        if value is None:
            return Response(404, body=b"no such item")
        return Response(200, {"content-type": "text/plain"}, value if isinstance(value, bytes) else value.encode())

    return handler


# -- 1. monolith ------------------------------------------------------------------------------
def build_monolith(users: int, opts: LadderOptions) -> Sim:
    """App and database in one process on one 2-core machine with 2 GB of memory."""
    from components import AppServer

    from ..._distributions import Constant
    from ..._errors import RequestError

    store_db = _database("local-db")  # only its SQLite store is used: the queries run in-process
    store = store_db.store
    query_cpu = Constant(0.008)

    async def handler(request: Request, ctx) -> Response:
        path = request.route
        if path.startswith("/static/"):
            await ctx.cpu(STATIC_CPU)
            return Response(200, {"content-type": "text/javascript"}, ASSET)
        key = path.rsplit("/", 1)[-1]
        await ctx.cpu(APP_CPU)
        await ctx.cpu(query_cpu)  # the database's work, on the same cores
        if request.method == "POST":
            store.kv_put(key, request.body.decode(), ctx.server.sched.now)
            return Response(201, body=b"saved")
        row = store.kv_get(key)
        if row is None:
            raise RequestError("missing row")
        return Response(200, body=row[0].encode())

    sim = Sim(seed=opts.seed)
    sim.add(AppServer("monolith", handler, cores=2, workers=64, queue_limit=500, memory_mb=2048,
                      base_memory_mb=1024, memory_per_request_mb=4, restart_after_s=5.0))
    _load(sim, "monolith", users, opts)
    return sim


# -- 2. app + database --------------------------------------------------------------------------
def build_separate_db(users: int, opts: LadderOptions) -> Sim:
    from components import AppServer, DatabaseClient

    sim = Sim(seed=opts.seed)
    sim.add(_database())
    db = DatabaseClient("db", timeout_s=2.0)
    sim.add(AppServer("app", app_handler(db), cores=4, workers=64, queue_limit=500, calls=("db",)))
    _load(sim, "app", users, opts)
    return sim


# -- 3. horizontal: N app servers behind an L7 balancer -------------------------------------------
def _app_tier(sim: Sim, opts: LadderOptions, db, aside=None, prefix: str = "app", region: str | None = None,
              cores_budget: int | None = None) -> list[str]:
    from components import AppServer

    budget = cores_budget or opts.budget_cores
    if opts.scaling == "vertical":
        shapes = [(budget, 16 * budget)]
    else:
        shapes = [(4, 64)] * max(1, budget // 4)
    calls = tuple(db.hosts) + ((aside.cache_host,) if aside is not None else ())
    names = []
    for i, (cores, workers) in enumerate(shapes, 1):
        name = f"{prefix}{i}"
        sim.add(AppServer(name, app_handler(db, aside), cores=cores, workers=workers, queue_limit=500,
                          calls=calls, region=region))
        names.append(name)
    return names


def _balancer(name: str, backends: list[str], region: str | None = None):
    from components import HealthCheck, L7Balancer

    return L7Balancer(name, backends, retries=2, timeout_s=2.0, region=region,
                      health_check=HealthCheck(interval_s=0.5, timeout_s=0.25, rise=2, fall=2))


def build_horizontal(users: int, opts: LadderOptions) -> Sim:
    from components import DatabaseClient

    sim = Sim(seed=opts.seed)
    sim.add(_database())
    db = DatabaseClient("db", timeout_s=2.0)
    apps = _app_tier(sim, opts, db)
    if len(apps) == 1:  # vertical: one big machine, no balancer, no failover
        _load(sim, apps[0], users, opts)
    else:
        sim.add(_balancer("lb", apps))
        _load(sim, "lb", users, opts)
    duration = opts.duration_for(users)
    sim.at(duration * 0.4, sim.crash, apps[-1])  # failover, mid-run
    sim.at(duration * 0.7, sim.restart, apps[-1])
    return sim


# -- 4. + cache and CDN ------------------------------------------------------------------------------
def build_cached(users: int, opts: LadderOptions) -> Sim:
    from components import CDN, CacheAside, CacheServer, DatabaseClient

    sim = Sim(seed=opts.seed)
    sim.add(_database())
    _warm(sim.add(CacheServer("cache", capacity_items=20_000, ttl_s=300, concurrency=8)))
    db = DatabaseClient("db", timeout_s=2.0)
    aside = CacheAside("cache", ttl_s=300, timeout_s=0.05)
    apps = _app_tier(sim, opts, db, aside)
    if len(apps) > 1:
        sim.add(_balancer("lb", apps))
    origin = "lb" if len(apps) > 1 else apps[0]
    cdn = CDN("cdn", origin=origin, regions=["local"], ttl_s=300).add_to(sim)
    _route_static(sim, cdn.edge_for("local"), origin, users, opts)
    return sim


def _route_static(sim: Sim, edge: str, origin: str, users: int, opts: LadderOptions, region=None,
                  client: str = "client", resolver=None, target_name: str | None = None) -> None:
    """Users fetch static files from the CDN edge and everything else from the origin."""
    static = opts.requests_per_user_per_s * WORKLOAD.static_share
    dynamic = opts.requests_per_user_per_s - static
    sim.load(Population(edge, users=users, requests_per_user_per_s=static, timeout_s=CLIENT_TIMEOUT_S,
                        workload=Workload(static_share=1.0, static_assets=WORKLOAD.static_assets),
                        client=client, region=region, name=f"static@{client}"))
    dyn = Workload(keys=KEYS, zipf_exponent=WORKLOAD.zipf_exponent, write_share=WORKLOAD.write_share / (1 - WORKLOAD.static_share))
    kw = {"resolver": resolver} if resolver is not None else {}
    sim.load(Population(target_name or origin, users=users, requests_per_user_per_s=dynamic,
                        timeout_s=CLIENT_TIMEOUT_S, workload=dyn, client=client, region=region,
                        name=f"dynamic@{client}", **kw))


# -- 5. + DNS, two balancers, regions -------------------------------------------------------------------
REGIONS = ("us", "eu", "ap")
REGION_SHARE = {"us": 0.4, "eu": 0.35, "ap": 0.25}


def build_global(users: int, opts: LadderOptions) -> Sim:
    from components import CDN, CacheAside, CacheServer, DatabaseClient, DNSServer, Resolver

    sim = Sim(seed=opts.seed)
    sim.region_link("us", "eu", 0.040)
    sim.region_link("us", "ap", 0.075)
    sim.region_link("eu", "ap", 0.080)
    sim.add(_database("db", region="us"))
    balancers = []
    for region in REGIONS:
        replica = f"db-{region}"
        sim.add(_database(replica, replica_of="db", replication_lag_s=0.05, region=region))
        cache = f"cache-{region}"
        _warm(sim.add(CacheServer(cache, capacity_items=20_000, ttl_s=300, concurrency=8, region=region)))
        db = DatabaseClient("db", replicas=[replica], timeout_s=2.0)
        aside = CacheAside(cache, ttl_s=300, timeout_s=0.05)
        share = REGION_SHARE[region]
        apps = _app_tier(sim, opts, db, aside, prefix=f"app-{region}-", region=region,
                         cores_budget=max(8, int(opts.budget_cores * 8 * share) // 4 * 4))
        for i in (1, 2):  # two balancers per region: no single point of failure
            lb = f"lb-{region}-{i}"
            sim.add(_balancer(lb, apps, region=region))
            balancers.append(lb)
    sim.add(DNSServer("dns", {"www": balancers}, policy="geo", ttl_s=30, region="us"))
    cdn = CDN("cdn", origin=balancers[0], regions=list(REGIONS), ttl_s=300).add_to(sim)
    resolver = Resolver("dns")
    for region in REGIONS:
        n = max(1, round(users * REGION_SHARE[region]))
        _route_static(sim, cdn.edge_for(region), "www", n, opts, region=region, client=f"users-{region}",
                      resolver=resolver, target_name="www")
    return sim


# -- 6. beyond a million: see beyond.py -------------------------------------------------------------------
def build_beyond(users: int, opts: LadderOptions) -> Sim:
    from .beyond import build_beyond as build

    return build(users, opts)


STAGES = [
    Stage("1", "monolith", "App and database share one 2-core machine: CPU saturates, memory fills, "
          "requests queue, time out and fail.", build_monolith),
    Stage("2", "app + database", "The database moves to its own server; the app server's CPU is now the limit.",
          build_separate_db),
    Stage("3", "horizontal + L7 balancer", "N app servers behind an L7 balancer with health checks and retries "
          "(one crashes mid-run); the single database's reads are the limit.", build_horizontal),
    Stage("4", "+ cache + CDN", "Cache-aside in front of the database and a CDN for static files take most reads "
          "off the database; the app tier's CPU is the next limit.", build_cached),
    Stage("5", "+ DNS, regions", "Geo DNS in front of two balancers per region, app servers, a cache and a read "
          "replica in each region: a million users.", build_global),
    Stage("6", "beyond a million", "An autoscaled app tier behind a rate-limited edge, writes through a queue, "
          "reads through a cache cluster, 8 database shards with replicas and failover: ten million users; past "
          "the fleet's largest size the edge sheds the excess with 429s.", build_beyond,
          users=(1_000_000, 10_000_000, 20_000_000), in_default=False),
]
