"""The README's "Testing your own idea" snippet, verbatim, so the README stays true."""
from playground import Sim, OpenLoop
from components import AppServer, L7Balancer, HealthCheck

async def test_p99_holds_through_a_crash(virtual_clock):
    sim = Sim(seed=1)
    for name in ("app1", "app2", "app3"):
        sim.add(AppServer(name, cores=2, cpu_s=0.004))
    sim.add(L7Balancer("lb", ["app1", "app2", "app3"], retries=2, health_check=HealthCheck(interval_s=0.5)))
    sim.load(OpenLoop("lb", rate=500))
    sim.at(5, sim.crash, "app2")
    report = await sim.run_async(20)
    assert report.failed == 0 and report.p99_s < 0.2
