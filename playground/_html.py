"""The HTML run report: one self-contained page that shows what killed a system.

``report.to_html("run.html")`` writes a single file that opens offline in any
browser: no script, font or style is fetched from anywhere (the page's CSS and
JS are package data, inlined when written, and the text holds no URL at all).
It shows, top to bottom:

* the topology, drawn from the engine's pure ``layout``, each host coloured by
  how saturated it was, and a **time slider** that replays the run second by
  second from the per-host series (up or DOWN, busy share, queue, latency);
* a strip per host of its utilisation over time, and the clients' throughput
  and latency, with every fault of ``report.events`` marked where it happened;
* the errors, per host and per load; the slowest traces as a waterfall; and
  the configuration that produced it all.

The page is a list of sections (``SECTIONS``: functions of the report that
return a ``Section``), so a new view is one function appended there or passed
as ``render(report, sections=[...])``. The drawing is plain SVG written here;
the script only recolours it when the slider moves.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Callable

from ._layout import layout

if TYPE_CHECKING:
    from ._report import Report

__all__ = ["Section", "SECTIONS", "render"]

SERIES_COLUMNS = ("t_s", "dt_s", "up", "utilisation", "queue", "in_flight", "served", "errors", "p50_s", "p99_s",
                  "crashes")


@dataclass(frozen=True)
class Section:
    """One part of the page: an anchor id, a heading and its HTML."""

    id: str
    title: str
    html: str


def _static(name: str) -> str:
    return resources.files("playground").joinpath("static", name).read_text(encoding="utf-8")


def _e(text) -> str:
    """Escaped text; a scheme separator is broken so that no URL appears in the page."""
    return escape(str(text)).replace("://", ":&#47;&#47;")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _length(report: "Report") -> float:
    """The run's length: the measured window and the warm-up before it (times count from the start)."""
    return getattr(report, "warmup_s", 0.0) + report.duration_s


def _hosts(report: "Report") -> list[str]:
    return list(report.host_series) or list(report.components)


def _faults(report: "Report", x0: float, width: float, top: float, bottom: float) -> str:
    span = max(_length(report), 1e-9)
    out = []
    for t, what in report.events:
        x = x0 + width * min(t, span) / span
        out.append(f'<line class="fault" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"><title>'
                   f't={t:.2f} s {_e(what)}</title></line>')
    return "".join(out)


def _cursor(x0: float, width: float, top: float, bottom: float) -> str:
    return (f'<line class="cursor" data-x0="{x0}" data-w="{width}" x1="{x0}" x2="{x0}" y1="{top}" '
            f'y2="{bottom}"/>')


# -- sections ------------------------------------------------------------------------
def topology(report: "Report") -> Section:
    topo = report.topology or {}
    hosts_cfg = topo.get("hosts", {})
    names = list(hosts_cfg) or list(report.components)
    kinds = {n: hosts_cfg.get(n, {}).get("kind", "") for n in names}
    links = [tuple(e) for e in topo.get("edges", [])]
    pos = layout(names, kinds, links)
    index = {h: i for i, h in enumerate(_hosts(report))}
    width = max([p["x"] for p in pos.values()] or [0]) + 150
    height = max([p["y"] for p in pos.values()] or [0]) + 90
    parts = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#98a2ae"/></marker></defs>']
    for a, b in links:
        if a in pos and b in pos:
            pa, pb = pos[a], pos[b]
            parts.append(f'<line class="edge" x1="{pa["x"] + 120}" y1="{pa["y"] + 28}" x2="{pb["x"]}" '
                         f'y2="{pb["y"] + 28}"/>')
    for name in names:
        p = pos[name]
        s = report.components.get(name)
        util = s.utilisation if s is not None else 0.0
        state = "up" if s is None or s.up else "down"
        node_id = f'node-{index[name]}' if name in index else f'client-{_e(name)}'
        fill = "#e2e8f0" if s is None else _colour(util)
        parts.append(
            f'<g class="node" id="{node_id}" data-host="{_e(name)}" data-state="{state}" '
            f'transform="translate({p["x"]},{p["y"]})"><title>{_e(name)} ({_e(kinds[name])})</title>'
            f'<rect width="120" height="56" rx="6" style="fill:{fill}"/>'
            f'<text x="8" y="17" font-weight="600" font-size="13">{_e(name)}</text>'
            f'<text x="8" y="31" font-size="11" fill="#4a5561">{_e(kinds[name])}</text>'
            f'<text class="state" x="8" y="48">{"" if s is None else state}</text>'
            f'<text class="util" x="112" y="31" text-anchor="end" font-size="11"></text></g>')
    svg = f'<svg class="topology" width="{width}" height="{height}" role="img">{"".join(parts)}</svg>'
    last = max(0, int(_length(report) + 0.999) - 1)
    slider = (f'<div class="slider"><label for="time">time</label><input type="range" id="time" min="0" '
              f'max="{last}" step="1" value="0"><span id="time-label"></span></div>')
    head = "".join(f"<th>{h}</th>" for h in ("host", "state", "busy", "queue", "in host", "served", "errors",
                                               "p50 ms", "p99 ms"))
    rows = "".join(f'<tr id="row-{i}"><td>{_e(h)}</td>' + "<td></td>" * 8 + "</tr>"
                   for h, i in index.items())
    table = f'<table class="at-time"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    note = ('<p class="note">Colour: share of capacity in use in that second (green idle, red saturated; grey '
            'DOWN). Move the slider (or use the arrow keys on it) to replay the run.</p>')
    return Section("topology", "Topology over time", slider + svg + table + note)


def _colour(util: float) -> str:
    u = max(0.0, min(1.0, util))
    hue = 120 - u / 0.7 * 65 if u < 0.7 else 55 - (u - 0.7) / 0.3 * 55
    return f"hsl({hue:.0f}, 70%, {55 if u > 0.9 else 62}%)"


def utilisation_strips(report: "Report") -> Section:
    hosts = _hosts(report)
    x0, width, row_h = 120, 900, 18
    span = max(_length(report), 1e-9)
    parts = []
    for i, h in enumerate(hosts):
        y = 10 + i * (row_h + 4)
        parts.append(f'<text class="label" x="{x0 - 8}" y="{y + 13}" text-anchor="end">{_e(h)}</text>')
        for r in report.host_series.get(h, []):
            x = x0 + width * r.t_s / span
            w = max(0.5, width * min(r.dt_s, span - r.t_s) / span) if r.t_s < span else 0
            if w <= 0:
                continue
            down = not r.up or r.crashes
            fill = "#8a8f96" if down else _colour(r.utilisation)
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" style="fill:{fill}">'
                         f'<title>{_e(h)} t={r.t_s:g} s: {"DOWN" if down else f"{r.utilisation:.0%} busy"}, '
                         f'queue {r.queue:.1f}, {r.served} served, {r.errors} errors, p99 {_ms(r.p99_s)} ms'
                         f'</title></rect>')
    bottom = 10 + len(hosts) * (row_h + 4)
    parts.append(_faults(report, x0, width, 4, bottom))
    parts.append(_cursor(x0, width, 4, bottom))
    parts.append(_axis(x0, width, bottom + 4, _length(report)))
    svg = f'<svg class="chart" width="{x0 + width + 20}" height="{bottom + 28}">{"".join(parts)}</svg>'
    return Section("saturation", "Which host was saturated when", svg + '<p class="note">One strip per host, '
                   'one cell per second; red dashed lines are faults (hover for what).</p>')


def _axis(x0: float, width: float, y: float, duration_s: float) -> str:
    step = _nice_step(duration_s / 8)
    out = [f'<line class="axis" x1="{x0}" x2="{x0 + width}" y1="{y}" y2="{y}"/>']
    t = 0.0
    while t <= duration_s + 1e-9:
        x = x0 + width * t / max(duration_s, 1e-9)
        out.append(f'<text class="label" x="{x:.1f}" y="{y + 14}" text-anchor="middle">{t:g} s</text>')
        t += step
    return "".join(out)


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= ``raw``."""
    if not raw > 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * scale >= raw * (1 - 1e-9):
            return m * scale
    return 10 * scale


def _line_chart(report: "Report", series: dict[str, list[tuple[float, float]]], unit: str, colours: list[str]) -> str:
    x0, width, top, height = 60, 560, 10, 160
    span = max(_length(report), 1e-9)
    peak = max([v for pts in series.values() for _, v in pts] or [0]) or 1.0
    ymax = _nice_step(peak / 4) * 4 if peak > 0 else 1.0
    parts = []
    for k in range(5):
        y = top + height - height * k / 4
        parts.append(f'<line class="grid" x1="{x0}" x2="{x0 + width}" y1="{y}" y2="{y}"/>'
                     f'<text class="label" x="{x0 - 6}" y="{y + 4}" text-anchor="end">{ymax * k / 4:g}</text>')
    legend = []
    for (name, pts), colour in zip(series.items(), colours):
        coords = " ".join(f"{x0 + width * t / span:.1f},{top + height - height * min(v, ymax) / ymax:.1f}"
                          for t, v in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{coords}"/>')
        legend.append(f'<span><i style="background:{colour}"></i>{_e(name)}</span>')
    parts.append(_faults(report, x0, width, top, top + height))
    parts.append(_cursor(x0, width, top, top + height))
    parts.append(_axis(x0, width, top + height, _length(report)))
    svg = f'<svg class="chart" width="{x0 + width + 20}" height="{top + height + 24}">{"".join(parts)}</svg>'
    return f'<div><div class="legend">{"".join(legend)} <span class="note">({_e(unit)})</span></div>{svg}</div>'


def client_charts(report: "Report") -> Section:
    ok: dict[float, float] = {}
    err: dict[float, float] = {}
    p50: dict[float, list] = {}
    p99: dict[float, float] = {}
    for rows in report.series.values():
        for r in rows:
            t = r.t_s + r.dt_s / 2  # a row is a second, or longer once a long run's rows merged
            ok[t] = ok.get(t, 0) + r.ok / r.dt_s
            err[t] = err.get(t, 0) + r.errors / r.dt_s
            if r.ok:
                p50.setdefault(t, []).append((r.p50_s, r.ok))
                p99[t] = max(p99.get(t, 0.0), r.p99_s)
    inside = [t for t in sorted(ok) if t <= _length(report)]
    tput = {"ok/s": [(t, ok[t]) for t in inside], "errors/s": [(t, err[t]) for t in inside]}
    lat = {"p50 ms": [(t, 1000 * sum(v * n for v, n in p50[t]) / sum(n for _, n in p50[t])) for t in inside
                      if t in p50],
           "p99 ms": [(t, 1000 * p99[t]) for t in inside if t in p99]}
    html = ('<div class="grid2">' + _line_chart(report, tput, "per second", ["#3182ce", "#c53030"])
            + _line_chart(report, lat, "ms", ["#38a169", "#d69e2e"]) + "</div>"
            + '<p class="note">What the clients saw, all loads together: p50 is weighted by requests, p99 is the '
              'worst load\'s. Red dashed lines are faults.</p>')
    return Section("clients", "Throughput and latency", html)


def errors(report: "Report") -> Section:
    head = "".join(f"<th>{h}</th>" for h in ("host", "kind", "served", "rejected", "refused", "reset",
                                               "handler errors", "p99 ms"))
    rows = []
    detail = []
    for name, s in report.components.items():
        rows.append(f"<tr><td>{_e(name)}</td><td class='text'>{_e(s.kind)}</td><td>{s.served}</td>"
                    f"<td>{s.rejected}</td><td>{s.refused}</td><td>{s.reset}</td><td>{s.handler_errors}</td>"
                    f"<td>{_ms(s.residence.p99_s)}</td></tr>")
        for rec in list(getattr(s, "errors", None) or [])[:10]:  # per-host error records, when the engine has them
            if isinstance(rec, dict):
                fields = rec
            elif dataclasses.is_dataclass(rec):
                fields = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}
            else:
                fields = {"error": rec}
            text = ", ".join(f"{k}: {v}" for k, v in fields.items())
            detail.append(f"<tr><td>{_e(name)}</td><td class='text'>{_e(text)}</td></tr>")
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if detail:
        html += ("<h2 style='margin-top:14px'>Top errors by host</h2><table><thead><tr><th>host</th>"
                 f"<th class='text'>error</th></tr></thead><tbody>{''.join(detail)}</tbody></table>")
    loads = []
    for c in report.clients.values():
        kinds = ", ".join(f"{k} {v}" for k, v in c.errors.items()) or "none"
        loads.append(f"<tr><td>{_e(c.name)}</td><td>{c.sent}</td><td>{c.ok}</td><td class='text'>{_e(kinds)}</td>"
                     f"<td>{c.error_rate:.2%}</td></tr>")
    html += ("<h2 style='margin-top:14px'>Errors seen by the clients</h2><table><thead><tr><th>load</th><th>sent</th>"
             f"<th>ok</th><th class='text'>errors by kind</th><th>error rate</th></tr></thead><tbody>{''.join(loads)}"
             "</tbody></table>")
    if report.events:
        html += "<h2 style='margin-top:14px'>Events</h2><table><tbody>" + "".join(
            f"<tr><td>{t:.2f} s</td><td class='text'>{_e(d)}</td></tr>" for t, d in report.events) + "</tbody></table>"
    return Section("errors", "Errors", html)


def config(report: "Report") -> Section:
    topo = report.topology or {}
    warmup = getattr(report, "warmup_s", 0.0)
    lines = [f"seed {report.seed!r}, {_length(report):g} s simulated"
             + (f" (the first {warmup:g} s a warm-up, left out of the client figures)" if warmup else "")]
    for load in topo.get("loads", []):
        settings = ", ".join(f"{k}={v}" for k, v in load["settings"].items())
        lines.append(f"load {load['name']}: {load['kind']} {load['client']} -> {load['target']} ({settings})")
    for name, h in topo.get("hosts", {}).items():
        settings = ", ".join(f"{k}={v}" for k, v in h["settings"].items())
        lines.append(f"host {name} [{h['kind']}]{' region ' + h['region'] if h.get('region') else ''}: {settings}")
    for a, b in topo.get("edges", []):
        lines.append(f"edge {a} -> {b}")
    return Section("config", "Configuration", f"<pre>{_e(chr(10).join(lines))}</pre>")


def theory(report: "Report") -> Section:
    """Queueing theory beside the run (``report.theory()``): a row per station, the bottleneck bound."""
    th = report.theory()
    rows = []
    for r in th.stations:
        pred_w = "∞" if r.predicted_time_in_system_s is None else _ms(r.predicted_time_in_system_s)
        verdict = "agrees" if r.agrees else r.divergence
        rows.append(f"<tr><td class='text'>{_e(r.name)}</td><td class='text'>{_e(r.model)}</td><td>{r.rho:.2f}</td>"
                    f"<td>{r.utilisation:.0%}</td><td>{r.predicted_utilisation:.0%}</td>"
                    f"<td>{_ms(r.time_in_system_s)} ± {_ms(r.time_in_system_ci)}</td><td>{pred_w}</td>"
                    f"<td class='text{'' if r.agrees else ' diverges'}'>{_e(verdict)}</td></tr>")
    for f in th.forwarding:
        rows.append(f"<tr><td class='text'>{_e(f.host)} (forwards)</td><td class='text'>visits per request</td>"
                    f"<td></td><td></td><td></td><td>{f.visits:.3f}</td><td>{f.predicted_visits:.3f}</td>"
                    f"<td class='text{'' if f.agrees else ' diverges'}'>{_e('agrees' if f.agrees else f.divergence)}</td></tr>")
    if not rows:
        return Section("theory", "Theory vs measured", "<p>No station served a request in the measured window.</p>")
    notes = "".join(f"<p>{_e(line)}</p>" for line in th.summary_lines())
    html = ("<table><thead><tr><th class='text'>station</th><th class='text'>model</th><th>rho</th><th>util</th>"
            "<th>predicted</th><th>W ms (99% interval)</th><th>predicted</th><th class='text'>verdict</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{notes}")
    return Section("theory", "Theory vs measured", html)


# the traces' waterfall lives in its own module (it is the biggest drawing)
def _waterfall(report: "Report") -> Section:
    from ._html_traces import waterfall

    return waterfall(report)


SECTIONS: list[Callable[["Report"], Section]] = [topology, utilisation_strips, client_charts, errors, theory,
                                                 _waterfall, config]


def _data(report: "Report") -> str:
    hosts = _hosts(report)
    series = {h: [[getattr(r, c) if c != "errors" else r.errors for c in SERIES_COLUMNS]
                  for r in report.host_series.get(h, [])] for h in hosts}
    for rows in series.values():
        for row in rows:
            row[2] = 1 if row[2] else 0
            for i, v in enumerate(row):
                if isinstance(v, float):
                    row[i] = round(v, 6)
    text = json.dumps({"hosts": hosts, "columns": SERIES_COLUMNS, "series": series,
                       "duration_s": _length(report)}, separators=(",", ":"), sort_keys=True)
    # inside <script>: no closing tag, and no scheme separator (the page holds no URL)
    return text.replace("</", "<\\/").replace("://", ":\\/\\/")


def render(report: "Report", sections: list[Callable[["Report"], Section]] | None = None) -> str:
    """The page as text. ``sections`` defaults to ``SECTIONS``."""
    made = [make(report) for make in (SECTIONS if sections is None else sections)]
    made = [s for s in made if s is not None and s.html]
    body = "\n".join(f'<section id="{s.id}"><h2>{_e(s.title)}</h2>{s.html}</section>' for s in made)
    nav = "".join(f'<a href="#{s.id}">{_e(s.title)}</a>' for s in made)
    title = report.title or f"Run report: {_length(report):g} s simulated, seed {report.seed!r}"
    summary = (f"{report.sent} requests, {report.ok} ok, {report.failed} failed ({report.error_rate:.2%}); "
               f"{report.throughput_per_s:.1f} ok/s; p50 {_ms(report.p50_s)} ms, p99 {_ms(report.p99_s)} ms; "
               f"{len(report.events)} events")
    values = {"css": _static("report.css"), "js": _static("report.js"), "title": _e(title), "summary": _e(summary),
              "nav": nav, "sections": body, "data": _data(report)}
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], _static("report.html"))  # one pass
    if "http://" in page or "https://" in page:  # a URL slipped in (it would make the page fetch or link out)
        raise AssertionError("the HTML report must not contain a URL")
    return page
