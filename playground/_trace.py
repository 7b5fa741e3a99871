"""Request traces: the path of a sampled share of requests, as spans.

Distributed tracing (Dapper, Zipkin, Jaeger, OpenTelemetry) follows one request
through every service it touches: each hop is a *span* with a start, an end,
a host, a parent and a status, so a slow request shows where its time went
(waiting in a queue, on a core, for the database). Production systems sample:
tracing every request costs too much.

The model samples a share of the requests a load issues (``Sim(trace_sample=
0.001)``: one in a thousand by default, drawn from the simulation's own
``trace`` random stream, so tracing on or off changes no other draw). A sampled
request carries its current span (``Request.trace``); an unsampled one carries
``None``, and every hook on the hot path is one test of that attribute. Spans:

* the load's request (``CLIENT`` on the client host), the root;
* each host's handling of it (``SERVER``): from arrival to answer, with status,
  or ``refused`` / ``rejected`` / ``reset`` when it never got served;
* inside a host: ``queue`` (the accept queue), ``cpu wait`` and ``cpu`` (an
  app server's cores), and each downstream call (``CLIENT``, ``call <host>``),
  whose ``SERVER`` span on the callee is its child.

A trace is followed only through calls that pass the request on: balancers
(``Request.copy``) and app-server handlers (``ctx.call`` / ``ctx.get``). A
component building a fresh ``Request`` elsewhere starts no child spans.

Memory is flat: ``TraceStore`` keeps the slowest ``keep_slowest`` traces and a
uniform reservoir sample (Vitter's algorithm R) of ``keep_sampled`` others.
``report.traces`` holds them as frozen records; ``report.traces_otlp(path)``
writes OpenTelemetry's OTLP/JSON for Jaeger or Grafana Tempo.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Span", "Trace", "TraceStore", "SpanRecord", "TraceRecord"]

SERVER, CLIENT, INTERNAL = "server", "client", "internal"


class Trace:
    """One sampled request's spans (mutable while the run goes on)."""

    __slots__ = ("trace_id", "request_id", "spans", "root", "_prefix")

    def __init__(self, trace_id: int, request_id: int) -> None:
        self.trace_id = trace_id
        self.request_id = request_id
        self.spans: list[Span] = []
        self.root: Span | None = None
        self._prefix = (trace_id >> 96) << 32  # span ids: the trace's top 32 bits, then a counter

    def start(self, name: str, host: str, kind: str, start_s: float, parent: "Span | None" = None) -> "Span":
        span = Span(self, self._prefix | (len(self.spans) + 1), parent.span_id if parent else 0, name, host,
                    kind, start_s)
        self.spans.append(span)
        if parent is None and self.root is None:
            self.root = span
        return span


class Span:
    """One timed step of a trace. ``end(now, status)`` closes it."""

    __slots__ = ("trace", "span_id", "parent_id", "name", "host", "kind", "start_s", "end_s", "status", "error",
                 "attrs", "mark")

    def __init__(self, trace: Trace, span_id: int, parent_id: int, name: str, host: str, kind: str,
                 start_s: float) -> None:
        self.trace = trace
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.host = host
        self.kind = kind
        self.start_s = start_s
        self.end_s: float | None = None
        self.status: int | None = None  # an HTTP status when there was one
        self.error = ""  # the error's kind ("timeout", "refused", "reset", "rejected", ...)
        self.attrs: dict[str, Any] = {}
        self.mark = start_s  # when the current step inside the host began

    def child(self, name: str, host: str, kind: str, start_s: float) -> "Span":
        return self.trace.start(name, host, kind, start_s, self)

    # steps inside a host, for a host that serves with callbacks rather than a task
    def service_starts(self, now: float) -> None:
        """A worker takes the request: the time since it arrived was spent in the accept queue."""
        if now > self.start_s:
            self.child("queue", self.host, INTERNAL, self.start_s).end(now)
        self.mark = now

    def cpu_granted(self, now: float) -> None:
        if now > self.mark:
            self.child("cpu wait", self.host, INTERNAL, self.mark).end(now)
        self.mark = now

    def cpu_done(self, now: float) -> None:
        self.child("cpu", self.host, INTERNAL, self.mark).end(now)
        self.mark = now

    def end(self, end_s: float, status: int | None = None, error: str = "") -> None:
        if self.end_s is None:
            self.end_s = end_s
            self.status = status
            self.error = error or ("5xx" if status is not None and status >= 500 else "")


@dataclass(frozen=True)
class SpanRecord:
    """A finished span, times in seconds since the run started."""

    span_id: str  # 16 hex digits
    parent_id: str  # "" for the root
    name: str
    host: str
    kind: str
    start_s: float
    end_s: float
    status: int | None
    error: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class TraceRecord:
    """One kept trace: its id (32 hex digits), the request, and its spans in start order."""

    trace_id: str
    request_id: int
    name: str
    duration_s: float
    error: str
    spans: list[SpanRecord]
    slowest: bool  # kept as one of the slowest (else as part of the uniform sample)


class TraceStore:
    """The slowest ``keep_slowest`` traces plus a reservoir of ``keep_sampled``: flat memory."""

    def __init__(self, rng: random.Random, sample: float, keep_slowest: int = 20, keep_sampled: int = 100) -> None:
        self.rng = rng
        self.sample = sample
        self.keep_slowest = keep_slowest
        self.keep_sampled = keep_sampled
        self.sampled = 0  # traces started
        self.finished = 0  # traces whose root span ended
        self._slowest: list[tuple[float, int, Trace]] = []  # a min-heap on duration
        self._reservoir: list[Trace] = []
        self._seen = 0  # traces offered to the reservoir

    def maybe_start(self, request, host: str, now: float) -> Span | None:
        """Sample ``request``: if chosen, start its trace and return the root span."""
        if self.rng.random() >= self.sample:
            return None
        self.sampled += 1
        trace = Trace(self.rng.getrandbits(128) | 1, request.id)
        return trace.start(f"{request.method} {request.route}", host, CLIENT, now)

    def finish(self, span: Span) -> None:
        """The root span ended: keep the trace if it is among the slowest, else maybe in the sample."""
        self.finished += 1
        trace = span.trace
        item = (span.end_s - span.start_s, self.finished, trace)
        heap = self._slowest
        if len(heap) < self.keep_slowest:
            heapq.heappush(heap, item)
            return
        if item[:2] > heap[0][:2]:
            item = heapq.heapreplace(heap, item)  # the one pushed out may still go to the reservoir
        self._offer(item[2])

    def _offer(self, trace: Trace) -> None:
        self._seen += 1
        if len(self._reservoir) < self.keep_sampled:
            self._reservoir.append(trace)
        else:
            j = self.rng.randrange(self._seen)
            if j < self.keep_sampled:
                self._reservoir[j] = trace

    def records(self, t0: float, end: float) -> list[TraceRecord]:
        """The kept traces, slowest first, then the sample in request order; open spans end at ``end``."""
        slow = [t for _, _, t in sorted(self._slowest, key=lambda i: (-i[0], i[1]))]
        sample = sorted(self._reservoir, key=lambda t: t.request_id)
        return [_record(t, t0, end, True) for t in slow] + [_record(t, t0, end, False) for t in sample]


def _record(trace: Trace, t0: float, end: float, slowest: bool) -> TraceRecord:
    spans = []
    for s in sorted(trace.spans, key=lambda s: (s.start_s, s.span_id)):
        closed = s.end_s is not None
        spans.append(SpanRecord(
            span_id=f"{s.span_id:016x}", parent_id=f"{s.parent_id:016x}" if s.parent_id else "", name=s.name,
            host=s.host, kind=s.kind, start_s=round(s.start_s - t0, 9),
            end_s=round((s.end_s if closed else max(end, s.start_s)) - t0, 9), status=s.status,
            error=s.error if closed else "unfinished", attrs=dict(s.attrs)))
    root = trace.root
    duration = (root.end_s if root.end_s is not None else end) - root.start_s
    return TraceRecord(f"{trace.trace_id:032x}", trace.request_id, root.name, round(duration, 9),
                       root.error, spans, slowest)


# -- the hooks the engine calls for a sampled request (``request.trace`` is not None) -----
def arrive(node, ex, now: float) -> None:
    """A traced request reached ``node``: open its SERVER span; the host sees a copy carrying it."""
    parent = ex.request.trace
    req = ex.request.copy()
    req.trace = parent.child(f"{req.method} {req.route}", node.name, SERVER, now)
    ex.request = req


def answered(span: Span, now: float, result) -> None:
    """The host answers (or fails) a traced request: close its SERVER span."""
    status = getattr(result, "status", None)
    if status is not None:
        span.end(now, status, "rejected" if status == 503 and result.headers.get("retry-after") else "")
    else:
        span.end(now, None, getattr(result, "kind", "error"))


def cpu(span: Span, asked_s: float, granted_s: float, done_s: float) -> None:
    """Time waiting for a core, then on it."""
    if granted_s > asked_s:
        span.child("cpu wait", span.host, INTERNAL, asked_s).end(granted_s)
    span.child("cpu", span.host, INTERNAL, granted_s).end(done_s)


async def call(node, dst: str, request, timeout_s):
    """``node`` calls ``dst`` with a traced request: a CLIENT span around the call."""
    from ._errors import RequestError

    sched = node.sched
    span = request.trace.child(f"call {dst}", node.name, CLIENT, sched.now)
    span.attrs["peer.service"] = dst
    request.trace = span
    try:
        response = await node.net.call(node.name, dst, request, timeout_s)
    except RequestError as exc:
        span.end(sched.now, None, exc.kind)
        raise
    except BaseException:
        span.end(sched.now, None, "cancelled")
        raise
    span.end(sched.now, response.status)
    return response
