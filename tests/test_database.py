"""The database: real rows behind latency, saturation, replicas that lag, durability across crashes."""
from __future__ import annotations

import itertools
from contextlib import asynccontextmanager

import pytest
import trio

import components
from components import (AppServer, Database, DatabaseClient, DatabaseError, DatabaseUnavailable, QueryError)
from components.database_store import LogEntry, SqlStore, StatementError, classify, dumps, loads
from playground import (Client, ConfigError, Exponential, LogNormal, OpenLoop, Refused, Request, RequestError,
                        Response, Sim, WiringError, Workload)

ORDERS = "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)"


@asynccontextmanager
async def running(sim: Sim):
    """Run ``sim`` open-ended while the test body plays a user; stop it at the end."""
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        yield
        sim.stop()


def query(sql: str, params=()) -> Request:
    return Request("POST", "/query", body=dumps({"sql": sql, "params": list(params)}))


# -- the storage, without the simulation ----------------------------------------------------

@pytest.mark.parametrize("sql, kind", [
    ("SELECT * FROM orders", "read"),
    ("  -- a comment\n select 1", "read"),
    ("WITH recent AS (SELECT id FROM orders) SELECT count(*) FROM recent", "read"),
    ("WITH old AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN old", "write"),
    ("SELECT 'INSERT' AS word", "read"),
    ("INSERT INTO orders (item) VALUES ('x')", "write"),
    ("update orders set item = 'y'", "write"),
    ("CREATE TABLE t (x)", "write"),
    ("PRAGMA table_info(orders)", "read"),
    ("PRAGMA user_version = 3", "write"),
])
def test_statements_are_classified_as_reads_or_writes(sql, kind):
    assert classify(sql) == kind


@pytest.mark.parametrize("sql, message", [
    ("", "empty SQL statement"),
    ("BEGIN", "BEGIN is not supported: each query runs in its own transaction"),
    ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH is not allowed: the database does not open other files"),
])
def test_statements_the_model_refuses(sql, message):
    with pytest.raises(StatementError, match=f"^{message}$"):
        classify(sql)


def test_a_replica_store_replays_the_primary_log():
    primary, replica = SqlStore(), SqlStore()
    primary.keep_log = True
    primary.script(ORDERS)
    primary.write("INSERT INTO orders (item) VALUES (?)", ["book"], now=1.0)
    primary.kv_put("greeting", "hello", now=2.0)
    for entry in primary.log_after(0, limit=10):
        replica.apply(LogEntry.from_json(loads(dumps(entry.to_json()))))
    assert replica.version == primary.version == 3
    assert replica.read("SELECT item FROM orders").rows == [("book",)]
    assert replica.kv_get("greeting") == ("hello", 3)
    primary.trim_log(2)
    assert [e.version for e in primary.log] == [3]


def test_a_read_cannot_write_even_if_it_looks_like_one():
    store = SqlStore()
    store.script(ORDERS)
    with pytest.raises(Exception, match="readonly"):
        store.read("INSERT INTO orders (item) VALUES ('sneaky')")
    assert store.read("SELECT count(*) FROM orders").rows == [(0,)]


def test_a_file_database_keeps_its_rows_on_disk(tmp_path):
    path = tmp_path / "shop.db"
    first = Database("db", path=path, schema=ORDERS)
    first.direct("INSERT INTO orders (item) VALUES (?)", ["lamp"])
    first.store.close()
    again = Database("db", path=path)
    assert again.direct("SELECT item FROM orders").rows == [("lamp",)]
    again.store.close()


def test_blobs_travel_as_bytes():
    assert loads(dumps({"rows": [[b"\x00\xff", "text"]]})) == {"rows": [[b"\x00\xff", "text"]]}


# -- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"read_latency_s": -0.001}, "read_latency_s must be >= 0 seconds, got -0.001"),
    ({"write_latency_s": "fast"}, "write_latency_s must be a number of seconds or a Distribution, got 'fast'"),
    ({"io_capacity": 0}, "io_capacity must be an integer >= 1, got 0"),
    ({"max_connections": 0}, "max_connections must be an integer >= 1, got 0"),
    ({"queue_limit": -1}, "queue_limit must be an integer >= 0 or None, got -1"),
    ({"replica_of": "db"}, "replica_of must name another host, got 'db' \\(this database\\)"),
    ({"replication_lag_s": 0.5}, "replication_lag_s is for a replica: give replica_of too, got 0.5"),
    ({"schema": "CREATE TABLE nope ("}, "schema failed: incomplete input \\(in 'CREATE TABLE nope \\('\\)"),
])
def test_bad_configs_are_refused_with_the_value_and_the_rule(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        Database("db", **kwargs)


def test_replica_settings_are_checked():
    with pytest.raises(ConfigError, match=r"^replication_lag_s must be >= 0 seconds, got -1$"):
        Database("r1", replica_of="db", replication_lag_s=-1)
    with pytest.raises(ConfigError, match=r"^a replica takes its schema from its primary: give schema to 'db'$"):
        Database("r1", replica_of="db", schema=ORDERS)
    assert Database("r1", replica_of="db", replication_lag_s=LogNormal(0.2)).replication_lag.mean_s > 0.2


def test_a_replica_of_an_unknown_host_fails_before_the_run():
    sim = Sim(seed=1)
    sim.add(Database("db-replica-1", replica_of="db"))
    sim.load(OpenLoop("db-replica-1", rate=10))
    with pytest.raises(WiringError, match=r"^'db-replica-1' is a replica of unknown host 'db'$"):
        sim.validate()
    with pytest.raises(WiringError, match=r"^'db-replica-1' is a replica of unknown host 'db'$"):
        sim.run(1)
    assert sim.runs == 0


def test_a_replica_of_something_else_or_of_a_replica_fails_before_the_run():
    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.add(Database("r1", replica_of="app"))
    with pytest.raises(WiringError, match=r"^'r1' is a replica of 'app', which is not a Database$"):
        sim.validate()
    sim = Sim(seed=1)
    sim.add(Database("db"))
    sim.add(Database("r1", replica_of="db"))
    sim.add(Database("r2", replica_of="r1"))
    with pytest.raises(WiringError, match=r"^'r2' is a replica of 'r1', which is itself a replica "
                                          r"\(chained replication is not modelled\)$"):
        sim.validate()


def test_the_components_package_exports_the_database_names():
    for name in ("Database", "DatabaseClient", "DatabaseError", "QueryError", "DatabaseUnavailable"):
        assert getattr(components, name).__module__.startswith("components.database")
    assert issubclass(QueryError, DatabaseError) and issubclass(DatabaseUnavailable, RequestError)


# -- scenarios under virtual time ---------------------------------------------------------------

async def test_orders_placed_through_an_app_server_are_rows_you_can_select(virtual_clock):
    db = DatabaseClient("db")
    ids = itertools.count(1)

    async def shop(request, ctx):
        if request.method == "POST":
            n = int(request.route.rsplit("/", 1)[1])
            await db.execute(ctx, "INSERT INTO orders (id, item) VALUES (?, ?)", [n, f"book-{n}"])
            return Response(201)
        [(count,)] = await db.query(ctx, "SELECT count(*) FROM orders")
        return {"orders": count}

    def shopper(rng):
        return Request("GET", "/orders") if rng.random() < 0.3 else Request("POST", f"/orders/{next(ids)}")

    sim = Sim(seed=1)
    sim.add(AppServer("app", shop, calls=db.hosts))
    database = sim.add(Database("db", schema=ORDERS, read_latency_s=LogNormal(0.002), write_latency_s=0.005))
    sim.load(OpenLoop("app", rate=50, workload=Workload(make=shopper)))
    report = await sim.run_async(4)

    assert report.errors == {}
    placed = report.clients["openloop->app"].statuses[201]
    assert placed > 100
    assert database.direct("SELECT count(*) FROM orders").rows == [(placed,)]
    assert database.direct("SELECT item FROM orders WHERE id = 1").rows == [("book-1",)]
    detail = report.component("db").detail
    assert detail["writes"] == placed and detail["reads"] == report.ok - placed
    assert detail["errors"] == 0 and detail["tables"] == 2


async def test_the_key_value_surface_keeps_short_examples_short(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db"))
    user = sim.add(Client("user"))
    db = DatabaseClient("db")
    async with running(sim):
        assert await db.get(user, "user:1") is None
        first = await db.put(user, "user:1", "ada")
        second = await db.put(user, "user:1", "grace")
        assert await db.get(user, "user:1") == "grace"
        assert second == first + 1
        assert await db.query(user, "SELECT key, value, version FROM kv") == [("user:1", "grace", second)]
        assert await db.delete(user, "user:1") is True
        assert await db.delete(user, "user:1") is False
        assert await db.get(user, "a key/with spaces") is None


async def test_bad_sql_is_a_400_with_the_message_and_the_run_goes_on(virtual_clock):
    def mix(rng):
        return query("SELEKT 1") if rng.random() < 0.5 else query("SELECT 1")

    sim = Sim(seed=1)
    sim.add(Database("db"))
    user = sim.add(Client("user"))
    sim.load(OpenLoop("db", rate=100, workload=Workload(make=mix)))
    async with running(sim):
        await trio.sleep(3)
        with pytest.raises(QueryError, match=r'''^'db' answered 400: near "SELEKT": syntax error$'''):
            await DatabaseClient("db").query(user, "SELEKT 1")
        assert await DatabaseClient("db").query(user, "SELECT 1 + 1") == [(2,)]
    stats = sim["db"].stats()
    statuses = sim.loads[0].metrics.statuses
    assert statuses[400] > 100 and statuses[200] > 100
    assert stats.detail["errors"] == statuses[400] + 1
    assert stats.handler_errors == 0 and stats.up


async def test_a_replica_read_right_after_a_write_is_stale_then_converges(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db", write_latency_s=0.005, read_latency_s=0.001))
    sim.add(Database("db-replica-1", replica_of="db", replication_lag_s=0.5))
    user = sim.add(Client("user"))
    db = DatabaseClient("db", replicas=["db-replica-1"])
    careful = DatabaseClient("db", replicas=["db-replica-1"], read_your_writes=True)
    async with running(sim):
        await db.put(user, "greeting", "hello")
        await trio.sleep(1.0)
        assert await db.get(user, "greeting") == "hello"

        await db.put(user, "greeting", "bonjour")
        assert await db.get(user, "greeting") == "hello"  # the replica has not applied it yet
        await careful.put(user, "greeting", "hola")
        assert await careful.get(user, "greeting") == "hola"  # stale replica skipped for the primary
        assert careful.fallbacks == 1

        await trio.sleep(0.6)
        assert await db.get(user, "greeting") == "hola"
        assert await careful.get(user, "greeting") == "hola"
        assert careful.fallbacks == 1
    replica = sim["db-replica-1"].stats().detail
    assert replica["stale_reads"] == 1
    assert replica["replication_lag_s"] == 0.5
    assert 0.5 <= replica["lag_mean_s"] < 0.52
    assert replica["version"] == sim["db"].store.version == 3


async def test_a_replica_refuses_writes(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db"))
    sim.add(Database("r1", replica_of="db"))
    user = sim.add(Client("user"))
    async with running(sim):
        with pytest.raises(QueryError, match=r"^'r1' answered 403: 'r1' is a read-only replica: send writes to 'db'$"):
            await DatabaseClient("r1").put(user, "k", "v")
    assert sim["r1"].stats().detail["refused_writes"] == 1


async def test_writes_acknowledged_before_an_app_server_crash_are_all_there_after(virtual_clock):
    db = DatabaseClient("db")

    async def notes(request, ctx):
        n = request.route.rsplit("/", 1)[1]
        await db.put(ctx, f"note:{n}", request.body.decode())
        ctx.session[n] = True  # the app server's own memory: lost when it crashes
        return Response(201)

    sim = Sim(seed=1)
    app = sim.add(AppServer("app", notes, calls=db.hosts, restart_after_s=None))
    database = sim.add(Database("db"))
    user = sim.add(Client("user"))
    sim.at(1.0, sim.crash, "app", 0.5)
    acked, failed = [], []
    async with running(sim):
        for n in range(250):
            try:
                answer = await user.call("app", Request("POST", f"/notes/{n}", body=f"note {n}".encode()), 1.0)
                (acked if answer.status == 201 else failed).append(n)
            except RequestError:
                failed.append(n)
            await trio.sleep(0.01)
    assert len(failed) > 20 and len(acked) > 150
    stored = {key for (key,) in database.direct("SELECT key FROM kv").rows}
    assert {f"note:{n}" for n in acked} <= stored
    assert len(app.memory) < len(acked)  # the sessions went with the crash; the rows did not
    assert database.stats().up and database.stats().reset == 0


async def test_the_database_crash_keeps_committed_rows_and_fails_what_was_in_flight(virtual_clock):
    sim = Sim(seed=1)
    database = sim.add(Database("db", schema=ORDERS, write_latency_s=0.02))
    user = sim.add(Client("user"))
    sim.at(0.5, sim.crash, "db", 0.5)
    acked, failed = [], []

    async def place(n):
        try:
            answer = await user.call("db", query("INSERT INTO orders (id, item) VALUES (?, ?)", [n, "x"]), 1.0)
            (acked if answer.status == 200 else failed).append(n)
        except RequestError as exc:
            failed.append((n, exc.kind))

    async with running(sim):
        async with trio.open_nursery() as nursery:
            for n in range(150):
                nursery.start_soon(place, n)
                await trio.sleep(0.01)
    kinds = {kind for _, kind in failed}
    assert kinds == {"reset", "refused"}
    assert sorted(database.direct("SELECT id FROM orders").rows) == [(n,) for n in sorted(acked)]
    assert database.stats().detail["crashes"] == 1 and database.io.in_use == 0


async def test_a_replica_that_crashed_catches_up_from_the_primary_log(virtual_clock):
    sim = Sim(seed=1)
    primary = sim.add(Database("db"))
    replica = sim.add(Database("r1", replica_of="db", replication_lag_s=0.3))
    user = sim.add(Client("user"))
    db = DatabaseClient("db")
    async with running(sim):
        for n in range(10):
            await db.put(user, f"k{n}", "v")
        await trio.sleep(0.1)
        replica.crash()  # what it received but had not applied is lost
        lost_at_crash = primary.store.version - replica.store.version
        for n in range(10, 20):
            await db.put(user, f"k{n}", "v")
        with pytest.raises(Refused):
            await DatabaseClient("r1").get(user, "k1")
        await trio.sleep(1.0)
        replica.restart()
        await trio.sleep(1.6)  # the next heartbeat finds it behind; the log is shipped again
    assert lost_at_crash == 10
    assert replica.store.version == primary.store.version == 20
    assert replica.direct("SELECT count(*) FROM kv").rows == [(20,)]
    assert primary.stats().detail["replicas_behind_max"] == 0


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_replica_added_to_a_database_with_rows_starts_from_a_copy(virtual_clock, replicas):
    sim = Sim(seed=1)
    primary = sim.add(Database("db", schema=ORDERS))
    primary.direct("INSERT INTO orders (item) VALUES ('seed')")
    names = [f"r{i}" for i in range(replicas)]
    for name in names:
        sim.add(Database(name, replica_of="db"))
    user = sim.add(Client("user"))
    async with running(sim):
        assert await DatabaseClient("db", replicas=names).query(user, "SELECT item FROM orders") == [("seed",)]


async def _load_level(rate: float):
    sim = Sim(seed=7)
    sim.add(Database("db", read_latency_s=Exponential(0.01), io_capacity=2))
    sim.load(OpenLoop("db", rate=rate, workload=Workload(make=lambda rng: query("SELECT 1"))))
    return await sim.run_async(20)


async def test_the_database_saturates_and_latency_climbs_with_load(virtual_clock):
    light = await _load_level(60)  # 2 IO slots x 10 ms reads: capacity 200 reads/s
    heavy = await _load_level(180)
    light_util = light.component("db").utilisation
    heavy_util = heavy.component("db").utilisation
    assert 0.25 < light_util < 0.35 and heavy_util > 0.85
    assert heavy.component("db").detail["io_queue_mean"] > 3
    assert heavy.p50_s > 2 * light.p50_s and heavy.p99_s > 3 * light.p99_s
    assert light.errors == heavy.errors == {}


async def test_past_its_connection_limit_the_database_refuses_and_the_app_answers_502(virtual_clock):
    db = DatabaseClient("db")

    async def page(request, ctx):
        return {"rows": await db.query(ctx, "SELECT 1")}

    sim = Sim(seed=1)
    sim.add(AppServer("app", page, cores=4, workers=64, calls=db.hosts))
    sim.add(Database("db", read_latency_s=0.01, io_capacity=1, max_connections=4, queue_limit=8))
    sim.load(OpenLoop("app", rate=300))
    report = await sim.run_async(5)
    statuses = report.clients["openloop->app"].statuses
    assert statuses[200] > 400 and statuses[502] > 300
    assert report.component("db").rejected == statuses[502]
    assert report.component("app").handler_errors == 0
    assert report.component("db").peak_queue == 8  # 4 connections busy, 8 waiting, the rest refused


async def test_slow_makes_every_query_take_longer(virtual_clock):
    sim = Sim(seed=1)
    sim.add(Database("db", read_latency_s=0.002))
    sim.load(OpenLoop("db", rate=20, arrivals="constant", workload=Workload(make=lambda rng: query("SELECT 1"))))
    sim.at(2.0, sim.slow, "db", None, 10.0)
    report = await sim.run_async(4)
    series = report.series["openloop->db"]
    assert series[0].p50_s < 0.004 and series[3].p50_s > 0.02


def test_the_same_seed_gives_the_same_report():
    def once():
        sim = Sim(seed=3)
        sim.add(Database("db", read_latency_s=LogNormal(0.002), write_latency_s=LogNormal(0.005)))
        sim.add(Database("r1", replica_of="db", replication_lag_s=Exponential(0.2)))
        writes = Workload(make=lambda rng: Request("PUT", f"/kv/k{int(rng.random() * 50)}", body=b"v"))
        sim.load(OpenLoop("db", rate=50, workload=writes))
        sim.load(OpenLoop("r1", rate=50, workload=Workload(make=lambda rng: Request("GET", "/kv/k1"))))
        return sim.run(3).to_json()

    assert once() == once()


def test_the_components_table_counts_requests_waiting_for_the_databases_io():
    """A database accepts every request onto a connection, then makes it wait for an I/O channel:
    that wait is its queue, in ``stats()`` and in the printed table, as in the per-second series."""

    sim = Sim(seed=1)
    db_client = DatabaseClient("db")

    async def handler(request, ctx):
        return await db_client.get(ctx, "k") or "none"

    sim.add(AppServer("app", handler, cores=4, calls=("db",)))
    sim.add(Database("db", io_capacity=1, read_latency_s=0.004))
    sim.load(OpenLoop("app", rate=220))
    report = sim.run(10)
    db = report.component("db")
    assert db.detail["io_queue_mean"] > 1 and db.mean_queue == pytest.approx(db.detail["io_queue_mean"], abs=0.01)
    assert db.peak_queue == db.detail["io_queue_peak"]
    row = next(line for line in str(report).splitlines() if line.startswith("│ db "))
    assert f"{db.mean_queue:.2f}" in row and f" {db.peak_queue:g} " in row
