from playground import Exponential, OpenLoop, Sim
from components import AppServer


def test_sync_run_counts_every_request():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=2, cpu_s=Exponential(0.005)))
    sim.load(OpenLoop("app", rate=100))
    report = sim.run(duration_s=5)
    assert report.sent == report.ok + report.failed + report.in_flight
    assert report.ok > 400


async def test_async_run_under_virtual_clock(virtual_clock):
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=2, cpu_s=Exponential(0.005)))
    sim.load(OpenLoop("app", rate=100))
    report = await sim.run_async(5)
    assert report.ok > 400
