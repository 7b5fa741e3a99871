"""The seed is the only source of randomness: same seed, same report, to the byte.

A small system with every random part switched on - Poisson arrivals, closed
loop users with random think time, exponential service, jittered and lossy
links, retries with random backoff - is run twice per seed.
"""
from __future__ import annotations

from playground import ClosedLoop, Exponential, LogNormal, Node, OpenLoop, Response, Sim, Uniform, Workload


class Server(Node):
    """Serves each request in a random time on one of ``concurrency`` workers."""

    kind = "server"

    def __init__(self, name: str, service=Exponential(0.004), **kw) -> None:
        super().__init__(name, concurrency=4, queue_limit=50, **kw)
        self.service = service

    async def handle(self, request):
        await self.sleep(self.service.sample(self.rng) * self.slow_factor)
        return Response(200, body=b"ok")


def build(seed, *, faults: bool = False) -> Sim:
    sim = Sim(seed=seed)
    sim.add(Server("app"))
    sim.add(Server("api", service=LogNormal(0.002, 0.8)))
    sim.load(OpenLoop("app", rate=300, workload=Workload(keys=100), timeout_s=0.2, retries=2))
    sim.load(ClosedLoop("api", users=10, think_time_s=Exponential(0.05), client="mobile", timeout_s=0.1))
    sim.link("client", "app", Uniform(0.001, 0.003), jitter_s=0.0005, loss=0.01)
    sim.link("mobile", "api", 0.02, jitter_s=0.01)
    if faults:
        sim.at(1.0, sim.crash, "app", 0.5)  # down for half a second
        sim.at(2.0, sim.partition, "mobile", "api")
        sim.at(2.3, sim.repair, "mobile", "api")
    return sim


def test_the_same_seed_gives_the_same_report_to_the_byte():
    first = build(7).run(duration_s=3).to_json()
    second = build(7).run(duration_s=3).to_json()
    assert first == second


def test_a_different_seed_gives_a_different_run():
    assert build(7).run(duration_s=3).to_json() != build(8).run(duration_s=3).to_json()


def test_scheduled_faults_repeat_exactly_too():
    first = build("story", faults=True).run(duration_s=3)
    second = build("story", faults=True).run(duration_s=3)
    assert first.to_json() == second.to_json()
    assert [d for _, d in first.events] == ["crash app", "restart app", "partition mobile <-> api", "repair mobile api"]
    assert first.errors.get("refused", 0) > 0 and first.errors.get("timeout", 0) > 0  # the faults bit
    assert first.to_json() != build("story").run(duration_s=3).to_json()

