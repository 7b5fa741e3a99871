"""Nothing is lost and nothing is counted twice, whatever breaks.

The topology is the classic web stack: users -> L7 balancer -> three app
servers -> a cache (cache-aside) and a database. Under every fault verb
(crash, partition, hold, slow, loss) applied to each tier in turn, every
request a client issues must end exactly once, as ok or as an error of some
kind, and none may be left in flight once the run has drained. A write the
database acknowledged must still be there after app servers and the balancer
crash. And the same seed with the same scheduled faults must give the same
report, byte for byte.
"""
from __future__ import annotations

import itertools
from collections import Counter

import pytest

from components import AppServer, CacheAside, CacheServer, Database, DatabaseClient, HealthCheck, L7Balancer
from playground import Exponential, OpenLoop, Request, Response, Sim, Workload

APPS = ("app1", "app2", "app3")


class LedgerLoop(OpenLoop):
    """An open loop that also keeps its own ledger: how often each request id finished."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.finished: Counter[int] = Counter()
        self.acked_writes: list[tuple[str, bytes]] = []

    def _done(self, pending, ok: bool) -> None:  # the engine's "finished for good" hook
        request = pending.request
        self.finished[request.id] += 1
        if ok and request.method == "POST":
            self.acked_writes.append((request.route.rsplit("/", 1)[1], request.body))


def app_handler(aside: CacheAside, db: DatabaseClient):
    """Reads go through the cache (cache-aside); writes go to the database, then invalidate."""

    async def load(ctx, key: str) -> bytes:
        return ((await db.get(ctx, key)) or "").encode()

    async def handler(request: Request, ctx) -> Response:
        if request.route == "/health":
            return Response(200)
        key = request.route.rsplit("/", 1)[1]
        if request.method == "POST":
            await db.put(ctx, key, request.body.decode())
            await aside.invalidate(ctx, key)
            return Response(201)
        return Response(200, body=await aside.get(ctx, key, lambda: load(ctx, key)))

    return handler


def web_stack(seed: int = 1, *, rate: float = 200.0, workload: Workload | None = None) -> tuple[Sim, LedgerLoop]:
    sim = Sim(seed=seed)
    sim.add(L7Balancer("lb", list(APPS), health_check=HealthCheck(interval_s=0.5, timeout_s=0.2), timeout_s=0.5))
    for name in APPS:
        handler = app_handler(CacheAside("cache", ttl_s=30), DatabaseClient("db", timeout_s=0.4))
        sim.add(AppServer(name, handler, cores=2, cpu_s=Exponential(0.002), calls=("cache", "db"), restart_after_s=0.5))
    sim.add(CacheServer("cache", capacity_items=300))
    sim.add(Database("db", read_latency_s=Exponential(0.002), write_latency_s=Exponential(0.004)))
    load = sim.load(LedgerLoop("lb", rate=rate, timeout_s=1.0,
                               workload=workload or Workload(keys=1_000, write_share=0.1)))
    return sim, load


def assert_conserved(report, load: LedgerLoop) -> None:
    client = report.clients[load.name]
    assert client.sent > 0
    assert client.ok + client.failed + client.in_flight == client.sent
    assert client.in_flight == 0, "a request was neither answered nor timed out after the drain"
    assert len(load.finished) == client.sent, "some request never finished"
    assert set(load.finished.values()) == {1}, "some request finished more than once"
    assert sum(client.statuses.values()) == client.ok + client.errors.get("5xx", 0)


def lossy(a: str, b: str, loss: float):
    def apply(sim: Sim) -> None:
        sim.link(a, b, latency_s=0.0005, loss=loss)
    return apply


def lossless(a: str, b: str):
    def apply(sim: Sim) -> None:
        sim.link(a, b, latency_s=0.0005)
    return apply


# (fault, what starts it at t=2 s, what ends it at t=4 s, evidence in the report that it bit)
FAULTS = [
    ("crash app1", lambda s: s.crash("app1"), lambda s: s.restart("app1"),
     lambda r: r.network.get("refused", 0) > 0),
    ("crash lb", lambda s: s.crash("lb"), lambda s: s.restart("lb"), lambda r: r.errors.get("refused", 0) > 0),
    ("crash cache", lambda s: s.crash("cache"), lambda s: s.restart("cache"),
     lambda r: r.components["cache"].refused > 0),
    ("crash db", lambda s: s.crash("db"), lambda s: s.restart("db"), lambda r: r.components["db"].refused > 0),
    ("partition lb-app1", lambda s: s.partition("lb", "app1"), lambda s: s.repair("lb", "app1"),
     lambda r: r.network.get("dropped_partition", 0) > 0),
    ("partition apps-db", lambda s: s.partition(list(APPS), "db"), lambda s: s.repair(list(APPS), "db"),
     lambda r: r.failed > 0),
    ("partition client-lb one way", lambda s: s.partition("client", "lb", one_way=True),
     lambda s: s.repair("client", "lb", one_way=True), lambda r: r.errors.get("timeout", 0) > 0),
    ("hold app2-cache", lambda s: s.hold("app2", "cache"), lambda s: s.release("app2", "cache"),
     lambda r: any("hold" in e for _, e in r.events)),
    ("hold client-lb", lambda s: s.hold("client", "lb"), lambda s: s.release("client", "lb"),
     lambda r: r.errors.get("timeout", 0) > 0),
    ("slow db x50", lambda s: s.slow("db", factor=50), lambda s: s.heal("db"), lambda r: r.failed > 0),
    ("slow link lb-app2 x1000", lambda s: s.slow("lb", "app2", factor=1000), lambda s: s.heal("lb", "app2"),
     lambda r: r.failed > 0),
    ("loss lb-app3 30%", lossy("lb", "app3", 0.3), lossless("lb", "app3"),
     lambda r: r.network.get("dropped_loss", 0) > 0),
    ("loss client-lb 10%", lossy("client", "lb", 0.1), lossless("client", "lb"),
     lambda r: r.errors.get("timeout", 0) > 0),
]


@pytest.mark.parametrize("start, stop, bit", [pytest.param(*f[1:], id=f[0]) for f in FAULTS])
def test_every_request_is_accounted_for_exactly_once(start, stop, bit):
    sim, load = web_stack()
    sim.at(2.0, start, sim)
    sim.at(4.0, stop, sim)
    report = sim.run(duration_s=6)
    assert not [e for _, e in report.events if "failed" in e], report.events  # the fault itself worked
    assert bit(report), "the fault left no trace: the test would prove nothing"
    assert_conserved(report, load)


def test_every_request_is_accounted_for_with_all_faults_at_once():
    sim, load = web_stack(rate=300)
    for i, (_, start, stop, _) in enumerate(FAULTS):
        sim.at(1.0 + 0.3 * i, start, sim)
        sim.at(2.0 + 0.3 * i, stop, sim)
    report = sim.run(duration_s=8)
    assert report.ok > 0 and report.failed > 0
    assert_conserved(report, load)


def test_acknowledged_writes_survive_app_server_and_balancer_crashes():
    ids = itertools.count()
    writes = Workload(make=lambda rng: Request("POST", f"/item/w{next(ids)}", body=f"v{rng.random():.6f}".encode()))
    sim, load = web_stack(rate=150, workload=writes)
    sim.at(1.0, sim.crash, "app1", 0.5)
    sim.at(2.0, sim.crash, "lb", 0.3)
    sim.at(2.5, sim.crash, "app2", 0.5)
    sim.at(3.0, sim.crash, "app3", 0.5)
    sim.at(4.0, sim.crash, "lb", 0.3)
    report = sim.run(duration_s=6)
    assert_conserved(report, load)
    assert report.failed > 0, "the crashes should have cost some requests"
    assert len(load.acked_writes) > 400
    store = sim["db"].store
    for key, value in load.acked_writes:
        row = store.kv_get(key)
        assert row is not None and row[0] == value.decode(), f"acknowledged write {key} was lost"


def faulty_run(seed: int) -> str:
    sim, _ = web_stack(seed)
    sim.at(1.0, sim.crash, "app1", 1.0)
    sim.at(1.5, sim.partition, "app2", "db")
    sim.at(2.5, sim.repair, "app2", "db")
    sim.at(2.0, sim.hold, "lb", "app3")
    sim.at(2.4, sim.release, "lb", "app3")
    sim.at(3.0, sim.slow, "cache", None, 20)
    sim.at(3.5, sim.heal, "cache")
    sim.at(3.0, lossy("lb", "app2", 0.2), sim)
    sim.at(3.5, sim.crash, "cache", 0.5)
    return sim.run(duration_s=5).to_json()


def test_same_seed_and_faults_give_the_same_report():
    first = faulty_run(7)
    assert faulty_run(7) == first
    assert faulty_run(8) != first
