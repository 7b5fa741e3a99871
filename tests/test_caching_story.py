"""Caching, told as stories: a cache in front of a slow database, and how it goes wrong.

(a) Skewed (Zipf) traffic through two app servers using cache-aside: most reads
    hit, the database sees far fewer queries, the p99 drops.
(b) An LRU far too small for the working set thrashes: nearly every read misses
    and nearly every set evicts something.
(c) A hot key expires under load: without request coalescing every request
    that misses queries the database (a stampede); with it, exactly one does.
(d) Application code using aiocache's API runs against the simulated cache,
    round-tripping Python objects, with TTLs on virtual time.
Plus: a cache outage falls back to the database; "not found" is cached.
"""
from __future__ import annotations

from collections import Counter

import pytest
from aiocache.serializers import PickleSerializer

from components import AppServer, CacheAside, CacheServer, Database, SimulatedCache
from playground import ConfigError, Exponential, Node, OpenLoop, Request, Response, Sim, Workload


def item_handler(aside: CacheAside | None, loads: Counter):
    """The app: GET /item/<key> reads row <key> from the database, through the cache if there is one."""

    async def handler(request, ctx):
        key = request.route.rsplit("/", 1)[1]

        async def load():
            loads[key] += 1
            resp = await ctx.call("db", Request("GET", f"/kv/{key}"), timeout_s=5.0)
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise RuntimeError(f"database answered {resp.status}")
            return resp.body

        value = await load() if aside is None else await aside.get(ctx, key, load)
        return value if value is not None else Response(404, body=b"not found")

    return handler


def site(aside: CacheAside | None, *, apps=("app1", "app2"), rate_per_app=180.0, keys=1000, rows=None,
         zipf_exponent=1.0, cache_kw=None, db_kw=None, seed=7) -> tuple[Sim, Counter]:
    """Users -> app servers -> (cache) -> database holding rows 0..rows-1. Returns the sim and loads per key."""
    sim = Sim(seed=seed)
    db = sim.add(Database("db", max_connections=500, queue_limit=1000,
                          **(db_kw or {"read_latency_s": Exponential(0.02), "io_capacity": 8})))
    for k in range(keys if rows is None else rows):
        db.direct("INSERT INTO kv (key, value, version) VALUES (?, ?, 1)", [str(k), f"row {k}"])
    if aside is not None:
        sim.add(CacheServer("cache", **(cache_kw or {"capacity_items": 250})))
    loads: Counter = Counter()
    for i, name in enumerate(apps):
        calls = ("db", "cache") if aside is not None else ("db",)
        sim.add(AppServer(name, item_handler(aside, loads), cores=2, workers=64, queue_limit=1000, calls=calls))
        sim.load(OpenLoop(name, rate=rate_per_app, client=f"users{i + 1}",
                          workload=Workload(keys=keys, zipf_exponent=zipf_exponent)))
    return sim, loads


def worst_p99(report) -> float:
    return max(c.latency.p99_s for c in report.clients.values())


# -- (a) ----------------------------------------------------------------------------------
async def test_a_cache_in_front_of_a_slow_database_absorbs_skewed_reads(virtual_clock):
    # 360 reads/s against a database that manages 400/s (8 connections, 20 ms mean per query)
    sim, _ = site(None)
    without = await sim.run_async(10)
    aside = CacheAside("cache", ttl_s=300)
    sim, _ = site(aside)
    with_cache = await sim.run_async(10)

    assert without.failed == 0 and with_cache.failed == 0
    cache = with_cache.component("cache").detail
    queries_without = without.component("db").detail["reads"]
    queries_with = with_cache.component("db").detail["reads"]
    print(f"\nhit ratio {cache['hit_ratio']:.3f}; db queries {queries_without} -> {queries_with}; "
          f"p99 {worst_p99(without) * 1000:.1f} ms -> {worst_p99(with_cache) * 1000:.1f} ms")
    # Zipf(s=1) over 1,000 keys with room for 250: the hot quarter of the keys takes most reads
    assert 0.6 < cache["hit_ratio"] < 0.8
    assert aside.stats().hits == cache["hits"]
    assert queries_with < queries_without / 2
    assert queries_with == aside.stats().loads
    assert worst_p99(with_cache) < 0.6 * worst_p99(without)  # 126 -> 68 ms on seed 7


# -- (b) ----------------------------------------------------------------------------------
async def test_b_an_lru_far_too_small_for_the_working_set_thrashes(virtual_clock):
    def run(capacity_items):
        sim, _ = site(CacheAside("cache"), rate_per_app=100, zipf_exponent=0.0, keys=300,
                   cache_kw={"capacity_items": capacity_items})
        return sim.run_async(10)

    roomy = (await run(300)).component("cache").detail
    tiny = (await run(6)).component("cache").detail
    print(f"\nuniform over 300 keys: hit ratio {roomy['hit_ratio']:.3f} with room for 300, "
          f"{tiny['hit_ratio']:.3f} with room for 6 (evictions {tiny['evictions']} of {tiny['sets']} sets)")
    assert roomy["hit_ratio"] > 0.8 and roomy["evictions"] == 0
    assert tiny["hit_ratio"] < 0.05
    assert tiny["evictions"] >= 0.95 * tiny["sets"]


# -- (c) ----------------------------------------------------------------------------------
async def stampede(coalesce: bool) -> tuple[int, CacheAside, object]:
    aside = CacheAside("cache", ttl_s=60, coalesce=coalesce)
    # 500 reads/s, about 28% of them for key "0"; a query takes 100 ms
    sim, loads = site(aside, apps=("app",), rate_per_app=500, keys=100, zipf_exponent=1.2,
                      db_kw={"read_latency_s": 0.1, "io_capacity": 16})
    # the hot key is in the cache already and expires 2 s into the run, under full load
    sim["cache"].store.set("0", b"row 0", ttl_s=2.0)
    report = await sim.run_async(3)
    return loads["0"], aside, report


async def test_c_a_hot_key_expiring_under_load_stampedes_unless_requests_coalesce(virtual_clock):
    herd, loose, report_loose = await stampede(coalesce=False)
    single, tight, report_tight = await stampede(coalesce=True)
    print(f"\nhot key expiry: {herd} database queries without coalescing, {single} with "
          f"({tight.coalesced_waits} requests waited for the one load)")
    assert report_loose.failed == 0 and report_tight.failed == 0
    assert single == 1
    assert herd >= 5  # a herd: about rate x share x query time = 14 expected, 7 to 24 over seeds 1-8
    assert tight.coalesced_waits > herd and loose.coalesced_waits == 0


# -- (d) ----------------------------------------------------------------------------------
async def test_d_aiocache_code_runs_against_the_simulated_cache_on_virtual_time(virtual_clock):
    loads, reads = [], []

    async def handler(request, ctx):
        key = request.route.rsplit("/", 1)[1]
        value = await cache.get(key)
        if value is None:
            value = {"key": key, "loaded_at": round(ctx.now, 3), "tags": ["hot", "row"]}
            loads.append(value)
            await cache.set(key, value, ttl=2.5)
        reads.append(value)
        return b"ok"

    sim = Sim(seed=3)
    app = sim.add(AppServer("app", handler, calls=("cache",)))
    sim.add(CacheServer("cache", capacity_items=10))
    cache = SimulatedCache(app, "cache", serializer=PickleSerializer(), namespace="item:")
    # one request a second, at t = 1, 2, ..., 9, always for item 0
    sim.load(OpenLoop("app", rate=1, arrivals="constant", workload=Workload(keys=1)))
    report = await sim.run_async(10)

    assert report.ok == 9
    # loaded at 1; hits at 2 and 3; expired by 4 (set at ~1.002 + 2.5 s); and so on
    assert [v["loaded_at"] for v in loads] == pytest.approx([1, 4, 7], abs=0.005)
    assert reads[1] == reads[2] == loads[0] and reads[2] is not loads[0]  # a copy, through pickle and the network
    assert loads[0]["tags"] == ["hot", "row"]
    detail = report.component("cache").detail
    assert (detail["hits"], detail["misses"], detail["sets"]) == (6, 3, 3)


async def test_d_the_rest_of_the_aiocache_api(virtual_clock):
    seen = {}

    class Script(Node):
        async def run(self):
            cache = SimulatedCache(self, "cache")  # JsonSerializer, as aiocache's Redis backend
            await cache.multi_set([("a", 1), ("b", [2, 3])], ttl=1)
            seen["multi_get"] = await cache.multi_get(["a", "b", "c"])
            seen["add_new"] = await cache.add("c", "x")
            with pytest.raises(ValueError):
                await cache.add("c", "y")
            seen["exists"] = await cache.exists("c")
            seen["delete"] = await cache.delete("c"), await cache.delete("c")
            seen["expire"] = await cache.expire("b", 0)  # b no longer expires
            await self.sleep(1.5)
            seen["after_ttl"] = await cache.multi_get(["a", "b"])
            await cache.clear()
            seen["after_clear"] = await cache.get("b", default="gone")

        async def handle(self, request):
            return Response(204)

    sim = Sim(seed=1)
    sim.add(Script("app"))
    sim.add(CacheServer("cache"))
    sim.load(OpenLoop("app", rate=1))
    await sim.run_async(3)
    assert seen == {"multi_get": [1, [2, 3], None], "add_new": True, "exists": True, "delete": (1, 0),
                    "expire": True, "after_ttl": [None, [2, 3]], "after_clear": "gone"}


def test_d_aiocache_timeout_is_refused_because_it_needs_asyncio():
    app = AppServer("app")
    with pytest.raises(ConfigError, match=r"^timeout must be None: aiocache's timeout uses asyncio\.wait_for, "
                                          r"which fails under trio \(use op_timeout_s for a simulated deadline\), "
                                          r"got 5$"):
        SimulatedCache(app, "cache", timeout=5)


# -- failures and negatives -----------------------------------------------------------------
async def test_a_cache_outage_falls_back_to_the_database(virtual_clock):
    aside = CacheAside("cache", ttl_s=300, timeout_s=0.05)
    sim, _ = site(aside, rate_per_app=100)
    sim.at(3, sim.crash, "cache", 3.0)  # down from t=3 to t=6, back empty
    report = await sim.run_async(8)
    s = aside.stats()
    print(f"\ncache down 3 s: {s.cache_errors} cache errors, {s.fallback_loads} reads served from the database")
    assert report.failed == 0  # the site stayed up
    assert s.fallback_loads > 500 and s.cache_errors >= s.fallback_loads
    assert report.component("cache").detail["crashes"] == 1


async def test_not_found_is_cached_for_negative_ttl(virtual_clock):
    aside = CacheAside("cache", negative_ttl_s=2.0)
    sim, loads = site(aside, apps=("app",), rate_per_app=200, keys=1, rows=0)
    report = await sim.run_async(5)
    # every read is for a row that does not exist: one query per 2 s of negative caching, not 1,000
    assert report.ok == report.sent and report.clients["openloop->app"].statuses == {404: report.sent}
    assert loads["0"] == 3 and report.component("db").detail["reads"] == 3
    assert aside.stats().negative_hits > 900


def test_cache_aside_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"^negative_ttl_s must be > 0, got 0$"):
        CacheAside("cache", negative_ttl_s=0)
    with pytest.raises(ConfigError, match=r"^timeout_s must be > 0, got -1$"):
        CacheAside("cache", timeout_s=-1)
    with pytest.raises(ConfigError, match=r"^cache_host must be a host name, got ''$"):
        CacheAside("")
