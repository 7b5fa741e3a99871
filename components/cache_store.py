"""The cache's bookkeeping: what is stored, what is evicted, what has expired.

Pure and synchronous (no trio): ``CacheStore`` wraps cachetools' policies
(``LRUCache``, ``LFUCache``, ``RRCache``, and for "ttl" ``TLRUCache``, the
cachetools TTL cache that allows a time to live per item: it sweeps expired
items, then evicts the least recently used) and counts hits, misses, sets and
evictions. Capacity in items and, optionally, in bytes (key plus value
length; no per-item overhead). Time comes from a ``timer`` callable, so TTLs
run on whatever clock the owner gives it: ``CacheServer`` gives it the
simulated one.

    store = CacheStore(1000, policy="lru", ttl_s=60, timer=lambda: now)
    store.set("user:1", b"ada"); store.get("user:1").value      # b"ada"
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import cachetools

from playground import ConfigError, limits
from playground._errors import check_at_most, check_positive

__all__ = ["CacheStore", "CacheStoreStats", "Entry", "POLICIES", "PREFIX", "check_ttl", "check_capacity_items"]

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
    check_at_most("capacity_items", value, limits.MAX_KEYS, "", "more places than any Workload has keys; "
                  "see playground.limits")


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
        if capacity_bytes is not None:
            check_at_most("capacity_bytes", capacity_bytes, 2 ** 63, "", "a cache's size in bytes; None means no limit")
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
