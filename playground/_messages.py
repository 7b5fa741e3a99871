"""Requests, responses and connections: what travels over the simulated network.

A ``Request`` is the HTTP request a real client would send, reduced to what a
simulation needs: method, path, headers, body, the client's address, an id,
and the connection it travels on. ``to_asgi_scope`` turns one into an ASGI
HTTP scope so that a real Quart app can serve it in process.

Connections are a concept, not sockets: a client may send several requests
over one connection (keep-alive). An L4 balancer sees only the connection and
keeps every request of it on one backend; an L7 balancer sees each request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import trio

__all__ = ["Request", "Response", "Connection", "to_asgi_scope", "call_asgi", "quote_key"]


def quote_key(key: str) -> str:
    """A key as one path segment: ``urllib.parse.quote(key, safe="")``, which returns a key of
    ASCII letters and digits unchanged; such a key (the usual one) skips its encode and scan.

        >>> quote_key("42"), quote_key("user:7/a b")
        ('42', 'user%3A7%2Fa%20b')
    """
    return key if key.isascii() and key.isalnum() else quote(key, safe="")



@dataclass(slots=True, init=False)
class Request:
    """An HTTP request. ``headers`` keys are lower-case.

        >>> Request("GET", "/item/42").path
        '/item/42'
    """

    method: str = "GET"
    path: str = "/"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    client: str = ""  # the original client's host name (its address)
    id: int = 0
    conn: int = 0  # connection id; 0 means "a new connection per request"
    hops: int = 0  # network hops so far (loop guard)
    trace: Any = None  # the current span when this request is traced (playground._trace), else None

    # Written by hand (``init=False``): the generated one calls ``__post_init__`` and a
    # factory for the headers, and requests are made several times per simulated request.
    def __init__(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None,
                 body: bytes = b"", client: str = "", id: int = 0, conn: int = 0, hops: int = 0,
                 trace: Any = None) -> None:
        self.method = method
        self.path = path
        self.headers = {} if headers is None else headers
        self.body = body
        self.client = client
        self.id = id
        self.conn = conn
        self.hops = hops
        self.trace = trace
        if method.__class__ is not str or path.__class__ is not str or body.__class__ is not bytes:
            self._check()

    def _check(self) -> None:
        from ._errors import ConfigError

        if not isinstance(self.method, str) or not self.method:
            raise ConfigError(f"Request method must be a string such as 'GET', got {self.method!r}")
        if not isinstance(self.path, str):
            raise ConfigError(f"Request path must be a string such as '/item/1', got {self.path!r}")
        if isinstance(self.body, str):  # text: sent as UTF-8
            self.body = self.body.encode()
        elif isinstance(self.body, (bytearray, memoryview)):
            self.body = bytes(self.body)
        elif not isinstance(self.body, bytes):
            raise ConfigError(f"Request body must be bytes or str, got {self.body!r}"[:300])

    @property
    def route(self) -> str:
        """The path without its query string."""
        path = self.path
        return path if "?" not in path else path.split("?", 1)[0]  # read several times a request: no list

    @property
    def query(self) -> str:
        return self.path.split("?", 1)[1] if "?" in self.path else ""

    @property
    def idempotent(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")

    def copy(self, **changes) -> "Request":
        """A copy with its own headers dict (balancers add headers per attempt), then ``changes``."""
        new = Request(self.method, self.path, dict(self.headers), self.body, self.client, self.id, self.conn,
                      self.hops, self.trace)
        for name, value in changes.items():
            setattr(new, name, value)
        return new


@dataclass(slots=True)
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def settle_response(response) -> "Response | str":
    """A handler's answer as a plain ``Response`` (a text body encoded as UTF-8), or what is wrong with it."""
    if not isinstance(response, Response):
        return f"handle() must return a Response, got {response!r}"
    status, body = response.status, response.body
    if not (isinstance(status, int) and not isinstance(status, bool) and 100 <= status < 600):
        return f"Response status must be an int from 100 to 599, got {status!r}"
    if isinstance(body, str):  # a text body: sent as UTF-8, as a web framework would
        headers = response.headers if "content-type" in response.headers else {
            **response.headers, "content-type": "text/plain; charset=utf-8"}
        return Response(int(status), headers, body.encode())
    if isinstance(body, (bytes, bytearray, memoryview)):
        return Response(int(status), response.headers, bytes(body))
    return f"Response body must be bytes or str, got {body!r}"


@dataclass(frozen=True, slots=True)
class Connection:
    """A client connection to a host (keep-alive). Requests carry its ``id``."""

    id: int
    client: str
    target: str


def to_asgi_scope(request: Request, *, server: tuple[str, int] = ("playground", 80)) -> dict:
    """The ASGI 3 HTTP scope a server such as hypercorn would build for ``request``."""
    parts = urlsplit(request.path)
    headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in request.headers.items()]
    if "host" not in request.headers:
        headers.append((b"host", server[0].encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method.upper(),
        "scheme": "http",
        "path": parts.path or "/",
        "raw_path": (parts.path or "/").encode("latin-1"),
        "query_string": parts.query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": (request.client or "client", 0),
        "server": server,
        "state": {},
        "extensions": {},
    }


async def call_asgi(app, request: Request) -> Response:
    """Serve ``request`` with an ASGI ``app`` in this task and collect its response.

    As a real server does, ``receive`` reports ``http.disconnect`` only once the
    response is complete: an earlier disconnect makes frameworks such as
    quart-trio cancel a handler that is still waiting (on a database, say).
    Repeated headers (two ``set-cookie``) are joined with ", ".
    """
    scope = to_asgi_scope(request)
    sent_body = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []
    complete = trio.Event()

    async def receive():
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await complete.wait()  # the client stays connected until it has its answer
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                name, value = k.decode("latin-1").lower(), v.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    await app(scope, receive, send)
    return Response(status, headers, b"".join(chunks))
