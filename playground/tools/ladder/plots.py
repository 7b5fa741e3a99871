"""The ladder as pictures: p99 and throughput against users, one line per stage.

Uses ``playground.plots``' matplotlib set-up (the optional ``plots`` extra).
"""
from __future__ import annotations

from pathlib import Path

from ...plots import _figure, _save
from .story import LadderResult

__all__ = ["ladder_plot"]


def ladder_plot(result: LadderResult, directory) -> list[Path]:
    """Save ``ladder.png`` and ``ladder.svg`` in ``directory``; returns their paths."""
    fig, (lat, thr) = _figure(9, 7, 2)
    slo_ms = result.options.slo_p99_s * 1000
    for stage in result.stages:
        users = [s.users for s in stage.steps]
        label = f"{stage.key}. {stage.title}"
        lat.plot(users, [s.p99_s * 1000 for s in stage.steps], marker="o", label=label)
        thr.plot(users, [s.throughput_per_s for s in stage.steps], marker="o", label=label)
        broke = stage.broke_at
        if broke is not None:
            lat.annotate(broke.bottleneck, (broke.users, broke.p99_s * 1000), fontsize=7,
                         textcoords="offset points", xytext=(4, 4))
    lat.axhline(slo_ms, color="red", linestyle="--", linewidth=1, label=f"SLO p99 {slo_ms:.0f} ms")
    lat.set_yscale("log")
    lat.set_ylabel("p99 latency (ms)")
    lat.set_title("From 5 users to 1 million: where each stage breaks")
    lat.legend(fontsize=7)
    offered = sorted({s.users for st in result.stages for s in st.steps})
    thr.plot(offered, [u * result.options.requests_per_user_per_s for u in offered], color="grey",
             linestyle=":", label="offered")
    thr.set_xscale("log")
    thr.set_yscale("log")
    thr.set_xlabel("users")
    thr.set_ylabel("successful requests / s")
    thr.legend(fontsize=7)
    out = Path(directory)
    return [_save(fig, out / "ladder.png"), _save(fig, out / "ladder.svg")]
