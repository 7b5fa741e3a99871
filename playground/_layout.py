"""Where to draw each host: a pure layout, shared by the live dashboard and the HTML run report.

A request flows left to right: hosts go in columns by their distance from the
clients (the longest path, so every arrow points right), rows in the order the
hosts were added. Pixels, so an SVG can use the figures as they are.
"""
from __future__ import annotations

from typing import Any

__all__ = ["layout"]

COLUMN_PX = 190
ROW_PX = 96
MARGIN_PX = 70


def layout(names: list[str], kinds: dict[str, str], links: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Positions ``{name: {"x", "y", "column", "row"}}`` in pixels; clients go in column 0."""
    preds: dict[str, list[str]] = {n: [] for n in names}
    for a, b in links:
        if a in preds and b in preds and a != b:
            preds[b].append(a)
    column: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str]) -> int:
        if name in column:
            return column[name]
        if kinds.get(name) == "client":
            d = 0
        else:
            ps = [p for p in preds[name] if p not in seen]
            d = 1 + max((depth(p, seen | {name}) for p in ps), default=0)
        column[name] = d
        return d

    for n in names:
        depth(n, frozenset())
    rows: dict[int, int] = {}
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        c = column[n]
        r = rows.get(c, 0)
        rows[c] = r + 1
        out[n] = {"column": c, "row": r, "x": MARGIN_PX + c * COLUMN_PX, "y": MARGIN_PX - 20 + r * ROW_PX}
    return out
