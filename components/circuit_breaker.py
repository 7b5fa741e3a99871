"""A circuit breaker: stop calling a dependency that is failing, and try it again later.

A service that keeps calling a dependency that times out ties up its own
workers waiting, until it fails too: the failure cascades up the tiers. A
circuit breaker (Nygard's *Release It!*, Netflix Hystrix, resilience4j, whose
vocabulary this follows) watches the outcomes of calls and has three states:

* ``CLOSED`` - calls go through; outcomes are recorded in a sliding window,
  the last ``window`` calls (count-based) or the last ``window_s`` seconds
  (time-based). Once the window holds at least ``minimum_calls`` and the
  share of failures reaches ``failure_rate_threshold`` - or after
  ``consecutive_failures`` failures in a row, if set - the breaker *opens*.
  A call slower than ``slow_call_s`` counts as a failure (resilience4j's
  slow-call threshold): a dependency that answers in 10 s is down for a
  user.
* ``OPEN`` - calls are refused at once without touching the dependency (the
  caller serves a fallback); after ``open_s`` the breaker turns half-open.
* ``HALF_OPEN`` - ``half_open_probes`` trial calls are let through; if they
  all succeed the breaker closes, if any fails it opens again.

``CircuitBreaker`` is a pure state machine driven by ``allow(now)`` and
``record(ok, now)`` - testable without trio. ``await breaker.call(ctx, host,
request, fallback=...)`` wraps ``ctx.call`` with it; ``L7Balancer(circuit_breaker=...)``
keeps one per backend. Left out: resilience4j's ``FORCED_OPEN``/``DISABLED``
states and exception filters (here an error status >= 500, a timeout, a reset
or a refusal is a failure).

    breaker = CircuitBreaker("recs", failure_rate_threshold=0.5, window=20, open_s=5, half_open_probes=3)
    response = await breaker.call(ctx, "recs", Request("GET", "/recs"), timeout_s=0.5,
                                  fallback=Response(200, body=b"[]"))
"""
from __future__ import annotations

import copy
from collections import deque
from typing import Any, Callable

from playground import ConfigError, Request, RequestError, Response
from playground._errors import check_positive

__all__ = ["CircuitBreaker", "CircuitOpen", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"


class CircuitOpen(RequestError):
    """The breaker refused the call without sending it (it is open, or its half-open probes are taken)."""

    kind = "circuit_open"


def _count(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        suffix = " or None" if allow_none else ""
        raise ConfigError(f"{name} must be an integer >= 1{suffix}, got {value!r}")


class CircuitBreaker:
    """CLOSED / OPEN / HALF_OPEN over a sliding window of outcomes. See the module docstring.

    Defaults (resilience4j's, with shorter times): a 50% failure rate over the
    last 20 calls, at least 10 calls, 10 s open, 3 probes half-open, no slow-call
    threshold. Give ``window_s`` for a time-based window instead of ``window``.

        >>> b = CircuitBreaker(consecutive_failures=2, open_s=5)
        >>> b.record(False, 0.0); b.record(False, 0.1); b.state_at(0.2), b.allow(0.2), b.state_at(5.1)
        ('OPEN', False, 'HALF_OPEN')
    """

    def __init__(self, name: str = "breaker", *, failure_rate_threshold: float = 0.5, window: int | None = 20,
                 window_s: float | None = None, minimum_calls: int = 10, consecutive_failures: int | None = None,
                 open_s: float = 10.0, half_open_probes: int = 3, slow_call_s: float | None = None) -> None:
        if not (isinstance(name, str) and name):
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        ok = (isinstance(failure_rate_threshold, (int, float)) and not isinstance(failure_rate_threshold, bool)
              and 0 < failure_rate_threshold <= 1)
        if not ok:
            raise ConfigError(f"failure_rate_threshold must be between 0 (excluded) and 1, got {failure_rate_threshold!r}")
        if window_s is not None:
            check_positive("window_s", window_s)
            window = None
        else:
            _count("window", window)
        _count("minimum_calls", minimum_calls)
        _count("consecutive_failures", consecutive_failures, allow_none=True)
        check_positive("open_s", open_s)
        _count("half_open_probes", half_open_probes)
        if slow_call_s is not None:
            check_positive("slow_call_s", slow_call_s)
        self.name = name
        self.failure_rate_threshold = float(failure_rate_threshold)
        self.window = window
        self.window_s = float(window_s) if window_s is not None else None
        self.minimum_calls = minimum_calls
        self.consecutive_failures = consecutive_failures
        self.open_s = float(open_s)
        self.half_open_probes = half_open_probes
        self.slow_call_s = float(slow_call_s) if slow_call_s is not None else None
        self.reset()

    def reset(self) -> None:
        """Back to CLOSED with an empty window and zero counters (a new run)."""
        self.state = CLOSED
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, ok)
        self._failures = 0  # failures in the window
        self._streak = 0
        self._opened_at = 0.0
        self._probes_out = 0
        self._probes_ok = 0
        self.transitions: list[tuple[float, str, str]] = []
        self.calls = self.successes = self.failures = self.slow_calls = self.not_permitted = 0
        self.on_transition: Callable[[float, str, str], None] | None = None

    def copy(self) -> "CircuitBreaker":
        """A fresh breaker with the same settings (a balancer keeps one per backend)."""
        new = copy.copy(self)
        new.reset()
        return new

    # -- the state machine ---------------------------------------------------------------------
    def _move(self, to: str, now: float) -> None:
        old, self.state = self.state, to
        self.transitions.append((now, old, to))
        if to == OPEN:
            self._opened_at = now
        if to in (HALF_OPEN, CLOSED):
            self._probes_out = self._probes_ok = 0
        if to == CLOSED:
            self._outcomes.clear()
            self._failures = 0
            self._streak = 0
        if self.on_transition is not None:
            self.on_transition(now, old, to)

    def state_at(self, now: float) -> str:
        """The state at ``now`` (an OPEN breaker whose ``open_s`` has passed is HALF_OPEN)."""
        if self.state == OPEN and now - self._opened_at >= self.open_s:
            self._move(HALF_OPEN, now)
        return self.state

    def permits(self, now: float) -> bool:
        """Would a call be allowed now? (Does not take a half-open probe.)"""
        state = self.state_at(now)
        return state == CLOSED or (state == HALF_OPEN and self._probes_out < self.half_open_probes)

    def allow(self, now: float) -> bool:
        """May a call go ahead now? In HALF_OPEN this takes one of the probes."""
        if not self.permits(now):
            self.not_permitted += 1
            return False
        if self.state == HALF_OPEN:
            self._probes_out += 1
        return True

    def record(self, ok: bool, now: float, duration_s: float | None = None) -> None:
        """The outcome of a call that ``allow`` let through."""
        if ok and self.slow_call_s is not None and duration_s is not None and duration_s >= self.slow_call_s:
            ok = False
            self.slow_calls += 1
        self.calls += 1
        if ok:
            self.successes += 1
        else:
            self.failures += 1
        state = self.state_at(now)
        if state == HALF_OPEN:
            if not ok:
                self._move(OPEN, now)
                return
            self._probes_ok += 1
            if self._probes_ok >= self.half_open_probes:
                self._move(CLOSED, now)
            return
        if state == OPEN:  # a call that started before the breaker opened: it changes nothing
            return
        self._streak = 0 if ok else self._streak + 1
        outcomes = self._outcomes
        outcomes.append((now, ok))
        if not ok:
            self._failures += 1
        if self.window is not None:
            while len(outcomes) > self.window:
                self._failures -= not outcomes.popleft()[1]
        else:
            while outcomes and outcomes[0][0] <= now - self.window_s:
                self._failures -= not outcomes.popleft()[1]
        if self.consecutive_failures is not None and self._streak >= self.consecutive_failures:
            self._move(OPEN, now)
        elif len(outcomes) >= self.minimum_calls and self._failures / len(outcomes) >= self.failure_rate_threshold:
            self._move(OPEN, now)

    @property
    def failure_rate(self) -> float:
        """The share of failures in the current window (0.0 when empty)."""
        return self._failures / len(self._outcomes) if self._outcomes else 0.0

    # -- around a call ----------------------------------------------------------------------------
    async def call(self, caller, host: str, request: Request, *, timeout_s: float | None = 30.0,
                   fallback: Response | Callable[[], Any] | None = None) -> Response:
        """``caller.call(host, request)`` through the breaker.

        Refused (open), or failed (an error status >= 500 or a ``RequestError``):
        returns ``fallback`` (a Response, or a callable giving one) when given,
        else the failure - ``CircuitOpen`` or the error - is raised / the 5xx answered.
        """
        now = _now(caller)
        if self.on_transition is None:
            sim = _sim(caller)
            if sim is not None:
                self.on_transition = lambda t, old, new: sim.event(f"circuit {self.name}: {old} -> {new}")
        if not self.allow(now):
            if fallback is not None:
                return _fallback(fallback)
            raise CircuitOpen(f"circuit {self.name!r} is {self.state}: call to {host!r} not sent")
        started = now
        try:
            response = await caller.call(host, request, timeout_s)
        except RequestError:
            self.record(False, _now(caller), _now(caller) - started)
            if fallback is not None:
                return _fallback(fallback)
            raise
        ok = response.status < 500
        self.record(ok, _now(caller), _now(caller) - started)
        if not ok and fallback is not None:
            return _fallback(fallback)
        return response

    def detail(self) -> dict[str, Any]:
        return {"state": self.state, "calls": self.calls, "failures": self.failures, "slow_calls": self.slow_calls,
                "not_permitted": self.not_permitted, "failure_rate": self.failure_rate,
                "opened": sum(1 for _, _, to in self.transitions if to == OPEN)}

    def __repr__(self) -> str:
        window = f"window={self.window}" if self.window is not None else f"window_s={self.window_s:g}"
        return (f"CircuitBreaker({self.name!r}, failure_rate_threshold={self.failure_rate_threshold:g}, {window}, "
                f"open_s={self.open_s:g}, half_open_probes={self.half_open_probes})")


def _fallback(fallback) -> Response:
    value = fallback() if callable(fallback) else fallback
    if isinstance(value, Response):
        return Response(value.status, {**value.headers, "x-fallback": "1"}, value.body)
    raise ConfigError(f"fallback must be a Response or a callable returning one, got {value!r}")


def _now(caller) -> float:
    """Absolute simulated time from an app server's Context or a Node."""
    server = getattr(caller, "server", None)
    node = server if server is not None else caller
    return node.sched.now


def _sim(caller):
    server = getattr(caller, "server", None)
    return getattr(server if server is not None else caller, "sim", None)
