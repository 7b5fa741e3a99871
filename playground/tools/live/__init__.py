"""See it live: a topology on real sockets, with a dashboard.

Three parts, each usable alone:

* the *front door* (``front_door_app``) - a small ASGI app that hypercorn
  serves on a real port. Each real HTTP request becomes a ``playground.Request``
  sent from a front-door client host into the topology's entry host over the
  simulated network; the answer comes back after its simulated latency, with
  headers saying which backend served it (``x-backend``) and whether a cache
  hit (``x-cache``).
* the *dashboard* (``dashboard_app``) - a Quart (quart-trio) app: a page that
  draws the topology and its live figures (server-sent events), charts of
  latency and throughput with faults marked, and buttons to start and stop the
  load, change it, crash and restart hosts, partition and repair links.
* ``serve`` / ``serve_async`` / ``cli_main`` - run a topology in real time
  (``Sim(realtime=True)``, ``sim.serve_async``) with both servers in the same
  trio run.

Why it lives here, in ``playground.tools.live``: it is built *from* the engine and
from components (its default topology uses ``components.AppServer`` and, when
they exist, a balancer and a cache), like the ladder and the CLI. Putting it
in ``components`` would make components depend on web servers; putting it in
the engine's modules would make the engine depend on components. As a
subpackage of ``playground`` that imports ``components`` only inside functions,
every import still runs one way: ``playground.tools.live`` -> ``components`` ->
``playground`` engine, and nothing below imports it.

    from playground.tools.live import serve
    serve()                         # front door on :8000, dashboard on :8001
    serve(build=my_topology)        # any function returning a Sim
"""
from __future__ import annotations

from ._controls import ControlError as ControlError
from ._controls import Controls as Controls
from ._dashboard import dashboard_app as dashboard_app
from ._frontdoor import FrontDoor as FrontDoor
from ._frontdoor import front_door_app as front_door_app
from ._server import LiveServer as LiveServer
from ._server import cli_main as cli_main
from ._server import serve as serve
from ._server import serve_async as serve_async
from ._server import serve_in_thread as serve_in_thread
from ._session import LiveSession as LiveSession
from ._topology import default_topology as default_topology
from ._topology import layout as layout

__all__ = [
    "ControlError", "Controls", "dashboard_app", "FrontDoor", "front_door_app", "LiveServer", "cli_main",
    "serve", "serve_async", "serve_in_thread", "LiveSession", "default_topology", "layout",
]
