"""Cache-aside (lazy loading): the pattern an app server uses in front of a database.

Read the cache; on a miss, load from the database and put the result in the
cache for next time. It is what most sites do with memcached or Redis, and it
has three well-known failure modes, each with a known remedy that this helper
offers as an option:

* **Stampede** (thundering herd, dog-piling): a hot key expires and every
  request that misses at that moment queries the database for the same row.
  ``coalesce=True`` is request coalescing, "single-flight" (Go's
  ``golang.org/x/sync/singleflight``, Facebook's memcache leases): concurrent
  misses on one key *in the same app server* share one loader call; the
  others wait for it. Across app servers each still loads once.
* **Repeated misses for what does not exist**: ``negative_ttl_s`` caches
  "not found" (the loader returned None) for that long.
* **Cache outage**: if the cache host refuses, resets, times out
  (``timeout_s``) or errors, the helper falls back to the loader and counts it
  (``cache_errors``, ``fallback_loads``): a cache outage must not take the
  site down, though the database then carries the whole load.

Kept: the read/load/set sequence over the simulated network, per-server
single-flight, negative entries (stored with memcached-style flags), TTLs.
Left out: leases across servers, early/probabilistic refresh, write paths
(invalidate on write is one ``DELETE /cache/<key>`` away).

    aside = CacheAside("cache", ttl_s=60, coalesce=True)
    async def handler(request, ctx):
        return await aside.get(ctx, key, lambda: load_row(ctx, key))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from outcome import Value
from trio.lowlevel import Abort, current_task, wait_task_rescheduled

from playground import ConfigError, Node, Request, RequestError, Response
from playground._errors import check_positive
from playground._messages import quote_key

from .cache import PREFIX, check_ttl

__all__ = ["CacheAside", "CacheAsideStats", "Caller", "NEGATIVE_FLAGS"]

NEGATIVE_FLAGS = "1"  # the x-flags value that marks a cached "not found"


class Caller(Protocol):
    """What ``get`` needs from its first argument: an app server ``Context`` or a ``Node``."""

    async def call(self, host: str, request: Request, timeout_s: float | None = ...) -> Response: ...


@dataclass(frozen=True)
class CacheAsideStats:
    hits: int
    negative_hits: int
    misses: int
    loads: int
    coalesced_waits: int
    cache_errors: int
    fallback_loads: int
    sets: int

    @property
    def hit_ratio(self) -> float:
        reads = self.hits + self.negative_hits + self.misses
        return (self.hits + self.negative_hits) / reads if reads else 0.0


_RETRY = object()  # the leader was cancelled before loading: waiters try again themselves


class _Flight:
    """One loader call in progress; others wait for its outcome (woken through the scheduler heap)."""

    __slots__ = ("sched", "waiters", "done", "result")

    def __init__(self, sched) -> None:
        self.sched = sched
        self.waiters: list[list] = []
        self.done = False
        self.result: tuple[bool, Any] = (True, None)

    def finish(self, ok: bool, value: Any) -> None:
        self.done = True
        self.result = (ok, value)
        for entry in self.waiters:
            entry[1] = self.sched.wake(entry[0], Value(self.result))
        self.waiters.clear()

    async def wait(self) -> tuple[bool, Any]:
        if self.done:
            return self.result
        entry: list = [current_task(), None]
        self.waiters.append(entry)

        def abort(_):
            if entry[1] is not None:
                entry[1].cancel()
            else:
                self.waiters.remove(entry)
            return Abort.SUCCEEDED

        return await wait_task_rescheduled(abort)


def _host_of(caller) -> Node:
    host = getattr(caller, "server", caller)
    if not isinstance(host, Node):
        raise ConfigError(f"CacheAside.get needs an app server Context or a Node, got {caller!r}")
    return host


class CacheAside:
    """Read-through helper for a handler. Defaults: coalescing on, no TTL, no negative caching, 100 ms timeout.

        aside = CacheAside("cache", ttl_s=30, negative_ttl_s=5)
        row = await aside.get(ctx, "user:42", lambda: db_lookup(ctx, 42))   # bytes, or None if absent

    Values are bytes unless ``serializer`` (an aiocache serializer such as
    ``PickleSerializer()``) turns objects into bytes and back. A loader returns
    the value, or None for "not found".
    """

    def __init__(self, cache_host: str, *, ttl_s: float | None = None, negative_ttl_s: float | None = None,
                 coalesce: bool = True, timeout_s: float = 0.1, serializer=None) -> None:
        if not isinstance(cache_host, str) or not cache_host:
            raise ConfigError(f"cache_host must be a host name, got {cache_host!r}")
        check_ttl("ttl_s", ttl_s)
        if negative_ttl_s is not None:
            check_positive("negative_ttl_s", negative_ttl_s)
        check_positive("timeout_s", timeout_s)
        if serializer is not None and not (hasattr(serializer, "dumps") and hasattr(serializer, "loads")):
            raise ConfigError(f"serializer must have dumps() and loads() (an aiocache serializer), got {serializer!r}")
        self.cache_host = cache_host
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.coalesce = bool(coalesce)
        self.timeout_s = float(timeout_s)
        self.serializer = serializer
        self._flights: dict[tuple[str, str], _Flight] = {}
        self.hits = self.negative_hits = self.misses = self.loads = 0
        self.coalesced_waits = self.cache_errors = self.fallback_loads = self.sets = 0

    # -- the read path -----------------------------------------------------------------
    async def get(self, caller: Caller, key: str, loader: Callable[[], Awaitable[Any]]) -> Any:
        """The value for ``key``: from the cache, or from ``loader()`` (then cached).

        If the loader raises, the error reaches this caller and every request that waited on it.
        """
        host = _host_of(caller)
        flight_key = (host.name, key)
        while True:
            if self.coalesce and flight_key in self._flights:
                ok, value = await self._join(flight_key)
                if value is _RETRY:
                    continue
                return self._outcome(ok, value)
            cache_ok = True
            try:
                resp = await caller.call(self.cache_host, Request("GET", self._path(key)), self.timeout_s)
            except RequestError:
                resp = None
            if resp is not None and resp.status == 200:
                if resp.headers.get("x-flags") == NEGATIVE_FLAGS:
                    self.negative_hits += 1
                    return None
                self.hits += 1
                return self._decode(resp.body)
            if resp is not None and resp.status == 404:
                self.misses += 1
            else:  # refused, reset, timed out, overloaded: serve from the database anyway
                self.cache_errors += 1
                cache_ok = False
            if self.coalesce and flight_key in self._flights:  # someone started loading meanwhile
                continue
            return await self._load(caller, host, flight_key, loader, cache_ok)

    async def _join(self, flight_key) -> tuple[bool, Any]:
        self.coalesced_waits += 1
        return await self._flights[flight_key].wait()

    @staticmethod
    def _outcome(ok: bool, value: Any) -> Any:
        if not ok:
            raise value
        return value

    async def _load(self, caller, host: Node, flight_key, loader, cache_ok: bool) -> Any:
        flight = None
        if self.coalesce:
            flight = self._flights[flight_key] = _Flight(host.sched)
        try:
            self.loads += 1
            if not cache_ok:
                self.fallback_loads += 1
            try:
                value = await loader()
            except Exception as exc:
                if flight is not None:
                    flight.finish(False, exc)
                raise
            if flight is not None:
                flight.finish(True, value)  # waiters go on now; the flight stays until the cache has it
            if cache_ok:
                await self._store(caller, flight_key[1], value)
            return value
        finally:
            if flight is not None:
                if not flight.done:  # cancelled mid-load (a crash, a deadline)
                    flight.finish(True, _RETRY)
                if self._flights.get(flight_key) is flight:
                    del self._flights[flight_key]

    async def _store(self, caller, key: str, value: Any) -> None:
        headers: dict[str, str] = {}
        if value is None:
            if self.negative_ttl_s is None:
                return
            body = b""
            headers = {"x-ttl": repr(float(self.negative_ttl_s)), "x-flags": NEGATIVE_FLAGS}
        else:
            body = self._encode(value)
            if self.ttl_s is not None:
                headers["x-ttl"] = repr(float(self.ttl_s))
        try:
            resp = await caller.call(self.cache_host, Request("PUT", self._path(key), headers, body), self.timeout_s)
        except RequestError:
            resp = None
        if resp is not None and resp.ok:
            self.sets += 1
        else:
            self.cache_errors += 1

    async def invalidate(self, caller: Caller, key: str) -> bool:
        """Delete ``key`` from the cache (after a write). False if the cache could not be reached."""
        try:
            resp = await caller.call(self.cache_host, Request("DELETE", self._path(key)), self.timeout_s)
        except RequestError:
            self.cache_errors += 1
            return False
        return resp.status in (204, 404)

    # -- values ------------------------------------------------------------------------
    @staticmethod
    def _path(key: str) -> str:
        return PREFIX + quote_key(str(key))

    def _encode(self, value: Any) -> bytes:
        s = self.serializer
        if s is None:
            if not isinstance(value, (bytes, bytearray)):
                raise TypeError(f"CacheAside without a serializer caches bytes; the loader returned "
                                f"{type(value).__name__} (pass serializer=PickleSerializer())")
            return bytes(value)
        data = s.dumps(value)
        return data.encode(s.encoding or "utf-8") if isinstance(data, str) else data

    def _decode(self, body: bytes) -> Any:
        s = self.serializer
        if s is None:
            return body
        return s.loads(body.decode(s.encoding) if s.encoding else body)

    # -- introspection -------------------------------------------------------------------
    def stats(self) -> CacheAsideStats:
        return CacheAsideStats(self.hits, self.negative_hits, self.misses, self.loads, self.coalesced_waits,
                               self.cache_errors, self.fallback_loads, self.sets)

    def __repr__(self) -> str:
        return f"<CacheAside -> {self.cache_host!r} coalesce={self.coalesce} ttl_s={self.ttl_s}>"
