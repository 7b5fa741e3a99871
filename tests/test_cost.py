"""Cost: a month of the topology as run, from what each host stands for and a price table."""
from __future__ import annotations

import pytest

from components import CDN, AppServer, CacheServer, Database, DNSServer, L4Balancer, L7Balancer, Resolver
from playground import (ConfigError, CostBreakdown, Footprint, OpenLoop, Population, Prices, Report, Request,
                        Sim, Workload)
from playground._cost import DEFAULT_PRICES, HOURS_PER_MONTH

FLAT = {"core_hour": 0.05, "memory_gb_hour": 0.0}


def app_pair(**app) -> Sim:
    sim = Sim(seed=1)
    sim.add(AppServer("app1", cores=4, cpu_s=0.001, **app))
    sim.add(AppServer("app2", cores=4, cpu_s=0.001, **app))
    sim.load(OpenLoop("app1", rate=50))
    return sim


def test_two_four_core_servers_for_a_month_cost_exactly_the_table_price():
    cost = app_pair().run(duration_s=2).cost(FLAT)
    assert [(line.name, line.kind, line.what) for line in cost.lines] == [
        ("app1", "app", "4 cores, 16 GB"), ("app2", "app", "4 cores, 16 GB")]
    assert cost["app1"] == pytest.approx(4 * 0.05 * 730)  # $146.00: cores x $/core-hour x 730 h
    assert cost.total_per_month == pytest.approx(292.0)
    assert cost.per_1k_users(2_000) == pytest.approx(146.0)


def test_the_default_table_prices_cores_and_memory():
    cost = app_pair(memory_mb=8192).run(duration_s=1).cost()
    per_server = (4 * DEFAULT_PRICES.core_hour + 8 * DEFAULT_PRICES.memory_gb_hour) * HOURS_PER_MONTH
    assert cost["app2"] == pytest.approx(per_server)
    assert cost.lines[0].what == "4 cores, 8 GB"
    assert "illustrative" in cost.prices.source and "not fetched live" in cost.prices.source


def test_a_balancer_a_database_and_a_cache_node_are_billed_by_the_hour():
    sim = Sim(seed=1)
    sim.add(Database("db"))
    sim.add(Database("replica", replica_of="db"))
    sim.add(CacheServer("cache", capacity_bytes=2**30))  # a 1 GiB node
    sim.add(AppServer("app", cores=2, calls=("db", "cache")))
    sim.add(L7Balancer("l7", ["app"]))
    sim.add(L4Balancer("l4", ["l7"]))
    sim.load(OpenLoop("l4", rate=20))
    p = Prices(database_instance_hour=0.2, balancer_hour=0.03, cache_node_hour=0.02, cache_memory_gb_hour=0.01)
    cost = sim.run(duration_s=1).cost(p)
    assert cost["db"] == cost["replica"] == pytest.approx(0.2 * 730)
    assert cost["l7"] == cost["l4"] == pytest.approx(0.03 * 730)
    assert cost["cache"] == pytest.approx((0.02 + 1 * 0.01) * 730)
    assert cost.by_kind()["database"] == pytest.approx(2 * 0.2 * 730)


def test_a_cache_is_sized_by_its_items_and_the_mean_value_it_holds():
    sim = Sim(seed=1)
    cache = sim.add(CacheServer("cache", capacity_items=1000))
    for k in range(10):
        cache.store.set(f"k{k}", b"x" * 400)
    assert cache.footprint().memory_gb == pytest.approx(1000 * (2 + 400 + 100) / 2**30)  # key, value, overhead
    assert CacheServer("empty", capacity_items=1000).footprint().memory_gb == pytest.approx(1000 * 1124 / 2**30)


def test_cdn_bytes_and_dns_queries_are_scaled_from_the_run_to_a_month():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=2))
    cdn = CDN("cdn", "app", regions=["us"])
    cdn.add_to(sim)
    sim.add(DNSServer("dns", {"www": ["app"]}))
    edge = cdn.edge_for("us")
    sim.load(OpenLoop(edge, rate=10, arrivals="constant", workload=Workload(static_share=1.0, static_assets=1)))
    report = sim.run(duration_s=10)
    served = report.components[edge].detail["bytes_served"]
    assert served > 0
    cost = report.cost({"cdn_gb": 0.1})
    month_s = 730 * 3600
    assert cost[edge] == pytest.approx(served / 1e9 * month_s / 10 * 0.1)
    assert cost["dns"] == 0.0  # nobody asked it anything


def test_bytes_between_regions_are_counted_and_priced():
    sim = Sim(seed=1)
    sim.add(Database("db"), region="eu")

    async def handler(request, ctx):
        return await ctx.call("db", Request("GET", "/kv/x"))

    sim.add(AppServer("app", handler, cores=2, calls=("db",)), region="us")
    sim.region_link("us", "eu", 0.040)
    sim.load(OpenLoop("app", rate=10, arrivals="constant", region="us", timeout_s=5))
    report = sim.run(duration_s=10)
    crossed = report.network["bytes_cross_region"]
    # each request crosses twice (the query there, the answer back): about 200 bytes of headers each way
    assert 2 * 200 * report.ok <= crossed <= 2 * 400 * report.sent
    cost = report.cost({"cross_region_gb": 0.02})
    line = cost.lines[-1]
    assert (line.name, line.kind) == ("network", "network")
    assert line.per_month == pytest.approx(crossed / 1e9 * 730 * 3600 / 10 * 0.02)


def test_users_in_a_region_calling_it_are_not_inter_region_traffic():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=2), region="us")
    sim.load(OpenLoop("app", rate=10, region="eu"))
    assert "bytes_cross_region" not in sim.run(duration_s=2).network


def test_a_saved_report_is_priced_the_same():
    report = app_pair().run(duration_s=1)
    saved = Report.from_json(report.to_json())
    assert CostBreakdown.of(saved, FLAT).total_per_month == pytest.approx(report.cost(FLAT).total_per_month)


def test_prices_come_from_a_toml_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[prices]\ncore_hour = 0.1\nmemory_gb_hour = 0\nsource = "our negotiated rates"\n')
    prices = Prices.from_toml(path)
    assert prices.core_hour == 0.1 and prices.balancer_hour == DEFAULT_PRICES.balancer_hour
    assert prices.source == "our negotiated rates"
    report = app_pair().run(duration_s=1)
    assert report.cost(str(path)).total_per_month == pytest.approx(2 * 4 * 0.1 * 730)
    top = tmp_path / "flat.toml"
    top.write_text("core_hour = 0.2\n")
    assert Prices.of(top).core_hour == 0.2 and "flat.toml" in Prices.of(top).source


@pytest.mark.parametrize("prices, message", [
    ({"core_hour": -1}, r"^core_hour must be >= 0, got -1$"),
    ({"core_hour": float("nan")}, r"^core_hour must be >= 0, got nan$"),
    ({"cdn_gb": float("inf")}, r"^cdn_gb must be finite, got inf$"),
    ({"cpu_hour": 1}, r"^unknown price 'cpu_hour' \(prices: core_hour, memory_gb_hour, .*\)$"),
    (42, r"^prices must be a Prices, a dict or a TOML file's path, got 42$"),
])
def test_bad_prices_are_refused(prices, message):
    with pytest.raises(ConfigError, match=message):
        Prices.of(prices)


def test_a_missing_or_broken_toml_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^prices file must exist, got '.*nope\.toml'$"):
        Prices.of(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("core_hour = = 1\n")
    with pytest.raises(ConfigError, match=r"^prices file '.*bad\.toml' is not valid TOML: "):
        Prices.of(bad)


def test_a_footprint_checks_its_fields():
    with pytest.raises(ConfigError, match=r"^kind must be one of app, balancer, cache, database, cdn, dns, none, "
                                          r"got 'vm'$"):
        Footprint("vm")
    with pytest.raises(ConfigError, match=r"^cores must be >= 0, got -2$"):
        Footprint("app", cores=-2)


def test_the_cost_table_prints_each_host_and_the_total():
    text = str(app_pair().run(duration_s=1).cost(FLAT))
    assert "Cost a month" in text and "app1" in text and "292.00" in text and "Prices: user prices" in text


def test_a_population_topology_reports_per_1k_users():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=2, cpu_s=0.001))
    sim.load(Population("app", users=5_000, requests_per_user_per_s=0.02))
    cost = sim.run(duration_s=2).cost(FLAT)
    assert cost.per_1k_users(5_000) == pytest.approx(2 * 0.05 * 730 / 5)
    with pytest.raises(ConfigError, match=r"^users must be an integer >= 1, got 0$"):
        cost.per_1k_users(0)


# -- the cost vs p99 Pareto front ------------------------------------------------------------------
def test_the_pareto_front_keeps_the_points_not_beaten_on_both():
    from playground import pareto_front

    toy = [
        {"name": "a", "cost_per_month": 100, "p99_ms": 900},   # cheapest: on the front
        {"name": "b", "cost_per_month": 150, "p99_ms": 950},   # beaten by a on both
        {"name": "c", "cost_per_month": 200, "p99_ms": 300},   # front
        {"name": "d", "cost_per_month": 200, "p99_ms": 400},   # same cost as c, slower: beaten
        {"name": "e", "cost_per_month": 400, "p99_ms": 300},   # as fast as c, dearer: beaten
        {"name": "f", "cost_per_month": 500, "p99_ms": 120},   # front
        {"name": "g", "cost_per_month": 500, "p99_ms": 120},   # f's twin: neither beats the other
        {"name": "h", "cost_per_month": None, "p99_ms": 1},    # no cost: left out
    ]
    assert [p["name"] for p in pareto_front(toy)] == ["a", "c", "f", "g"]
    assert [p["name"] for p in pareto_front(toy, x="p99_ms", y="cost_per_month")] == ["f", "g", "c", "a"]
    assert pareto_front([]) == []


def test_the_pareto_front_reads_a_sweep_points_means():
    from playground import pareto_front

    class Estimate:
        def __init__(self, mean):
            self.mean, self.low, self.high, self.n = mean, mean - 1, mean + 1, 3

    class Point:
        def __init__(self, name, cost, p99):
            self.name, self.metrics = name, {"cost_per_month": Estimate(cost), "p99_ms": Estimate(p99)}

        def __getitem__(self, metric):
            return self.metrics[metric]

    points = [Point("2 servers", 300, 600), Point("3 servers", 370, 33), Point("4 servers", 445, 31),
              Point("2 + cache", 304, 33)]
    assert [p.name for p in pareto_front(points)] == ["2 servers", "2 + cache", "4 servers"]
