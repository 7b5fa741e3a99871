"""Stage 3 of the scaling ladder: many app servers behind an L7 load balancer.

Eight 4-core app servers (the ladder's 32-core budget) sit behind an L7
balancer with health checks and retries; they share one database
(``build_horizontal`` in playground/tools/ladder/stages.py). In every run the last
app server crashes at 40% of the run and restarts at 70%: failover.

What to look for: the crash costs users nothing (0 errors while it is down;
the events show the balancer marking it down within a second and up again
after the restart). The app tier now has CPU to spare; at 100,000 users
(2,000 req/s, ~1,400 database reads/s) the single database's reads are the
limit: its 4 IO channels manage about 1,000 reads/s. Stage 4 adds a cache.

    python examples/stage3_horizontal.py
"""
from __future__ import annotations

from rich.console import Console

from playground.tools.ladder import STAGES, LadderOptions, StageResult, run_step
from playground.tools.ladder.story import stage_table

USERS = (10_000, 50_000, 100_000)
OPTIONS = LadderOptions(seed=1)
STAGE = STAGES[2]

steps = [run_step(STAGE.build, users, OPTIONS) for users in USERS]
Console().print(stage_table(StageResult(STAGE.key, STAGE.title, STAGE.story, steps)))

ok = steps[1]
print(f"Failover at {ok.users:,} users ({ok.error_rate:.1%} errors): "
      + "; ".join(f"t={t:.1f}s {what}" for t, what in ok.events))
broke = next(s for s in steps if s.broke)
print(f"\nStage 3 breaks at {broke.users:,} users: {broke.why}.")
print(f"Bottleneck: {broke.bottleneck} at {broke.bottleneck_utilisation:.0%} "
      f"({broke.db_queries_per_s:,.0f} queries/s reached the database).")
