"""The database host: real SQLite behind injected latency, a connection limit and IO channels.

A real database server accepts a limited number of connections, parses each
statement, and waits on its storage: a read costs a page fetch, a write costs a
log flush. The storage does a few things at once (its IO channels); beyond
that, statements queue, so a busy database is slow before it is down, and past
its connection limit it refuses (503). A read replica is a second server that
replays its primary's log a little later: reads from it may be stale.

Kept: real rows (``sqlite3``, see ``database_store.py``), a latency per query
kind (``read_latency_s``, ``write_latency_s``: seconds or a ``Distribution``) spent
holding one of ``io_capacity`` IO slots (a FIFO ``Resource``), the connection
limit (``max_connections`` workers, then an accept queue of ``queue_limit``,
then 503), ``slow(factor)``, and asynchronous replication over the simulated
network. Left out: CPU for planning and sorting (a slow query costs what its
kind costs), locks and deadlocks, and replicas spending IO to replay.

Durability model: storage is durable, like a database with a write-ahead log.
A write commits when its IO completes and is acknowledged at once; ``crash()``
fails what was in flight (never acknowledged, never committed) and keeps every
committed row and the log, also for an in-memory database. App servers crash
without touching the database's rows: it is a separate host.

Replication (``database_replication.py``): the primary ships committed writes
to each replica; a replica applies them ``replication_lag_s`` after they
arrive, catches up from the primary's log after its own crash, starts as a
copy of its primary (a base backup) when the log cannot bring it up to date,
and refuses writes (403).

HTTP surface: ``POST /query`` with ``{"sql": ..., "params": [...]}`` answers
``{"rows", "columns", "rowcount", "lastrowid", "version"}``; ``GET``/``PUT``/
``DELETE /kv/<key>`` read and write the ``kv`` table. Bad SQL is a 400 with the
message. Every answer carries ``x-db-version``, the last write this host has
applied; a read with ``x-min-version`` newer than that is counted as stale and
marked ``x-stale: 1``.

    db = Database("db", schema="CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
                  read_latency_s=LogNormal(0.002), write_latency_s=0.005, io_capacity=4)
    replica = Database("db-r1", replica_of="db", replication_lag_s=0.5)
"""
from __future__ import annotations

import sqlite3
from os import PathLike
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from playground import ConfigError, Footprint, Node, Request, Resource, Response, WiringError, as_distribution
from playground import limits
from playground._errors import check_at_most

from playground._stations import Station, mixture_moments, service_moments

from .database_inline import InlineKV
from .database_replication import Follower, Shipper
from .database_roles import Roles
from .database_store import READ, WRITE, Result, SqlStore, StatementError, classify, dumps, loads

__all__ = ["Database"]

_CLIENT_ERRORS = (StatementError, sqlite3.Error, sqlite3.Warning, OverflowError)


class _BadRequest(ValueError):
    """The request itself is malformed (not JSON, wrong fields): a 400."""


def _check_count(name: str, value, limit: int, why: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    check_at_most(name, value, limit, "", why)


class Database(Roles, InlineKV, Node):
    """A database host. Defaults: read 2 ms, write 5 ms, 4 IO slots, 100 connections, accept queue 100.

    ``path`` is a SQLite file (default: in memory). ``schema`` is one SQL script
    or a list of them, run once when the database is built. ``replica_of``
    makes this host a read replica of that database, ``replication_lag_s``
    (seconds or a Distribution, default 0) after each batch arrives.
    ``replication`` is ``"async"`` (default: a write is acknowledged when it
    commits here) or ``"sync"`` (acknowledged once some replica has applied it;
    see ``database_replication.py``); a replica keeps the setting for the day a
    failover promotes it. ``GET /status`` answers the host's role and version.
    """

    kind = "database"

    def __init__(self, name: str, *, path: str | PathLike[str] | None = None, schema: str | Iterable[str] = (),
                 read_latency_s=0.002, write_latency_s=0.005, io_capacity: int = 4, max_connections: int = 100,
                 queue_limit: int | None = 100, replica_of: str | None = None, replication_lag_s=None,
                 region: str | None = None, replication: str = "async") -> None:
        _check_count("max_connections", max_connections, limits.MAX_SLOTS, limits.WHY["slots"])
        if replication not in ("async", "sync"):
            raise ConfigError(f"replication must be 'async' or 'sync', got {replication!r}")
        self.replication = replication
        _check_count("io_capacity", io_capacity, limits.MAX_CORES, limits.WHY["cores"])
        super().__init__(name, region=region, concurrency=max_connections, queue_limit=queue_limit)
        self.read_latency_s = as_distribution(read_latency_s, "read_latency_s")
        self.write_latency_s = as_distribution(write_latency_s, "write_latency_s")
        self.io_capacity = io_capacity
        schema = [schema] if isinstance(schema, str) else list(schema)
        if replica_of is not None:
            if not isinstance(replica_of, str) or not replica_of:
                raise ConfigError(f"replica_of must be a host name, got {replica_of!r}")
            if replica_of == name:
                raise ConfigError(f"replica_of must name another host, got {replica_of!r} (this database)")
            if schema:
                raise ConfigError(f"a replica takes its schema from its primary: give schema to {replica_of!r}")
        elif replication_lag_s is not None:
            raise ConfigError(f"replication_lag_s is for a replica: give replica_of too, got {replication_lag_s!r}")
        self.replica_of = replica_of
        self.replication_lag = as_distribution(replication_lag_s or 0.0, "replication_lag_s")
        self.store = SqlStore(path)
        for script in schema:
            try:
                self.store.script(script)
            except (sqlite3.Error, sqlite3.Warning) as exc:
                raise ConfigError(f"schema failed: {exc} (in {script!r})") from None
        self.io: Resource | None = None
        self.shipper: Shipper | None = None
        self._init_roles()
        self._reset_counts()

    # -- wiring -----------------------------------------------------------------------
    def replicas(self) -> tuple[str, ...]:
        """Names of the databases that replicate this one."""
        if self.sim is None or self.replica_of is not None:
            return ()
        return tuple(n for n, h in self.sim.net.hosts.items() if isinstance(h, Database) and h.replica_of == self.name)

    def downstream(self) -> tuple[str, ...]:
        return self.replicas()

    def validate(self, sim) -> None:
        super().validate(sim)
        if self.replica_of is None:
            return
        primary = sim.net.hosts.get(self.replica_of)
        if primary is None:
            raise WiringError(f"{self.name!r} is a replica of unknown host {self.replica_of!r}")
        if not isinstance(primary, Database):
            raise WiringError(f"{self.name!r} is a replica of {self.replica_of!r}, which is not a Database")
        if primary.replica_of is not None:
            raise WiringError(f"{self.name!r} is a replica of {self.replica_of!r}, which is itself a replica "
                              "(chained replication is not modelled)")

    def _reset_counts(self) -> None:
        self.reads = self.writes = self.errors = self.refused_writes = self.stale_reads = 0
        self.connections = self.peak_connections = self.refused_connections = 0  # pooled clients' connections
        self.follower = Follower(self.store)

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self.io = Resource(self.sched, self.io_capacity, f"{self.name} io")
        self._attach_serving()
        if self.replica_of is not None:
            primary = sim.net.hosts[self.replica_of]
            if not primary.store.covers(self.store.version):
                self.store.copy_from(primary.store)  # a base backup: the log cannot bring us up to date
        else:
            replicas = self.replicas()
            self.shipper = Shipper(self, replicas) if replicas else None
            self.store.keep_log = bool(replicas)
            if not replicas:
                self.store.log.clear()
        self._reset_counts()

    # -- faults: storage is durable ------------------------------------------------------
    def on_crash(self) -> None:
        # Rows and the log are on disk and stay. IO slots come back as the cancelled tasks
        # unwind. A replica loses the writes it had received but not yet applied; every
        # client connection is gone.
        self.follower.lose_unapplied()
        self.connections = 0

    # -- serving ------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        route = request.route
        try:
            if route == "/query":
                return await self._serve_query(request)
            if route.startswith("/kv/"):
                return await self._serve_kv(request, unquote(route[4:]))
            if route == "/replication/apply" and self.replica_of is not None:
                return await self._receive(request)
            if route == "/connect" or route == "/disconnect":
                return self._serve_connection(route == "/connect")
            if route == "/status":
                return self._answer(200, dumps(self.status()), content_type="application/json")
        except _CLIENT_ERRORS + (_BadRequest,) as exc:
            self.errors += 1
            return self._answer(400, str(exc).encode() or type(exc).__name__.encode())
        return self._answer(404, f"no such path {route!r}: use POST /query or /kv/<key>".encode())

    def _serve_connection(self, opening: bool) -> Response:
        """A pooled client opens or closes a connection; past ``max_connections`` it is refused."""
        if not opening:
            self.connections = max(0, self.connections - 1)
            return self._answer(200, b"closed")
        if self.connections >= self.concurrency:
            self.refused_connections += 1
            return self._answer(503, f"too many connections ({self.concurrency} open)".encode(),
                                {"x-error": "too_many_connections"})
        self.connections += 1
        self.peak_connections = max(self.peak_connections, self.connections)
        return self._answer(200, b"connected")

    async def _serve_query(self, request: Request) -> Response:
        if request.method != "POST":
            return self._answer(405, b"use POST /query with a JSON body {\"sql\": ..., \"params\": [...]}")
        sql, params = _parse_query(request.body)
        kind = classify(sql)
        if kind == WRITE:
            if self.replica_of is not None:
                return self._read_only()
            result = await self._io(WRITE, lambda: self.store.write(sql, params, self.sched.now))
        else:
            result = await self._io(READ, lambda: self.store.read(sql, params))
        return self._answer(200, dumps(_result_json(result)), self._freshness(request, kind),
                            content_type="application/json")

    async def _serve_kv(self, request: Request, key: str) -> Response:
        if not key:
            raise _BadRequest("kv key must not be empty: use /kv/<key>")
        method = request.method
        if method in ("GET", "HEAD"):
            found = await self._io(READ, lambda: self.store.kv_get(key))
            extra = self._freshness(request, READ)
            if found is None:
                return self._answer(404, f"no such key {key!r}".encode(), extra)
            value, version = found
            return self._answer(200, value.encode(), {**extra, "x-version": str(version)})
        if method not in ("PUT", "POST", "DELETE"):
            return self._answer(405, b"use GET, PUT or DELETE on /kv/<key>")
        if self.replica_of is not None:
            return self._read_only()
        if method == "DELETE":
            deleted = await self._io(WRITE, lambda: self.store.kv_delete(key, self.sched.now))
            if not deleted:
                return self._answer(404, f"no such key {key!r}".encode())
            return self._answer(200, dumps({"version": self.store.version}), content_type="application/json")
        try:
            value = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise _BadRequest("kv values must be UTF-8 text") from None
        version = await self._io(WRITE, lambda: self.store.kv_put(key, value, self.sched.now))
        return self._answer(200, dumps({"version": version}), content_type="application/json")

    async def _io(self, kind: str, run: Callable[[], Any]) -> Any:
        """Hold an IO slot for the statement's latency, then run it (a write commits at the end)."""
        latency = self.read_latency_s if kind == READ else self.write_latency_s
        seconds = latency.sample(self.rng) * self.slow_factor
        await self.io.acquire()
        try:
            if seconds > 0:
                await self.sleep(seconds)
            result = run()
        finally:
            self.io.release()
        self._count(kind)
        if kind == WRITE and self.replication == "sync" and self.shipper is not None:
            version = self.store.version  # this write's: nothing ran since it committed
            await self.shipper.wait_applied(version)
            self.acked_version = max(self.acked_version, version)
        return result

    def _count(self, kind: str) -> None:
        """A statement finished: count it, and ship a committed write to the replicas."""
        if kind == WRITE:
            self.writes += 1
            if self.replication == "async" or self.shipper is None:
                self.acked_version = self.store.version  # acknowledged as it commits
            if self.shipper is not None:
                self.shipper.committed()
        else:
            self.reads += 1

    def _freshness(self, request: Request, kind: str) -> dict[str, str]:
        """Mark a replica read older than the version the caller asked for."""
        wanted = request.headers.get("x-min-version")
        if kind != READ or self.replica_of is None or not wanted:
            return {}
        try:
            stale = self.store.version < int(wanted)
        except ValueError:
            raise _BadRequest(f"x-min-version must be an integer, got {wanted!r}") from None
        if stale:
            self.stale_reads += 1
            return {"x-stale": "1"}
        return {}

    def _read_only(self) -> Response:
        self.refused_writes += 1
        return self._answer(403, f"{self.name!r} is a read-only replica: send writes to {self.replica_of!r}".encode())

    def _answer(self, status: int, body: bytes, extra: dict[str, str] | None = None, *,
                content_type: str = "text/plain") -> Response:
        headers = {"content-type": content_type, "x-db-version": str(self.store.version)}
        if extra:
            headers.update(extra)
        return Response(status, headers, body)

    # -- replication ------------------------------------------------------------------------
    async def run(self) -> None:
        if self.shipper is not None:
            await self.shipper.run()

    async def _receive(self, request: Request) -> Response:
        batch = loads(request.body)
        sender = batch.get("primary", self.replica_of)
        if sender != self.replica_of:  # a deposed primary still shipping: refuse its history
            return self._answer(409, f"{self.name!r} replicates {self.replica_of!r}, not {sender!r}".encode())
        due = self.follower.receive(batch, self.sched.now, self.replication_lag.sample(self.rng))
        if due is not None:
            self.sched.call_at(due, self._apply_due)
        if batch.get("sync") and self.follower.pending:  # answer once applied: the primary acks on that
            await self.sleep(max(0.0, self.follower.last_due - self.sched.now))
            self._apply_due()
        return self._answer(200, dumps(self.follower.position()), content_type="application/json")

    def _apply_due(self, _=None) -> None:
        # The lag stands for the whole pipe from the primary (its sender, the wire, the replay):
        # what is still in it when the primary dies stays with the primary, and a promotion drops it.
        primary = self.net.hosts.get(self.replica_of) if self.replica_of is not None else None
        if primary is not None and not primary.up:
            return
        self.follower.apply_due(self.sched.now)

    # -- outside the simulation -------------------------------------------------------------
    def direct(self, sql: str, params=()) -> Result:
        """Run one statement on the storage now, without latency or counters (setup, tests, the REPL).

            >>> db.direct("SELECT count(*) FROM kv").rows     # doctest: +SKIP
            [(0,)]
        """
        if classify(sql) == READ:
            return self.store.read(sql, params)
        if self.replica_of is not None:
            raise ConfigError(f"{self.name!r} is a read-only replica: write to {self.replica_of!r}")
        now = self.sched.now if self.sched is not None else 0.0
        result = self.store.write(sql, params, now)
        if self.shipper is not None:
            self.shipper.committed()
        return result

    # -- looking at it ------------------------------------------------------------------------
    def waiting_lines(self):
        return (self._queued, self.io.waiting) if self.io is not None else (self._queued,)

    def utilisation(self) -> float:
        return self.io.utilisation(self.sched.now) if self.io is not None else 0.0

    def footprint(self) -> Footprint:
        """A managed database instance (a replica is one more)."""
        return Footprint("database")

    def stations(self) -> tuple[Station, ...]:
        """The IO slots: a query waits for a connection, then for a slot; reads and writes mix."""
        if self.io is None:
            return ()

        def service():
            return mixture_moments([(self.reads, service_moments(self.read_latency_s)),
                                    (self.writes, service_moments(self.write_latency_s))])

        cap = None if self.queue_limit is None else self.concurrency + self.queue_limit
        return (Station("io", min(self.io_capacity, self.concurrency), self.io.busy, (self._queued, self.io.waiting),
                        lambda: self.io.served, lambda: self.rejected, cap, service),)

    def detail(self) -> dict[str, Any]:
        now = self.sched.now if self.sched is not None else 0.0
        d: dict[str, Any] = {"reads": self.reads, "writes": self.writes, "errors": self.errors}
        if self.io is not None:
            d["io_utilisation"] = self.io.utilisation(now)
            d["io_queue_mean"] = self.io.waiting.mean(now)
            d["io_queue_peak"] = self.io.waiting.peak
        if self.peak_connections:
            d.update(connections=self.connections, peak_connections=self.peak_connections,
                     refused_connections=self.refused_connections)
        elif self.refused_connections:
            d["refused_connections"] = self.refused_connections
        d["kv_rows"] = self.store.kv_rows()
        d["tables"] = len(self.store.tables())
        d["version"] = self.store.version
        if self.replica_of is not None:
            f = self.follower
            d.update(replica_of=self.replica_of, replication_lag_s=self.replication_lag.mean_s,
                     behind_versions=f.behind_versions, lag_mean_s=f.apply_lag.mean_s, lag_max_s=f.apply_lag.max_s,
                     stale_reads=self.stale_reads, refused_writes=self.refused_writes)
            if f.apply_errors:
                d["apply_errors"] = f.apply_errors
        elif self.shipper is not None:
            d.update(self.shipper.detail())
        d.update(self._roles_detail())
        if self.crashes:
            d["crashes"] = self.crashes
        return d


def _parse_query(body: bytes) -> tuple[str, Any]:
    try:
        data = loads(body)
    except ValueError as exc:
        raise _BadRequest(f"the body must be JSON {{\"sql\": ..., \"params\": [...]}}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sql"), str):
        raise _BadRequest(f"the body must be a JSON object with a string \"sql\", got {data!r}"[:300])
    params = data.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, (list, dict)):
        raise _BadRequest(f"\"params\" must be a list or an object, got {params!r}"[:300])
    return data["sql"], params


def _result_json(result: Result) -> dict[str, Any]:
    return {"rows": [list(r) for r in result.rows], "columns": list(result.columns), "rowcount": result.rowcount,
            "lastrowid": result.lastrowid, "version": result.version}
