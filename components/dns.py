"""DNS: a name server that turns a name into host addresses, and the clients' caching resolvers.

In the real world a client does not know which machine serves ``www``: it asks
a name server, which answers with one or more addresses and a TTL, and the
client's resolver keeps the answer that long. Operators spread traffic over
several load balancers by giving a name several addresses (round robin),
unequal shares (weighted) or the nearest one (geo DNS), and take a failed
balancer out by removing its address - which helps only as fast as the TTL:
clients that cached the old answer keep using it until it expires.

Modelled: ``DNSServer`` (a host answering ``GET /resolve?name=<name>`` with
JSON ``{"name", "addresses", "ttl_s"}``, or 404 for an unknown name or one
with no addresses left), records changed before or during a run
(``set_records``, ``add_address``, ``remove_address``), ordering policies as
strategy objects (``RoundRobin``, ``Weighted``, ``Geo``), and ``Resolver``, the
client side: a cache per (client host, name) that honours the TTL, collapses
concurrent lookups into one query, and whose client uses the *first* address
of an answer (as most clients do). A load uses one with
``OpenLoop("www", resolver=Resolver("dns"), ...)``; a failed lookup counts as a
client error of kind ``dns``. Left out: recursive resolution and the
hierarchy (root, TLD, authoritative), negative caching, the OS and browser
caches as separate layers, trying the next address after a refused connection
(happy eyeballs), EDNS client subnet, record types other than "A".

    dns = sim.add(DNSServer("dns", {"www": ["lb1", "lb2"]}, ttl_s=30))
    sim.load(OpenLoop("www", client="users", resolver=Resolver("dns"), rate=100))
    sim.at(10, dns.remove_address, "www", "lb2")    # clients notice within 30 s
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence
from urllib.parse import parse_qs, quote

from cachetools import TLRUCache

from playground import ConfigError, Footprint, Node, Request, Response, WiringError
from playground._errors import check_positive

if TYPE_CHECKING:
    import random

    from playground import Load, Sim

__all__ = ["DNSServer", "Resolver", "Record", "DNSPolicy", "RoundRobin", "Weighted", "Geo", "ResolverStats"]


@dataclass(frozen=True)
class Record:
    """A name's addresses (host names), how long clients may cache them, optional weights."""

    name: str
    addresses: tuple[str, ...]
    ttl_s: float
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"record name must be a non-empty string, got {self.name!r}")
        if not all(isinstance(a, str) and a for a in self.addresses):
            raise ConfigError(f"addresses of {self.name!r} must be host names, got {list(self.addresses)!r}")
        if len(set(self.addresses)) != len(self.addresses):
            raise ConfigError(f"addresses of {self.name!r} must not repeat, got {list(self.addresses)!r}")
        check_positive("ttl_s", self.ttl_s, allow_zero=True)
        if self.weights is not None:
            if len(self.weights) != len(self.addresses):
                raise ConfigError(f"weights of {self.name!r} must have one entry per address "
                                  f"({len(self.addresses)}), got {len(self.weights)}")
            for w in self.weights:
                check_positive("weight", w)


# -- policies: in which order a name's addresses are given -------------------------------

RegionOf = Callable[[str], "str | None"]


class DNSPolicy(Protocol):
    def order(self, record: Record, client_region: str | None, region_of: RegionOf,
              rng: "random.Random") -> tuple[str, ...]:
        """The record's addresses, the one the client should use first."""
        ...


class RoundRobin:
    """Each answer for a name starts one address further along (BIND's default rotation)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def order(self, record: Record, client_region: str | None, region_of: RegionOf,
              rng: "random.Random") -> tuple[str, ...]:
        return self._rotate(record.name, record.addresses)

    def _rotate(self, key: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
        if not addresses:
            return addresses
        i = self._next.get(key, 0) % len(addresses)
        self._next[key] = i + 1
        return addresses[i:] + addresses[:i]


class Weighted:
    """The first address drawn with probability proportional to its weight (Route 53 weighted)."""

    def order(self, record: Record, client_region: str | None, region_of: RegionOf,
              rng: "random.Random") -> tuple[str, ...]:
        addresses = record.addresses
        if len(addresses) < 2:
            return addresses
        first = rng.choices(addresses, weights=record.weights)[0]
        return (first,) + tuple(a for a in addresses if a != first)


class Geo:
    """Addresses in the client's region first (rotated among themselves), then the rest.

    A client in a region with no address, or with no region, gets the others in
    round-robin order: the fall-back when a region's balancers are all removed.
    """

    def __init__(self) -> None:
        self._rr = RoundRobin()

    def order(self, record: Record, client_region: str | None, region_of: RegionOf,
              rng: "random.Random") -> tuple[str, ...]:
        local = tuple(a for a in record.addresses if client_region is not None and region_of(a) == client_region)
        others = tuple(a for a in record.addresses if a not in local)
        return (self._rr._rotate(f"{record.name}@{client_region}", local)
                + self._rr._rotate(f"{record.name}@*", others))


_POLICIES: dict[str, Callable[[], DNSPolicy]] = {"round_robin": RoundRobin, "weighted": Weighted, "geo": Geo}


def _as_policy(policy) -> DNSPolicy:
    if isinstance(policy, str) and policy in _POLICIES:
        return _POLICIES[policy]()
    if not isinstance(policy, str) and callable(getattr(policy, "order", None)):
        return policy
    raise ConfigError(f"policy must be 'round_robin', 'weighted', 'geo' or an object with order(), got {policy!r}")


# -- the server ------------------------------------------------------------------------------

class DNSServer(Node):
    """A name server. Defaults: ``policy="round_robin"``, ``ttl_s=30`` for records that give none.

        >>> dns = DNSServer("dns", {"www": ["lb-us", "lb-eu"]}, policy="geo", ttl_s=60)
        >>> dns.set_records("api", ["api1", "api2"], weights=[3, 1]).addresses
        ('api1', 'api2')

    Records are configuration (a zone file): they survive a crash of the server.
    """

    kind = "dns"

    def __init__(self, name: str, records: Mapping[str, Sequence[str]] | None = None, *,
                 policy: str | DNSPolicy = "round_robin", ttl_s: float = 30.0, region: str | None = None,
                 concurrency: int | None = None, queue_limit: int | None = None) -> None:
        super().__init__(name, region=region, concurrency=concurrency, queue_limit=queue_limit)
        check_positive("ttl_s", ttl_s, allow_zero=True)
        self.ttl_s = float(ttl_s)
        self.policy = _as_policy(policy)
        self.records: dict[str, Record] = {}
        for record_name, addresses in (records or {}).items():
            self.set_records(record_name, addresses)
        self.queries = self.answers = self.not_found = 0

    # -- changing records (before or during a run) ------------------------------------------
    def set_records(self, name: str, addresses: Sequence[str], *, ttl_s: float | None = None,
                    weights: Sequence[float] | None = None) -> Record:
        """Give ``name`` these addresses (replacing what it had)."""
        if isinstance(addresses, str):
            addresses = [addresses]
        record = Record(name, tuple(addresses), self.ttl_s if ttl_s is None else ttl_s,
                        None if weights is None else tuple(weights))
        if self.sim is not None and self.sim.running:
            self._check_known(record)
            self.sim.event(f"dns {name} -> {', '.join(record.addresses) or 'nothing'}")
        self.records[name] = record
        return record

    def add_address(self, name: str, address: str, *, weight: float = 1.0) -> Record:
        """Add one address to ``name`` (creating the record if needed)."""
        old = self.records.get(name)
        if old is None:
            return self.set_records(name, [address], weights=None)
        weights = None if old.weights is None else old.weights + (weight,)
        return self.set_records(name, old.addresses + (address,), ttl_s=old.ttl_s, weights=weights)

    def remove_address(self, name: str, address: str) -> Record:
        """Take ``address`` out of ``name`` (a failed balancer); clients notice when their TTL ends."""
        old = self._record(name)
        if address not in old.addresses:
            raise ConfigError(f"{address!r} is not an address of {name!r} (addresses: {', '.join(old.addresses)})")
        keep = [i for i, a in enumerate(old.addresses) if a != address]
        weights = None if old.weights is None else [old.weights[i] for i in keep]
        return self.set_records(name, [old.addresses[i] for i in keep], ttl_s=old.ttl_s, weights=weights)

    def _record(self, name: str) -> Record:
        try:
            return self.records[name]
        except KeyError:
            raise ConfigError(f"DNS {self.name!r} has no record {name!r}") from None

    def _check_known(self, record: Record) -> None:
        for address in record.addresses:
            if address not in self.sim.net.hosts:
                raise WiringError(f"DNS {self.name!r}: record {record.name!r} names unknown host {address!r}")

    def validate(self, sim: "Sim") -> None:
        super().validate(sim)
        for record in self.records.values():
            for address in record.addresses:
                if address not in sim.net.hosts:
                    raise WiringError(f"DNS {self.name!r}: record {record.name!r} names unknown host {address!r}")

    # -- answering ---------------------------------------------------------------------------
    def answer(self, name: str, client_region: str | None = None) -> tuple[tuple[str, ...], float] | None:
        """The addresses for ``name`` in the order the policy gives them, and the TTL; None if unknown."""
        record = self.records.get(name)
        if record is None or not record.addresses:
            return None
        return self.policy.order(record, client_region, self._region_of, self.rng), record.ttl_s

    def _region_of(self, host: str) -> str | None:
        node = self.net.hosts.get(host) if self.net is not None else None
        return node.region if node is not None else None

    async def handle(self, request: Request) -> Response:
        if request.route != "/resolve":
            return Response(404, body=b"try GET /resolve?name=<name>")
        self.queries += 1
        name = parse_qs(request.query).get("name", [""])[0]
        found = self.answer(name, self._region_of(request.client))
        if found is None:
            self.not_found += 1
            return Response(404, {"content-type": "application/json"},
                            json.dumps({"name": name, "error": "NXDOMAIN"}).encode())
        self.answers += 1
        addresses, ttl_s = found
        body = json.dumps({"name": name, "addresses": list(addresses), "ttl_s": ttl_s})
        return Response(200, {"content-type": "application/json"}, body.encode())

    def _attach(self, sim: "Sim", rng) -> None:
        super()._attach(sim, rng)
        self.queries = self.answers = self.not_found = 0

    def footprint(self) -> Footprint:
        """A hosted DNS service, billed by the million queries."""
        return Footprint("dns", queries=self.queries)

    def detail(self) -> dict[str, Any]:
        return {"queries": self.queries, "answers": self.answers, "not_found": self.not_found,
                "records": len(self.records)}


# -- the client side ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ResolverStats:
    """``hits`` answered from the cache; ``misses`` needed the DNS (``queries`` sent, the rest
    ``coalesced`` onto a query already on its way); ``failures`` lookups that got no address."""

    hits: int
    misses: int
    queries: int
    coalesced: int
    failures: int
    cached_names: int


class Resolver:
    """A client's caching stub resolver asking DNS host ``dns``. Defaults: ``timeout_s=2``,
    ``capacity_items=1000``. One may serve several loads: its cache is kept per client host.

        >>> r = Resolver("dns")
        >>> sim.load(OpenLoop("www", client="users-eu", region="eu", resolver=r, rate=50))  # doctest: +SKIP

    Engine protocol (``playground.Load`` calls these): ``lookup(load, name)``
    gives a fresh cached address or None; ``query(load, name, on_address)``
    asks the DNS over the network and later calls ``on_address`` with an
    address, or with None when the lookup failed; ``validate(sim, load)``.
    """

    def __init__(self, dns: str, *, timeout_s: float = 2.0, capacity_items: int = 1000) -> None:
        if not isinstance(dns, str) or not dns:
            raise ConfigError(f"dns must be the DNS server's host name, got {dns!r}")
        check_positive("timeout_s", timeout_s)
        if not (isinstance(capacity_items, int) and not isinstance(capacity_items, bool) and capacity_items >= 1):
            raise ConfigError(f"capacity_items must be >= 1, got {capacity_items!r}")
        self.dns = dns
        self.timeout_s = float(timeout_s)
        self.capacity_items = capacity_items
        self._sched = None
        self._cache: TLRUCache = TLRUCache(capacity_items, _expires_at, timer=self._now)
        self._waiting: dict[tuple[str, str], list[Callable[[str | None], None]]] = {}
        self.hits = self.misses = self.queries = self.coalesced = self.failures = 0

    def _now(self) -> float:
        return self._sched.now if self._sched is not None else 0.0

    def _bind(self, load: "Load") -> None:
        if load.sched is not self._sched:  # a new run (simulated time goes on across runs of one Sim)
            self._sched = load.sched
            self._waiting = {}
            self.hits = self.misses = self.queries = self.coalesced = self.failures = 0

    def lookup(self, load: "Load", name: str) -> str | None:
        """The address to use for ``name`` if a fresh answer is cached, else None."""
        self._bind(load)
        answer = self._cache.get((load.client, name))
        if answer is None:
            return None
        self.hits += 1
        return answer.addresses[0]

    def query(self, load: "Load", name: str, on_address: Callable[[str | None], None]) -> None:
        """Ask the DNS for ``name``; ``on_address(address or None)`` is called once it answers."""
        self._bind(load)
        self.misses += 1
        key = (load.client, name)
        waiting = self._waiting.get(key)
        if waiting is not None:
            self.coalesced += 1
            waiting.append(on_address)
            return
        self._waiting[key] = [on_address]
        self.queries += 1
        request = Request("GET", f"/resolve?name={quote(name)}", client=load.client, id=load.sim._next_request_id())
        load.net.send(load.client, self.dns, request, partial(self._answered, key), self.timeout_s)

    def _answered(self, key: tuple[str, str], result) -> None:
        answer = _parse(result)
        if answer is not None and answer.ttl_s > 0:
            self._cache[key] = answer
        address = answer.addresses[0] if answer is not None else None
        for on_address in self._waiting.pop(key, ()):
            if address is None:
                self.failures += 1
            on_address(address)

    def validate(self, sim: "Sim", load: "Load") -> None:
        """The DNS host exists and has a record for the load's target."""
        dns = sim.net.hosts.get(self.dns)
        if dns is None:
            raise WiringError(f"load {load.name!r} resolves {load.target!r} through unknown DNS host {self.dns!r}")
        records = getattr(dns, "records", None)
        if records is not None and load.target not in records:
            raise WiringError(f"load {load.name!r} resolves {load.target!r}, "
                              f"but DNS {self.dns!r} has no record for it")

    def stats(self) -> ResolverStats:
        self._cache.expire()
        return ResolverStats(self.hits, self.misses, self.queries, self.coalesced, self.failures, len(self._cache))

    def __repr__(self) -> str:
        return f"<Resolver via {self.dns!r}>"


@dataclass(frozen=True, slots=True)
class _Answer:
    addresses: tuple[str, ...]
    ttl_s: float


def _expires_at(_key, answer: _Answer, now: float) -> float:
    return now + answer.ttl_s


def _parse(result) -> _Answer | None:
    """The addresses and TTL in a DNS answer, or None (error, not found, nothing left, garbage)."""
    if not isinstance(result, Response) or result.status != 200:
        return None
    try:
        data = json.loads(result.body)
        answer = _Answer(tuple(data["addresses"]), float(data["ttl_s"]))
    except (ValueError, KeyError, TypeError):
        return None
    return answer if answer.addresses else None
