"""Stage 5 of the scaling ladder: geo DNS, three regions, two balancers each.

Users in "us", "eu" and "ap" (40/35/25% of them) resolve "www" through a geo
DNS server to one of their own region's two L7 balancers; each region has its
own app servers, cache and database read replica, and a CDN edge for static
files (``build_global`` in playground/tools/ladder/stages.py). Regions are 40-80 ms
apart; writes go to the primary database in "us".

What to look for: a million users (20,000 req/s) are served with p50 near
11 ms in every region and no errors; the busiest component is an app server
at about half its CPU, so there is headroom. The p99 (~150 ms) is the writes
(2% of requests) from "eu" and "ap" crossing to the primary database in "us"
(~100 and ~170 ms): distance, not load.

    python examples/stage5_dns_regions.py
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from playground.tools.ladder import STAGES, LadderOptions, bottleneck

USERS = (100_000, 1_000_000)
OPTIONS = LadderOptions(seed=1)
STAGE = STAGES[4]

table = Table(title="Stage 5: + DNS, regions (per region)", title_justify="left")
for col in ("users", "region", "ok/s", "static p50 ms", "dynamic p50 ms", "dynamic p99 ms", "errors"):
    table.add_column(col, justify="right")
summaries = []
for users in USERS:
    report = STAGE.build(users, OPTIONS).run(duration_s=OPTIONS.duration_for(users))
    for region in ("us", "eu", "ap"):
        static, dynamic = report.clients[f"static@users-{region}"], report.clients[f"dynamic@users-{region}"]
        table.add_row(f"{users:,}", region, f"{(static.ok + dynamic.ok) / report.duration_s:,.0f}",
                      f"{static.latency.p50_s * 1000:.1f}", f"{dynamic.latency.p50_s * 1000:.1f}",
                      f"{dynamic.latency.p99_s * 1000:.1f}", str(static.failed + dynamic.failed))
    caches = [s.detail for s in report.components.values() if s.kind == "cache"]
    hit_ratio = sum(c["hits"] for c in caches) / sum(c["hits"] + c["misses"] for c in caches)
    neck, util = bottleneck(report)
    summaries.append(f"{users:>9,} users: {report.throughput_per_s:,.0f} ok/s, p50 {report.p50_s * 1000:.1f} ms, "
                     f"p99 {report.p99_s * 1000:.1f} ms, errors {report.error_rate:.1%}, cache hit {hit_ratio:.0%}, "
                     f"busiest: {neck} {util:.0%}")
Console().print(table)
print("\n".join(summaries))
print(f"\nStage 5 holds {USERS[-1]:,} users within the SLO (p99 < {OPTIONS.slo_p99_s * 1000:.0f} ms); "
      f"the bottleneck to watch is the app tier's CPU.")
