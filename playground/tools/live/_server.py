"""``serve``: a topology in real time behind real sockets, with its dashboard.

One trio run holds everything: the simulation (``sim.serve_async`` on the
wall clock), the front door and the dashboard, each served by hypercorn's
trio server. Binding is local (127.0.0.1) unless asked otherwise; binding
anywhere else needs ``allow_remote=True`` (``--host 0.0.0.0 --allow-remote``)
and then every control needs a token, printed at start-up.

hypercorn's limits keep one bad client from hurting the others (figures in
seconds and bytes): ``keep_alive_timeout`` closes idle connections and those
that dribble a request's headers without finishing them; ``read_timeout``
closes front-door connections that stop sending for longer than an answer
may take (the dashboard has none: its event stream is a response that lasts
while the client stays silent; request bodies there are bounded by Quart's
``BODY_TIMEOUT``); ``h11_max_incomplete_size`` answers 431
to oversized headers; ``backlog`` bounds the kernel's queue of connections
not yet accepted. Malformed HTTP gets a 400 and a closed connection.

    serve()                                      # blocks; Ctrl-C stops it and prints the report
    server = serve_in_thread(port=0, dashboard_port=0)   # tests, notebooks
    server.door_url, server.dashboard_url; server.stop()
"""
from __future__ import annotations

import argparse
import importlib
import ipaddress
import queue
import secrets
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, TextIO

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from playground import ConfigError, Sim

from ._dashboard import dashboard_app
from ._frontdoor import FrontDoor
from ._hosts import HostGuard
from ._session import LiveSession

if TYPE_CHECKING:
    from playground import Report

__all__ = ["serve", "serve_async", "serve_in_thread", "LiveServer", "cli_main", "main", "server_config"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse to listen beyond this machine unless asked explicitly."""
    if not isinstance(host, str) or not host:
        raise ConfigError(f"host must be an address such as '127.0.0.1', got {host!r}")
    if not _is_loopback(host) and not allow_remote:
        raise ConfigError(f"host {host!r} is reachable from other machines: pass allow_remote=True "
                          f"(--allow-remote) to bind it; controls will then need a token")


def control_token(host: str, token: str | None = None) -> str | None:
    """The token controls need: the one given, a fresh random one for a non-local host, else none."""
    if token is None and not _is_loopback(host):
        return secrets.token_urlsafe(16)
    return token


def _check_port(name: str, port) -> None:
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
        raise ConfigError(f"{name} must be an integer between 0 and 65535, got {port!r}")


def server_config(host: str, port: int, *, keep_alive_timeout_s: float = 5.0, read_timeout_s: int | None = 10,
                  max_header_bytes: int = 16 * 1024, backlog: int = 1024, graceful_timeout_s: float = 1.0,
                  quiet: bool = True) -> Config:
    """A hypercorn ``Config`` with limits that protect the other clients (see the module docstring)."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.keep_alive_timeout = keep_alive_timeout_s
    config.read_timeout = read_timeout_s
    config.h11_max_incomplete_size = max_header_bytes
    config.h2_max_header_list_size = max_header_bytes
    config.backlog = backlog
    config.graceful_timeout = graceful_timeout_s
    config.accesslog = None
    config.include_server_header = False
    if quiet:
        config.loglevel = "WARNING"
    return config


@dataclass
class LiveServer:
    """A running ``serve``: where to reach it, and how to stop it."""

    door_url: str
    dashboard_url: str
    token: str | None
    session: LiveSession
    _shutdown: trio.Event = field(default_factory=trio.Event, repr=False)
    _trio_token: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    report: "Report | None" = None

    @property
    def sim(self) -> Sim:
        return self.session.sim

    def stop(self) -> "Report | None":
        """Stop the load, the servers and the run. From another thread (``serve_in_thread``) it also waits."""
        if self._thread is not None and threading.current_thread() is not self._thread:
            try:
                trio.from_thread.run_sync(self._stop_here, trio_token=self._trio_token)
            except trio.RunFinishedError:
                pass
            self._thread.join(timeout=30)
            return self.report
        self._stop_here()
        return None

    def _stop_here(self) -> None:
        self.session.stop()
        self._shutdown.set()


def _build(build: Callable[[], Sim] | None) -> Sim:
    if build is None:
        from ._topology import default_topology

        build = default_topology
    sim = build()
    if not isinstance(sim, Sim):
        raise ConfigError(f"build must return a Sim, got {sim!r}")
    sim.realtime = True
    return sim


async def serve_async(build: Callable[[], Sim] | None = None, *, host: str = "127.0.0.1", port: int = 8000,
                      dashboard_port: int = 8001, allow_remote: bool = False, token: str | None = None,
                      entry: str | None = None, allowed_hosts: tuple[str, ...] | list[str] = (),
                      timeout_s: float = 10.0, max_rate_per_s: float = 5000.0,
                      keep_alive_timeout_s: float = 5.0, read_timeout_s: int = 10, quiet: bool = True,
                      task_status=trio.TASK_STATUS_IGNORED) -> "Report | None":
    """Run ``build()``'s topology in real time behind a front door and a dashboard, until ``stop()``.

    ``await nursery.start(serve_async, ...)`` returns a ``LiveServer`` (its
    URLs carry the real ports, so port 0 picks free ones). Returns the run's report.
    Both servers answer only a ``Host`` that is loopback, ``host`` or one of
    ``allowed_hosts`` (a guard against DNS rebinding; see ``_hosts``).
    """
    check_bind(host, allow_remote)
    _check_port("port", port)
    _check_port("dashboard_port", dashboard_port)
    token = control_token(host, token)
    hosts = HostGuard(host, tuple(allowed_hosts))
    limits = dict(keep_alive_timeout_s=keep_alive_timeout_s, read_timeout_s=read_timeout_s, quiet=quiet)
    session = LiveSession(_build(build), entry=entry, max_rate_per_s=max_rate_per_s)
    door = FrontDoor(session, timeout_s=timeout_s, hosts=hosts)
    dashboard = dashboard_app(session, token=token, hosts=hosts)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        # an answer may take up to timeout_s, during which the client rightly sends nothing
        door_read_timeout_s = max(read_timeout_s, int(timeout_s) + 5)
        door_config = server_config(host, port, **{**limits, "read_timeout_s": door_read_timeout_s})
        # the event stream is a response that lasts for minutes while its client sends nothing: no read
        # timeout there (idle and unfinished requests are still cut by keep_alive_timeout and BODY_TIMEOUT)
        dash_config = server_config(host, dashboard_port, **{**limits, "read_timeout_s": None})
        door_binds = await nursery.start(partial(hypercorn_serve, door, door_config, shutdown_trigger=shutdown.wait))
        dash_binds = await nursery.start(partial(hypercorn_serve, dashboard, dash_config,
                                                 shutdown_trigger=shutdown.wait))
        server = LiveServer(door_binds[0], dash_binds[0], token, session, shutdown,
                            trio.lowlevel.current_trio_token())
        task_status.started(server)
    server.report = session.door_report(door.counters)
    return server.report


def serve_in_thread(build: Callable[[], Sim] | None = None, **kw) -> LiveServer:
    """Start ``serve_async`` in a background thread (its own trio run); ``stop()`` ends it."""
    started: queue.Queue = queue.Queue()
    errors: list[BaseException] = []

    async def main() -> None:
        try:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(partial(serve_async, build, **kw))
                server._thread = threading.current_thread()
                started.put(server)
        except BaseException as exc:  # reported to the starting thread
            started.put(exc)
            raise

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # already given to the starter if it happened while starting
            errors.append(exc)
            if not started.empty():
                return
            traceback.print_exception(exc, file=sys.stderr)

    thread = threading.Thread(target=run, name="playground-live", daemon=True)
    thread.start()
    got = started.get(timeout=300)  # a hang guard: starting takes a second, more on a busy machine
    if isinstance(got, BaseException):
        raise got
    got._thread = thread
    return got


def _announce(server: LiveServer, out: TextIO) -> None:
    print(f"front door: {server.door_url}  (entry host {server.session.entry!r})", file=out)
    if server.token:
        print(f"dashboard:  {server.dashboard_url}/?token={server.token}", file=out)
        print(f"controls need the header x-playground-token: {server.token}", file=out)
    else:
        print(f"dashboard:  {server.dashboard_url}/", file=out)
    print("Ctrl-C stops it and prints the report.", file=out, flush=True)


def serve(build: Callable[[], Sim] | None = None, host: str = "127.0.0.1", port: int = 8000,
          dashboard_port: int = 8001, *, allow_remote: bool = False, out: TextIO | None = None,
          **kw) -> "Report | None":
    """Serve until Ctrl-C (or SIGTERM); print the URLs first and the report last. Returns the report."""
    out = out or sys.stdout
    check_bind(host, allow_remote)  # before trio.run, so the error is plain
    _check_port("port", port)
    _check_port("dashboard_port", dashboard_port)
    HostGuard(host, tuple(kw.get("allowed_hosts", ())))

    async def main() -> "Report | None":
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_async, build, host=host, port=port,
                                                 dashboard_port=dashboard_port, allow_remote=allow_remote, **kw))
            _announce(server, out)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    server.stop()
                    break
        return server.session.report

    report = trio.run(main)
    if report is not None:
        print(report.render(), file=out)
    return report


def _load_build(spec: str) -> Callable[[], Sim]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--build must look like 'package.module:function', got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--build {spec!r}: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"--build {spec!r} is not a function returning a Sim")
    return fn


def cli_main(argv: list[str] | None = None) -> int:
    """``playground serve [--host H] [--port P] [--dashboard-port D] [--allow-remote] [--allowed-host NAME]
    [--build MOD:FN]``."""
    parser = argparse.ArgumentParser(prog="playground serve",
                                     description="Run a topology in real time behind real sockets, with a dashboard.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="front door port (default 8000; 0 picks one)")
    parser.add_argument("--dashboard-port", type=int, default=8001, help="dashboard port (default 8001)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-local --host; controls then need the printed token")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="also answer requests for this Host name (repeatable); by default only the bound "
                             "address and loopback names are answered, against DNS rebinding")
    parser.add_argument("--build", metavar="MODULE:FUNCTION",
                        help="a function returning the Sim to serve (default: a small built-in topology)")
    parser.add_argument("--entry", help="host the front door sends to (default: the first load's target)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the built-in topology")
    parser.add_argument("--users", type=int, default=20, help="users of the built-in topology (1 request/s each)")
    args = parser.parse_args(argv)
    try:
        if args.build:
            build = _load_build(args.build)
        else:
            from ._topology import default_topology

            build = partial(default_topology, seed=args.seed, users=args.users)
        serve(build, args.host, args.port, args.dashboard_port, allow_remote=args.allow_remote, entry=args.entry,
              allowed_hosts=tuple(args.allowed_host))
    except ConfigError as exc:
        print(f"playground serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"playground serve: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


main = cli_main
