"""Which of the ladder's steps to run next, and when a stage's results are complete.

A step is one (stage, population). Steps are independent runs, but a stage
stops raising its population at its first break (``stop_at_break``): whether
step k of a stage is wanted is known only once steps 0..k-1 have finished and
none of them broke. Run in order (one at a time) nothing is wasted; run side by
side, a step may be started *speculatively* before that is known, and a step
past the first break is discarded when it finishes, so the results are the
same as in order.

``LadderPlan`` keeps that bookkeeping (pure logic, no processes): ``record``
a finished step, ``next_step`` picks what to start, ``ready_stages`` says which
stages are complete, in stage order.

What to start first, when several workers run at once: the least speculative
step (fewest earlier steps of its stage still unknown), then the lowest
population (the most likely to be wanted: a stage that holds a population
held every smaller one), then the stage listed last (the largest topology, the
dearest run: started early, it does not hold up the end).
"""
from __future__ import annotations

from typing import Any, Iterable

__all__ = ["LadderPlan"]


class LadderPlan:
    """The steps of the chosen stages: ``populations[s]`` lists stage s's populations in order."""

    def __init__(self, populations: Iterable[Iterable[int]], stop_at_break: bool = True) -> None:
        self.populations: list[tuple[int, ...]] = [tuple(p) for p in populations]
        self.stop_at_break = stop_at_break
        self.done: list[dict[int, Any]] = [{} for _ in self.populations]  # stage -> step index -> result
        self.broke: list[int | None] = [None for _ in self.populations]  # the first known break's index
        self._emitted = 0  # stages handed out by ready_stages

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.populations)

    def record(self, stage: int, step: int, result: Any, broke: bool) -> None:
        self.done[stage][step] = result
        first = self.broke[stage]
        if broke and (first is None or step < first):
            self.broke[stage] = step

    def wanted(self, stage: int, step: int) -> bool:
        """False once an earlier step of the stage is known to have broken (with ``stop_at_break``)."""
        first = self.broke[stage]
        return not (self.stop_at_break and first is not None and step > first)

    def _last(self, stage: int) -> int:
        """Index of the stage's last wanted step, as far as is known."""
        first = self.broke[stage]
        return first if self.stop_at_break and first is not None else len(self.populations[stage]) - 1

    def complete(self, stage: int) -> bool:
        return all(k in self.done[stage] for k in range(self._last(stage) + 1))

    def results(self, stage: int) -> list[Any]:
        """The stage's results in population order, up to and including its first break."""
        return [self.done[stage][k] for k in range(self._last(stage) + 1)]

    def ready_stages(self) -> list[int]:
        """Stages newly complete, in stage order (a stage waits for every stage before it)."""
        ready = []
        while self._emitted < len(self.populations) and self.complete(self._emitted):
            ready.append(self._emitted)
            self._emitted += 1
        return ready

    def settled(self) -> int:
        """Steps finished or known to be unwanted (for a progress bar)."""
        n = 0
        for s, pops in enumerate(self.populations):
            if s < self._emitted or self.complete(s):
                n += len(pops)
            else:
                n += sum(1 for k in range(len(pops)) if k in self.done[s] or not self.wanted(s, k))
        return n

    def next_step(self, running: Iterable[tuple[int, int]] = (), *, in_order: bool = False) -> tuple[int, int] | None:
        """The step to start now, or None if none is left. ``in_order``: stage by stage, each population
        in turn (one worker); else the least speculative first (see the module docstring)."""
        busy = set(running)
        best, best_key = None, None
        for s, pops in enumerate(self.populations):
            unknown = 0  # earlier steps of this stage whose verdict is not known yet
            for k in range(len(pops)):
                if not self.wanted(s, k):
                    break
                if k in self.done[s]:
                    continue
                if (s, k) not in busy:
                    if in_order:
                        return s, k
                    key = (unknown, k, -s)
                    if best_key is None or key < best_key:
                        best, best_key = (s, k), key
                unknown += 1
        return best
