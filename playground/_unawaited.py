"""Coroutines that user code made and never awaited, named on the host that dropped them.

``ctx.cpu(0.005)`` without ``await`` makes a coroutine and drops it: no CPU is
spent, the run goes on, and its figures are quietly wrong. Python notices (a
``RuntimeWarning``, "coroutine 'Context.cpu' was never awaited") but prints it
to stderr, once per place under the default filters, where nobody reading a
report looks. During a run this catches that warning - every time, whatever
the filters say - and turns it into a warning on the host whose task dropped
the coroutine, with the line, in the report (``NodeStats.warnings``).

CPython drops an unawaited coroutine as soon as the last reference goes, so
the warning comes from inside the task that made it: a host's worker tasks
and background tasks set ``CURRENT_HOST`` when they start (once a task, not a
request). One that no host's task dropped (sync code in a scheduler callback,
such as a ``Workload(make=...)``) is printed as Python would, once a place.
Every other warning is passed on as it would have been. Runs in two threads at
once share the one setting: on with the first, off with the last (``_process_wide``).
"""
from __future__ import annotations

import os
import re
import warnings
from contextvars import ContextVar

from ._process_wide import ProcessWide

__all__ = ["CURRENT_HOST", "UnawaitedCoroutines", "unawaited_message"]

CURRENT_HOST: ContextVar = ContextVar("playground_current_host", default=None)
_NEVER_AWAITED = re.compile(r"^coroutine '(?P<name>[^']+)' was never awaited$")


def unawaited_message(name: str, filename: str, lineno: int) -> str:
    where = f"{os.path.basename(filename)}:{lineno}" if filename else "user code"
    return (f"{where}: {name}(...) was called without await: the coroutine never ran, so it did nothing "
            "(a ctx.cpu spent no CPU, a call sent nothing); write await before the call")


_saved: "warnings.catch_warnings | None" = None  # the filters and showwarning to put back
_show = None  # ``showwarning`` as it was: every other warning goes on to it
_printed: set[tuple[str, str, int]] = set()  # places of warnings no host took


def _listen() -> None:
    global _saved, _show
    _saved = warnings.catch_warnings()
    _saved.__enter__()
    warnings.filterwarnings("always", message=_NEVER_AWAITED.pattern[1:-1], category=RuntimeWarning)
    _show = warnings.showwarning
    warnings.showwarning = _shown
    _printed.clear()


def _stop_listening() -> None:
    global _saved
    saved, _saved = _saved, None
    if saved is not None:
        saved.__exit__(None, None, None)


# one listener for runs overlapping in threads: on with the first, off with the last
_listening = ProcessWide(_listen, _stop_listening)


def _shown(message, category, filename, lineno, file=None, line=None) -> None:
    match = _NEVER_AWAITED.match(str(message)) if issubclass(category, RuntimeWarning) else None
    host = CURRENT_HOST.get() if match else None
    if host is not None:
        host.warn(unawaited_message(match["name"], filename, lineno))
        return
    if match:  # "always" is on for these during the run: print each place once, as the default would
        place = (match["name"], filename, lineno)
        if place in _printed:
            return
        _printed.add(place)
    _show(message, category, filename, lineno, file, line)


class UnawaitedCoroutines:
    """A context manager for the length of a run; runs may overlap (in threads)."""

    def __init__(self) -> None:
        self._entered = False

    def __enter__(self) -> "UnawaitedCoroutines":
        if not self._entered:
            self._entered = True
            _listening.take()
        return self

    def __exit__(self, *exc) -> None:
        if self._entered:
            self._entered = False
            _listening.let_go()
