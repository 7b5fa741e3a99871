"""The simulation: build a topology, run it, get a report.

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler, cores=4))
    sim.load(OpenLoop("app", rate=200))
    report = sim.run(duration_s=30)        # a plain call: scripts and the REPL
    report = await sim.run_async(30)       # inside trio: pytest-trio, python -m trio

Everything runs as trio tasks in one ``trio.run``. Time is virtual by default
(``VirtualClock``): a simulated minute takes as long as the computation.
``Sim(realtime=True)`` runs the same topology against the wall clock, which
real sockets need. Inside an existing trio run, ``run_async`` shares the
running clock if it is a ``VirtualClock``; under a wall clock it runs the
virtual-time simulation in a worker thread and awaits the report.

What a run leaves: ``report.host_series`` (every host, second by second),
``report.traces`` (a sampled share of requests as spans, ``Sim(trace_sample=
0.001)`` by default, 0 for none) and ``report.to_html(path)``, a page that
replays the run.

Determinism: the seed is the only source of randomness. Each host, load and
the network draw from their own ``random.Random`` seeded from (seed, name),
so adding a host does not change what another one draws.

A ``Sim`` can be run more than once (a REPL session: run, crash something,
run again). Each run takes its measurements afresh and reports times from its
own start (``sim.now``), while simulated time itself goes on from where the
last run ended, so what components hold (database rows, cache contents with
their TTLs) carries over, as it would on real machines.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
import time
from typing import Callable

import trio

from ._clock import RealtimeScheduler, Scheduler, VirtualClock
from . import limits
from ._describe import describe
from ._errors import (ConfigError, PlaygroundError, WiringError, check_at_most, check_positive, check_probability,
                      counted)
from ._faults import FaultVerbs, run_action, unfired_warning
from ._shared_random import SharedRandomWatch
from ._watchdog import Watchdog
from ._unawaited import UnawaitedCoroutines
from ._load import Load
from ._metrics import LatencyHistogram
from ._network import Network
from ._node import Node
from ._report import Report
from ._series import SeriesSampler
from ._trace import TraceStore
from ._warmup import check_warmup, choose_warmup
from ._stations import StationSampler
from ._theory import describe_load

__all__ = ["Sim", "Client"]

MAX_EVENTS = 10_000  # events kept per run (the latest; see Sim.event)


SHARED_RANDOM_WARNING = (
    "user code drew from Python's shared random module (random.random(), random.choice(), ...) during the run, "
    "so it will not repeat with the same seed: draw from ctx.rng in a handler (the host's own stream, seeded "
    "from the Sim's seed), or from a random.Random of your own")


NOTHING_SENT_WARNING = ("nothing sent a request during the run: add a load, "
                        "sim.load(OpenLoop(\"host\", rate=100)), or call hosts from a task with sim.net.call")


class Client(Node):
    """A host that only sends (where loads live). Created by ``Sim.load`` when needed."""

    kind = "client"

    async def handle(self, request):
        from ._messages import Response

        return Response(404, body=b"clients do not serve")


def _seed_trio_scheduler(seed) -> None:
    # trio shuffles tasks that become runnable together with a private RNG; seeding it
    # makes the (rare) multi-task batches repeat too. Harmless outside the simulation.
    try:
        from trio._core import _run

        _run._r.seed(f"playground:{seed}")
    except Exception:  # pragma: no cover - a future trio may move it
        pass


class Sim(FaultVerbs):
    """A topology and its run. See the module docstring for a tour."""

    def __init__(self, seed: int | str = 0, *, realtime: bool = False, speed: float = 1.0,
                 default_latency_s=0.0005, trace_sample: float = 0.001) -> None:
        if not isinstance(seed, (int, str)) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an int or a str, got {seed!r}")
        check_positive("speed", speed)
        check_probability("trace_sample", trace_sample)
        self.trace_sample = float(trace_sample)  # share of requests traced (see playground._trace)
        self._traces: TraceStore | None = None
        self.seed = seed
        self.realtime = realtime
        self.speed = speed
        self.net = Network(random.Random(f"{seed}/network"), default_latency_s)
        self.loads: list[Load] = []
        self.sched: Scheduler = Scheduler()
        self.net.sched = self.sched
        self.running = False
        self._actions: list[tuple[float, Callable, tuple, dict]] = []
        self._plans: list[tuple[float, Callable, tuple, dict]] = []  # this run's, in time order
        self._plans_done: set[int] = set()  # indices into _plans that fired
        self._events: list[tuple[float, str]] = []
        self._events_dropped = 0
        self._t0 = 0.0
        self._ids = itertools.count(1)
        self.runs = 0
        self.last_report: Report | None = None
        self._loads_scope: trio.CancelScope | None = None
        self._hosts_nursery: trio.Nursery | None = None  # where hosts live during a run

    # -- building -----------------------------------------------------------------
    def add(self, node: Node, *, region: str | None = None) -> Node:
        """Add a host. Returns it, so ``app = sim.add(AppServer(...))`` reads well."""
        if not isinstance(node, Node):
            hint = ": a load goes in with sim.load(...)" if isinstance(node, Load) else ""
            raise ConfigError(f"add() takes a Node (a component), got {node!r}{hint}")
        if region is not None:
            if node.region is not None and node.region != region:
                raise ConfigError(f"host {node.name!r} is in region {node.region!r} already, got region={region!r} "
                                  "in add(): give the region in one place")
            node.region = region
        self.net.add_host(node)
        node.sim = self
        node.net = self.net
        node.sched = self.sched
        if self.running and self._hosts_nursery is not None:
            self._start_host(node)  # added during a run (an autoscaler launching a server)
        if hasattr(node, "on_added"):
            node.on_added(self)
        return node

    def _start_host(self, node: Node) -> None:
        """Attach a host added while the simulation runs and start its lifecycle in the running nursery."""
        node._attach(self, random.Random(f"{self.seed}/host/{node.name}"))
        self._hosts_nursery.start_soon(node._lifecycle)

    def _stop_host(self, node: Node) -> None:
        """Take a host out of service for good, quietly (an autoscaler terminating a drained server)."""
        if node.up:
            node.up = False
            if self.running:
                node._fail_held()
                if node._scope is not None:
                    node._scope.cancel()
            node.on_crash()

    def __getitem__(self, name: str) -> Node:
        return self.net.host(name)

    def __contains__(self, name: str) -> bool:
        return name in self.net.hosts

    @property
    def hosts(self) -> dict[str, Node]:
        return dict(self.net.hosts)

    def link(self, a: str, b: str, latency_s=0.0005, **kw):
        """Latency (seconds or a Distribution), ``jitter_s``, ``loss``, ``bandwidth_bytes_per_s`` between two hosts."""
        return self.net.link(a, b, latency_s, **kw)

    def region_link(self, r1: str, r2: str, latency_s, **kw):
        """Latency between two regions (any host in one to any host in the other)."""
        return self.net.region_link(r1, r2, latency_s, **kw)

    def load(self, load: Load) -> Load:
        """Add a load (users). Its client host is created if it does not exist."""
        if not isinstance(load, Load):
            raise ConfigError(f"load() takes an OpenLoop, ClosedLoop or Population, got {load!r}")
        if load.client not in self.net.hosts:
            self.add(Client(load.client, region=load.region))
        if any(other.name == load.name for other in self.loads):
            load.name = f"{load.name}#{len(self.loads) + 1}"
        self.loads.append(load)
        return load

    # -- faults and actions: see _faults.FaultVerbs (crash/restart, partition/repair, ...)

    def event(self, description: str) -> None:
        """Note something on the run's timeline (faults note themselves)."""
        if self.running:
            events = self._events
            events.append((round(self.now, 9), description))
            if len(events) > MAX_EVENTS:  # bounded: a live run may last for days
                drop = MAX_EVENTS // 4
                del events[:drop]
                self._events_dropped += drop

    @property
    def now(self) -> float:
        """Seconds since the current run started."""
        return self.sched.now - self._t0

    def _next_request_id(self) -> int:
        return next(self._ids)

    # -- checks ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check the wiring: every named host exists, no request can loop forever, loads have targets."""
        for node in self.net.hosts.values():
            node.validate(self)
        self._check_actions()
        for load in self.loads:
            if getattr(load, "resolver", None) is None:
                self.net.host(load.target)
            else:  # the target is a DNS name: the resolver checks its DNS and record
                load.resolver.validate(self, load)
        self._check_cycles()

    def _check_cycles(self) -> None:
        graph = {name: tuple(node.downstream()) for name, node in self.net.hosts.items()}
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            for nxt in graph.get(name, ()):
                if state.get(nxt) == 1:
                    loop = path[path.index(nxt):] + [nxt] if nxt in path else [name, nxt]
                    raise WiringError(f"requests would loop forever: {' -> '.join(loop)}")
                if state.get(nxt) is None:
                    visit(nxt, path + [nxt])
            state[name] = 2

        for name in sorted(graph):
            if state.get(name) is None:
                visit(name, [name])

    # -- running ---------------------------------------------------------------------
    def run(self, duration_s: float = 10.0, *, warmup_s: float | str = 0.0, drain_s: float | None = None) -> Report:
        """Run for ``duration_s`` simulated seconds and return the report (synchronous).

        ``warmup_s``: the first seconds of the run, left out of the client
        figures (requests that *arrive* in them are not measured), so a cold
        cache or an empty queue does not colour the result. ``"auto"`` chooses
        it after the run with MSER-5 on the per-second series; the report says
        what was used (``report.warmup_s``). ``duration_s`` includes it.
        """
        self._check_run_args(duration_s, drain_s, warmup_s)
        if _inside_trio():
            raise ConfigError("sim.run() was called inside a running trio loop (pytest-trio, python -m trio, an async "
                              "function run by trio): there, write report = await sim.run_async(...)")
        if duration_s == math.inf and not any(action == self.stop for _, action, _, _ in self._actions):
            raise ConfigError("duration_s must be finite for run(), which nothing else could stop, got inf: "
                              "plan an end with sim.at(t_s, sim.stop), or serve open-ended with serve_async()")
        self.validate()
        run = functools.partial(self.run_async, duration_s, drain_s, warmup_s=warmup_s)
        with _plain_interrupt():
            if self.realtime:
                return trio.run(run)
            # time goes on from where the last run ended, so TTLs and lags stay meaningful across runs
            return trio.run(run, clock=VirtualClock(start_s=self.sched.now))

    def _check_run_args(self, duration_s, drain_s, warmup_s=0.0) -> None:
        check_positive("duration_s", duration_s, allow_inf=True)  # inf: serve until stop()
        if duration_s != math.inf:
            check_at_most("duration_s", duration_s, limits.MAX_DURATION_S, " s", limits.WHY["duration"])
        if drain_s is not None:
            check_positive("drain_s", drain_s, allow_zero=True)
        check_warmup(warmup_s, duration_s)
        if self.running:
            raise ConfigError("this Sim is already running")

    async def run_async(self, duration_s: float = 10.0, drain_s: float | None = None, *,
                        warmup_s: float | str = 0.0, task_status=trio.TASK_STATUS_IGNORED) -> Report:
        """Run inside an existing trio run and return the report.

        Under a ``VirtualClock`` (pytest's ``virtual_clock`` fixture) the run
        shares the caller's virtual time. Under a wall clock (``python -m trio``)
        a virtual-time Sim runs in a worker thread with a clock of its own, so
        ``await sim.run_async(60)`` still takes only as long as the computation;
        ``Sim(realtime=True)`` runs against the caller's wall clock instead.
        ``await nursery.start(sim.run_async, ...)`` returns once every host is
        up (so real traffic can be sent in with ``sim.net.call``).
        """
        self._check_run_args(duration_s, drain_s, warmup_s)
        self.validate()
        clock = trio.lowlevel.current_clock()
        if (not self.realtime and not isinstance(clock, VirtualClock) and not math.isinf(duration_s)
                and task_status is trio.TASK_STATUS_IGNORED):
            # Under a wall clock (``python -m trio``, a plain trio.run) a virtual-time run
            # goes to a worker thread with a trio run and a virtual clock of its own.
            return await trio.to_thread.run_sync(functools.partial(self.run, duration_s, drain_s=drain_s,
                                                                   warmup_s=warmup_s))
        realtime = self.realtime or not isinstance(clock, VirtualClock)
        with _plain_interrupt():
            return await self._run_in_nursery(realtime, clock, duration_s, drain_s, task_status, warmup_s)

    async def _run_in_nursery(self, realtime, clock, duration_s, drain_s, task_status, warmup_s) -> Report:
        async with trio.open_nursery() as nursery:
            if realtime:
                sched = RealtimeScheduler(self.speed)
                nursery.start_soon(sched.drive)
            else:
                sched = clock.scheduler
            try:
                report = await self._run_on(sched, duration_s, drain_s, task_status, warmup_s)
            except PlaygroundError as exc:  # raised as itself, not inside this nursery's ExceptionGroup
                failure = exc
            else:
                failure = None
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return report

    async def serve_async(self, *, drain_s: float | None = None, task_status=trio.TASK_STATUS_IGNORED) -> Report:
        """Run with no set end (a live server) until ``stop()``; then drain and return the report.

        ``await nursery.start(sim.serve_async)`` returns once every host is up.
        Cancelling the caller's scope also ends it, without a report.
        """
        return await self.run_async(math.inf, drain_s, task_status=task_status)

    def stop(self) -> None:
        """End the current run now: loads stop, answers in flight drain, the report is made."""
        if self._loads_scope is not None:
            self._loads_scope.cancel()

    async def _run_on(self, sched: Scheduler, duration_s: float, drain_s: float | None,
                      task_status=trio.TASK_STATUS_IGNORED, warmup_s: float | str = 0.0) -> Report:
        _seed_trio_scheduler(self.seed)
        wall0 = time.perf_counter()
        self.sched = sched
        self.net.sched = sched
        self.net.rng.seed(f"{self.seed}/network")
        self.net.counters.clear()
        self._t0 = sched.now
        self._fired0 = sched.fired
        self._events = []
        self._events_dropped = 0
        self._ids = itertools.count(1)
        self.runs += 1
        conn_ids = itertools.count(1)
        for name, node in self.net.hosts.items():
            node._attach(self, random.Random(f"{self.seed}/host/{name}"))
        auto = warmup_s == "auto"
        measure_from = self._t0 + (0.0 if auto else float(warmup_s))
        for load in self.loads:
            load._attach(self, self.seed, conn_ids, measure_from, windows=auto)
        until = self._t0 + duration_s
        if drain_s is None:
            drain_s = max([load.longest_s for load in self.loads] or [0.0]) + 1.0
        self._topology = describe(self)
        self._traces = (TraceStore(random.Random(f"{self.seed}/trace"), self.trace_sample)
                        if self.trace_sample else None)
        self._sampler = SeriesSampler(sched, [n for n in self.net.hosts.values() if not isinstance(n, Client)],
                                      self._t0)
        self.running = True
        self.net.active = True
        sched.failure = None
        sched.origin_s = self._t0
        report = None
        # notices user code that blocks the thread, and a run whose simulated time stands still
        self._watchdog = Watchdog(sched, self._t0, _stuck_reporter(sched, trio.lowlevel.current_trio_token()))
        self._watchdog.start()
        unawaited = UnawaitedCoroutines()  # notices coroutines made and never awaited
        self._shared_random = SharedRandomWatch()  # user code drawing from it makes a run unrepeatable
        self._shared_random.start()
        unawaited.__enter__()
        try:
            async with trio.open_nursery() as nursery:
                sched.on_failure = nursery.cancel_scope.cancel  # a callback that raised ends the run
                for node in list(self.net.hosts.values()):  # one at a time: start order is fixed
                    await nursery.start(node._lifecycle)
                self._hosts_nursery = nursery
                self._plans = sorted(self._actions, key=lambda a: a[0])
                self._plans_done = set()
                for i, (t_s, action, args, kwargs) in enumerate(self._plans):
                    sched.call_at(self._t0 + t_s, run_action, (self, action, args, kwargs, i))
                sampler = StationSampler(sched, [n for n in self.net.hosts.values() if not isinstance(n, Client)],
                                         self._t0, duration_s)
                task_status.started()
                with trio.CancelScope() as loads_scope:
                    self._loads_scope = loads_scope  # stop() cancels it
                    async with trio.open_nursery() as loads:
                        for load in self.loads:
                            loads.start_soon(load.run, until)
                        if math.isinf(until):  # open-ended: lasts until stop(), loads or not
                            loads.start_soon(trio.sleep_forever)
                        else:  # the run lasts duration_s, loads or not
                            loads.start_soon(sched.sleep, until - sched.now)
                self._loads_scope = None
                for load in self.loads:
                    load.stop()
                if loads_scope.cancel_called:  # stopped: measure what ran
                    until = min(until, sched.now)
                    duration_s = until - self._t0
                sampler.finish(min(until, sched.now))
                # drain: wait for answers still on their way, up to drain_s
                deadline = until + drain_s
                while sched.now < deadline and any(l.metrics.in_flight for l in self.loads):
                    await sched.sleep(min(0.05, deadline - sched.now))
                end = sched.now
                if sched.realtime:
                    self._note_lag(sched)
                report = self._report(duration_s, end, time.perf_counter() - wall0, warmup_s, sampler)
                if sched.realtime:  # the wall clock would go on delivering into hosts being torn down
                    sched.halt()
                nursery.cancel_scope.cancel()
        finally:
            self._sampler.stop()
            self.running = False
            self.net.active = False
            self._loads_scope = None
            self._hosts_nursery = None
            sched.on_failure = None
            self._watchdog.stop()
            self._shared_random.stop()
            unawaited.__exit__(None, None, None)
        if sched.failure is not None:
            failure, sched.failure = sched.failure, None
            raise failure
        self.last_report = report
        return report

    def _event_log(self) -> list[tuple[float, str]]:
        events = list(self._events)
        if self._events_dropped and events:
            events.insert(0, (events[0][0], f"{self._events_dropped} earlier events not kept "
                                            f"(the log keeps the latest {MAX_EVENTS:,})"))
        return events

    def _note_lag(self, sched: Scheduler) -> None:
        """Say in the events how far real time ran ahead of the simulation (it paused; see ``_clock``)."""
        lag = sched.lag()
        if lag["stalls"]:
            self.event(f"real time ran ahead: simulated time paused {lag['behind_s']:.3f} s in all, "
                       f"in {lag['stalls']} stalls (longest {lag['longest_stall_s']:.3f} s); "
                       f"simulated latencies do not include it")

    def _report(self, duration_s: float, end: float, wall_s: float, warmup_s: float | str = 0.0,
                stations: StationSampler | None = None) -> Report:
        clients = {}
        overall = LatencyHistogram()
        rule = "MSER-5" if warmup_s == "auto" else ""
        if warmup_s == "auto":
            warmup_s = choose_warmup([load.metrics for load in self.loads], duration_s)
            for load in self.loads:
                clients[load.name], hist = load.metrics.window_stats(warmup_s, end, duration_s - warmup_s)
                overall.merge(hist)
        else:
            warmup_s = min(float(warmup_s), duration_s)  # a run stopped early may end inside its warm-up
            for load in self.loads:
                # throughput is per second of load, not of the drain that follows it
                clients[load.name] = load.metrics.stats(end, duration_s=duration_s - warmup_s)
                overall.merge(load.metrics.latency)
        host_series = self._sampler.finish(end)
        return Report(
            seed=self.seed,
            duration_s=duration_s - warmup_s,
            warmup_s=warmup_s,
            warmup_rule=rule,
            wall_s=wall_s,
            clients=clients,
            components={n.name: n.stats() for n in self.net.hosts.values() if not isinstance(n, Client)},
            network=dict(sorted(self.net.counters.items())),
            events=self._event_log(),
            series={load.name: load.metrics.series() for load in self.loads},
            simulated_s=end - self._t0,
            events_fired=self.sched.fired - self._fired0,
            overall=overall.summary(),
            host_series=host_series,
            topology=self._topology,
            traces=self._traces.records(self._t0, end) if self._traces is not None else [],
            stations=tuple(stations.measures(self._t0 + warmup_s)) if stations is not None else (),
            loads={load.name: describe_load(load) for load in self.loads},
            client_errors={n.name: n.error_table.records() for n in self.net.hosts.values()
                           if isinstance(n, Client) and len(n.error_table)},
            wall_warnings=[str(b) for b in self._watchdog.stop()],
            run_warnings=self._run_warnings(duration_s),
        )

    def _run_warnings(self, duration_s: float) -> list[str]:
        """What the run noticed about itself, for the report (deterministic: it goes into the JSON)."""
        out = []
        if self._shared_random.drew():
            out.append(SHARED_RANDOM_WARNING)
        if not self.loads and not self.net.counters.get("sent"):
            out.append(NOTHING_SENT_WARNING)
        missed = unfired_warning(self._plans, self._plans_done, duration_s)
        if missed is not None:
            out.append(missed)
        return out

    # -- looking at it ---------------------------------------------------------------------
    def diagram(self, fmt: str = "mermaid") -> str:
        """The topology as a Mermaid (``fmt="mermaid"``) or Graphviz (``fmt="dot"``) diagram."""
        if fmt not in ("mermaid", "dot"):
            raise ConfigError(f"fmt must be 'mermaid' or 'dot', got {fmt!r}")
        edges: list[tuple[str, str]] = []
        for load in self.loads:
            edges.append((load.client, load.target))
        for node in self.net.hosts.values():
            for d in node.downstream():
                edges.append((node.name, d))
        edges = list(dict.fromkeys(edges))
        if fmt == "mermaid":
            lines = ["graph LR"]
            for name, node in self.net.hosts.items():
                lines.append(f'    {_ident(name)}["{name}<br/>{node.kind}"]')
            lines += [f"    {_ident(a)} --> {_ident(b)}" for a, b in edges]
        else:
            lines = ["digraph topology {", "    rankdir=LR;"]
            for name, node in self.net.hosts.items():
                lines.append(f'    "{name}" [label="{name}\\n{node.kind}"];')
            lines += [f'    "{a}" -> "{b}";' for a, b in edges]
            lines.append("}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        lines = [f"<Sim seed={self.seed!r} {'realtime' if self.realtime else 'virtual time'}, "
                 f"{counted(len(self.net.hosts), 'host')}, {counted(len(self.loads), 'load')}>"]
        for load in self.loads:
            lines.append(f"  {load!r}")
        for node in self.net.hosts.values():
            if not isinstance(node, Client):
                lines.append(f"  {node!r}")
        return "\n".join(lines)


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


@contextlib.contextmanager
def _plain_interrupt():
    """Ctrl-C during a run comes out as a plain ``KeyboardInterrupt``, not inside nested task groups."""
    try:
        yield
    except BaseExceptionGroup as group:
        interrupts, rest = group.split(KeyboardInterrupt)
        if interrupts is None or (rest is not None and rest.split(trio.Cancelled)[1] is not None):
            raise
        raise KeyboardInterrupt from None


def _inside_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def _stuck_reporter(sched, token):
    """For the watchdog's thread: end the run with a named failure, in trio's own thread."""
    def fail(message: str) -> None:
        if sched.failure is None:
            sched.failure = PlaygroundError(message)
        sched.attention = False
        if sched.on_failure is not None:
            sched.on_failure()

    def report(message: str) -> None:
        sched.attention = True  # a virtual clock firing entries hands over to trio's loop, which runs fail()
        try:
            token.run_sync_soon(fail, message)
        except trio.RunFinishedError:
            pass

    return report

