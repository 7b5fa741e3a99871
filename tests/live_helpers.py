"""Shared by the live-server tests: small topologies, a running server, raw HTTP.

Waits here are hang guards, generous on purpose: the machine running the tests
may be busy, and a live server runs on the wall clock.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial

import trio

from components import AppServer, L7Balancer
from playground import Sim
from playground.tools.live import LiveServer, serve_async

HANG_GUARD_S = 120


def two_apps() -> Sim:
    """A balancer in front of two app servers; no load of its own (only the front door's traffic)."""
    sim = Sim(seed=1, realtime=True)
    for name in ("app1", "app2"):
        sim.add(AppServer(name, cores=2, cpu_s=0.002))
    sim.add(L7Balancer("lb", ["app1", "app2"]))
    return sim


def one_app_with_users() -> Sim:
    from playground import Population

    sim = Sim(seed=1, realtime=True)
    sim.add(AppServer("app", cores=2, cpu_s=0.001))
    sim.load(Population("app", users=20, requests_per_user_per_s=1.0, client="users"))
    return sim


@asynccontextmanager
async def live(build=two_apps, **kw):
    kw.setdefault("port", 0)
    kw.setdefault("dashboard_port", 0)
    with trio.fail_after(HANG_GUARD_S):
        async with trio.open_nursery() as nursery:
            server: LiveServer = await nursery.start(partial(serve_async, build, **kw))
            try:
                yield server
            finally:
                server.stop()


async def http_get_raw(port: int, data: bytes, timeout_s: float = 20.0) -> bytes:
    """Send raw bytes, read until the server closes or ``timeout_s``."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    got = b""
    with trio.move_on_after(timeout_s):
        try:
            await stream.send_all(data)
            while chunk := await stream.receive_some(65536):
                got += chunk
        except trio.BrokenResourceError:
            pass
    await stream.aclose()
    return got


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


