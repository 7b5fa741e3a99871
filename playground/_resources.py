"""A FIFO resource with a fixed number of slots: CPU cores, disk channels, a pool.

``await resource.use(seconds)`` takes a slot (queueing first-come first-served
when all are taken), holds it for ``seconds`` of simulated time, and gives it to
the next waiter. ``acquire``/``release`` exist for holding a slot across other
awaits (a database connection held while a query runs). Waiters are woken
through the scheduler's heap, so the order is deterministic.

``acquire_then(fn, arg)`` is the same wait without a task: ``fn(arg)`` runs
when the slot is taken (at once if one is free, else through the heap, exactly
where a waiting task would have been woken). The engine uses it to serve
requests that only hold a core for a while with callbacks (``AppServer``).
"""
from __future__ import annotations

from collections import deque

from trio.lowlevel import Abort, current_task

from ._clock import wait_rescheduled
from . import limits
from ._errors import ConfigError, check_at_most
from ._metrics import TimeWeighted

__all__ = ["Resource"]


class Resource:
    """``capacity`` slots shared first-come first-served.

    In a task (``sched`` is the run's scheduler), 2 ms of CPU on one of four cores:

        >>> cores = Resource(sched, capacity=4)     # doctest: +SKIP
        >>> await cores.use(0.002)                  # doctest: +SKIP
    """

    def __init__(self, sched, capacity: int, name: str = "resource") -> None:
        if not (isinstance(capacity, int) and not isinstance(capacity, bool) and capacity >= 1):
            raise ConfigError(f"{name} capacity must be an integer >= 1, got {capacity!r}")
        check_at_most(f"{name} capacity", capacity, limits.MAX_SLOTS, "", limits.WHY["slots"])
        self.sched = sched
        self.capacity = capacity
        self.name = name
        self.in_use = 0
        self._waiters: deque = deque()
        now = sched.now
        self.busy = TimeWeighted(now)
        self.waiting = TimeWeighted(now)
        self.served = 0

    @property
    def queue_length(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            self.busy.set(self.in_use, self.sched.now)
            return
        task = current_task()
        entry = [task, None, None, None]  # [task, wake-up timer, callback, its argument]
        self._waiters.append(entry)
        self.waiting.set(len(self._waiters), self.sched.now)

        def abort(_):
            if entry[1] is not None:  # already handed a slot: cancel the wake-up, pass the slot on
                entry[1].cancel()
                self.served -= 1
                self.release()
            else:
                self._waiters.remove(entry)
                self.waiting.set(len(self._waiters), self.sched.now)
            return Abort.SUCCEEDED

        await wait_rescheduled(abort)

    def acquire_then(self, fn, arg=None) -> None:
        """Take a slot, then call ``fn(arg)``: now if one is free, else when it is handed over."""
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            self.busy.set(self.in_use, self.sched.now)
            fn(arg)
            return
        self._waiters.append([None, None, fn, arg])
        self.waiting.set(len(self._waiters), self.sched.now)

    def release(self, completed: bool = True) -> None:
        """Give the slot back; ``completed=False`` for a service cut short (its task was cancelled)."""
        now = self.sched.now
        self.served += completed
        if self._waiters:
            entry = self._waiters.popleft()
            self.waiting.set(len(self._waiters), now)
            # the slot passes straight to the waiter: in_use is unchanged
            if entry[0] is None:  # a callback waiter (acquire_then): one heap entry, as a wake-up is
                entry[1] = self.sched.call_soon(entry[2], entry[3])
            else:
                entry[1] = self.sched.wake(entry[0], None)
        else:
            self.in_use -= 1
            self.busy.set(self.in_use, now)

    async def use(self, seconds: float) -> None:
        """Hold one slot for ``seconds`` of simulated time."""
        if self.in_use < self.capacity and not self._waiters:  # ``acquire``'s free slot, without its frame
            self.in_use += 1
            self.busy.set(self.in_use, self.sched.now)
        else:
            await self.acquire()
        try:
            await self.sched.start_sleep(seconds)  # ``sched.sleep`` without its frame: every resume passes through it
        except BaseException:  # cancelled (a crash): the slot is free again, no service completed
            self.release(completed=False)
            raise
        self.release()

    async def use_traced(self, seconds: float, span) -> None:
        """``use`` for a traced request: notes the wait for a slot and the time on it as spans."""
        from ._trace import cpu

        asked = self.sched.now
        await self.acquire()
        granted = self.sched.now
        try:
            await self.sched.sleep(seconds)
        finally:
            self.release()
            cpu(span, asked, granted, self.sched.now)

    def utilisation(self, now: float) -> float:
        return self.busy.mean(now) / self.capacity

    def reset(self) -> None:
        """Forget holders and waiters (the host crashed); their tasks were cancelled."""
        self._waiters.clear()
        self.in_use = 0
        now = self.sched.now
        self.busy.set(0, now)
        self.waiting.set(0, now)

