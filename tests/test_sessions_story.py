"""Sessions on a stateless tier, told as stories: where a logged-in user's session lives.

Thirty users, each a browser with a cookie jar (``ClosedLoop(cookies=True)``),
behind an L7 balancer in front of app servers. Each user logs in once
(``POST /login``: the server makes a session id, stores the session and sets
the cookie ``sid``), then asks for its cart (``GET /cart``) again and again,
thinking Exponential(0.5 s) in between. The cart needs the session: a server
that cannot find it answers 401 (the user looks logged out).

(a) Sessions in the app server's own memory (``ctx.session``) behind round
    robin: with one server nothing is lost; with three, a request finds its
    session only on the server that made it, so about 2 in 3 cart requests
    come back 401.
(b) Sticky sessions (``L7Balancer(sticky=True)``, an ``lb`` cookie) pin each
    user to the server that holds its session: nothing is lost, until that
    server crashes and exactly the sessions that lived on it are gone.
(c) Sessions kept in the cache server: any app server finds any session, so
    round robin loses none, and an app server's crash loses none either. The
    state now lives in the cache: when the cache crashes, every user is logged out.
"""
from __future__ import annotations

from collections import Counter

from components import AppServer, CacheServer, L7Balancer
from playground import ClosedLoop, Exponential, Request, RequestError, Response, Sim

USERS = 30
LOGIN = Request("POST", "/login")


def cookie(request: Request, name: str) -> str | None:
    for part in request.headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class Shop:
    """The app: log in, then read the cart. Sessions live in ``where``: "memory" or "cache".

    It notes which server made each session (``made_on``) and which sessions were not found (``lost``).
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.made_on: dict[str, str] = {}
        self.lost: set[str] = set()

    async def handler(self, request: Request, ctx) -> Response:
        try:
            if request.route == "/login":
                return await self.login(ctx)
            return await self.cart(request, ctx)
        except RequestError as exc:  # the session store is unreachable
            return Response(503, body=f"session store: {exc}".encode())

    async def login(self, ctx) -> Response:
        sid = f"{ctx.rng.getrandbits(64):016x}"
        self.made_on[sid] = ctx.server.name
        if self.where == "memory":
            ctx.session[sid] = {"user": sid}
        else:
            await ctx.call("cache", Request("PUT", f"/cache/session:{sid}", body=b"user"), timeout_s=1.0)
        return Response(200, {"set-cookie": f"sid={sid}; Path=/; HttpOnly"}, b"welcome")

    async def cart(self, request: Request, ctx) -> Response:
        sid = cookie(request, "sid")
        if self.where == "memory":
            found = sid in ctx.session
        else:
            found = (await ctx.call("cache", Request("GET", f"/cache/session:{sid}"), timeout_s=1.0)).status == 200
        if not found:
            self.lost.add(sid)
            return Response(401, body=b"who are you? please log in")
        return Response(200, body=b"3 items")


def shop_site(where: str, apps: int = 3, *, sticky: bool = False) -> tuple[Sim, Shop, ClosedLoop]:
    shop = Shop(where)
    names = [f"app{i + 1}" for i in range(apps)]
    sim = Sim(seed=3)
    if where == "cache":
        sim.add(CacheServer("cache", capacity_items=1000))
    for name in names:
        sim.add(AppServer(name, shop.handler, calls=("cache",) if where == "cache" else ()))
    sim.add(L7Balancer("lb", names, sticky=sticky))
    users = sim.load(ClosedLoop("lb", users=USERS, think_time_s=Exponential(0.5), cookies=True, login=LOGIN))
    return sim, shop, users


def carts(statuses: Counter) -> tuple[int, int]:
    """(cart requests answered, of which 401) from a status count; each user's login is one 200."""
    answered = sum(statuses.values()) - USERS
    return answered, statuses[401]


def snapshot_at(sim: Sim, t_s: float, users: ClosedLoop) -> Counter:
    seen: Counter = Counter()
    sim.at(t_s, lambda: seen.update(users.metrics.statuses))
    return seen


# -- (a) ----------------------------------------------------------------------------------
async def test_a_sessions_in_server_memory_are_lost_under_round_robin(virtual_clock):
    shares = {}
    for apps in (1, 3):
        sim, shop, users = shop_site("memory", apps)
        report = await sim.run_async(20)
        stats = report.clients[users.name]
        answered, lost = carts(Counter(stats.statuses))
        shares[apps] = lost / answered
        assert stats.sent == answered + USERS and stats.errors.get("timeout", 0) == 0
        assert len(shop.made_on) == USERS  # every user logged in once
        assert all(jar.keys() == {"sid"} for jar in users.jars)  # and kept its cookie
    print(f"\nsessions in server memory, round robin: {shares[1]:.1%} of cart requests lost with 1 server, "
          f"{shares[3]:.1%} with 3 ({answered} cart requests)")
    assert shares[1] == 0.0
    assert 0.6 < shares[3] < 0.73  # 2 in 3: the session is on one server of three
    assert len(shop.lost) == USERS  # every user was logged out at some point


# -- (b) ----------------------------------------------------------------------------------
async def test_b_sticky_sessions_keep_users_logged_in_until_their_server_dies(virtual_clock):
    sim, shop, users = shop_site("memory", 3, sticky=True)
    before = snapshot_at(sim, 10, users)
    sim.at(10, sim.crash, "app2")
    report = await sim.run_async(20)

    answered_before, lost_before = carts(before)
    answered, lost = carts(Counter(report.clients[users.name].statuses))
    after_share = (lost - lost_before) / (answered - answered_before)
    on_app2 = {sid for sid, server in shop.made_on.items() if server == "app2"}
    print(f"\nsticky: {lost_before} of {answered_before} cart requests lost before the crash; "
          f"after app2 crashed {after_share:.1%} lost: the {len(on_app2)} of {USERS} users whose session it held")
    assert lost_before == 0  # each user always lands where its session is
    assert all(jar.keys() == {"sid", "lb"} for jar in users.jars)  # the balancer's cookie beside the app's
    assert shop.lost == on_app2 and len(on_app2) == 10  # exactly app2's sessions, no other
    assert 0.25 < after_share < 0.42  # those users: every request since, about a third of all
    assert report.failed == 0  # the balancer re-pinned them to a live server: logged out, not failing


# -- (c) ----------------------------------------------------------------------------------
async def test_c_sessions_in_the_cache_survive_round_robin_and_an_app_server_crash(virtual_clock):
    sim, shop, users = shop_site("cache", 3)
    sim.at(10, sim.crash, "app2")
    report = await sim.run_async(20)

    stats = report.clients[users.name]
    answered, lost = carts(Counter(stats.statuses))
    served = {name: report.component(name).served for name in ("app1", "app2", "app3")}
    print(f"\nsessions in the cache, round robin, app2 crashed at 10 s: {lost} of {answered} cart requests "
          f"lost; cache hits {report.component('cache').detail['hits']}; served per server {served}")
    assert lost == 0 and not shop.lost
    assert report.failed == 0 and stats.ok == stats.sent
    # round robin spread every user over all servers; app2's turns, refused after its crash, went
    # on to the next server in the ring, so app1 and app3 shared them
    assert abs(served["app1"] - served["app3"]) < 0.05 * served["app1"]


async def test_c_the_cache_now_holds_every_session_and_its_crash_logs_everyone_out(virtual_clock):
    sim, shop, users = shop_site("cache", 3)
    sim.at(10, sim.crash, "cache", 0.5)  # down for 0.5 s, back empty
    report = await sim.run_async(20)

    stats = report.clients[users.name]
    print(f"\ncache crashed at 10 s: {len(shop.lost)} of {USERS} users logged out; statuses {stats.statuses}")
    assert len(shop.lost) == USERS
    assert stats.statuses[503] > 0  # while it was down, the session store was unreachable


def test_cookie_jar_keeps_each_cookie_and_deletes_on_max_age_zero():
    from playground._load import store_cookies

    jar: dict[str, str] = {}
    store_cookies(jar, "sid=abc; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT, lb=app2")
    assert jar == {"sid": "abc", "lb": "app2"}
    store_cookies(jar, "sid=; Max-Age=0")
    assert jar == {"lb": "app2"}
