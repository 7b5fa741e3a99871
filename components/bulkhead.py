"""A bulkhead: a cap on how many calls to one dependency may be waiting at once.

A ship's bulkheads keep one flooded compartment from sinking it. In a service,
a dependency that hangs holds every worker that calls it; with enough
traffic, all of them - and pages that never needed that dependency fail too.
A bulkhead (resilience4j's ``Bulkhead``, Hystrix's thread-pool isolation)
lets at most ``max_concurrent`` calls to it be in progress; a call beyond
that waits up to ``max_wait_s`` for a place and is then refused
(``BulkheadFull``, or the ``fallback``), so the rest of the workers stay free.

    reports = Bulkhead("reports", max_concurrent=4)
    response = await reports.call(ctx, "reports", Request("GET", "/daily"), timeout_s=2.0,
                                  fallback=Response(503, body=b"reports are busy"))

Waiters get a place in arrival order. The count lives in this object: share
one per dependency per server (each app server its own, as each process has
its own thread pool). Left out: resilience4j's fair/unfair choice and thread
pool queues with their own workers.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable

import trio

from playground import ConfigError, Request, RequestError, Response
from playground._errors import check_positive

__all__ = ["Bulkhead", "BulkheadFull"]


class BulkheadFull(RequestError):
    """Too many calls to the dependency are in progress: this one was not sent."""

    kind = "bulkhead_full"


class Bulkhead:
    """At most ``max_concurrent`` calls in progress; others wait up to ``max_wait_s`` (default 0: refused at once)."""

    def __init__(self, name: str = "bulkhead", *, max_concurrent: int, max_wait_s: float = 0.0) -> None:
        if not (isinstance(name, str) and name):
            raise ConfigError(f"name must be a non-empty string, got {name!r}")
        if not (isinstance(max_concurrent, int) and not isinstance(max_concurrent, bool) and max_concurrent >= 1):
            raise ConfigError(f"max_concurrent must be an integer >= 1, got {max_concurrent!r}")
        check_positive("max_wait_s", max_wait_s, allow_zero=True)
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_wait_s = float(max_wait_s)
        self.active = 0
        self._waiters: deque[trio.Event] = deque()
        self.calls = self.rejected = self.waited = self.peak_active = 0

    async def _acquire(self) -> bool:
        if self.active < self.max_concurrent and not self._waiters:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            return True
        if self.max_wait_s <= 0:
            return False
        ready = trio.Event()
        self._waiters.append(ready)
        self.waited += 1
        with trio.move_on_after(self.max_wait_s):
            await ready.wait()
        if ready.is_set():  # the place was handed over (active already counts it)
            return True
        self._waiters.remove(ready)
        return False

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # hand the place to the longest waiter
        else:
            self.active -= 1

    async def call(self, caller, host: str, request: Request, *, timeout_s: float | None = 30.0,
                   fallback: Response | Callable[[], Any] | None = None) -> Response:
        """``caller.call(host, request)`` if a place is free (or frees up within ``max_wait_s``)."""
        if not await self._acquire():
            self.rejected += 1
            if fallback is not None:
                value = fallback() if callable(fallback) else fallback
                if not isinstance(value, Response):
                    raise ConfigError(f"fallback must be a Response or a callable returning one, got {value!r}")
                return Response(value.status, {**value.headers, "x-fallback": "1"}, value.body)
            raise BulkheadFull(f"bulkhead {self.name!r} full: {self.max_concurrent} calls to {host!r} in progress")
        self.calls += 1
        try:
            return await caller.call(host, request, timeout_s)
        finally:
            self._release()

    def detail(self) -> dict[str, Any]:
        return {"max_concurrent": self.max_concurrent, "active": self.active, "waiting": len(self._waiters),
                "calls": self.calls, "rejected": self.rejected, "waited": self.waited,
                "peak_active": self.peak_active}

    def __repr__(self) -> str:
        return f"Bulkhead({self.name!r}, max_concurrent={self.max_concurrent}, max_wait_s={self.max_wait_s:g})"
