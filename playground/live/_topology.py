"""The default live topology, and where to draw each host on the dashboard.

``default_topology`` is a small system that shows something worth watching:
users behind a load balancer in front of three app servers (each answers with
its own name), with a cache when the cache component exists. It uses
whatever parts ``components`` offers, so it grows as they do; any function
returning a ``Sim`` can replace it (``serve(build=...)``), such as the
ladder's stage-5 topology.

``layout`` is pure: hosts in columns by their distance from the clients (the
longest path, so a request always flows left to right), rows in the order the
hosts were added.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground import Sim

__all__ = ["default_topology", "layout", "entry_host", "edges"]

COLUMN_PX = 190
ROW_PX = 96
MARGIN_PX = 70


def _component(name: str):
    """A class from ``components`` if it exists yet (parts are added over time)."""
    import components

    return getattr(components, name, None)


def default_topology(seed: int = 1, users: int = 20, requests_per_user_per_s: float = 1.0) -> "Sim":
    """Users -> balancer -> three app servers (or one app server if there is no balancer yet)."""
    from components import AppServer
    from playground import Exponential, Population, Response, Sim, Workload

    sim = Sim(seed=seed, realtime=True)

    def handler_for(name: str):
        async def handler(request, ctx):
            await ctx.cpu(Exponential(0.004))
            return Response(200, {"content-type": "text/plain", "x-served-by": name},
                            f"{request.path} served by {name}\n".encode())
        return handler

    balancer = _component("LoadBalancer") or _component("L7Balancer")
    if balancer is not None:
        apps = [f"app{i}" for i in (1, 2, 3)]
        for name in apps:
            sim.add(AppServer(name, handler_for(name), cores=2, queue_limit=50))
        sim.add(balancer("lb", apps))
        entry = "lb"
    else:
        sim.add(AppServer("app", handler_for("app"), cores=2, queue_limit=50))
        entry = "app"
    sim.load(Population(entry, users=users, requests_per_user_per_s=requests_per_user_per_s,
                        workload=Workload(keys=1000), client="users", timeout_s=5.0))
    return sim


def edges(sim: "Sim", extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    """Who sends to whom: loads to their targets, hosts to their ``downstream()``, then ``extra``."""
    out: list[tuple[str, str]] = []
    for load in sim.loads:
        out.append((load.client, load.target))
    for node in sim.net.hosts.values():
        for d in node.downstream():
            out.append((node.name, d))
    out.extend(extra)
    return [e for e in dict.fromkeys(out) if e[0] in sim.net.hosts and e[1] in sim.net.hosts]


def entry_host(sim: "Sim") -> str:
    """Where outside traffic enters: the first load's target, else the first host nobody sends to."""
    if sim.loads:
        return sim.loads[0].target
    targets = {b for _, b in edges(sim)}
    for name, node in sim.net.hosts.items():
        if node.kind != "client" and name not in targets:
            return name
    raise ValueError("the topology has no host to send outside traffic to")


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
