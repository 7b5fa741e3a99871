"""A host: one component running as trio tasks, reachable over the network.

In the real world a host is a machine with a process listening on a port: it
accepts connections, hands requests to worker threads, queues what it cannot
start yet and refuses what does not fit. ``Node`` is that process. Subclasses
(the app server, balancers, cache, database, CDN, DNS in ``components``)
implement one method, ``async def handle(request) -> Response``, and so any of
them can stand in front of any other.

The engine keeps, per host: a pool of worker tasks (at most ``concurrency``,
spawned on demand and reused, never one task per request), a FIFO accept queue
of at most ``queue_limit`` (beyond it: 503), and the bookkeeping that feeds
``stats()``. A handler that raises becomes a 500, never a crashed simulation.
A host whose requests only hold a resource for a while (an ``AppServer`` with
no handler) serves them with scheduler callbacks instead (``_serve_inline``):
the same events, in the same order, with no task switch per request.

``crash()`` stops the host: its tasks are cancelled, requests it was holding
fail with ``reset`` and new ones are ``refused`` until ``restart()``, which
brings it back empty (``on_restart`` lets a component decide what survives:
a database keeps its rows, a cache does not).
"""
from __future__ import annotations

import random
import types
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio
from trio.lowlevel import Abort, current_task, wait_task_rescheduled

from ._clock import Sent, waiter
from ._cost import Footprint
from . import limits
from ._errors import ConfigError, RequestError, Reset, WiringError, check_at_most, check_positive
from ._errortable import ErrorRecord, ErrorTable
from ._messages import Request, Response, settle_response
from ._metrics import LatencyHistogram, LatencySummary, TimeWeighted
from . import _trace
from ._series import LatencySketch
from ._unawaited import CURRENT_HOST

if TYPE_CHECKING:
    from ._sim import Sim

__all__ = ["Node", "NodeStats"]

_INF = float("inf")


@dataclass(frozen=True)
class NodeStats:
    """A host's figures for one run. ``detail`` holds the component's own counters."""

    name: str
    kind: str
    up: bool
    served: int
    rejected: int
    refused: int
    reset: int
    handler_errors: int
    in_flight: int
    mean_in_system: float
    peak_in_system: float
    mean_queue: float  # requests waiting, time-averaged, over all of the host's lines (waiting_lines())
    peak_queue: float  # the longest of those lines at its longest
    utilisation: float
    residence: LatencySummary
    detail: dict[str, Any] = field(default_factory=dict)
    footprint: Footprint | None = None  # what the host stands for when rented (``report.cost()``)
    errors: tuple[ErrorRecord, ...] = ()  # the top error messages (``_errortable``), most frequent first
    errors_other: int = 0  # errors beyond the table's distinct messages, only counted
    warnings: tuple[str, ...] = ()  # what the wiring noticed during the run (undeclared calls, ...)


def _check_limit(name: str, value, allow_zero: bool) -> None:
    if value is None:
        return
    lo = 0 if allow_zero else 1
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
        raise ConfigError(f"{name} must be an integer >= {lo} or None, got {value!r}")
    check_at_most(name, value, limits.MAX_SLOTS, "", limits.WHY["slots"])


def _own_copy(fn):
    """``fn`` with a code object of its own, for a subclass's copy of an inherited hot method.

    CPython 3.11 specialises an attribute read for the one class it last saw at
    that place in the bytecode, and the bytecode belongs to the code object: a
    method shared by several classes of host (a balancer, app servers, a cache
    in one run) keeps failing that test and reads every attribute the slow
    way. A copy per class gives each its own."""
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__ = fn.__qualname__
    copy.__doc__ = fn.__doc__
    copy.__module__ = fn.__module__
    copy.__annotations__ = fn.__annotations__
    copy.__dict__.update(fn.__dict__)
    return copy


class Node:
    """Base class of every host. Subclass and implement ``handle``.

        >>> class Hello(Node):
        ...     async def handle(self, request):
        ...         return Response(200, body=b"hello")
    """

    kind = "node"

    # A host whose requests only hold a resource for a while and then answer (an AppServer
    # with no handler) may serve them with scheduler callbacks instead of a worker task: the
    # same events in the same order, without a task switch per request. Such a host sets
    # ``_serve_inline`` to a method that starts serving an exchange, and calls
    # ``_next_inline()`` after ``_complete`` where a worker task would take the next request.
    _serve_inline: Callable[[Any], None] | None = None

    # Methods every request passes through, shared by every kind of host: each subclass that
    # inherits one gets a copy of its own when it is defined (``_own_copy``; so replacing the
    # base's method later does not reach a subclass already made). A base adds its own hot methods.
    _hot_methods: tuple[str, ...] = ("_deliver", "_complete", "_next_inline", "_serve", "_worker")

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls._hot_methods:
            if name not in cls.__dict__:
                setattr(cls, name, _own_copy(getattr(cls, name)))

    def __init__(self, name: str, *, region: str | None = None, concurrency: int | None = None,
                 queue_limit: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"host name must be a non-empty string, got {name!r}")
        _check_limit("concurrency", concurrency, allow_zero=False)
        _check_limit("queue_limit", queue_limit, allow_zero=True)
        self.name = name
        self.region = region
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self.up = True
        self.slow_factor = 1.0
        self.sim: Sim | None = None
        self.net = None
        self.sched = None
        self.rng = random.Random(0)
        self._restart_waiter = None
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._reset_runtime(0.0)

    # -- what subclasses implement ---------------------------------------------------
    async def handle(self, request: Request) -> Response:
        """Serve one request. Runs in one of this host's worker tasks."""
        return Response(404, body=b"no handler")

    async def run(self) -> None:
        """Background work for the host's lifetime (health checks, replication); restarted on restart."""

    def downstream(self) -> tuple[str, ...]:
        """Host names this host sends requests to (for wiring checks)."""
        return ()

    def detail(self) -> dict[str, Any]:
        """The component's own counters for ``stats().detail``."""
        return {}

    def footprint(self) -> Footprint | None:
        """What this host stands for when rented (machine, balancer, cache node...), for ``report.cost()``.

        ``None`` (the default) leaves it unpriced. Called when the run's
        figures are taken, so use-based fields (GB served, queries) are the run's.
        """
        return None

    def utilisation(self) -> float:
        """Share of capacity in use, time-averaged: busy workers / concurrency by default."""
        if not self.concurrency:
            return 0.0
        return self._busy.mean(self.sched.now) / self.concurrency if self.sched else 0.0

    def waiting_lines(self) -> tuple[TimeWeighted, ...]:
        """What requests wait in (for the per-second queue figure): the accept queue, plus any
        resource queue a component adds (an app server's CPU queue, a database's I/O queue)."""
        return (self._queued,)

    def stations(self) -> tuple:
        """This host's queues as queueing theory sees them (``playground.Station``); none by default."""
        return ()

    def _new_queue(self) -> deque:
        """The accept queue: a FIFO deque; a component may return a deque subclass (LIFO, CoDel)."""
        return deque()

    def on_crash(self) -> None:
        """Called when the host crashes: drop what lives in process memory."""

    def on_restart(self) -> None:
        """Called when the host comes back; state kept by ``on_crash`` survives."""

    def validate(self, sim: "Sim") -> None:
        """Check the wiring against the topology; raise ``WiringError``."""
        for name in self.downstream():
            host = sim.net.hosts.get(name)
            if host is None:
                raise WiringError(f"{self.name!r} sends to unknown host {name!r}")
            if host.kind == "client":
                raise WiringError(f"{self.name!r} sends to {name!r}, which is a load's client host: "
                                  "it sends requests, it does not serve them")

    # -- calling other hosts -------------------------------------------------------------
    def call(self, dst: str, request: Request, timeout_s: float | None = 30.0) -> Awaitable[Response]:
        """Send ``request`` to host ``dst``; await it for the answer (raises ``RequestError``).

        A plain function that returns the network's call to await, not a coroutine of its own:
        every resume of a waiting caller would pass through that frame (several a request). An
        override may be ``async def`` and ``await super().call(...)``.
        """
        if request.trace is not None:
            return _trace.call(self, dst, request, timeout_s)
        return self.net.call(self.name, dst, request, timeout_s)

    async def get(self, dst: str, path: str, *, timeout_s: float | None = 30.0, **kw) -> Response:
        return await self.call(dst, Request("GET", path, **kw), timeout_s)

    async def sleep(self, seconds: float) -> None:
        """Sleep simulated time (cheaper than ``trio.sleep``; same meaning)."""
        if not 0.0 <= seconds < _INF:  # NaN fails too; a bad time would corrupt the event heap
            check_positive("sleep seconds", seconds, allow_zero=True)
        await self.sched.sleep(seconds)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args) -> None:
        """Run ``fn`` as a task of this host: cancelled by a crash; an exception crashes the host only."""
        self._nursery.start_soon(self._guarded, fn, args)

    async def _guarded(self, fn, args) -> None:
        CURRENT_HOST.set(self)
        try:
            await fn(*args)
        except Exception as exc:  # a component bug: the host fails, the simulation goes on
            self.counters["task_errors"] += 1
            self.last_error = repr(exc)
            self.note_error(exc, "", hint=f"in background task {getattr(fn, '__qualname__', fn)}: the host crashed")
            self.crash()

    # -- faults -------------------------------------------------------------------------
    def crash(self, restart_after_s: float | None = None) -> None:
        """Stop the host now; with ``restart_after_s``, bring it back after that long."""
        if restart_after_s is not None:
            check_positive("restart_after_s", restart_after_s, allow_zero=True)
        if self.up:
            self.up = False
            self.crashes += 1
            if self.sim is not None and self.sim.running:
                self.sim.event(f"crash {self.name}")
                self._fail_held()
                if self._scope is not None:
                    self._scope.cancel()
            self.on_crash()
        if restart_after_s is not None and self.sched is not None:
            self.sched.call_later(restart_after_s, lambda _: self.restart())

    def restart(self) -> None:
        """Bring a crashed host back, empty."""
        if self.up:
            return
        self.up = True
        self.on_restart()
        if self.sim is not None and self.sim.running:
            self.sim.event(f"restart {self.name}")
            if self._restart_waiter is not None:
                task, self._restart_waiter = self._restart_waiter, None
                self.sched.wake(task, None)

    def slow(self, factor: float = 10.0) -> None:
        """Make the host's work take ``factor`` times longer (a noisy neighbour, a GC storm)."""
        check_positive("slow factor", factor)
        self.slow_factor = float(factor)
        if self.sim is not None and self.sim.running:
            self.sim.event(f"slow {self.name} x{factor:g}")

    def heal(self) -> None:
        """Undo ``slow``."""
        self.slow_factor = 1.0
        if self.sim is not None and self.sim.running:
            self.sim.event(f"heal {self.name}")

    # -- engine side ---------------------------------------------------------------------
    def _reset_runtime(self, now: float) -> None:
        self._idle: list = []
        self._queue: deque = self._new_queue()
        self._inflight: dict = {}
        self._workers = 0
        self._busy = TimeWeighted(now)
        self._in_system = TimeWeighted(now)
        self._queued = TimeWeighted(now)
        self.residence = LatencyHistogram()
        # this second's residence times, for the series: the histogram hands them over as it drains
        self._second_latency = self.residence.tap = LatencySketch()
        self.served = 0
        self.rejected = 0
        self.refused = 0
        self.reset_count = 0
        self.handler_errors = 0
        self.crashes = 0
        self.counters: Counter[str] = Counter()
        self.last_error = ""
        self.error_table = ErrorTable()
        self.warnings: dict[str, None] = {}  # insertion-ordered set

    def note_error(self, exc: BaseException, path: str = "", hint: str = "") -> None:
        """Count ``exc`` in this host's error table (the report's per-host top errors)."""
        now = self.sim.now if self.sim is not None else 0.0
        self.error_table.note_exception(exc, now, path, hint)

    def warn(self, message: str) -> None:
        """Note a warning for the report (once per run per message)."""
        self.warnings[message] = None

    def _attach(self, sim: "Sim", rng: random.Random) -> None:
        self.sim = sim
        self.net = sim.net
        self.sched = sim.sched
        self.rng = rng
        self._reset_runtime(self.sched.now)

    def _deliver(self, ex) -> None:
        """A request arrived (called inside the scheduler)."""
        if ex.request.trace is not None:
            _trace.arrive(self, ex, self.sched.now)
        if not self.up:
            self.refused += 1
            self.net.refuse(ex)
            return
        now = self.sched.now
        self._inflight[ex] = now
        self._in_system.set(len(self._inflight), now)
        if self._idle:
            task = self._idle.pop()
            sched = self.sched
            sched._woke += 1
            reschedule = sched.reschedule  # read, then called (see _TaskStepper.step)
            reschedule(task, Sent(ex))
        elif self._nursery is None:  # between lifetimes (the run is ending)
            del self._inflight[ex]
            self.refused += 1
            self.net.refuse(ex)
        elif self.concurrency is None or self._workers < self.concurrency:
            self._workers += 1  # inline, _workers counts requests in service (there are no idle ones)
            serve_inline = self._serve_inline  # read, then called: ``self._serve_inline(ex)`` is not specialised
            if serve_inline is not None:
                serve_inline(ex)
            else:
                self.sched._woke += 1
                self._nursery.start_soon(self._worker, ex)
        elif self.queue_limit is None or len(self._queue) < self.queue_limit:
            self._queue.append(ex)
            self._queued.set(len(self._queue), now)
        else:
            self.rejected += 1
            del self._inflight[ex]
            self._in_system.set(len(self._inflight), now)
            self.net.respond(ex, Response(503, {"retry-after": "1"}, b"overloaded: accept queue full"))

    async def _worker(self, ex) -> None:
        CURRENT_HOST.set(self)  # once a worker task: what its user code drops unawaited is this host's
        idle = self._idle
        queue = self._queue
        task = current_task()

        def abort(_):
            if task in idle:
                idle.remove(task)
            return Abort.SUCCEEDED

        wait_for_work = waiter(abort)
        try:
            while True:
                await self._serve(ex)
                if queue:
                    ex = queue.popleft()
                    self._queued.set(len(queue), self.sched.now)
                else:
                    idle.append(task)
                    ex = await wait_for_work()
        finally:
            self._workers -= 1

    def _next_inline(self) -> None:
        """An inline-served request is done: start the next queued one, as a freed worker would."""
        queue = self._queue
        if queue:
            ex = queue.popleft()
            self._queued.set(len(queue), self.sched.now)
            serve_inline = self._serve_inline
            serve_inline(ex)
        else:
            self._workers -= 1

    async def _serve(self, ex) -> None:
        sched = self.sched
        self._busy.add(1, sched.now)
        if ex.request.trace is not None:
            ex.request.trace.service_starts(sched.now)
        try:
            response = await self.handle(ex.request)
            if (response.__class__ is not Response or response.status.__class__ is not int
                    or not 100 <= response.status < 600 or response.body.__class__ is not bytes):
                response = self._checked(response, ex)
        except (trio.Cancelled, KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as exc:  # SystemExit too: user code ending "the process" fails its request only
            response = self._failed(exc, ex)
        finally:
            self._busy.add(-1, sched.now)
        self._complete(ex, response)

    def _failed(self, exc: BaseException, ex) -> Response:
        """What serving ``ex`` answers when its handler raised ``exc``."""
        if isinstance(exc, RequestError):  # a downstream failure the handler did not catch
            self.note_error(exc, ex.request.path)
            return Response(504 if exc.kind == "timeout" else 502, {"x-error": exc.kind}, str(exc).encode())
        # a bug in a handler is a 500, as in a real server
        self.handler_errors += 1
        self.last_error = repr(exc)
        self.note_error(exc, ex.request.path)
        return Response(500, {"x-error": type(exc).__name__}, repr(exc).encode())

    def _checked(self, response, ex) -> Response:
        """A handler's answer that is not a plain Response: fix what is unambiguous, else a 500."""
        settled = settle_response(response)
        if isinstance(settled, Response):
            return settled
        error = ConfigError(f"{self.name!r}: {settled}"[:300])
        self.handler_errors += 1
        self.last_error = str(error)
        self.note_error(error, ex.request.path)
        return Response(500, {"x-error": "ConfigError"}, str(error).encode())

    def _complete(self, ex, response: Response) -> None:
        now = self.sched.now
        started = self._inflight.pop(ex, None)
        if started is None:  # already failed by a crash
            return
        self._in_system.set(len(self._inflight), now)
        self.served += 1
        residence = self.residence  # ``residence.record(now - started)``, written out
        buf = residence._buf
        buf.append(now - started)
        if len(buf) >= 1024:
            residence._drain()
        self.net.respond(ex, response)

    def _fail_held(self) -> None:
        now = self.sched.now
        held = list(self._inflight)
        self._inflight.clear()
        self._queue.clear()
        self._idle.clear()
        self._in_system.set(0, now)
        self._queued.set(0, now)
        for ex in held:
            self.reset_count += 1
            self.net.respond(ex, Reset(f"{self.name!r} crashed while handling the request"))

    async def _lifecycle(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            if self.up:
                try:
                    with trio.CancelScope() as scope:
                        self._scope = scope
                        async with trio.open_nursery() as nursery:
                            self._nursery = nursery
                            self._workers = 0
                            nursery.start_soon(self._guarded, self.run, ())
                            if not started:
                                started = True
                                task_status.started()
                            await trio.sleep_forever()
                finally:
                    self._scope = None
                    self._nursery = None
            if not started:
                started = True
                task_status.started()
            if not self.up:
                self._restart_waiter = current_task()
                await wait_task_rescheduled(self._abort_restart_wait)

    def _abort_restart_wait(self, _):
        self._restart_waiter = None
        return Abort.SUCCEEDED

    def stats(self) -> NodeStats:
        now = self.sched.now if self.sched else 0.0
        lines = self.waiting_lines() if self.sched else (self._queued,)
        return NodeStats(
            name=self.name,
            kind=self.kind,
            up=self.up,
            served=self.served,
            rejected=self.rejected,
            refused=self.refused,
            reset=self.reset_count,
            handler_errors=self.handler_errors,
            in_flight=len(self._inflight),
            mean_in_system=self._in_system.mean(now),
            peak_in_system=self._in_system.peak,
            # every line a request waits in here: the accept queue and the host's own (CPU, I/O)
            mean_queue=sum(line.mean(now) for line in lines),
            peak_queue=max(line.peak for line in lines),
            utilisation=self.utilisation(),
            residence=self.residence.summary(),
            detail={**dict(self.counters), **self.detail()},
            footprint=self.footprint(),
            errors=self.error_table.records(),
            errors_other=self.error_table.other,
            warnings=tuple(self.warnings),
        )

    def __repr__(self) -> str:
        state = "up" if self.up else "DOWN"
        region = f" region={self.region}" if self.region else ""
        down = self.downstream()
        arrow = f" -> {', '.join(down)}" if down else ""
        return f"<{type(self).__name__} {self.name!r} {state}{region}{arrow}>"
