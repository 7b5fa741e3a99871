"""Hedged requests at the L7 balancer: a second attempt after a delay cuts the tail, at a price in load."""
from __future__ import annotations

import re

import pytest

from components import AppServer, L7Balancer
from playground import ConfigError, OpenLoop, Request, Sim


def long_tail_sim(hedge_after_s: float | None) -> Sim:
    """Five backends answer in 10 ms, but 3% of requests stall for 500 ms (a GC pause, a cold disk)."""
    sim = Sim(seed=21)

    async def handler(request, ctx):
        await ctx.sleep(0.5 if ctx.rng.random() < 0.03 else 0.01)
        return "ok"

    names = [f"b{i}" for i in range(5)]
    for name in names:
        sim.add(AppServer(name, handler, workers=100))
    sim.add(L7Balancer("lb", names, retries=0, hedge_after_s=hedge_after_s))
    sim.load(OpenLoop("lb", rate=200, timeout_s=2.0))
    return sim


def backend_load(report) -> int:
    return sum(report.component(f"b{i}").served for i in range(5))


def test_hedge_after_the_p95_cuts_p99_at_the_cost_of_a_few_percent_more_load():
    plain = long_tail_sim(None).run(20)
    hedged_sim = long_tail_sim(0.02)  # about the p95 of the plain run (10 ms answers, 3% at 500 ms)
    hedged = hedged_sim.run(20)
    assert plain.latency.p50_s < 0.02 and plain.p99_s > 0.45  # the stalls are the whole tail
    assert hedged.p99_s < 0.05 and hedged.failed == plain.failed == 0
    lb = hedged.component("lb").detail
    extra = backend_load(hedged) / backend_load(plain) - 1
    assert 0.02 < extra < 0.06  # about the 3% that stalled, sent twice
    assert lb["hedges"] == pytest.approx(0.03 * hedged.sent, rel=0.25)
    assert lb["hedges_won"] > 0.9 * lb["hedges"]  # the second attempt nearly always answers first


def test_a_hedge_delay_must_be_positive():
    with pytest.raises(ConfigError, match=r"^hedge_after_s must be > 0, got 0$"):
        L7Balancer("lb", ["a"], hedge_after_s=0)


def test_writes_are_not_hedged():
    sim = long_tail_sim(0.02)
    sim.loads[0].workload = type(sim.loads[0].workload)(write_share=1.0)
    report = sim.run(5)
    assert report.component("lb").detail["hedges"] == 0
