"""Demos: copy one, change the topology or the numbers, and test your own idea.

Each test is a small scenario under virtual time: build a ``Sim``, add load,
schedule a fault with ``sim.at``, ``await sim.run_async(seconds)`` and assert
on what users saw (``report.p99_s``, ``report.failed``, ``report.series``) and
what components did (``report.components[name].detail``). The
``virtual_clock`` fixture (registered by the playground package) runs a
simulated minute in well under a second of wall time. The docstring of each
test says which knob to turn to ask a different question.
"""
from __future__ import annotations

from components import (AppServer, CacheAside, CacheServer, Database, DatabaseClient, DNSServer, HealthCheck,
                        L7Balancer, Resolver)
from playground import Exponential, OpenLoop, Sim, Workload

KEYS = 1000


def database(sim: Sim, **kw) -> Database:
    """A database holding rows 0..KEYS-1 in its key-value table."""
    db = sim.add(Database("db", max_connections=500, queue_limit=1000, **kw))
    for k in range(KEYS):
        db.store.kv_put(str(k), f"row {k}")
    return db


def item_app(db: DatabaseClient, aside: CacheAside | None = None, cpu_s: float = 0.004):
    """``GET /item/<key>``: some CPU, then the row (through the cache if there is one); ``/health`` checks the row 0."""

    async def handler(request, ctx):
        key = "0" if request.route == "/health" else request.route.rsplit("/", 1)[1]
        if request.route != "/health":
            await ctx.cpu(cpu_s)

        async def load():
            value = await db.get(ctx, key)
            return None if value is None else value.encode()

        value = await (aside.get(ctx, key, load) if aside is not None else load())
        return value or b"not found"

    return handler


async def test_after_adding_a_cache_database_queries_drop_by_more_than_half_and_p99_improves(virtual_clock):
    """One app server, 350 reads/s, Zipf over 1,000 keys, a database good for ~400 reads/s.

    Measured (seed 1): database reads 3,475 -> 1,017, p99 144 -> 77 ms.
    Adapt it: change ``capacity_items`` (what if the cache holds 50 items?),
    ``zipf_exponent`` (0 is uniform: does the cache still help?), or the TTL.
    """

    def site(with_cache: bool) -> tuple[Sim, CacheAside | None]:
        sim = Sim(seed=1)
        database(sim, read_latency_s=Exponential(0.02), io_capacity=8)
        aside = None
        if with_cache:
            sim.add(CacheServer("cache", capacity_items=250))
            aside = CacheAside("cache", ttl_s=300)
        calls = ("db", "cache") if with_cache else ("db",)
        sim.add(AppServer("app", item_app(DatabaseClient("db"), aside), cores=4, workers=128, calls=calls))
        sim.load(OpenLoop("app", rate=350, workload=Workload(keys=KEYS, zipf_exponent=1.0)))
        return sim, aside

    sim, _ = site(with_cache=False)
    before = await sim.run_async(10)
    sim, aside = site(with_cache=True)
    after = await sim.run_async(10)

    assert before.failed == after.failed == 0
    queries_before = before.components["db"].detail["reads"]
    queries_after = after.components["db"].detail["reads"]
    assert queries_after < queries_before / 2
    assert after.p99_s < before.p99_s
    assert aside.stats().hits > aside.stats().misses


async def test_p99_stays_under_200_ms_during_a_partition_between_one_app_server_and_the_database(virtual_clock):
    """Three app servers behind a balancer with deep health checks (``/health`` reads from the
    database) and retries; app1 loses the database for 10 s. Measured (seed 1):
    app1 is marked down 0.6 s into the partition; the worst second's p99 is
    148 ms (requests that waited out the 100 ms database timeout, then were
    retried), 0 errors.

    Adapt it: make the health check shallow (answer ``/health`` without the
    database) and watch p99 grow, set ``retries=0`` and watch errors appear,
    or raise the database client's ``timeout_s`` and see what one slow
    dependency costs each request.
    """
    sim = Sim(seed=1)
    database(sim, read_latency_s=0.004, io_capacity=8)
    apps = ["app1", "app2", "app3"]
    db = DatabaseClient("db", timeout_s=0.1)
    for name in apps:
        sim.add(AppServer(name, item_app(db), cores=2, calls=("db",)))
    sim.add(L7Balancer("lb", apps, retries=2, health_check=HealthCheck(interval_s=0.5, timeout_s=0.25, fall=2)))
    sim.load(OpenLoop("lb", rate=200, workload=Workload(keys=KEYS), name="users"))
    sim.at(5, sim.partition, "app1", "db")
    sim.at(15, sim.repair, "app1", "db")

    report = await sim.run_async(20)

    assert report.failed == 0
    assert report.p99_s < 0.200
    during = [row for row in report.series["users"] if 5 <= row.t_s < 15]
    assert max(row.p99_s for row in during) < 0.200
    assert "lb: app1 marked down" in [what for _, what in report.events]


async def test_two_balancers_behind_dns_crashing_one_costs_no_more_than_5_percent_errors(virtual_clock):
    """Two balancers behind round-robin DNS (TTL 5 s), each in front of two app servers.

    lb1 crashes at t=10 s; a health checker (here: ``sim.at``) removes its
    address from DNS 1 s later, and clients move as their cached answers
    expire. Errors come from the clients whose answer still says lb1: half the
    traffic for at most 1 s + one TTL, so at most 3 s of full traffic in a
    minute, 5%. Measured (seed 1): 4.7% (answers cached just before the crash
    live until t=15 s), none after. Adapt it: raise ``ttl_s`` to 60 and watch
    the error budget go, or remove the address sooner.
    """
    sim = Sim(seed=1)
    apps = ["app1", "app2", "app3", "app4"]
    for name in apps:
        sim.add(AppServer(name, cores=2, cpu_s=Exponential(0.004)))
    sim.add(L7Balancer("lb1", apps[:2], retries=1))
    sim.add(L7Balancer("lb2", apps[2:], retries=1))
    dns = sim.add(DNSServer("dns", {"www": ["lb1", "lb2"]}, ttl_s=5))
    resolver = Resolver("dns")
    for i in range(10):  # ten client networks, each with its own resolver cache
        sim.load(OpenLoop("www", client=f"users-{i}", rate=10, resolver=resolver))
    sim.at(10, sim.crash, "lb1")
    sim.at(11, dns.remove_address, "www", "lb1")

    report = await sim.run_async(60)

    assert report.errors.keys() <= {"refused", "reset"}  # new connections to lb1, and what it held
    assert report.error_rate < 0.05
    late = [row for load in report.series.values() for row in load if row.t_s >= 10 + 1 + 5 + 1]
    assert sum(row.errors for row in late) == 0  # every cached answer for lb1 has expired


async def test_the_smallest_app_tier_that_keeps_p99_under_50_ms_at_500_requests_per_s(virtual_clock):
    """Capacity planning: 500 req/s at 4 ms of CPU each (2 cores' worth) on 1-core app servers.

    Try 2 to 4 servers behind a least-connections balancer and keep the
    smallest that meets the SLO. Measured (seed 1): two servers run at 100%
    and their queue keeps growing (p99 108 ms after 5 s); three run at ~67%
    (p99 29 ms); four give p99 24 ms. Adapt it: change the
    rate, the CPU per request, the cores per server or the SLO; crash one
    server (``sim.at(2, sim.crash, "app0")``) to plan for N+1.
    """
    from components import LeastConnections

    p99_by_servers = {}
    for servers in range(2, 5):
        sim = Sim(seed=1)
        apps = [f"app{i}" for i in range(servers)]
        for name in apps:
            sim.add(AppServer(name, cores=1, cpu_s=Exponential(0.004), workers=16, queue_limit=100))
        sim.add(L7Balancer("lb", apps, policy=LeastConnections()))
        sim.load(OpenLoop("lb", rate=500, timeout_s=2))
        report = await sim.run_async(5)
        p99_by_servers[servers] = report.p99_s if report.failed == 0 else float("inf")

    smallest = min(n for n, p99 in p99_by_servers.items() if p99 < 0.050)
    assert smallest == 3, p99_by_servers
    assert p99_by_servers[4] < p99_by_servers[3]  # headroom buys latency
