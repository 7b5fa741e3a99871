"""Sharding: a router over several primaries, a hot shard under Zipf keys, and what a resharding moves."""
from __future__ import annotations

import re
from contextlib import asynccontextmanager

import pytest
import trio

import components
from components import (AppServer, ConsistentHashSharding, Database, DatabaseClient, HashSharding,
                        RangeSharding, ShardRouter, moved_share)
from playground import Client, ConfigError, OpenLoop, Sim, Workload

KEYS = [f"user:{i}" for i in range(20_000)]
SHARDS = 8


@asynccontextmanager
async def running(sim: Sim):
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        yield
        sim.stop()


def sharded_sim(zipf_exponent: float, rate: float, policy=None) -> tuple[Sim, DatabaseClient]:
    names = [f"db{i}" for i in range(SHARDS)]
    db = DatabaseClient(shards=ShardRouter([DatabaseClient(n) for n in names], policy=policy))

    async def item(request, ctx):
        key = "item:" + request.route.rsplit("/", 1)[1]
        await db.get(ctx, key)
        return "ok"

    sim = Sim(seed=1)
    sim.add(AppServer("app", item, cores=8, workers=2000, queue_limit=2000, calls=db.hosts))
    for name in names:
        sim.add(Database(name, read_latency_s=0.002, io_capacity=1))  # 500 reads/s each
    sim.load(OpenLoop("app", rate=rate, workload=Workload(keys=10_000, zipf_exponent=zipf_exponent),
                      timeout_s=2.0))
    return sim, db


def shard_utilisations(report) -> list[float]:
    return sorted(report.components[f"db{i}"].utilisation for i in range(SHARDS))


def test_shard_hot_key_saturates_one_shard_under_zipf_while_the_others_idle():
    # 225 reads/s per shard on average: 45% of their capacity
    sim, db = sharded_sim(zipf_exponent=1.1, rate=1800, policy=ConsistentHashSharding(100))
    report = sim.run(3)
    *others, hot = shard_utilisations(report)
    # the hottest key alone is 15% of all reads (Zipf s=1.1 over 10,000 keys); with its neighbours on
    # the ring its shard is asked for a third of them, 600/s against 500/s of capacity: it saturates
    assert hot > 0.97
    assert max(others) < 0.55 and hot > 2.5 * sorted(others)[len(others) // 2]
    routed = db.shards.routed
    assert max(routed.values()) > 1.8 * min(routed.values())
    hot_name = max(routed, key=routed.get)
    assert report.components[hot_name].detail["io_queue_peak"] > 50  # reads queue for its IO slot
    assert hot_name == db.shards.shard_of("item:0")  # the shard that owns the most popular key


def test_shard_uniform_keys_spread_evenly():
    sim, db = sharded_sim(zipf_exponent=0.0, rate=1800)
    low, *_, hot = shard_utilisations(sim.run(3))
    assert 0.38 < low and hot < 0.52 and hot / low < 1.2


def test_shard_resharding_moves_one_in_n_plus_one_keys_with_consistent_hashing_and_most_with_modulo():
    for n in (4, 8):
        before = [f"db{i}" for i in range(n)]
        after = before + [f"db{n}"]
        ring = moved_share(KEYS, ConsistentHashSharding(100), before, ConsistentHashSharding(100), after)
        modulo = moved_share(KEYS, HashSharding(), before, HashSharding(), after)
        assert ring == pytest.approx(1 / (n + 1), abs=0.04)  # only the new shard's slice moves
        assert modulo == pytest.approx(n / (n + 1), abs=0.03)  # almost everything moves
    # a ring with few virtual nodes moves about as much, but spreads keys unevenly
    few = ConsistentHashSharding(vnodes=1)
    shares = [sum(1 for k in KEYS if few.shard_for(k, ["a", "b", "c", "d"]) == s) for s in "abcd"]
    many = ConsistentHashSharding(vnodes=200)
    even = [sum(1 for k in KEYS if many.shard_for(k, ["a", "b", "c", "d"]) == s) for s in "abcd"]
    assert max(shares) / min(shares) > 2 and max(even) / min(even) < 1.3


def test_range_sharding_keeps_neighbouring_keys_together():
    policy = RangeSharding(["g", "p"])
    assert [policy.shard_for(k, ["a-f", "g-o", "p-z"]) for k in ("apple", "grape", "zebra", "g", "p")] == \
        ["a-f", "g-o", "p-z", "g-o", "p-z"]


async def test_shard_router_routes_reads_writes_and_sql_by_key(virtual_clock):
    sim = Sim(seed=1)
    for name in ("db0", "db1"):
        sim.add(Database(name, schema="CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT)"))
        sim.add(Database(f"{name}-r1", replica_of=name))
    user = sim.add(Client("user"))
    router = ShardRouter([DatabaseClient("db0", replicas=["db0-r1"]), DatabaseClient("db1", replicas=["db1-r1"])],
                         policy=RangeSharding(["user:5"]))
    db = DatabaseClient(shards=router)
    assert db.hosts == ("db0", "db0-r1", "db1", "db1-r1")
    async with running(sim):
        for i in range(10):
            await db.put(user, f"user:{i}", f"name {i}")
            await db.execute(user, "INSERT INTO users VALUES (?, ?)", [f"user:{i}", f"n{i}"], key=f"user:{i}")
        await trio.sleep(1.0)
        assert await db.get(user, "user:7") == "name 7"
        assert await db.query(user, "SELECT name FROM users WHERE id = ?", ["user:2"], key="user:2") == [("n2",)]
        with pytest.raises(TypeError, match=r"^a sharded DatabaseClient needs key= to route a statement$"):
            await db.query(user, "SELECT 1")
    assert sim["db0"].store.kv_rows() == 5 and sim["db1"].store.kv_rows() == 5  # user:0-4 | user:5-9
    assert sim["db1"].direct("SELECT count(*) FROM users").rows == [(5,)]


def m(text: str) -> str:
    return "^" + re.escape(text) + "$"


@pytest.mark.parametrize("make, message", [
    (lambda: RangeSharding([]), "bounds must be a non-empty list of key strings, got []"),
    (lambda: RangeSharding(["m", "c"]), "bounds must be distinct and sorted, got ['m', 'c']"),
    (lambda: ConsistentHashSharding(0), "vnodes must be an integer between 1 and 10000, got 0"),
    (lambda: ShardRouter([]), "shards must be a non-empty list of DatabaseClients (one per shard), got []"),
    (lambda: ShardRouter([DatabaseClient("a"), DatabaseClient("a")]), "shards must have distinct primaries, "
                                                                      "got ['a', 'a']"),
    (lambda: ShardRouter([DatabaseClient("a"), DatabaseClient("b")], policy=RangeSharding(["m", "t"])),
     "RangeSharding with 2 bounds needs 3 shards, got 2"),
    (lambda: ShardRouter([DatabaseClient("a")], policy="modulo"),
     "policy must be a sharding policy (HashSharding(), RangeSharding(bounds), ConsistentHashSharding(vnodes)) "
     "or an object with shard_for(), got 'modulo'"),
    (lambda: DatabaseClient("db", shards=ShardRouter([DatabaseClient("a")])),
     "a sharded DatabaseClient takes its databases from shards: give no primary, endpoints, dns or replicas"),
])
def test_shard_bad_configs_are_refused(make, message):
    with pytest.raises(ConfigError, match=m(message)):
        make()


def test_the_sharding_names_are_exported():
    for name in ("ShardRouter", "HashSharding", "RangeSharding", "ConsistentHashSharding", "moved_share"):
        assert getattr(components, name).__module__ == "components.database_sharding"
