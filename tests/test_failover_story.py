"""Stories of a balanced service under virtual time: a server dies, comes back, everything dies.

Three app servers wait 40 ms on a database and spend 4 ms of CPU per request,
behind a balancer that checks ``/health`` every 0.5 s (down after 2 failures).
Users send 200 GET/s, open loop.
"""
from __future__ import annotations

from playground import ClosedLoop, OpenLoop, Sim
from components import (AppServer, HealthCheck, L4Balancer, L7Balancer, OutlierDetection, RetryBudget,
                        WeightedRoundRobin)

APPS = ("app1", "app2", "app3")
RATE = 200.0
CHECKS = HealthCheck(path="/health", interval_s=0.5, timeout_s=0.25, rise=2, fall=2)


async def waits_on_the_database(request, ctx):
    await ctx.cpu(0.004)
    await ctx.sleep(0.040)
    return "ok"


async def database_is_down(request, ctx):
    if request.path == "/health":
        return "alive"  # the process is up; its dependency is not
    return ("database unavailable", 503)


def service(balancer, handler=waits_on_the_database, rate=RATE, **load) -> Sim:
    sim = Sim(seed=1)
    for name in APPS:
        sim.add(AppServer(name, handler, cores=2))
    sim.add(balancer)
    sim.load(OpenLoop(balancer.name, rate=rate, **load))
    return sim


async def test_a_crashed_server_costs_users_nothing_and_gets_its_traffic_back(virtual_clock):
    lb = L7Balancer("lb", APPS, health_check=CHECKS, retries=2)
    sim = service(lb)
    sent_to_app2: dict[float, int] = {}
    sim.at(10, sim.crash, "app2")
    sim.at(20, sim.restart, "app2")
    for t in (12, 20, 25):
        sim.at(t, lambda t=t: sent_to_app2.__setitem__(t, lb.sent["app2"]))

    report = await sim.run_async(30)

    # the crash: nobody noticed
    assert report.failed == 0 and report.ok == report.sent
    held = report.components["app2"].reset
    assert held >= 2  # requests app2 was holding when it died: each retried elsewhere
    detail = report.components["lb"].detail
    assert detail["retries_used"] == held
    assert detail["refused_retries"] > 0  # sent to app2 before the checks noticed: refused, tried again
    (down_at,) = [t for t, d in report.events if d == "lb: app2 marked down"]
    assert 10.0 < down_at < 11.0  # two failed checks, 0.5 s apart
    # the restart: two good checks later it takes its third again
    (up_at,) = [t for t, d in report.events if d == "lb: app2 marked up"]
    assert 20.0 < up_at < 21.5
    third_of_5_s = 5 * RATE / 3
    assert sent_to_app2[20] == sent_to_app2[12]  # while it was marked down, not one request went to it
    assert 0.9 * third_of_5_s < detail["sent"]["app2"] - sent_to_app2[25] < 1.1 * third_of_5_s


async def test_without_retries_only_the_requests_the_crashed_server_held_fail(virtual_clock):
    lb = L7Balancer("lb", APPS, health_check=CHECKS, retries=0)
    sim = service(lb)
    sim.at(10, sim.crash, "app2")

    report = await sim.run_async(15)

    held = report.components["app2"].reset
    assert 0 < report.failed <= held
    assert report.errors == {"5xx": report.failed}  # 502s: "reset", passed on by the balancer
    assert report.components["lb"].detail["refused_retries"] > 0  # refused is retried even with retries=0


def _spread(report) -> float:
    sent = report.components["lb"].detail["sent"]
    return max(sent.values()) / min(sent.values())


def test_l4_pins_few_long_connections_unevenly_where_l7_evens_requests():
    l4 = service(L4Balancer("lb", APPS), connections=4).run(10)
    l7 = service(L7Balancer("lb", APPS), connections=4).run(10)

    # four keep-alive connections, round robin over three backends: one backend holds two
    assert l4.components["lb"].detail["connections"] == 4
    assert 1.9 < _spread(l4) < 2.1
    assert _spread(l7) < 1.01
    assert l4.failed == l7.failed == 0


async def test_an_l4_connection_moves_when_its_backend_dies(virtual_clock):
    sim = service(L4Balancer("lb", APPS, health_check=CHECKS), connections=4)
    sim.at(5, sim.crash, "app1")

    report = await sim.run_async(10)

    detail = report.components["lb"].detail
    assert detail["conn_dropped"] == 2  # app1 held two of the four connections
    assert report.failed <= report.components["app1"].reset  # only what app1 held: an L4 cannot retry
    assert detail["sent"]["app1"] < detail["sent"]["app2"]


async def test_when_every_backend_is_down_users_get_a_quick_503_not_a_hang(virtual_clock):
    sim = Sim(seed=1)
    for name in APPS:
        sim.add(AppServer(name, waits_on_the_database))
    sim.add(L7Balancer("lb", APPS, health_check=CHECKS, retries=1))
    users = sim.load(ClosedLoop("lb", users=10, think_time_s=0.1, timeout_s=2.0))
    for name in APPS:
        sim.at(5, sim.crash, name)

    report = await sim.run_async(15)

    client = report.clients[users.name]
    assert "timeout" not in client.errors
    assert client.errors == {"5xx": client.statuses[503]}
    assert report.components["lb"].detail["no_backend"] == client.statuses[503]
    # ten users thinking 0.1 s keep asking about 100 times a second: nobody waits on a hang
    assert client.statuses[503] > 0.9 * 10 * 10 / 0.1
    assert report.components["lb"].detail["down"] == list(APPS)


def test_a_retry_budget_keeps_an_outage_from_multiplying_backend_load():
    unbounded = service(L7Balancer("lb", APPS, retries=3, retry_budget=None, health_check=CHECKS),
                        database_is_down).run(12)
    budget = RetryBudget(ratio=0.2, min_retries_per_s=1.0, window_s=10)
    bounded = service(L7Balancer("lb", APPS, retries=3, retry_budget=budget, health_check=CHECKS),
                      database_is_down).run(12)

    def attempts_per_request(report) -> float:
        return sum(report.components["lb"].detail["sent"].values()) / report.sent

    assert bounded.ok == unbounded.ok == 0  # retries cannot fix an outage
    assert attempts_per_request(unbounded) == 3.0  # every request tried on every backend
    # 20% of requests, plus 1 retry/s over a 10 s window: at most 1.2 attempts and a few
    assert attempts_per_request(bounded) <= 1.2 + (12 + 10) * 1.0 / bounded.sent
    detail = bounded.components["lb"].detail
    assert detail["retries_denied"] > 2 * detail["retries_used"]


def test_a_failing_server_is_ejected_users_see_nothing_and_it_returns_slowly():
    async def app2_lost_its_database(request, ctx):
        if ctx.server.name == "app2" and ctx.now > 5 and request.path != "/health":
            return ("database unavailable", 503)
        return await waits_on_the_database(request, ctx)

    def run(slow_start_s: float):
        lb = L7Balancer("lb", APPS, health_check=CHECKS, retries=1, policy=WeightedRoundRobin(),
                        outlier=OutlierDetection(consecutive_errors=5, ejection_s=10), slow_start_s=slow_start_s)
        report = service(lb, app2_lost_its_database).run(16)
        ejected_at = [t for t, d in report.events if d == "lb: ejected app2 for 10s"]
        return report, ejected_at

    cold, (first, second) = run(slow_start_s=0)
    detail = cold.components["lb"].detail
    assert cold.failed == 0  # each 503 was retried on a healthy backend
    assert detail["health_changes"]["app2"] == 0  # its health endpoint never noticed
    assert 5 < first < 5.2 and detail["ejections"]["app2"] == 2  # back at ~15 s, still failing, out again
    assert detail["retries_used"] < 2 * 10  # 5 failures to eject, plus what was in flight

    warming, (first_w, second_w) = run(slow_start_s=5)
    assert warming.failed == 0
    # back at first + 10 s with a tenth of its weight: it takes longer to collect five failures
    assert second - (first + 10) < 0.1 < second_w - (first_w + 10)
