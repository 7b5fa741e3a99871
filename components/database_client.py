"""What application code uses to talk to a ``Database``: SQL, key-value calls, replica routing.

In the real world this is the database driver plus a little routing (Django's
database routers, Rails' ``connects_to reading:``): writes go to the primary,
reads may go to read replicas in turn, and a replica that is down or too far
behind is skipped for the primary. The client keeps no connection and no
state but a round-robin position, its counters and the newest version it has
written; each call is one request over the simulated network from the
``caller`` (the calling ``Node`` or an app server's ``Context``).

    db = DatabaseClient("db", replicas=["db-r1", "db-r2"])
    await db.execute(ctx, "INSERT INTO users (name) VALUES (?)", ["ada"])
    rows = await db.query(ctx, "SELECT id, name FROM users")     # [(1, 'ada')]

Errors::

    PlaygroundError
    └── DatabaseError            the database answered with an error status
        ├── QueryError            4xx: bad SQL, a broken constraint, a malformed call
        └── DatabaseUnavailable   5xx: overloaded (503) or failing; also a RequestError,
                                  so an app server that does not catch it answers 502

Network failures (``Timeout``, ``Refused``, ``Reset``) pass through unchanged.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence
from urllib.parse import quote

from playground import ConfigError, PlaygroundError, Request, RequestError, Response
from playground._errors import check_positive

from .database_store import READ, StatementError, classify, dumps, loads

__all__ = ["DatabaseClient", "DatabaseError", "QueryError", "DatabaseUnavailable"]


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


class Caller(Protocol):
    """Anything that can send a request to a host: a ``Node`` or an app server's ``Context``."""

    async def call(self, host: str, request: Request, timeout_s: float | None = ...) -> Response: ...


class DatabaseClient:
    """Talks to database ``primary`` (and, for reads, ``replicas`` round robin).

    ``timeout_s`` (default 5) bounds each request. With ``read_your_writes``, a
    replica read asks for at least the newest version this client has written,
    and a replica that is behind (``x-stale``) is skipped for the primary.
    """

    def __init__(self, primary: str, *, replicas: Sequence[str] = (), timeout_s: float = 5.0,
                 read_your_writes: bool = False) -> None:
        if not isinstance(primary, str) or not primary:
            raise ConfigError(f"primary must be a host name, got {primary!r}")
        if isinstance(replicas, str) or not all(isinstance(r, str) and r for r in replicas):
            raise ConfigError(f"replicas must be a list of host names, got {replicas!r}")
        replicas = tuple(replicas)
        if primary in replicas or len(set(replicas)) != len(replicas):
            raise ConfigError(f"replicas must be distinct and must not include the primary {primary!r}, "
                              f"got {list(replicas)!r}")
        check_positive("timeout_s", timeout_s)
        self.primary = primary
        self.replicas = replicas
        self.timeout_s = float(timeout_s)
        self.read_your_writes = bool(read_your_writes)
        self.last_version = 0  # the newest write this client saw acknowledged
        self.reads = self.writes = self.replica_reads = self.fallbacks = 0
        self._turn = 0

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host this client may call (for an app server's ``calls=``)."""
        return (self.primary, *self.replicas)

    # -- SQL ------------------------------------------------------------------------------
    async def query(self, caller: Caller, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        """Run a statement and return its rows as tuples (a SELECT goes to a replica if there are any)."""
        return [tuple(row) for row in (await self._sql(caller, sql, params))["rows"]]

    async def execute(self, caller: Caller, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run a statement and return how many rows it changed (for a SELECT: how many it found)."""
        return int((await self._sql(caller, sql, params))["rowcount"])

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
        path = _kv_path(key)
        response = await self._read(caller, lambda: Request("GET", path), missing_ok=True)
        return None if response.status == 404 else response.text

    async def put(self, caller: Caller, key: str, value: str | bytes) -> int:
        """Store ``value`` (text) under ``key``; returns the write's version."""
        body = value.encode() if isinstance(value, str) else bytes(value)
        path = _kv_path(key)
        response = await self._write(caller, lambda: Request("PUT", path, body=body))
        return int(loads(response.body)["version"])

    async def delete(self, caller: Caller, key: str) -> bool:
        """Delete ``key``; False if it was not there."""
        path = _kv_path(key)
        response = await self._write(caller, lambda: Request("DELETE", path), missing_ok=True)
        return response.status != 404

    # -- routing -------------------------------------------------------------------------------
    async def _write(self, caller: Caller, make: Callable[[], Request], missing_ok: bool = False) -> Response:
        self.writes += 1
        response = await self._send(caller, self.primary, make(), missing_ok)
        version = response.headers.get("x-db-version", "0")
        self.last_version = max(self.last_version, int(version) if version.isdigit() else 0)
        return response

    async def _read(self, caller: Caller, make: Callable[[], Request], missing_ok: bool = False) -> Response:
        self.reads += 1
        if not self.replicas:
            return await self._send(caller, self.primary, make(), missing_ok)
        replica = self.replicas[self._turn % len(self.replicas)]
        self._turn += 1
        self.replica_reads += 1
        request = make()
        if self.read_your_writes and self.last_version:
            request.headers["x-min-version"] = str(self.last_version)
        try:
            response = await self._send(caller, replica, request, missing_ok)
        except RequestError:  # the replica is down or overloaded: the primary can answer
            self.fallbacks += 1
            return await self._send(caller, self.primary, make(), missing_ok)
        if self.read_your_writes and response.headers.get("x-stale"):
            self.fallbacks += 1
            return await self._send(caller, self.primary, make(), missing_ok)
        return response

    async def _send(self, caller: Caller, host: str, request: Request, missing_ok: bool) -> Response:
        response = await caller.call(host, request, self.timeout_s)
        status = response.status
        if status < 400 or (missing_ok and status == 404):
            return response
        if status >= 500:
            raise DatabaseUnavailable(host, status, response.text)
        raise QueryError(host, status, response.text)

    def __repr__(self) -> str:
        replicas = f" replicas={list(self.replicas)}" if self.replicas else ""
        return f"<DatabaseClient {self.primary!r}{replicas}>"


def _kv_path(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a non-empty string, got {key!r}")
    return "/kv/" + quote(key, safe="")
