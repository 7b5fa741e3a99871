"""Wiring mistakes are caught before the run, with a message that names the mistake.

A topology is code, so it can be wrong the way code is: a balancer with nothing
behind it, a handler that is not async, a cache with no room, a name that
points at no host, two balancers forwarding to each other, the same name twice,
a latency that cannot be. Each is a ``ConfigError`` (``WiringError`` when the
parts do not fit together) raised when the part is built, or by ``sim.run()``
before any simulated time passes. The messages are asserted exactly.

One loop no static check can see: a handler that calls a host by name without
declaring it (``calls=``). Hop counts carry through app servers and balancers,
so such a request ends as ``508 loop detected`` after 32 hops, never a hang;
with fewer workers than hops, the server's pool deadlocks first and the call
times out (504) instead.
"""
from __future__ import annotations

import re

import pytest

from components import CDN, AppServer, CacheServer, CDNEdge, DNSServer, L4Balancer, L7Balancer, Resolver
from playground import (ClosedLoop, ConfigError, Exponential, LogNormal, OpenLoop, Request, Response, Sim, Uniform,
                        WiringError)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def nothing_ran(sim: Sim) -> bool:
    """The run was refused before it started: no run counted, no time passed, no report."""
    return sim.runs == 0 and sim.sched.now == 0.0 and sim.last_report is None


async def ok(request, ctx):
    return "ok"


# -- when a part is built ---------------------------------------------------------------------
def test_a_balancer_needs_backends():
    # built empty (an autoscaler may fill it at run time), it is refused before the run
    for lb in (L7Balancer("lb", []), L4Balancer("nlb", [])):
        sim = Sim(seed=1)
        sim.add(lb)
        kind = type(lb).__name__
        with pytest.raises(WiringError, match=exactly(f"{kind} {lb.name!r}: backends must name at least one host, got []")):
            sim.validate()


def test_a_handler_must_be_async():
    def sync_handler(request, ctx):
        return "ok"

    with pytest.raises(ConfigError, match=exactly(f"AppServer 'app': handler must be an async function, "
                                                  f"got {sync_handler!r}")):
        AppServer("app", sync_handler)

    class Handler:  # an object whose __call__ is async is a handler too
        async def __call__(self, request, ctx):
            return "ok"

    assert AppServer("app", Handler()).handler is not None


def test_a_cache_needs_room():
    with pytest.raises(ConfigError, match=exactly("capacity_items must be >= 1, got 0")):
        CacheServer("cache", capacity_items=0)
    with pytest.raises(ConfigError, match=exactly("capacity_items must be >= 1, got 0")):
        CDNEdge("cdn-eu", "lb", capacity_items=0)


def test_host_names_are_unique():
    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    with pytest.raises(WiringError, match=exactly("duplicate host name 'app': host names must be unique")):
        sim.add(CacheServer("app"))
    assert list(sim.hosts) == ["app"]  # the second one was not added


def test_distributions_and_latencies_must_be_possible():
    with pytest.raises(ConfigError, match=exactly("Exponential mean_s must be > 0, got 0")):
        Exponential(0)
    with pytest.raises(ConfigError, match=exactly("Uniform high_s must be >= low_s (0.2), got 0.1")):
        Uniform(0.2, 0.1)
    with pytest.raises(ConfigError, match=exactly("LogNormal median_s must be > 0, got -1")):
        LogNormal(-1)
    with pytest.raises(ConfigError, match=exactly("cpu_s must be >= 0 seconds, got -0.001")):
        AppServer("app", cpu_s=-0.001)
    with pytest.raises(ConfigError, match=exactly("cpu_s must be a number of seconds or a Distribution, got 'fast'")):
        AppServer("app", cpu_s="fast")
    with pytest.raises(ConfigError, match=exactly("think_time_s must be >= 0 seconds, got -1")):
        ClosedLoop("app", think_time_s=-1)
    sim = Sim(seed=1)
    sim.add(AppServer("a"))
    sim.add(AppServer("b"))
    with pytest.raises(ConfigError, match=exactly("latency_s must be >= 0 seconds, got -0.001")):
        sim.link("a", "b", latency_s=-0.001)


# -- by sim.run(), before anything runs ---------------------------------------------------------
def refused_run(sim: Sim, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=exactly(message)):
        sim.run(10)
    assert nothing_ran(sim)


def test_a_name_that_points_at_no_host_is_refused_before_the_run():
    sim = Sim(seed=1)  # a balancer backend
    sim.add(AppServer("app1"))
    sim.add(L7Balancer("lb", ["app1", "app9"]))
    refused_run(sim, WiringError, "L7Balancer 'lb': unknown backend host 'app9' (known hosts: app1, lb)")

    sim = Sim(seed=1)  # a host an app server calls
    sim.add(AppServer("app", ok, calls=("db",)))
    refused_run(sim, WiringError, "'app' sends to unknown host 'db'")

    sim = Sim(seed=1)  # a load's target
    sim.add(AppServer("app"))
    sim.load(OpenLoop("web", rate=10))
    refused_run(sim, WiringError, "unknown host 'web' (known hosts: app, client)")

    sim = Sim(seed=1)  # a CDN's origin
    CDN("cdn", origin="lb", regions=["eu"]).add_to(sim)
    refused_run(sim, WiringError, "'cdn-eu' sends to unknown host 'lb'")

    sim = Sim(seed=1)  # a DNS record
    sim.add(DNSServer("dns")).set_records("www", ["lb1"])
    refused_run(sim, WiringError, "DNS 'dns': record 'www' names unknown host 'lb1'")

    sim = Sim(seed=1)  # a load resolving through a DNS that does not exist
    sim.add(AppServer("app"))
    sim.load(OpenLoop("www", rate=10, resolver=Resolver("dns")))
    refused_run(sim, WiringError, "load 'openloop->www' resolves 'www' through unknown DNS host 'dns'")


def test_two_balancers_forwarding_to_each_other_are_refused_before_the_run():
    sim = Sim(seed=1)
    sim.add(L7Balancer("lb1", ["lb2"]))
    sim.add(L7Balancer("lb2", ["lb1"]))
    sim.load(OpenLoop("lb1", rate=100))
    refused_run(sim, WiringError, "requests would loop forever: lb1 -> lb2 -> lb1")
    assert sim["lb1"].stats().served == 0 and sim["lb2"].stats().served == 0


async def test_a_declared_loop_through_an_app_server_is_refused_by_run_async_too(virtual_clock):
    sim = Sim(seed=1)
    sim.add(AppServer("app", ok, calls=("lb",)))  # the app calls its own balancer
    sim.add(L7Balancer("lb", ["app"]))
    sim.load(OpenLoop("lb", rate=100))
    with pytest.raises(WiringError, match=exactly("requests would loop forever: app -> lb -> app")):
        await sim.run_async(10)
    assert nothing_ran(sim)


# -- at run time: the loop no static check can see ------------------------------------------------
async def calls_itself(request, ctx):
    answer = await ctx.call(ctx.server.name, Request("GET", "/again"), timeout_s=5.0)
    return Response(answer.status, answer.headers, answer.body)


async def calls_its_balancer(request, ctx):
    answer = await ctx.call("lb", Request("GET", "/again"), timeout_s=5.0)
    return Response(answer.status, answer.headers, answer.body)


def one_user(target: str) -> ClosedLoop:
    return ClosedLoop(target, users=1, think_time_s=1.0, timeout_s=10.0)


async def test_a_handler_calling_itself_by_name_ends_as_508_not_a_hang(virtual_clock):
    sim = Sim(seed=1)
    sim.add(AppServer("app", calls_itself, workers=64))  # calls=() declares nothing: the checks pass
    users = sim.load(one_user("app"))
    report = await sim.run_async(5)

    stats = report.clients[users.name]
    app = report.component("app")
    print(f"\nself-calling handler: statuses {stats.statuses}; {app.served} requests served, "
          f"{app.peak_in_system:g} nested at the deepest")
    assert stats.statuses == {508: 4}  # each request the user sent (one a second, from t=1), at once
    assert app.peak_in_system == 32  # 32 hops deep, then the network said "loop detected"
    assert app.served == 32 * 4


async def test_a_handler_calling_its_own_balancer_ends_as_508(virtual_clock):
    sim = Sim(seed=1)
    for name in ("app1", "app2", "app3"):
        sim.add(AppServer(name, calls_its_balancer))  # default 8 workers each
    sim.add(L7Balancer("lb", ["app1", "app2", "app3"]))
    users = sim.load(one_user("lb"))
    report = await sim.run_async(3)

    stats = report.clients[users.name]
    assert stats.statuses == {508: 2}
    # client -> lb -> app -> lb -> ... : 16 passes through the balancer, 16 through the apps
    assert report.component("lb").served == 16 * 2
    assert sum(report.component(a).served for a in ("app1", "app2", "app3")) == 16 * 2


async def test_with_fewer_workers_than_hops_the_pool_deadlocks_and_the_call_times_out(virtual_clock):
    sim = Sim(seed=1)
    sim.add(AppServer("app", calls_itself))  # 8 workers: all 8 wait on calls that wait for a worker
    users = sim.load(one_user("app"))
    report = await sim.run_async(5)

    stats = report.clients[users.name]
    app = report.component("app")
    print(f"\nself-calling handler, 8 workers: statuses {stats.statuses}, "
          f"peak {app.peak_in_system:g} in the host, peak queue {app.peak_queue:g}")
    assert stats.statuses == {504: 1}  # the nested calls timed out after 5 s: an error, not a hang
    assert app.peak_queue >= 1
