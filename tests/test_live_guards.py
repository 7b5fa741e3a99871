"""The live server answers only its own names, only small controls from its own page, and cannot be
talked into exhausting itself.

Scenarios against a running server (real sockets on 127.0.0.1): a request
that a DNS-rebinding page would send (``Host: evil.example``) is refused and
changes nothing; a control from another origin is refused; an oversized
control body is refused before it is read; a user count the server could not
carry is refused; a WebSocket upgrade gets a clean answer; bodies held at the
front door are bounded in total; the shutdown report has the door's figures.
Waits are generous hang guards, never deadlines a busy machine could miss.
"""
from __future__ import annotations

import httpx
import pytest
import trio

from playground import ConfigError
from playground.tools.live import cli_main
from playground.tools.live._hosts import HostGuard, host_name

from live_helpers import live, one_app_with_users, port_of, two_apps


async def test_a_rebinding_page_cannot_click_the_dashboard_controls():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        port = port_of(server.dashboard_url)
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example."):
            r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"host": host})
            assert r.status_code == 421, (host, r.text)
            name = host_name(host)
            assert r.text == (f"host {name!r} is not served here (DNS rebinding guard); "
                              f"to allow it, start with --allowed-host {name}\n")
            assert server.sim["app1"].up  # nothing changed
        r = await client.get("/api/state", headers={"host": "evil.example"})
        assert r.status_code == 421  # nor can it read the figures
        assert not any("crash" in e for _, e in server.sim._events)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
            assert (await client.get("/api/state", headers={"host": host})).status_code == 200, host


async def test_the_front_door_refuses_other_names_before_sending_anything_in():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.door_url, timeout=30) as client:
        r = await client.get("/item/1", headers={"host": "evil.example"})
        assert r.status_code == 421 and "DNS rebinding" in r.text
        assert server.session.door.sent == 0  # it never entered the topology
        assert (await client.get("/item/1")).status_code == 200
        assert server.session.door.sent == 1


async def test_allowed_hosts_are_answered():
    async with live(two_apps, allowed_hosts=("demo.example",)) as server, \
            httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"host": "demo.example:80"})
        assert r.status_code == 200 and not server.sim["app1"].up
        async with httpx.AsyncClient(base_url=server.door_url, timeout=30) as door:
            assert (await door.get("/", headers={"host": "demo.example"})).status_code in (200, 502)
            assert (await door.get("/", headers={"host": "other.example"})).status_code == 421


async def test_controls_from_another_origin_are_refused():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        port = port_of(server.dashboard_url)
        for origin in ("http://evil.example", f"http://127.0.0.1:{port + 1}", "null", f"http://evil.example:{port}"):
            r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"origin": origin})
            assert r.status_code == 403, origin
            assert r.text == f"controls are only taken from the dashboard's own page, not from origin {origin!r}\n"
            assert server.sim["app1"].up
        r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"origin": f"http://127.0.0.1:{port}"})
        assert r.status_code == 200 and not server.sim["app1"].up


async def test_an_oversized_control_body_is_refused_before_it_is_read():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        # headers only, announcing 100 MB that never come: the answer must not wait for them
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(server.dashboard_url))
        await stream.send_all(b"POST /api/control/load HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        got = b""
        with trio.fail_after(60):
            while b"\r\n\r\n" not in got:
                got += await stream.receive_some(65536)
        await stream.aclose()
        assert got.startswith(b"HTTP/1.1 413")

        async def chunks():  # no content-length: Quart stops reading at the limit
            for _ in range(100):
                yield b" " * 1024

        async with httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as other:
            r = await other.post("/api/control/load", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["error"] == "a control body is at most 16384 bytes"
        assert (await client.post("/api/control/crash", json={"node": "app1"})).status_code == 200


# -- the pure parts ---------------------------------------------------------------------------------------
def test_host_names_are_parsed_strictly():
    assert host_name("Example.COM:8001") == "example.com"
    assert host_name("[::1]:8001") == "::1"
    assert host_name("localhost.") == "localhost"
    for bad in ("", "a b", "x:notaport", "x:99999", "::1", "[::1", "user@host", "host/path"):
        assert host_name(bad) is None, bad
    guard = HostGuard("127.0.0.1")
    assert guard.refusal(None) is None  # HTTP/1.0 without Host: not a browser
    assert guard.refusal("127.0.0.2:1") is None and guard.refusal("app.localhost") is None
    assert guard.refusal("x:bad") == "malformed Host header 'x:bad'"
    assert HostGuard("192.168.1.5").refusal("192.168.1.5:8000") is None


def test_a_bad_allowed_host_is_a_config_error_naming_it(capsys):
    with pytest.raises(ConfigError, match=r"^allowed host must be a host name such as 'demo\.example', "
                                          r"got 'http://x/'$"):
        HostGuard(allowed=("http://x/",))
    assert cli_main(["--allowed-host", "http://x/", "--port", "0", "--dashboard-port", "0"]) == 2
    assert "allowed host must be a host name" in capsys.readouterr().err


# -- the load control cannot take the server down -----------------------------------------------------
def closed_loop_app():
    from components import AppServer
    from playground import ClosedLoop, Sim

    sim = Sim(seed=1, realtime=True)
    sim.add(AppServer("app", cores=2, cpu_s=0.001))
    sim.load(ClosedLoop("app", users=5, think_time_s=1.0, client="users"))
    return sim


async def test_a_closed_loop_user_count_beyond_the_limits_is_refused_and_changes_nothing():
    async with live(closed_loop_app) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        r = await client.post("/api/control/load", json={"users": 2_000_000})
        assert r.status_code == 400
        assert r.json()["error"] == ("users=2000000 closed-loop users would each keep state in memory; "
                                     "the limit is 100000")
        r = await client.post("/api/control/load", json={"users": 50_000})
        assert r.status_code == 400
        assert r.json()["error"] == ("users=50000 thinking 1 s on average could send 50000 requests per second; "
                                     "the limit is 5000")
        assert server.sim.loads[0].users == 5
        r = await client.post("/api/control/load", json={"users": 40})
        assert r.status_code == 200 and server.sim.loads[0].users == 40
        assert (await client.get("/api/state")).status_code == 200  # still answering


# -- what the front door does with what it is not built for --------------------------------------------
async def test_a_websocket_upgrade_gets_a_clean_answer_saying_why():
    from live_helpers import http_get_raw

    upgrade = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    async with live(two_apps) as server:
        got = await http_get_raw(port_of(server.door_url), upgrade, timeout_s=30)
        assert got.startswith(b"HTTP/1.1 501")
        assert got.endswith(b"\r\n\r\nWebSockets are not simulated; send plain HTTP requests\n")
        evil = await http_get_raw(port_of(server.door_url), upgrade.replace(b"127.0.0.1", b"evil.example"), 30)
        assert evil.startswith(b"HTTP/1.1 421")
        assert server.session.door.sent == 0  # neither entered the topology


async def test_bodies_buffered_at_the_door_are_bounded_in_total():
    from playground.tools.live import FrontDoor

    sim = two_apps()
    async with trio.open_nursery() as nursery:
        from playground.tools.live import LiveSession

        session = LiveSession(sim)
        await nursery.start(session.run)
        door = FrontDoor(session, max_buffered_bytes=1000)
        door.buffered_bytes = 900  # other clients' bodies, held now
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"x" * 200, "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1")]}
        await door(scope, receive, send)
        assert sent[0]["status"] == 503 and door.counters["buffers_full"] == 1
        assert door.buffered_bytes == 900  # nothing of this one kept
        door.buffered_bytes = 0
        sent.clear()
        await door(scope, receive, send)
        assert sent[0]["status"] == 200 and door.buffered_bytes == 0  # released once answered
        session.stop()


async def test_the_shutdown_report_has_the_front_doors_own_figures():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.door_url, timeout=30) as client:
        for i in range(5):
            assert (await client.get(f"/item/{i}")).status_code == 200
        assert (await client.get("/", headers={"host": "evil.example"})).status_code == 421
    report = server.report
    door = report.clients["frontdoor"]
    assert (door.sent, door.ok) == (5, 5)
    (note,) = [d for _, d in report.events if d.startswith("front door:")]
    assert note == "front door: 6 HTTP requests, 5 sent in; refused at the door: wrong host 1"
    assert "frontdoor" in report.render()


async def test_the_dashboard_shows_how_far_behind_real_time_the_simulation_is():
    async with live(one_app_with_users) as server, \
            httpx.AsyncClient(base_url=server.dashboard_url, timeout=30) as client:
        lag = (await client.get("/api/state")).json()["snapshot"]["lag"]
        assert set(lag) == {"behind_s", "stalls", "longest_stall_s", "stalled_since_s"}
        assert lag["behind_s"] >= 0


def test_the_event_log_keeps_the_latest_events_and_says_how_many_it_dropped(monkeypatch):
    import playground._sim as sim_module
    from components import AppServer
    from playground import Sim

    monkeypatch.setattr(sim_module, "MAX_EVENTS", 8)
    sim = Sim(seed=1)
    sim.add(AppServer("a"))
    for i in range(20):
        sim.at(i * 0.1, sim.event, f"e{i}")
    events = sim.run(3).events
    assert events[0] == (1.2, "12 earlier events not kept (the log keeps the latest 8)")
    assert [d for _, d in events[1:]] == [f"e{i}" for i in range(12, 20)]
