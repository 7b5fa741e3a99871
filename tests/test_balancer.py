"""Balancing policies, health state machines and the retry budget, as plain code; then the wiring."""
from __future__ import annotations

import random
from collections import Counter

import pytest

import components
from components import (AppServer, BackendState, ConsistentHash, HealthCheck, L4Balancer, L7Balancer,
                        LeastConnections, OutlierDetection, PowerOfTwoChoices, Random, RetryBudget, RoundRobin,
                        Route, SourceIPHash, WeightedRoundRobin)
from components.health import HealthTracker, OutlierTracker, RetryBudgetTracker, slow_start_factor
from playground import ConfigError, Node, OpenLoop, Request, Response, Sim, WiringError


def backends(*spec) -> list[BackendState]:
    """backends("a", ("b", 3)) -> equal or given weights, no load."""
    out = []
    for item in spec:
        name, weight = (item, 1.0) if isinstance(item, str) else item
        out.append(BackendState(name, weight))
    return out


def picks(policy, pool, n, request=None, seed=1) -> Counter:
    rng = random.Random(seed)
    return Counter(policy.choose(pool, request or Request(), rng) for _ in range(n))


# -- policies ---------------------------------------------------------------------------------
def test_round_robin_takes_turns():
    pool = backends("a", "b", "c")
    rr = RoundRobin()
    assert [rr.choose(pool, Request(), None) for _ in range(4)] == ["a", "b", "c", "a"]
    assert picks(RoundRobin(), pool, 300) == {"a": 100, "b": 100, "c": 100}


def test_smooth_weighted_round_robin_interleaves_like_nginx():
    pool = backends(("a", 5), "b", "c")
    wrr = WeightedRoundRobin()
    assert "".join(wrr.choose(pool, Request(), None) for _ in range(7)) == "aabacaa"
    assert picks(WeightedRoundRobin(), pool, 700) == {"a": 500, "b": 100, "c": 100}


def test_random_follows_weights_and_repeats_with_the_seed():
    pool = backends(("a", 3), "b")
    counts = picks(Random(), pool, 10_000)
    assert 0.73 < counts["a"] / 10_000 < 0.77
    assert picks(Random(), pool, 100, seed=7) == picks(Random(), pool, 100, seed=7)


def test_least_connections_picks_the_idlest_per_unit_of_weight():
    pool = [BackendState("a", 1, active=4), BackendState("b", 1, active=1), BackendState("c", 1, active=2)]
    assert set(picks(LeastConnections(), pool, 50)) == {"b"}
    heavy = [BackendState("a", 4, active=4), BackendState("b", 1, active=2)]  # 5/4 < 3/1
    assert set(picks(LeastConnections(), heavy, 50)) == {"a"}
    tied = backends("a", "b")
    assert set(picks(LeastConnections(), tied, 50)) == {"a", "b"}


def test_power_of_two_choices_prefers_the_less_loaded():
    pool = [BackendState("idle", active=0), BackendState("busy", active=5), BackendState("swamped", active=10)]
    counts = picks(PowerOfTwoChoices(), pool, 9_000)
    # the idle one wins whenever it is drawn (2 of 3 pairs); the most loaded can never win a pair
    assert 0.64 < counts["idle"] / 9_000 < 0.70
    assert counts["swamped"] == 0
    assert picks(Random(), pool, 9_000)["swamped"] > 2_500  # what a blind choice would do


def test_source_ip_hash_is_stable_per_client_but_reshuffles_when_a_backend_leaves():
    pool = backends("a", "b", "c", "d", "e")
    policy = SourceIPHash()
    alice = Request(client="10.0.0.7")
    assert len({policy.choose(pool, alice, random.Random(i)) for i in range(20)}) == 1
    clients = [Request(client=f"10.0.{i // 256}.{i % 256}") for i in range(5_000)]
    before = [policy.choose(pool, r, None) for r in clients]
    after = [policy.choose(pool[:2] + pool[3:], r, None) for r in clients]
    moved = sum(x != y for x, y in zip(before, after))
    assert moved / 5_000 > 0.6  # modulo hashing moves most clients: why consistent hashing exists


def test_consistent_hash_moves_only_the_leaving_backends_keys():
    pool = backends("b0", "b1", "b2", "b3", "b4")
    ring = ConsistentHash(key="path")
    keys = [Request(path=f"/item/{k}?v=1") for k in range(10_000)]
    before = [ring.choose(pool, r, None) for r in keys]
    shares = Counter(before)
    assert all(1_500 < n < 2_500 for n in shares.values()), shares  # 100 vnodes: within ~25% of even
    after = [ring.choose([b for b in pool if b.name != "b2"], r, None) for r in keys]
    moved = [(x, y) for x, y in zip(before, after) if x != y]
    assert {x for x, _ in moved} == {"b2"}  # nobody else's keys moved
    assert 0.15 < len(moved) / 10_000 < 0.25  # about 1/n
    assert ring.choose(pool, Request(path="/item/1?v=2"), None) == ring.choose(pool, Request(path="/item/1"), None)


def test_consistent_hash_on_a_header_falls_back_to_the_client():
    pool = backends("a", "b", "c")
    ring = ConsistentHash(key="header", header="X-User")
    alice = Request(headers={"x-user": "alice"}, client="proxy-1")
    assert {ring.choose(pool, alice.copy(path=f"/p{i}"), None) for i in range(30)} == {ring.choose(pool, alice, None)}
    anonymous = Request(client="10.0.0.9")
    assert ring.choose(pool, anonymous, None) == ConsistentHash(key="client").choose(pool, anonymous, None)


def test_policy_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"^ConsistentHash key must be one of 'path', 'client', 'header', got 'ip'$"):
        ConsistentHash(key="ip")
    with pytest.raises(ConfigError, match=r"^ConsistentHash key 'header' needs a header name, got None$"):
        ConsistentHash(key="header")
    with pytest.raises(ConfigError, match=r"^vnodes must be an integer >= 1, got 0$"):
        ConsistentHash(vnodes=0)


# -- health state machines ------------------------------------------------------------------
def test_health_goes_down_after_fall_failures_and_up_after_rise_passes():
    h = HealthTracker(HealthCheck(rise=2, fall=3))
    assert [h.record(ok) for ok in (False, False, True, False, False)] == [False] * 5
    assert h.up  # a blip resets the streak: never three failures in a row
    assert [h.record(False) for _ in range(1)] == [True] and not h.up
    assert [h.record(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert h.up and h.changes == 2


def test_outlier_ejection_returns_after_ejection_time_and_respects_max_percent():
    tracker = OutlierTracker(OutlierDetection(consecutive_errors=3, ejection_s=30, max_ejection_percent=50),
                             ["a", "b", "c", "d"])
    for t in (1.0, 2.0):
        assert not tracker.record("a", False, t)
    assert not tracker.record("a", True, 2.5)  # a success resets the streak
    assert [tracker.record("a", False, t) for t in (3, 4, 5)] == [False, False, True]
    assert tracker.ejected("a", 20.0)
    assert [tracker.record("b", False, t) for t in (6, 7, 8)] == [False, False, True]
    assert [tracker.record("c", False, t) for t in (9, 10, 11)] == [False, False, False]  # 50% of 4 are out
    assert tracker.skipped == 1
    assert not tracker.ejected("a", 35.0)  # back after 30 s
    assert tracker.ejections == {"a": 1, "b": 1, "c": 0, "d": 0}


def test_at_least_one_backend_may_be_ejected_even_with_a_tiny_percentage():
    tracker = OutlierTracker(OutlierDetection(consecutive_errors=1, max_ejection_percent=10), ["a", "b"])
    assert tracker.record("a", False, 0.0)
    assert not tracker.record("b", False, 0.0)


def test_slow_start_ramps_weight_from_a_floor_to_full():
    assert [slow_start_factor(t, 10.0) for t in (0.0, 0.5, 5.0, 10.0, 60.0)] == [0.1, 0.1, 0.5, 1.0, 1.0]
    assert slow_start_factor(0.0, 0.0) == 1.0


def test_retry_budget_allows_a_share_of_recent_requests_plus_a_floor():
    budget = RetryBudgetTracker(RetryBudget(ratio=0.2, min_retries_per_s=0.5, window_s=10))
    for i in range(100):
        budget.request(i * 0.05)  # 100 requests in 5 s
    granted = sum(budget.try_retry(5.0) for _ in range(100))
    assert granted == 25  # 20% of 100, plus 0.5/s over the 10 s window
    assert budget.denied == 75
    assert not budget.try_retry(14.0)  # the requests are still in the window, the retries too
    assert budget.try_retry(16.0)  # both aged out: only the floor is left
    assert (budget.used, budget.denied) == (26, 76)


def test_health_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"^rise must be an integer >= 1, got 0$"):
        HealthCheck(rise=0)
    with pytest.raises(ConfigError, match=r"^health check path must start with '/', got 'health'$"):
        HealthCheck(path="health")
    with pytest.raises(ConfigError, match=r"^max_ejection_percent must be between 0 and 100, got 120$"):
        OutlierDetection(max_ejection_percent=120)
    with pytest.raises(ConfigError, match=r"^ratio must be >= 0, got -0.1$"):
        RetryBudget(ratio=-0.1)


# -- wiring -----------------------------------------------------------------------------------
def test_a_balancer_needs_backends_that_exist():
    # an empty pool is allowed when built (an autoscaler may fill it) and refused before the run
    for lb, message in ((L7Balancer("lb", []), r"^L7Balancer 'lb': backends must name at least one host, got \[\]$"),
                        (L4Balancer("nlb", []), r"^L4Balancer 'nlb': backends must name at least one host, got \[\]$")):
        empty = Sim(seed=1)
        empty.add(lb)
        with pytest.raises(WiringError, match=message):
            empty.validate()
    sim = Sim(seed=1)
    sim.add(AppServer("app1"))
    sim.add(L7Balancer("lb", ["app1", "app9"]))
    with pytest.raises(WiringError, match=r"^L7Balancer 'lb': unknown backend host 'app9' \(known hosts: app1, lb\)$"):
        sim.validate()


def test_a_balancer_in_front_of_itself_is_a_loop():
    sim = Sim(seed=1)
    sim.add(AppServer("app1"))
    sim.add(L7Balancer("lb", ["app1", "lb"]))
    with pytest.raises(WiringError, match=r"^requests would loop forever: lb -> lb$"):
        sim.validate()
    sim = Sim(seed=1)
    sim.add(L7Balancer("edge", ["inner"]))
    sim.add(L4Balancer("inner", ["edge"]))
    with pytest.raises(WiringError, match=r"^requests would loop forever: edge -> inner -> edge$"):
        sim.validate()


def test_balancer_config_errors_name_the_value():
    with pytest.raises(ConfigError, match=r"^route pool 'cdn' is not defined \(pools: default\)$"):
        L7Balancer("lb", ["app1"], routes=[Route(pool="cdn", prefix="/static")])
    with pytest.raises(ConfigError, match=r"^Route to 'cdn' needs at least one of prefix, host, header$"):
        Route(pool="cdn")
    with pytest.raises(ConfigError, match=r"^retries must be an integer >= 0, got -1$"):
        L7Balancer("lb", ["app1"], retries=-1)
    with pytest.raises(ConfigError, match=r"^weight of backend 'app1' must be > 0, got 0$"):
        L7Balancer("lb", {"app1": 0})
    with pytest.raises(ConfigError, match=r"^L4Balancer 'nlb' cannot hash on 'path': it sees connections, "
                                          r"not HTTP; use ConsistentHash\(key='client'\)$"):
        L4Balancer("nlb", ["app1"], policy=ConsistentHash(key="path"))


def test_exported_names():
    for name in ("L4Balancer", "L7Balancer", "Route", "HealthCheck", "OutlierDetection", "RetryBudget",
                 "RoundRobin", "WeightedRoundRobin", "Random", "LeastConnections", "PowerOfTwoChoices",
                 "SourceIPHash", "ConsistentHash", "BackendState"):
        assert hasattr(components, name), name


# -- what an L7 balancer does to a request ----------------------------------------------------------
class Browser(Node):
    """A client host that runs a script of requests and keeps the answers."""

    kind = "client"

    def __init__(self, name: str, target: str, script) -> None:
        super().__init__(name)
        self.target, self.script, self.answers = target, script, []

    def downstream(self) -> tuple[str, ...]:
        return (self.target,)

    async def run(self) -> None:
        await self.sleep(0.01)
        for request in self.script:
            request.client = self.name
            self.answers.append(await self.call(self.target, request, 5.0))


async def echo(request: Request, ctx) -> Response:
    return Response(200, {"x-seen-xff": request.headers.get("x-forwarded-for", "")}, ctx.server.name.encode())


def run_script(balancer: Node, script, hosts=("app1", "app2", "app3")) -> Browser:
    sim = Sim(seed=3)
    for name in hosts:
        sim.add(AppServer(name, echo))
    sim.add(balancer)
    browser = sim.add(Browser("browser", balancer.name, script))
    sim.run(duration_s=1)
    return browser


def test_sticky_cookie_pins_a_session_and_every_answer_names_its_backend():
    script = [Request("GET", "/cart")] + [Request("GET", "/cart", {"cookie": "theme=dark; lb=app3"}) for _ in range(4)]
    b = run_script(L7Balancer("lb", ["app1", "app2", "app3"], sticky=True), script)
    first = b.answers[0]
    assert first.headers["set-cookie"] == f"lb={first.headers['x-backend']}"
    assert [a.text for a in b.answers[1:]] == ["app3"] * 4
    assert all(a.headers["x-backend"] == a.text for a in b.answers)
    assert "set-cookie" not in b.answers[1].headers  # already pinned where the cookie says
    assert first.headers["x-seen-xff"] == "browser"


def test_routes_send_paths_hosts_and_headers_to_their_pools():
    lb = L7Balancer("lb", ["app1"], pools={"cdn": ["app2"], "beta": ["app3"]},
                    routes=[Route(pool="cdn", prefix="/static"), Route(pool="beta", host="beta.example.com"),
                            Route(pool="beta", header="x-canary", value="1")])
    script = [Request("GET", "/static/app.js"), Request("GET", "/", {"host": "beta.example.com:443"}),
              Request("GET", "/", {"x-canary": "1"}), Request("GET", "/", {"x-canary": "0"}), Request("GET", "/item/1")]
    b = run_script(lb, script)
    assert [a.text for a in b.answers] == ["app2", "app3", "app3", "app1", "app1"]


def test_an_l4_balancer_neither_reads_nor_writes_http():
    script = [Request("GET", "/", {"cookie": "lb=app3"}, conn=7) for _ in range(3)]
    b = run_script(L4Balancer("nlb", ["app1", "app2", "app3"]), script)
    assert [a.text for a in b.answers] == ["app1"] * 3  # one connection, one backend, cookie ignored
    assert all("x-backend" not in a.headers and a.headers["x-seen-xff"] == "" for a in b.answers)


@pytest.mark.parametrize("connections", [None, 3])
def test_an_l4_balancers_connection_table_holds_open_connections_not_past_requests(connections):
    async def ok(request, ctx):
        return Response(200)

    sim = Sim(seed=3)
    sim.add(L4Balancer("nlb", ["app1", "app2"]))
    for name in ("app1", "app2"):
        sim.add(AppServer(name, ok))
    sim.load(OpenLoop("nlb", rate=500, connections=connections))
    report = sim.run(4)
    assert report.ok > 1500
    # None: a new connection per request, so nothing to remember once it is answered; 3: three keep-alives
    assert report.components["nlb"].detail["connections"] == (connections or 0)
