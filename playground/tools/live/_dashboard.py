"""The dashboard: a Quart (quart-trio) app showing a live session.

Pages and endpoints (all JSON unless said):

* ``GET /`` - the page (static HTML, CSS and JS shipped in this package: the
  machine may be offline, so nothing comes from a CDN). It draws the topology
  as SVG, colours each host by state and load, and charts latency and
  throughput with faults marked.
* ``GET /api/state`` - topology, the latest snapshot, the history of points.
* ``GET /api/stream`` - server-sent events: one ``data:`` line of JSON per
  snapshot (once a simulated second, and at once after each control).
* ``POST /api/control/<action>`` with a JSON object - ``start``, ``stop``,
  ``load`` (``{"users": n}`` or ``{"rate": r}``), ``crash``/``restart``
  (``{"node": name}``), ``partition``/``repair`` (``{"a": x, "b": y}``).
  Unknown hosts get 404, bad values 400, each with a message.

Safety: every request must name an allowed ``Host`` (else 421, see
``_hosts``: a DNS-rebinding page cannot reach it); controls must come from
the dashboard's own page when the browser says where they come from
(``Origin``, else 403), must be sent as ``application/json`` (which a browser
will not send across origins without asking), and must be small (a body
above ``max_body_bytes`` is refused with 413 before it is read); when a token
is set (remote binding) every control needs the header ``x-playground-token``.
"""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from ._controls import ControlError
from ._hosts import HostGuard

if TYPE_CHECKING:
    from ._session import LiveSession

__all__ = ["dashboard_app"]

STATIC = Path(__file__).parent / "static"
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": message}), status


def _too_large(message: str) -> Response:
    response = jsonify({"ok": False, "error": message})
    response.status_code = 413
    response.headers["connection"] = "close"  # the unread rest of the body must not be taken as a request
    return response


def _plain_error(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def dashboard_app(session: "LiveSession", *, token: str | None = None, keepalive_s: float = 15.0,
                  hosts: HostGuard | None = None, max_body_bytes: int = 16 * 1024) -> QuartTrio:
    """The dashboard for ``session``. With ``token``, controls require ``x-playground-token: <token>``.

    ``hosts`` says which ``Host`` names it answers (default: loopback only).
    """
    hosts = hosts or HostGuard()
    app = QuartTrio(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config.update(MAX_CONTENT_LENGTH=max_body_bytes, BODY_TIMEOUT=10, RESPONSE_TIMEOUT=30)

    @app.before_request
    async def _guard():
        host = request.headers.get("host")
        refused = hosts.refusal(host)
        if refused is not None:
            return _plain_error(421, refused)
        if request.method not in ("GET", "HEAD"):
            refused = hosts.origin_refusal(request.headers.get("origin"), host)
            if refused is not None:
                return _plain_error(403, refused)
            length = request.content_length
            if length is not None and length > max_body_bytes:
                return _too_large(f"a control body is at most {max_body_bytes} bytes, got {length}")
        return None

    @app.after_request
    async def _headers(response: Response) -> Response:
        for k, v in _SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.get("/")
    async def index():
        return Response((STATIC / "index.html").read_text(encoding="utf-8"), content_type="text/html; charset=utf-8")

    @app.get("/api/state")
    async def state():
        return jsonify({"topology": session.topology(), "snapshot": session.snapshot,
                        "history": session.history(), "auth_required": token is not None})

    @app.get("/api/topology")
    async def topology():
        return jsonify(session.topology())

    @app.get("/api/stream")
    async def stream():
        def message(version: int, since_t_s: float) -> bytes:
            # every point newer than the client has, even if it missed a snapshot in between
            points = [p for p in session.history() if p["t_s"] > since_t_s]
            return f"id: {version}\ndata: {json.dumps({**session.snapshot, 'points': points})}\n\n".encode()

        async def events():
            version = session.version
            history = session.history()
            last_t_s = history[-1]["t_s"] if history else -1.0
            yield message(version, -1.0)  # the page skips points it already has
            while True:
                new = await session.wait_for_change(version, keepalive_s)
                if new == version:
                    yield b": keep-alive\n\n"
                    continue
                version = new
                yield message(version, last_t_s)
                history = session.history()
                if history:
                    last_t_s = history[-1]["t_s"]

        response = Response(events(), content_type="text/event-stream")
        response.headers["cache-control"] = "no-cache"
        response.headers["x-accel-buffering"] = "no"
        response.timeout = None  # a stream lasts as long as the page is open
        return response

    @app.post("/api/control/<action>")
    async def control(action: str):
        if token is not None:
            given = request.headers.get("x-playground-token", "")
            if not secrets.compare_digest(given.encode(), token.encode()):
                return _error(401, "this control needs the token printed at start-up (header x-playground-token)")
        if request.mimetype != "application/json":
            return _error(415, f"send the control as application/json, got {request.mimetype or 'no content type'!r}")
        try:
            raw = await request.get_data()
        except RequestEntityTooLarge:  # no content-length, and the body grew too big: Quart stopped reading
            return _too_large(f"a control body is at most {max_body_bytes} bytes")
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError as exc:
            return _error(400, f"the body is not valid JSON: {exc}")
        try:
            done = session.control(action, payload)
        except ControlError as exc:
            return _error(exc.status, exc.message)
        return jsonify({"ok": True, "done": done, "snapshot": session.snapshot})

    return app
