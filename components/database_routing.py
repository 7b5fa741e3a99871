"""Where a ``DatabaseClient`` sends a statement: which primary, which replica.

In the real world a driver finds the primary in one of two ways: a list of
hosts it tries in turn until one accepts writes (libpq's
``host=a,b,c target_session_attrs=read-write``, the MongoDB driver's seed
list), or a DNS name that the failover tool moves (RDS's cluster endpoint).
Reads go to the nearest replica that is well (Aurora's reader endpoint in the
same zone, Vitess' cell-local replicas): a replica across an ocean costs a
round trip of 100 ms or more, while one in the same region costs a
millisecond.

Kept: ``Endpoints`` (try hosts in order, stay with the one that took the
last write, move on when one refuses the connection or answers that it is a
read-only replica), ``DnsName`` (resolve the name through a ``DNSServer``
host, cached per calling host for the record's TTL: clients follow a moved
record only once their cached answer expires), ``ReplicaChooser`` (replicas
ranked for each calling host: same region first, then by the link's mean
latency; ties take turns; a replica that failed is skipped for
``avoid_failed_s``). Left out: measuring latency at run time (the ranking
reads the configured links), weights, and a write retried after a timeout
(it may or may not have committed: that error is passed to the caller).
"""
from __future__ import annotations

import json
from typing import Any, Sequence
from urllib.parse import quote

from playground import Request

__all__ = ["ReplicaChooser", "Endpoints", "DnsName", "host_of"]


def host_of(caller: Any):
    """The ``Node`` making a call: the caller itself, or an app server's ``Context``'s server."""
    return getattr(caller, "server", caller)


class ReplicaChooser:
    """Ranks replicas for each calling host and remembers which failed lately.

        >>> chooser = ReplicaChooser(("db-eu", "db-us"), avoid_failed_s=5.0)
    """

    def __init__(self, replicas: Sequence[str], avoid_failed_s: float) -> None:
        self.replicas = tuple(replicas)
        self.avoid_failed_s = avoid_failed_s
        self._ranked: dict[str, tuple[tuple[str, ...], int]] = {}  # caller -> (nearest first, size of the nearest tie)
        self._failed_until: dict[str, float] = {}
        self._turn: dict[str, int] = {}

    def _rank(self, host) -> tuple[tuple[str, ...], int]:
        ranked = self._ranked.get(host.name)
        if ranked is None:
            net = host.net

            def key(replica: str) -> tuple[int, float]:
                node = net.hosts.get(replica)
                same = node is not None and host.region is not None and node.region == host.region
                return (0 if same else 1, round(net.route(host.name, replica)[0].latency_s.mean_s, 9))

            order = sorted(self.replicas, key=key)  # stable: ties keep the list order
            ties = sum(1 for r in order if key(r) == key(order[0])) if order else 0
            ranked = self._ranked[host.name] = (tuple(order), ties)
        return ranked

    def order(self, host, now: float) -> list[str]:
        """Healthy replicas for ``host``, the one to try first at the front."""
        order, ties = self._rank(host)
        if ties > 1:  # equally near replicas share the reads
            turn = self._turn.get(host.name, 0)
            self._turn[host.name] = turn + 1
            i = turn % ties
            order = order[i:ties] + order[:i] + order[ties:]
        failed = self._failed_until
        return [r for r in order if failed.get(r, 0.0) <= now]

    def failed(self, replica: str, now: float) -> None:
        self._failed_until[replica] = now + self.avoid_failed_s

    def forget(self) -> None:
        """A new run: the topology or the faults may differ."""
        self._ranked.clear()
        self._failed_until.clear()
        self._turn.clear()


class Endpoints:
    """A host list tried in turn for writes; the one that accepted the last write goes first."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.hosts = tuple(hosts)
        self.current = 0
        self.switches = 0

    def order(self) -> list[str]:
        i = self.current
        return list(self.hosts[i:] + self.hosts[:i])

    def settle(self, host: str) -> None:
        """``host`` took a write: start there next time."""
        i = self.hosts.index(host)
        if i != self.current:
            self.current = i
            self.switches += 1


class DnsName:
    """A name resolved through DNS host ``dns``, cached per calling host until its TTL runs out."""

    def __init__(self, dns: str, name: str, timeout_s: float) -> None:
        self.dns = dns
        self.name = name
        self.timeout_s = timeout_s
        self._cache: dict[str, tuple[str, float]] = {}  # caller -> (address, expires at)
        self.lookups = self.failures = 0

    async def resolve(self, caller) -> str | None:
        """The name's first address for this caller (asking the DNS when the cached one expired)."""
        host = host_of(caller)
        cached = self._cache.get(host.name)
        if cached is not None and cached[1] > host.sched.now:
            return cached[0]
        self.lookups += 1
        try:
            response = await caller.call(self.dns, Request("GET", f"/resolve?name={quote(self.name)}"),
                                         self.timeout_s)
            data = json.loads(response.body) if response.status == 200 else {}
            address, ttl_s = data["addresses"][0], float(data["ttl_s"])
        except Exception:  # no answer, NXDOMAIN or garbage: this call fails, the next one asks again
            self.failures += 1
            return None
        self._cache[host.name] = (address, host.sched.now + ttl_s)
        return address

    def forget(self) -> None:
        self._cache.clear()
