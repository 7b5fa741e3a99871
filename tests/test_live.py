"""See it live: real sockets in front of a simulated topology, and its dashboard.

These tests use real time and real sockets on 127.0.0.1 (ephemeral ports);
every wait is bounded by a generous hang guard (``live_helpers``).
"""
from __future__ import annotations

import json

import httpx
import pytest
import trio

from components import L7Balancer
from playground import ConfigError
from playground.tools.live import Controls, ControlError, cli_main, layout
from playground.tools.live._sampler import ejected_hosts
from playground.tools.live._server import check_bind, control_token

from live_helpers import http_get_raw, live, one_app_with_users, port_of, two_apps


# -- the front door ---------------------------------------------------------------------------------
async def test_front_door_answers_real_http_through_the_simulated_topology():
    async with live() as server, httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        backends = set()
        for i in range(6):
            r = await client.get(f"/item/{i}")
            assert r.status_code == 200
            assert float(r.headers["x-sim-latency-ms"]) > 0
            backends.add(r.headers["x-backend"])
        assert backends == {"app1", "app2"}  # round robin over both, named by the balancer


async def test_the_default_topology_says_when_the_cache_hit():
    async with live(None) as server, httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        first = await client.get("/item/does-not-repeat-123")
        second = await client.get("/item/does-not-repeat-123")
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.headers["x-backend"].startswith("app")


async def test_a_crashed_entry_host_is_a_502_with_the_reason():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        server.sim.crash("lb")
        r = await client.get("/")
        assert (r.status_code, r.headers["x-error"]) == (502, "refused")
        server.sim.restart("lb")
        assert (await client.get("/")).status_code == 200


async def test_garbage_and_oversized_headers_only_hurt_that_client():
    async with live() as server, httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        port = port_of(server.door_url)
        garbage = await http_get_raw(port, b"\x00\xff\xfe NOT HTTP AT ALL\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400")
        big = await http_get_raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
        assert big.startswith(b"HTTP/1.1 431")  # arrived whole: the front door refuses it
        huge = await http_get_raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        assert huge.startswith(b"HTTP/1.1 431")  # arrived in pieces: hypercorn's limit
        bad_length = await http_get_raw(port, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
        assert bad_length.startswith(b"HTTP/1.1 400")
        big_body = await http_get_raw(port, b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2097152\r\n\r\n"
                                            + b"x" * (1 << 20) + b"x" * 1000)
        assert big_body.startswith(b"HTTP/1.1 413")
        assert (await client.get("/after-garbage")).status_code == 200


async def test_a_slowloris_is_cut_off_while_others_are_served():
    async with live(keep_alive_timeout_s=1.0) as server, \
            httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(server.door_url))
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_after_s = None
        start = trio.current_time()
        with trio.move_on_after(60):  # a hang guard: the cut comes after about 1 s on an idle machine
            for i in range(300):  # one header line every 0.2 s, never the blank line that ends them
                assert (await client.get(f"/meanwhile/{i}")).status_code == 200
                try:
                    await stream.send_all(f"X-Drip-{i}: y\r\n".encode())
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    closed_after_s = trio.current_time() - start
                    break
                with trio.move_on_after(0.2):
                    if await stream.receive_some(1024) == b"":
                        closed_after_s = trio.current_time() - start
                        break
        await stream.aclose()
        assert closed_after_s is not None  # cut off, while every other request was answered


async def test_a_flood_of_connections_does_not_stop_the_door():
    async with live() as server, httpx.AsyncClient(base_url=server.door_url, timeout=60) as client:
        port = port_of(server.door_url)
        idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(200)]
        try:
            assert (await client.get("/while-flooded")).status_code == 200
            statuses: list[int] = []

            async def one(c: httpx.AsyncClient, i: int) -> None:
                statuses.append((await c.get(f"/burst/{i}")).status_code)

            # 200 requests at once, each on its own connection
            async with httpx.AsyncClient(base_url=server.door_url, timeout=60,
                                         limits=httpx.Limits(max_connections=200)) as burst:
                async with trio.open_nursery() as nursery:
                    for i in range(200):
                        nursery.start_soon(one, burst, i)
            assert len(statuses) == 200 and set(statuses) <= {200, 503}
        finally:
            for s in idle:
                await s.aclose()
        assert (await client.get("/after-flood")).status_code == 200


# -- the dashboard ------------------------------------------------------------------------------------
async def test_state_json_describes_the_topology_and_its_figures():
    async with live(one_app_with_users) as server, \
            httpx.AsyncClient(base_url=server.dashboard_url, timeout=60) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "dashboard.js" in page.text
        assert (await client.get("/static/dashboard.js")).status_code == 200
        await server.sim.sched.sleep(1.2)  # simulated seconds: a busy machine pauses them, never skips
        state = (await client.get("/api/state")).json()
    names = {n["name"] for n in state["topology"]["nodes"]}
    assert names == {"app", "users", "frontdoor"}
    assert state["topology"]["entry"] == "app"
    app = state["snapshot"]["nodes"]["app"]
    assert app["state"] == "up" and app["served"] > 0
    assert state["history"] and state["history"][0]["ok_per_s"] > 0


async def test_the_event_stream_delivers_a_snapshot_every_second():
    async with live(one_app_with_users) as server:
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(server.dashboard_url))
        await stream.send_all(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        with trio.fail_after(60):  # a hang guard: three snapshots take about 2 s
            while received.count(b"\ndata: ") < 3:  # read raw: chunked framing aside, events are lines
                received += await stream.receive_some(65536)
        await stream.aclose()
    assert b"content-type: text/event-stream" in received.lower()
    snapshots = [json.loads(line[6:]) for line in received.split(b"\r\n") for line in line.split(b"\n")
                 if line.startswith(b"data: ")]
    assert snapshots[-1]["t_s"] > snapshots[0]["t_s"]
    assert any(s["points"] for s in snapshots)


async def test_controls_change_the_running_simulation_at_once():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=60) as client:
        async def control(action, **body):
            r = await client.post(f"/api/control/{action}", json=body)
            assert r.status_code == 200, r.text
            return r.json()["snapshot"]

        assert (await control("crash", node="app1"))["nodes"]["app1"]["state"] == "down"
        assert (await client.get("/api/state")).json()["snapshot"]["nodes"]["app1"]["state"] == "down"
        assert (await control("restart", node="app1"))["nodes"]["app1"]["state"] == "up"
        cut = await control("partition", a="lb", b="app2")
        assert ["lb", "app2"] in cut["links"]["partitioned"]
        assert (await control("repair", a="lb", b="app2"))["links"]["partitioned"] == []
        events = [e[1] for e in (await client.get("/api/state")).json()["snapshot"]["events"]]
    assert events[:4] == ["crash app1", "restart app1", "partition lb <-> app2", "repair lb app2"]


async def test_load_can_be_stopped_started_and_resized():
    async with live(one_app_with_users) as server, \
            httpx.AsyncClient(base_url=server.dashboard_url, timeout=60) as client:
        stopped = (await client.post("/api/control/stop", json={})).json()["snapshot"]
        assert stopped["load_running"] is False
        sched = server.sim.sched  # simulated seconds: a busy machine pauses them, never skips
        await sched.sleep(0.6)  # an arrival already on its way still lands (P(gap > 0.6 s) at 20/s ~ 6e-6)
        sent = server.sim.loads[0].metrics.sent
        await sched.sleep(0.5)
        assert server.sim.loads[0].metrics.sent == sent  # no new arrivals while stopped
        resized = (await client.post("/api/control/load", json={"users": 50})).json()["snapshot"]
        assert resized["loads"][0]["users"] == 50 and resized["load_running"] is False
        started = (await client.post("/api/control/start", json={})).json()["snapshot"]
        assert started["load_running"] is True and started["loads"][0]["rate_per_s"] == 50.0
        await sched.sleep(0.5)
        assert server.sim.loads[0].metrics.sent > sent


async def test_bad_control_requests_get_4xx_with_a_message():
    async with live(two_apps) as server, httpx.AsyncClient(base_url=server.dashboard_url, timeout=60) as client:
        r = await client.post("/api/control/crash", json={"node": "nope"})
        assert r.status_code == 404
        assert r.json()["error"] == "unknown host 'nope' (known hosts: app1, app2, lb)"
        r = await client.post("/api/control/crash", json={"node": "frontdoor"})
        assert r.status_code == 400
        r = await client.post("/api/control/explode", json={})
        assert r.status_code == 404
        r = await client.post("/api/control/crash", content=b"node=app1",
                              headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415
        r = await client.post("/api/control/crash", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await client.post("/api/control/load", json={"users": 0})
        assert r.status_code == 400
        assert r.json()["error"] == "users must be an integer between 1 and 10000000, got 0"
        r = await client.post("/api/control/load", json={"users": 5})
        assert r.status_code == 409  # two_apps has no load: nothing to change
        assert server.sim["app1"].up


async def test_controls_need_the_token_when_one_is_set():
    async with live(two_apps, token="s3cret") as server, \
            httpx.AsyncClient(base_url=server.dashboard_url, timeout=60) as client:
        r = await client.post("/api/control/crash", json={"node": "app1"})
        assert r.status_code == 401 and server.sim["app1"].up
        r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"x-playground-token": "wrong"})
        assert r.status_code == 401 and server.sim["app1"].up
        r = await client.post("/api/control/crash", json={"node": "app1"}, headers={"x-playground-token": "s3cret"})
        assert r.status_code == 200 and not server.sim["app1"].up
        assert (await client.get("/api/state")).json()["auth_required"] is True


def test_binding_beyond_this_machine_needs_an_explicit_flag_and_makes_a_token():
    with pytest.raises(ConfigError, match=r"^host '0\.0\.0\.0' is reachable from other machines: pass "
                                          r"allow_remote=True \(--allow-remote\) to bind it; controls will then "
                                          r"need a token$"):
        check_bind("0.0.0.0", allow_remote=False)
    check_bind("0.0.0.0", allow_remote=True)
    check_bind("::1", allow_remote=False)
    assert control_token("127.0.0.1") is None
    assert len(control_token("0.0.0.0")) >= 16
    assert control_token("0.0.0.0", "given") == "given"


def test_cli_refuses_a_remote_host_without_the_flag(capsys):
    assert cli_main(["--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


# -- the pure parts -------------------------------------------------------------------------------------
def test_controls_check_inputs_before_acting():
    sim = two_apps()
    controls = Controls(sim)
    with pytest.raises(ControlError, match=r"^the simulation is not running$"):
        controls.apply("crash", {"node": "app1"})
    with pytest.raises(ControlError, match=r"^users must be an integer between 1 and 10000000, got 0$"):
        controls.set_load(users=0)
    with pytest.raises(ControlError, match=r"^rate must be a number > 0 and <= 5000, got -1$"):
        controls.set_load(rate_per_s=-1)


def test_layout_flows_left_to_right_from_the_clients():
    pos = layout(["app1", "app2", "lb", "users"], {"users": "client", "lb": "lb", "app1": "app", "app2": "app"},
                 [("users", "lb"), ("lb", "app1"), ("lb", "app2")])
    assert [pos[n]["column"] for n in ("users", "lb", "app1", "app2")] == [0, 1, 2, 2]
    assert pos["app1"]["y"] < pos["app2"]["y"]


def test_a_backend_a_balancer_will_not_use_is_shown_as_ejected():
    sim = two_apps()

    class Unhealthy(L7Balancer):
        def detail(self):
            return {"down": ["app2"]}

    sim.add(Unhealthy("lb2", ["app1", "app2"]))
    assert ejected_hosts(sim) == {"app2"}


async def test_a_sim_serves_until_stopped_under_virtual_time(virtual_clock):
    sim = one_app_with_users()
    sim.realtime = False
    async with trio.open_nursery() as nursery:
        got = []

        async def serve(task_status=trio.TASK_STATUS_IGNORED):
            got.append(await sim.serve_async(task_status=task_status))

        await nursery.start(serve)
        assert sim.running
        await trio.sleep(30)
        sim.stop()
    report = got[0]
    assert report.duration_s == pytest.approx(30, abs=0.01)
    assert 500 < report.ok < 700 and report.failed == 0
    assert not sim.running
