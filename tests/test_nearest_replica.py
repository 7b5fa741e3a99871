"""Region-aware reads: the nearest healthy replica first, the others next, the primary last."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

from components import Database, DatabaseClient
from playground import Client, Sim


@asynccontextmanager
async def running(sim: Sim):
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        yield
        sim.stop()


def two_regions() -> Sim:
    sim = Sim(seed=1)
    sim.add(Database("db", region="us", read_latency_s=0.002))
    sim.add(Database("db-us", replica_of="db", region="us"))
    sim.add(Database("db-eu", replica_of="db", region="eu"))
    sim.add(Database("db-ap", replica_of="db", region="ap"))
    sim.net.region_link("eu", "us", 0.040)
    sim.net.region_link("eu", "ap", 0.110)
    sim.net.region_link("us", "ap", 0.080)
    sim.add(Client("app-eu", region="eu"))
    sim.add(Client("app-us", region="us"))
    return sim


async def timed_gets(sim: Sim, db: DatabaseClient, caller: str, n: int) -> float:
    """Mean seconds per read over ``n`` reads."""
    start = sim.now
    for _ in range(n):
        assert await db.get(sim[caller], "greeting") == "hello"
    return (sim.now - start) / n


async def test_nearest_replica_serves_each_region_and_a_crash_moves_reads_to_the_next_nearest(virtual_clock):
    sim = two_regions()
    # the list order puts the far replicas first: the old client read from db-ap for everyone
    db = DatabaseClient("db", replicas=["db-ap", "db-us", "db-eu"])
    async with running(sim):
        await db.put(sim["app-us"], "greeting", "hello")
        await trio.sleep(1.0)
        eu_local = await timed_gets(sim, db, "app-eu", 50)
        us_local = await timed_gets(sim, db, "app-us", 50)
        assert db.stats().reads_by_host == {"db-eu": 50, "db-us": 50}
        sim.crash("db-eu")
        eu_failover = await timed_gets(sim, db, "app-eu", 50)
        assert db.stats().reads_by_host == {"db-eu": 50, "db-us": 100}  # the next nearest: 40 ms, not 110
        assert db.stats().fallbacks == 1  # one refused read, then db-eu is skipped
        sim.restart("db-eu")
        await trio.sleep(6.0)  # avoid_failed_s (5 s) runs out: the local replica is tried again
        eu_back = await timed_gets(sim, db, "app-eu", 10)
    assert db.stats().reads_by_host["db-eu"] == 60
    # a local read: a 2 ms read plus two 0.5 ms hops; across the Atlantic it costs two 40 ms hops
    assert 0.0025 <= eu_local <= 0.0035 and 0.0025 <= us_local <= 0.0035
    assert 0.080 <= eu_failover <= 0.085
    assert eu_back == pytest.approx(eu_local)


async def test_nearest_replica_falls_back_to_the_primary_when_every_replica_is_down(virtual_clock):
    sim = two_regions()
    db = DatabaseClient("db", replicas=["db-us", "db-eu", "db-ap"])
    async with running(sim):
        await db.put(sim["app-us"], "greeting", "hello")
        await trio.sleep(1.0)
        for name in ("db-us", "db-eu", "db-ap"):
            sim.crash(name)
        assert await db.get(sim["app-eu"], "greeting") == "hello"
        assert await db.get(sim["app-eu"], "greeting") == "hello"
    stats = db.stats()
    assert stats.reads_by_host == {"(primary)": 2}
    assert stats.fallbacks == 3  # each replica refused once, then all were skipped


async def test_nearest_replica_with_read_your_writes_skips_a_lagging_local_replica(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db", region="us"))
    sim.add(Database("db-eu", replica_of="db", region="eu", replication_lag_s=0.5))
    sim.net.region_link("eu", "us", 0.040)
    app = sim.add(Client("app-eu", region="eu"))
    careful = DatabaseClient("db", replicas=["db-eu"], read_your_writes=True)
    async with running(sim):
        await careful.put(app, "cart", "1 book")
        assert await careful.get(app, "cart") == "1 book"  # db-eu is behind: the primary answers
        await trio.sleep(1.0)
        assert await careful.get(app, "cart") == "1 book"  # db-eu caught up: it answers
    assert careful.stats().reads_by_host == {"(primary)": 1, "db-eu": 1}


async def test_equally_near_replicas_share_the_reads(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db", region="eu"))
    for name in ("r1", "r2"):
        sim.add(Database(name, replica_of="db", region="eu"))
    app = sim.add(Client("app", region="eu"))
    db = DatabaseClient("db", replicas=["r1", "r2"])
    async with running(sim):
        await db.put(app, "k", "v")
        await trio.sleep(1.0)
        for _ in range(10):
            await db.get(app, "k")
    assert db.stats().reads_by_host == {"r1": 5, "r2": 5}
