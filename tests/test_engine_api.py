"""The engine's public surface, real time, and a Sim that runs more than once."""
from __future__ import annotations

import __future__
import types

import playground
from playground import Node, OpenLoop, Response, Sim

EXPORTED = {
    # clock and scheduler
    "Scheduler", "VirtualClock", "RealtimeScheduler",
    # distributions
    "Distribution", "Constant", "Uniform", "Exponential", "LogNormal", "Empirical", "as_distribution",
    # errors
    "PlaygroundError", "ConfigError", "WiringError", "RequestError", "Timeout", "Refused", "Reset", "Dropped",
    # loads and workloads
    "Load", "OpenLoop", "ClosedLoop", "Population", "Workload", "Zipf", "Shape", "Steady", "Ramp", "Steps", "Spike",
    # messages
    "Request", "Response", "Connection", "to_asgi_scope", "call_asgi",
    # measurements and reports
    "ClientStats", "LatencyHistogram", "LatencySummary", "TimeWeighted", "Report", "Comparison", "NodeStats",
    "HostSeries", "HostSeriesRow", "LatencySketch",
    "ErrorRecord",
    # the simulation
    "Network", "Node", "Resource", "Sim", "Client",
    # sweeps
    "sweep", "SweepResult", "SweepPoint", "Estimate",
    # judging and pricing runs
    "SLO", "SLOCheck", "assert_slo", "Footprint", "Prices", "CostBreakdown", "pareto_front",
    "capacity_search", "breaking_point", "CapacityResult",
}


def test_the_exported_names_are_exactly_the_public_api():
    public = {
        name for name, value in vars(playground).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))  # submodules, `annotations`
    }
    assert public == EXPORTED


class Echo(Node):
    kind = "echo"

    async def handle(self, request):
        await self.sleep(0.010)
        return Response(200, body=b"hi")


def echo_sim(rate: float = 100.0, **kw) -> Sim:
    sim = Sim(seed=1, **kw)
    sim.add(Echo("app"))
    sim.load(OpenLoop("app", rate=rate, arrivals="constant", timeout_s=1.0))
    return sim


# Real time is measured against the wall clock, so these two only check that it works:
# a busy machine delays the arrivals (each is due a gap after the last one fired).


def test_real_time_runs_the_same_topology_against_the_wall_clock():
    report = echo_sim(rate=40, realtime=True, speed=4.0).run(duration_s=0.5)  # about 125 ms of wall time
    assert 5 <= report.sent <= 20 and report.ok == report.sent
    assert report.p50_s >= 0.010  # 10 ms of simulated work, plus whatever the wall clock adds


async def test_run_async_outside_a_virtual_clock_runs_in_real_time():
    report = await echo_sim(rate=40, speed=4.0).run_async(0.5)
    assert 5 <= report.ok <= 20 and report.failed == 0


def test_one_sim_runs_again_after_a_crash_and_a_restart():
    sim = echo_sim()
    first = sim.run(duration_s=2)
    sim.crash("app")
    while_down = sim.run(duration_s=2)
    sim.restart("app")
    again = sim.run(duration_s=2)

    assert sim.runs == 3
    assert first.ok == first.sent >= 199
    assert while_down.ok == 0 and while_down.errors == {"refused": while_down.sent}  # counted afresh
    assert again.ok == again.sent and abs(again.sent - first.sent) <= 1 and again.failed == 0
    assert again.components["app"].served == again.ok  # host figures are per run too


async def test_two_runs_in_one_trio_run_share_the_clock_and_keep_their_own_figures(virtual_clock):
    sim = echo_sim()
    first = await sim.run_async(2)
    second = await sim.run_async(2)
    assert abs(first.sent - second.sent) <= 1 and second.ok == second.sent
    assert second.components["app"].served == second.ok
    assert second.series["openloop->app"][0].t_s == 0.0  # times are from the run's own start
    assert virtual_clock.current_time() >= 4.0  # simulated time went on
