"""The scaling ladder: "from 5 users to 1 million", told with numbers.

Five stages, each a topology built from ``components``:

1. monolith - app and database on one machine, sharing its cores and memory;
2. app server + a separate database server;
3. N app servers behind an L7 load balancer (a server crashes mid-run: failover);
4. + an LRU cache in front of the database (cache-aside) and a CDN for static files;
5. + DNS in front, two balancers, several regions;
6. beyond a million (``--stages 6``, not in the default run): an autoscaled app
   tier, a rate-limited edge, writes through a queue, a sharded database with
   failover - ten million users (``beyond.py``).

Each is driven with a rising population until it breaks (p99 over the SLO or
errors over the threshold); the table names the bottleneck, and the next stage
removes it.

Where this lives: the ladder is built *from* components, so it cannot be in the
engine's import path (the engine never imports components). It sits in the
``playground`` package as a subpackage that nothing in the engine imports,
because ``playground ladder`` / ``python -m playground`` is its front door.
"""
from __future__ import annotations

from .runner import DEFAULT_USERS as DEFAULT_USERS
from .runner import LadderOptions as LadderOptions
from .runner import StageResult as StageResult
from .runner import StepResult as StepResult
from .runner import bottleneck as bottleneck
from .runner import run_step as run_step
from .stages import STAGES as STAGES
from .stages import Stage as Stage
from .story import LadderResult as LadderResult
from .story import run_ladder as run_ladder
