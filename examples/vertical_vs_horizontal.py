"""Vertical vs horizontal scaling: the same 16 cores as one big machine or four small ones.

The app spends ~10 ms of CPU (log-normal) and waits 5 ms on a database per
request; users send 900 requests/s, about 9 cores' worth. Vertical: one
16-core server. Horizontal: four 4-core servers behind an L7 balancer with
health checks and retries. Each setup runs twice: undisturbed, and with its
(biggest) server crashing at t=5 s and restarting at t=10 s.

What to look for: undisturbed, throughput and latency are about the same (the
big machine is a little faster: one queue feeding 16 cores beats four queues
feeding 4, and there is no balancer hop). When a server crashes, the big machine
takes the whole site down for 5 s (a third of the requests fail), while the
four small ones lose one server in four and users see no errors.

    python examples/vertical_vs_horizontal.py
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from components import AppServer, HealthCheck, L7Balancer
from playground import LogNormal, OpenLoop, Sim

CPU = LogNormal(median_s=0.009, sigma=0.45)


async def handler(request, ctx):
    await ctx.cpu(CPU)
    await ctx.sleep(0.005)  # the database
    return "ok"


def run(shape: str, crash: bool):
    sim = Sim(seed=1)
    if shape == "vertical":
        sim.add(AppServer("big", handler, cores=16, workers=256, queue_limit=1000))
        front, victim = "big", "big"
    else:
        names = [f"small{i}" for i in range(1, 5)]
        for name in names:
            sim.add(AppServer(name, handler, cores=4, workers=64, queue_limit=1000))
        sim.add(L7Balancer("lb", names, retries=2, health_check=HealthCheck(interval_s=0.5, timeout_s=0.25, fall=2)))
        front, victim = "lb", names[0]
    sim.load(OpenLoop(front, rate=900))
    if crash:
        sim.at(5, sim.crash, victim)
        sim.at(10, sim.restart, victim)
    return sim.run(15)


table = Table(title="900 req/s for 15 s on 16 cores", title_justify="left")
for col in ("shape", "crash t=5-10 s", "ok/s", "p50 ms", "p99 ms", "errors", "error rate"):
    table.add_column(col, justify="left" if col in ("shape", "crash t=5-10 s") else "right")
results = {}
for shape, label in (("vertical", "1 x 16 cores"), ("horizontal", "4 x 4 cores + LB")):
    for crash in (False, True):
        r = results[shape, crash] = run(shape, crash)
        table.add_row(label, "yes" if crash else "no", f"{r.throughput_per_s:,.0f}", f"{r.p50_s * 1000:.1f}",
                      f"{r.p99_s * 1000:.1f}", str(r.failed), f"{r.error_rate:.1%}")
Console().print(table)
for shape in ("vertical", "horizontal"):
    calm, hit = results[shape, False], results[shape, True]
    print(f"{shape:>10}: p99 {calm.p99_s * 1000:.1f} ms undisturbed; a crash costs {hit.failed} failed requests "
          f"({hit.error_rate:.1%})")
