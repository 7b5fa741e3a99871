"""Stage 1 of the scaling ladder: the monolith.

The app and its database run in one process on one 2-core machine with 2 GB of
memory (``build_monolith`` in playground/tools/ladder/stages.py): every request spends
~10 ms of app CPU plus 8 ms of query CPU on the same two cores. Users make one
request every 50 s (0.02 req/s each), 30% of them for static files.

What to look for: at 1,000 and 5,000 users the machine copes (p99 well under
the 500 ms SLO). At 10,000 users it needs more CPU than it has: requests queue,
every queued request holds memory, memory runs out, the process is OOM-killed
and restarts empty - over and over. The bottleneck column says
"CPU, then memory: OOM". Stage 2 moves the database to its own server.

    python examples/stage1_monolith.py
"""
from __future__ import annotations

from rich.console import Console

from playground.tools.ladder import STAGES, LadderOptions, StageResult, run_step
from playground.tools.ladder.story import stage_table

USERS = (1_000, 5_000, 10_000)
OPTIONS = LadderOptions(seed=1)  # the ladder's defaults: 0.02 req/s per user, SLO p99 500 ms
STAGE = STAGES[0]

steps = [run_step(STAGE.build, users, OPTIONS) for users in USERS]
console = Console()
console.print(stage_table(StageResult(STAGE.key, STAGE.title, STAGE.story, steps)))

broke = next(s for s in steps if s.broke)
ooms = sum(1 for _, what in broke.events if what.startswith("OOM"))
print(f"\nStage 1 breaks at {broke.users:,} users: {broke.why}.")
print(f"Bottleneck: {broke.bottleneck}; the process was OOM-killed {ooms} times in "
      f"{OPTIONS.duration_for(broke.users):g} s (errors: {broke.errors}).")
