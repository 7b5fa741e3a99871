"""What application code uses to talk to a ``Database``: SQL, key-value calls, replica routing.

In the real world this is the database driver plus a little routing (Django's
database routers, Rails' ``connects_to reading:``): writes go to the primary,
reads may go to read replicas, the nearest first, and a replica that is down
or too far behind is skipped. Finding the primary and choosing a replica are
in ``database_routing.py``. Each call is one request over the simulated
network from the ``caller`` (the calling ``Node`` or an app server's
``Context``); the client keeps its routing state, counters and the newest
version it has written.

    db = DatabaseClient("db", replicas=["db-r1", "db-r2"])
    await db.execute(ctx, "INSERT INTO users (name) VALUES (?)", ["ada"])
    rows = await db.query(ctx, "SELECT id, name FROM users")     # [(1, 'ada')]

Errors::

    PlaygroundError
    └── DatabaseError            the database answered with an error status
        ├── QueryError            4xx: bad SQL, a broken constraint, a malformed call
        └── DatabaseUnavailable   5xx: overloaded (503) or failing; also a RequestError,
            │                     so an app server that does not catch it answers 502
            └── TooManyConnections  a new pooled connection refused: max_connections reached

    PoolTimeout (a RequestError, ``connection_pool.py``): no pooled connection came free in time.

Network failures (``Timeout``, ``Refused``, ``Reset``) pass through unchanged.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from playground import ConfigError, PlaygroundError, Refused, Request, RequestError, Reset, Response
from playground._errors import check_positive
from playground._messages import quote_key

from .database_routing import DnsName, Endpoints, ReplicaChooser, host_of
from .database_store import READ, StatementError, classify, dumps, loads

if TYPE_CHECKING:
    from .connection_pool import ConnectionPool
    from .database_sharding import ShardRouter

__all__ = ["DatabaseClient", "DatabaseClientStats", "DatabaseError", "QueryError", "DatabaseUnavailable",
           "TooManyConnections"]


class DatabaseError(PlaygroundError):
    """The database answered with an error status; ``status`` and ``message`` say which."""

    def __init__(self, host: str, status: int, message: str) -> None:
        super().__init__(f"{host!r} answered {status}: {message}")
        self.host = host
        self.status = status
        self.message = message


class QueryError(DatabaseError):
    """A 4xx: the statement or the call was wrong. Retrying it will not help."""


class DatabaseUnavailable(DatabaseError, RequestError):
    """A 5xx: the database is overloaded or failing. Retrying later may help."""

    kind = "db_unavailable"


class TooManyConnections(DatabaseUnavailable):
    """The database refused a new connection: it already has ``max_connections`` open."""

    kind = "too_many_connections"


class Caller(Protocol):
    """Anything that can send a request to a host: a ``Node`` or an app server's ``Context``."""

    async def call(self, host: str, request: Request, timeout_s: float | None = ...) -> Response: ...


class DatabaseClient:
    """Talks to a database: writes to its primary, reads to the nearest healthy replica.

    The primary is ``primary`` (a host, or with ``dns`` a name that DNS host
    resolves), or the first of ``endpoints`` that accepts writes. Reads go to
    ``replicas`` ranked per calling host: same region first, then by link
    latency; one that fails is skipped for ``avoid_failed_s`` (default 5);
    when none answers, the primary serves the read. ``timeout_s`` (default 5)
    bounds each request. With ``read_your_writes``, a replica read asks for at
    least the newest version this client has written, and a replica that is
    behind (``x-stale``) is skipped for the primary.

        >>> db = DatabaseClient(endpoints=["db", "db-r1"], replicas=["db-r1"])
        >>> db.hosts
        ('db', 'db-r1')
    """

    def __init__(self, primary: str | None = None, *, endpoints: Sequence[str] | None = None,
                 dns: str | None = None, replicas: Sequence[str] = (), timeout_s: float = 5.0,
                 read_your_writes: bool = False, avoid_failed_s: float = 5.0,
                 pool: "ConnectionPool | None" = None, shards: "ShardRouter | None" = None) -> None:
        from .connection_pool import ConnectionPool
        from .database_sharding import ShardRouter

        self.shards = None
        if shards is not None:
            if not isinstance(shards, ShardRouter):
                raise ConfigError(f"shards must be a ShardRouter, got {shards!r}")
            if primary is not None or endpoints is not None or dns is not None or replicas:
                raise ConfigError("a sharded DatabaseClient takes its databases from shards: "
                                  "give no primary, endpoints, dns or replicas")
            if pool is not None:
                raise ConfigError("a sharded DatabaseClient uses each shard's own client: give pool to those")
            primary = "(sharded)"
        if pool is not None and not isinstance(pool, ConnectionPool):
            raise ConfigError(f"pool must be a ConnectionPool, got {pool!r}")
        if primary is not None and endpoints is not None:
            raise ConfigError(f"give the database as primary or as endpoints, not both, "
                              f"got primary={primary!r}, endpoints={endpoints!r}")
        if endpoints is not None:
            if isinstance(endpoints, str) or not endpoints or not all(isinstance(e, str) and e for e in endpoints) \
                    or len(set(endpoints)) != len(endpoints):
                raise ConfigError(f"endpoints must be a non-empty list of distinct host names, got {endpoints!r}")
            if dns is not None:
                raise ConfigError(f"dns resolves a primary name: give it with primary, not endpoints, got dns={dns!r}")
        elif not isinstance(primary, str) or not primary:
            raise ConfigError(f"primary must be a host name, got {primary!r}")
        if dns is not None and (not isinstance(dns, str) or not dns):
            raise ConfigError(f"dns must be the DNS server's host name, got {dns!r}")
        if isinstance(replicas, str) or not all(isinstance(r, str) and r for r in replicas):
            raise ConfigError(f"replicas must be a list of host names, got {replicas!r}")
        replicas = tuple(replicas)
        if len(set(replicas)) != len(replicas) or (primary is not None and primary in replicas):
            raise ConfigError(f"replicas must be distinct and must not include the primary {primary!r}, "
                              f"got {list(replicas)!r}")
        check_positive("timeout_s", timeout_s)
        check_positive("avoid_failed_s", avoid_failed_s, allow_zero=True)
        self.primary = primary if primary is not None else endpoints[0]
        self.endpoints = Endpoints(endpoints) if endpoints is not None else None
        self.dns_name = DnsName(dns, primary, float(timeout_s)) if dns is not None else None
        self.replicas = replicas
        self.timeout_s = float(timeout_s)
        self.read_your_writes = bool(read_your_writes)
        self.chooser = ReplicaChooser(replicas, float(avoid_failed_s))
        self.last_version = 0  # the newest write this client saw acknowledged
        self.reads = self.writes = self.replica_reads = self.fallbacks = 0
        self.reads_by_host: Counter[str] = Counter()
        self.pool = pool
        self.shards = shards
        self._sim = None

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host this client may call (for an app server's ``calls=``)."""
        if self.shards is not None:
            return self.shards.hosts
        if self.dns_name is not None:
            first: tuple[str, ...] = (self.dns_name.dns,)
        elif self.endpoints is not None:
            first = self.endpoints.hosts
        else:
            first = (self.primary,)
        return tuple(dict.fromkeys((*first, *self.replicas)))

    def stats(self) -> "DatabaseClientStats":
        eps = self.endpoints
        return DatabaseClientStats(self.reads, self.writes, self.replica_reads, self.fallbacks,
                                   dict(sorted(self.reads_by_host.items())), eps.switches if eps else 0,
                                   self.dns_name.lookups if self.dns_name else 0)

    # -- SQL ------------------------------------------------------------------------------
    async def query(self, caller: Caller, sql: str, params: Sequence[Any] | dict[str, Any] = (), *,
                    key: str | None = None) -> list[tuple]:
        """Run a statement and return its rows as tuples (a SELECT goes to a replica if there are any).

        A sharded client sends it to the shard that owns ``key``.
        """
        if self.shards is not None:
            return await self._shard(key).query(caller, sql, params)
        return [tuple(row) for row in (await self._sql(caller, sql, params))["rows"]]

    async def execute(self, caller: Caller, sql: str, params: Sequence[Any] | dict[str, Any] = (), *,
                      key: str | None = None) -> int:
        """Run a statement and return how many rows it changed (for a SELECT: how many it found)."""
        if self.shards is not None:
            return await self._shard(key).execute(caller, sql, params)
        return int((await self._sql(caller, sql, params))["rowcount"])

    def _shard(self, key: str | None) -> "DatabaseClient":
        if key is None:
            raise TypeError("a sharded DatabaseClient needs key= to route a statement")
        return self.shards.client_for(key)

    async def _sql(self, caller: Caller, sql: str, params) -> dict[str, Any]:
        if isinstance(params, (list, tuple)):
            params = list(params)
        elif not isinstance(params, dict):
            raise TypeError(f"params must be a list, a tuple or a dict, got {params!r}")
        body = dumps({"sql": sql, "params": params})

        def make() -> Request:
            return Request("POST", "/query", {"content-type": "application/json"}, body)

        try:
            is_read = classify(sql) == READ
        except StatementError:
            is_read = False  # let the primary refuse it, with its message, as a 400
        response = await (self._read(caller, make) if is_read else self._write(caller, make))
        return loads(response.body)

    # -- key-value ------------------------------------------------------------------------
    async def get(self, caller: Caller, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        if self.shards is not None:
            return await self.shards.client_for(key).get(caller, key)
        path = _kv_path(key)
        response = await self._read(caller, lambda: Request("GET", path), missing_ok=True)
        return None if response.status == 404 else response.text

    async def put(self, caller: Caller, key: str, value: str | bytes) -> int:
        """Store ``value`` (text) under ``key``; returns the write's version."""
        if self.shards is not None:
            return await self.shards.client_for(key).put(caller, key, value)
        if isinstance(value, str):
            body = value.encode()
        elif isinstance(value, (bytes, bytearray, memoryview)):
            body = bytes(value)
        else:  # bytes(12345) would be 12,345 NUL bytes
            raise TypeError(f"value must be str or bytes, got {value!r}"[:300])
        path = _kv_path(key)
        response = await self._write(caller, lambda: Request("PUT", path, body=body))
        return int(loads(response.body)["version"])

    async def delete(self, caller: Caller, key: str) -> bool:
        """Delete ``key``; False if it was not there."""
        if self.shards is not None:
            return await self.shards.client_for(key).delete(caller, key)
        path = _kv_path(key)
        response = await self._write(caller, lambda: Request("DELETE", path), missing_ok=True)
        return response.status != 404

    # -- routing -------------------------------------------------------------------------------
    def _bind(self, caller) -> Any:
        host = host_of(caller)
        if host.sim is not self._sim:  # a new simulation: what was learnt about hosts is void
            self._sim = host.sim
            self.chooser.forget()
            if self.pool is not None:
                self.pool.forget()
            if self.dns_name is not None:
                self.dns_name.forget()
        return host

    async def _write(self, caller: Caller, make: Callable[[], Request], missing_ok: bool = False) -> Response:
        self.writes += 1
        response = await self._to_primary(caller, make, missing_ok)
        version = response.headers.get("x-db-version", "0")
        self.last_version = max(self.last_version, int(version) if version.isdigit() else 0)
        return response

    async def _to_primary(self, caller: Caller, make: Callable[[], Request], missing_ok: bool) -> Response:
        self._bind(caller)
        if self.endpoints is None:
            host = self.primary
            if self.dns_name is not None:
                host = await self.dns_name.resolve(caller)
                if host is None:
                    raise DatabaseUnavailable(self.dns_name.dns, 503, f"cannot resolve {self.primary!r}")
            return await self._send(caller, host, make(), missing_ok)
        last: Exception | None = None
        for host in self.endpoints.order():
            try:
                response = await self._send(caller, host, make(), missing_ok)
            except Refused as exc:  # nobody there: the next endpoint may be the primary now
                last = exc
                continue
            except QueryError as exc:
                if exc.status != 403:  # 403: a read-only replica; anything else is the statement's fault
                    raise
                last = exc
                continue
            self.endpoints.settle(host)
            return response
        raise last

    async def _read(self, caller: Caller, make: Callable[[], Request], missing_ok: bool = False) -> Response:
        self.reads += 1
        if not self.replicas:
            return await self._to_primary(caller, make, missing_ok)
        host = self._bind(caller)
        for replica in self.chooser.order(host, host.sched.now):
            request = make()
            if self.read_your_writes and self.last_version:
                request.headers["x-min-version"] = str(self.last_version)
            try:
                response = await self._send(caller, replica, request, missing_ok)
            except RequestError:  # down, cut off or overloaded: try the next one, skip it for a while
                self.chooser.failed(replica, host.sched.now)
                self.fallbacks += 1
                continue
            if self.read_your_writes and response.headers.get("x-stale"):
                self.fallbacks += 1
                break  # behind this client's own writes: the primary has them
            self.replica_reads += 1
            self.reads_by_host[replica] += 1
            return response
        response = await self._to_primary(caller, make, missing_ok)
        self.reads_by_host["(primary)"] += 1
        return response

    async def _send(self, caller: Caller, host: str, request: Request, missing_ok: bool) -> Response:
        pool = self.pool
        if pool is None:
            response = await caller.call(host, request, self.timeout_s)
        else:
            connection = await pool.acquire(caller, host_of(caller), host)
            try:
                response = await caller.call(host, request, self.timeout_s)
            except (Refused, Reset):  # the database went away: this connection is dead
                pool.release(connection, broken=True)
                raise
            except BaseException:
                pool.release(connection)
                raise
            pool.release(connection)
        status = response.status
        if status < 400 or (missing_ok and status == 404):
            return response
        if status >= 500:
            raise DatabaseUnavailable(host, status, response.text)
        raise QueryError(host, status, response.text)

    def __repr__(self) -> str:
        replicas = f" replicas={list(self.replicas)}" if self.replicas else ""
        where = f"endpoints={list(self.endpoints.hosts)}" if self.endpoints else repr(self.primary)
        via = f" via dns {self.dns_name.dns!r}" if self.dns_name else ""
        return f"<DatabaseClient {where}{via}{replicas}>"


@dataclass(frozen=True)
class DatabaseClientStats:
    """What a client did: ``reads_by_host`` counts where reads were served ("(primary)" for the primary);
    ``endpoint_switches`` how often the writable endpoint changed; ``dns_lookups`` queries to the DNS."""

    reads: int
    writes: int
    replica_reads: int
    fallbacks: int
    reads_by_host: dict[str, int]
    endpoint_switches: int
    dns_lookups: int


def _kv_path(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a non-empty string, got {key!r}")
    return "/kv/" + quote_key(key)
