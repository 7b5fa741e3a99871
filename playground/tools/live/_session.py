"""A live session: one simulation running in real time, sampled, with controls.

The session owns the running ``Sim`` (``sim.serve_async``), a front-door
client host through which real HTTP requests enter, the front door's own
client figures, and a sampler that publishes a snapshot once a simulated
second (and at once after every control, so a click shows within a moment).
Web handlers read ``snapshot`` and wait with ``wait_for_change``; they never
touch the simulation except through ``control`` and ``call``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import trio

from playground import Request, RequestError, Response
from playground._metrics import ClientMetrics
from playground._sim import Client

from ._controls import Controls
from ._sampler import Sampler
from ._topology import edges, entry_host, layout

if TYPE_CHECKING:
    from playground import Report, Sim

__all__ = ["LiveSession"]


class LiveSession:
    """Runs ``sim`` open-ended; ``await nursery.start(session.run)`` returns once it is up.

        session = LiveSession(default_topology())
        async with trio.open_nursery() as nursery:
            await nursery.start(session.run)
            response = await session.call(Request("GET", "/item/1"))
    """

    def __init__(self, sim: "Sim", *, entry: str | None = None, frontdoor: str = "frontdoor",
                 interval_s: float = 1.0, max_rate_per_s: float = 5000.0) -> None:
        self.sim = sim
        if frontdoor not in sim.net.hosts:
            sim.add(Client(frontdoor))
        self.frontdoor = frontdoor
        self.entry = entry or entry_host(sim)
        sim.net.host(self.entry)  # a clear WiringError for an unknown entry
        self.interval_s = interval_s
        self.controls = Controls(sim, max_rate_per_s=max_rate_per_s, protected=(frontdoor,))
        self.sampler = Sampler()
        self.door: ClientMetrics | None = None
        self.snapshot: dict[str, Any] = {}
        self.version = 0
        self.report: "Report | None" = None
        self._changed = trio.Event()

    # -- running --------------------------------------------------------------------
    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> "Report | None":
        """Run the simulation until ``stop()`` (or cancellation); returns its report."""
        self.sampler.reset()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve_sim, nursery.cancel_scope)
            sim = self.sim
            self.door = ClientMetrics(self.frontdoor, sim.sched.now - sim.now)
            self.publish()
            nursery.start_soon(self._tick)
            task_status.started()
        return self.report

    async def _serve_sim(self, done: trio.CancelScope, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.report = await self.sim.serve_async(drain_s=0.5, task_status=task_status)
        self.publish()
        done.cancel()  # the simulation ended: stop sampling too

    async def _tick(self) -> None:
        sim = self.sim
        while True:
            # wake just after each whole simulated second, when a per-second bucket is complete
            next_t = (math.floor(sim.now / self.interval_s) + 1) * self.interval_s + 0.01
            await sim.sched.sleep(max(0.0, next_t - sim.now))
            self.publish()

    def door_report(self, counters: dict[str, int] | None = None) -> "Report | None":
        """The run's report with the front door's own client figures (the real requests that came
        in through it) beside the loads', and what the door refused before the simulation saw it."""
        report, door = self.report, self.door
        if report is None or door is None:
            return report
        end = door.start + report.simulated_s
        clients = {**report.clients, self.frontdoor: door.stats(end, duration_s=report.duration_s)}
        events = list(report.events)
        if counters is not None:
            refused = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counters.items() if k != "requests" and v)
            events.append((round(report.simulated_s, 9), f"front door: {counters.get('requests', 0)} HTTP requests, "
                                                         f"{door.sent} sent in; refused at the door: {refused or 'none'}"))
        self.report = dataclasses.replace(report, clients=clients, events=events)
        return self.report

    def stop(self) -> None:
        """End the run: loads stop, the report is made, ``run`` returns."""
        self.sim.stop()

    # -- what web handlers use ------------------------------------------------------
    def metrics(self) -> list[ClientMetrics]:
        out = [load.metrics for load in self.sim.loads if load.metrics is not None]
        if self.door is not None:
            out.append(self.door)
        return out

    def publish(self) -> None:
        if not self.sim.running and self.snapshot:
            self.snapshot = {**self.snapshot, "running": False, "points": []}
        elif self.sim.running:
            self.snapshot = self.sampler.sample(self.sim, self.metrics())
            self.snapshot["loads"] = self.controls.loads()
            self.snapshot["load_running"] = self.controls.load_running
        self.version += 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_for_change(self, version: int, timeout_s: float) -> int:
        """Wait until a snapshot newer than ``version`` is published (or ``timeout_s``)."""
        if self.version == version:
            with trio.move_on_after(timeout_s):
                await self._changed.wait()
        return self.version

    def control(self, action: str, payload: Any) -> str:
        """Apply a control (raises ``ControlError``) and publish at once."""
        done = self.controls.apply(action, payload)
        self.publish()
        return done

    def topology(self) -> dict[str, Any]:
        sim = self.sim
        links = edges(sim, ((self.frontdoor, self.entry),))
        kinds = {name: node.kind for name, node in sim.net.hosts.items()}
        names = list(sim.net.hosts)
        return {"nodes": [{"name": n, "kind": kinds[n], **pos}
                          for n, pos in layout(names, kinds, links).items()],
                "edges": [list(e) for e in links], "entry": self.entry, "frontdoor": self.frontdoor}

    def history(self) -> list[dict[str, Any]]:
        return list(self.sampler.history)

    async def call(self, request: Request, timeout_s: float = 10.0) -> tuple[Response | RequestError, float]:
        """Send ``request`` from the front door to the entry host; (answer or error, simulated seconds)."""
        sim = self.sim
        request.client = self.frontdoor
        request.id = sim._next_request_id()
        start = sim.sched.now
        try:
            result: Response | RequestError = await sim.net.call(self.frontdoor, self.entry, request, timeout_s)
        except RequestError as exc:
            result = exc
        now = sim.sched.now
        door = self.door
        if door is not None:
            door.sent += 1
            if isinstance(result, Response) and result.status < 500:
                door.record_ok(now, now - start, result.status)
            elif isinstance(result, Response):
                door.record_error(now, "5xx", result.status)
            else:
                door.record_error(now, result.kind)
        return result, now - start
