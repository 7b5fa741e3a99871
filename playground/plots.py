"""Pictures of runs: latency and throughput over time, and a ladder's stages side by side.

A run's ``Report`` keeps a per-second series for each load (requests
completed, errors, p50 and p99 latency) and the timeline of faults
(``events``). ``plot_run`` draws both series against time with every fault
marked as a vertical line, the way an incident review shows a graph;
``plot_stages`` compares a list of (stage name, report) pairs - the scaling
ladder - as bars of throughput, p99 latency and error rate.

matplotlib is an optional extra (``pip install 'playground[plots]'``). Drawing
uses its Agg renderer through ``Figure`` directly, never ``pyplot``, so it
works on a machine without a display and changes no global state. The file
type follows the suffix (``.png``, ``.svg``, ``.pdf``).

    from playground.plots import plot_run, plot_stages
    plot_run(report, "run.png")
    plot_stages([("1 server", r1), ("+ balancer", r2)], "ladder.svg")
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ._errors import PlaygroundError

if TYPE_CHECKING:
    from ._report import Report

__all__ = ["plot_run", "plot_stages", "sweep_plot", "PlotsUnavailable"]


class PlotsUnavailable(PlaygroundError, ImportError):
    """matplotlib is not installed."""


def _figure(width_in: float, height_in: float, rows: int):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib: pip install 'playground[plots]'") from None
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True) if rows > 1 else [fig.subplots()]
    return fig, list(axes)


def _save(fig, path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise PlotsUnavailable(f"plot files must end in .png, .svg or .pdf, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _rows(report: "Report") -> dict[str, list[Any]]:
    return {name: list(rows) for name, rows in report.series.items()}


def _mark_events(ax, events: Sequence[tuple[float, str]], label: bool) -> None:
    for t_s, what in events:
        ax.axvline(t_s, color="#c0392b", linestyle="--", linewidth=0.9, alpha=0.8)
        if label:
            ax.annotate(what, (t_s, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                        color="#c0392b", va="top", ha="right", xytext=(-2, -2), textcoords="offset points")


def plot_run(report: "Report", path, *, title: str | None = None) -> Path:
    """Latency (p50, p99) and throughput (ok and errors per second) over time, faults marked. Returns the path."""
    fig, (lat, thr) = _figure(9.0, 5.5, 2)
    series = _rows(report)
    nan = float("nan")
    for name, rows in series.items():
        t = [r.t_s + r.dt_s / 2 for r in rows]  # a row covers a second (more once merged): draw it at its middle
        lat.plot(t, [r.p50_s * 1000 if r.ok else nan for r in rows], label=f"{name} p50")  # gaps stay gaps
        lat.plot(t, [r.p99_s * 1000 if r.ok else nan for r in rows], label=f"{name} p99")
        thr.plot(t, [r.ok / r.dt_s for r in rows], label=f"{name} ok/s")
        if any(r.errors for r in rows):
            thr.plot(t, [r.errors / r.dt_s for r in rows], label=f"{name} errors/s", linestyle=":")
    lat.set_ylabel("latency (ms)")
    thr.set_ylabel("requests per second")
    thr.set_xlabel("simulated time (s)")
    _mark_events(lat, report.events, label=True)
    _mark_events(thr, report.events, label=False)
    for ax in (lat, thr):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title or report.title or f"{report.duration_s:g} s simulated, seed {report.seed!r}")
    return _save(fig, path)


def plot_stages(stages: Sequence[tuple[str, "Report"]], path, *, title: str = "Scaling ladder") -> Path:
    """Throughput, p99 latency and error rate of each (stage name, report), as bars. Returns the path."""
    if not stages:
        raise PlotsUnavailable("plot_stages needs at least one (stage name, report) pair")
    fig, (thr, p99, err) = _figure(max(6.0, 1.3 * len(stages) + 2), 7.5, 3)
    names = [name for name, _ in stages]
    x = range(len(stages))
    bars = [
        (thr, [r.throughput_per_s for _, r in stages], "ok per second", "#1e8449"),
        (p99, [r.p99_s * 1000 for _, r in stages], "p99 latency (ms)", "#2874a6"),
        (err, [r.error_rate * 100 for _, r in stages], "errors (%)", "#b03a2e"),
    ]
    for ax, values, label, color in bars:
        ax.bar(list(x), values, color=color)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        for i, v in zip(x, values):
            ax.annotate(f"{v:,.1f}", (i, v), ha="center", va="bottom", fontsize=8)
    err.set_xticks(list(x), names, rotation=20, ha="right")
    fig.suptitle(title)
    return _save(fig, path)


def sweep_plot(result, path, *, metric: str = "p99_ms", x: str | None = None) -> Path:
    """A sweep's ``metric`` against parameter ``x``: one line per combination of the other
    parameters, each point the mean over seeds with its 95% confidence interval as a band."""
    from ._errors import ConfigError

    names = list(result.grid)
    if x is None:
        x = names[0] if names else None
    if x not in names:
        raise ConfigError(f"x must be a parameter of the sweep ({', '.join(names) or 'none'}), got {x!r}")
    others = [n for n in names if n != x]
    lines: dict[tuple, list] = {}
    for p in result.points:
        lines.setdefault(tuple(p.params[n] for n in others), []).append(p)
    fig, (ax,) = _figure(7, 4.2, 1)
    for key, pts in lines.items():
        pts = [p for p in pts if p[metric].n]
        pts.sort(key=lambda p: p.params[x])
        if not pts:
            continue
        xs = [p.params[x] for p in pts]
        means = [p[metric].mean for p in pts]
        label = ", ".join(f"{n}={v}" for n, v in zip(others, key)) or metric
        (line,) = ax.plot(xs, means, marker="o", label=label)
        if all(p[metric].low is not None for p in pts):
            ax.fill_between(xs, [p[metric].low for p in pts], [p[metric].high for p in pts],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric} (mean, 95% CI over {len(result.seeds)} seeds)")
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(fontsize="small")
    return _save(fig, path)
