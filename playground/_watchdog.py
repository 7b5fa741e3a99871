"""The watchdog: notice user code that blocks the whole simulation.

Every host of a simulation runs in one thread. A handler that calls
``time.sleep(0.1)``, ``requests.get(...)`` or grinds through a long pure-Python
loop holds that thread: for as long as it runs, no other host, client or
timer moves, and none of that wall-clock time is simulated time, so the
run's figures silently leave it out. Real event loops have the same trap and
the same guard (asyncio's debug mode warns about a callback that took over
100 ms).

A small daemon thread looks, every ``POLL_S`` of wall time, at how many
events the scheduler has fired. If the count has not moved for two looks in
a row (40 ms or more) while the simulation thread is inside user code, it
notes where (the innermost frame outside the engine, trio and the standard
library) and on which host (the nearest frame whose ``self`` is a ``Node``).
The simulation itself pays nothing for this: no timing on its hot path.

The same looks notice the other way a run never ends: simulated time that
stands still while the simulation thread keeps working (events fire, or trio
goes round its loop) - a handler looping on ``await trio.sleep(0)``, a retry
loop with no backoff. After ``limits.MAX_STILL_WALL_S`` of wall time at one
simulated instant the run ends with a ``PlaygroundError`` that says so (a
blocking call is different: the thread is held in one place, and that is the
warning above, not an error).

What it reports depends on the wall clock, so it is kept out of the
report's deterministic JSON (like ``wall_s``); ``Report.wall_warnings``
holds it, and ``print(report)`` shows it. A look that itself came late (the
machine was busy and this thread did not run) is discarded, so a loaded
machine does not make a handler look guilty.
"""
from __future__ import annotations

import os
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass

from . import limits

__all__ = ["Watchdog", "Blocking"]

POLL_S = 0.02
_LATE_S = 3 * POLL_S  # a look this late means this thread was held up, not the simulation
_ENGINE_DIRS = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + d + os.sep
                      for d in ("playground", "components")})
_SYSTEM_DIRS = tuple({p + os.sep for p in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                          sysconfig.get_paths()["platlib"])})


@dataclass(frozen=True)
class Blocking:
    """User code at ``where`` held the simulation ``count`` times, for up to ``max_wall_s`` each."""

    host: str
    where: str
    count: int
    max_wall_s: float
    first_t_s: float

    def __str__(self) -> str:
        times = f"{self.count} times, first" if self.count > 1 else "once,"
        return (f"{self.host!r}: {self.where} held the whole simulation for {self.max_wall_s * 1000:.0f} ms of "
                f"wall-clock time ({times} at t={self.first_t_s:.3f} s): a blocking call such as time.sleep "
                "blocks the whole simulation and costs no simulated time; use await ctx.sleep(seconds)")


def still_message(t_s: float, wall_s: float) -> str:
    return (f"simulated time stood still at t={t_s:.6f} s for {wall_s:.1f} s of wall time while the simulation kept "
            "working: something loops without waiting simulated time (a handler's loop around await "
            "trio.sleep(0), a retry loop with no backoff); wait simulated time in it (await ctx.sleep(seconds)), "
            f"or raise playground.limits.MAX_STILL_WALL_S (now {limits.MAX_STILL_WALL_S:g} s)")


def _user_frame(frame) -> tuple[str, str] | None:
    """(where, host) of the innermost user frame in a task's step, or None if there is none.

    Only a frame inside a task step counts (one with trio's run loop, or the
    virtual clock stepping the task, further out): the script or test that
    called ``sim.run`` is further out still and waits for the run, it does
    not hold it; nor does trio waiting for I/O between steps.
    """
    where = None
    host = "?"
    from ._node import Node

    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if frame.f_code.co_name == "unrolled_run" or filename == _CLOCK_FILE:
            return (where, host) if where is not None else None  # the step's start: found, or all engine
        if where is None and not filename.startswith(_ENGINE_DIRS + _SYSTEM_DIRS) and not filename.startswith("<"):
            where = f"{frame.f_code.co_qualname} ({os.path.basename(filename)}:{frame.f_lineno})"
        if where is not None and host == "?":
            owner = frame.f_locals.get("self") if "self" in frame.f_code.co_varnames else None
            if isinstance(owner, Node):
                host = owner.name
        frame = frame.f_back
    return None  # not inside a task step


_CLOCK_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_clock.py")


class Watchdog:
    """Watches one simulation thread while a run lasts: ``start()``, then ``stop()`` -> what blocked."""

    def __init__(self, sched, t0: float, on_stuck=None) -> None:
        self.sched = sched
        self.on_stuck = on_stuck  # called (from this thread) with a message once simulated time stands still
        self.t0 = t0
        self.thread_id = threading.get_ident()
        # a real-time scheduler reads trio's clock, which only its own thread may: keep a fixed point
        self._realtime = getattr(sched, "realtime", False)
        self._wall0, self._sim0 = time.perf_counter(), sched.now - t0
        self._speed = getattr(sched, "speed", 1.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._found: dict[tuple[str, str], list] = {}  # (host, where) -> [count, max wall s, first t]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="playground-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> list[Blocking]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return [Blocking(host, where, c, round(m, 3), round(t, 6)) for (host, where), (c, m, t) in self._found.items()]

    def _watch(self) -> None:
        sched, wait = self.sched, self._stop.wait
        seen = sched.fired
        last_look = time.perf_counter()
        still = 0  # looks in a row with no event fired
        changed = last_look  # the last look that saw the count move
        stall: tuple[tuple[str, str], float, float] | None = None  # (host, where), since (wall), sim time
        sim_seen = None if self._realtime else sched.now  # for time that stands still (virtual time only)
        sim_since, moving, where, was_fired = last_look, 0, None, seen
        while not wait(POLL_S):
            now = time.perf_counter()
            late = now - last_look > _LATE_S
            last_look = now
            fired = sched.fired
            if not self._realtime and self.on_stuck is not None:
                if sched.now != sim_seen:  # the common case: time moves, nothing to look at
                    sim_seen, sim_since, moving, here = sched.now, now, 0, None
                else:
                    here = self._innermost()
                    # working, not blocked: events fired since the last look, or the thread is somewhere
                    # else at each look (a blocking call holds it in one place; an idle loop waits in
                    # trio's I/O poll). A look or two of that can be the work done just before a block.
                    if fired != was_fired or (here is not None and where is not None and here != where):
                        moving += 1
                    else:
                        moving = 0
                where, was_fired = here, fired
                if moving >= 3 and now - sim_since > limits.MAX_STILL_WALL_S:
                    self.on_stuck(still_message(sim_seen - self.t0, now - sim_since))
                    self.on_stuck = None
            if fired != seen or late:
                if stall is not None and not late:
                    # it started within a look after ``changed`` and ended within a look before now
                    self._note(stall[0], now - changed - POLL_S, stall[2])
                seen, still, stall, changed = fired, 0, None, now
                continue
            still += 1
            if still == 2 and stall is None:
                frame = sys._current_frames().get(self.thread_id)
                found = _user_frame(frame) if frame is not None else None
                del frame
                if found is not None:
                    where, host = found
                    stall = ((host, where), changed, self._sim_now())
        if stall is not None:  # the run ended while user code held it
            self._note(stall[0], time.perf_counter() - changed - POLL_S, stall[2])

    def _innermost(self):
        """Where the simulation thread is now (code and instruction), or None while it waits for I/O.

        Trio's loop polls for I/O every round, and that poll releases the GIL, so this thread's
        looks land there most often: a poll with no timeout is a loop going round (work), one
        with a timeout is the loop waiting (idle).
        """
        frame = sys._current_frames().get(self.thread_id)
        try:
            if frame is None:
                return None
            if os.path.basename(frame.f_code.co_filename).startswith("_io_"):
                timeout = frame.f_locals.get("timeout")
                return None if timeout is None or timeout > 0 else object()  # a new round: unlike any other look
            return frame.f_code, frame.f_lasti
        finally:
            del frame

    def _sim_now(self) -> float:
        if self._realtime:
            return self._sim0 + (time.perf_counter() - self._wall0) * self._speed
        return self.sched.now - self.t0

    def _note(self, key: tuple[str, str], held: float, t_s: float) -> None:
        row = self._found.get(key)
        if row is None:
            self._found[key] = [1, held, t_s]
        else:
            row[0] += 1
            row[1] = max(row[1], held)
