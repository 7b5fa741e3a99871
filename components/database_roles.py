"""A database host's role changes: promotion, following a new primary, fencing the old one.

In the real world a failover tool (Patroni, Orchestrator, RDS Multi-AZ)
promotes a replica (``pg_promote()``), points the other replicas at it, and
fences the old primary so that, if it was only cut off rather than dead, it
cannot go on taking writes: that is how a split brain (two primaries, two
diverging histories) is avoided. When the old primary comes back it does not
resume as primary: it is rebuilt from the new one (``pg_rewind`` or a fresh
base backup) and rejoins as a replica; writes only it had are discarded.

Kept: ``promote()`` (what the replica had received but not yet applied is
dropped: ``replication_lag_s`` stands for the whole delay from commit to the
replica having the write), ``follow(primary)`` (a replica that is not exactly
at the new primary's position is rebuilt from a copy), ``fence(primary)``
(the host becomes a read-only replica of the new primary at once, as if a
STONITH device or the cloud API had stopped it; a crashed host is rebuilt when
it restarts) and the count of writes discarded on rejoin. Left out: the time a
rebuild takes (it is instant), timeline files, and quorum among several monitors.

These are plain methods on ``Database`` (a mixin); ``FailoverMonitor``
(``database_failover.py``) decides when to call them.
"""
from __future__ import annotations

from typing import Any

from .database_replication import Follower, Shipper

__all__ = ["Roles"]


class Roles:
    """Mixed into ``Database``: role changes and their bookkeeping."""

    def _init_roles(self) -> None:
        self.acked_version = 0  # the newest write this host acknowledged as a primary
        self.promoted_at: float | None = None
        self.dropped_on_promotion = 0  # received but not applied when promoted
        self.fenced = False  # demoted by a failover; rebuilt from the new primary when it can
        self._fork_version = 0
        self.discarded_on_rejoin = 0  # writes only this host had, thrown away when it rejoined

    def _attach_serving(self) -> None:
        self._attach_inline()
        if self.replication == "sync" and self.replica_of is None:
            self._serve_inline = None  # a synchronous write waits for a replica: a worker task serves it

    def status(self) -> dict[str, Any]:
        """Role and position, as ``GET /status`` answers them."""
        return {"name": self.name, "role": "replica" if self.replica_of is not None else "primary",
                "replica_of": self.replica_of, "version": self.store.version, "fenced": self.fenced}

    # -- the verbs ------------------------------------------------------------------------
    def promote(self, replication: str | None = None) -> int:
        """Become a primary now; returns how many received-but-unapplied writes were dropped.

        ``replication`` ("async" or "sync") replaces this host's own setting.
        Point the other replicas at it with ``follow`` before or after: its
        shipper is rebuilt whenever its replica set changes.
        """
        if self.replica_of is None:
            return 0
        dropped = self.follower.lose_unapplied()
        self.dropped_on_promotion += dropped
        self.replica_of = None
        if replication is not None:
            self.replication = replication
        self.promoted_at = self.sim.now if self.sim is not None else 0.0
        self.acked_version = self.store.version
        self.store.keep_log = True
        self.store.log.clear()
        if self.sim is not None and self.sim.running:
            self.sim.event(f"promote {self.name} (version {self.store.version})")
        self._attach_serving()
        self._reship()
        return dropped

    def follow(self, primary: str) -> None:
        """Replicate ``primary`` from now on (a replica re-pointed after a failover)."""
        new = self.sim.net.hosts[primary]
        old = self.replica_of
        self.replica_of = primary
        self.fenced = False
        self.follower.lose_unapplied()
        if self.up:
            self._rebuild_from(new)
        if self.sim.running:
            self.sim.event(f"follow {self.name} -> {primary} (was {old})")
        new._reship()

    def fence(self, primary: str) -> None:
        """Stop being a primary: become a read-only replica of ``primary``; rebuilt when it is up."""
        self.replica_of = primary
        self.fenced = True
        self._fork_version = self.sim.net.hosts[primary].store.version  # where the histories part
        if self.shipper is not None:
            self.shipper.stop()
        self.shipper = None
        self._attach_serving()
        if self.sim is not None and self.sim.running:
            self.sim.event(f"fence {self.name} (replica of {primary})")
        if self.up:
            self._rebuild_from(self.sim.net.hosts[primary])
        self.sim.net.hosts[primary]._reship()

    # -- helpers --------------------------------------------------------------------------
    def _rebuild_from(self, primary) -> None:
        """Become an exact copy of ``primary`` unless already at its position (a base backup)."""
        if self.fenced or self.store.version != primary.store.version:
            if self.fenced:
                self.discarded_on_rejoin += max(0, self.store.version - self._fork_version)
            self.store.copy_from(primary.store)
        self.fenced = False
        self.follower = Follower(self.store)

    def on_restart(self) -> None:
        self._rejoin_if_fenced()

    def _rejoin_if_fenced(self) -> None:
        """Coming back after a failover demoted this host: rebuild from the primary it now follows."""
        if self.fenced and self.replica_of is not None:
            primary = self.sim.net.hosts.get(self.replica_of)
            if primary is not None:
                self._rebuild_from(primary)
                self.sim.event(f"rejoin {self.name} as replica of {self.replica_of}")

    def _reship(self) -> None:
        """The replica set changed: ship to the current one from a fresh task."""
        if self.replica_of is not None or self.sim is None:
            return
        replicas = self.replicas()
        if self.shipper is not None:
            self.shipper.stop()
        self.shipper = Shipper(self, replicas) if replicas else None
        if self.shipper is not None and self.up and self._nursery is not None:
            self.spawn(self.shipper.run)

    def _roles_detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.replication == "sync":
            d["replication"] = "sync"
        if self.promoted_at is not None:
            d["promoted_at_s"] = self.promoted_at
            d["dropped_on_promotion"] = self.dropped_on_promotion
        if self.discarded_on_rejoin:
            d["discarded_on_rejoin"] = self.discarded_on_rejoin
        if self.fenced:
            d["fenced"] = True
        return d
