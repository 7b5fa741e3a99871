"""Replication: a primary ships its log, a replica applies it a little later.

In the real world a read replica (a PostgreSQL standby, a MySQL replica) holds
a connection to its primary, receives each committed write from the log and
replays it. By default it is asynchronous: the primary acknowledges a write before any
replica has it, so a read from a replica right after a write can return the old
value, and the replica reports how far behind it is.

Kept: one shipping task per replica on the primary (``Shipper``), woken by
each commit and otherwise sending a heartbeat every second, batches over the
simulated network (so partitions, latency and a crashed replica apply), a lag
between a batch's arrival and its replay (``Follower``), in-order application,
and catch-up: a replica answers every batch with its position, so after a crash
(which loses what it had received but not applied) the primary ships again
from there. Left out: the replica's IO cost of replaying and conflict handling
(replicas are read-only).

Synchronous replication (``Database(replication="sync")``, like PostgreSQL's
``synchronous_standby_names = 'ANY 1 (...)'``): each batch asks the replica to
answer only once it has applied it, and a write is acknowledged when at least
one replica has applied it (``Shipper.wait_applied``). The price is the
replica's lag and a round trip on every write; the gain is that the replica a
failover promotes has every acknowledged write (``database_failover.py``).

``Follower`` is plain synchronous logic; only ``Shipper`` waits.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import Abort, current_task, wait_task_rescheduled

from playground import LatencyHistogram, Request, RequestError

from .database_store import LogEntry, SqlStore, dumps, loads

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Shipper", "Follower", "CommitSignal"]

SHIP_BATCH_ENTRIES = 500
HEARTBEAT_S = 1.0
SHIP_RETRY_S = 0.2
SHIP_TIMEOUT_S = 2.0
SYNC_SHIP_TIMEOUT_S = 30.0  # a synchronous batch is answered after the replica's lag


class Follower:
    """A replica's side: batches received, each waiting out the lag, then applied in version order.

        >>> f = Follower(SqlStore())
        >>> f.receive({"head": 1, "entries": [[1, "CREATE TABLE t (x)", [], 0.0]]}, now=0.0, lag_s=0.5)
        0.5
        >>> f.apply_due(now=0.5), f.store.version
        (1, 1)
    """

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.pending: deque[tuple[float, LogEntry]] = deque()  # (apply at, entry), in version order
        self.received = store.version
        self.primary_version = store.version
        self.last_due = 0.0
        self.apply_lag = LatencyHistogram()  # commit on the primary -> applied here
        self.apply_errors = 0

    def receive(self, batch: dict[str, Any], now: float, lag_s: float) -> float | None:
        """Queue the batch's new entries to apply ``lag_s`` from now; returns when (None if nothing new)."""
        self.primary_version = max(self.primary_version, int(batch["head"]))
        due = max(now + lag_s, self.last_due)  # never overtake an earlier batch
        added = False
        for item in batch["entries"]:
            entry = LogEntry.from_json(item)
            if entry.version <= self.received:
                continue  # a resend of what we already have
            if entry.version != self.received + 1:
                break  # a gap (writes lost in a crash): the primary rewinds to the position we report
            self.pending.append((due, entry))
            self.received = entry.version
            added = True
        if not added:
            return None
        self.last_due = due
        return due

    def position(self) -> dict[str, int]:
        return {"received": self.received, "applied": self.store.version}

    def apply_due(self, now: float) -> int:
        """Apply every entry whose time has come; returns how many."""
        pending, applied = self.pending, 0
        while pending and pending[0][0] <= now:
            _, entry = pending.popleft()
            try:
                self.store.apply(entry)
            except Exception:  # a replay that fails here means the replica diverged: counted, not fatal
                self.apply_errors += 1
            self.apply_lag.record(max(0.0, now - entry.committed_at))
            applied += 1
        return applied

    def lose_unapplied(self) -> int:
        """The replica crashed (or is promoted): what it had received but not applied is gone; how many."""
        lost = len(self.pending)
        self.pending.clear()
        self.received = self.store.version
        return lost

    @property
    def behind_versions(self) -> int:
        return max(0, self.primary_version - self.store.version)


class Shipper:
    """The primary's side: one task per replica sends the log from where that replica says it is."""

    def __init__(self, primary: "Database", replicas: tuple[str, ...]) -> None:
        self.primary = primary
        self.store = primary.store
        self.replicas = replicas
        self.commits = CommitSignal(primary.sched)
        self.confirmations = CommitSignal(primary.sched)  # a replica reported a newer applied version
        self.sync = primary.replication == "sync"
        self.applied: dict[str, int] = {}  # each replica's last reported applied version
        self._scope: trio.CancelScope | None = None

    @property
    def confirmed(self) -> int:
        """The newest version some replica has applied (what a synchronous write waits for)."""
        return max(self.applied.values(), default=0)

    async def wait_applied(self, version: int) -> None:
        """Return once some replica has applied ``version`` (synchronous replication)."""
        while self.confirmed < version:
            await self.confirmations.wait(HEARTBEAT_S)

    def committed(self) -> None:
        """A write committed: wake the shipping tasks."""
        self.commits.notify()

    async def run(self) -> None:
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                for name in self.replicas:
                    nursery.start_soon(self._ship, name)

    def stop(self) -> None:
        """Stop shipping (the replica set changed, or this host is no longer a primary)."""
        if self._scope is not None:
            self._scope.cancel()

    async def _ship(self, replica: str) -> None:
        primary, store = self.primary, self.store
        known: int | None = None  # the replica's position; learned from its first answer
        while True:
            if known is not None and known >= store.version:
                await self.commits.wait(HEARTBEAT_S)
            entries = store.log_after(known, SHIP_BATCH_ENTRIES) if known is not None else []
            batch: dict[str, Any] = {"primary": primary.name, "head": store.version,
                                     "entries": [e.to_json() for e in entries]}
            if self.sync:
                batch["sync"] = True
            try:
                response = await primary.call(replica, Request("POST", "/replication/apply", body=dumps(batch)),
                                              SYNC_SHIP_TIMEOUT_S if self.sync else SHIP_TIMEOUT_S)
            except RequestError:
                response = None
            if response is None or response.status != 200:
                await primary.sleep(SHIP_RETRY_S)  # down, partitioned or overloaded: try again soon
                continue
            position = loads(response.body)
            known = int(position["received"])
            applied = int(position["applied"])
            if applied > self.applied.get(replica, -1):
                self.applied[replica] = applied
                self.confirmations.notify()
            if len(self.applied) == len(self.replicas):
                store.trim_log(min(self.applied.values()))

    def detail(self) -> dict[str, Any]:
        if not self.applied:
            return {"replicas": len(self.replicas)}
        return {"replicas": len(self.replicas),
                "replicas_behind_max": self.store.version - min(self.applied.values()),
                "log_entries": len(self.store.log)}


class CommitSignal:
    """Wakes waiting tasks at the next commit, or after a timeout, through the scheduler's heap."""

    def __init__(self, sched) -> None:
        self.sched = sched
        self._waiting: list[list] = []  # [task, pending timer, woken]

    def notify(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            self._wake(waiter)

    def _wake(self, waiter: list) -> None:
        if waiter[2]:
            return
        waiter[2] = True
        waiter[1].cancel()
        waiter[1] = self.sched.wake(waiter[0], None)

    def _time_out(self, waiter: list) -> None:
        if waiter in self._waiting:
            self._waiting.remove(waiter)
        self._wake(waiter)

    async def wait(self, timeout_s: float) -> None:
        waiter = [current_task(), None, False]
        waiter[1] = self.sched.call_later(timeout_s, self._time_out, waiter)
        self._waiting.append(waiter)

        def abort(_raise_cancel):
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            waiter[1].cancel()  # the timeout, or a wake-up already on its way
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
