"""Fault injection: a timeline of what users see, second by second.

Three app servers (2 cores, 8 ms of CPU and one database read per request)
behind an L7 balancer with *deep* health checks (``/health`` reads from the
database too) and 2 retries; 200 requests/s, rising to 450/s for t=20-25 s.
Faults, as paired verbs scheduled with ``sim.at``:

* t=4-9 s:   ``partition("app1", "db")`` - app1 cannot reach the database;
* t=12-16 s: ``slow("db", factor=4)`` - every query takes four times longer;
* t=21 s:    ``crash("app2")`` during the spike, back 5 s later.

What to look for in the timeline (``report.series`` and ``report.events``):
the partition costs a p99 bump of about one database timeout (100 ms) until
app1's health check fails and the balancer takes it out, with no errors; the
slow database raises p50 and p99 for as long as it lasts; the crash during the
spike leaves two servers for 450 req/s, so p99 climbs while they queue (to ~60 ms),
and falls once app2 is back. No user sees an error.

    python examples/fault_injection.py
    python examples/fault_injection.py --html run.html    # the run as a page: slide through the faults
"""
from __future__ import annotations

import argparse

from components import AppServer, Database, DatabaseClient, HealthCheck, L7Balancer
from playground import OpenLoop, Sim, Spike, Workload

db = DatabaseClient("db", timeout_s=0.1)


async def handler(request, ctx):
    key = "0" if request.route == "/health" else request.route.rsplit("/", 1)[1]
    if request.route != "/health":
        await ctx.cpu(0.008)
    value = await db.get(ctx, key)  # a database that cannot be reached raises Timeout: a 504
    return value or "not found"


sim = Sim(seed=1)
rows = sim.add(Database("db", read_latency_s=0.004, io_capacity=8, max_connections=200))
for k in range(1000):
    rows.store.kv_put(str(k), f"item {k}")
apps = ["app1", "app2", "app3"]
for name in apps:
    sim.add(AppServer(name, handler, cores=2, workers=32, queue_limit=500, calls=("db",)))
sim.add(L7Balancer("lb", apps, retries=2, health_check=HealthCheck(interval_s=0.5, timeout_s=0.25, fall=2)))
sim.load(OpenLoop("lb", rate=Spike(base_per_s=200, peak_per_s=450, at_s=20, for_s=5),
                  workload=Workload(keys=1000), name="users"))
sim.at(4, sim.partition, "app1", "db")
sim.at(9, sim.repair, "app1", "db")
sim.at(12, sim.slow, "db", None, 4.0)
sim.at(16, sim.heal, "db")
sim.at(21, sim.crash, "app2", 5.0)
parser = argparse.ArgumentParser(description="Fault injection: a timeline of what users see.")
parser.add_argument("--html", metavar="PATH", help="also write the HTML run report there")
args = parser.parse_args()
report = sim.run(30)

print(f"{'t s':>4} {'ok':>5} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}  events")
for row in report.series["users"]:
    if row.t_s >= report.duration_s:  # answers that arrived while the run drained
        continue
    events = "; ".join(what for t, what in report.events if row.t_s <= t < row.t_s + 1)
    print(f"{row.t_s:>4.0f} {row.ok:>5} {row.errors:>6} {row.p50_s * 1000:>7.1f} {row.p99_s * 1000:>7.1f}  {events}")
lb = report.components["lb"].detail
errors = f" {report.errors}" if report.errors else ""
print(f"\n{report.sent} requests, {report.failed} errors{errors}, p99 over the run "
      f"{report.p99_s * 1000:.1f} ms; balancer retries {lb['retries_used']}, health changes {lb['health_changes']}")
if args.html:
    report.to_html(args.html)
    print(f"saved {args.html}")
