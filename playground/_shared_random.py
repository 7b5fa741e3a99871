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

Runs in two threads at once share the one wrapping: it goes on with the first
and comes off with the last (``_process_wide``).
"""
from __future__ import annotations

import random
import threading

from ._process_wide import ProcessWide

__all__ = ["SharedRandomWatch"]

_PRIMITIVES = ("random", "getrandbits")  # what Random's Python methods call as self.random(), self.getrandbits()
_OUR_THREADS = ("playground-watchdog",)

_watches: dict[int, "SharedRandomWatch"] = {}  # id -> a watch started and not stopped
_saved: dict[str, object] = {}  # the module's own names, as they were before the first watch
_shadowed: list[str] = []  # names set on the shared instance, to pop at the last stop


def _wrap_all() -> None:
    for name in _PRIMITIVES:
        original = getattr(random, name)
        _saved[name] = original
        setattr(random, name, _wrap(original))
    shared = getattr(random, "_inst", None)
    if shared is not None and hasattr(shared, "__dict__"):
        for name in _PRIMITIVES:
            if name not in vars(shared):  # an instance attribute shadows the class's method
                setattr(shared, name, _wrap(getattr(shared, name)))
                _shadowed.append(name)


def _unwrap_all() -> None:
    for name, original in _saved.items():
        setattr(random, name, original)
    _saved.clear()
    shared = getattr(random, "_inst", None)
    for name in _shadowed:
        vars(shared).pop(name, None)
    _shadowed.clear()


# one wrapping for runs overlapping in threads: on with the first, off with the last
_wrapping = ProcessWide(_wrap_all, _unwrap_all)


def _wrap(original):
    def drawn(*args, **kwargs):
        me = threading.get_ident()
        for watch in list(_watches.values()):
            if watch._thread == me:
                watch._saw = True
        return original(*args, **kwargs)

    drawn.__name__ = getattr(original, "__name__", "random")
    drawn.__doc__ = getattr(original, "__doc__", None)
    return drawn


class SharedRandomWatch:
    """``start()`` before a run, ``drew()`` at its end (any time before ``stop()``), ``stop()`` always."""

    def __init__(self) -> None:
        self._saw = False
        self._state = None
        self._thread = None

    def start(self) -> None:
        self._saw = False
        self._state = random.getstate()
        self._thread = threading.get_ident()
        _watches[id(self)] = self
        _wrapping.take()

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
        if _watches.pop(id(self), None) is not None:  # started, and not stopped yet
            _wrapping.let_go()
