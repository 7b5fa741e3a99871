"""Sessions: why app servers should be stateless.

60 users log in once, then view their cart about twice a second, keeping their
cookies like a browser. Three app servers sit behind an L7 balancer (health
checks, 2 retries). A session lives either in the app server's own memory
(``ctx.session``: lost on crash, invisible to the other servers) or in a shared
cache server, written through aiocache's API (``components.SimulatedCache``).

What to look for: with in-memory sessions under round robin, users are sent
to log in again hundreds of times (the next request lands on a server that
has never seen their login); sticky sessions (the balancer's ``lb=`` cookie)
fix that until a server crashes, and then each of its users (about a third)
must log in again; sessions in the cache need no stickiness and survive the
crash of app2 at t=10 s with no session lost.

    python examples/sessions.py
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from components import AppServer, CacheServer, HealthCheck, L7Balancer, SimulatedCache
from playground import Node, Request, RequestError, Response, Sim


class ServerMemory:
    """Sessions in this app server's process memory: lost on a crash, unseen by the other servers."""

    def __init__(self, ctx):
        self.memory = ctx.session

    async def get(self, sid):
        return self.memory.get(sid)

    async def set(self, sid, session, ttl=None):
        self.memory[sid] = session


def in_cache(ctx):
    return SimulatedCache(ctx, "sessions", namespace="session:")  # aiocache's API, over the network


def shop(sessions_for):
    async def handler(request, ctx):
        if request.route == "/health":
            return "ok"
        sid = request.headers["cookie"].split("sid=")[1].split(";")[0]
        sessions = sessions_for(ctx)
        if request.route == "/login":
            await sessions.set(sid, {"cart_views": 0}, ttl=1800)
            return "welcome"
        session = await sessions.get(sid)
        if session is None:
            return Response(401, body=b"session lost: log in again")
        session["cart_views"] += 1
        await sessions.set(sid, session, ttl=1800)
        return "your cart"
    return handler


class Browsers(Node):
    """``users`` people with cookie jars: log in, view the cart every ~0.5 s, log in again when told to."""

    def __init__(self, name: str, users: int) -> None:
        super().__init__(name)
        self.users, self.views, self.lost, self.errors = users, 0, 0, 0

    def downstream(self):  # for the wiring check
        return ("lb",)

    async def run(self):
        for user in range(self.users):
            self.spawn(self.browse, {"sid": f"user{user}"})

    async def send(self, jar: dict, method: str, path: str) -> Response:
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        resp = await self.call("lb", Request(method, path, {"cookie": cookie}, client=self.name), 5.0)
        if "set-cookie" in resp.headers:  # the balancer's sticky cookie, lb=<backend>
            key, _, value = resp.headers["set-cookie"].split(";")[0].partition("=")
            jar[key] = value
        return resp

    async def browse(self, jar: dict):
        await self.sleep(self.rng.random())
        await self.send(jar, "POST", "/login")
        while True:
            await self.sleep(self.rng.uniform(0.25, 0.75))
            try:
                status = (await self.send(jar, "GET", "/cart")).status
            except RequestError:
                status = 599
            self.views += status < 400
            self.errors += status >= 500
            if status == 401:
                self.lost += 1
                await self.send(jar, "POST", "/login")


def run(sessions_for, sticky: bool, crash: bool) -> Browsers:
    sim = Sim(seed=1)
    apps = ("app1", "app2", "app3")
    for name in apps:
        sim.add(AppServer(name, shop(sessions_for), cores=2, cpu_s=0.002, calls=("sessions",)))
    sim.add(CacheServer("sessions", capacity_items=1000))
    sim.add(L7Balancer("lb", apps, sticky=sticky, retries=2, health_check=HealthCheck(interval_s=0.5, fall=2)))
    browsers = sim.add(Browsers("browsers", users=60))
    if crash:
        sim.at(10, sim.crash, "app2")
    sim.run(20)
    return browsers


table = Table(title="60 users viewing their cart for 20 s, 3 app servers", title_justify="left")
for col in ("sessions kept in", "balancer", "app2 crashes at 10 s", "cart views", "sessions lost", "errors"):
    table.add_column(col, justify="right" if col in ("cart views", "sessions lost", "errors") else "left")
lost = []
SETUPS = ((ServerMemory, "app memory", False, False), (ServerMemory, "app memory", True, False),
          (ServerMemory, "app memory", True, True), (in_cache, "cache server", False, True))
for store, where, sticky, crash in SETUPS:
    b = run(store, sticky, crash)
    table.add_row(where, "sticky cookie" if sticky else "round robin", "yes" if crash else "no",
                  str(b.views), str(b.lost), str(b.errors))
    lost.append(b.lost)
Console().print(table)
print(f"Sessions lost: in app memory, round robin {lost[0]}; sticky {lost[1]}; sticky and app2 crashes {lost[2]}; "
      f"in the cache, app2 crashes {lost[3]}")
