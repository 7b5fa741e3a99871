"""Load-balancing policies: which backend gets the next request (or connection).

A real balancer (nginx ``upstream``, HAProxy ``balance``, Envoy's ``lb_policy``)
keeps the list of backends it may use and asks a small algorithm to pick one.
Each policy here is that algorithm as a strategy object with one method,
``choose(backends, request, rng) -> name``, in the shape of Ciw's routing
classes: the balancer decides *which* backends are eligible (healthy, not
ejected, in the routed pool) and the policy picks among them.

    policy = LeastConnections()
    name = policy.choose([BackendState("a", active=3), BackendState("b", active=1)], request, rng)  # "b"

The policies are pure: no trio, no clock, randomness only from the ``rng`` the
caller passes, and hashing with stable hashes (``zlib.crc32``,
``hashlib.blake2b``), never Python's per-process salted ``hash()``, so a seed
repeats a run exactly. Some keep a little state (a round-robin position, the
smooth weighted counters, a cached hash ring), as their real counterparts do.

Modelled: round robin, smooth weighted round robin (nginx's algorithm),
weighted random, least connections (active/weight), power of two choices
(Mitzenmacher; Envoy's default "least request"), source-address hashing
(nginx ``ip_hash``, modulo the eligible set) and consistent hashing on a ring
with virtual nodes (Karger et al.; ketama) keyed by a header, the path or the
client. Left out: latency-aware policies (EWMA, "peak EWMA") and Maglev tables.
"""
from __future__ import annotations

import bisect
import hashlib
import random
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, Sequence

from playground import ConfigError, Request

__all__ = [
    "BackendState",
    "Policy",
    "RoundRobin",
    "WeightedRoundRobin",
    "Random",
    "LeastConnections",
    "PowerOfTwoChoices",
    "SourceIPHash",
    "ConsistentHash",
    "stable_hash64",
]


@dataclass(slots=True)
class BackendState:
    """What a policy may look at: a backend's name, its current weight and its in-flight requests.

    ``weight`` is the *effective* weight (the configured one, reduced during slow start).
    """

    name: str
    weight: float = 1.0
    active: int = 0


class Policy(Protocol):
    """Anything with ``choose(backends, request, rng) -> backend name``."""

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str: ...


def stable_hash64(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike ``hash()``)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def _load(b: BackendState) -> float:
    return (b.active + 1) / b.weight if b.weight > 0 else float("inf")


def _pick_tied(candidates: list[BackendState], rng: random.Random) -> str:
    return candidates[0].name if len(candidates) == 1 else candidates[int(rng.random() * len(candidates))].name


class RoundRobin:
    """Each backend in turn, ignoring weights and load.

    The turn goes round the ring of every backend seen, not the list passed in:
    when one is left out (tried already, unhealthy), its turn passes to the next
    in the ring, so a dead backend's share is spread, not all given to one other.
    """

    def __init__(self) -> None:
        self._next = 0
        self._ring: dict[str, int] = {}  # backend name -> its place, in order of first sight

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        ring = self._ring
        for b in backends:
            if b.name not in ring:
                ring[b.name] = len(ring)
        n, start = len(ring), self._next
        for chosen in backends:  # the usual case: the backend whose turn it is was offered
            if ring[chosen.name] == start:
                break
        else:  # the nearest after it in the ring
            chosen = min(backends, key=lambda b: (ring[b.name] - start) % n)
        self._next = (ring[chosen.name] + 1) % n
        return chosen.name

    def __repr__(self) -> str:
        return "RoundRobin()"


class WeightedRoundRobin:
    """nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, not a a a a a b c.

    Every pick adds each backend's weight to its counter, takes the largest
    counter and subtracts the total weight from it.
    """

    def __init__(self) -> None:
        self._current: dict[str, float] = {}

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        current = self._current
        total = 0.0
        best: BackendState | None = None
        best_value = 0.0
        for b in backends:
            value = current.get(b.name, 0.0) + b.weight
            current[b.name] = value
            total += b.weight
            if best is None or value > best_value:
                best, best_value = b, value
        current[best.name] = best_value - total
        return best.name

    def __repr__(self) -> str:
        return "WeightedRoundRobin()"


class Random:
    """A random backend, with probability proportional to its weight."""

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        total = sum(b.weight for b in backends)
        x = rng.random() * total
        for b in backends:
            x -= b.weight
            if x < 0:
                return b.name
        return backends[-1].name

    def __repr__(self) -> str:
        return "Random()"


class LeastConnections:
    """The backend with the fewest in-flight requests per unit of weight; ties broken at random."""

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        best = min(_load(b) for b in backends)
        return _pick_tied([b for b in backends if _load(b) == best], rng)

    def __repr__(self) -> str:
        return "LeastConnections()"


class PowerOfTwoChoices:
    """Two distinct backends at random, the less loaded of them (first drawn on a tie).

    Nearly as even as least connections, without a global view: the choice
    balancers scale with (Envoy's "least request" default).
    """

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        n = len(backends)
        if n == 1:
            return backends[0].name
        i = int(rng.random() * n)
        j = int(rng.random() * (n - 1))
        if j >= i:
            j += 1
        a, b = backends[i], backends[j]
        return b.name if _load(b) < _load(a) else a.name

    def __repr__(self) -> str:
        return "PowerOfTwoChoices()"


class SourceIPHash:
    """The same client to the same backend while the set does not change (nginx ``ip_hash``).

    ``crc32(client) mod n`` over the eligible backends: when one leaves, most
    clients move - which is what ``ConsistentHash`` avoids.
    """

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        return backends[zlib.crc32(request.client.encode("utf-8")) % len(backends)].name

    def __repr__(self) -> str:
        return "SourceIPHash()"


_KEYS = ("path", "client", "header")


class ConsistentHash:
    """A hash ring with ``vnodes`` points per unit of weight; a key goes to the next point clockwise.

    ``key`` is ``"path"`` (the path without its query), ``"client"`` or
    ``"header"`` (the value of ``header``; requests without it fall back to the
    client). When a backend leaves, only the keys it held move; the others keep
    their backend. Defaults: key "path", 100 virtual nodes.

        >>> ConsistentHash(key="header", header="x-user-id")
        ConsistentHash(key='header', header='x-user-id', vnodes=100)
    """

    def __init__(self, key: str = "path", *, header: str | None = None, vnodes: int = 100) -> None:
        if key not in _KEYS:
            raise ConfigError(f"ConsistentHash key must be one of 'path', 'client', 'header', got {key!r}")
        if key == "header" and not (isinstance(header, str) and header):
            raise ConfigError(f"ConsistentHash key 'header' needs a header name, got {header!r}")
        if key != "header" and header is not None:
            raise ConfigError(f"ConsistentHash header is only used with key='header', got key={key!r}")
        if not (isinstance(vnodes, int) and not isinstance(vnodes, bool) and vnodes >= 1):
            raise ConfigError(f"vnodes must be an integer >= 1, got {vnodes!r}")
        self.key = key
        self.header = header.lower() if header else None
        self.vnodes = vnodes
        self._rings: OrderedDict[tuple, tuple[list[int], list[str]]] = OrderedDict()

    def key_of(self, request: Request) -> str:
        if self.key == "path":
            return request.route
        if self.key == "header":
            value = request.headers.get(self.header)
            if value is not None:
                return value
        return request.client

    def _ring(self, backends: Sequence[BackendState]) -> tuple[list[int], list[str]]:
        ident = tuple((b.name, max(1, round(b.weight * self.vnodes))) for b in backends)
        ring = self._rings.get(ident)
        if ring is not None:
            self._rings.move_to_end(ident)
            return ring
        points = sorted((stable_hash64(f"{name}#{i}"), name) for name, count in ident for i in range(count))
        ring = ([p for p, _ in points], [n for _, n in points])
        self._rings[ident] = ring
        if len(self._rings) > 16:  # the eligible set changes rarely; keep the last few rings
            self._rings.popitem(last=False)
        return ring

    def choose(self, backends: Sequence[BackendState], request: Request, rng: random.Random) -> str:
        hashes, names = self._ring(backends)
        i = bisect.bisect(hashes, stable_hash64(self.key_of(request)))
        return names[i % len(names)]

    def __repr__(self) -> str:
        return f"ConsistentHash(key={self.key!r}, header={self.header!r}, vnodes={self.vnodes})"


_POLICIES = ("RoundRobin", "WeightedRoundRobin", "Random", "LeastConnections", "PowerOfTwoChoices", "SourceIPHash",
             "ConsistentHash")


def policy_hint(policy) -> str:
    """For a balancer given a name where a policy object goes: which object that name means."""
    if not isinstance(policy, str):
        return ""
    wanted = policy.replace("_", "").replace("-", "").replace(" ", "").lower()
    for name in _POLICIES:
        if name.lower() == wanted or (wanted in ("p2c", "poweroftwo") and name == "PowerOfTwoChoices"):
            return f": a policy is an object, write policy={name}() (from components import {name})"
    return f": a policy is an object, one of {', '.join(n + '()' for n in _POLICIES)} (from components)"
