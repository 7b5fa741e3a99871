"""The database's key-value requests served without a task.

``GET``/``PUT``/``DELETE /kv/<key>`` only hold an IO slot for the statement's
latency and then run one statement, so ``Database`` serves them with scheduler
callbacks (``playground.Node._serve_inline``): the same latency draw, the same
IO queue, the same statement at the same simulated moment as
``Database.handle`` running in a worker task, with no task switch. Everything
else (SQL over ``/query``, replication, writes to a replica) is handed to a
worker task as usual.

A crash fails the held requests at once (``Node._fail_held``); an IO slot one
of them held is passed on when its timer fires, as a cancelled task would
have let go of it.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from playground import Response

from .database_store import READ, WRITE, dumps

__all__ = ["InlineKV"]


class InlineKV:
    """Mixed into ``Database``: the callback path for key-value requests."""

    def _attach_inline(self) -> None:
        from .database import Database

        self._serve_inline = self._serve_kv_inline if type(self).handle is Database.handle else None

    def _serve_kv_inline(self, ex) -> None:
        request = ex.request
        route = request.route
        method = request.method
        plan = None
        if route.startswith("/kv/") and len(route) > 4:
            key = unquote(route[4:])
            if method in ("GET", "HEAD"):
                plan = (READ, lambda: self.store.kv_get(key), self._kv_read_answer)
            elif self.replica_of is None and method in ("PUT", "POST"):
                try:
                    value = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    value = None
                if value is not None:
                    plan = (WRITE, lambda: self.store.kv_put(key, value, self.sched.now), self._kv_put_answer)
        if plan is None:  # not a plain key-value request: a worker task serves it
            self.sched._woke += 1
            self._nursery.start_soon(self._worker, ex)
            return
        kind, run, answer = plan
        self._busy.add(1, self.sched.now)
        latency = self.read_latency_s if kind == READ else self.write_latency_s
        seconds = latency.sample(self.rng) * self.slow_factor
        self.io.acquire_then(self._kv_granted, (ex, kind, run, answer, seconds))

    def _kv_granted(self, item) -> None:
        ex, kind, run, answer, seconds = item
        if ex not in self._inflight:  # failed by a crash while it waited: pass the slot on
            self.io.release()
            return
        if seconds > 0:
            sched = self.sched
            sched.post(sched.now + seconds, self._kv_done, item)
        else:
            self._kv_done(item)

    def _kv_done(self, item) -> None:
        ex, kind, run, answer, _ = item
        if ex not in self._inflight:  # failed by a crash while holding a slot
            self.io.release()
            return
        try:
            result = run()
        finally:
            self.io.release()
        self._count(kind)
        response = answer(ex.request, result)
        self._busy.add(-1, self.sched.now)
        self._complete(ex, response)
        self._next_inline()

    def _kv_read_answer(self, request, found: Any) -> Response:
        extra = self._freshness(request, READ)
        if found is None:
            key = unquote(request.route[4:])
            return self._answer(404, f"no such key {key!r}".encode(), extra)
        value, version = found
        return self._answer(200, value.encode(), {**extra, "x-version": str(version)})

    def _kv_put_answer(self, request, version: int) -> Response:
        return self._answer(200, dumps({"version": version}), content_type="application/json")


