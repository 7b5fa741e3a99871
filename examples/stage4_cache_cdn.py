"""Stage 4 of the scaling ladder: a cache in front of the database and a CDN for static files.

Stage 3's eight app servers now read through an LRU cache (cache-aside, 20,000
items, 300 s TTL, started warm with the hottest half of the keys) and users
fetch static files from a CDN edge instead of the app tier
(``build_cached`` in playground/tools/ladder/stages.py).

What to look for: about 90% of reads hit the cache, so at 100,000 users the
database sees a few hundred queries a second instead of stage 3's ~1,400, and
p99 stays near 30 ms. The next limit is the app tier's CPU: at 1,000,000
users (20,000 req/s, 14,000 of them dynamic at ~10 ms of CPU each) the 32
cores are saturated. Stage 5 adds regions, each with its own app tier.

    python examples/stage4_cache_cdn.py
"""
from __future__ import annotations

from rich.console import Console

from playground.tools.ladder import STAGES, LadderOptions, StageResult, run_step
from playground.tools.ladder.story import stage_table

USERS = (100_000, 1_000_000)
OPTIONS = LadderOptions(seed=1)
STAGE = STAGES[3]

steps = [run_step(STAGE.build, users, OPTIONS) for users in USERS]
Console().print(stage_table(StageResult(STAGE.key, STAGE.title, STAGE.story, steps)))

ok = steps[0]
print(f"At {ok.users:,} users: cache hit ratio {ok.cache_hit_ratio:.0%}, "
      f"{ok.db_queries_per_s:,.0f} database queries/s (database IO {ok.db_utilisation:.0%}), "
      f"p99 {ok.p99_s * 1000:.1f} ms")
broke = next(s for s in steps if s.broke)
print(f"\nStage 4 breaks at {broke.users:,} users: {broke.why}.")
print(f"Bottleneck: {broke.bottleneck} at {broke.bottleneck_utilisation:.0%}; "
      f"the database is at {broke.db_utilisation:.0%} (cache hit ratio {broke.cache_hit_ratio:.0%}).")
