"""The cache server: a memcached or Redis host that keeps hot items in memory.

A real cache server is a key-value store with a fixed memory budget. When it is
full, a new item pushes an old one out (*eviction*) chosen by a policy: least
recently used (memcached, Redis ``allkeys-lru``), least frequently used (Redis
``allkeys-lfu``), random (Redis ``allkeys-random``), or expired items first.
Items may carry a time to live; an expired item reads as a miss. The server
answers in microseconds because it only touches memory, but it has few worker
threads (memcached defaults to 4), so at high rates operations queue. It keeps
nothing on disk: after a crash it comes back empty and every read is a miss
until the working set is loaded again (a *cold cache*).

Two layers, pure logic apart from waiting:

* ``CacheStore`` (``components/cache_store.py``) - synchronous bookkeeping
  around cachetools' eviction policies, on a clock it is given.
* ``CacheServer`` - the host: every operation holds one of ``concurrency``
  slots for ``op_latency_s`` seconds, then acts on the store.

Protocol over ``playground.Request`` (keys are URL-quoted in the path):

    GET    /cache/<key>   200 with the value as body (``x-flags`` if set), or 404 on a miss
    PUT    /cache/<key>   body stored; ``x-ttl`` seconds (0 = never expires, absent = ``ttl_s``),
                          ``x-flags`` an opaque integer returned on GET (memcached's flags),
                          ``x-if-absent: 1`` stores only if absent (409 otherwise); 204, or 413 too large
    DELETE /cache/<key>   204, or 404 if absent;  ``DELETE /cache/`` empties the cache (flush_all)

Modelled: capacity, the eviction policy, per-item TTL with lazy expiry (an
expired item is dropped when next read; with ``policy="ttl"`` expired items
are also swept before any eviction), operation latency and its queue, loss of
everything on crash. Not modelled: memcached's slab classes, memory
fragmentation, replication, persistence, the cost of large values on the wire
beyond the network's bandwidth model.

    cache = CacheServer("cache", capacity_items=10_000, policy="lru", ttl_s=300)
    sim.add(cache)
    store = cache.store          # hits, misses, evictions: cache.stats().detail
"""
from __future__ import annotations

import math
import random
from typing import Any
from urllib.parse import unquote

from playground import ConfigError, Footprint, Node, Request, Resource, Response, as_distribution
from playground import limits
from playground._errors import check_at_most

from playground._stations import Station, service_moments

from .cache_store import POLICIES, PREFIX, CacheStore, CacheStoreStats, Entry, check_ttl

__all__ = ["CacheServer", "CacheStore", "CacheStoreStats", "Entry", "POLICIES", "PREFIX", "check_ttl"]


def _parse_ttl(text: str | None) -> float | None:
    if text is None:
        return None
    ttl = float(text)  # ValueError -> 400
    if not ttl >= 0 or ttl == math.inf:
        raise ValueError(f"x-ttl must be >= 0 seconds, got {text!r}")
    return ttl


class CacheServer(Node):
    """A cache host. Defaults: LRU, no TTL, 4 operation slots of 100 us each, 1024 connections.

        cache = sim.add(CacheServer("cache", capacity_items=1000))
        await node.call("cache", Request("PUT", "/cache/user:1", body=b"ada"))
        (await node.get("cache", "/cache/user:1")).body      # b"ada"

    ``op_latency_s`` is seconds or a ``Distribution``, per operation, on one of
    ``concurrency`` slots (worker threads); ``connections`` and ``queue_limit``
    bound the requests the host accepts (beyond them: 503).
    """

    kind = "cache"

    def __init__(self, name: str, *, capacity_items: int = 10_000, capacity_bytes: int | None = None,
                 policy: str = "lru", ttl_s: float | None = None, op_latency_s=0.0001, concurrency: int = 4,
                 connections: int | None = 1024, queue_limit: int | None = 1024,
                 region: str | None = None) -> None:
        if not (isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1):
            raise ConfigError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        check_at_most("concurrency", concurrency, limits.MAX_CORES, "", limits.WHY["cores"])
        super().__init__(name, region=region, concurrency=connections, queue_limit=queue_limit)
        self.op_latency_s = as_distribution(op_latency_s, "op_latency_s")
        self.op_concurrency = concurrency
        self._time_offset = 0.0
        self._run_start: float | None = None
        self.store = CacheStore(capacity_items, capacity_bytes=capacity_bytes, policy=policy, ttl_s=ttl_s,
                                timer=self._now, rng=random.Random(f"{name}/evict"))
        self.ops: Resource | None = None

    def _now(self) -> float:
        """The cache's clock: simulated time, going on across the runs of one Sim, still between them."""
        if self.sim is not None and self.sim.running:
            return self.sched.now + self._time_offset
        return self._last_run_end()

    def _last_run_end(self) -> float:
        last = self.sim.last_report if self.sim is not None else None
        if self._run_start is None or last is None:
            return self._run_start or 0.0
        return self._run_start + last.simulated_s

    def _attach(self, sim, rng) -> None:
        # A new run may start a new clock at zero. Contents carry over between runs, so their
        # expiry must too: the cache's clock goes on from where the last run ended.
        start = self._last_run_end()
        super()._attach(sim, rng)
        self._time_offset = start - self.sched.now
        self._run_start = start
        self.store.rng = random.Random(f"{sim.seed}/{self.name}/evict")
        self.store.reset_counters()
        self.ops = Resource(self.sched, self.op_concurrency, f"{self.name} ops")
        self._attach_inline()

    def on_crash(self) -> None:
        self.store.clear()  # memory only: it comes back cold
        if self.ops is not None and self._serve_inline is not None:
            self.ops.reset()  # no task will let go of a slot: free them all (tasks free their own)

    # A cache operation only holds an operation slot for a while and then touches the store,
    # so it is served with scheduler callbacks (Node._serve_inline) rather than a worker task:
    # the same draws and events as ``handle`` below, with no task switch. A subclass that
    # overrides ``handle`` gets the task path.
    def _attach_inline(self) -> None:
        self._serve_inline = self._serve_op if type(self).handle is CacheServer.handle else None

    async def handle(self, request: Request) -> Response:
        answer, key, method = self._check(request)
        if answer is not None:
            return answer
        await self.ops.use(self.op_latency_s.sample(self.rng) * self.slow_factor)
        return self._apply(request, key, method)

    def _check(self, request: Request) -> tuple[Response | None, str, str]:
        """An immediate answer for a malformed request, else None with the key and method."""
        route = request.route
        if not route.startswith(PREFIX):
            return Response(400, body=f"expected {PREFIX}<key>, got {route!r}".encode()), "", ""
        key = unquote(route[len(PREFIX):])
        method = request.method.upper()
        if method not in ("GET", "PUT", "DELETE"):
            return Response(405, {"allow": "GET, PUT, DELETE"}, f"method {method} not allowed".encode()), key, method
        if not key and method != "DELETE":
            return Response(400, body=b"empty key"), key, method
        return None, key, method

    def _apply(self, request: Request, key: str, method: str) -> Response:
        """The operation itself, once its slot time has passed."""
        store = self.store
        if method == "GET":
            entry = store.get(key)
            if entry is None:
                return Response(404, body=b"miss")
            return Response(200, {"x-flags": str(entry.flags)} if entry.flags else {}, entry.value)
        if method == "DELETE":
            if not key:
                store.clear()
                return Response(204)
            return Response(204 if store.delete(key) else 404)
        try:
            ttl_s = _parse_ttl(request.headers.get("x-ttl"))
            flags = int(request.headers.get("x-flags", "0"))
        except ValueError as exc:
            return Response(400, body=str(exc).encode())
        if_absent = request.headers.get("x-if-absent") == "1"
        if store.set(key, request.body, ttl_s=ttl_s, flags=flags, if_absent=if_absent):
            return Response(204)
        if if_absent and store.peek(key) is not None:
            return Response(409, body=b"exists")
        return Response(413, body=f"item of {len(request.body)} bytes exceeds capacity_bytes".encode())

    # -- the inline path: ``handle`` step for step, as callbacks ---------------------------------
    def _serve_op(self, ex) -> None:
        self._busy.add(1, self.sched.now)
        answer, key, method = self._check(ex.request)
        if answer is not None:
            self._answer_op(ex, answer)
            return
        seconds = self.op_latency_s.sample(self.rng) * self.slow_factor
        self.ops.acquire_then(self._op_granted, (ex, key, method, seconds))

    def _op_granted(self, item) -> None:
        ex, key, method, seconds = item
        if ex not in self._inflight:  # failed by a crash while it waited (its task would be cancelled)
            self.sched.fired -= 1
            return
        sched = self.sched
        sched.post(sched.now + seconds, self._op_done, item)

    def _op_done(self, item) -> None:
        ex, key, method, _ = item
        if ex not in self._inflight:  # failed by a crash while holding a slot
            self.sched.fired -= 1
            return
        self.ops.release()
        self._answer_op(ex, self._apply(ex.request, key, method))

    def _answer_op(self, ex, response: Response) -> None:
        self._busy.add(-1, self.sched.now)
        self._complete(ex, response)
        self._next_inline()

    def waiting_lines(self):
        return (self._queued, self.ops.waiting) if self.ops is not None else (self._queued,)

    def utilisation(self) -> float:
        return self.ops.utilisation(self.sched.now) if self.ops is not None else 0.0

    # a stored item's key and bookkeeping besides its value (Redis and memcached spend ~50-100 bytes)
    ITEM_OVERHEAD_BYTES = 100
    DEFAULT_ITEM_BYTES = 1024  # the value size assumed while the cache holds nothing

    def footprint(self) -> Footprint:
        """A cache node sized for its capacity: ``capacity_bytes``, or ``capacity_items`` items of
        the mean size held (key and value; 1 KiB while empty) plus 100 bytes each of overhead."""
        store = self.store
        if store.capacity_bytes is not None:
            size = store.capacity_bytes
        else:
            s = store.stats()
            mean = s.bytes / s.items if s.items else self.DEFAULT_ITEM_BYTES
            size = store.capacity_items * (mean + self.ITEM_OVERHEAD_BYTES)
        return Footprint("cache", memory_gb=size / 2**30)

    def stations(self) -> tuple[Station, ...]:
        """The operation slots: an operation waits for a connection, then for a slot."""
        if self.ops is None:
            return ()
        cap = None if self.queue_limit is None else self.concurrency + self.queue_limit
        return (Station("ops", min(self.op_concurrency, self.concurrency), self.ops.busy,
                        (self._queued, self.ops.waiting), lambda: self.ops.served, lambda: self.rejected, cap,
                        service_moments(self.op_latency_s)),)

    def detail(self) -> dict[str, Any]:
        s = self.store.stats()
        d: dict[str, Any] = {"policy": self.store.policy, "hits": s.hits, "misses": s.misses, "sets": s.sets,
                             "evictions": s.evictions, "hit_ratio": s.hit_ratio, "items": s.items, "bytes": s.bytes}
        optional = {"expirations": s.expirations, "deletes": s.deletes, "too_large": s.too_large,
                    "crashes": self.crashes}
        d.update((k, v) for k, v in optional.items() if v)
        return d
