"""Balancers forward with scheduler callbacks, not a worker task per request: same report, to the byte.

``L7Balancer`` and ``L4Balancer`` serve a request inline (``BalancerBase``'s
inline path: ``handle`` step for step as callbacks); ``forward_inline = False``
gives the task path. Every story here is run both ways and must report the
same figures, errors and events: retries and their budget, refused and reset
backends, timeouts, a crashed balancer, health checks, outlier ejection, a
circuit breaker, deadlines, rate limits, sticky sessions, routes, keep-alive
connections, traced requests (which take a task even inline), and a policy
that raises.
"""
from __future__ import annotations

import json

import pytest

from components import (AppServer, CircuitBreaker, HealthCheck, L4Balancer, L7Balancer, LeastConnections,
                        OutlierDetection, RateLimit, Route, TokenBucket)
from components.backend_pool import BalancerBase
from playground import ClosedLoop, Exponential, OpenLoop, Response, Sim, Workload


async def _flaky(request, ctx):
    await ctx.cpu(0.002)
    if ctx.rng.random() < 0.1:
        return Response(503, body=b"busy")
    return Response(200, {"set-cookie": "sid=1"}, b"ok")


def _backends(sim: Sim, names=("app1", "app2", "app3")) -> None:
    for name in names:
        sim.add(AppServer(name, _flaky, cores=1, workers=4, queue_limit=20, cpu_s=Exponential(0.001)))


def _l7_story(seed: int) -> Sim:
    sim = Sim(seed=seed, trace_sample=0.05)
    _backends(sim)
    sim.add(AppServer("static", cores=2, cpu_s=Exponential(0.0005)))
    sim.add(L7Balancer("lb", ["app1", "app2", "app3"], pools={"cdn": ["static"]},
                       routes=[Route(pool="cdn", prefix="/static")], retries=2, timeout_s=0.05,
                       health_check=HealthCheck(interval_s=0.2, timeout_s=0.05),
                       outlier=OutlierDetection(consecutive_errors=3, ejection_s=0.3),
                       circuit_breaker=CircuitBreaker(window=10, open_s=0.2), policy=LeastConnections()))
    sim.load(OpenLoop("lb", rate=700, timeout_s=0.2, retries=1, propagate_deadline=True,
                      workload=Workload(keys=500, static_share=0.2, write_share=0.1)))
    sim.load(ClosedLoop("lb", users=5, think_time_s=Exponential(0.01), client="mobile", timeout_s=0.3))
    sim.at(0.6, sim.crash, "app2", 0.4)
    sim.at(1.2, sim.slow, "app1", None, 20.0)
    sim.at(1.5, sim.heal, "app1")
    sim.at(1.7, sim.crash, "lb", 0.1)
    sim.at(2.0, sim.partition, "lb", "app3")
    sim.at(2.3, sim.repair, "lb", "app3")
    return sim


def _l7_limits_story(seed: int) -> Sim:
    sim = Sim(seed=seed)
    _backends(sim)
    sim.add(L7Balancer("lb", ["app1", "app2", "app3"], sticky=True, retries=1, concurrency=6, queue_limit=5,
                       rate_limit=RateLimit(TokenBucket(rate_per_s=150, burst=20))))
    sim.load(OpenLoop("lb", rate=400, timeout_s=0.5))
    sim.load(ClosedLoop("lb", users=8, think_time_s=Exponential(0.02), client="browser", timeout_s=0.5))
    sim.at(0.8, sim.crash, "app1", 0.5)
    return sim


def _l4_story(seed: int) -> Sim:
    sim = Sim(seed=seed, trace_sample=0.05)
    _backends(sim)
    sim.add(L4Balancer("nlb", ["app1", "app2", "app3"], timeout_s=0.1,
                       health_check=HealthCheck(interval_s=0.25), outlier=OutlierDetection(consecutive_errors=2)))
    sim.load(OpenLoop("nlb", rate=500, connections=7, timeout_s=0.3, retries=1))
    sim.load(OpenLoop("nlb", rate=200, timeout_s=0.3, client="fresh"))
    sim.at(0.5, sim.crash, "app3", 0.6)
    sim.at(1.4, sim.crash, "nlb", 0.05)
    sim.at(1.8, sim.partition, "nlb", "app1")
    sim.at(2.1, sim.repair, "nlb", "app1")
    return sim


def _report(story, seed: int, inline: bool, monkeypatch) -> str:
    monkeypatch.setattr(BalancerBase, "forward_inline", inline)
    sim = story(seed)
    report = sim.run(duration_s=2.5)
    lb = next(h for h in sim.net.hosts.values() if isinstance(h, BalancerBase))
    assert (lb._serve_inline is not None) is inline
    return report.to_json()


@pytest.mark.parametrize("story", [_l7_story, _l7_limits_story, _l4_story], ids=["l7", "l7-limits", "l4"])
def test_a_balancer_forwarding_inline_reports_exactly_what_worker_tasks_do(story, monkeypatch):
    for seed in (1, 2):
        inline = _report(story, seed, True, monkeypatch)
        tasks = _report(story, seed, False, monkeypatch)
        assert json.loads(inline)["clients"]
        assert inline == tasks, (story.__name__, seed)


def test_the_stories_go_through_what_they_claim_to(monkeypatch):
    """The equality above means something only if the stories fail in the ways they say."""
    monkeypatch.setattr(BalancerBase, "forward_inline", True)
    sim = _l7_story(1)
    report = sim.run(duration_s=2.5)
    lb = sim["lb"].stats()
    assert lb.detail["retries_used"] > 0 and lb.reset > 0 and sum(lb.detail["ejections"].values()) > 0
    assert any("circuit" in text for _, text in report.events) and report.traces
    assert any(504 in c.statuses for c in report.clients.values())  # attempts timed out
    sim = _l7_limits_story(1)
    sim.run(duration_s=2.5)
    lb = sim["lb"].stats()
    assert lb.rejected > 0 and lb.detail["rate_limit"]
    sim = _l4_story(1)
    sim.run(duration_s=2.5)
    assert sim["nlb"].stats().detail["conn_dropped"] > 0


class _Broken(LeastConnections):
    def choose(self, backends, request, rng):
        if request.id % 7 == 0:
            raise RuntimeError("policy bug")
        return super().choose(backends, request, rng)


def test_a_policy_that_raises_is_a_500_on_either_path(monkeypatch):
    out = {}
    for inline in (True, False):
        monkeypatch.setattr(BalancerBase, "forward_inline", inline)
        sim = Sim(seed=3)
        _backends(sim)
        sim.add(L7Balancer("lb", ["app1", "app2", "app3"], policy=_Broken()))
        sim.load(OpenLoop("lb", rate=300, timeout_s=0.5))
        out[inline] = sim.run(duration_s=1.0).to_json()
        stats = sim["lb"].stats()
        assert stats.handler_errors > 0 and stats.errors[0].message.startswith("policy bug")
    assert out[True] == out[False]


def test_only_a_plain_balancer_forwards_inline():
    class Custom(L7Balancer):
        async def handle(self, request):
            return await super().handle(request)

    sim = Sim(seed=1)
    _backends(sim, ("a",))
    plain, hedged, custom, l4 = (sim.add(L7Balancer("plain", ["a"])), sim.add(L7Balancer("hedged", ["a"], hedge_after_s=0.01)),
                                 sim.add(Custom("custom", ["a"])), sim.add(L4Balancer("l4", ["a"])))
    sim.run(duration_s=0.1)
    assert plain._serve_inline is not None and l4._serve_inline is not None
    assert hedged._serve_inline is None and custom._serve_inline is None


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "tasks"])
def test_a_crashed_balancer_comes_back_with_nothing_in_flight(inline, monkeypatch):
    """The requests it held failed with the crash: none of them may count against a backend after
    the restart (LeastConnections would otherwise avoid a backend for requests long gone)."""
    monkeypatch.setattr(BalancerBase, "forward_inline", inline)
    sim = Sim(seed=1)
    _backends(sim, ("a", "b"))
    sim.add(L7Balancer("lb", ["a", "b"], policy=LeastConnections(), retries=0))
    sim.load(OpenLoop("lb", rate=600, timeout_s=1.0))
    seen = {}
    sim.at(0.5, sim.crash, "lb")
    sim.at(0.5005, lambda: seen.update(down={n: sim["lb"].active_requests(n) for n in ("a", "b")}))
    sim.at(0.6, sim.restart, "lb")
    sim.run(duration_s=1.0)
    assert seen["down"] == {"a": 0, "b": 0}
    assert sim["lb"].stats().reset > 0  # it did hold requests when it crashed
