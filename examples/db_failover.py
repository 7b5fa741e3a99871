"""Database failover: the primary dies, a monitor promotes a replica, and the lag window is counted.

An app server takes orders (200 a second, open loop) and writes each one to
the database primary ``db``. Two replicas follow it, 0.5 s and 0.8 s behind.
A ``FailoverMonitor`` checks the primary every second; after 3 missed checks
and a 2 s grace period it promotes the most advanced replica, points the
other at it and fences the old primary. The app's ``DatabaseClient`` has the
three hosts as endpoints and writes to whichever accepts writes. ``db``
crashes at t=5 s and comes back at t=15 s as a replica.

What to look for: with asynchronous replication the orders acknowledged in the
last half second before the crash are gone - the monitor's count equals the
rows missing from the new primary. With synchronous replication none are lost,
and every write waits for a replica (its 0.5 s lag) before it is acknowledged.

    python examples/db_failover.py
"""
from __future__ import annotations

from playground import OpenLoop, Sim
from components import AppServer, Database, DatabaseClient, FailoverMonitor


def run(replication: str) -> None:
    acknowledged: list[str] = []  # what the users were told: "order placed"
    db = DatabaseClient(endpoints=["db", "db-r1", "db-r2"], timeout_s=2.0)

    async def place_order(request, ctx):
        key = f"order:{request.id}"
        await db.put(ctx, key, "1 book")
        acknowledged.append(key)
        return "placed"

    sim = Sim(seed=1)
    sim.add(AppServer("app", place_order, calls=db.hosts, cores=4, workers=400, queue_limit=400))
    sim.add(Database("db", replication=replication, max_connections=400))
    sim.add(Database("db-r1", replica_of="db", replication_lag_s=0.5, max_connections=400))
    sim.add(Database("db-r2", replica_of="db", replication_lag_s=0.8, max_connections=400))
    sim.add(FailoverMonitor("dbmon", primary="db", replicas=["db-r1", "db-r2"], check_interval_s=1,
                            failures_to_promote=3, promote_delay_s=2))
    sim.load(OpenLoop("app", rate=200, timeout_s=5.0))
    sim.at(5.0003, sim.crash, "db")
    sim.at(15, sim.restart, "db")
    report = sim.run(20)
    monitor = report.components["dbmon"].detail
    new = sim[monitor["primary"]]
    rows = {key for (key,) in new.direct("SELECT key FROM kv").rows}
    missing = sum(1 for key in acknowledged if key not in rows)
    print(f"\n-- replication={replication}: {report.ok} orders placed, {report.failed} failed "
          f"({report.error_rate:.1%}), order p50 {report.p50_s * 1000:.0f} ms, p99 {report.p99_s * 1000:.0f} ms")
    print("   timeline: " + "; ".join(f"t={t:.2f}s {what}" for t, what in report.events))
    print(f"   writes failed for {monitor['last_downtime_s']:.1f} s (3 missed checks + 2 s grace); "
          f"new primary {monitor['primary']}")
    print(f"   {replication}: lost acknowledged writes {monitor['lost_acknowledged_writes']} "
          f"(missing from {monitor['primary']}: {missing}); never acknowledged {monitor['lost_unacknowledged_writes']}; "
          f"old primary discarded {sim['db'].discarded_on_rejoin} when it rejoined as a replica")


run("async")
run("sync")
print("\nAsynchronous replication loses the acknowledged writes of the lag window; synchronous loses none "
      "and pays the replica's lag on every write.")
