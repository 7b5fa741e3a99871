"""Connection pools: app servers x pool size against max_connections, and the wait for a busy pool."""
from __future__ import annotations

import re
from collections import Counter

import pytest

import components
from components import AppServer, ConnectionPool, Database, DatabaseClient, PoolTimeout, TooManyConnections
from playground import ConfigError, OpenLoop, RequestError, Response, Sim


def fleet(pool_size: int, *, servers: int = 10, rate: float = 600, max_connections: int = 100,
          wait_timeout_s: float = 0.5):
    pool = ConnectionPool(size=pool_size, wait_timeout_s=wait_timeout_s)
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
    apps = [f"app{i}" for i in range(servers)]
    for name in apps:
        sim.add(AppServer(name, profile, cores=4, workers=200, queue_limit=200, calls=db.hosts))
        sim.load(OpenLoop(name, client=f"users-{name}", rate=rate / servers, timeout_s=2.0))
    sim.add(Database("db", read_latency_s=0.100, io_capacity=200, max_connections=max_connections))
    return sim, pool, errors


def test_connection_pool_of_20_on_10_servers_overflows_max_connections_100():
    sim, pool, errors = fleet(pool_size=20)
    report = sim.run(3)
    database = report.components["db"].detail
    assert database["refused_connections"] > 0 and database["peak_connections"] == 100
    assert errors["too_many_connections"] == pool.stats().refused > 0
    assert report.failed == sum(errors.values())
    assert set(errors) == {"too_many_connections"}


def test_connection_pool_of_10_on_10_servers_fits_and_waiting_shows_in_latency():
    sim, pool, errors = fleet(pool_size=10)
    report = sim.run(3)
    database = report.components["db"].detail
    assert database["refused_connections"] == 0 and database["peak_connections"] <= 100
    assert report.failed == 0 and not errors
    stats = pool.stats()
    assert stats.waits > 0 and stats.timeouts == 0 and stats.peak_open <= 100
    # a request that waits for a connection pays for it: compare with pools big enough never to wait
    roomy_sim, roomy, _ = fleet(pool_size=40, max_connections=1000)
    roomy_report = roomy_sim.run(3)
    assert roomy.stats().waits == 0
    assert report.latency.p99_s > roomy_report.latency.p99_s + 0.020  # ~134 ms against ~103 ms
    assert stats.wait.p99_s > 0.030


def test_connection_pool_wait_timeout_fails_requests_with_a_pool_timeout():
    sim, pool, errors = fleet(pool_size=2, wait_timeout_s=0.05)
    report = sim.run(3)
    assert errors["pool_timeout"] == pool.stats().timeouts > 0
    assert report.components["db"].detail["peak_connections"] <= 20


def test_connection_pool_connections_are_opened_once_and_reused():
    sim, pool, errors = fleet(pool_size=20, servers=2, rate=40, max_connections=100)
    report = sim.run(3)
    stats = pool.stats()
    assert report.failed == 0 and report.ok > 100
    assert stats.connects == stats.opened and report.ok > 5 * stats.connects  # opened once, then reused


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 0}, "size must be an integer between 1 and 100000, got 0"),
    ({"wait_timeout_s": float("inf")}, "wait_timeout_s must be finite, got inf"),
    ({"connect_timeout_s": -1}, "connect_timeout_s must be > 0, got -1"),
])
def test_connection_pool_bad_configs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        ConnectionPool(**kwargs)


def test_the_pool_names_are_exported():
    assert components.ConnectionPool is ConnectionPool
    assert issubclass(PoolTimeout, RequestError) and issubclass(TooManyConnections, RequestError)
