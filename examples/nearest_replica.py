"""Region-aware reads: each region reads from its own replica, and a crash moves reads to the next nearest.

The primary ``db`` is in us; replicas sit in us, eu and ap. Regions are 40 ms
(eu-us), 80 ms (us-ap) and 110 ms (eu-ap) apart, one way. App servers in eu
and us each serve 100 reads a second through one ``DatabaseClient`` whose
replica list happens to start with the ap replica - the order the old client
read from, for everyone. The client ranks replicas per calling host: same
region first, then by link latency. The eu replica crashes at t=10 s and comes
back at t=20 s.

What to look for: eu's reads cost a local round trip until the crash, then a
transatlantic one to the us replica (not the ap one, further away), and go
home again once the crashed replica has been skipped for ``avoid_failed_s``.

    python examples/nearest_replica.py
"""
from __future__ import annotations

from playground import OpenLoop, Sim
from components import AppServer, Database, DatabaseClient

db = DatabaseClient("db", replicas=["db-ap", "db-us", "db-eu"], avoid_failed_s=5.0)
phases: dict[str, list[float]] = {}


async def read_profile(request, ctx):
    start = ctx.now
    await db.get(ctx, "profile:42")
    phase = "before" if start < 10 else "down" if start < 20 else "back" if start >= 25 else "rejoining"
    phases.setdefault(f"{ctx.server.region} {phase}", []).append(ctx.now - start)
    return "ok"


sim = Sim(seed=1)
sim.add(Database("db", region="us"))
for region in ("us", "eu", "ap"):
    sim.add(Database(f"db-{region}", replica_of="db", region=region))
    sim.add(AppServer(f"app-{region}", read_profile, calls=db.hosts, region=region))
sim.net.region_link("eu", "us", 0.040)
sim.net.region_link("us", "ap", 0.080)
sim.net.region_link("eu", "ap", 0.110)
sim["db"].direct("INSERT INTO kv (key, value, version) VALUES ('profile:42', 'ada', 1)")
for region in ("eu", "us"):
    sim.load(OpenLoop(f"app-{region}", client=f"users-{region}", region=region, rate=100))
sim.at(10, sim.crash, "db-eu")
sim.at(20, sim.restart, "db-eu")
report = sim.run(30)

print(f"{report.ok} reads, {report.failed} failed")
for key in ("eu before", "us before", "eu down", "eu back"):
    times = phases[key]
    print(f"  {key:14} mean database read {sum(times) / len(times) * 1000:6.1f} ms over {len(times)} reads")
served = db.stats().reads_by_host
print(f"Reads served by: {', '.join(f'{host} {n}' for host, n in served.items())}")
print(f"eu reads: {sum(phases['eu before']) / len(phases['eu before']) * 1000:.1f} ms local, "
      f"{sum(phases['eu down']) / len(phases['eu down']) * 1000:.1f} ms while db-eu was down (from db-us), "
      f"{sum(phases['eu back']) / len(phases['eu back']) * 1000:.1f} ms after it came back")
