"""Database primary failover: a monitor notices the primary is gone and promotes a replica.

In the real world a primary that dies takes every write with it until
someone - a person paged at night, or a tool such as Patroni, Orchestrator or
RDS Multi-AZ - promotes a replica, points the others at it, fences the old
primary, and moves the name clients use (a DNS record, a virtual IP). Two
numbers describe it: how long writes fail (detection + the promotion delay +
the clients noticing), and how many acknowledged writes are gone: with
asynchronous replication the primary acknowledged writes the replica had not
applied yet (the replication-lag window), and they vanish with the failover.
Synchronous replication closes that window at the price of slower writes.

Kept: health checks over the simulated network every ``check_interval_s``
(a check that times out or is refused is a failure; partitions count),
``failures_to_promote`` failures in a row, a ``promote_delay_s`` during which
a primary that answers again cancels the failover, the choice of the most
advanced reachable replica, promotion with the old primary's replication
mode, re-pointing the other replicas, fencing the old primary (it rejoins as a
replica, rebuilt from the new one, see ``database_roles.py``), and moving a
DNS record (``dns=`` and ``record=``) so clients that resolve it follow. The
audit: ``lost_acknowledged_writes`` (acknowledged by the old primary, absent
from the new one) and ``lost_unacknowledged_writes`` (committed but never
acknowledged: a client saw an error). The monitor reads the old primary's
disk to count them, as an auditor would after the fact. Left out: several
monitors agreeing (a quorum, etcd), and failing back.

    monitor = sim.add(FailoverMonitor("dbmon", primary="db", replicas=["db-r1", "db-r2"],
                                      check_interval_s=1, failures_to_promote=3, promote_delay_s=5))
    monitor.stats().detail["lost_acknowledged_writes"]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from playground import ConfigError, Node, Request, RequestError, Response, WiringError
from playground._errors import check_positive

from .database_store import loads

__all__ = ["FailoverMonitor", "Failover"]


@dataclass(frozen=True)
class Failover:
    """One promotion: when the primary was first missed, when the replica took over, what was lost."""

    old_primary: str
    new_primary: str
    first_failed_at_s: float
    promoted_at_s: float
    lost_acknowledged_writes: int
    lost_unacknowledged_writes: int

    @property
    def downtime_s(self) -> float:
        """From the first failed check to the promotion (clients may take longer: DNS TTL, retries)."""
        return self.promoted_at_s - self.first_failed_at_s


class FailoverMonitor(Node):
    """Watches ``primary``; promotes one of ``replicas`` when it stops answering.

    Defaults: a check every 1 s with a 0.5 s timeout, 3 failures in a row,
    then 5 s of grace before promoting. With ``dns`` (a ``DNSServer`` host) and
    ``record`` (a name in it), the record is pointed at the new primary.
    """

    kind = "monitor"

    def __init__(self, name: str, *, primary: str, replicas: Sequence[str], check_interval_s: float = 1.0,
                 check_timeout_s: float = 0.5, failures_to_promote: int = 3, promote_delay_s: float = 5.0,
                 dns: str | None = None, record: str | None = None, region: str | None = None) -> None:
        super().__init__(name, region=region)
        if not isinstance(primary, str) or not primary:
            raise ConfigError(f"primary must be a host name, got {primary!r}")
        if isinstance(replicas, str) or not replicas or not all(isinstance(r, str) and r for r in replicas):
            raise ConfigError(f"replicas must be a non-empty list of host names, got {replicas!r}")
        if primary in replicas or len(set(replicas)) != len(replicas):
            raise ConfigError(f"replicas must be distinct and must not include the primary {primary!r}, "
                              f"got {list(replicas)!r}")
        check_positive("check_interval_s", check_interval_s)
        check_positive("check_timeout_s", check_timeout_s)
        check_positive("promote_delay_s", promote_delay_s, allow_zero=True)
        if not (isinstance(failures_to_promote, int) and not isinstance(failures_to_promote, bool)
                and failures_to_promote >= 1):
            raise ConfigError(f"failures_to_promote must be an integer >= 1, got {failures_to_promote!r}")
        if (dns is None) != (record is None):
            raise ConfigError(f"dns and record go together (the DNS host and the name to move), "
                              f"got dns={dns!r}, record={record!r}")
        self.initial_primary = primary
        self.initial_replicas = tuple(replicas)
        self.check_interval_s = float(check_interval_s)
        self.check_timeout_s = float(check_timeout_s)
        self.failures_to_promote = failures_to_promote
        self.promote_delay_s = float(promote_delay_s)
        self.dns = dns
        self.record = record
        self._reset()

    def _reset(self) -> None:
        self.primary = self.initial_primary
        self.replicas = list(self.initial_replicas)
        self.checks = self.failed_checks = self.cancelled = 0
        self.failovers: list[Failover] = []

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self._reset()

    def downstream(self) -> tuple[str, ...]:
        return (self.initial_primary, *self.initial_replicas, *((self.dns,) if self.dns else ()))

    def validate(self, sim) -> None:
        super().validate(sim)
        from .database import Database

        for name in (self.initial_primary, *self.initial_replicas):
            if not isinstance(sim.net.hosts[name], Database):
                raise WiringError(f"monitor {self.name!r} watches {name!r}, which is not a Database")
        for name in self.initial_replicas:
            if sim.net.hosts[name].replica_of != self.initial_primary:
                raise WiringError(f"monitor {self.name!r}: {name!r} is not a replica of {self.initial_primary!r}")
        if self.dns is not None and self.record not in getattr(sim.net.hosts[self.dns], "records", {}):
            raise WiringError(f"monitor {self.name!r}: DNS {self.dns!r} has no record {self.record!r}")

    async def handle(self, request: Request) -> Response:
        return Response(404, body=b"a monitor takes no requests")

    # -- watching ---------------------------------------------------------------------------
    async def _alive(self, host: str) -> dict[str, Any] | None:
        """The host's ``/status``, or None if it did not answer in time."""
        try:
            response = await self.call(host, Request("GET", "/status"), self.check_timeout_s)
        except RequestError:
            return None
        if response.status != 200:
            return None
        return loads(response.body)

    async def run(self) -> None:
        misses, first_failed = 0, 0.0
        while True:
            await self.sleep(self.check_interval_s)
            self.checks += 1
            if await self._alive(self.primary) is not None:
                misses = 0
                continue
            self.failed_checks += 1
            misses += 1
            if misses == 1:
                first_failed = self.sim.now
            if misses < self.failures_to_promote:
                continue
            self.sim.event(f"{self.name}: primary {self.primary} missed {misses} checks; "
                           f"promoting in {self.promote_delay_s:g} s")
            if self.promote_delay_s:
                await self.sleep(self.promote_delay_s)
                if await self._alive(self.primary) is not None:  # it came back in time: stand down
                    self.cancelled += 1
                    self.sim.event(f"{self.name}: primary {self.primary} is back; failover cancelled")
                    misses = 0
                    continue
            if await self._fail_over(first_failed):
                misses = 0

    async def _fail_over(self, first_failed: float) -> bool:
        positions = []
        for name in self.replicas:
            status = await self._alive(name)
            if status is not None and status.get("role") == "replica":
                positions.append((int(status["version"]), name))
        if not positions:
            self.sim.event(f"{self.name}: no replica answers; cannot promote")
            return False
        hosts = self.sim.net.hosts
        _, chosen = max(positions, key=lambda p: (p[0], -self.replicas.index(p[1])))
        old, new = hosts[self.primary], hosts[chosen]
        new.promote(replication=old.replication)
        for name in self.replicas:
            if name != chosen:
                hosts[name].follow(chosen)
        old.fence(chosen)
        if self.dns is not None:
            hosts[self.dns].set_records(self.record, [chosen])
        have = new.store.version
        lost_acked = max(0, old.acked_version - have)
        lost_unacked = max(0, old.store.version - max(old.acked_version, have))
        self.failovers.append(Failover(self.primary, chosen, first_failed, self.sim.now, lost_acked, lost_unacked))
        self.sim.event(f"{self.name}: {chosen} is the primary; {lost_acked} acknowledged writes lost")
        self.replicas = [r for r in self.replicas if r != chosen] + [self.primary]
        self.primary = chosen
        return True

    # -- looking at it ----------------------------------------------------------------------------
    def detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {"primary": self.primary, "checks": self.checks, "failed_checks": self.failed_checks,
                             "failovers": len(self.failovers), "cancelled": self.cancelled,
                             "lost_acknowledged_writes": sum(f.lost_acknowledged_writes for f in self.failovers),
                             "lost_unacknowledged_writes": sum(f.lost_unacknowledged_writes for f in self.failovers)}
        if self.failovers:
            d["last_downtime_s"] = self.failovers[-1].downtime_s
        return d
