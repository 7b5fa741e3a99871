"""The front door: real HTTP requests in, simulated answers out.

A raw ASGI app (no framework: it does one thing) that hypercorn serves on a
real socket. Each request becomes a ``playground.Request`` sent from the
front-door client host to the topology's entry host over the simulated
network; the real response waits for the simulated one, so a real client
feels the simulated latency. Headers tell what happened inside:
``x-backend`` (which backend served it, from the balancer or app server),
``x-cache`` (hit or miss, from a cache), ``x-sim-latency-ms``, and
``x-error`` when the simulated request failed (timeout -> 504, refused or
reset -> 502).

Only requests naming an allowed ``Host`` are sent in (else 421, see
``_hosts``: a DNS-rebinding page cannot drive load through it). Bad clients
only hurt themselves: headers above ``max_header_bytes`` get
431, bodies above ``max_body_bytes`` get 413, a
body that does not arrive within ``body_timeout_s`` gets 408, and beyond
``max_in_flight`` concurrent requests, or when the bodies held for all
clients together would pass ``max_buffered_bytes``, the door answers 503 at
once instead of queueing without bound. A WebSocket upgrade gets a plain
501 saying WebSockets are not simulated (421 for a wrong ``Host``). Malformed HTTP, oversized headers and idle or
dribbling connections are stopped earlier, by hypercorn's limits (see
``_server.server_config``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from playground import Request, RequestError, Response

from ._hosts import HostGuard

if TYPE_CHECKING:
    from ._session import LiveSession

__all__ = ["FrontDoor", "front_door_app"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade",
                         "te", "trailer", "proxy-connection", "date", "server"})
_MAX_HEADERS = 64


def _safe(text: str, limit: int = 200) -> bytes:
    clean = "".join(c for c in str(text) if c >= " " and c != "\x7f")[:limit]
    return clean.encode("latin-1", "replace")


def _token(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_" for c in name)


class FrontDoor:
    """An ASGI app sending each request into ``session``'s topology.

        app = FrontDoor(session)
        await hypercorn.trio.serve(app, server_config("127.0.0.1", 8000))
    """

    def __init__(self, session: "LiveSession", *, timeout_s: float = 10.0, max_body_bytes: int = 1 << 20,
                 max_header_bytes: int = 16 * 1024, body_timeout_s: float = 10.0, max_in_flight: int = 1000,
                 hosts: HostGuard | None = None, max_buffered_bytes: int = 64 << 20) -> None:
        self.session = session
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered_bytes = 0  # request bodies held now, all clients together
        self.hosts = hosts or HostGuard()
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.body_timeout_s = body_timeout_s
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.counters: dict[str, int] = {"requests": 0, "too_busy": 0, "too_large": 0, "body_timeout": 0,
                                         "headers_too_large": 0, "wrong_host": 0,
                                         "buffers_full": 0, "websocket_refused": 0}

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    async def _websocket(self, scope, receive, send) -> None:
        """WebSockets are not simulated: refuse the upgrade with a plain HTTP answer saying so."""
        self.counters["websocket_refused"] += 1
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        host = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"host"), None)
        refused = self.hosts.refusal(host)
        status, body = (421, refused) if refused else (501, "WebSockets are not simulated; send plain HTTP requests")
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body) + 1).encode())]})
            await send({"type": "websocket.http.response.body", "body": body.encode("latin-1", "replace") + b"\n"})
        else:  # a server without the extension answers a close before accept with 403
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope, receive, send) -> None:
        self.counters["requests"] += 1
        host = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"host"), None)
        refused = self.hosts.refusal(host)
        if refused is not None:
            self.counters["wrong_host"] += 1
            await _reply(send, 421, refused.encode("latin-1", "replace") + b"\n", {"connection": "close"})
            return
        if not self.session.sim.running:
            await _reply(send, 503, b"the simulation is not running\n", {"retry-after": "1"})
            return
        if sum(len(n) + len(v) + 4 for n, v in scope["headers"]) > self.max_header_bytes:
            # hypercorn limits headers that arrive in pieces; a big block that arrives whole stops here
            self.counters["headers_too_large"] += 1
            await _reply(send, 431, b"request headers too large\n", {"connection": "close"})
            return
        if self.in_flight >= self.max_in_flight:
            self.counters["too_busy"] += 1
            await _reply(send, 503, b"front door busy\n", {"retry-after": "1"})
            return
        self.in_flight += 1
        held = [0]  # bytes of this request's body counted in buffered_bytes
        try:
            body = await self._read_body(receive, send, held)
            if body is None:
                return
            headers: dict[str, str] = {}
            for raw_name, raw_value in scope["headers"][:_MAX_HEADERS]:
                name = raw_name.decode("latin-1").lower()
                if name not in _HOP_BY_HOP:
                    headers[name] = raw_value.decode("latin-1")
            path = scope["path"] or "/"
            if scope.get("query_string"):
                path += "?" + scope["query_string"].decode("latin-1")
            request = Request(scope["method"], path, headers, body)
            result, latency_s = await self.session.call(request, self.timeout_s)
            await self._answer(send, result, latency_s)
        finally:
            self.in_flight -= 1
            self.buffered_bytes -= held[0]

    async def _read_body(self, receive, send, held: list[int]) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        with trio.move_on_after(self.body_timeout_s) as scope:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if self.buffered_bytes + len(chunk) > self.max_buffered_bytes:
                    self.counters["buffers_full"] += 1
                    await _reply(send, 503, b"front door busy: its request buffers are full\n",
                                 {"retry-after": "1", "connection": "close"})
                    return None
                self.buffered_bytes += len(chunk)
                held[0] += len(chunk)
                if size > self.max_body_bytes:
                    self.counters["too_large"] += 1
                    await _reply(send, 413, f"body larger than {self.max_body_bytes} bytes\n".encode(),
                                 {"connection": "close"})
                    return None
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        if scope.cancelled_caught:
            self.counters["body_timeout"] += 1
            await _reply(send, 408, b"request body too slow\n", {"connection": "close"})
        return None

    async def _answer(self, send, result: Response | RequestError, latency_s: float) -> None:
        extra = {"x-sim-latency-ms": f"{latency_s * 1000:.3f}"}
        if isinstance(result, RequestError):
            status = 504 if result.kind == "timeout" else 502
            extra.update({"x-error": result.kind, "x-backend": "-", "x-cache": "-"})
            await _reply(send, status, f"{result.kind}: {result}\n".encode(), extra)
            return
        headers = {}
        for name, value in list(result.headers.items())[:_MAX_HEADERS]:
            name = str(name).lower()
            if _token(name) and name not in _HOP_BY_HOP:
                headers[name] = value
        headers.setdefault("x-backend", headers.get("x-served-by", "-"))
        headers.setdefault("x-cache", "-")
        headers.update(extra)
        status = result.status if 200 <= result.status <= 599 else 502
        await _reply(send, status, result.body if isinstance(result.body, bytes) else b"", headers)


async def _reply(send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(n.encode("latin-1"), _safe(v)) for n, v in headers.items()]
    if status in (204, 304):  # no body allowed
        body = b""
    else:
        raw.append((b"content-length", str(len(body)).encode()))
    if not any(n == b"content-type" for n, _ in raw):
        raw.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def front_door_app(session: "LiveSession", **kw) -> FrontDoor:
    """The front door as an ASGI app (see ``FrontDoor`` for the limits)."""
    return FrontDoor(session, **kw)
