"""Stories about the CDN and DNS, under virtual time.

CDN: users far from the origin get static files from their region's edge much
faster than from the origin; the origin sees a small share of them; dynamic
paths pass through. DNS: removing a balancer's address takes effect only when
clients' cached answers expire; geo DNS sends clients to their own region.
"""
from __future__ import annotations

import random

import pytest

from components import CDN, AppServer, CDNEdge, DNSServer, Resolver
from components.cdn import EdgeCache, cache_ttl_s
from components.dns import Geo, Record, RoundRobin, Weighted
from playground import ConfigError, Constant, Node, OpenLoop, Request, Response, Sim, WiringError, Workload


async def origin_handler(request, ctx):
    if request.route.startswith("/static"):
        return Response(200, {"cache-control": "public, max-age=60"}, b"x" * 2000)
    return Response(200, {"cache-control": "no-store"}, b"dynamic")


def world(seed: int = 1) -> Sim:
    """An origin in "us"; "ap" is 150 ms away, "eu" 80 ms."""
    sim = Sim(seed=seed)
    sim.add(AppServer("origin", origin_handler, cores=4, cpu_s=Constant(0.002)), region="us")
    sim.region_link("us", "ap", latency_s=0.150)
    sim.region_link("us", "eu", latency_s=0.080)
    sim.region_link("eu", "ap", latency_s=0.120)
    return sim


STATIC = Workload(static_share=1.0, static_assets=50)


class Probe(Node):
    """A client host that runs a script of requests and keeps what came back."""

    kind = "probe"

    def __init__(self, name: str, script, **kw) -> None:
        super().__init__(name, **kw)
        self.script = script
        self.seen: list[tuple[float, str, str]] = []  # (time, path, x-cache)

    async def fetch(self, dst: str, path: str) -> Response:
        response = await self.get(dst, path, client=self.name)
        self.seen.append((round(self.sim.now, 3), path, response.headers.get("x-cache", "")))
        return response

    async def run(self) -> None:
        await self.script(self)


def keep_running(sim: Sim) -> None:
    """A run without loads ends at once (engine behaviour); a 1 req/s heartbeat keeps probe-only runs going."""
    sim.add(Recorder("heartbeat-target"))
    sim.load(OpenLoop("heartbeat-target", client="heartbeat", rate=1, arrivals="constant"))


class Recorder(Node):
    """Stands in for a load balancer: answers 200 and notes when each request arrived and from whom."""

    kind = "recorder"

    def __init__(self, name: str, **kw) -> None:
        super().__init__(name, **kw)
        self.arrivals: list[tuple[float, str]] = []

    async def handle(self, request: Request) -> Response:
        self.arrivals.append((self.sim.now, request.client))
        return Response(200, body=b"ok")


# -- CDN --------------------------------------------------------------------------------

async def test_far_users_get_static_files_faster_from_their_edge(virtual_clock):
    # Run 1: users in "ap" fetch static files straight from the origin in "us".
    direct = world()
    direct.load(OpenLoop("origin", client="users-ap", region="ap", rate=200, workload=STATIC))
    before = await direct.run_async(20)

    # Run 2: the same users go to the CDN edge in their own region.
    sim = world()
    cdn = CDN("cdn", origin="origin", regions=["us", "eu", "ap"]).add_to(sim)
    assert cdn.edge_for("ap") == "cdn-ap"
    sim.load(OpenLoop(cdn.edge_for("ap"), client="users-ap", region="ap", rate=200, workload=STATIC))
    after = await sim.run_async(20)

    assert before.failed == after.failed == 0
    assert before.p50_s > 0.300  # two crossings of 150 ms, every time
    assert after.p50_s < 0.005  # a hit: two LAN hops in "ap"
    edge = after.component("cdn-ap").detail
    assert edge["hit_ratio"] > 0.95
    assert edge["origin_fetches"] == 50  # one per asset: max-age=60 outlives the 20 s run
    assert edge["coalesced"] > 0  # cold start: concurrent misses shared a fetch
    assert CDN.offload(after) > 0.98
    assert after.component("origin").served == 50
    assert edge["bytes_served"] == 2000 * after.ok


async def test_dynamic_paths_pass_through_and_the_answer_says_what_happened(virtual_clock):
    async def script(probe: Probe) -> None:
        await probe.fetch("cdn-eu", "/static/app.js")
        await probe.fetch("cdn-eu", "/static/app.js")
        await probe.fetch("cdn-eu", "/api/cart")
        await probe.fetch("cdn-eu", "/api/cart")

    sim = world()
    CDN("cdn", origin="origin", regions=["eu"]).add_to(sim)
    probe = sim.add(Probe("browser", script), region="eu")
    keep_running(sim)
    report = await sim.run_async(5)

    assert [cache for _, _, cache in probe.seen] == ["MISS", "HIT", "PASS", "PASS"]
    edge = report.component("cdn-eu").detail
    assert (edge["hits"], edge["misses"], edge["passes"], edge["origin_fetches"]) == (1, 1, 2, 1)
    assert report.component("origin").served == 3  # one fetch + two passes


async def test_concurrent_misses_make_one_origin_fetch(virtual_clock):
    async def script(probe: Probe) -> None:
        for _ in range(10):
            probe.spawn(probe.fetch, "cdn-ap", "/static/big.png")

    sim = world()
    CDN("cdn", origin="origin", regions=["ap"]).add_to(sim)
    probe = sim.add(Probe("browser", script), region="ap")
    keep_running(sim)
    report = await sim.run_async(2)

    assert [cache for _, _, cache in probe.seen] == ["MISS"] * 10
    edge = report.component("cdn-ap").detail
    assert (edge["origin_fetches"], edge["coalesced"]) == (1, 9)


async def test_cached_copies_expire_after_the_origins_max_age(virtual_clock):
    async def script(probe: Probe) -> None:
        await probe.fetch("cdn-eu", "/static/a.css")  # t~0: MISS, kept 60 s
        await probe.sleep(30)
        await probe.fetch("cdn-eu", "/static/a.css")  # t~30: HIT
        await probe.sleep(31)
        await probe.fetch("cdn-eu", "/static/a.css")  # t~61: expired, MISS

    sim = world()
    CDN("cdn", origin="origin", regions=["eu"], ttl_s=5).add_to(sim)  # max-age wins over ttl_s
    probe = sim.add(Probe("browser", script), region="eu")
    keep_running(sim)
    await sim.run_async(70)
    assert [cache for _, _, cache in probe.seen] == ["MISS", "HIT", "MISS"]


async def test_an_edge_that_crashes_comes_back_cold(virtual_clock):
    sim = world()
    CDN("cdn", origin="origin", regions=["ap"]).add_to(sim)
    sim.load(OpenLoop("cdn-ap", client="users-ap", region="ap", rate=200, workload=STATIC))
    sim.at(10, sim.crash, "cdn-ap", 1.0)
    report = await sim.run_async(20)

    edge = report.component("cdn-ap").detail
    assert edge["origin_fetches"] == 100  # every asset fetched again after the restart
    assert report.errors.get("refused", 0) > 0  # users saw the outage
    assert CDN.offload(report) > 0.95


def test_edge_cache_evicts_least_recently_used_and_honours_cache_control():
    now = [0.0]
    cache = EdgeCache(2, now=lambda: now[0])
    cache.put("/a", Response(200, body=b"a"), ttl_s=10)
    cache.put("/b", Response(200, body=b"b"), ttl_s=10)
    cache.get("/a")
    cache.put("/c", Response(200, body=b"c"), ttl_s=10)
    assert cache.get("/b") is None and cache.get("/a") is not None  # b was least recently used
    now[0] = 10.0
    assert cache.get("/a") is None and len(cache) == 0

    assert cache_ttl_s({}, 300.0) == 300.0
    assert cache_ttl_s({"cache-control": "public, max-age=60, s-maxage=600"}, 300.0) == 600.0
    assert cache_ttl_s({"cache-control": "private, max-age=60"}, 300.0) == 0.0
    assert cache_ttl_s({"cache-control": "max-age=soon"}, 300.0) == 0.0


# -- DNS --------------------------------------------------------------------------------

async def test_a_removed_balancer_keeps_traffic_until_clients_ttl_expires(virtual_clock):
    sim = Sim(seed=3)
    lb1, lb2 = sim.add(Recorder("lb1")), sim.add(Recorder("lb2"))
    dns = sim.add(DNSServer("dns", {"www": ["lb1", "lb2"]}, ttl_s=30))
    resolver = Resolver("dns")
    for i in range(6):  # six client networks, each with its own cached answer
        sim.load(OpenLoop("www", client=f"users-{i}", rate=20, resolver=resolver))
    sim.at(10, dns.remove_address, "www", "lb2")
    report = await sim.run_async(60)

    assert report.failed == 0
    after_removal = [t for t, _ in lb2.arrivals if t > 10]
    after_ttl = [t for t, _ in lb2.arrivals if t > 10 + 30 + 1]
    assert len(after_removal) > 0  # cached answers still point at lb2 ...
    assert max(after_removal) < 31  # ... until the answers cached at t~0 expire at t~30
    assert after_ttl == []
    assert len(lb1.arrivals) + len(lb2.arrivals) == report.ok
    stats = resolver.stats()
    assert stats.queries == 12  # one per client at the start, one more at each expiry (t~30)
    assert stats.hits > 0.99 * report.sent
    assert report.component("dns").detail["queries"] == 12


async def test_clients_see_dns_errors_when_no_address_is_left(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Recorder("lb1"))
    dns = sim.add(DNSServer("dns", {"www": ["lb1"]}, ttl_s=5))
    sim.load(OpenLoop("www", client="users", rate=10, resolver=Resolver("dns")))
    sim.at(10, dns.remove_address, "www", "lb1")
    report = await sim.run_async(20)
    errors_by_second = {int(row.t_s): row.errors for row in report.series["openloop->www"]}
    assert sum(errors_by_second.get(t, 0) for t in range(10)) == 0  # lb1 answers while it is listed
    assert all(errors_by_second[t] > 0 for t in range(15, 20))  # within one TTL every lookup fails
    assert report.errors == {"dns": report.failed} and report.ok > 90


async def test_geo_dns_answers_with_the_clients_own_region(virtual_clock):
    sim = Sim(seed=1)
    sim.region_link("us", "eu", latency_s=0.080)
    sim.add(Recorder("lb-us"), region="us")
    sim.add(Recorder("lb-eu"), region="eu")
    sim.add(DNSServer("dns", {"www": ["lb-us", "lb-eu"]}, policy="geo", ttl_s=60), region="us")
    resolver = Resolver("dns")
    sim.load(OpenLoop("www", client="users-us", region="us", rate=50, resolver=resolver))
    sim.load(OpenLoop("www", client="users-eu", region="eu", rate=50, resolver=resolver))
    sim.load(OpenLoop("www", client="users-ap", region="ap", rate=50, resolver=resolver))

    report = await sim.run_async(10)
    assert {c for _, c in sim["lb-us"].arrivals} - {"users-ap"} == {"users-us"}
    assert {c for _, c in sim["lb-eu"].arrivals} - {"users-ap"} == {"users-eu"}
    assert report.failed == 0  # "ap" has no balancer: its users fall back to one elsewhere


def test_dns_policies_order_addresses():
    rng = random.Random(1)
    regions = {"a": "us", "b": "eu", "c": "eu"}.get
    record = Record("www", ("a", "b", "c"), 30.0)
    rr = RoundRobin()
    assert [rr.order(record, None, regions, rng)[0] for _ in range(4)] == ["a", "b", "c", "a"]
    geo = Geo()
    assert [geo.order(record, "eu", regions, rng)[:2] for _ in range(2)] == [("b", "c"), ("c", "b")]
    # nothing in "ap": fall back to any, in turn
    assert {geo.order(record, "ap", regions, rng)[0] for _ in range(3)} == {"a", "b", "c"}
    weighted = Weighted()
    heavy = Record("www", ("a", "b"), 30.0, weights=(3.0, 1.0))
    firsts = [weighted.order(heavy, None, regions, rng)[0] for _ in range(10_000)]
    assert 0.73 < firsts.count("a") / len(firsts) < 0.77


# -- configuration errors ------------------------------------------------------------------

def test_config_errors_name_the_bad_value():
    with pytest.raises(ConfigError, match=r"^ttl_s must be >= 0, got -1$"):
        DNSServer("dns", {"www": ["lb1"]}, ttl_s=-1)
    dns = DNSServer("dns", {"www": ["lb1"]})
    with pytest.raises(ConfigError, match=r"^ttl_s must be >= 0, got -5$"):
        dns.set_records("api", ["app1"], ttl_s=-5)
    with pytest.raises(ConfigError, match=r"^'lb9' is not an address of 'www' \(addresses: lb1\)$"):
        dns.remove_address("www", "lb9")
    with pytest.raises(ConfigError, match=r"^weights of 'api' must have one entry per address \(2\), got 1$"):
        dns.set_records("api", ["app1", "app2"], weights=[1])
    with pytest.raises(ConfigError, match=r"^policy must be 'round_robin', 'weighted', 'geo' or an object "
                                          r"with order\(\), got 'nearest'$"):
        DNSServer("dns", policy="nearest")
    with pytest.raises(ConfigError, match=r"^capacity_items must be >= 1, got 0$"):
        CDNEdge("edge", "origin", capacity_items=0)
    with pytest.raises(ConfigError, match=r"^static_prefixes must be paths starting with '/', got 'static'$"):
        CDNEdge("edge", "origin", static_prefixes="static")
    with pytest.raises(ConfigError, match=r"^CDN 'cdn' has no edge in region 'ap' \(regions: us, eu\)$"):
        CDN("cdn", origin="origin", regions=["us", "eu"]).edge_for("ap")
    with pytest.raises(ConfigError, match=r"^resolver must have lookup\(\), query\(\) and validate\(\) "
                                          r"methods, got 'dns'$"):
        OpenLoop("www", resolver="dns")


def test_wiring_errors_for_records_and_names():
    sim = Sim(seed=1)
    sim.add(Recorder("lb1"))
    sim.add(DNSServer("dns", {"www": ["lb1", "lb9"]}))
    with pytest.raises(WiringError, match=r"^DNS 'dns': record 'www' names unknown host 'lb9'$"):
        sim.validate()

    sim = Sim(seed=1)
    sim.add(Recorder("lb1"))
    sim.add(DNSServer("dns", {"www": ["lb1"]}))
    sim.load(OpenLoop("www", client="users"))  # a name, but no resolver
    with pytest.raises(WiringError, match=r"^unknown host 'www' \(known hosts: dns, lb1, users\)$"):
        sim.validate()

    sim = Sim(seed=1)
    sim.add(Recorder("lb1"))
    sim.add(DNSServer("dns", {"www": ["lb1"]}))
    sim.load(OpenLoop("www", client="users", resolver=Resolver("dns")))
    sim.validate()  # a resolver-backed name passes
    sim.load(OpenLoop("api", client="users", resolver=Resolver("dns")))
    with pytest.raises(WiringError, match=r"^load 'openloop->api' resolves 'api', but DNS 'dns' has no record for it$"):
        sim.validate()

    sim = Sim(seed=1)
    sim.add(CDNEdge("edge", "origin"))
    with pytest.raises(WiringError, match=r"^'edge' sends to unknown host 'origin'$"):
        sim.validate()


def test_exported_names():
    import components

    for name in ("CDNEdge", "CDN", "DNSServer", "Resolver"):
        assert name in dir(components)
