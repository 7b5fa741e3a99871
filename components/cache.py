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

* ``CacheStore`` - synchronous bookkeeping around cachetools' policies
  (``LRUCache``, ``LFUCache``, ``RRCache``, and for "ttl" ``TLRUCache``, the
  cachetools TTL cache that allows a time to live per item: it sweeps expired
  items, then evicts the least recently used). Capacity in items
  and, optionally, in bytes (key plus value length; no per-item overhead).
  Time comes from a ``timer`` callable, so TTLs run on the simulated clock.
* ``CacheServer`` - the host: every operation holds one of ``concurrency``
  slots for ``op_latency`` seconds, then acts on the store.

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
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

import cachetools

from playground import ConfigError, Node, Request, Resource, Response, as_distribution
from playground._errors import check_positive

__all__ = ["CacheServer", "CacheStore", "CacheStoreStats", "Entry", "POLICIES", "PREFIX"]

POLICIES = ("lru", "lfu", "ttl", "random")
PREFIX = "/cache/"


class Entry:
    """One stored item: the value's bytes, memcached-style flags, and when it expires."""

    __slots__ = ("value", "flags", "expires_at", "size")

    def __init__(self, key: str, value: bytes, flags: int, expires_at: float) -> None:
        self.value = value
        self.flags = flags
        self.expires_at = expires_at
        self.size = len(key.encode()) + len(value)

    def __repr__(self) -> str:
        return f"<Entry {self.size} B flags={self.flags} expires_at={self.expires_at}>"


@dataclass(frozen=True)
class CacheStoreStats:
    hits: int
    misses: int
    sets: int
    evictions: int
    expirations: int
    deletes: int
    too_large: int
    items: int
    bytes: int

    @property
    def hit_ratio(self) -> float:
        reads = self.hits + self.misses
        return self.hits / reads if reads else 0.0


def _counting(base: type) -> type:
    """``base`` with evictions and expirations reported to the store (the cachetools way: override popitem)."""

    class Counting(base):  # type: ignore[misc, valid-type]
        owner: "CacheStore"

        def popitem(self):
            key, value = super().popitem()
            self.owner.evictions += 1
            return key, value

        def expire(self, time=None):
            expired = super().expire(time)
            self.owner.expirations += len(expired)
            return expired

    Counting.__name__ = Counting.__qualname__ = f"Counting{base.__name__}"
    return Counting


_LRU = _counting(cachetools.LRUCache)
_LFU = _counting(cachetools.LFUCache)
_RR = _counting(cachetools.RRCache)
_TLRU = _counting(cachetools.TLRUCache)


def _entry_size(entry: Entry) -> int:
    return entry.size


def _entry_expiry(key, entry: Entry, now: float) -> float:
    return entry.expires_at


def check_capacity_items(value) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"capacity_items must be an integer, got {value!r}")
    if value < 1:
        raise ConfigError(f"capacity_items must be >= 1, got {value!r}")


def check_ttl(name: str, value) -> None:
    """A time to live: None (no expiry), 0 (never expires) or seconds > 0."""
    if value is not None:
        check_positive(name, value, allow_zero=True)


class CacheStore:
    """The cache's memory: a cachetools policy plus counters. Synchronous, no trio.

        >>> store = CacheStore(capacity_items=2)
        >>> for key in "ab": _ = store.set(key, b"v")
        >>> store.get("a").value          # "a" is now the most recently used
        b'v'
        >>> _ = store.set("c", b"v")      # full: "b", the least recently used, goes
        >>> sorted(store.keys())
        ['a', 'c']

    ``timer`` returns the current time in seconds (the simulated clock in a
    ``CacheServer``); without one, time stands still and nothing expires.
    ``rng`` drives the "random" policy. ``ttl_s`` is the default time to live.
    """

    def __init__(self, capacity_items: int, *, capacity_bytes: int | None = None, policy: str = "lru",
                 ttl_s: float | None = None, timer: Callable[[], float] | None = None,
                 rng: random.Random | None = None) -> None:
        check_capacity_items(capacity_items)
        if capacity_bytes is not None and not (isinstance(capacity_bytes, int) and not isinstance(capacity_bytes, bool)
                                               and capacity_bytes >= 1):
            raise ConfigError(f"capacity_bytes must be an integer >= 1 or None, got {capacity_bytes!r}")
        if policy not in POLICIES:
            raise ConfigError(f"policy must be one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
        check_ttl("ttl_s", ttl_s)
        if policy == "ttl" and not ttl_s:
            raise ConfigError(f"policy 'ttl' needs a default ttl_s > 0, got {ttl_s!r}")
        self.capacity_items = capacity_items
        self.capacity_bytes = capacity_bytes
        self.policy = policy
        self.ttl_s = ttl_s
        self.timer = timer or (lambda: 0.0)
        self.rng = rng or random.Random(0)
        # cachetools enforces the byte budget (math.inf when there is none); this class the item count
        maxsize = capacity_bytes if capacity_bytes is not None else math.inf
        if policy == "lru":
            cache = _LRU(maxsize, getsizeof=_entry_size)
        elif policy == "lfu":
            cache = _LFU(maxsize, getsizeof=_entry_size)
        elif policy == "random":
            cache = _RR(maxsize, choice=lambda keys: self.rng.choice(keys), getsizeof=_entry_size)
        else:
            cache = _TLRU(maxsize, ttu=_entry_expiry, timer=lambda: self.timer(), getsizeof=_entry_size)
        cache.owner = self
        self._cache = cache
        self.reset_counters()

    def reset_counters(self) -> None:
        """Start a new measurement window; the contents stay."""
        self.hits = self.misses = self.sets = self.evictions = 0
        self.expirations = self.deletes = self.too_large = 0

    # -- operations --------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        """The live entry for ``key`` (counted as a hit, and touched for LRU/LFU), or None (a miss)."""
        cache = self._cache
        if self.policy == "ttl":
            cache.expire()  # sweeps (and counts) everything expired; cheap when nothing has
        entry = cache.get(key) if key in cache else None
        if entry is not None and not self.timer() < entry.expires_at:
            self._drop(key)  # lazy expiry, as memcached and Redis do on access
            self.expirations += 1
            entry = None
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def set(self, key: str, value: bytes, *, ttl_s: float | None = None, flags: int = 0,
            if_absent: bool = False) -> bool:
        """Store ``value``; evicts by the policy if full. ``ttl_s``: None = the default, 0 = never expires.

        Returns False (and stores nothing) if the item alone exceeds ``capacity_bytes``
        or, with ``if_absent``, if a live item is already there.
        """
        check_ttl("ttl_s", ttl_s)
        if ttl_s is None:
            ttl_s = self.ttl_s
        now = self.timer()
        entry = Entry(key, bytes(value), flags, now + ttl_s if ttl_s else math.inf)
        if self.capacity_bytes is not None and entry.size > self.capacity_bytes:
            self.too_large += 1
            return False
        cache = self._cache
        if self.policy == "ttl":
            cache.expire()
        if if_absent and self.peek(key) is not None:
            return False
        if key not in cache:
            while len(cache) >= self.capacity_items:
                cache.popitem()
        cache[key] = entry
        self.sets += 1
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if a live item was there."""
        live = self.peek(key) is not None
        self._drop(key)
        if live:
            self.deletes += 1
        return live

    def clear(self) -> None:
        """Forget everything (a crash, or ``flush_all``)."""
        self._cache.clear()

    def peek(self, key: str) -> Entry | None:
        """The live entry without counting or touching it."""
        cache = self._cache
        if key not in cache:
            return None
        entry = cachetools.Cache.__getitem__(cache, key)
        return entry if self.timer() < entry.expires_at else None

    def _drop(self, key: str) -> None:
        cache = self._cache
        if cachetools.Cache.__contains__(cache, key):
            try:
                del cache[key]
            except KeyError:  # TLRUCache removes an expired item, then raises
                pass

    # -- introspection -----------------------------------------------------------------
    def keys(self) -> list[str]:
        """Keys held, including expired ones not yet dropped, in no particular order."""
        return list(cachetools.Cache.__iter__(self._cache))

    @property
    def items(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        return int(self._cache.currsize)

    def stats(self) -> CacheStoreStats:
        return CacheStoreStats(self.hits, self.misses, self.sets, self.evictions, self.expirations,
                               self.deletes, self.too_large, self.items, self.bytes)


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

    ``op_latency`` is seconds or a ``Distribution``, per operation, on one of
    ``concurrency`` slots (worker threads); ``connections`` and ``queue_limit``
    bound the requests the host accepts (beyond them: 503).
    """

    kind = "cache"

    def __init__(self, name: str, *, capacity_items: int = 10_000, capacity_bytes: int | None = None,
                 policy: str = "lru", ttl_s: float | None = None, op_latency=0.0001, concurrency: int = 4,
                 connections: int | None = 1024, queue_limit: int | None = 1024,
                 region: str | None = None) -> None:
        if not (isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1):
            raise ConfigError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        super().__init__(name, region=region, concurrency=connections, queue_limit=queue_limit)
        self.op_latency = as_distribution(op_latency, "op_latency")
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
        await self.ops.use(self.op_latency.sample(self.rng) * self.slow_factor)
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
        seconds = self.op_latency.sample(self.rng) * self.slow_factor
        self.ops.acquire_then(self._op_granted, (ex, key, method, seconds))

    def _op_granted(self, item) -> None:
        ex, key, method, seconds = item
        if ex not in self._inflight:  # failed by a crash while it waited (its task would be cancelled)
            self.sched.fired -= 1
            return
        self.sched.call_later(seconds, self._op_done, item)

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

    def utilisation(self) -> float:
        return self.ops.utilisation(self.sched.now) if self.ops is not None else 0.0

    def detail(self) -> dict[str, Any]:
        s = self.store.stats()
        d: dict[str, Any] = {"policy": self.store.policy, "hits": s.hits, "misses": s.misses, "sets": s.sets,
                             "evictions": s.evictions, "hit_ratio": s.hit_ratio, "items": s.items, "bytes": s.bytes}
        optional = {"expirations": s.expirations, "deletes": s.deletes, "too_large": s.too_large,
                    "crashes": self.crashes}
        d.update((k, v) for k, v in optional.items() if v)
        return d
