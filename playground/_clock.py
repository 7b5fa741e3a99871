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

import functools
import heapq
import itertools
import math
import time
import types
from collections import deque
from contextvars import ContextVar

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from ._errors import PlaygroundError

__all__ = ["Scheduler", "VirtualClock", "RealtimeScheduler", "Timer", "Sent", "TaskWaits", "task_waits", "wait_rescheduled",
           "wait_with"]

_push = heapq.heappush
_INF = math.inf
_pop = heapq.heappop

try:
    from trio._core._traps import WaitTaskRescheduled as _WaitTaskRescheduled

    @types.coroutine
    def wait_rescheduled(abort_func):
        """``trio.lowlevel.wait_task_rescheduled`` in one frame instead of three (the engine's hot trap)."""
        return (yield _WaitTaskRescheduled(abort_func)).unwrap()

    @types.coroutine
    def wait_with(message):
        """``wait_rescheduled`` with its trap message made already (``waiter``, ``TaskWaits``)."""
        return (yield message).unwrap()

    _message = _WaitTaskRescheduled
except ImportError:  # pragma: no cover - a future trio may move it
    wait_rescheduled = wait_with = wait_task_rescheduled

    def _message(abort_func):
        return abort_func


def waiter(abort_func):
    """``wait_rescheduled`` bound to one abort function, for a task that waits with it again
    and again (a host's idle worker): its trap message is made once, not on every wait."""
    return functools.partial(wait_with, _message(abort_func))


_TASK_WAITS: ContextVar = ContextVar("playground_task_waits", default=None)


class TaskWaits:
    """What one task's waits on the engine share, made once a task instead of once a wait.

    A task waiting on the engine (a sleep, a core, an answer) yields a trap
    message to trio naming the function that aborts the wait if the task is
    cancelled, and a call waits for an ``on_reply`` that wakes it. Made afresh
    for every wait, these were three objects a wait (the message alone an
    attrs class's ``__init__``). One task waits for one thing at a time, so
    they can be its own, made once: each abort finds what the task waits on
    in ``task.custom_sleep_data`` (trio's slot for just this; it clears it on
    every wake-up). Kept in the task's own context (a context variable), so
    they go with the task; a child task, which starts with a copy of its
    parent's context, makes its own.
    """

    __slots__ = ("task", "sched", "sleep", "call", "answer")

    def __init__(self, task, sched: "Scheduler") -> None:
        self.task = task
        self.sched = sched

        def abort_sleep(_raise_cancel) -> Abort:
            task.custom_sleep_data[2] = None  # the heap entry that would wake it is disarmed
            return Abort.SUCCEEDED

        def abort_call(_raise_cancel) -> Abort:
            task.custom_sleep_data.done = True  # the exchange: its answer or timeout, if any, does nothing
            return Abort.SUCCEEDED

        def answer(result) -> None:  # an exchange's ``on_reply``: runs inside the scheduler, resumes directly
            sched._woke += 1
            reschedule = sched.reschedule  # read, then called (see _TaskStepper.step)
            reschedule(task, Sent(result))

        self.sleep = _message(abort_sleep)
        self.call = _message(abort_call)
        self.answer = answer


def task_waits(task, sched: "Scheduler") -> TaskWaits:
    """``task``'s ``TaskWaits`` on ``sched``: the current task's, made on its first wait."""
    waits = _TASK_WAITS.get()
    if waits is None or waits.task is not task or waits.sched is not sched:
        waits = TaskWaits(task, sched)
        _TASK_WAITS.set(waits)
    return waits


class Sent:
    """The outcome an engine wake-up sends a waiting task: ``outcome.Value``'s ``unwrap``
    without its attrs machinery and its unwrap-once bookkeeping (several wake-ups a request)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def unwrap(self):
        return self.value


NOTHING = Sent(None)  # the wake-up of a sleep: shared, as nothing in it changes


class Timer(list):
    """A pending heap entry ``[time, seq, fn, arg]``; ``cancel()`` disarms it."""

    __slots__ = ()

    def cancel(self) -> None:
        self[2] = None

    def abort(self, _raise_cancel) -> Abort:
        """Abort callback of a task sleeping on this entry: the wake-up is disarmed."""
        self[2] = None
        return Abort.SUCCEEDED

    @property
    def when(self) -> float:
        return self[0]

    @property
    def pending(self) -> bool:
        return self[2] is not None


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
        # trio's reschedule; the virtual clock puts its runner's own method here (one call less)
        self.reschedule = reschedule
        self.failure: PlaygroundError | None = None  # the first callback that raised, as an error to raise
        self.on_failure = None  # called (no arguments) when a callback raises: the Sim ends its run
        self.origin_s = 0.0  # where the current run's time starts (for messages)
        # A callable that is true once Ctrl-C is waiting to be delivered (the virtual clock sets
        # it to read trio's runner): firing stops to let trio raise it, or a run that wakes no
        # task, or wakes one that is stepped here, would go on firing to its end.
        self.interrupted = None
        self.attention = False  # set by another thread that queued a call for trio's loop (the watchdog)

    def callback_failed(self, fn, exc: Exception) -> None:
        """A callback raised: a bug in the engine or in a component. Keep it, named, and end the run.

        Raising here would reach trio's run loop, which reports any exception
        from its clock as ``TrioInternalError``; the ``Sim`` raises this
        ``PlaygroundError`` from its run instead, with the original chained.
        """
        if self.failure is None:
            owner = getattr(fn, "__self__", None)
            what = getattr(fn, "__qualname__", repr(fn))
            name = getattr(owner, "name", None)
            where = f"{type(owner).__name__} {name!r}" if isinstance(name, str) else "the engine"
            error = PlaygroundError(f"{where}: callback {what} failed at t={self.now - self.origin_s:.6f}s: {exc!r}")
            error.__cause__ = exc
            self.failure = error
        if self.on_failure is not None:
            self.on_failure()
        else:  # no Sim is listening (a bare clock): trio reports it, chained
            raise self.failure from exc

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

    def post(self, when: float, fn, arg=None) -> list:
        """``call_at`` with a plain list for its entry instead of a ``Timer``: a third of the cost
        to make, and the scheduler's loop reads plain lists faster than a subclass (most entries
        are these). Its owner disarms it, if ever, with ``entry[2] = None``."""
        entry = [when, next(self._seq), fn, arg]
        if when == self.now:
            self._due.append(entry)
        else:
            _push(self._heap, entry)
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
        reschedule = self.reschedule  # read, then called (see _TaskStepper.step)
        reschedule(task, NOTHING if value is None else value)

    def _wake_sleeper(self, task) -> None:
        self._woke += 1
        reschedule = self.reschedule
        reschedule(task, NOTHING)

    def wake(self, task, value) -> Timer:
        """Resume ``task`` (blocked in ``wait_task_rescheduled``) with an outcome, in heap order."""
        return self.call_soon(self._wake_task, (task, value))

    async def sleep(self, delay_s: float) -> None:
        """Sleep ``delay_s`` of simulated time; cheaper than ``trio.sleep``."""
        await self.start_sleep(delay_s)

    def start_sleep(self, delay_s: float):
        """Set the current task's wake-up ``delay_s`` from now; what it awaits to sleep until then.

        A plain function, not a coroutine: a caller that inlines a sleep (a core held for
        a while) adds no frame that every resume would pass through."""
        task = current_task()
        entry = [self.now + delay_s, next(self._seq), self._wake_sleeper, task]  # ``post``'s plain list
        _push(self._heap, entry)
        task.custom_sleep_data = entry
        return wait_with(task_waits(task, self).sleep)

    # -- driving ----------------------------------------------------------------
    def next_time(self) -> float:
        heap, due = self._heap, self._due
        while heap and heap[0][2] is None:
            _pop(heap)
        while due and due[0][2] is None:
            due.popleft()
        return min(heap[0][0] if heap else math.inf, due[0][0] if due else math.inf)

    def fire_until(self, limit: float, runq=(), step=None) -> bool:
        """Fire entries with time <= ``limit`` until one makes a task runnable. True if one did.

        ``runq`` is trio's run queue when known, so that a callback which wakes a
        task some other way (a cancel scope, ``start_soon``) also stops the firing.
        ``step`` (the virtual clock's ``_step``) runs a lone woken task's next step
        right here, as trio's own round would, and returns trio's next deadline, or
        None when trio must take over (see ``VirtualClock``).
        """
        heap = self._heap
        due = self._due
        # ``while True`` and a test inside, not ``while heap or due``: CPython 3.11 compiles the
        # latter's loop end to a conditional backward jump, which does not count towards the
        # quickening of this code, so a run that never ``continue``s (no cancelled entries)
        # would spend all its first run in the unspecialised interpreter (the function is only
        # entered a few times a run). Measured with valgrind on the M/M/8 of bench/vs_peers.py, a
        # first run in its process: 143,400 instructions a request with that loop, 135,200 with this.
        while True:
            if not (heap or due):
                return False
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
            try:
                fn(entry[3])
            except Exception as exc:  # never let it reach trio: that would be "internal error in Trio"
                self.callback_failed(fn, exc)
            if self._woke or runq:
                self._woke = 0
                if step is None or len(runq) != 1 or self.now >= limit:
                    return True
                limit = step()
                if limit is None:
                    return True
            if not self.fired & 1023 and (self.attention or self.interrupted is not None and self.interrupted()):
                return True  # trio's next round delivers the KeyboardInterrupt, or runs the watchdog's call

    @property
    def pending(self) -> int:
        return sum(1 for e in itertools.chain(self._heap, self._due) if e[2] is not None)


class VirtualClock(trio.abc.Clock):
    """A trio clock whose time is the simulator's: it never waits for the wall clock.

    Pass it to ``trio.run(..., clock=VirtualClock())``, or return one from a
    pytest fixture and pytest-trio will use it. ``Sim`` does this for you.

    A lone task woken by an entry is stepped here, inside the clock, instead
    of in a trio round of its own: trio would run exactly that task next (the
    entry is due before trio's next deadline and nothing else is runnable), so
    the clock does what trio's round does for a one-task batch - set the
    current task, send the outcome into its coroutine, record the trap it
    yields, deliver a pending cancellation - and goes on firing entries. It is
    still a real trio task: ``current_task()``, cancel scopes, nurseries and
    locks see nothing different, and the order of everything is unchanged (the
    random draw trio makes per round is made too, so later multi-task batches
    are ordered as before). What is saved is the round itself: the I/O poll,
    the deadline bookkeeping and the run-queue batch. With instruments or a
    pending KeyboardInterrupt the clock hands the task back to trio.
    """

    step_tasks = True  # False: every woken task waits for a trio round (the plain path, for tests)

    def __init__(self, start_s: float = 0.0) -> None:
        self.scheduler = Scheduler()
        self.scheduler.now = float(start_s)
        self._runq = ()
        self._stepper = None

    def start_clock(self) -> None:
        self._runq, self._stepper = (), None
        self.scheduler.interrupted = None
        self.scheduler.reschedule = reschedule
        try:  # trio's run queue, to notice tasks woken by anything, not only the scheduler
            from trio._core import _run

            runner = _run.GLOBAL_RUN_CONTEXT.runner
            self._runq = runner.runq
            self._stepper = _TaskStepper(runner, _run) if self.step_tasks else None
            self.scheduler.interrupted = lambda: runner.ki_pending
            self.scheduler.reschedule = _reschedule_for(runner)
        except Exception:  # pragma: no cover - a future trio may move it
            pass

    def current_time(self) -> float:
        return self.scheduler.now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        s = self.scheduler
        stepper = self._stepper
        if s.fire_until(deadline, self._runq, stepper.step if stepper is not None and stepper.usable() else None):
            return 0.0
        # No task woke: jump to trio's own next deadline, if there is one.
        deadline = stepper.next_deadline() if stepper is not None else deadline
        if deadline != math.inf:
            if deadline > s.now:
                s.now = deadline
            return 0.0
        return math.inf

    def __repr__(self) -> str:
        return f"<VirtualClock now={self.scheduler.now:.6f}s pending={self.scheduler.pending}>"


def _reschedule_for(runner):
    """``runner.reschedule`` for the engine's wake-ups (several a request): the same, but its
    look for a ``task_scheduled`` instrument reads the hooks' dict, not the ``Instruments``
    mapping (a ``UserDict``, whose ``in`` is a Python call). Anything unusual - a task not
    blocked in this run, guest mode, such an instrument - goes to trio's own."""
    runq = runner.runq
    hooks = runner.instruments.data
    slow = runner.reschedule

    def reschedule(task, next_send) -> None:
        if task._next_send_fn is not None or task._runner is not runner or runner.is_guest or "task_scheduled" in hooks:
            return slow(task, next_send)  # its assertions, the guest tick, the instruments
        task._next_send_fn = task.coro.send
        task._next_send = next_send
        task._abort_func = None
        task.custom_sleep_data = None
        runq.append(task)

    return reschedule


class _TaskStepper:
    """One step of one trio task, exactly as ``trio._core._run.unrolled_run`` takes it."""

    __slots__ = ("runner", "runq", "ctx", "draw", "next_deadline", "deadlines", "wait", "shielded", "detach", "Value", "Error",
                 "tb_frames")

    def __init__(self, runner, run_module) -> None:
        from outcome import Error, Value

        self.runner = runner
        self.runq = runner.runq
        self.ctx = run_module.GLOBAL_RUN_CONTEXT
        self.draw = run_module._r.random  # bound once: ``rng.random()`` is a method read each time
        self.next_deadline = runner.deadlines.next_deadline
        self.deadlines = runner.deadlines  # its ``_heap`` is read each time: pruning replaces the list
        self.wait = run_module.WaitTaskRescheduled
        self.shielded = run_module.CancelShieldedCheckpoint
        self.detach = run_module.PermanentlyDetachCoroutineObject
        self.tb_frames = 1 + run_module.CONTEXT_RUN_TB_FRAMES
        self.Value, self.Error = Value, Error
        runner.is_guest, runner.ki_pending, runner.instruments.data, runner.deadlines._heap  # noqa: B018 - fail now if they moved
        run_module.Task._cancel_status, run_module.CancelStatus.effectively_cancelled  # noqa: B018

    def usable(self) -> bool:
        r = self.runner
        # trio's Instruments always holds the key "_all"; any other key is an installed instrument
        return len(r.instruments) <= 1 and not (r.ki_pending or r.is_guest)

    def step(self) -> float | None:
        """Run the one runnable task to its next trap; trio's next deadline, or None if trio must go on."""
        runner = self.runner
        runq = self.runq
        task = runq.popleft()
        # the draw trio's round makes (whether to reverse its batch); read, then called: CPython 3.11
        # does not specialise ``self.draw()``, a call of a callable kept on an instance
        draw = self.draw
        draw()
        ctx = self.ctx
        ctx.task = task
        send_fn, value = task._next_send_fn, task._next_send
        task._next_send_fn = task._next_send = None
        try:
            msg = task.context.run(send_fn, value)
        except StopIteration as stop:
            runner.task_exited(task, self.Value(stop.value))
            del ctx.task
            return None
        except BaseException as exc:
            tb = exc.__traceback__
            for _ in range(self.tb_frames):
                if tb is not None:
                    tb = tb.tb_next
            outcome = self.Error(exc.with_traceback(tb))
            del tb, exc
            runner.task_exited(task, outcome)
            del ctx.task
            return None
        task._schedule_points += 1
        if type(msg) is self.wait:
            task._cancel_points += 1
            task._abort_func = msg.abort_func
            if task._cancel_status.effectively_cancelled:  # the method's own first test, without its call
                task._attempt_delivery_of_any_pending_cancel()
        elif msg is self.shielded:
            runner.reschedule(task)
        elif type(msg) is self.detach:
            runner.task_exited(task, msg.final_outcome)
        else:
            runner.reschedule(task, TypeError(  # type: ignore[arg-type]
                f"trio.run received unrecognized yield message {msg!r}. Are you trying to use a library "
                "written for some other framework like asyncio? That won't work without some kind of "
                "compatibility shim."))
            task._next_send_fn = task.coro.throw
        del ctx.task, msg
        if runq:
            return None
        if not self.deadlines._heap:  # ``Deadlines.next_deadline`` without its call, when trio has none
            return _INF
        return self.next_deadline()


class RealtimeScheduler(Scheduler):
    """The same heap, driven against the wall clock by a trio task (``drive``).

    ``speed`` > 1 runs faster than real time. ``now`` counts seconds since start.

    When the process falls behind the wall clock (a busy machine, a flood of
    real requests), entries would fire late and every simulated latency would
    grow by the delay: health checks would time out and mark healthy backends
    down. Instead simulated time *pauses*: it never runs more than
    ``max_lag_s`` ahead of the earliest entry not yet fired, and the wall
    time skipped that way is counted (``lag()``), never spent inside the
    simulation. Afterwards simulated time runs at wall speed again, behind
    the wall clock by the total pause; every arrival and timeout still fires
    at its simulated time, only later in wall time.
    """

    realtime = True

    def __init__(self, speed: float = 1.0, max_lag_s: float = 0.05) -> None:
        super().__init__()
        self.speed = speed
        self.max_lag_s = max_lag_s
        self._t0 = trio.current_time()
        self._paused_wall_s = 0.0  # wall seconds simulated time was held back, in all
        self._kick: trio.CancelScope | None = None
        self._halted = False
        self.stalls: deque[tuple[float, float]] = deque(maxlen=100)  # (simulated time, wall seconds paused)
        self._stall_at: float | None = None
        self._firing = math.inf  # the time of the entry being fired, while its callback runs
        self._stall_s = 0.0
        self.stall_count = 0
        self.longest_stall_s = 0.0

    @property
    def now(self) -> float:  # type: ignore[override]
        t = (trio.current_time() - self._t0 - self._paused_wall_s) * self.speed
        heap = self._heap
        while heap and heap[0][2] is None:
            _pop(heap)
        earliest = min(heap[0][0] if heap else math.inf, self._firing)
        if t > earliest + self.max_lag_s:
            # behind: hold simulated time just past the earliest entry not yet fired
            held = earliest + self.max_lag_s
            skipped = (t - held) / self.speed
            self._paused_wall_s += skipped
            if self._stall_at is None:
                self._stall_at = held
                self._stall_s = 0.0
                self.stall_count += 1
            self._stall_s += skipped
            self.longest_stall_s = max(self.longest_stall_s, self._stall_s)
            return held
        if self._stall_at is not None and (not heap or heap[0][0] > t):
            self.stalls.append((self._stall_at, self._stall_s))  # caught up
            self._stall_at = None
        return t

    @now.setter
    def now(self, value: float) -> None:  # the base class writes it; real time ignores that
        pass

    def lag(self) -> dict[str, float | int | None]:
        """How far behind the wall clock the simulation is, and how it got there (seconds)."""
        try:
            self.now  # noqa: B018 - reading the time brings the figures up to date
        except RuntimeError:  # after the run, outside trio: the figures as they were at its end
            pass
        return {"behind_s": round(self._paused_wall_s, 6), "stalls": self.stall_count,
                "longest_stall_s": round(self.longest_stall_s, 6),
                "stalled_since_s": None if self._stall_at is None else round(self._stall_at, 6)}

    def _wall_deadline(self, when: float) -> float:
        return self._t0 + self._paused_wall_s + when / self.speed

    def call_at(self, when: float, fn, arg=None) -> Timer:
        return self.call_at_seq(when, next(self._seq), fn, arg)

    def call_at_seq(self, when: float, seq: int, fn, arg=None) -> Timer:
        entry = super().call_at_seq(when, seq, fn, arg)
        if self._kick is not None and self._heap[0] is entry:
            self._kick.deadline = self._wall_deadline(when)
        return entry

    def call_later(self, delay_s: float, fn, arg=None) -> Timer:
        return self.call_at(self.now + delay_s, fn, arg)

    def call_soon(self, fn, arg=None) -> Timer:
        return self.call_at(self.now, fn, arg)

    def post(self, when: float, fn, arg=None) -> list:
        return self.call_at(when, fn, arg)

    def _wake_task(self, task_and_value) -> None:
        task, value = task_and_value
        reschedule(task, NOTHING if value is None else value)

    def _wake_sleeper(self, task) -> None:
        reschedule(task, NOTHING)

    def start_sleep(self, delay_s: float):
        entry = self.call_at(self.now + delay_s, self._wake_sleeper, current_task())
        return wait_task_rescheduled(entry.abort)

    async def drive(self) -> None:
        """Fire due entries until ``halt()``; run this in a nursery."""
        heap = self._heap
        while not self._halted:
            t = self.next_time()
            with trio.CancelScope(deadline=self._wall_deadline(t)) as scope:
                self._kick = scope
                await trio.sleep_forever()
            self._kick = None
            while heap and not self._halted:
                while heap and heap[0][2] is None:
                    _pop(heap)
                # ``now`` holds simulated time near the head when behind, so this fires the
                # entries in time order without letting the clock run past the unfired ones
                if not heap or heap[0][0] > self.now:
                    break
                entry = _pop(heap)
                fn = entry[2]
                entry[2] = None
                self.fired += 1
                self._firing = entry[0]
                try:
                    fn(entry[3])
                except Exception as exc:
                    self.callback_failed(fn, exc)
                finally:
                    self._firing = math.inf

    def halt(self) -> None:
        """Stop firing entries: the run is over, and its hosts are being torn down."""
        self._halted = True
        if self._kick is not None:
            self._kick.cancel()


def wall_time() -> float:
    return time.perf_counter()
