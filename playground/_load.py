"""The users: open-loop arrivals, closed-loop users with think time, populations.

*Open loop* is how the internet behaves: requests arrive at a rate whether or
not the system keeps up (no coordinated omission - a stalled server does not
slow the arrivals, it only grows the queue). *Closed loop* is a fixed set of
users who each wait for an answer, think, and ask again: a slow system gets
fewer requests. ``Population`` says "N users, each making r requests per
second" and is open loop underneath, which is what "1 million users" means.

A load lives on a client host (``client``, created if needed, in ``region``).
It issues requests without a task per request: each in-flight request is a
small record whose answer arrives through a callback, so a million requests
cost a million small objects over time, never a million tasks at once. Latency
is measured from the moment the request was due, retries included.
"""
from __future__ import annotations

import itertools
import math
import random
import re
from typing import TYPE_CHECKING

from trio.lowlevel import Abort, current_task, wait_task_rescheduled

from ._distributions import Distribution, as_distribution
from . import limits
from ._errors import ConfigError, RequestError, Timeout, check_at_most, check_positive
from ._messages import Request, Response
from ._metrics import ClientMetrics
from ._workload import Shape, Workload, as_shape

if TYPE_CHECKING:
    from ._sim import Sim

__all__ = ["Load", "OpenLoop", "ClosedLoop", "Population"]

MIN_THINK_S = 1e-6
RETRY_ON = frozenset({"timeout", "refused", "reset", "5xx"})


class _Pending:
    __slots__ = ("load", "start", "attempt", "request", "user", "metrics")

    def __init__(self, load: "Load", start: float, request: Request, user: int) -> None:
        self.load = load
        self.start = start
        self.attempt = 0
        self.request = request
        self.user = user
        self.metrics = load.metrics  # the run it belongs to

    def on_reply(self, result) -> None:
        if self.metrics is self.load.metrics:  # an answer from an earlier run (a shared clock) is not counted
            self.load._on_reply(self, result)

    def resend(self, _=None) -> None:
        if self.metrics is self.load.metrics:
            self.load._send(self)


def _check_users(users) -> None:
    if not (isinstance(users, int) and not isinstance(users, bool) and users >= 1):
        raise ConfigError(f"users must be an integer >= 1, got {users!r}")


def _unknown_arguments(cls, unknown: dict) -> str:
    """Which keyword arguments ``cls`` does not take, with the nearest one it does for each."""
    import difflib
    import inspect

    known = sorted({name for klass in cls.__mro__ if "__init__" in vars(klass)
                    for name, p in inspect.signature(klass.__init__).parameters.items()
                    if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and name != "self")})
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        if not close:  # "rate_per_user" for "requests_per_user_per_s": a shared word is a hint too
            close = [k for k in known if set(name.split("_")) & set(k.split("_")) - {"s"}][:1]
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"{cls.__name__} takes no argument {', '.join(parts)}; it takes "
            f"{', '.join(k for k in known if k != 'target')}")


def _check_population(users) -> None:
    _check_users(users)
    check_at_most("users", users, limits.MAX_POPULATION_USERS, " people", limits.WHY["population"])


class Load:
    """Common parts: target host, workload, client timeout and retries, metrics."""

    def __init__(self, target: str, *, workload: Workload | None = None, timeout_s: float = 10.0,
                 retries: int = 0, retry_backoff_s: float = 0.05, client: str = "client",
                 region: str | None = None, name: str | None = None, headers: dict | None = None,
                 resolver=None, propagate_deadline: bool = False, **unknown) -> None:
        if unknown:
            raise ConfigError(_unknown_arguments(type(self), unknown))
        if not isinstance(target, str) or not target:
            raise ConfigError(f"target must be a host name, got {target!r}")
        check_positive("timeout_s", timeout_s)
        if not (isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0):
            raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
        check_positive("retry_backoff_s", retry_backoff_s, allow_zero=True)
        self.target = target
        self.workload = workload or Workload()
        if not isinstance(self.workload, Workload):
            raise ConfigError(f"workload must be a Workload, got {workload!r}")
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.client = client
        self.region = region
        self.name = name or f"{type(self).__name__.lower()}->{target}"
        self.headers = dict(headers or {})
        # resolver: optional; then ``target`` is a name, looked up per request (components.Resolver)
        if resolver is not None and not all(callable(getattr(resolver, m, None))
                                            for m in ("lookup", "query", "validate")):
            raise ConfigError(f"resolver must have lookup(), query() and validate() methods, got {resolver!r}")
        self.resolver = resolver
        # with propagate_deadline, each attempt carries ``x-deadline``: the simulated time its client gives up
        self.propagate_deadline = bool(propagate_deadline)
        self.sim: Sim | None = None
        self.metrics: ClientMetrics | None = None
        self.stopped = False

    # -- engine side ------------------------------------------------------------
    def _attach(self, sim: "Sim", seed, conn_ids: itertools.count, measure_from: float | None = None,
                windows: bool = False) -> None:
        # Common random numbers: one stream per purpose, so two variants run with the same
        # seed see the same arrivals even when they differ in what is asked (the write share,
        # the keys) or in how often a request is retried.
        self.sim = sim
        self.net = sim.net
        self.sched = sim.sched
        base = f"{seed}/load/{self.name}"
        # arrivals keep the stream a load always had, so runs whose workload draws nothing repeat exactly
        self.rng = random.Random(base)  # gaps between arrivals, think times
        self.workload_rng = random.Random(f"{base}/workload")  # paths, keys, reads or writes
        self.retry_rng = random.Random(f"{base}/retries")  # back-off jitter
        self._conn_ids = conn_ids
        self.metrics = ClientMetrics(self.name, sim.sched.now, measure_from=measure_from, windows=windows)
        self.stopped = False

    @property
    def longest_s(self) -> float:
        """The longest a request can take from this load: every attempt timing out, every back-off at its longest."""
        backoff = sum(self.retry_backoff_s * 2 ** k * 1.5 for k in range(self.retries))
        return self.timeout_s * (self.retries + 1) + backoff

    def stop(self) -> None:
        self.stopped = True

    def _new_request(self, user: int, conn: int, request: Request | None = None) -> _Pending | None:
        """The next request as a pending record; None if the workload failed to make one (counted)."""
        if request is None:
            try:
                req = self.workload.request(self.workload_rng)
            except Exception as exc:  # user code (Workload(make=...)): that request's error, not the run's
                return self._workload_failed(exc)
            if req.__class__ is not Request:
                return self._workload_failed(ConfigError(f"Workload make must return a Request, got {req!r}"[:300]))
        else:
            req = request
        req.client = self.client
        req.id = next(self.sim._ids)  # ``sim._next_request_id()``: this runs once a request
        req.conn = conn
        if self.headers:
            req.headers.update(self.headers)
        traces = self.sim._traces  # sampling draws from its own stream: no other draw changes
        req.trace = traces.maybe_start(req, self.client, self.sched.now) if traces is not None else None
        return _Pending(self, self.sched.now, req, user)

    def _workload_failed(self, exc: Exception) -> None:
        """Making a request raised: count it as a request that failed (kind "workload") and say why."""
        now = self.sched.now
        self.metrics.record_sent(now)
        self.metrics.record_error(now, "workload", start=now)
        client = self.sim.net.hosts.get(self.client)
        if client is not None:
            client.note_error(exc, "", hint=f"in the Workload of load {self.name!r}")
        return None

    def _issue(self, pending: _Pending) -> None:
        self.metrics.record_sent(pending.start)
        self._send(pending)

    def _send(self, pending: _Pending) -> None:
        req = pending.request
        if pending.attempt:
            req = req.copy(hops=0)
        else:
            req.hops = 0
        if self.propagate_deadline:
            req.headers["x-deadline"] = repr(self.sched.now + self.timeout_s)
        target = self.target
        if self.resolver is not None:
            target = self.resolver.lookup(self, target)
            if target is None:  # not cached: ask the DNS over the network, send when it answers
                asked_at = self.sched.now
                self.resolver.query(self, self.target,
                                    lambda address: self._send_resolved(pending, req, asked_at, address))
                return
        self.net.send(self.client, target, req, pending.on_reply, self.timeout_s)

    def _send_resolved(self, pending: _Pending, req: Request, asked_at: float, address: str | None) -> None:
        """The resolver answered: send to ``address``; no address is an error of kind ``dns``."""
        if address is None:
            self.metrics.record_error(self.sched.now, "dns", start=pending.start)
            if pending.request.trace is not None:
                self._trace_done(pending.request.trace, None, "dns")
            self._done(pending, False)
            return
        left_s = self.timeout_s - (self.sched.now - asked_at)
        if left_s <= 0:
            pending.on_reply(Timeout(f"no answer for {self.target!r} within {self.timeout_s:g} s (DNS included)"))
            return
        self.net.send(self.client, address, req, pending.on_reply, left_s)

    def _on_reply(self, pending: _Pending, result) -> None:
        now = self.sched.now
        m = self.metrics
        if isinstance(result, Response):
            if result.status < 500:
                m.record_ok(now, now - pending.start, result.status, start=pending.start)
                if pending.request.trace is not None:
                    self._trace_done(pending.request.trace, result.status, "")
                self._done(pending, True)
                return
            kind, status = "5xx", result.status
        elif isinstance(result, RequestError):
            kind, status = result.kind, None
        else:  # pragma: no cover - defensive
            kind, status = "error", None
        if (pending.attempt < self.retries and kind in RETRY_ON and pending.request.idempotent
                and now - pending.start < self.timeout_s * (self.retries + 1)):
            pending.attempt += 1
            m.record_retry(pending.start)
            backoff = self.retry_backoff_s * (2 ** (pending.attempt - 1)) * (0.5 + self.retry_rng.random())
            self.sched.call_later(backoff, pending.resend)
            return
        m.record_error(now, kind, status, start=pending.start)
        if pending.request.trace is not None:
            self._trace_done(pending.request.trace, status, kind)
        self._done(pending, False)

    def _trace_done(self, span, status: int | None, kind: str) -> None:
        """A traced request finished for good: close its root span and hand the trace to the store."""
        span.end(self.sched.now, status, kind)
        self.sim._traces.finish(span)

    def _done(self, pending: _Pending, ok: bool) -> None:
        """A request finished for good (closed loop schedules the user's next one)."""

    async def run(self, until: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.client} -> {self.target}>"


class OpenLoop(Load):
    """Requests arrive at ``rate`` (per second, or a ``Shape``) regardless of answers.

        >>> OpenLoop("lb", rate=500, workload=Workload(keys=1000))   # doctest: +SKIP

    ``arrivals`` is "poisson" (exponential gaps) or "constant" (even gaps).
    ``connections``: None opens a new connection per request; an integer keeps
    that many keep-alive connections and spreads requests over them in turn.
    """

    def __init__(self, target: str, *, rate=100.0, arrivals: str = "poisson", connections: int | None = None,
                 **kw) -> None:
        super().__init__(target, **kw)
        self.shape: Shape = as_shape(rate)
        if arrivals not in ("poisson", "constant"):
            raise ConfigError(f"arrivals must be 'poisson' or 'constant', got {arrivals!r}")
        if connections is not None and not (isinstance(connections, int) and not isinstance(connections, bool) and connections >= 1):
            raise ConfigError(f"connections must be an integer >= 1 or None, got {connections!r}")
        if connections is not None:
            check_at_most("connections", connections, limits.MAX_CONNECTIONS, "", limits.WHY["connections"])
        self.arrivals = arrivals
        self.connections = connections
        self._timer = None
        self._task = None

    def set_rate(self, rate) -> None:
        """Change the arrival rate now (from a task, the dashboard or a scheduled action)."""
        self.shape = as_shape(rate)

    async def run(self, until: float) -> None:
        # Arrivals are a chain of scheduler callbacks, not a sleeping task: an
        # arrival then costs no task switch. The task only waits for the chain's end.
        if self.stopped:
            return
        sched = self.sched
        self._until = until
        self._t0 = self._planned = sched.now
        self._conns = [next(self._conn_ids) for _ in range(self.connections)] if self.connections else None
        self._poisson = self.arrivals == "poisson"
        self._arrive_cb = self._arrive  # bound once: each arrival posts the next (see Network._arrive_cb)
        self._i = 0
        self._task = current_task()
        self._plan()
        await wait_task_rescheduled(self._abort)

    def _abort(self, _raise_cancel) -> Abort:
        if self._timer is not None:
            self._timer[2] = None  # disarmed (a posted entry)
        self._task = None
        return Abort.SUCCEEDED

    def _plan(self, _=None) -> None:
        """Schedule the next arrival (or the end of the run)."""
        sched = self.sched
        if self.stopped:
            return self._finish()
        # the next arrival follows the one just made at its planned time, not at the moment its
        # callback ran: in real time a callback runs a little late, and the chain must not drift
        now = self._planned
        rate = self.shape.rate_at(now - self._t0)
        if rate <= 0:  # idle: look again in a moment; arrivals restart from then
            now = max(now, sched.now)
            self._planned = now + min(0.1, self._until - now)
            self._timer = sched.post(self._planned, self._idle_tick)
            return
        gap = -math.log(1.0 - self.rng.random()) / rate if self._poisson else 1.0 / rate
        if now + gap >= self._until:
            self._timer = sched.post(self._until, self._finish)
            return
        self._planned = now + gap
        self._timer = sched.post(self._planned, self._arrive_cb)

    def _idle_tick(self, _=None) -> None:
        if self.sched.now >= self._until:
            self._finish()
        else:
            self._plan()

    def _arrive(self, _=None) -> None:
        if self.stopped:
            return self._finish()
        i = self._i
        conns = self._conns
        conn = conns[i % len(conns)] if conns else 0  # 0: a new connection per request (Request.conn)
        pending = self._new_request(i, conn)
        if pending is not None:
            self.metrics.record_sent(pending.start)  # ``_issue``, written out
            self._send(pending)
        self._i = i + 1
        self._plan()

    def _finish(self, _=None) -> None:
        self._timer = None
        task, self._task = self._task, None
        if task is not None:
            self.sched._wake_sleeper(task)


class Population(OpenLoop):
    """``users`` people each making ``requests_per_user_per_s`` requests per second, open loop.

        >>> Population("lb", users=1_000_000, requests_per_user_per_s=0.01)   # 10,000 req/s  # doctest: +SKIP
    """

    def __init__(self, target: str, *, users: int, requests_per_user_per_s: float = 0.05, **kw) -> None:
        _check_population(users)
        check_positive("requests_per_user_per_s", requests_per_user_per_s)
        check_at_most("users x requests_per_user_per_s", users * requests_per_user_per_s, limits.MAX_RATE_PER_S,
                      " requests per second", limits.WHY["rate"])
        kw.setdefault("connections", min(users, 1000))
        super().__init__(target, rate=users * requests_per_user_per_s, **kw)
        self.users = users
        self.per_user = requests_per_user_per_s

    def set_users(self, users: int) -> None:
        _check_population(users)
        self.users = users
        self.set_rate(users * self.per_user)


class ClosedLoop(Load):
    """``users`` users, each: send, wait for the answer, think, repeat.

        >>> ClosedLoop("app", users=5, think_time_s=Exponential(1.0))   # doctest: +SKIP
        >>> ClosedLoop("lb", users=30, cookies=True, login=Request("POST", "/login"))   # doctest: +SKIP

    Each user keeps one keep-alive connection. With ``cookies``, each user
    keeps a cookie jar, as a browser does: ``set-cookie`` on an answer is
    stored (``Max-Age=0`` deletes), and the user's later requests carry
    ``cookie``; the jars are in ``jars[user]``. ``login`` is a request each user
    sends once, first (Locust's ``on_start``).
    """

    def __init__(self, target: str, *, users: int = 5, think_time_s=1.0, cookies: bool = False,
                 login: Request | None = None, **kw) -> None:
        super().__init__(target, **kw)
        _check_users(users)
        check_at_most("users", users, limits.MAX_CLOSED_LOOP_USERS, " closed-loop users", limits.WHY["users"])
        if login is not None and not isinstance(login, Request):
            raise ConfigError(f"login must be a Request, got {login!r}")
        self.users = users
        self.think_time_s: Distribution = as_distribution(think_time_s, "think_time_s")
        self.cookies = bool(cookies)
        self.login = login
        self.jars: list[dict[str, str]] = []
        self._until = math.inf

    def _user_request(self, user: int) -> None:
        if self.stopped or self.sched.now >= self._until or user >= self.users:
            self._active -= 1
            return
        first = self.login is not None and not self._logged_in[user]
        if first:
            self._logged_in[user] = True
        pending = self._new_request(user, self._user_conns[user], self.login.copy() if first else None)
        if pending is None:  # the workload failed to make it: the user thinks and tries again
            self._next(user)
            return
        jar = self.jars[user] if self.cookies else None
        if jar:
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            old = pending.request.headers.get("cookie")
            pending.request.headers["cookie"] = f"{old}; {cookie}" if old else cookie
        self._issue(pending)

    def _on_reply(self, pending: _Pending, result) -> None:
        if self.cookies and isinstance(result, Response) and "set-cookie" in result.headers:
            store_cookies(self.jars[pending.user], result.headers["set-cookie"])
        super()._on_reply(pending, result)

    def _next(self, user: int) -> None:
        # at least a microsecond of thought: with zero think time and an answer that takes no
        # time at all, a user would otherwise ask again and again without time ever moving
        self.sched.call_later(max(self.think_time_s.sample(self.rng), MIN_THINK_S), self._user_request, user)

    def _done(self, pending: _Pending, ok: bool) -> None:
        self._next(pending.user)

    def set_users(self, users: int) -> None:
        _check_users(users)
        check_at_most("users", users, limits.MAX_CLOSED_LOOP_USERS, " closed-loop users", limits.WHY["users"])
        old, self.users = self.users, users
        if self.sim is not None and self.sim.running:
            self._start_users(old, users)

    def _start_users(self, lo: int, hi: int) -> None:
        for u in range(lo, hi):
            if u >= len(self._user_conns):
                self._user_conns.append(next(self._conn_ids))
                self.jars.append({})
                self._logged_in.append(False)
            self._active += 1
            self._next(u)

    async def run(self, until: float) -> None:
        self._until = until
        self._user_conns: list[int] = []
        self.jars = []
        self._logged_in: list[bool] = []
        self._active = 0
        self._start_users(0, self.users)
        await self.sched.sleep(max(0.0, until - self.sched.now))


# several cookies joined in one header value ("a=1; Path=/, b=2"): split before each "name="
_NEXT_COOKIE = re.compile(r",\s*(?=[^;,=\s]+=)")


def store_cookies(jar: dict[str, str], set_cookie: str) -> None:
    """Keep in ``jar`` the cookies of a ``set-cookie`` value; attributes are ignored but ``Max-Age=0``."""
    for cookie in _NEXT_COOKIE.split(set_cookie):
        pair, *attributes = cookie.split(";")
        name, eq, value = pair.strip().partition("=")
        if not (eq and name):
            continue
        if any(a.strip().lower() == "max-age=0" for a in attributes):
            jar.pop(name, None)
        else:
            jar[name] = value.strip()
