"""The HTML run report's waterfall: the slowest traces, one bar per span.

A waterfall is how tracing tools (Jaeger, Tempo, Zipkin) draw a trace: time
runs left to right, each span is a bar indented under its parent, so the eye
finds at once where a slow request spent its time: a long ``queue`` bar is a
saturated host, a long ``call db`` bar with a short server span under it is
the network or a timeout.
"""
from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._html import Section
    from ._report import Report

__all__ = ["waterfall"]

SHOW = 5  # traces drawn
WIDTH_PX = 760
ROW_PX = 16


def _bar_class(span) -> str:
    if span.error:
        return "bar-err"
    if span.name in ("queue", "cpu wait"):
        return "bar-wait"
    if span.name == "cpu":
        return "bar-cpu"
    if span.kind == "client" and span.parent_id:
        return "bar-call"
    if span.kind == "server":
        return "bar-ok"
    return "bar-other"


def _depths(spans) -> dict[str, int]:
    parents = {s.span_id: s.parent_id for s in spans}
    out: dict[str, int] = {}
    for s in spans:
        d, p, seen = 0, s.parent_id, set()
        while p and p in parents and p not in seen:
            seen.add(p)
            d += 1
            p = parents[p]
        out[s.span_id] = d
    return out


def _one(trace) -> str:
    spans = trace.spans
    t0 = min(s.start_s for s in spans)
    t1 = max(s.end_s for s in spans)
    span_s = max(t1 - t0, 1e-9)
    depth = _depths(spans)
    label_px = 230
    parts = []
    for i, s in enumerate(spans):
        y = i * ROW_PX
        x = label_px + WIDTH_PX * (s.start_s - t0) / span_s
        w = max(1.0, WIDTH_PX * (s.end_s - s.start_s) / span_s)
        status = s.error or (str(s.status) if s.status is not None else "")
        label = f"{'  ' * depth[s.span_id]}{s.host}: {s.name}"
        parts.append(
            f'<text class="label" x="{4 + 10 * depth[s.span_id]}" y="{y + 12}">{escape(label.strip())}</text>'
            f'<rect class="{_bar_class(s)}" x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW_PX - 4}">'
            f'<title>{escape(s.host)}: {escape(s.name)} {1000 * (s.end_s - s.start_s):.2f} ms'
            f'{" " + escape(status) if status else ""}</title></rect>'
            f'<text class="label" x="{min(x + w + 4, label_px + WIDTH_PX - 60):.1f}" y="{y + 12}">'
            f'{1000 * (s.end_s - s.start_s):.1f} ms</text>')
    height = len(spans) * ROW_PX + 4
    head = (f"<p><b>{escape(trace.name)}</b> at t={trace.spans[0].start_s:.3f} s: "
            f"{1000 * trace.duration_s:.1f} ms{', ' + escape(trace.error) if trace.error else ''} "
            f"<span class='note'>trace {trace.trace_id}</span></p>")
    return head + f'<svg class="chart" width="{label_px + WIDTH_PX + 70}" height="{height}">{"".join(parts)}</svg>'


def waterfall(report: "Report") -> "Section | None":
    from ._html import Section

    slow = [t for t in report.traces if t.slowest and t.spans][:SHOW]
    if not slow:
        return Section("traces", "Slowest traces", "<p class='note'>No traces were kept (tracing samples a share "
                       "of requests: <code>Sim(trace_sample=...)</code>).</p>")
    kept = len(report.traces)
    legend = ("<div class='legend'><span><i class='bar-ok' style='background:#3182ce'></i>host</span>"
              "<span><i style='background:#ecc94b'></i>waiting (queue, cpu wait)</span>"
              "<span><i style='background:#38a169'></i>cpu</span><span><i style='background:#805ad5'></i>call</span>"
              "<span><i style='background:#c53030'></i>failed</span></div>")
    note = (f"<p class='note'>The {len(slow)} slowest of {kept} kept traces. report.traces_otlp(path) writes them "
            "all as OTLP/JSON for Jaeger or Grafana Tempo.</p>")
    return Section("traces", "Slowest traces", legend + "".join(_one(t) for t in slow) + note)
