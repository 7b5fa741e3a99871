"""Stage 2 of the scaling ladder: the database moves to its own server.

One 4-core app server calls a separate database server (4 IO channels, 4 ms a
read) over the network (``build_separate_db`` in playground/tools/ladder/stages.py).
The app no longer shares its cores or memory with the database.

What to look for: the app handles four times the monolith's traffic with a
flat p99 (~30 ms), while the database sits mostly idle. At 50,000 users
(1,000 req/s) the app's 4 cores are the limit: CPU at 100%, requests queue
past the 5 s client timeout. Adding app servers is stage 3.

    python examples/stage2_separate_db.py
"""
from __future__ import annotations

from rich.console import Console

from playground.tools.ladder import STAGES, LadderOptions, StageResult, run_step
from playground.tools.ladder.story import stage_table

USERS = (5_000, 20_000, 50_000)
OPTIONS = LadderOptions(seed=1)
STAGE = STAGES[1]

steps = [run_step(STAGE.build, users, OPTIONS) for users in USERS]
Console().print(stage_table(StageResult(STAGE.key, STAGE.title, STAGE.story, steps)))

for step in steps:
    print(f"{step.users:>7,} users: app CPU {step.bottleneck_utilisation:4.0%}, "
          f"database IO {step.db_utilisation:4.0%}, p99 {step.p99_s * 1000:,.1f} ms")
broke = next(s for s in steps if s.broke)
print(f"\nStage 2 breaks at {broke.users:,} users: {broke.why}.")
print(f"Bottleneck: {broke.bottleneck} at {broke.bottleneck_utilisation:.0%}; "
      f"the database is at {broke.db_utilisation:.0%}.")
