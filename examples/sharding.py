"""Sharding: eight database primaries behind a router, a hot shard under Zipf keys, and a resharding.

An app server reads items through a ``DatabaseClient`` whose ``ShardRouter``
spreads keys over eight primaries with a consistent-hash ring. Each shard has
one IO slot and 2 ms reads: 500 reads a second. Users ask for 1,800 items a
second - 225 per shard on average, under half of what each can do - first with
uniform keys, then with Zipf-popular keys (s=1.1 over 10,000 items).

What to look for: uniform keys load every shard about equally; Zipf keys put
the most popular item (15% of all reads) and its ring neighbours on one shard,
which saturates - its reads queue and time out - while the others idle.
Adding a ninth shard moves about 1/9 of the keys with the ring, and 8/9 with
``hash(key) % N``.

    python examples/sharding.py
"""
from __future__ import annotations

from playground import OpenLoop, Sim, Workload
from components import (AppServer, ConsistentHashSharding, Database, DatabaseClient, HashSharding, ShardRouter,
                        moved_share)

SHARDS = [f"db{i}" for i in range(8)]


def run(zipf_exponent: float) -> None:
    db = DatabaseClient(shards=ShardRouter([DatabaseClient(name) for name in SHARDS],
                                           policy=ConsistentHashSharding(vnodes=100)))

    async def item(request, ctx):
        await db.get(ctx, "item:" + request.route.rsplit("/", 1)[1])
        return "ok"

    sim = Sim(seed=1)
    sim.add(AppServer("app", item, cores=8, workers=2000, queue_limit=2000, calls=db.hosts))
    for name in SHARDS:
        sim.add(Database(name, read_latency_s=0.002, io_capacity=1))
    sim.load(OpenLoop("app", rate=1800, timeout_s=2.0,
                      workload=Workload(keys=10_000, zipf_exponent=zipf_exponent)))
    report = sim.run(5)
    load = {name: report.components[name].utilisation for name in SHARDS}
    hot = max(load, key=load.get)
    others = sorted(v for name, v in load.items() if name != hot)
    print(f"\n-- keys {'uniform' if zipf_exponent == 0 else f'Zipf s={zipf_exponent}'}: {report.ok} ok, "
          f"{report.failed} failed, p99 {report.p99_s * 1000:.0f} ms")
    print("   shard utilisation: " + ", ".join(f"{name} {load[name]:.0%}" for name in SHARDS))
    owner = " (it owns item:0, the most popular)" if db.shards.shard_of("item:0") == hot and zipf_exponent else ""
    print(f"   hottest shard {hot} at {load[hot]:.0%}{owner}; "
          f"the others {others[0]:.0%}-{others[-1]:.0%}, median {others[len(others) // 2]:.0%}")


run(0.0)
run(1.1)

keys = [f"user:{i}" for i in range(50_000)]
nine = SHARDS + ["db8"]
ring = moved_share(keys, ConsistentHashSharding(100), SHARDS, ConsistentHashSharding(100), nine)
modulo = moved_share(keys, HashSharding(), SHARDS, HashSharding(), nine)
print(f"\nResharding 8 -> 9 shards moves {ring:.1%} of 50,000 keys with a consistent-hash ring "
      f"(1/9 = {1 / 9:.1%}) and {modulo:.1%} with hash % N (8/9 = {8 / 9:.1%}).")
