"""Virtual time: a trio clock that jumps straight to the next thing that happens.

A discrete-event simulator (SimPy, Ciw) keeps a heap of future events and pops
them in time order; nothing waits for the wall clock. trio already keeps a heap
of deadlines, but reaching it costs a cancel scope per sleep. This module keeps
the simulator's own heap *inside* trio's clock: when trio has nothing runnable
it asks the clock how long to sleep (``deadline_to_sleep_time``); the virtual
clock answers "zero", after moving time to the earliest pending entry and
firing it. An entry is either a sleeping task (rescheduled, so it resumes) or a
small engine callback (a message arriving, a timeout firing) that runs inline
and costs no task switch at all. Entries due at the current time (a message
over a zero-latency link, a wake-up) skip the heap: they queue in a FIFO,
which is already in firing order, and the two are merged as they fire (like
asyncio's ready queue beside its timer heap), in the same order one heap gives.

Plain ``trio.sleep`` and trio timeouts keep working: the clock also jumps to
trio's own next deadline when that comes first.

Determinism. trio randomises the order of tasks that become runnable in the
same batch. The clock wakes at most one task per batch and every engine wake-up
goes through the heap, in (time, sequence) order, so runs repeat exactly.

Real time (``RealtimeScheduler``) keeps the same heap but is driven by a trio
task sleeping until the next entry against trio's ordinary clock, the way
SimPy's ``rt.py`` swaps only the time source.
"""
from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

__all__ = ["Scheduler", "VirtualClock", "RealtimeScheduler", "Timer"]

_push = heapq.heappush
_pop = heapq.heappop


class Timer(list):
    """A pending heap entry ``[time, seq, fn, arg]``; ``cancel()`` disarms it."""

    __slots__ = ()

    def cancel(self) -> None:
        self[2] = None

    @property
    def when(self) -> float:
        return self[0]

    @property
    def pending(self) -> bool:
        return self[2] is not None


def _abort_sleep(entry: Timer):
    def abort(_raise_cancel) -> Abort:
        entry[2] = None
        return Abort.SUCCEEDED

    return abort


class Scheduler:
    """The simulator's event heap: ``call_at``, ``call_later``, ``sleep``, ``wake``.

    Entries fire in (time, insertion order). Callbacks must be quick and must not
    block; anything that waits belongs in a task.
    """

    realtime = False

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[Timer] = []
        # Entries due at the time they were made, in the order made: (time, seq) order, since
        # ``now`` never goes back. ``fire_until`` merges them with the heap.
        self._due: deque[Timer] = deque()
        self._seq = itertools.count()
        self._woke = 0  # tasks rescheduled by the entry being fired
        self.fired = 0  # entries fired (for statistics)

    # -- scheduling -----------------------------------------------------------
    def call_at(self, when: float, fn, arg=None) -> Timer:
        entry = Timer((when, next(self._seq), fn, arg))
        if when == self.now:
            self._due.append(entry)
        else:
            _push(self._heap, entry)
        return entry

    def call_later(self, delay_s: float, fn, arg=None) -> Timer:
        entry = Timer((self.now + delay_s, next(self._seq), fn, arg))
        _push(self._heap, entry)
        return entry

    def call_soon(self, fn, arg=None) -> Timer:
        entry = Timer((self.now, next(self._seq), fn, arg))
        self._due.append(entry)
        return entry

    def next_seq(self) -> int:
        """Take a place in the firing order now, for an entry pushed later by ``call_at_seq``."""
        return next(self._seq)

    def call_at_seq(self, when: float, seq: int, fn, arg=None) -> Timer:
        """``call_at`` with a place in the order taken earlier (``next_seq``): it fires
        exactly where an entry pushed at that moment would have."""
        entry = Timer((when, seq, fn, arg))
        _push(self._heap, entry)
        return entry

    def _wake_task(self, task_and_value) -> None:
        task, value = task_and_value
        self._woke += 1
        if value is None:
            reschedule(task)
        else:
            reschedule(task, value)

    def _wake_sleeper(self, task) -> None:
        self._woke += 1
        reschedule(task)

    def wake(self, task, value) -> Timer:
        """Resume ``task`` (blocked in ``wait_task_rescheduled``) with an outcome, in heap order."""
        return self.call_soon(self._wake_task, (task, value))

    async def sleep(self, delay_s: float) -> None:
        """Sleep ``delay_s`` of simulated time; cheaper than ``trio.sleep``."""
        entry = Timer((self.now + delay_s, next(self._seq), self._wake_sleeper, current_task()))
        _push(self._heap, entry)
        await wait_task_rescheduled(_abort_sleep(entry))

    # -- driving ----------------------------------------------------------------
    def next_time(self) -> float:
        heap, due = self._heap, self._due
        while heap and heap[0][2] is None:
            _pop(heap)
        while due and due[0][2] is None:
            due.popleft()
        return min(heap[0][0] if heap else math.inf, due[0][0] if due else math.inf)

    def fire_until(self, limit: float, runq=()) -> bool:
        """Fire entries with time <= ``limit`` until one makes a task runnable. True if one did.

        ``runq`` is trio's run queue when known, so that a callback which wakes a
        task some other way (a cancel scope, ``start_soon``) also stops the firing.
        """
        heap = self._heap
        due = self._due
        while heap or due:
            # the earlier of the two heads, by (time, seq): the order a single heap would give
            if due and not (heap and heap[0] < due[0]):
                entry = due[0]
                if entry[0] > limit:
                    return False
                due.popleft()
            else:
                entry = heap[0]
                if entry[0] > limit:
                    return False
                _pop(heap)
            fn = entry[2]
            if fn is None:
                continue
            entry[2] = None
            if entry[0] > self.now:
                self.now = entry[0]
            self.fired += 1
            fn(entry[3])
            if self._woke or runq:
                self._woke = 0
                return True
        return False

    @property
    def pending(self) -> int:
        return sum(1 for e in itertools.chain(self._heap, self._due) if e[2] is not None)


class VirtualClock(trio.abc.Clock):
    """A trio clock whose time is the simulator's: it never waits for the wall clock.

    Pass it to ``trio.run(..., clock=VirtualClock())``, or return one from a
    pytest fixture and pytest-trio will use it. ``Sim`` does this for you.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self.scheduler = Scheduler()
        self.scheduler.now = float(start_s)
        self._runq = ()

    def start_clock(self) -> None:
        try:  # trio's run queue, to notice tasks woken by anything, not only the scheduler
            from trio._core._run import GLOBAL_RUN_CONTEXT

            self._runq = GLOBAL_RUN_CONTEXT.runner.runq
        except Exception:  # pragma: no cover - a future trio may move it
            self._runq = ()

    def current_time(self) -> float:
        return self.scheduler.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        s = self.scheduler
        if s.fire_until(deadline, self._runq):
            return 0.0
        # No task woke: jump to trio's own next deadline, if there is one.
        if deadline != math.inf:
            if deadline > s.now:
                s.now = deadline
            return 0.0
        return math.inf

    def __repr__(self) -> str:
        return f"<VirtualClock now={self.scheduler.now:.6f}s pending={self.scheduler.pending}>"


class RealtimeScheduler(Scheduler):
    """The same heap, driven against the wall clock by a trio task (``drive``).

    ``speed`` > 1 runs faster than real time. ``now`` counts seconds since start.
    """

    realtime = True

    def __init__(self, speed: float = 1.0) -> None:
        super().__init__()
        self.speed = speed
        self._t0 = trio.current_time()
        self._kick: trio.CancelScope | None = None
        self._halted = False

    @property
    def now(self) -> float:  # type: ignore[override]
        return (trio.current_time() - self._t0) * self.speed

    @now.setter
    def now(self, value: float) -> None:  # the base class writes it; real time ignores that
        pass

    def call_at(self, when: float, fn, arg=None) -> Timer:
        return self.call_at_seq(when, next(self._seq), fn, arg)

    def call_at_seq(self, when: float, seq: int, fn, arg=None) -> Timer:
        entry = super().call_at_seq(when, seq, fn, arg)
        if self._kick is not None and self._heap[0] is entry:
            self._kick.deadline = self._t0 + when / self.speed
        return entry

    def call_later(self, delay_s: float, fn, arg=None) -> Timer:
        return self.call_at(self.now + delay_s, fn, arg)

    def call_soon(self, fn, arg=None) -> Timer:
        return self.call_at(self.now, fn, arg)

    def _wake_task(self, task_and_value) -> None:
        task, value = task_and_value
        reschedule(task) if value is None else reschedule(task, value)

    def _wake_sleeper(self, task) -> None:
        reschedule(task)

    async def sleep(self, delay_s: float) -> None:
        entry = self.call_at(self.now + delay_s, self._wake_sleeper, current_task())
        await wait_task_rescheduled(_abort_sleep(entry))

    async def drive(self) -> None:
        """Fire due entries until ``halt()``; run this in a nursery."""
        while not self._halted:
            t = self.next_time()
            with trio.CancelScope(deadline=self._t0 + t / self.speed) as scope:
                self._kick = scope
                await trio.sleep_forever()
            self._kick = None
            now = self.now
            heap = self._heap
            while heap and heap[0][0] <= now and not self._halted:
                entry = _pop(heap)
                fn = entry[2]
                if fn is not None:
                    entry[2] = None
                    self.fired += 1
                    fn(entry[3])

    def halt(self) -> None:
        """Stop firing entries: the run is over, and its hosts are being torn down."""
        self._halted = True
        if self._kick is not None:
            self._kick.cancel()


def wall_time() -> float:
    return time.perf_counter()
