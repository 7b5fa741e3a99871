"""The autoscaler: policies as pure functions, the group's wiring, and the spike story."""
from __future__ import annotations

import pytest

import components
from components import (AppServer, AutoScaler, FleetMetrics, L7Balancer, QueueDepth, StepScaling,
                        TargetTracking)
from playground import ConfigError, Exponential, OpenLoop, Sim, Spike, Steps, WiringError


def exactly(message: str) -> str:
    import re

    return "^" + re.escape(message) + "$"


def server(name: str) -> AppServer:
    return AppServer(name, cores=2, cpu_s=Exponential(0.2), queue_limit=30)


# -- policies are pure -----------------------------------------------------------------------
def test_target_tracking_asks_for_the_size_that_brings_cpu_to_the_target():
    policy = TargetTracking(cpu_utilisation=0.5)
    assert policy.decide(FleetMetrics(4, 4, 0, 1.0, 0)) == (8, "cpu 100% > target 50%")
    assert policy.decide(FleetMetrics(4, 4, 0, 0.52, 0))[0] == 4  # inside the dead band: no flapping
    assert policy.decide(FleetMetrics(8, 8, 0, 0.1, 0)) == (2, "cpu 10% < target 50%")
    assert policy.decide(FleetMetrics(8, 6, 2, 0.1, 0))[0] == 8  # no scale-in while servers boot


def test_step_scaling_and_queue_depth():
    steps = StepScaling(scale_out=((0.6, 1), (0.8, 4)), scale_in=((0.2, 2),))
    assert steps.decide(FleetMetrics(3, 3, 0, 0.7, 0))[0] == 4
    assert steps.decide(FleetMetrics(3, 3, 0, 0.95, 0))[0] == 7
    assert steps.decide(FleetMetrics(5, 5, 0, 0.1, 0))[0] == 3
    depth = QueueDepth(target_per_server=50, queue="jobs")
    assert depth.decide(FleetMetrics(2, 2, 0, 0.0, 0, queue_depth=1000)) == (20, "backlog 1000 > 50 per server")
    assert QueueDepth(target_per_server=10).decide(FleetMetrics(2, 2, 0, 0.0, in_system=45))[0] == 5


def test_bad_autoscaler_configs_are_refused_with_clear_messages():
    ok = dict(factory=server, balancer="lb", policy=TargetTracking())
    with pytest.raises(ConfigError, match=exactly("cpu_utilisation must be between 0 (excluded) and 1, got 1.5")):
        TargetTracking(cpu_utilisation=1.5)
    with pytest.raises(ConfigError, match=exactly("max_size must be >= min_size (4), got 2")):
        AutoScaler("web", min_size=4, max_size=2, **ok)
    with pytest.raises(ConfigError, match=exactly("min_size must be an integer >= 1, got 0")):
        AutoScaler("web", min_size=0, **ok)
    with pytest.raises(ConfigError, match=exactly("boot_s must be >= 0, got -1")):
        AutoScaler("web", boot_s=-1, **ok)
    with pytest.raises(ConfigError, match=exactly("interval_s must be finite, got inf")):
        AutoScaler("web", interval_s=float("inf"), **ok)
    with pytest.raises(ConfigError, match=exactly("policy must have a decide(metrics) method (TargetTracking, "
                                                  "StepScaling, QueueDepth), got 0.6")):
        AutoScaler("web", factory=server, balancer="lb", policy=0.6)
    with pytest.raises(ConfigError, match=exactly("scale_in thresholds must be below the scale_out ones, got "
                                                  "scale_in=((0.8, 1),), scale_out=((0.7, 1),)")):
        StepScaling(scale_out=((0.7, 1),), scale_in=((0.8, 1),))
    with pytest.raises(ConfigError, match=exactly("target_per_server must be > 0, got 0")):
        QueueDepth(target_per_server=0)
    sim = Sim(seed=1)
    with pytest.raises(ConfigError, match=exactly("factory must name the server it builds 'web-1', got 'app'")):
        sim.add(AutoScaler("web", factory=lambda name: AppServer("app"), balancer="lb", policy=TargetTracking()))
    sim = Sim(seed=1)
    sim.add(AutoScaler("web", **ok))
    with pytest.raises(WiringError, match=r"^AutoScaler 'web': unknown balancer host 'lb' \(known hosts: web, web-1\)$"):
        sim.validate()


def test_the_new_parts_are_exported_from_components():
    for name in ("AutoScaler", "TargetTracking", "StepScaling", "QueueDepth", "FleetMetrics", "MessageQueue",
                 "QueueClient", "QueueFull", "Message", "WorkerPool", "RateLimit", "TokenBucket", "SlidingWindow",
                 "APIGateway"):
        assert name in vars(components), name


# -- the story -------------------------------------------------------------------------------
SPIKE = Spike(base_per_s=15, peak_per_s=60, at_s=40, for_s=120)


def spike_run(fleet: str):
    sim = Sim(seed=3)
    if fleet == "auto":
        sim.add(L7Balancer("lb", [], retries=0))
        sim.add(AutoScaler("web", factory=server, balancer="lb", min_size=3, max_size=12,
                           policy=TargetTracking(cpu_utilisation=0.6), boot_s=30, interval_s=10,
                           cooldown_out_s=20, cooldown_in_s=40, drain_s=10))
    else:
        n = 3 if fleet == "base" else 10
        for i in range(n):
            sim.add(server(f"web-{i + 1}"))
        sim.add(L7Balancer("lb", [f"web-{i + 1}" for i in range(n)], retries=0))
    sim.load(OpenLoop("lb", rate=SPIKE, timeout_s=5.0))
    report = sim.run(240)
    rows = report.series[next(iter(report.series))]

    def worst_p99(t0, t1):
        return max(r.p99_s for r in rows if t0 <= r.t_s < t1)

    hours = (report.component("web").detail["server_seconds"] if fleet == "auto"
             else (3 if fleet == "base" else 10) * report.duration_s) / 3600
    return report, hours, worst_p99


def test_autoscaling_pays_for_the_spike_only_while_it_lasts_after_a_visible_lag():
    base, base_hours, base_p99 = spike_run("base")
    peak, peak_hours, peak_p99 = spike_run("peak")
    auto, auto_hours, auto_p99 = spike_run("auto")
    spike = (SPIKE.at_s, SPIKE.at_s + SPIKE.for_s)
    # sized for the base load: the spike overloads it all along (queues full, 503s and timeouts)
    assert base.failed > 0.3 * SPIKE.peak_per_s * SPIKE.for_s
    assert base_p99(spike[0] + 60, spike[1]) > 2.0
    # sized for the peak: no error, a flat p99, and ten servers paid for all the time
    assert peak.failed == 0 and peak_p99(*spike) < 2.0
    assert peak_hours == pytest.approx(10 * 240 / 3600)
    # autoscaled: the new servers need interval + boot time; until then p99 climbs as on the base fleet
    web = auto.component("web").detail
    ready = [t for t, e in auto.events if e.endswith("in service")]
    assert ready and SPIKE.at_s + 30 <= ready[0] <= SPIKE.at_s + 50
    assert auto_p99(spike[0], ready[0]) > 2.0  # the lag: p99 climbs before help arrives
    assert auto_p99(spike[0] + 85, spike[1]) < 2.0  # then it is as flat as the peak fleet's
    assert 0 < auto.failed < base.failed / 2
    assert web["peak_in_service"] >= 8 and web["in_service"] == 3  # grew for the spike, shrank after
    assert web["scale_outs"] >= 1 and web["scale_ins"] >= 1
    assert base_hours < auto_hours < 0.75 * peak_hours
    assert any("scale out 3 ->" in e for _, e in auto.events)
    assert any(e.endswith("stopped after draining") for _, e in auto.events)


def test_scale_in_drains_a_server_before_stopping_it():
    async def slow(request, ctx):  # a long request: still in service when the group shrinks
        await ctx.sleep(4.0)
        return "done"

    sim = Sim(seed=2)
    sim.add(L7Balancer("lb", [], retries=0))
    web = sim.add(AutoScaler("web", factory=lambda name: AppServer(name, slow, workers=50), balancer="lb",
                             min_size=1, max_size=4, policy=QueueDepth(target_per_server=4), boot_s=5,
                             interval_s=5, cooldown_in_s=10, drain_s=30))
    sim.load(OpenLoop("lb", rate=Steps(((0, 3.0), (40, 1.0))), timeout_s=10.0))
    report = sim.run(120)
    assert report.failed == 0  # no request was cut by a scale-in: each server finished what it held
    detail = report.component("web").detail
    assert detail["peak_in_service"] >= 3 and detail["launched"] >= 2 and detail["stopped"] >= 2
    scale_in = min(t for t, e in report.events if "scale in" in e)
    stops = [t for t, e in report.events if e.endswith("stopped after draining")]
    assert stops and max(stops) > scale_in + 1.0  # one at least had requests to finish first
    assert all("requests cut" not in e for _, e in report.events)
    stopped = [n for n, c in report.components.items() if n.startswith("web-") and not c.up]
    assert len(stopped) == detail["stopped"]
    assert web.size + detail["booting"] + detail["draining"] == 1 + detail["launched"] - detail["stopped"]


def test_the_bill_follows_the_fleet_size():
    auto, auto_hours, _ = spike_run("auto")
    peak, _, _ = spike_run("peak")
    web = auto.component("web")
    per_server = AppServer("x", cores=2).footprint()
    # the group stands for its average fleet: server-seconds / run time servers of 2 cores each
    assert web.footprint.cores == pytest.approx(per_server.cores * auto_hours * 3600 / auto.duration_s, rel=0.05)
    assert all(auto.component(n).footprint is None for n in auto.components if n.startswith("web-"))
    ratio = auto.cost().total_per_month / peak.cost().total_per_month
    assert 0.3 < ratio < 0.8  # cheaper than the fleet sized for the peak (which also pays its balancer)
