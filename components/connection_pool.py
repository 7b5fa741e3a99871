"""Connection pools: each app server keeps a few open connections to the database and shares them.

In the real world opening a database connection costs a round trip or more
(TCP, TLS, authentication) and a process or thread on the server, so the
server caps them (PostgreSQL's ``max_connections``, default 100: "sorry, too
many clients already"), and each app server keeps a pool (HikariCP, SQLAlchemy's
``QueuePool``, pgx): at most ``size`` connections, opened when first needed
and kept; a request that finds them all busy waits for one, up to a timeout.
The arithmetic is what bites: 10 app servers with pools of 20 may open 200
connections against a database that accepts 100. Scaling the app tier out
multiplies the connections, which is why PgBouncer exists.

Kept: one pool per (calling host, database host) from one ``ConnectionPool``
setting, connections opened lazily with a ``POST /connect`` round trip that
the database refuses past its ``max_connections`` (``TooManyConnections``,
a 503), idle connections reused, a FIFO wait for a busy pool bounded by
``wait_timeout_s`` (``PoolTimeout``), the time spent waiting (``stats()``), and
a connection dropped when the database resets or refuses a request on it.
Left out: idle timeouts and maximum lifetimes, validation queries, and a
database restart noticed by connections that were idle through it (they are
dropped the first time a request on them fails).

    db = DatabaseClient("db", pool=ConnectionPool(size=20, wait_timeout_s=0.5))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from playground import ConfigError, LatencyHistogram, LatencySummary, Request, RequestError, Resource
from playground._errors import check_positive

__all__ = ["ConnectionPool", "PoolTimeout", "PoolStats"]


class PoolTimeout(RequestError):
    """Every connection of the pool stayed busy for ``wait_timeout_s``."""

    kind = "pool_timeout"


@dataclass(frozen=True)
class PoolStats:
    """``opened`` connections now open across the pools, ``peak_open`` the most at once, ``waits`` how
    many requests found their pool busy, ``wait`` how long they waited, ``timeouts`` how many gave up,
    ``refused`` connection attempts the database turned away (too many connections)."""

    pools: int
    opened: int
    peak_open: int
    connects: int
    waits: int
    timeouts: int
    refused: int
    wait: LatencySummary


class _HostPool:
    """One calling host's connections to one database host."""

    def __init__(self, sched, size: int, name: str) -> None:
        self.slots = Resource(sched, size, name)
        self.open = 0
        self.idle = 0


class ConnectionPool:
    """``size`` connections per calling host and database (default 20); wait up to ``wait_timeout_s`` (0.5).

        >>> ConnectionPool(size=10, wait_timeout_s=0.2)
        ConnectionPool(size=10, wait_timeout_s=0.2)
    """

    def __init__(self, size: int = 20, *, wait_timeout_s: float = 0.5, connect_timeout_s: float = 2.0) -> None:
        if not (isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 100_000):
            raise ConfigError(f"size must be an integer between 1 and 100000, got {size!r}")
        check_positive("wait_timeout_s", wait_timeout_s, allow_zero=True)
        check_positive("connect_timeout_s", connect_timeout_s)
        self.size = size
        self.wait_timeout_s = float(wait_timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.forget()

    def forget(self) -> None:
        """A new run: no connection is open."""
        self._pools: dict[tuple[str, str], _HostPool] = {}
        self.open = self.peak_open = self.connects = self.waits = self.timeouts = self.refused = 0
        self.wait = LatencyHistogram()

    def _pool(self, host, db: str) -> _HostPool:
        key = (host.name, db)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _HostPool(host.sched, self.size, f"pool {host.name}->{db}")
        return pool

    async def acquire(self, caller, host, db: str) -> _HostPool:
        """Take a connection to ``db`` for ``host`` (opening one if none is idle); give it back with ``release``."""
        pool = self._pool(host, db)
        slots, sched = pool.slots, host.sched
        if slots.in_use >= slots.capacity or slots.queue_length:
            self.waits += 1
            started = sched.now
            with trio.CancelScope() as scope:
                timer = sched.call_later(self.wait_timeout_s, lambda _: scope.cancel())
                try:
                    await slots.acquire()
                finally:
                    timer.cancel()
            self.wait.record(sched.now - started)
            if scope.cancelled_caught:
                self.timeouts += 1
                raise PoolTimeout(f"no connection to {db!r} came free within {self.wait_timeout_s:g} s "
                                  f"(pool of {self.size} on {host.name!r})")
        else:
            await slots.acquire()
        if pool.idle:
            pool.idle -= 1
            return pool
        try:
            await self._connect(caller, db)
        except BaseException:
            slots.release()
            raise
        pool.open += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        return pool

    async def _connect(self, caller, db: str) -> None:
        from .database_client import DatabaseUnavailable, TooManyConnections

        self.connects += 1
        response = await caller.call(db, Request("POST", "/connect"), self.connect_timeout_s)
        if response.status == 200:
            return
        if response.status == 503 and response.headers.get("x-error") == "too_many_connections":
            self.refused += 1
            raise TooManyConnections(db, 503, response.text)
        raise DatabaseUnavailable(db, response.status, response.text)

    def release(self, pool: _HostPool, *, broken: bool = False) -> None:
        """Give a connection back; a ``broken`` one (reset, refused) is closed instead of kept."""
        if broken:
            pool.open -= 1
            self.open -= 1
        else:
            pool.idle += 1
        pool.slots.release()

    def stats(self) -> PoolStats:
        return PoolStats(len(self._pools), self.open, self.peak_open, self.connects, self.waits, self.timeouts,
                         self.refused, self.wait.summary())

    def detail(self) -> dict[str, Any]:
        return {"open": self.open, "peak_open": self.peak_open, "waits": self.waits, "timeouts": self.timeouts}

    def __repr__(self) -> str:
        return f"ConnectionPool(size={self.size}, wait_timeout_s={self.wait_timeout_s:g})"
