"""A content delivery network: edge caches near the users, in front of one origin.

In the real world a CDN (Cloudflare, Fastly, CloudFront, Akamai) runs caching
proxies in many regions. A user's request goes to the nearest edge; static
files (scripts, images, style sheets) are answered from the edge's cache, and
only a miss crosses the ocean to the origin. The origin says how long a copy
may be kept with ``cache-control: max-age=N`` (``s-maxage`` for shared caches
wins). Concurrent misses for one file are collapsed into one origin fetch
("request coalescing", nginx ``proxy_cache_lock``, Varnish's waiting list), so
a cold edge does not stampede the origin. Dynamic paths (an API, a checkout)
are passed through uncached. Every answer says what happened:
``x-cache: HIT|MISS|PASS`` and ``x-edge: <edge name>``.

Modelled: one ``CDNEdge`` host per region, a cache of ``capacity_items``
responses with least-recently-used eviction and a per-item expiry
(``cachetools.TLRUCache`` on the simulated clock), TTL from the origin's
``cache-control`` (``no-store``/``no-cache``/``private``/``max-age=0`` are not
kept) or a default ``ttl_s``, coalescing, pass-through, and a crash that loses
the cache (the edge comes back cold). Left out: routing users to the nearest
edge (anycast/GeoDNS: point each region's load at its edge, or use
``components.DNSServer`` with the geo policy), tiered caches, revalidation
(``ETag``/``304``), ``Vary``, purge APIs, byte-range requests, edge CPU cost.

The cache's expiry times are read from the simulated clock, which goes on
across runs of one ``Sim``: a second run starts with the edge as the first
left it (a crash empties it).

    cdn = CDN("cdn", origin="lb", regions=["us", "eu", "ap"]).add_to(sim)
    sim.load(OpenLoop(cdn.edge_for("eu"), client="users-eu", region="eu", rate=200))
    CDN.offload(sim.run(30))     # share of static requests the origin never saw
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from cachetools import TLRUCache
from outcome import Value
from trio.lowlevel import Abort, current_task, wait_task_rescheduled

from playground import ConfigError, Footprint, Node, Request, RequestError, Response
from playground._errors import check_positive

if TYPE_CHECKING:
    from playground import Report, Sim

__all__ = ["CDNEdge", "CDN", "EdgeCache", "cache_ttl_s"]

_UNCACHEABLE = ("no-store", "no-cache", "private")


def cache_ttl_s(headers: dict[str, str], default_ttl_s: float) -> float:
    """Seconds a shared cache may keep a response, from its ``cache-control`` header.

        >>> cache_ttl_s({"cache-control": "public, max-age=60"}, 300.0)
        60.0
        >>> cache_ttl_s({"cache-control": "no-store"}, 300.0)
        0.0
    """
    directives: dict[str, str] = {}
    for part in headers.get("cache-control", "").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            directives[key.lower()] = value.strip().strip('"')
    if any(d in directives for d in _UNCACHEABLE):
        return 0.0
    for key in ("s-maxage", "max-age"):  # s-maxage is meant for shared caches and wins
        if key in directives:
            try:
                return max(0.0, float(int(directives[key])))
            except ValueError:
                return 0.0  # a malformed max-age is treated as stale (RFC 9111, 4.2.1)
    return float(default_ttl_s)


@dataclass(frozen=True, slots=True)
class _Entry:
    response: Response
    ttl_s: float


class EdgeCache:
    """Responses by path: at most ``capacity_items``, least recently used evicted first,
    each expiring ``ttl_s`` after it was stored, on the clock ``now`` (a function).

        >>> cache = EdgeCache(2, now=lambda: 0.0)
        >>> cache.put("/static/a.js", Response(200, body=b"a"), ttl_s=60.0); cache.get("/static/a.js").body
        b'a'
    """

    def __init__(self, capacity_items: int, now: Callable[[], float]) -> None:
        self._cache: TLRUCache = TLRUCache(capacity_items, _expires_at, timer=now)

    def get(self, path: str) -> Response | None:
        entry = self._cache.get(path)
        return entry.response if entry is not None else None

    def put(self, path: str, response: Response, ttl_s: float) -> None:
        if ttl_s > 0:
            self._cache[path] = _Entry(response, ttl_s)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        self._cache.expire()
        return len(self._cache)


def _expires_at(_key, entry: _Entry, now: float) -> float:
    return now + entry.ttl_s


class _Flight:
    """One origin fetch and the edge workers waiting for it (request coalescing)."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[list] = []  # [task, wake-up timer or None]

    async def wait(self) -> Response | RequestError:
        entry = [current_task(), None]
        self.waiters.append(entry)

        def abort(_raise_cancel):  # the edge crashed while this worker waited
            if entry[1] is not None:
                entry[1].cancel()
            elif entry in self.waiters:
                self.waiters.remove(entry)
            return Abort.SUCCEEDED

        return await wait_task_rescheduled(abort)

    def finish(self, sched, result) -> None:
        for entry in self.waiters:  # through the heap, one task per wake-up: deterministic order
            entry[1] = sched.wake(entry[0], Value(result))
        self.waiters = []


def _stamp(response: Response, cache: str, edge: str) -> Response:
    headers = dict(response.headers)
    headers["x-cache"] = cache
    headers["x-edge"] = edge
    return Response(response.status, headers, response.body)


class CDNEdge(Node):
    """An edge cache in one region, in front of host ``origin``.

        >>> sim.add(CDNEdge("cdn-eu", "lb", region="eu", capacity_items=5000))   # doctest: +SKIP

    Defaults: ``static_prefixes=("/static",)``, ``capacity_items=10_000``,
    ``ttl_s=300`` (when the origin sends no ``max-age``), ``origin_timeout_s=10``,
    unbounded concurrency.
    """

    kind = "cdn-edge"

    def __init__(self, name: str, origin: str, *, region: str | None = None,
                 static_prefixes: Sequence[str] = ("/static",), capacity_items: int = 10_000,
                 ttl_s: float = 300.0, origin_timeout_s: float = 10.0, concurrency: int | None = None,
                 queue_limit: int | None = None) -> None:
        super().__init__(name, region=region, concurrency=concurrency, queue_limit=queue_limit)
        if not isinstance(origin, str) or not origin:
            raise ConfigError(f"origin must be a host name, got {origin!r}")
        prefixes = (static_prefixes,) if isinstance(static_prefixes, str) else tuple(static_prefixes)
        if not prefixes or not all(isinstance(p, str) and p.startswith("/") for p in prefixes):
            raise ConfigError(f"static_prefixes must be paths starting with '/', got {static_prefixes!r}")
        if not (isinstance(capacity_items, int) and not isinstance(capacity_items, bool) and capacity_items >= 1):
            raise ConfigError(f"capacity_items must be >= 1, got {capacity_items!r}")
        check_positive("ttl_s", ttl_s, allow_zero=True)
        check_positive("origin_timeout_s", origin_timeout_s)
        self.origin = origin
        self.static_prefixes = prefixes
        self.capacity_items = capacity_items
        self.ttl_s = float(ttl_s)
        self.origin_timeout_s = float(origin_timeout_s)
        self.cache = EdgeCache(capacity_items, self._now)
        self._flights: dict[str, _Flight] = {}
        self._epoch = 0  # bumped by a crash: answers to fetches sent before it are dropped
        self._clock = None
        self._reset_counters()

    def _now(self) -> float:
        return self.sched.now if self.sched is not None else 0.0

    def _reset_counters(self) -> None:
        self.hits = self.misses = self.passes = self.coalesced = 0
        self.origin_fetches = self.origin_errors = 0
        self.bytes_served = self.bytes_from_origin = 0

    # -- Node hooks -------------------------------------------------------------------
    def downstream(self) -> tuple[str, ...]:
        return (self.origin,)

    def _attach(self, sim: "Sim", rng) -> None:
        super()._attach(sim, rng)
        self._flights = {}
        self._reset_counters()

    def on_crash(self) -> None:
        self.cache.clear()  # the cache lives in process memory: the edge comes back cold
        self._flights = {}
        self._epoch += 1

    def is_static(self, request: Request) -> bool:
        """Cacheable: a GET for a path under one of ``static_prefixes``."""
        return request.method == "GET" and request.route.startswith(self.static_prefixes)

    # -- serving ------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        if not self.is_static(request):
            self.passes += 1
            response = await self.call(self.origin, request.copy(), self.origin_timeout_s)
            return self._served(response, "PASS")
        cached = self.cache.get(request.path)
        if cached is not None:
            self.hits += 1
            return self._served(cached, "HIT")
        self.misses += 1
        result = await self._fetch(request)
        if isinstance(result, RequestError):
            raise result  # the engine turns it into a 502/504 for this client
        return self._served(result, "MISS")

    def _served(self, response: Response, cache: str) -> Response:
        self.bytes_served += len(response.body)
        return _stamp(response, cache, self.name)

    async def _fetch(self, request: Request) -> Response | RequestError:
        """Wait for the origin's answer for this path, starting a fetch unless one is on its way."""
        path = request.path
        flight = self._flights.get(path)
        if flight is None:
            flight = self._flights[path] = _Flight()
            self.origin_fetches += 1
            self.net.send(self.name, self.origin, request.copy(), partial(self._fetched, path, self._epoch),
                          self.origin_timeout_s)
        else:
            self.coalesced += 1
        return await flight.wait()

    def _fetched(self, path: str, epoch: int, result) -> None:
        """The origin answered (runs inside the scheduler)."""
        if epoch != self._epoch:
            return  # sent before a crash: the workers waiting for it are gone
        flight = self._flights.pop(path, None)
        if isinstance(result, Response):
            self.bytes_from_origin += len(result.body)
            if result.status == 200:
                self.cache.put(path, result, cache_ttl_s(result.headers, self.ttl_s))
        else:
            self.origin_errors += 1
        if flight is not None:
            flight.finish(self.sched, result)

    # -- introspection --------------------------------------------------------------------
    @property
    def hit_ratio(self) -> float:
        """Share of static requests answered from the cache."""
        static = self.hits + self.misses
        return self.hits / static if static else 0.0

    def footprint(self) -> Footprint:
        """An edge location of a CDN, billed by the GB it serves."""
        return Footprint("cdn", gb_served=self.bytes_served / 1e9)

    def detail(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "passes": self.passes,
            "hit_ratio": self.hit_ratio,
            "origin_fetches": self.origin_fetches,
            "coalesced": self.coalesced,
            "origin_errors": self.origin_errors,
            "bytes_served": self.bytes_served,
            "bytes_from_origin": self.bytes_from_origin,
            "cached_items": len(self.cache),
        }


class CDN:
    """One ``CDNEdge`` per region for one origin, named ``<name>-<region>``.

        cdn = CDN("cdn", origin="lb", regions=["us", "eu", "ap"]).add_to(sim)
        cdn.edge_for("eu")        # "cdn-eu": point the EU users' load at it

    Extra keyword arguments (``capacity_items``, ``ttl_s``, ``static_prefixes``,
    ...) are passed to every edge.
    """

    def __init__(self, name: str, origin: str, regions: Iterable[str], **edge_options: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"CDN name must be a non-empty string, got {name!r}")
        if isinstance(regions, str):
            regions = [regions]
        regions = list(regions)
        if not regions or not all(isinstance(r, str) and r for r in regions):
            raise ConfigError(f"regions must be a non-empty list of region names, got {regions!r}")
        if len(set(regions)) != len(regions):
            raise ConfigError(f"regions must not repeat, got {regions!r}")
        self.name = name
        self.origin = origin
        self.edges: dict[str, CDNEdge] = {
            r: CDNEdge(f"{name}-{r}", origin, region=r, **edge_options) for r in regions
        }

    def add_to(self, sim: "Sim") -> "CDN":
        """Add every edge to ``sim``; returns the CDN."""
        for region, edge in self.edges.items():
            sim.add(edge, region=region)
        return self

    def edge_for(self, region: str) -> str:
        """The host name of the edge serving ``region``."""
        edge = self.edges.get(region)
        if edge is None:
            raise ConfigError(f"CDN {self.name!r} has no edge in region {region!r} "
                              f"(regions: {', '.join(self.edges)})")
        return edge.name

    @staticmethod
    def offload(report: "Report") -> float:
        """Share of static requests at the edges that the origin never saw (0..1).

        ``1 - origin fetches / (hits + misses)`` over every ``CDNEdge`` in ``report``.
        """
        static = fetched = 0
        for stats in report.components.values():
            if stats.kind == CDNEdge.kind:
                static += stats.detail["hits"] + stats.detail["misses"]
                fetched += stats.detail["origin_fetches"]
        return 1.0 - fetched / static if static else 0.0

    def __repr__(self) -> str:
        return f"<CDN {self.name!r} origin={self.origin!r} edges={', '.join(e.name for e in self.edges.values())}>"
