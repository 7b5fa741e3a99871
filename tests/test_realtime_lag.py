"""A stalled host must not change the simulated system: real time pauses the simulation instead.

A callback that blocks the whole process for 2 s of wall time stands in
for a busy machine. Without the pause, every timer would fire 2 s late:
health checks (timeout 0.3 s) would mark every backend down and the users'
latency would grow by the stall. With it, simulated time stops while the
process is stuck, the stall is counted and named in the report's events, and
the run is the same system as under virtual time: the same arrivals, no
backend marked down, no slow request. These tests use the wall clock; their
only wall-clock assumption is that 2 s of ``time.sleep`` takes at least 2 s.
"""
from __future__ import annotations

import time

import pytest
import trio

from components import AppServer, HealthCheck, L7Balancer
from playground import OpenLoop, Sim
from playground._clock import RealtimeScheduler

STALL_S = 2.0


def checked_pair(realtime: bool) -> Sim:
    sim = Sim(seed=3, realtime=realtime)
    for name in ("app1", "app2"):
        sim.add(AppServer(name, cores=2, cpu_s=0.002))
    sim.add(L7Balancer("lb", ["app1", "app2"], health_check=HealthCheck(interval_s=0.25, timeout_s=0.3, fall=1)))
    sim.load(OpenLoop("lb", rate=100))
    return sim


def stall() -> None:
    time.sleep(STALL_S)  # blocks the scheduler's thread: nothing in the process runs


def test_a_stall_pauses_simulated_time_instead_of_failing_health_checks():
    sim = checked_pair(realtime=True)
    sim.at(1.0, stall)
    report = sim.run(4)
    reference = checked_pair(realtime=False).run(4)
    events = [d for _, d in report.events]
    assert not [d for d in events if "marked down" in d], events
    assert report.failed == 0
    # every arrival came, at its simulated time (but for the first milliseconds, while hosts start;
    # without the pause some 200 would be missing)
    assert abs(report.sent - reference.sent) <= 5, (report.sent, reference.sent)
    assert report.latency.max_s < STALL_S / 2  # the stall is not simulated latency
    (note,) = [d for d in events if d.startswith("real time ran ahead")]
    lag = sim.sched.lag()
    assert lag["behind_s"] >= STALL_S - 0.1 and lag["stalls"] >= 1 and lag["longest_stall_s"] >= STALL_S - 0.1
    assert note.startswith(f"real time ran ahead: simulated time paused {lag['behind_s']:.3f} s in all")


async def test_simulated_time_is_monotonic_and_holds_near_the_earliest_unfired_entry():
    sched = RealtimeScheduler(max_lag_s=0.05)
    seen: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sched.drive)
        for i in range(5):
            sched.call_at(0.1 * (i + 1), lambda _: seen.append(sched.now))
        sched.call_at(0.12, lambda _: time.sleep(0.5))
        await sched.sleep(0.7)
        sched.halt()
        nursery.cancel_scope.cancel()
    assert seen == sorted(seen)
    # each entry fired within max_lag_s of its time, although the process was stuck for 0.5 s
    assert all(abs(t - 0.1 * (i + 1)) <= 0.05 + 0.02 for i, t in enumerate(seen)), seen
    assert sched.lag()["behind_s"] == pytest.approx(0.5, abs=0.2)
