"""The largest (and smallest) values the playground accepts, and why.

A simulation in one process pays for every simulated event with real
computing: about a million events take a few seconds on a 2-core development
machine. A value that would need days of computing or gigabytes of memory is
almost always a typo (``rate=1e12``, ``interval_s=1e-9``), so it is refused
when it is given, with a message naming the limit, instead of hanging the
run. The limits sit far beyond what any example or the scaling ladder uses;
a test or a script that truly needs more can raise one here
(``playground.limits.MAX_RATE_PER_S = 1e8``) before building its topology.

``Population`` users and ``Workload`` keys cost nothing up front (a million
users at 0.01 requests per second each is 10,000 requests per second, open
loop; Zipf is sampled without a key table, so a billion keys cost O(1)
memory): their limits only refuse what no model means (10**400 users).
"""
from __future__ import annotations

MAX_RATE_PER_S = 1e7
"""Requests per second of one load: above this, one simulated second costs minutes of computing."""

MIN_INTERVAL_S = 1e-4
"""Shortest period of a repeated background action (a health check): shorter floods the event heap."""

MAX_CLOSED_LOOP_USERS = 1_000_000
"""Closed-loop users: each keeps a connection, a cookie jar and a pending request in memory."""

MAX_CONNECTIONS = 1_000_000
"""Keep-alive connections of an open-loop load: each is kept in memory for the whole run."""

MAX_DURATION_S = 1e7
"""Simulated seconds in one run (about 116 days), and the latest time ``sim.at`` takes."""

MAX_CORES = 100_000
"""Cores of one server (or one database): far past any machine; the theory's Erlang-C sum is O(cores)."""

MAX_SLOTS = 10_000_000
"""Workers or queue places of one host: each busy worker is a trio task; for no limit, pass None."""

MAX_KEYS = 2 ** 53
"""Keys of a ``Workload`` (Zipf ranks): ranks are drawn through a float, exact up to 2**53."""

MAX_POPULATION_USERS = 10 ** 12
"""People in one ``Population``: over a hundred times the world's; more is a typo."""

MAX_STILL_WALL_S = 20.0
"""Wall seconds a virtual-time run may work at one simulated instant before it ends as stuck (a loop that
never waits simulated time); a burst of events at one instant takes far less."""

WHY = {
    "rate": "the largest rate the playground simulates in reasonable time; see playground.limits",
    "interval": "shorter periods would flood the event heap; see playground.limits",
    "users": "each closed-loop user is kept in memory; use Population for more users; see playground.limits",
    "connections": "each connection is kept in memory; see playground.limits",
    "duration": "about 116 simulated days; see playground.limits",
    "cores": "far past any machine; see playground.limits",
    "slots": "each busy worker is a task and each queued request is kept; None means no limit; see playground.limits",
    "keys": "ranks are drawn through a float, exact up to 2**53; see playground.limits",
    "population": "over a hundred times the world's population; see playground.limits",
}
