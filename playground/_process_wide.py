"""A change to the process's own state that a run makes while it goes on.

A run changes two things that belong to the whole process, not to it: the
``random`` module's draws (``_shared_random``) and the warnings filters
(``_unawaited``). Runs may overlap in threads (two ``await sim.run_async(...)``
in ``python -m trio`` each run in a worker thread), so each change is made
when the first run takes it and undone when the last one lets go: no run
undoes another's change while that one still needs it, or saves another's
change as the original.
"""
from __future__ import annotations

import threading
from typing import Callable

__all__ = ["ProcessWide"]


class ProcessWide:
    """``on()`` when the first holder takes it, ``off()`` when the last lets go."""

    __slots__ = ("_on", "_off", "_lock", "_holders")

    def __init__(self, on: Callable[[], None], off: Callable[[], None]) -> None:
        self._on, self._off = on, off
        self._lock = threading.Lock()
        self._holders = 0

    def take(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._on()
            self._holders += 1

    def let_go(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                self._off()
