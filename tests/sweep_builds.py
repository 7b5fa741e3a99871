"""Small build functions for the sweep tests (a module, so worker processes can import them)."""
from __future__ import annotations

from components import AppServer, L4Balancer
from playground import ConfigError, Exponential, OpenLoop, Sim


def servers_build(servers: int = 2, rate: float = 150.0, cpu_ms: float = 10.0) -> Sim:
    """``servers`` app servers of 1 core behind a balancer, Poisson arrivals, exponential work."""
    if not (isinstance(servers, int) and servers >= 1):
        raise ConfigError(f"servers must be an integer >= 1, got {servers!r}")
    sim = Sim()
    names = [f"app{i}" for i in range(servers)]
    for n in names:
        sim.add(AppServer(n, cores=1, cpu_s=Exponential(cpu_ms / 1000)))
    sim.add(L4Balancer("lb", names))
    sim.load(OpenLoop("lb", rate=rate, timeout_s=5.0))
    return sim


def dict_build(params: dict) -> Sim:
    return servers_build(**params)


def flaky_build(servers: int = 2, explode: bool = False) -> Sim:
    sim = servers_build(servers)
    if explode:
        sim.at(1.0, lambda: None)
        raise RuntimeError(f"boom at servers={servers}")
    return sim


CALLS = {"n": 0, "interrupt_at": None}


def interrupting_build(servers: int = 2) -> Sim:
    """Raises KeyboardInterrupt (as Ctrl-C would) on call number ``CALLS["interrupt_at"]``."""
    CALLS["n"] += 1
    if CALLS["n"] == CALLS["interrupt_at"]:
        raise KeyboardInterrupt
    return servers_build(servers)


def cold_cache_build(cache: bool = True, rate: float = 200.0, keys: int = 100) -> Sim:
    """Users -> one app -> (a cache, empty at the start) -> a database that takes 20 ms a read.

    With the cache, the first seconds miss and queue at the database; as the hot keys settle
    in, reads hit and latency falls: a start-up transient that a warm-up should cut off.
    """
    from components import AppServer, CacheAside, CacheServer, Database
    from playground import Request, Response, Workload

    sim = Sim()
    db = sim.add(Database("db", max_connections=500, queue_limit=5000, read_latency_s=Exponential(0.02),
                          io_capacity=8))
    for k in range(keys):
        db.direct("INSERT INTO kv (key, value, version) VALUES (?, ?, 1)", [str(k), f"row {k}"])
    aside = None
    if cache:
        sim.add(CacheServer("cache", capacity_items=keys))
        aside = CacheAside("cache", ttl_s=3600)

    async def handler(request, ctx):
        key = request.route.rsplit("/", 1)[1]

        async def load():
            resp = await ctx.call("db", Request("GET", f"/kv/{key}"), timeout_s=5.0)
            return resp.body if resp.status == 200 else None

        value = await load() if aside is None else await aside.get(ctx, key, load)
        return value if value is not None else Response(404, body=b"not found")

    sim.add(AppServer("app", handler, cores=4, cpu_s=Exponential(0.002), workers=256, queue_limit=5000,
                      calls=("db", "cache") if cache else ("db",)))
    sim.load(OpenLoop("app", rate=rate, workload=Workload(keys=keys, zipf_exponent=1.0)))
    return sim


def shared_random_build(servers: int = 2) -> Sim:
    """``servers_build`` with a handler that draws its work from Python's shared ``random`` module."""
    import random

    async def handler(request, ctx):
        await ctx.cpu(random.expovariate(200))
        return "ok"

    sim = Sim()
    names = [f"app{i}" for i in range(servers)]
    for n in names:
        sim.add(AppServer(n, handler, cores=1))
    sim.add(L4Balancer("lb", names))
    sim.load(OpenLoop("lb", rate=150.0, timeout_s=5.0))
    return sim
