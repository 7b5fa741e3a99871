"""The live server answers only its own names and only small controls from its own page.

Scenarios against a running server (real sockets on 127.0.0.1): a request
that a DNS-rebinding page would send (``Host: evil.example``) is refused and
changes nothing; a control from another origin is refused; an oversized
control body is refused before it is read.
"""
from __future__ import annotations

import httpx
import pytest
import trio

from playground import ConfigError
from playground.tools.live import cli_main
from playground.tools.live._hosts import HostGuard, host_name

from live_helpers import live, port_of, two_apps


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
