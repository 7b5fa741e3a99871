"""Connection pools: ten app servers, a pool each, one database that accepts 100 connections.

Ten app servers each serve 60 reads a second; every read holds a database
connection for 100 ms. Each server's ``DatabaseClient`` has a
``ConnectionPool``: connections are opened when needed (up to the pool size)
and kept. The database accepts ``max_connections=100``.

What to look for: pools of 20 can open 200 connections; the database turns
away the ones past 100 ("too many connections") and those requests fail.
Pools of 10 never open more than 100: no errors, but at busy moments a
request waits for a connection, and that wait shows in p99. Pools of 40
against a database that accepts 1,000 never wait, and show how many
connections the load really wants.

    python examples/connection_pool.py
"""
from __future__ import annotations

from collections import Counter

from playground import OpenLoop, RequestError, Response, Sim
from components import AppServer, ConnectionPool, Database, DatabaseClient


def run(pool_size: int, max_connections: int) -> None:
    pool = ConnectionPool(size=pool_size, wait_timeout_s=0.5)
    db = DatabaseClient("db", pool=pool)
    errors: Counter[str] = Counter()

    async def profile(request, ctx):
        try:
            await db.get(ctx, "profile:42")
        except RequestError as exc:
            errors[exc.kind] += 1
            return Response(503, body=str(exc).encode())
        return "ok"

    sim = Sim(seed=1)
    for i in range(10):
        sim.add(AppServer(f"app{i}", profile, cores=4, workers=200, calls=db.hosts))
        sim.load(OpenLoop(f"app{i}", client=f"users{i}", rate=60, timeout_s=2.0))
    sim.add(Database("db", read_latency_s=0.100, io_capacity=200, max_connections=max_connections))
    report = sim.run(5)
    stats, database = pool.stats(), report.components["db"].detail
    print(f"10 servers x pool {pool_size:>2}, max_connections {max_connections:>4}: {report.ok} ok, "
          f"errors {dict(errors) or 0}; peak connections {database['peak_connections']}, "
          f"refused {database['refused_connections']}; {stats.waits} waits for a connection "
          f"(p99 {stats.wait.p99_s * 1000:.0f} ms); request p50 {report.p50_s * 1000:.0f} ms, "
          f"p99 {report.p99_s * 1000:.0f} ms")


run(20, 100)
run(10, 100)
run(40, 1000)
