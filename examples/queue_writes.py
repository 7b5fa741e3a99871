"""Writes through a queue: users keep getting fast answers while a slow database catches up.

An order service takes 15 orders/s. Each order is one INSERT on a database
that does 20 ms a write on one IO channel - until it is 10x slower from t=10 s
to t=40 s (a vacuum, a noisy neighbour). Written straight from the request,
every user waits for the database and many time out. Written through a
``MessageQueue`` consumed by a ``WorkerPool``, the user gets "202 accepted" in
milliseconds all along; the backlog shows as the age of the oldest message,
and once the database heals the workers catch up and write every order once.

    python examples/queue_writes.py
"""
from __future__ import annotations

from components import AppServer, Database, DatabaseClient, MessageQueue, QueueClient, WorkerPool
from playground import OpenLoop, Sim

SCHEMA = "CREATE TABLE orders (id INTEGER PRIMARY KEY, ref TEXT UNIQUE)"


def build(through_queue: bool, seed: int = 5) -> Sim:
    sim = Sim(seed=seed)
    sim.add(Database("db", schema=SCHEMA, write_latency_s=0.02, io_capacity=1, queue_limit=1000))
    db = DatabaseClient("db", timeout_s=30.0)
    jobs = QueueClient("jobs")

    async def direct(request, ctx):
        await db.execute(ctx, "INSERT INTO orders (ref) VALUES (?)", [str(request.id)])
        return "stored"

    async def accept(request, ctx):
        await jobs.send(ctx, b"order", key=str(request.id))
        return "accepted", 202

    async def store(message, ctx):  # keyed by the order: a redelivery changes nothing
        await db.execute(ctx, "INSERT OR IGNORE INTO orders (ref) VALUES (?)", [message.key])

    if through_queue:
        sim.add(MessageQueue("jobs", visibility_timeout_s=60))
        sim.add(WorkerPool("workers", queue="jobs", handler=store, concurrency=4, calls=("db",)))
        sim.add(AppServer("app", accept, calls=("jobs",)))
    else:
        sim.add(AppServer("app", direct, calls=("db",)))
    sim.load(OpenLoop("app", rate=15, timeout_s=2.0))
    sim.at(10, sim.slow, "db", None, 10.0)
    sim.at(40, sim.heal, "db")
    return sim


def main() -> dict:
    direct_sim, queued_sim = build(False), build(True)
    direct, queued = direct_sim.run(70), queued_sim.run(70)
    jobs = queued.component("jobs").detail
    rows = queued_sim["db"].direct("SELECT count(*) FROM orders").rows[0][0]
    print("15 orders/s; the database is 10x slower from t=10 s to t=40 s")
    print(f"Straight to the database: p99 {direct.p99_s * 1000:,.0f} ms, {direct.failed:,} of {direct.sent:,} "
          f"orders failed")
    print(f"Through the queue: p99 {queued.p99_s * 1000:,.1f} ms, {queued.failed:,} of {queued.sent:,} orders failed")
    print(f"Queue backlog: oldest message {jobs['peak_age_s']:.1f} s old at worst, peak depth {jobs['peak_depth']:,}")
    print("Age of the oldest message (s):", ", ".join(f"t={t:g} {age:.1f}" for t, _, _, age in
                                                       queued_sim["jobs"].series if t % 10 == 9))
    print(f"Caught up: depth {jobs['depth']}, {rows:,} orders written for {queued.ok:,} accepted")
    return {"direct": direct, "queued": queued, "jobs": jobs, "rows": rows}


if __name__ == "__main__":
    main()
