"""A real Quart app served in process by a simulated app server.

``app`` below is ordinary quart-trio code: routes, JSON, status codes. The
only playground-specific line is ``current_context()``, which gives the route
the app server it runs on, so it can spend CPU (``ctx.cpu``) and call the
simulated database over the simulated network (``DatabaseClient``). The
``AppServer(app=...)`` calls the ASGI app directly - no sockets - under
virtual time. Swap the ``DatabaseClient`` for a real driver and the same
routes run under hypercorn.

What to look for: the responses a client gets (200 with JSON, 201 after a
write, 404 for a missing row) with their simulated latency (2 ms of CPU + a
2 ms read or a 5 ms write + network), then 100 req/s for 10 s through the
same app: p50/p99 and the status mix.

    python examples/quart_app.py
"""
from __future__ import annotations

import json

from quart import request
from quart_trio import QuartTrio

from components import AppServer, Database, DatabaseClient, current_context
from playground import Node, OpenLoop, Request, Sim, Workload

app = QuartTrio(__name__)
db = DatabaseClient("db")


@app.get("/item/<key>")
async def read_item(key):
    ctx = current_context()
    await ctx.cpu(0.002)
    value = await db.get(ctx, key)
    if value is None:
        return {"error": f"no item {key}"}, 404
    return {"key": key, "value": value}


@app.post("/item/<key>")
async def write_item(key):
    ctx = current_context()
    await ctx.cpu(0.002)
    version = await db.put(ctx, key, (await request.get_json())["value"])
    return {"key": key, "version": version}, 201


class Curl(Node):
    """A client that sends a few requests one after another and prints what comes back."""

    async def run(self):
        for method, path, body in (("GET", "/item/7", None), ("POST", "/item/7", {"value": "blue"}),
                                   ("GET", "/item/7", None), ("GET", "/item/999", None)):
            started = self.sim.now
            data = json.dumps(body).encode() if body else b""
            resp = await self.call("api", Request(method, path, {"content-type": "application/json"}, data))
            took_ms = (self.sim.now - started) * 1000
            print(f"{method:4} {path:10} -> {resp.status} {resp.text.strip()}  ({took_ms:.2f} ms)")

    def downstream(self):
        return ("api",)


sim = Sim(seed=1)
rows = sim.add(Database("db", read_latency_s=0.002, write_latency_s=0.005))
for k in range(100):
    rows.store.kv_put(str(k), f"item {k}")
sim.add(AppServer("api", app=app, cores=2, calls=("db",)))
sim.add(Curl("curl"))
# keys 100-119 do not exist (and are rare: Zipf)
sim.load(OpenLoop("api", rate=100, workload=Workload(keys=120), client="users"))
report = sim.run(10)
users = report.clients["openloop->api"]
print(f"\n100 req/s for 10 s through the Quart app: {users.ok} answered, statuses {users.statuses}, "
      f"p50 {users.latency.p50_s * 1000:.2f} ms, p99 {users.latency.p99_s * 1000:.2f} ms, "
      f"app CPU {report.component('api').utilisation:.0%}")
