"""An autoscaler: a group of servers that grows and shrinks with the load.

In the real world this is an AWS Auto Scaling group behind a load balancer
(or a Kubernetes Deployment with a HorizontalPodAutoscaler): every
``interval_s`` it measures the fleet, asks a scaling policy
(``components.scaling``) for a desired size, clamps it to ``min_size`` ..
``max_size`` and acts. A new server is billed from the moment it is launched
but takes ``boot_s`` (image, process start, warm-up) before it registers with
the balancer and takes traffic - the lag that makes a spike hurt before help
arrives. After a scale-out the group waits ``cooldown_out_s`` before scaling
out again (the new servers' effect must show first), after any scaling
``cooldown_in_s`` before scaling in. Scale-in drains a server: it leaves the
balancer first, finishes what it holds (at most ``drain_s``), then stops.

Servers are built by a factory, turmoil-style: ``factory(name) -> Node``, called
with ``"web-1"``, ``"web-2"``, ... The initial ``min_size`` servers exist when
the group is added to the ``Sim`` and are in service from the start; the
others are added to the running simulation.

    web = sim.add(AutoScaler("web", factory=lambda name: AppServer(name, cpu_s=0.02), balancer="lb",
                             min_size=2, max_size=20, policy=TargetTracking(cpu_utilisation=0.6)))

The group is a host too (its control loop is its background task; ``GET /``
answers its figures); its decisions appear on the run's timeline as events
and its fleet size over time gives the server-hours a bill follows. Left out:
availability zones, instance types and spot interruptions, health-check
replacement of failed servers (a crashed server restarts by itself), and
lifecycle hooks.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from playground import ConfigError, Footprint, Node, Request, Response, TimeWeighted, WiringError
from playground._errors import check_positive

from .scaling import FleetMetrics, QueueDepth

__all__ = ["AutoScaler"]

DRAIN_POLL_S = 0.1


def _count(name: str, value, lo: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
        raise ConfigError(f"{name} must be an integer >= {lo}, got {value!r}")


def _busy_integral(node: Node, now: float) -> tuple[float, int]:
    """(busy-slot-seconds so far, slots): cores for an app server, workers for another host."""
    cores = getattr(node, "cores", None)
    if cores is not None and hasattr(cores, "busy"):
        return cores.busy.integral(now), cores.capacity
    return node._busy.integral(now), node.concurrency or 1


class _Member:
    __slots__ = ("name", "node", "state", "since", "busy_mark", "launched_at", "stopped_at")

    def __init__(self, name: str, node: Node, state: str, since: float) -> None:
        self.name = name
        self.node = node
        self.state = state  # booting -> in_service -> draining -> stopped
        self.since = since
        self.busy_mark = 0.0
        self.launched_at = since  # billed from here ...
        self.stopped_at: float | None = None  # ... to here


class AutoScaler(Node):
    """A group of servers built by ``factory``, sized by ``policy`` between ``min_size`` and ``max_size``.

    Defaults: 1 to 10 servers, a decision every 10 s, 30 s to boot, 30 s
    cooldown after a scale-out, 120 s after any scaling before a scale-in,
    30 s of draining at most.
    """

    kind = "autoscaler"

    def __init__(self, name: str, *, factory: Callable[[str], Node], policy, balancer: str | None = None,
                 min_size: int = 1, max_size: int = 10, boot_s: float = 30.0, cooldown_out_s: float = 30.0,
                 cooldown_in_s: float = 120.0, interval_s: float = 10.0, drain_s: float = 30.0,
                 region: str | None = None) -> None:
        super().__init__(name, region=region)
        if not callable(factory):
            raise ConfigError(f"factory must be a callable name -> Node, got {factory!r}")
        if balancer is not None and not (isinstance(balancer, str) and balancer):
            raise ConfigError(f"balancer must be the name of a balancer host or None, got {balancer!r}")
        if not callable(getattr(policy, "decide", None)):
            raise ConfigError(f"policy must have a decide(metrics) method (TargetTracking, StepScaling, "
                              f"QueueDepth), got {policy!r}")
        _count("min_size", min_size, 1)
        _count("max_size", max_size, 1)
        if max_size < min_size:
            raise ConfigError(f"max_size must be >= min_size ({min_size}), got {max_size!r}")
        check_positive("boot_s", boot_s, allow_zero=True)
        check_positive("cooldown_out_s", cooldown_out_s, allow_zero=True)
        check_positive("cooldown_in_s", cooldown_in_s, allow_zero=True)
        check_positive("interval_s", interval_s)
        check_positive("drain_s", drain_s, allow_zero=True)
        self.factory = factory
        self.balancer = balancer
        self.policy = policy
        self.min_size = min_size
        self.max_size = max_size
        self.boot_s = float(boot_s)
        self.cooldown_out_s = float(cooldown_out_s)
        self.cooldown_in_s = float(cooldown_in_s)
        self.interval_s = float(interval_s)
        self.drain_s = float(drain_s)
        self.members: dict[str, _Member] = {}
        self._serial = 0
        self._reset_figures(0.0)

    # -- wiring -----------------------------------------------------------------------------
    def on_added(self, sim) -> None:
        for _ in range(self.min_size):
            node = self._build()
            sim.add(node, region=node.region or self.region)
            self.members[node.name] = _Member(node.name, node, "in_service", 0.0)
        lb = sim.net.hosts.get(self.balancer) if self.balancer else None
        if callable(getattr(lb, "add_backend", None)):  # else validate() registers them (or says why not)
            for name in self.members:
                lb.add_backend(name)

    def _build(self) -> Node:
        self._serial += 1
        name = f"{self.name}-{self._serial}"
        node = self.factory(name)
        if not isinstance(node, Node):
            raise ConfigError(f"factory must return a Node (a component), got {node!r}")
        if node.name != name:
            raise ConfigError(f"factory must name the server it builds {name!r}, got {node.name!r}")
        node.footprint = lambda: None  # priced through its group, for the time it was launched (footprint())
        return node

    def downstream(self) -> tuple[str, ...]:
        return ()  # the group sends no requests; the balancer reaches its servers

    def validate(self, sim) -> None:
        queue = getattr(self.policy, "queue", None)
        if isinstance(self.policy, QueueDepth) and queue is not None and queue not in sim.net.hosts:
            raise WiringError(f"AutoScaler {self.name!r}: QueueDepth queue {queue!r} is not a host")
        if self.balancer is None:  # workers that pull their work (a WorkerPool) need no balancer
            return
        lb = sim.net.hosts.get(self.balancer)
        if lb is None:
            known = ", ".join(sorted(sim.net.hosts)) or "none"
            raise WiringError(f"AutoScaler {self.name!r}: unknown balancer host {self.balancer!r} (known hosts: {known})")
        if not callable(getattr(lb, "add_backend", None)):
            raise WiringError(f"AutoScaler {self.name!r}: {self.balancer!r} is not a balancer (L7Balancer or "
                              f"L4Balancer), got {lb!r}")
        queue = getattr(self.policy, "queue", None)
        if isinstance(self.policy, QueueDepth) and queue is not None and queue not in sim.net.hosts:
            raise WiringError(f"AutoScaler {self.name!r}: QueueDepth queue {queue!r} is not a host")
        for m in self.members.values():
            if m.state == "in_service":
                lb.add_backend(m.name)

    # -- figures over time -------------------------------------------------------------------
    def _reset_figures(self, now: float) -> None:
        self._billed = TimeWeighted(now, float(self._count("booting", "in_service", "draining")))
        self._serving = TimeWeighted(now, float(self._count("in_service")))
        self.fleet: list[tuple[float, int, int]] = []
        self.launched = 0
        self.stopped = 0
        self.scale_outs = 0
        self.scale_ins = 0
        self.desired = self._count("in_service", "booting")
        self.last_reason = ""
        self._last_out = -float("inf")
        self._last_scaling = -float("inf")
        self._t0 = now

    def _count(self, *states: str) -> int:
        return sum(1 for m in self.members.values() if m.state in states)

    def _changed(self) -> None:
        now = self.sched.now
        billed, serving = self._count("booting", "in_service", "draining"), self._count("in_service")
        self._billed.set(billed, now)
        self._serving.set(serving, now)
        row = (round(now - self._t0, 6), serving, billed)
        if self.fleet and self.fleet[-1][0] == row[0]:
            self.fleet[-1] = row  # several changes at one instant: keep where they ended
        else:
            self.fleet.append(row)

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        for name, m in list(self.members.items()):  # what the last run left half done
            if m.state == "booting":  # never joined: as if the launch had not happened
                del self.members[name]
            elif m.state == "draining":
                m.state = "stopped"
                m.stopped_at = self.sched.now
                sim._stop_host(m.node)
        self._reset_figures(self.sched.now)
        self.fleet.append((0.0, self._count("in_service"), self._count("booting", "in_service", "draining")))

    # -- the control loop ----------------------------------------------------------------------
    async def run(self) -> None:
        now = self.sched.now
        for m in self.members.values():
            if m.state == "in_service":
                m.busy_mark = _busy_integral(m.node, now)[0]
        while True:
            await self.sleep(self.interval_s)
            self.evaluate()

    def measure(self) -> FleetMetrics:
        """The fleet's figures since the last measurement (and a new measurement window)."""
        now = self.sched.now
        busy = slots = 0.0
        in_system = 0
        for m in self.members.values():
            if m.state != "in_service":
                continue
            area, n = _busy_integral(m.node, now)
            span = min(self.interval_s, now - m.since)
            if span > 0:
                busy += area - m.busy_mark
                slots += n * span
            m.busy_mark = area
            in_system += len(m.node._inflight)
        depth = 0
        queue = getattr(self.policy, "queue", None)
        if queue is not None:
            depth = getattr(self.sim[queue], "depth", 0)
        return FleetMetrics(size=self._count("in_service", "booting"), in_service=self._count("in_service"),
                            booting=self._count("booting"), cpu_utilisation=busy / slots if slots else 0.0,
                            in_system=in_system, queue_depth=depth)

    def evaluate(self) -> None:
        """Measure, ask the policy, act (called every ``interval_s``)."""
        now = self.sched.now
        m = self.measure()
        wanted, reason = self.policy.decide(m)
        desired = max(self.min_size, min(self.max_size, int(wanted)))
        self.desired, self.last_reason = desired, reason
        if desired > m.size and now - self._last_out >= self.cooldown_out_s:
            self.scale_outs += 1
            self._last_out = self._last_scaling = now
            self.sim.event(f"{self.name}: scale out {m.size} -> {desired} ({reason})")
            for _ in range(desired - m.size):
                self._launch()
        elif desired < m.in_service and m.booting == 0 and now - self._last_scaling >= self.cooldown_in_s:
            self.scale_ins += 1
            self._last_scaling = now
            self.sim.event(f"{self.name}: scale in {m.in_service} -> {desired} ({reason})")
            newest_first = [x for x in reversed(list(self.members.values())) if x.state == "in_service"]
            for member in newest_first[:m.in_service - desired]:
                self._drain(member)

    def _launch(self) -> None:
        node = self._build()  # billed from now; it joins the simulation when it has booted
        member = self.members[node.name] = _Member(node.name, node, "booting", self.sched.now)
        member.launched_at = self.sched.now
        self.launched += 1
        self._changed()
        self.sched.call_later(self.boot_s, self._booted, member)

    def _booted(self, member: _Member) -> None:
        if member.state != "booting" or not self.sim.running:
            return
        member.state = "in_service"
        member.since = self.sched.now
        self.sim.add(member.node, region=member.node.region or self.region)  # started in the running Sim
        member.busy_mark = _busy_integral(member.node, self.sched.now)[0]
        if self.balancer:
            self.sim[self.balancer].add_backend(member.name)
        self._changed()
        self.sim.event(f"{self.name}: {member.name} in service")

    def _drain(self, member: _Member) -> None:
        member.state = "draining"
        member.since = self.sched.now
        if self.balancer:
            self.sim[self.balancer].remove_backend(member.name)
        if callable(getattr(member.node, "drain", None)):  # a worker pool stops taking messages
            member.node.drain()
        self._changed()
        self.sched.call_later(DRAIN_POLL_S, self._drain_poll, member)

    def _drain_poll(self, member: _Member) -> None:
        if member.state != "draining" or not self.sim.running:
            return
        node = member.node
        busy = node.in_progress() if callable(getattr(node, "in_progress", None)) else len(node._inflight)
        if self.balancer:
            busy += self.sim[self.balancer].active_requests(member.name)
        if busy and self.sched.now - member.since < self.drain_s:
            self.sched.call_later(DRAIN_POLL_S, self._drain_poll, member)
            return
        member.state = "stopped"
        member.stopped_at = self.sched.now
        self.sim._stop_host(member.node)
        self.stopped += 1
        self._changed()
        self.sim.event(f"{self.name}: {member.name} stopped after draining"
                       + (f" ({busy} requests cut)" if busy else ""))

    # -- looking at it -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Servers in service now."""
        return self._count("in_service")

    def server_seconds(self) -> float:
        """Server-seconds billed this run (launched until stopped, booting and draining included)."""
        return self._billed.integral(self.sched.now) if self.sched else 0.0

    def footprint(self) -> Footprint | None:
        """The group's servers, each weighted by the share of the run it was billed (launched to stopped).

        ``report.cost()`` prices every host for a whole month; a group priced
        this way costs what its average fleet would, so cost follows the size.
        """
        now = self.sched.now if self.sched else 0.0
        span = now - self._t0
        cores = memory = 0.0
        for m in self.members.values():
            fp = type(m.node).footprint(m.node)
            if fp is None or fp.kind != "app":
                continue
            start = max(m.launched_at, self._t0)
            end = now if m.stopped_at is None else m.stopped_at
            share = max(0.0, end - start) / span if span > 0 else (1.0 if m.state == "in_service" else 0.0)
            cores += fp.cores * share
            memory += fp.memory_gb * share
        return Footprint("app", cores=cores, memory_gb=memory) if cores or memory else None

    async def handle(self, request: Request) -> Response:
        return Response(200, {"content-type": "application/json"}, json.dumps(self.detail()).encode())

    def detail(self) -> dict[str, Any]:
        now = self.sched.now if self.sched else 0.0
        seconds = self.server_seconds()
        return {
            "policy": repr(self.policy),
            "min_size": self.min_size,
            "max_size": self.max_size,
            "in_service": self._count("in_service"),
            "booting": self._count("booting"),
            "draining": self._count("draining"),
            "desired": self.desired,
            "launched": self.launched,
            "stopped": self.stopped,
            "scale_outs": self.scale_outs,
            "scale_ins": self.scale_ins,
            "peak_in_service": int(self._serving.peak),
            "mean_in_service": self._serving.mean(now),
            "server_seconds": seconds,
            "server_hours": seconds / 3600.0,
            "fleet": [list(row) for row in self.fleet],
        }
