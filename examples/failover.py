"""Failover: three app servers behind an L7 balancer, one crashes mid-run.

Each app server spends 4 ms of CPU and waits 40 ms on a database per request;
the balancer checks ``/health`` every 0.5 s (down after 2 failures, up after 2
passes). Users send 200 requests/s, open loop. app2 crashes at t=10 s and
restarts at t=20 s.

What to look for: with retries, users see zero errors - the requests app2 was
holding are retried on another server, and requests sent to it before the
health checks noticed are refused and tried elsewhere. Without retries, only
the requests app2 was holding when it died fail (502). In both runs app2 gets
no traffic while marked down and its third of the traffic once it is back.

    python examples/failover.py
"""
from __future__ import annotations

from playground import OpenLoop, Sim
from components import AppServer, HealthCheck, L7Balancer

APPS = ("app1", "app2", "app3")
CHECKS = HealthCheck(path="/health", interval_s=0.5, timeout_s=0.25, rise=2, fall=2)


async def handler(request, ctx):
    await ctx.cpu(0.004)
    await ctx.sleep(0.040)  # the database
    return "ok"


def run(retries: int):
    sim = Sim(seed=1)
    for name in APPS:
        sim.add(AppServer(name, handler, cores=2))
    lb = sim.add(L7Balancer("lb", APPS, health_check=CHECKS, retries=retries))
    sim.load(OpenLoop("lb", rate=200))
    sim.at(10, sim.crash, "app2")
    sim.at(20, sim.restart, "app2")
    to_app2 = {}  # requests the balancer had sent to app2 by t
    for t in (10, 11, 20, 30):
        sim.at(t - 1e-9, lambda t=t: to_app2.__setitem__(t, lb.sent["app2"]))
    report = sim.run(30)
    lb_detail = report.components["lb"].detail
    print(f"\n-- retries={retries}: {report.sent} requests, {report.ok} ok, {report.failed} failed"
          f"{' ' + str(report.errors) if report.errors else ''}, p99 {report.p99_s * 1000:.1f} ms")
    print(f"   app2 was holding {report.components['app2'].reset} requests when it crashed; "
          f"balancer retries used {lb_detail['retries_used']}, refused-and-retried {lb_detail['refused_retries']}")
    print("   timeline: " + "; ".join(f"t={t:.2f}s {what}" for t, what in report.events))
    print(f"   sent to app2: t=0-10 s {to_app2[10]}; t=10-11 s {to_app2[11] - to_app2[10]} (refused until marked "
          f"down); t=11-20 s {to_app2[20] - to_app2[11]}; t=20-30 s {to_app2[30] - to_app2[20]} "
          f"(a third of 200/s for 10 s is {10 * 200 // 3})")
    return report


with_retries = run(retries=2)
without = run(retries=0)
print(f"\nWith health checks and retries: {with_retries.failed} client errors. "
      f"Without retries: {without.failed} errors, all of them requests app2 held "
      f"({without.components['app2'].reset}).")
