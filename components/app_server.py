"""The app server: a machine with cores, workers, an accept queue and memory.

A real app server accepts connections into a backlog, hands each request to a
worker (a thread or an event-loop slot), and its handler spends CPU on a core
and waits on other services (database, cache). Overload looks like this: the
cores saturate, requests wait in the queue (latency climbs as queueing theory
says), the queue fills and new requests are refused with 503, and if memory is
finite, too many requests in flight exhaust it and the process dies (OOM),
restarting after a while - the monolith's failure in the scaling story.

Modelled: ``cores`` (FIFO, each request's CPU on one core; vertical scaling is
more cores or ``core_speed`` > 1), ``workers`` (concurrency), ``queue_limit``
with a ``queue_discipline`` (FIFO, LIFO or CoDel shedding:
``components.queue_discipline``), deadlines that skip work a client has given
up on (``components.deadline``), ``memory_mb`` with a per-request cost, OOM
crash and restart, per-server session memory that is lost on crash. Not
modelled: context-switch cost, garbage collection, the OS scheduler's
preemption (CPU is non-preemptive FIFO).

The handler is a plain async function ``handler(request, ctx)`` (fast) or a
real ASGI app such as Quart (``app=``), called in process; both may spend CPU
with ``await ctx.cpu(seconds)`` and call other hosts with ``await ctx.call``.
A handler returns what a Quart view may: a ``Response``; text or bytes (200);
a dict or list (JSON, 200); ``None`` (204); or a ``(body, status)`` pair.
Anything else (a bare number, an unawaited coroutine) is that request's 500,
with a message saying what to return instead.

    server = AppServer("app", handler, cores=4, workers=16)
    server = AppServer("api", app=quart_app, cpu_s=Exponential(0.002))
"""
from __future__ import annotations

import contextvars
import inspect
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from playground import (ConfigError, Distribution, Footprint, Node, Request, Resource, Response,
                        as_distribution, call_asgi)
from playground import limits
from playground._errors import check_at_most, check_positive
from playground._stations import Station, service_moments

from .deadline import DEADLINE_HEADER, DeadlineExceeded, remaining_s
from .queue_discipline import FIFO, as_discipline

__all__ = ["AppServer", "Context", "current_context"]

_current: contextvars.ContextVar["Context"] = contextvars.ContextVar("playground_context")


def current_context() -> "Context":
    """The ``Context`` of the request being served (for code inside a Quart app)."""
    try:
        return _current.get()
    except LookupError:
        raise ConfigError("current_context() is only available while an AppServer serves a request") from None


class Context:
    """What a handler can do besides reading its request."""

    __slots__ = ("server", "request")

    def __init__(self, server: "AppServer", request: Request) -> None:
        self.server = server
        self.request = request

    @property
    def rng(self):
        return self.server.rng

    @property
    def now(self) -> float:
        return self.server.sim.now

    @property
    def session(self) -> dict:
        """This server's in-process memory (sessions, local caches); lost on crash."""
        return self.server.memory

    async def cpu(self, seconds) -> None:
        """Spend CPU: wait for a free core, then hold it for ``seconds`` (or a draw from a Distribution)."""
        s = self.server
        if isinstance(seconds, Distribution):
            seconds = seconds.sample(s.rng)
        try:
            bad = not 0.0 <= seconds < _INF  # NaN and inf too: a bad time would corrupt the event heap
        except TypeError:  # "5ms", None: not a number at all
            bad = True
        if bad:
            _check_seconds("ctx.cpu seconds", seconds)
        if self.request.trace is not None:
            await s.cores.use_traced(seconds * s.slow_factor / s.core_speed, self.request.trace)
        else:
            await s.cores.use(seconds * s.slow_factor / s.core_speed)

    async def call(self, host: str, request: Request, timeout_s: float | None = 30.0) -> Response:
        """Send ``request`` to ``host`` and wait for its answer (raises ``RequestError`` on failure)."""
        request.client = request.client or self.request.client
        return await self._send(host, request, timeout_s)

    def _send(self, host: str, request: Request, timeout_s: float | None):
        """Make ``request`` a call of the request being served, and start it: the server's call to await."""
        if host not in self.server._known_calls:
            self.server._undeclared(host)
        # a call made while serving goes on from the hops that brought the request here, so
        # a loop the wiring checks cannot see (a handler calling itself) still ends as 508
        request.hops = max(request.hops, self.request.hops)
        request.trace = self.request.trace  # a traced request's calls join its trace (None: not traced)
        deadline = self.request.headers.get(DEADLINE_HEADER)
        if deadline is not None:  # the caller's remaining time travels with the call
            timeout_s = self._within_deadline(host, deadline, timeout_s)
            request.headers.setdefault(DEADLINE_HEADER, deadline)
        return self.server.call(host, request, timeout_s)

    def _within_deadline(self, host: str, deadline: str, timeout_s: float | None) -> float | None:
        left = remaining_s(self.request, self.server.sched.now)
        if left is None:
            return timeout_s
        if left <= 0:
            self.server.counters["deadline_refused"] += 1
            raise DeadlineExceeded(f"deadline exceeded: call to {host!r} not started")
        return left if timeout_s is None else min(timeout_s, left)

    async def get(self, host: str, path: str, timeout_s: float | None = 30.0, **kw) -> Response:
        """``GET path`` from ``host``."""
        return await self._send(host, Request("GET", path, **kw), timeout_s)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time without holding a core (a call to something not modelled)."""
        try:
            bad = not 0.0 <= seconds < _INF
        except TypeError:  # "5ms", None: not a number at all
            bad = True
        if bad:
            _check_seconds("ctx.sleep seconds", seconds)
        await self.server.sched.sleep(seconds)


_INF = float("inf")


def _check_seconds(name: str, seconds) -> None:
    if isinstance(seconds, Distribution):
        raise ConfigError(f"{name} must be a number of seconds, got {seconds!r}: draw from it with .sample(ctx.rng)")
    if isinstance(seconds, str):
        raise ConfigError(f"{name} must be a number of seconds, got the string {seconds!r}: durations are plain "
                          "seconds everywhere (0.005 for 5 ms)")
    check_positive(name, seconds, allow_zero=True)


Handler = Callable[[Request, Context], Awaitable[Any]]


def _takes_request_and_ctx(handler) -> str | None:
    """None if ``handler(request, ctx)`` can be called; else how its signature differs."""
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return None
    try:
        sig.bind(None, None)
    except TypeError:
        name = getattr(handler, "__qualname__", type(handler).__name__)
        return f"{name}{sig}"
    return None


def _is_async(handler) -> bool:
    """An async function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None))


def _deadline_response() -> Response:
    return Response(504, {"x-error": "deadline"}, b"deadline exceeded: the client has given up")


def _ok() -> Response:
    return Response(200, {}, b"ok")


async def _cpu_only(request: Request, ctx: Context) -> Response:
    return _ok()


def _to_response(value) -> Response:
    if isinstance(value, Response):
        return value
    if value is None:
        return Response(204)
    if isinstance(value, bytes):
        return Response(200, body=value)
    if isinstance(value, str):
        return Response(200, {"content-type": "text/plain"}, value.encode())
    if isinstance(value, tuple):
        return _tuple_response(value)
    if isinstance(value, (bool, int, float)):  # ``return 404``: Quart and Flask refuse it too
        raise ConfigError(f"the handler returned {value!r}, a number, which is not a response: return "
                          f"Response({value if isinstance(value, int) and 100 <= value < 600 else 200}, ...) "
                          "or a (body, status) pair")
    if inspect.iscoroutine(value):  # ``return db.get(ctx, key)``: the await is missing
        name = getattr(value, "__qualname__", "a coroutine")
        value.close()  # it never ran; closing it spares a second, vaguer warning
        raise ConfigError(f"the handler returned the coroutine {name}(...) instead of its result: it was never "
                          "awaited; write return await ...")
    import json

    return Response(200, {"content-type": "application/json"}, json.dumps(value).encode())


def _tuple_response(value: tuple) -> Response:
    """Quart's (and Flask's) tuple forms: (body, status), (body, status, headers), (body, headers)."""
    forms = "(body, status), (body, status, headers) or (body, headers), status an int from 100 to 599"
    if len(value) == 2 and _is_headers(value[1]):
        body, status, headers = value[0], None, value[1]
    elif len(value) in (2, 3):
        body, status, headers = value[0], value[1], value[2] if len(value) == 3 else None
        if status.__class__ is not int or not 100 <= status < 600:
            raise ConfigError(f"the handler returned {_short(value)}: its status {status!r} is not an int from "
                              f"100 to 599 (a response tuple is {forms})")
        if headers is not None and not _is_headers(headers):
            raise ConfigError(f"the handler returned {_short(value)}: its headers {_short(headers)} are not a dict "
                              f"or a list of (name, value) pairs (a response tuple is {forms})")
    else:
        raise ConfigError(f"the handler returned a tuple of {len(value)}, {_short(value)}, which is not a "
                          f"response: a response tuple is {forms}; return a list for a JSON array")
    resp = _to_response(body)
    if status is not None:
        resp.status = status
    if headers:
        resp.headers = {**resp.headers, **{str(k).lower(): str(v) for k, v in dict(headers).items()}}
    return resp


def _is_headers(value) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and all(isinstance(p, tuple) and len(p) == 2 for p in value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Memory:
    total_mb: float
    base_mb: float
    per_request_mb: float


class AppServer(Node):
    """An application server host. Defaults: 2 cores at speed 1.0, 8 workers, accept queue 100 (FIFO).

    ``cpu_s`` (seconds or a Distribution) is CPU spent on every request before the
    handler runs; a handler can spend more with ``ctx.cpu``.

    ``calls`` names the hosts the handler calls, so that ``validate()`` checks
    them (unknown hosts, loops) before a run. A call to a host not declared
    there still works: the wiring learns it during the run (it joins
    ``downstream()``, so the next ``validate()`` and the diagram see it) and
    the report warns, naming this host and the target. Within that run a
    loop through it ends at the hop limit as a 508.
    """

    kind = "app"

    def __init__(self, name: str, handler: Handler | None = None, *, app=None, cores: int = 2,
                 core_speed: float = 1.0, workers: int | None = None, queue_limit: int | None = 100,
                 cpu_s=0.0, memory_mb: float | None = None, base_memory_mb: float = 100.0,
                 memory_per_request_mb: float = 1.0, restart_after_s: float | None = 5.0,
                 calls: tuple[str, ...] = (), queue_discipline="fifo", region: str | None = None) -> None:
        if handler is not None and app is not None:
            raise ConfigError(f"AppServer {name!r}: give a handler or an app, not both")
        if handler is not None and not _is_async(handler):
            raise ConfigError(f"AppServer {name!r}: handler must be an async function, got {handler!r}")
        if handler is not None and (sig := _takes_request_and_ctx(handler)) is not None:
            raise ConfigError(f"AppServer {name!r}: handler must take (request, ctx), got {sig}")
        if app is not None and not callable(app):
            raise ConfigError(f"AppServer {name!r}: app must be an ASGI application, got {app!r}")
        if not (isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1):
            raise ConfigError(f"cores must be an integer >= 1, got {cores!r}")
        check_at_most("cores", cores, limits.MAX_CORES, "", limits.WHY["cores"])
        check_positive("core_speed", core_speed)
        if workers is None:
            workers = 4 * cores
        elif isinstance(workers, int) and not isinstance(workers, bool):
            check_at_most("workers", workers, limits.MAX_SLOTS, "", limits.WHY["slots"])
        discipline = as_discipline(queue_discipline)
        self.queue_discipline = None if isinstance(discipline, FIFO) else discipline  # None: the plain deque
        super().__init__(name, region=region, concurrency=workers, queue_limit=queue_limit)
        self.handler = handler or _cpu_only
        self.app = app
        self.n_cores = cores
        self.core_speed = float(core_speed)
        self.cpu_per_request = as_distribution(cpu_s, "cpu_s")
        if memory_mb is not None:
            check_positive("memory_mb", memory_mb)
            check_positive("memory_per_request_mb", memory_per_request_mb, allow_zero=True)
            check_positive("base_memory_mb", base_memory_mb, allow_zero=True)
            if base_memory_mb >= memory_mb:
                raise ConfigError(f"base_memory_mb ({base_memory_mb!r}) must be < memory_mb ({memory_mb!r})")
        if restart_after_s is not None:
            check_positive("restart_after_s", restart_after_s, allow_zero=True)
        self.memory_cfg = Memory(memory_mb, base_memory_mb, memory_per_request_mb) if memory_mb else None
        self.restart_after_s = restart_after_s
        if isinstance(calls, str) or not all(isinstance(c, str) and c for c in calls):
            raise ConfigError(f"calls must be a list of host names, got {calls!r}")
        self.calls = tuple(calls)
        self._known_calls = set(self.calls)  # declared, plus those learnt during a run
        self.learnt_calls: tuple[str, ...] = ()  # called without being declared in calls=
        self.memory: dict = {}
        self.oom_kills = 0
        self.cores = None
        self._cpu_done_cb = self._cpu_done  # bound once: a handler-less request posts it (see Network._arrive_cb)

    def downstream(self) -> tuple[str, ...]:
        return self.calls + self.learnt_calls

    def _undeclared(self, host: str) -> None:
        """A handler called ``host`` without declaring it in ``calls=``: learn it and warn.

        An unknown host is left to the network, which raises a ``WiringError``
        (a named error in the table). A known one joins ``downstream()``, so the
        next ``validate()`` (and the diagram) sees it; within this run a loop
        through it still ends as 508 at the hop limit.
        """
        if self.sim is None or host not in self.sim.net.hosts:
            return
        self._known_calls.add(host)
        if host not in self.learnt_calls:
            self.learnt_calls += (host,)
        self.warn(f"{self.name!r} called {host!r}, which is not in its calls=: the wiring learnt it during "
                  f"the run; declare calls={list(self.downstream())!r} so that "
                  "validate() checks it before the run")

    def _new_queue(self):
        discipline = getattr(self, "queue_discipline", None)
        return super()._new_queue() if discipline is None else discipline.make(self)

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self._known_calls = set(self.calls)  # an undeclared call is warned about in every run it happens
        self.cores = Resource(self.sched, self.n_cores, f"{self.name} cores")
        self.oom_kills = 0
        # With no handler and no app, serving a request is only "hold a core for the cpu draw,
        # answer 200": scheduler callbacks do it (see Node._serve_inline) with the same draws,
        # events and figures as a worker task running ``handle``, at a fraction of the cost.
        plain = self.app is None and self.handler is _cpu_only and type(self).handle is AppServer.handle
        self._serve_inline = self._serve_cpu_only if plain else None

    # -- the inline path: a request that only spends CPU, served without a task ----------
    def _past_deadline(self, request: Request) -> bool:
        """The client has given up already: skip the work (counted as ``deadline_skipped``)."""
        left = remaining_s(request, self.sched.now)
        if left is not None and left <= 0:
            self.counters["deadline_skipped"] += 1
            return True
        return False

    def _serve_cpu_only(self, ex) -> None:
        """What ``handle`` does for such a request, step for step, as callbacks."""
        if DEADLINE_HEADER in ex.request.headers and self._past_deadline(ex.request):
            self._complete(ex, _deadline_response())
            self._next_inline()
            return
        self._busy.add(1, self.sched.now)
        if ex.request.trace is not None:
            ex.request.trace.service_starts(self.sched.now)
        cpu = self.cpu_per_request
        if cpu.mean_s:
            seconds = cpu.sample(self.rng) * self.slow_factor / self.core_speed
            cores = self.cores
            if cores.in_use < cores.capacity and not cores._waiters:
                # a free core: ``acquire_then`` and ``_cpu_granted`` written out (the exchange was
                # just taken in, so no crash has failed it), as this runs once a request
                cores.in_use += 1
                sched = self.sched
                cores.busy.set(cores.in_use, sched.now)
                if ex.request.trace is not None:
                    ex.request.trace.cpu_granted(sched.now)
                sched.post(sched.now + seconds, self._cpu_done_cb, ex)
            else:
                cores.acquire_then(self._cpu_granted, (ex, seconds))
        else:
            self._answer_cpu_only(ex)

    def _cpu_granted(self, item) -> None:
        ex, seconds = item
        if ex not in self._inflight:  # failed by a crash while it waited: its task would have been
            self.sched.fired -= 1     # cancelled and its wake-up disarmed, so this does not count
            return
        if ex.request.trace is not None:
            ex.request.trace.cpu_granted(self.sched.now)
        sched = self.sched
        sched.post(sched.now + seconds, self._cpu_done_cb, ex)

    def _cpu_done(self, ex) -> None:
        if ex not in self._inflight:  # failed by a crash while on a core (as above)
            self.sched.fired -= 1
            return
        self.cores.release()
        if ex.request.trace is not None:
            ex.request.trace.cpu_done(self.sched.now)
        self._busy.add(-1, self.sched.now)  # ``_answer_cpu_only``, written out
        self._complete(ex, _ok())
        self._next_inline()

    def _answer_cpu_only(self, ex) -> None:
        self._busy.add(-1, self.sched.now)
        self._complete(ex, _ok())
        self._next_inline()

    def _fail_held(self) -> None:
        super()._fail_held()
        if self._serve_inline is not None:  # no task lets go of a core when cancelled: free them all
            self.cores.reset()

    def on_crash(self) -> None:
        self.memory = {}  # the cores are freed as the cancelled requests let go of them

    def on_restart(self) -> None:
        self.memory = {}

    @property
    def memory_used_mb(self) -> float:
        m = self.memory_cfg
        return m.base_mb + m.per_request_mb * len(self._inflight) if m else 0.0

    def _deliver(self, ex) -> None:
        m = self.memory_cfg
        if m is not None and self.up and m.base_mb + m.per_request_mb * (len(self._inflight) + 1) > m.total_mb:
            # out of memory: the process dies with everything it held
            self.oom_kills += 1
            if self.sim is not None:
                self.sim.event(f"OOM {self.name}")
            self.crash(self.restart_after_s)
        super()._deliver(ex)

    async def handle(self, request: Request) -> Response:
        if DEADLINE_HEADER in request.headers and self._past_deadline(request):
            return _deadline_response()
        ctx = Context(self, request)
        cpu = self.cpu_per_request
        if cpu.mean_s:
            if request.trace is not None:
                await self.cores.use_traced(cpu.sample(self.rng) * self.slow_factor / self.core_speed, request.trace)
            else:
                await self.cores.use(cpu.sample(self.rng) * self.slow_factor / self.core_speed)
        if self.app is not None:
            token = _current.set(ctx)
            try:
                return await call_asgi(self.app, request)
            finally:
                _current.reset(token)
        handler = self.handler  # read, then called: ``self.handler(...)`` is not specialised
        return _to_response(await handler(request, ctx))

    def waiting_lines(self):
        return (self._queued, self.cores.waiting) if self.cores is not None else (self._queued,)

    def utilisation(self) -> float:
        return self.cores.utilisation(self.sched.now) if self.cores else 0.0

    def footprint(self) -> Footprint:
        """A machine: its cores (a core ``core_speed`` times as fast priced as that many) and memory.

        With no ``memory_mb`` the machine is taken to have a general-purpose
        instance's 4 GB per core.
        """
        memory_gb = self.memory_cfg.total_mb / 1024 if self.memory_cfg else 4.0 * self.n_cores
        return Footprint("app", cores=self.n_cores * self.core_speed, memory_gb=memory_gb)

    def stations(self) -> tuple[Station, ...]:
        """The CPU (``cores`` servers) and, when requests hold their worker for more than CPU
        (a handler that calls other hosts, or an ASGI app), the worker pool as a station of its own.

        A server that calls nobody holds a worker only to wait for a core and spend CPU:
        waiting for a worker is waiting for the CPU, one line. Without a handler the
        service time is the declared ``cpu_s`` draw; a handler's is measured."""
        if self.cores is None:
            return ()
        cap = None if self.queue_limit is None else self.concurrency + self.queue_limit
        if self.app is None and not self.calls:
            service = None
            if self.handler is _cpu_only:
                moments = service_moments(self.cpu_per_request)
                service = None if moments is None else (moments[0] / self.core_speed, moments[1])
            return (Station("cpu", min(self.n_cores, self.concurrency), self.cores.busy,
                            (self._queued, self.cores.waiting), lambda: self.cores.served,
                            lambda: self.rejected, cap, service),)
        return (Station("cpu", self.n_cores, self.cores.busy, (self.cores.waiting,), lambda: self.cores.served),
                Station("workers", self.concurrency, self._busy, (self._queued,), lambda: self.served,
                        lambda: self.rejected, cap))

    def detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {"cores": self.n_cores}
        if self.cores is not None:
            d["cpu_queue_mean"] = self.cores.waiting.mean(self.sched.now)
        if self.memory_cfg:
            d["oom_kills"] = self.oom_kills
        if self.crashes:
            d["crashes"] = self.crashes
        return d
