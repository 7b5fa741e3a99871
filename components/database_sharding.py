"""Sharding: several database primaries, each holding a slice of the keys, and a router that knows which.

In the real world one primary takes every write, so past its IO capacity the
only way to take more writes is to split the data: users 0-999,999 on one
cluster, the next million on another (range sharding, as in HBase or
Bigtable), or by a hash of the key (Cassandra, DynamoDB, Vitess' hash vindex).
Two things then go wrong. A hot key - a celebrity, a viral product - lives on
one shard, and under a Zipf popularity that shard saturates while the others
idle. And adding a shard with ``hash(key) % N`` moves almost every key (about
N/(N+1) of them), while a consistent-hash ring moves only the slice the new
shard takes (about 1/(N+1)).

Kept: the three policies as strategy objects with one method,
``shard_for(key, shards) -> shard name`` (``HashSharding``,
``RangeSharding(bounds)``, ``ConsistentHashSharding(vnodes)``), stable hashes
(``blake2b``, never Python's salted ``hash``), ``ShardRouter`` over one
``DatabaseClient`` per shard (each with its own replicas, endpoints and
pool), per-shard counts, and ``moved_share`` to measure a resharding. Left out:
moving the rows themselves (a resharding here is a new router over the new
shards), cross-shard queries and transactions, and secondary indexes.

    router = ShardRouter([DatabaseClient("db0"), DatabaseClient("db1")], policy=ConsistentHashSharding(100))
    db = DatabaseClient(shards=router)
    await db.put(ctx, "user:42", "ada")          # goes to the shard that owns "user:42"
"""
from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Protocol, Sequence

from playground import ConfigError

if TYPE_CHECKING:
    from .database_client import DatabaseClient

__all__ = ["ShardingPolicy", "HashSharding", "RangeSharding", "ConsistentHashSharding", "ShardRouter",
           "moved_share"]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class ShardingPolicy(Protocol):
    def shard_for(self, key: str, shards: Sequence[str]) -> str:
        """The name of the shard (one of ``shards``) that owns ``key``."""
        ...


class HashSharding:
    """``hash(key) % N``: even, simple, and a new shard moves about N/(N+1) of the keys.

        >>> HashSharding().shard_for("user:1", ["db0", "db1"]) in ("db0", "db1")
        True
    """

    def shard_for(self, key: str, shards: Sequence[str]) -> str:
        return shards[_hash(key) % len(shards)]

    def __repr__(self) -> str:
        return "HashSharding()"


class RangeSharding:
    """Sorted split points: shard i holds keys in ``[bounds[i-1], bounds[i])`` (strings compare as text).

    ``bounds`` has one entry fewer than there are shards.

        >>> RangeSharding(["m"]).shard_for("kiwi", ["a-l", "m-z"])
        'a-l'
    """

    def __init__(self, bounds: Sequence[str]) -> None:
        if isinstance(bounds, str) or not bounds or not all(isinstance(b, str) for b in bounds):
            raise ConfigError(f"bounds must be a non-empty list of key strings, got {bounds!r}")
        if list(bounds) != sorted(set(bounds)):
            raise ConfigError(f"bounds must be distinct and sorted, got {list(bounds)!r}")
        self.bounds = tuple(bounds)

    def shard_for(self, key: str, shards: Sequence[str]) -> str:
        if len(shards) != len(self.bounds) + 1:
            raise ConfigError(f"RangeSharding with {len(self.bounds)} bounds needs {len(self.bounds) + 1} shards, "
                              f"got {len(shards)}")
        return shards[bisect.bisect_right(self.bounds, key)]

    def __repr__(self) -> str:
        return f"RangeSharding({list(self.bounds)!r})"


class ConsistentHashSharding:
    """A ring with ``vnodes`` points per shard (default 100); a key belongs to the next point clockwise.

        >>> ConsistentHashSharding(vnodes=50).shard_for("user:1", ["db0", "db1"]) in ("db0", "db1")
        True
    """

    def __init__(self, vnodes: int = 100) -> None:
        if not (isinstance(vnodes, int) and not isinstance(vnodes, bool) and 1 <= vnodes <= 10_000):
            raise ConfigError(f"vnodes must be an integer between 1 and 10000, got {vnodes!r}")
        self.vnodes = vnodes
        self._rings: dict[tuple[str, ...], tuple[list[int], list[str]]] = {}

    def _ring(self, shards: Sequence[str]) -> tuple[list[int], list[str]]:
        ident = tuple(shards)
        ring = self._rings.get(ident)
        if ring is None:
            points = sorted((_hash(f"{name}#{i}"), name) for name in ident for i in range(self.vnodes))
            ring = self._rings[ident] = ([p for p, _ in points], [n for _, n in points])
            if len(self._rings) > 64:  # shard sets come and go in a resharding study: keep a few
                self._rings.pop(next(iter(self._rings)))
        return ring

    def shard_for(self, key: str, shards: Sequence[str]) -> str:
        points, names = self._ring(shards)
        i = bisect.bisect_right(points, _hash(key))
        return names[i % len(names)]

    def __repr__(self) -> str:
        return f"ConsistentHashSharding(vnodes={self.vnodes})"


def _as_policy(policy) -> ShardingPolicy:
    if callable(getattr(policy, "shard_for", None)):
        return policy
    raise ConfigError(f"policy must be a sharding policy (HashSharding(), RangeSharding(bounds), "
                      f"ConsistentHashSharding(vnodes)) or an object with shard_for(), got {policy!r}")


class ShardRouter:
    """One ``DatabaseClient`` per shard, named by its primary; ``client_for(key)`` picks the owner.

    Default policy: ``HashSharding()``.
    """

    def __init__(self, shards: Sequence["DatabaseClient"], *, policy: ShardingPolicy | None = None) -> None:
        from .database_client import DatabaseClient

        if isinstance(shards, (str, bytes)) or not shards or \
                not all(isinstance(s, DatabaseClient) and s.shards is None for s in shards):
            raise ConfigError(f"shards must be a non-empty list of DatabaseClients (one per shard), got {shards!r}")
        names = [s.primary for s in shards]
        if len(set(names)) != len(names):
            raise ConfigError(f"shards must have distinct primaries, got {names!r}")
        self.policy = _as_policy(policy if policy is not None else HashSharding())
        self.clients = {s.primary: s for s in shards}
        self.names = tuple(names)
        if isinstance(self.policy, RangeSharding):
            self.policy.shard_for("", self.names)  # the bounds must fit the shard count now, not mid-run
        self.routed: Counter[str] = Counter()

    def shard_of(self, key: str) -> str:
        """The name of the shard that owns ``key``."""
        return self.policy.shard_for(key, self.names)

    def client_for(self, key: str) -> "DatabaseClient":
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be a non-empty string, got {key!r}")
        name = self.shard_of(key)
        self.routed[name] += 1
        return self.clients[name]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for client in self.clients.values() for h in client.hosts))

    def __repr__(self) -> str:
        return f"<ShardRouter {list(self.names)} {self.policy!r}>"


def moved_share(keys: Iterable[str], policy_before: ShardingPolicy, shards_before: Sequence[str],
                policy_after: ShardingPolicy, shards_after: Sequence[str]) -> float:
    """Share of ``keys`` whose shard changes from one layout to another (what a resharding must copy).

        >>> moved_share([f"k{i}" for i in range(1000)], HashSharding(), ["a", "b"], HashSharding(), ["a", "b"])
        0.0
    """
    total = moved = 0
    for key in keys:
        total += 1
        if policy_before.shard_for(key, shards_before) != policy_after.shard_for(key, shards_after):
            moved += 1
    return moved / total if total else 0.0
