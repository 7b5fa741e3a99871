"""Notice user code drawing from Python's shared ``random`` module during a run.

A handler that calls ``random.random()`` draws from the one generator the
whole process shares, seeded from the operating system: the same seed then
gives a different report, silently. Two ways to notice, together:

* while a run is under way, the shared generator's two primitive draws,
  ``random`` and ``getrandbits``, are wrapped - on the instance, which is what
  every other method (``choice``, ``expovariate``, ``shuffle``, ...) calls,
  imported by name or not, and as the module's own two names, which are the
  bare C methods - so that a draw from the simulation's own thread is noted
  (draws from other threads pass straight through: a Dask worker's event loop
  draws from the module for its own jitter, and that changes nothing in the
  run);
* the module's state is compared before and after, for the one name that
  reaches neither (``from random import random``, imported before the run) -
  but only when no other thread is alive to have drawn instead.
"""
from __future__ import annotations

import random
import threading

__all__ = ["SharedRandomWatch"]

_PRIMITIVES = ("random", "getrandbits")  # what Random's Python methods call as self.random(), self.getrandbits()
_OUR_THREADS = ("playground-watchdog",)


class SharedRandomWatch:
    """``start()`` before a run, ``drew()`` at its end (any time before ``stop()``), ``stop()`` always."""

    def __init__(self) -> None:
        self._saw = False
        self._state = None
        self._thread = None
        self._saved: dict[str, object] = {}
        self._shadowed: list[str] = []

    def start(self) -> None:
        self._saw = False
        self._state = random.getstate()
        self._thread = threading.get_ident()
        for name in _PRIMITIVES:
            original = getattr(random, name)
            self._saved[name] = original
            setattr(random, name, self._wrap(original))
        shared = getattr(random, "_inst", None)
        if shared is not None and hasattr(shared, "__dict__"):
            for name in _PRIMITIVES:
                if name not in vars(shared):  # an instance attribute shadows the class's method
                    setattr(shared, name, self._wrap(getattr(shared, name)))
                    self._shadowed.append(name)

    def _wrap(self, original):
        thread = self._thread

        def drawn(*args, **kwargs):
            if threading.get_ident() == thread:
                self._saw = True
            return original(*args, **kwargs)

        drawn.__name__ = getattr(original, "__name__", "random")
        drawn.__doc__ = getattr(original, "__doc__", None)
        return drawn

    def drew(self) -> bool:
        """Whether this thread drew from the shared generator since ``start()``."""
        if self._saw:
            return True
        if self._state is None or random.getstate() == self._state:
            return False
        me = threading.current_thread()
        alone = all(t is me or t.name in _OUR_THREADS for t in threading.enumerate())
        return alone  # with other threads alive, the change may be theirs

    def stop(self) -> None:
        for name, original in self._saved.items():
            setattr(random, name, original)
        self._saved.clear()
        shared = getattr(random, "_inst", None)
        for name in self._shadowed:
            vars(shared).pop(name, None)
        self._shadowed.clear()
