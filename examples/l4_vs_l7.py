"""L4 vs L7 load balancing with a few long-lived connections.

Three 2-core app servers (5 ms of CPU per request) behind a balancer, 600
requests/s arriving over only 4 keep-alive connections (say, four busy API
clients or four upstream proxies). Both balancers use round robin.

An L4 balancer picks a backend per *connection*: four connections over three
backends puts two of them on one server, which gets twice the traffic of the
others however long the run. An L7 balancer reads each *request* and spreads
them evenly. What to look for: the max/min ratio (2.0 vs 1.0), the hot
server's CPU, and p99. With 300 connections the L4 balancer evens out too.

    python examples/l4_vs_l7.py
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from playground import Exponential, OpenLoop, Sim
from components import AppServer, L4Balancer, L7Balancer

APPS = ("app1", "app2", "app3")


def run(balancer_class, connections: int):
    sim = Sim(seed=1)
    for name in APPS:
        sim.add(AppServer(name, cores=2, cpu_s=Exponential(0.005)))
    sim.add(balancer_class("lb", APPS))
    sim.load(OpenLoop("lb", rate=600, connections=connections))
    return sim.run(10)


table = Table(title="600 req/s through a round-robin balancer, 10 s", title_justify="left")
for col in ("balancer", "conns", *[f"to {a}" for a in APPS], "max/min", "hot CPU", "p99 ms"):
    table.add_column(col, justify="left" if col == "balancer" else "right", no_wrap=True)
spread = {}
for cls, conns in ((L4Balancer, 4), (L7Balancer, 4), (L4Balancer, 300)):
    report = run(cls, conns)
    sent = report.components["lb"].detail["sent"]
    spread[cls.__name__, conns] = max(sent.values()) / min(sent.values())
    hottest = max(report.components[a].utilisation for a in APPS)
    table.add_row(cls.__name__, str(conns), *[str(sent[a]) for a in APPS], f"{spread[cls.__name__, conns]:.2f}",
                  f"{hottest:.0%}", f"{report.p99_s * 1000:.1f}")
Console().print(table)
print(f"4 connections: L4 spread {spread['L4Balancer', 4]:.2f}x, L7 spread {spread['L7Balancer', 4]:.2f}x; "
      f"300 connections: L4 spread {spread['L4Balancer', 300]:.2f}x")
