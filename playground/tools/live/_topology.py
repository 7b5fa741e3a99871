"""The default live topology, and where to draw each host on the dashboard.

``default_topology`` is a small system that shows something worth watching:
users behind a load balancer with health checks in front of three app
servers, which read through a cache in front of a database. Any function
returning a ``Sim`` can replace it (``serve(build=...)``), such as the
ladder's stage-5 topology.

``layout`` is pure: hosts in columns by their distance from the clients (the
longest path, so a request always flows left to right), rows in the order the
hosts were added.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

# the layout is pure and lives in the engine, where the HTML run report draws with it too
from playground._layout import COLUMN_PX, MARGIN_PX, ROW_PX, layout  # noqa: F401

if TYPE_CHECKING:
    from playground import Sim

__all__ = ["default_topology", "layout", "entry_host", "edges"]


def _component(name: str):
    """A class from ``components`` if it exists yet (parts are added over time)."""
    import components

    return getattr(components, name, None)


def default_topology(seed: int = 1, users: int = 20, requests_per_user_per_s: float = 1.0) -> "Sim":
    """Users -> L7 balancer (health checks) -> three app servers -> cache and database.

    Each app server reads ``/item/<key>`` through the cache (cache-aside by
    hand, so it can say ``x-cache: hit`` or ``miss``), loading misses from the
    database. With fewer components available it shrinks to a single app server.
    """
    from components import AppServer
    from playground import Exponential, Population, Request, RequestError, Response, Sim, Workload

    sim = Sim(seed=seed, realtime=True)
    balancer, health = _component("L7Balancer"), _component("HealthCheck")
    cache, database = _component("CacheServer"), _component("Database")
    with_data = cache is not None and database is not None

    def handler_for(name: str):
        async def handler(request, ctx):
            await ctx.cpu(Exponential(0.003))
            key = request.route.rsplit("/", 1)[-1] or "index"
            headers = {"content-type": "text/plain", "x-served-by": name}
            if not with_data:
                return Response(200, headers, f"{request.path} served by {name}\n".encode())
            try:
                cached = await ctx.call("cache", Request("GET", f"/cache/{key}"), 0.2)
            except RequestError:
                cached = None
            if cached is not None and cached.status == 200:
                return Response(200, {**headers, "x-cache": "hit"}, cached.body)
            row = await ctx.call("db", Request("GET", f"/kv/{key}"), 2.0)
            body = row.body if row.status == 200 else f"item {key} (served by {name})\n".encode()
            try:
                await ctx.call("cache", Request("PUT", f"/cache/{key}", body=body), 0.2)
            except RequestError:
                pass  # a cache outage must not fail the read
            return Response(200, {**headers, "x-cache": "miss"}, body)
        return handler

    if balancer is not None:
        apps = [f"app{i}" for i in (1, 2, 3)]
        calls = ("cache", "db") if with_data else ()
        for name in apps:
            sim.add(AppServer(name, handler_for(name), cores=2, queue_limit=50, calls=calls))
        checks = health(interval_s=0.5, timeout_s=0.25) if health is not None else None
        sim.add(balancer("lb", apps, health_check=checks, timeout_s=2.0))
        entry = "lb"
    else:
        with_data = False
        sim.add(AppServer("app", handler_for("app"), cores=2, queue_limit=50))
        entry = "app"
    if with_data:
        sim.add(cache("cache", capacity_items=200, ttl_s=20.0))
        sim.add(database("db", read_latency_s=Exponential(0.004)))
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
