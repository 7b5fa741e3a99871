"""Bad input gets a clear error when it is given: never a hang, never silent corruption.

NaN, infinity and integers too large to be floats are refused wherever a
time, rate, factor or size is taken; values that would need unbounded time or
memory are refused with the limit (``playground.limits``) and why.
"""
from __future__ import annotations

import math
import random
import time

import pytest

from components import AppServer, CacheServer, Database, DatabaseClient, HealthCheck, L7Balancer
from playground import (ClosedLoop, ConfigError, Exponential, Node, OpenLoop, Population, Request, Response, Sim,
                        Steady, WiringError, Workload, Zipf, limits)

BIG = 10**400


class Quiet(Node):
    kind = "quiet"


@pytest.mark.parametrize("make, message", [
    (lambda: OpenLoop("a", timeout_s=math.nan), r"^timeout_s must be > 0, got nan$"),
    (lambda: OpenLoop("a", timeout_s=math.inf), r"^timeout_s must be finite, got inf$"),
    (lambda: AppServer("a", restart_after_s=math.nan), r"^restart_after_s must be >= 0, got nan$"),
    (lambda: AppServer("a", restart_after_s=-1), r"^restart_after_s must be >= 0, got -1$"),
    (lambda: Exponential(BIG), r"^Exponential mean_s must be finite, got an integer of 401 digits$"),
    (lambda: Exponential(math.nan), r"^Exponential mean_s must be > 0, got nan$"),
    (lambda: AppServer("a", cpu_s=BIG), r"^cpu_s must be finite, got an integer of 401 digits$"),
    (lambda: AppServer("a", cpu_s=math.inf), r"^cpu_s must be finite, got inf$"),
    (lambda: AppServer("a", cpu_s=math.nan), r"^cpu_s must be >= 0 seconds, got nan$"),
    (lambda: OpenLoop("a", rate=math.nan), r"^rate must be > 0 requests per second, got nan$"),
    (lambda: OpenLoop("a", rate=math.inf), r"^rate must be finite, got inf$"),
    (lambda: Zipf(10, s=math.nan), r"^Zipf s must be >= 0, got nan$"),
    (lambda: AppServer("a", cores=BIG), r"^cores must be at most 100,000 \(far past any machine; .*\), "
                                        r"got an integer of 401 digits$"),
    (lambda: AppServer("a", workers=BIG), r"^workers must be at most 10,000,000 \(.*None means no limit.*\), "
                                          r"got an integer of 401 digits$"),
    (lambda: AppServer("a", queue_limit=BIG), r"^queue_limit must be at most 10,000,000 .*, got an integer of 401 digits$"),
    (lambda: Workload(keys=BIG), r"^keys must be at most 9,007,199,254,740,992 \(ranks are drawn through a float, "
                                 r"exact up to 2\*\*53; .*\), got an integer of 401 digits$"),
    (lambda: Population("a", users=BIG), r"^users must be at most 1,000,000,000,000 people .*, "
                                         r"got an integer of 401 digits$"),
    (lambda: Population("a", users=10).set_users(BIG), r"^users must be at most 1,000,000,000,000 people"),
    (lambda: ClosedLoop("a", users=BIG), r"^users must be at most 1,000,000 closed-loop users"),
    (lambda: CacheServer("c", capacity_items=BIG), r"^capacity_items must be at most 9,007,199,254,740,992 .*, "
                                                   r"got an integer of 401 digits$"),
    (lambda: CacheServer("c", concurrency=BIG), r"^concurrency must be at most 100,000 "),
    (lambda: Database("d", io_capacity=BIG), r"^io_capacity must be at most 100,000 \(far past any machine"),
    (lambda: Database("d", max_connections=BIG), r"^max_connections must be at most 10,000,000 "),
])
def test_nan_infinity_and_huge_integers_are_refused(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: OpenLoop("a", rate=1e12),
     r"^rate must be at most 10,000,000 requests per second \(the largest rate the playground simulates in "
     r"reasonable time; see playground\.limits\), got 1000000000000\.0$"),
    (lambda: Steady(1e8), r"^rate_per_s must be at most 10,000,000 requests per second .*, got 100000000\.0$"),
    (lambda: Population("a", users=10**9, requests_per_user_per_s=1),
     r"^users x requests_per_user_per_s must be at most 10,000,000 requests per second .*, got 1000000000$"),
    (lambda: HealthCheck(interval_s=1e-9),
     r"^interval_s must be at least 0\.0001 s \(shorter periods would flood the event heap; see "
     r"playground\.limits\), got 1e-09$"),
    (lambda: ClosedLoop("a", users=10**7),
     r"^users must be at most 1,000,000 closed-loop users \(each closed-loop user is kept in memory; use "
     r"Population for more users; see playground\.limits\), got 10000000$"),
    (lambda: OpenLoop("a", connections=10**9),
     r"^connections must be at most 1,000,000 \(each connection is kept in memory; see playground\.limits\), "
     r"got 1000000000$"),
])
def test_values_needing_unbounded_time_or_memory_are_refused_with_the_limit(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_limit_can_be_raised_by_a_script_that_needs_more(monkeypatch):
    monkeypatch.setattr(limits, "MAX_RATE_PER_S", 1e13)
    assert OpenLoop("a", rate=1e12).shape.peak == 1e12


@pytest.fixture
def sim() -> Sim:
    sim = Sim(seed=1)
    sim.add(Quiet("a", region="us"))
    sim.add(Quiet("b", region="eu"))
    return sim


@pytest.mark.parametrize("bad, message", [
    (lambda sim: sim.run(duration_s=1e9),
     r"^duration_s must be at most 10,000,000 s \(about 116 simulated days; see playground\.limits\), "
     r"got 1000000000\.0$"),
    (lambda sim: sim.run(duration_s=math.inf),
     r"^duration_s must be finite for run\(\), which nothing else could stop, got inf: plan an end with "
     r"sim\.at\(t_s, sim\.stop\), or serve open-ended with serve_async\(\)$"),
    (lambda sim: sim.run(duration_s=math.nan), r"^duration_s must be > 0, got nan$"),
    (lambda sim: sim.at(BIG, print), r"^t_s must be finite, got an integer of 401 digits$"),
    (lambda sim: sim.at(math.nan, print), r"^t_s must be >= 0, got nan$"),
    (lambda sim: sim.at(1e9, print), r"^t_s must be at most 10,000,000 s .*, got 1000000000\.0$"),
    (lambda sim: sim.crash("a", restart_after_s=-1), r"^restart_after_s must be >= 0, got -1$"),
    (lambda sim: sim.slow("a", "b", factor=math.inf), r"^slow factor must be finite, got inf$"),
    (lambda sim: sim.at(1, sim.slow, "a", fctor=5),
     r"^sim\.at\(1, 'slow'\): got an unexpected keyword argument 'fctor'$"),
    (lambda sim: sim.at(1, sim.crash), r"^sim\.at\(1, 'crash'\): missing a required argument: 'name'$"),
    (lambda sim: sim.add(Quiet("c", region="us"), region="eu"),
     r"^host 'c' is in region 'us' already, got region='eu' in add\(\): give the region in one place$"),
    (lambda sim: sim.partition("a"),
     r"^partition needs two sides: hosts \(a, b\) or regions \(region=, other=\), got a='a', b=None, "
     r"region=None, other=None$"),
])
def test_bad_runs_and_plans_are_refused(sim, bad, message):
    with pytest.raises(ConfigError, match=message):
        bad(sim)


@pytest.mark.parametrize("plan, message", [
    (lambda sim: sim.at(1, sim.crash, "ghost"), r"^sim\.at\(1, 'crash'\): unknown host 'ghost' \(known hosts: a, b\)$"),
    (lambda sim: sim.at(2, sim.slow, "a", factor=math.inf), r"^sim\.at\(2, 'slow'\): slow factor must be finite, got inf$"),
    (lambda sim: sim.at(3, sim.partition, region="us", other="mars"),
     r"^sim\.at\(3, 'partition'\): unknown region 'mars' \(known regions: eu, us\)$"),
    (lambda sim: sim.at(4, sim["a"].crash, restart_after_s=math.nan),
     r"^sim\.at\(4, 'crash'\): restart_after_s must be >= 0, got nan$"),
])
def test_a_planned_fault_is_checked_before_the_run(sim, plan, message):
    plan(sim)
    with pytest.raises(ConfigError, match=message):
        sim.run(duration_s=5)
    assert sim.runs == 0


def test_sim_at_takes_keyword_arguments_and_partitions_take_regions():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cpu_s=0.001), region="us")
    sim.load(OpenLoop("app", rate=100, arrivals="constant", timeout_s=0.5, region="eu"))
    sim.region_link("us", "eu", 0.040)
    sim.at(1, sim.slow, "app", factor=5)
    sim.at(2, sim.partition, region="us", other="eu")
    sim.at(3, sim.repair, region="eu", other="us")
    sim.at(3.5, sim.heal, "app")
    report = sim.run(duration_s=5)
    assert [e for _, e in report.events] == ["slow app x5", "partition region us <-> region eu",
                                            "repair region eu region us", "heal app"]
    # a second of requests (100) is cut at the partition, plus the answers on the wire when it began
    lost = report.network["dropped_partition"] + report.network["dropped_in_flight"]
    assert report.errors == {"timeout": lost} and 100 <= report.network["dropped_partition"] <= 101


def test_run_forever_is_fine_when_a_stop_is_planned():
    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    sim.at(2, sim.stop)
    assert sim.run(duration_s=math.inf).duration_s == 2


def test_a_billion_keys_cost_no_memory_and_no_time():
    t0 = time.perf_counter()
    workload = Workload(keys=10**9)
    rng = random.Random(1)
    keys = [int(workload.request(rng).path.rsplit("/", 1)[1]) for _ in range(1000)]
    assert time.process_time() >= 0 and time.perf_counter() - t0 < 60  # a hang guard, not a speed test
    assert all(0 <= k < 10**9 for k in keys) and keys.count(0) > 10  # rank 0 holds ~4.7% of the mass
    assert Zipf(10**9).probability(0) == pytest.approx(1 / 21.300481502347944, rel=1e-9)


@pytest.mark.parametrize("n, s", [(10, 1.0), (50, 0.8), (200, 1.2), (5, 2.5), (30, 0.0), (100, 1.0 + 1e-12)])
def test_zipf_draws_match_the_exact_probabilities(n, s):
    zipf, rng, draws = Zipf(n, s), random.Random(2024), 50_000
    counts = [0] * n
    for _ in range(draws):
        counts[zipf.sample(rng)] += 1
    assert math.fsum(zipf.probability(k) for k in range(n)) == pytest.approx(1.0)
    chi2 = sum((counts[k] - draws * zipf.probability(k)) ** 2 / (draws * zipf.probability(k)) for k in range(n))
    # the chi-square statistic has mean n-1 and sd sqrt(2(n-1)); 5 sd above is a broken sampler
    assert chi2 < (n - 1) + 5 * math.sqrt(2 * (n - 1))


def test_the_harmonic_number_is_exact_enough_for_large_n(monkeypatch):
    import playground._workload as workload

    exact = {s: math.fsum(k ** -s for k in range(300_000, 0, -1)) for s in (0.5, 1.0, 1.7)}
    monkeypatch.setattr(workload, "_EXACT_UP_TO", 10)
    for s, value in exact.items():
        assert workload.harmonic(300_000, s) == pytest.approx(value, rel=1e-12)


def test_messages_refuse_what_is_not_http():
    with pytest.raises(ConfigError, match=r"^Request method must be a string such as 'GET', got 123$"):
        Request(123, "/x")
    with pytest.raises(ConfigError, match=r"^Request path must be a string such as '/item/1', got b'/x'$"):
        Request("GET", b"/x")
    assert Request("POST", "/x", body="héllo").body == "héllo".encode()


async def test_a_database_value_must_be_text(virtual_clock):
    db = DatabaseClient("db")
    with pytest.raises(TypeError, match=r"^value must be str or bytes, got 12345$"):
        await db.put(None, "k", 12345)


def test_a_balancer_cannot_send_to_a_client_host():
    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("lb", rate=10, client="users"))
    sim.add(L7Balancer("lb", ["app", "users"]))
    with pytest.raises(WiringError, match=r"^'lb' sends to 'users', which is a load's client host: "
                                          r"it sends requests, it does not serve them$"):
        sim.validate()


def test_calls_to_undeclared_hosts_are_learnt_and_warned_about():
    async def handler(request, ctx):
        return await ctx.get("backend", "/")

    sim = Sim(seed=1)
    app = sim.add(AppServer("app", handler))
    sim.add(AppServer("backend"))
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    report = sim.run(duration_s=1)
    assert report.errors == {}
    assert report.warnings == ["'app' called 'backend', which is not in its calls=: the wiring learnt it during "
                               "the run; declare calls=['backend'] so that validate() checks it before the run"]
    assert "Warning: 'app' called 'backend'" in report.render()
    assert app.downstream() == ("backend",) and "app --> backend" in sim.diagram()


def test_an_undeclared_loop_still_ends_at_the_hop_limit_and_is_then_refused():
    async def handler(request, ctx):
        return await ctx.get("app", "/again")

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler, workers=64, queue_limit=None))
    sim.load(OpenLoop("app", rate=1, arrivals="constant", timeout_s=5))
    report = sim.run(duration_s=1.5)
    assert report.sent == 1 and report.errors == {"5xx": 1}
    assert report.components["app"].served == 32  # the hop limit: 32 hops, then 508 all the way back
    with pytest.raises(WiringError, match=r"^requests would loop forever: app -> app$"):
        sim.validate()  # the wiring learnt the call: the loop is now seen before a run
