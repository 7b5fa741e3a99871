"""A real Quart app served by an AppServer answers as it does under Quart's own test client.

``AppServer(app=...)`` calls an ASGI app in process (``playground.call_asgi``),
the way hypercorn would over a socket. The same ``QuartTrio`` app is asked the
same questions twice, once through the simulated network and once through
``app.test_client()``, and must give the same status, body and headers: a GET
with a query string, a POST with JSON, a 404, a route that raises (500), and a
route that echoes a request header and sets two cookies. Inside a route,
``components.current_context()`` reaches the simulation: the route queries the
simulated database over the simulated network and pays its latency.
"""
from __future__ import annotations

import json

import trio
from quart import jsonify, request
from quart_trio import QuartTrio

from components import AppServer, Database, DatabaseClient, current_context
from playground import Client, Request, Response, Sim

DB_READ_S = 0.020
HEADERS = {"x-trace": "t-42", "user-agent": "pytest"}  # both sides send exactly these
COMPARED = ("content-type", "content-length", "location", "x-trace", "set-cookie")


def make_app() -> QuartTrio:
    app = QuartTrio("shop")
    db = DatabaseClient("db")

    @app.get("/greet")
    async def greet():
        return {"greeting": f"hello {request.args.get('name', 'world')}", "lang": request.args.get("lang", "en")}

    @app.post("/orders")
    async def create_order():
        order = await request.get_json()
        total = sum(item["qty"] * item["price"] for item in order["items"])
        return {"id": 7, "total": total}, 201, {"location": "/orders/7"}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug in a route")

    @app.get("/echo")
    async def echo():
        response = jsonify({"trace": request.headers.get("x-trace"), "agent": request.headers.get("user-agent")})
        response.headers["x-trace"] = request.headers.get("x-trace", "")
        response.set_cookie("theme", "dark")
        response.set_cookie("lang", "en")
        return response

    @app.get("/rows/<key>")
    async def row(key: str):
        ctx = current_context()  # the simulated request this route is serving
        started = ctx.now
        rows = await db.query(ctx, "SELECT value FROM kv WHERE key = ?", [key])
        if not rows:
            return {"error": f"no row {key!r}"}, 404
        return {"key": key, "value": rows[0][0], "waited_ms": round((ctx.now - started) * 1000, 3)}

    return app


# (method, path, JSON body) asked of both servers
QUESTIONS = [
    ("GET", "/greet?name=ada&lang=fr", None),
    ("GET", "/greet", None),
    ("POST", "/orders", {"items": [{"qty": 2, "price": 3.5}, {"qty": 1, "price": 10}]}),
    ("GET", "/no/such/page", None),
    ("GET", "/boom", None),
    ("GET", "/echo", None),
]


def simulated(app: QuartTrio) -> Sim:
    sim = Sim(seed=1)
    db = sim.add(Database("db", read_latency_s=DB_READ_S))
    db.direct("INSERT INTO kv (key, value, version) VALUES (?, ?, 1)", ["a", "row a"])
    sim.add(AppServer("app", app=app, calls=("db",)))
    sim.add(Client("browser"))
    return sim


async def ask_simulation(sim: Sim, method: str, path: str, body) -> Response:
    headers = dict(HEADERS)
    data = b""
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    return await sim.net.call("browser", "app", Request(method, path, headers, data), timeout_s=10)


async def ask_test_client(app: QuartTrio, method: str, path: str, body) -> Response:
    kw = {} if body is None else {"json": body}
    answer = await app.test_client().open(path, method=method, headers=dict(HEADERS), **kw)
    headers = {name.lower(): ", ".join(answer.headers.getlist(name)) for name in set(answer.headers.keys())}
    return Response(answer.status_code, headers, await answer.get_data())


def relevant(response: Response) -> tuple[int, bytes, dict[str, str]]:
    return response.status, response.body, {h: response.headers[h] for h in COMPARED if h in response.headers}


async def test_quart_app_answers_the_same_in_the_simulation_as_under_its_test_client(virtual_clock):
    app = make_app()
    sim = simulated(app)
    answers: dict[str, Response] = {}
    direct: dict[str, Response] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        for method, path, body in QUESTIONS:
            answers[path] = await ask_simulation(sim, method, path, body)
            direct[path] = await ask_test_client(app, method, path, body)
        sim.stop()

    for _, path, _ in QUESTIONS:
        assert relevant(answers[path]) == relevant(direct[path]), path
    assert answers["/greet?name=ada&lang=fr"].status == 200
    assert json.loads(answers["/greet?name=ada&lang=fr"].body) == {"greeting": "hello ada", "lang": "fr"}
    assert json.loads(answers["/greet"].body) == {"greeting": "hello world", "lang": "en"}
    assert answers["/orders"].status == 201 and json.loads(answers["/orders"].body) == {"id": 7, "total": 17.0}
    assert answers["/orders"].headers["location"] == "/orders/7"
    assert answers["/no/such/page"].status == 404
    assert answers["/boom"].status == 500
    echo = answers["/echo"]
    assert json.loads(echo.body) == {"trace": "t-42", "agent": "pytest"} and echo.headers["x-trace"] == "t-42"
    assert echo.headers["set-cookie"] == "theme=dark; Path=/, lang=en; Path=/"  # both cookies, none lost
    assert sim.last_report.component("app").served == len(QUESTIONS)


async def test_a_route_reaches_the_simulated_database_through_current_context(virtual_clock):
    app = make_app()
    sim = simulated(app)
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.serve_async)
        t0 = sim.now
        found = await ask_simulation(sim, "GET", "/rows/a", None)
        took_s = sim.now - t0
        missing = await ask_simulation(sim, "GET", "/rows/zz", None)
        sim.stop()

    row = json.loads(found.body)
    print(f"\nGET /rows/a through Quart -> database: {found.status} {row}, {took_s * 1000:.1f} ms simulated")
    assert found.status == 200 and row["value"] == "row a"
    # the route waited on the database's read latency, on virtual time, plus the network
    assert DB_READ_S <= row["waited_ms"] / 1000 < DB_READ_S + 0.005
    assert DB_READ_S < took_s < DB_READ_S + 0.01
    assert missing.status == 404 and json.loads(missing.body) == {"error": "no row 'zz'"}
    assert sim.last_report.component("db").detail["reads"] == 2


async def test_outside_a_simulation_current_context_fails_the_route_with_a_500():
    answer = await ask_test_client(make_app(), "GET", "/rows/a", None)
    assert answer.status == 500  # current_context() raised ConfigError: no AppServer serves this request
