"""The dashboard's buttons, as plain synchronous calls with validated inputs.

Each control is a verb on the running simulation - start/stop the load,
change its users or rate, crash/restart a host, partition/repair a link - and
``apply(action, payload)`` checks a JSON payload before acting, so that a bad
request becomes a ``ControlError`` with an HTTP status and a message naming
the bad value (unknown host -> 404, a malformed value -> 400), never a
half-applied change.

Start/stop acts on open loops (``OpenLoop``, ``Population``): stopping sets
their rate to zero and starting restores it, so no task is restarted. A
``ClosedLoop`` keeps its users; change how many with ``users``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground._errors import PlaygroundError
from playground._workload import Shape

if TYPE_CHECKING:
    from playground import Sim

__all__ = ["Controls", "ControlError", "ACTIONS"]

ACTIONS = ("start", "stop", "load", "crash", "restart", "partition", "repair")


class ControlError(PlaygroundError):
    """A control request that cannot be carried out; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Paused(Shape):
    """No arrivals; remembers the shape to go back to."""

    before: Shape

    def rate_at(self, t_s: float) -> float:
        return 0.0

    @property
    def peak(self) -> float:
        return 0.0


def _int_in(name: str, value, lo: int, hi: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
        raise ControlError(400, f"{name} must be an integer between {lo} and {hi}, got {value!r}")
    return value


def _float_in(name: str, value, lo: float, hi: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and lo < value <= hi):
        raise ControlError(400, f"{name} must be a number > {lo:g} and <= {hi:g}, got {value!r}")
    return float(value)


class Controls:
    """Verbs on a running ``Sim``. ``protected`` hosts (the front door's client) cannot be crashed.

        controls = Controls(sim)
        controls.apply("crash", {"node": "app1"})
        controls.apply("load", {"users": 200})
    """

    def __init__(self, sim: "Sim", *, max_rate_per_s: float = 5000.0, max_users: int = 10_000_000,
                 max_closed_loop_users: int = 100_000, protected: tuple[str, ...] = ()) -> None:
        self.sim = sim
        self.max_rate_per_s = max_rate_per_s
        self.max_users = max_users
        self.max_closed_loop_users = max_closed_loop_users
        self.protected = frozenset(protected)

    # -- checks ------------------------------------------------------------------
    def _node(self, payload: dict, key: str = "node") -> str:
        name = payload.get(key)
        if not isinstance(name, str) or not name:
            raise ControlError(400, f"{key!r} must be a host name, got {name!r}")
        node = self.sim.net.hosts.get(name)
        if node is None:
            known = ", ".join(n for n in self.sim.net.hosts if n not in self.protected)
            raise ControlError(404, f"unknown host {name!r} (known hosts: {known})")
        if name in self.protected or node.kind == "client":
            raise ControlError(400, f"host {name!r} is a client; only servers can be crashed or cut off")
        return name

    def _link(self, payload: dict) -> tuple[str, str]:
        a, b = payload.get("a"), payload.get("b")
        for key, name in (("a", a), ("b", b)):
            if not isinstance(name, str) or not name:
                raise ControlError(400, f"{key!r} must be a host name, got {name!r}")
            if name not in self.sim.net.hosts:
                known = ", ".join(self.sim.net.hosts)
                raise ControlError(404, f"unknown host {name!r} (known hosts: {known})")
        if a == b:
            raise ControlError(400, f"a link joins two different hosts, got {a!r} twice")
        return a, b

    # -- the verbs ---------------------------------------------------------------
    def crash(self, node: str) -> None:
        self.sim.crash(node)

    def restart(self, node: str) -> None:
        self.sim.restart(node)

    def partition(self, a: str, b: str) -> None:
        self.sim.partition(a, b)

    def repair(self, a: str, b: str) -> None:
        self.sim.repair(a, b)

    def _open_loops(self):
        return [load for load in self.sim.loads if hasattr(load, "shape")]

    @property
    def load_running(self) -> bool:
        opens = self._open_loops()
        return not opens or any(not isinstance(load.shape, Paused) for load in opens)

    def stop_load(self) -> None:
        for load in self._open_loops():
            if not isinstance(load.shape, Paused):
                load.shape = Paused(load.shape)
        self.sim.event("load stopped")

    def start_load(self) -> None:
        for load in self._open_loops():
            if isinstance(load.shape, Paused):
                load.shape = load.shape.before
        self.sim.event("load started")

    def set_load(self, users: int | None = None, rate_per_s: float | None = None) -> None:
        """Change every load's users (closed loops, populations) or total rate (open loops)."""
        if users is None and rate_per_s is None:
            raise ControlError(400, "give 'users' or 'rate' (requests per second)")
        if users is not None:
            _int_in("users", users, 1, self.max_users)
        if rate_per_s is not None:
            _float_in("rate", rate_per_s, 0.0, self.max_rate_per_s)
        loads = self.sim.loads
        if not loads:
            raise ControlError(409, "this topology has no load to change")
        if users is not None:
            for load in loads:
                self._check_users(load, users)
        for load in loads:
            paused = isinstance(getattr(load, "shape", None), Paused)
            if users is not None and hasattr(load, "set_users"):
                load.set_users(users)
            if rate_per_s is not None and hasattr(load, "set_rate"):
                if hasattr(load, "per_user"):
                    load.per_user = rate_per_s / load.users
                load.set_rate(rate_per_s)
            if paused:
                load.shape = Paused(load.shape)
        what = f"users {users}" if users is not None else f"rate {rate_per_s:g}/s"
        self.sim.event(f"load {what}")

    def _check_users(self, load, users: int) -> None:
        """Refuse a user count the live server could not carry: too many requests, or too much memory."""
        if hasattr(load, "per_user"):  # a population: open loop, a rate and no memory per user
            if users * load.per_user > self.max_rate_per_s:
                raise ControlError(400, f"users={users} would send {users * load.per_user:g} requests per second; "
                                        f"the limit is {self.max_rate_per_s:g}")
            return
        think = getattr(load, "think_time_s", None)
        if think is None:
            return
        # each closed-loop user is state (a connection, a cookie jar, a pending timer): bound them
        if users > self.max_closed_loop_users:
            raise ControlError(400, f"users={users} closed-loop users would each keep state in memory; "
                                    f"the limit is {self.max_closed_loop_users}")
        mean_s = think.mean_s
        if mean_s > 0 and users / mean_s > self.max_rate_per_s:
            raise ControlError(400, f"users={users} thinking {mean_s:g} s on average could send "
                                    f"{users / mean_s:g} requests per second; the limit is {self.max_rate_per_s:g}")

    def loads(self) -> list[dict[str, Any]]:
        """What the loads are doing now (for the dashboard)."""
        out = []
        for load in self.sim.loads:
            shape = getattr(load, "shape", None)
            paused = isinstance(shape, Paused)
            if shape is not None:
                base = shape.before if paused else shape
                rate = base.rate_at(self.sim.now) if self.sim.running else base.peak
            else:
                rate = None
            out.append({"name": load.name, "kind": type(load).__name__, "target": load.target,
                        "users": getattr(load, "users", None), "rate_per_s": rate, "running": not paused})
        return out

    # -- from JSON ------------------------------------------------------------------
    def apply(self, action: str, payload: Any) -> str:
        """Carry out ``action`` with a JSON ``payload``; returns what was done, in words."""
        if action not in ACTIONS:
            raise ControlError(404, f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise ControlError(400, f"the body must be a JSON object, got {type(payload).__name__}")
        if not self.sim.running:
            raise ControlError(409, "the simulation is not running")
        if action == "start":
            self.start_load()
            return "load started"
        if action == "stop":
            self.stop_load()
            return "load stopped"
        if action == "load":
            self.set_load(payload.get("users"), payload.get("rate"))
            return "load changed"
        if action in ("crash", "restart"):
            name = self._node(payload)
            getattr(self, action)(name)
            return f"{action} {name}"
        a, b = self._link(payload)
        getattr(self, action)(a, b)
        return f"{action} {a} {b}"
