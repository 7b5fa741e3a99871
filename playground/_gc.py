"""Fewer garbage collections while a run goes on.

CPython frees an object as soon as its last reference goes; the cyclic garbage
collector is only for cycles, and it runs whenever container allocations
outnumber deallocations by a threshold (700 by default). A run makes and drops
several container objects a request - the request, its exchange, heap entries,
tuples - and keeps thousands alive for a while (timeouts pending, queues), so at
the default the collector runs about once every 40 requests, and now and then
it walks every object in the process. Measured on the soak's stage 4 (20,000
requests; 2-core AMD EPYC, Python 3.11.7): 499 collections, 4 of them full,
took 0.39 s of the run's 6.5 s; at this threshold, none.

While any run is going on, this raises the first generation's threshold to
``GEN0_THRESHOLD`` (50,000; the two older generations keep theirs) with
``gc.set_threshold``, and puts back what was there when the last run ends. Cycles are still collected, in
bigger batches and so later, which costs memory: the ladder's largest process
peaks at 91 MiB instead of 77 (94 with a threshold of 10,000), the soak's at
45.9 MiB instead of 45.3 over 200,000 requests. A process
that turned collection off (threshold 0) or set a higher threshold is left as
it is, and so is one whose threshold changed during the run.
"""
from __future__ import annotations

import gc

from ._process_wide import ProcessWide

__all__ = ["FewerCollections", "GEN0_THRESHOLD"]

GEN0_THRESHOLD = 50_000

_saved: tuple[int, ...] | None = None  # the thresholds to put back, when this module changed them


def _raise() -> None:
    global _saved
    threshold = gc.get_threshold()
    if 0 < threshold[0] < GEN0_THRESHOLD:
        _saved = threshold
        gc.set_threshold(GEN0_THRESHOLD, *threshold[1:])


def _put_back() -> None:
    global _saved
    if _saved is not None and gc.get_threshold()[0] == GEN0_THRESHOLD:  # not changed by anyone meanwhile
        gc.set_threshold(*_saved)
    _saved = None


_threshold = ProcessWide(_raise, _put_back)


class FewerCollections:
    """A context manager for the length of a run; runs may overlap (in threads) and nest."""

    def __enter__(self) -> "FewerCollections":
        _threshold.take()
        return self

    def __exit__(self, *exc) -> None:
        _threshold.let_go()
