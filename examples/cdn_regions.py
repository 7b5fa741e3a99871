"""A CDN for users far from the origin: p50 per region with and without edges.

The origin (one app server) is in "us"; users in "us", "eu" (80 ms away) and
"ap" (150 ms away) fetch static files, 200 requests/s per region, 50
different assets of 20 kB, served with ``cache-control: max-age=60``. Without
a CDN every request crosses to the origin and back. With one
(``components.CDN``: an edge per region), each region's users ask their own
edge, which fetches an asset from the origin once and keeps it.

What to look for: p50 in "eu" and "ap" drops from one round trip across the
ocean (160 / 300 ms) to a LAN hop (~1 ms); the edges' hit ratio is above 95%
(each edge misses each asset once; p99 is that first fetch) and the origin
sees about 1% of the static requests (offload ~99%).

    python examples/cdn_regions.py
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from components import CDN, AppServer
from playground import OpenLoop, Response, Sim, Workload

REGIONS = ("us", "eu", "ap")
STATIC = Workload(static_share=1.0, static_assets=50)


async def origin(request, ctx):
    await ctx.cpu(0.002)
    return Response(200, {"cache-control": "public, max-age=60"}, b"x" * 20_000)


def run(with_cdn: bool):
    sim = Sim(seed=1)
    sim.add(AppServer("origin", origin, cores=4), region="us")
    sim.region_link("us", "eu", latency_s=0.080)
    sim.region_link("us", "ap", latency_s=0.150)
    sim.region_link("eu", "ap", latency_s=0.120)
    cdn = CDN("cdn", origin="origin", regions=REGIONS).add_to(sim) if with_cdn else None
    for region in REGIONS:
        target = cdn.edge_for(region) if cdn else "origin"
        sim.load(OpenLoop(target, client=f"users-{region}", region=region, rate=200, workload=STATIC,
                          name=f"users-{region}"))
    return sim.run(20)


without, with_cdn = run(False), run(True)
table = Table(title="Static files, 200 req/s per region, 20 s", title_justify="left")
for col in ("region", "p50 ms without CDN", "p50 ms with CDN", "p99 ms with CDN", "edge hit ratio"):
    table.add_column(col, justify="left" if col == "region" else "right")
for region in REGIONS:
    edge = with_cdn.component(f"cdn-{region}").detail
    table.add_row(region, f"{without.clients[f'users-{region}'].latency.p50_s * 1000:.1f}",
                  f"{with_cdn.clients[f'users-{region}'].latency.p50_s * 1000:.1f}",
                  f"{with_cdn.clients[f'users-{region}'].latency.p99_s * 1000:.1f}", f"{edge['hit_ratio']:.1%}")
Console().print(table)
print(f"Origin served {without.component('origin').served} requests without the CDN, "
      f"{with_cdn.component('origin').served} with it: origin offload {CDN.offload(with_cdn):.1%}")
