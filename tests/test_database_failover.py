"""Database failover: a monitor promotes a replica, clients follow, and the lag window is counted."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

import components
from components import (Database, DatabaseClient, DatabaseError, DNSServer, Failover, FailoverMonitor)
from playground import Client, ConfigError, RequestError, Sim, WiringError


@asynccontextmanager
async def running(sim: Sim):
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        yield
        sim.stop()


def cluster(replication: str, *, dns: bool = False) -> Sim:
    sim = Sim(seed=1)
    sim.add(Database("db", replication=replication))
    sim.add(Database("db-r1", replica_of="db", replication_lag_s=0.5))
    sim.add(Database("db-r2", replica_of="db", replication_lag_s=0.8))
    if dns:
        sim.add(DNSServer("dns", {"db.internal": ["db"]}, ttl_s=2))
    sim.add(FailoverMonitor("dbmon", primary="db", replicas=["db-r1", "db-r2"], check_interval_s=1,
                            failures_to_promote=3, promote_delay_s=2,
                            **({"dns": "dns", "record": "db.internal"} if dns else {})))
    sim.add(Client("user"))
    sim.at(5.0003, sim.crash, "db")
    return sim


async def write_until(sim: Sim, db: DatabaseClient, until_s: float, writers: int = 4):
    """Writers put distinct keys every 10 ms; returns (acknowledged keys, failed keys)."""
    acked, failed = [], []

    async def writer(w: int) -> None:
        n = 0
        while sim.now < until_s:
            key = f"w{w}-{n}"
            n += 1
            try:
                await db.put(sim["user"], key, "v")
                acked.append(key)
            except (RequestError, DatabaseError):
                failed.append(key)
            await trio.sleep(0.01)

    async with running(sim):
        async with trio.open_nursery() as nursery:
            for w in range(writers):
                nursery.start_soon(writer, w)
    return acked, failed


def missing_from_primary(sim: Sim, acked: list[str]) -> list[str]:
    primary = sim[sim["dbmon"].primary]
    rows = {key for (key,) in primary.direct("SELECT key FROM kv").rows}
    return [key for key in acked if key not in rows]


async def test_failover_promotes_a_replica_and_async_replication_loses_the_lag_window(virtual_clock):
    sim = cluster("async")
    db = DatabaseClient(endpoints=["db", "db-r1", "db-r2"])
    acked, failed = await write_until(sim, db, 15.0)
    monitor = sim["dbmon"].stats().detail
    assert monitor["failovers"] == 1 and monitor["primary"] == "db-r1"  # the most advanced replica
    lost = missing_from_primary(sim, acked)
    # about 0.5 s of writes (db-r1's lag) at ~270 writes/s were acknowledged and are gone
    assert 100 <= len(lost) <= 160
    assert monitor["lost_acknowledged_writes"] == len(lost)
    assert sim["db-r1"].stats().detail["dropped_on_promotion"] == len(lost)
    # writes failed from the crash to the promotion: 3 missed checks + 2 s of grace, ~4 s
    assert 3.9 <= monitor["last_downtime_s"] <= 4.1
    assert 900 <= len(failed) <= 1300
    assert db.stats().endpoint_switches == 1
    after = [k for k in acked if int(k.split("-")[1]) > 700]
    assert after and not set(after) & set(lost)  # writes after the failover land on the new primary


async def test_failover_promotion_with_sync_replication_loses_no_acknowledged_write(virtual_clock):
    sim = cluster("sync")
    db = DatabaseClient(endpoints=["db", "db-r1", "db-r2"])
    acked, failed = await write_until(sim, db, 15.0)
    monitor = sim["dbmon"].stats().detail
    assert monitor["failovers"] == 1 and monitor["primary"] == "db-r1"
    assert missing_from_primary(sim, acked) == []
    assert monitor["lost_acknowledged_writes"] == 0
    # the writes in flight when the primary died were never acknowledged: their clients saw an error
    assert 1 <= monitor["lost_unacknowledged_writes"] <= 4
    # the price: every write waited for a replica to apply it (0.5 s lag), so far fewer got through
    assert 30 <= len(acked) <= 120


async def test_failover_moves_the_dns_record_and_clients_follow_after_the_ttl(virtual_clock):
    sim = cluster("async", dns=True)
    db = DatabaseClient("db.internal", dns="dns")
    acked, failed = await write_until(sim, db, 15.0, writers=1)
    assert sim["dns"].records["db.internal"].addresses == ("db-r1",)
    promoted = sim["db-r1"].stats().detail["promoted_at_s"]
    assert 8.9 <= promoted <= 9.1
    last_failure = max(int(k.split("-")[1]) for k in failed)
    first_after = min(int(k.split("-")[1]) for k in acked if int(k.split("-")[1]) > last_failure)
    assert first_after > last_failure
    assert db.stats().dns_lookups >= 2
    assert sim["db-r1"].stats().detail["kv_rows"] > len(acked) - 100


async def test_failover_fences_the_old_primary_and_it_rejoins_as_a_replica(virtual_clock):
    sim = cluster("async")
    sim.at(12.0, sim.restart, "db")
    db = DatabaseClient(endpoints=["db", "db-r1", "db-r2"])
    acked, _ = await write_until(sim, db, 16.0, writers=2)
    old = sim["db"]
    assert old.replica_of == "db-r1" and not old.fenced  # rebuilt from the new primary when it came back
    detail = old.stats().detail
    assert detail["discarded_on_rejoin"] == sim["dbmon"].stats().detail["lost_acknowledged_writes"] > 0
    assert old.store.version == sim["db-r1"].store.version  # caught up: it follows the new history
    assert sim["db-r2"].replica_of == "db-r1"
    assert missing_from_primary(sim, acked[-20:]) == []


async def test_a_primary_back_within_the_grace_period_cancels_the_failover(virtual_clock):
    sim = cluster("async")
    sim.at(8.5, sim.restart, "db")  # crashed at 5: missed 6, 7, 8; grace ends at 10
    db = DatabaseClient(endpoints=["db", "db-r1", "db-r2"])
    await write_until(sim, db, 12.0, writers=1)
    monitor = sim["dbmon"].stats().detail
    assert monitor["failovers"] == 0 and monitor["cancelled"] == 1 and monitor["primary"] == "db"
    assert sim["db-r1"].replica_of == "db"


@pytest.mark.parametrize("kwargs, message", [
    ({"replicas": []}, "replicas must be a non-empty list of host names, got []"),
    ({"replicas": ["db"]}, "replicas must be distinct and must not include the primary 'db', got ['db']"),
    ({"check_interval_s": 0}, "check_interval_s must be > 0, got 0"),
    ({"promote_delay_s": float("nan")}, "promote_delay_s must be >= 0, got nan"),
    ({"failures_to_promote": 0}, "failures_to_promote must be an integer >= 1, got 0"),
    ({"dns": "dns"}, "dns and record go together (the DNS host and the name to move), got dns='dns', record=None"),
])
def test_failover_monitor_bad_configs_are_refused(kwargs, message):
    config = {"primary": "db", "replicas": ["db-r1"], **kwargs}
    with pytest.raises(ConfigError, match=f"^{re_escape(message)}$"):
        FailoverMonitor("dbmon", **config)


def re_escape(text: str) -> str:
    import re
    return re.escape(text)


def test_failover_wiring_is_checked_before_the_run():
    sim = Sim(seed=1)
    sim.add(Database("db"))
    sim.add(Database("other"))
    sim.add(FailoverMonitor("dbmon", primary="db", replicas=["other"]))
    with pytest.raises(WiringError, match=r"^monitor 'dbmon': 'other' is not a replica of 'db'$"):
        sim.validate()


@pytest.mark.parametrize("kwargs, message", [
    ({"replication": "semi"}, "replication must be 'async' or 'sync', got 'semi'"),
])
def test_database_replication_mode_is_checked(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re_escape(message)}$"):
        Database("db", **kwargs)


@pytest.mark.parametrize("args, kwargs, message", [
    (("db",), {"endpoints": ["db"]},
     "give the database as primary or as endpoints, not both, got primary='db', endpoints=['db']"),
    ((), {"endpoints": []}, "endpoints must be a non-empty list of distinct host names, got []"),
    ((), {"endpoints": ["a", "a"]}, "endpoints must be a non-empty list of distinct host names, got ['a', 'a']"),
    ((), {"endpoints": ["a"], "dns": "dns"},
     "dns resolves a primary name: give it with primary, not endpoints, got dns='dns'"),
    ((), {}, "primary must be a host name, got None"),
    (("db",), {"avoid_failed_s": -1}, "avoid_failed_s must be >= 0, got -1"),
])
def test_database_client_routing_configs_are_checked(args, kwargs, message):
    with pytest.raises(ConfigError, match=f"^{re_escape(message)}$"):
        DatabaseClient(*args, **kwargs)


def test_the_failover_names_are_exported():
    for name in ("FailoverMonitor", "Failover", "DatabaseClientStats"):
        assert getattr(components, name).__module__.startswith("components.database")
    assert Failover("a", "b", 1.0, 5.0, 0, 0).downtime_s == 4.0
