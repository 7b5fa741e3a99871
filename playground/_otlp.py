"""Traces as OpenTelemetry's OTLP/JSON, the file Jaeger and Grafana Tempo load.

OTLP is OpenTelemetry's wire format; its JSON form (the protobuf messages in
proto3's JSON mapping) nests ``resourceSpans`` (one per service, named by the
``service.name`` resource attribute) -> ``scopeSpans`` (the instrumentation
that made them) -> ``spans``. Ids are lower-case hex (32 digits for a trace,
16 for a span), times are nanoseconds since the Unix epoch written as strings,
``kind`` and ``status.code`` are the enum numbers, and integer attribute values
are strings (``{"intValue": "200"}``).

Here every host is a service (one resource per host), simulated time 0 is
placed at ``start_unix_s`` (by default 2024-01-01 00:00:00 UTC, so the same run
writes the same file), and a span's status is ERROR when it failed (with the
error's kind as message), OK otherwise.
"""
from __future__ import annotations

import json
from typing import Iterable

from ._trace import TraceRecord

__all__ = ["otlp_json"]

START_UNIX_S = 1_704_067_200  # 2024-01-01T00:00:00Z
_KIND = {"internal": 1, "server": 2, "client": 3}
STATUS_OK, STATUS_ERROR = 1, 2


def _value(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _attributes(pairs: dict) -> list[dict]:
    return [{"key": k, "value": _value(v)} for k, v in pairs.items() if v is not None]


def _nanos(t_s: float, start_unix_s: int) -> str:
    return str(start_unix_s * 1_000_000_000 + round(t_s * 1e9))


def otlp_json(traces: Iterable[TraceRecord], *, start_unix_s: int = START_UNIX_S, version: str = "") -> dict:
    """An OTLP ``ExportTraceServiceRequest`` as a dict, one resource (service) per host."""
    by_host: dict[str, list[dict]] = {}
    for trace in traces:
        for s in trace.spans:
            attrs = {"playground.request_id": trace.request_id, **s.attrs}
            if s.status is not None:
                attrs["http.response.status_code"] = s.status
            if s.error:
                attrs["error.type"] = s.error
            span = {
                "traceId": trace.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": _KIND[s.kind],
                "startTimeUnixNano": _nanos(s.start_s, start_unix_s),
                "endTimeUnixNano": _nanos(s.end_s, start_unix_s),
                "attributes": _attributes(attrs),
                "status": {"code": STATUS_ERROR, "message": s.error} if s.error else {"code": STATUS_OK},
            }
            if s.parent_id:
                span["parentSpanId"] = s.parent_id
            by_host.setdefault(s.host, []).append(span)
    return {"resourceSpans": [
        {"resource": {"attributes": _attributes({"service.name": host})},
         "scopeSpans": [{"scope": {"name": "playground", "version": version}, "spans": spans}]}
        for host, spans in sorted(by_host.items())
    ]}


def dumps(traces: Iterable[TraceRecord], **kw) -> str:
    return json.dumps(otlp_json(traces, **kw), indent=1, sort_keys=True)
