"""Fault verbs and scheduled actions: what a ``Sim`` can break, mend and plan.

Faults come in pairs, as in turmoil and Jepsen: ``crash``/``restart`` a host,
``partition``/``repair`` and ``hold``/``release`` the network between two
sides, ``slow``/``heal`` a host or a link. A side is a host, a list of hosts,
or a region (``region=`` and ``other=``): ``sim.partition(region="us",
other="eu")`` cuts every host in one region off from every host in the other,
the way a cloud region's uplink fails.

``sim.at(t_s, action, *args, **kwargs)`` plans a call for the next run. The
plan is checked when the run is validated, not when it fires: the call must
fit the action's signature, and a fault verb's hosts, regions and values must
exist and make sense, so a typo fails before the run instead of becoming a
line in the events.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

from . import limits
from ._errors import ConfigError, PlaygroundError, WiringError, check_at_most, check_positive

if TYPE_CHECKING:
    from ._network import Network
    from ._node import Node

__all__ = ["FaultVerbs"]

_HOST_ARGS = ("name", "a", "b")
_SIM_VERBS = frozenset({"crash", "restart", "partition", "repair", "hold", "release", "slow", "heal"})
_NODE_VERBS = frozenset({"crash", "restart", "slow", "heal"})
_REGION_ARGS = ("region", "other")


class FaultVerbs:
    """The ``Sim``'s fault verbs and ``at``; mixed into ``Sim`` (which provides ``net`` and ``event``)."""

    net: "Network"
    _actions: list[tuple[float, Callable, tuple, dict]]

    def __getitem__(self, name: str) -> "Node":  # pragma: no cover - Sim's
        raise NotImplementedError

    def event(self, description: str) -> None:  # pragma: no cover - Sim's
        raise NotImplementedError

    # -- planning -------------------------------------------------------------------------
    def at(self, t_s: float, action: Callable, *args, **kwargs) -> None:
        """Call ``action(*args, **kwargs)`` at ``t_s`` of the next run: ``sim.at(1, sim.slow, "db", factor=5)``."""
        check_positive("t_s", t_s, allow_zero=True)
        check_at_most("t_s", t_s, limits.MAX_DURATION_S, " s", limits.WHY["duration"])
        if not callable(action):
            hint = (": the result of a call made now, not a plan? Pass the verb and its arguments, "
                    "sim.at(5, sim.crash, 'app2'), not sim.at(5, sim.crash('app2'))") if action is None else ""
            raise ConfigError(f"action must be callable, got {action!r}{hint}")
        try:
            inspect.signature(action).bind(*args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{_plan(t_s, action)}: {exc}") from None
        except ValueError:  # no signature to check (a builtin)
            pass
        self._actions.append((float(t_s), action, args, kwargs))

    def _check_actions(self) -> None:
        """Check every planned fault against the topology (called by ``validate``)."""
        for t_s, action, args, kwargs in self._actions:
            owner = getattr(action, "__self__", None)
            verb = getattr(action, "__name__", "")
            if owner is self and verb in _SIM_VERBS:
                hosts = True
            elif owner in self.net.hosts.values() and verb in _NODE_VERBS:
                hosts = False  # a host's own verb: its arguments are values, not host names
            else:
                continue  # anything else: only its signature was checkable
            try:
                bound = inspect.signature(action).bind(*args, **kwargs)
                bound.apply_defaults()
                self._check_fault_args(bound.arguments, hosts)
            except PlaygroundError as exc:
                raise type(exc)(f"{_plan(t_s, action)}: {exc}") from None

    def _check_fault_args(self, arguments: dict[str, Any], hosts: bool) -> None:
        for key in _HOST_ARGS if hosts else ():
            value = arguments.get(key)
            if value is not None:
                for name in _names(value):
                    self.net.host(name)
        for key in _REGION_ARGS:
            if arguments.get(key) is not None:
                self._region_hosts(arguments[key])
        if "factor" in arguments:
            check_positive("slow factor", arguments["factor"])
        if arguments.get("restart_after_s") is not None:
            check_positive("restart_after_s", arguments["restart_after_s"], allow_zero=True)

    # -- sides -----------------------------------------------------------------------------
    def regions(self) -> dict[str, list[str]]:
        """Region -> the names of its hosts (hosts without a region are left out)."""
        out: dict[str, list[str]] = {}
        for name, node in self.net.hosts.items():
            if node.region is not None:
                out.setdefault(node.region, []).append(name)
        return out

    def _region_hosts(self, region: str) -> list[str]:
        hosts = self.regions().get(region)
        if not hosts:
            known = ", ".join(sorted(self.regions())) or "none"
            raise WiringError(f"unknown region {region!r} (known regions: {known})")
        return hosts

    def _sides(self, verb: str, a, b, region, other) -> tuple[list[str], list[str], str, str]:
        """The two sides of a network fault as host lists, and how the event names them."""
        if (a is None) == (region is None) or (b is None) == (other is None):
            raise ConfigError(f"{verb} needs two sides: hosts (a, b) or regions (region=, other=), "
                              f"got a={a!r}, b={b!r}, region={region!r}, other={other!r}")
        xs = self._region_hosts(region) if region is not None else _names(a)
        ys = self._region_hosts(other) if other is not None else _names(b)
        left = f"region {region}" if region is not None else _label(a)
        right = f"region {other}" if other is not None else _label(b)
        return xs, ys, left, right

    # -- the verbs --------------------------------------------------------------------------
    def crash(self, name: str, restart_after_s: float | None = None) -> None:
        """Crash host ``name`` now (and restart it after ``restart_after_s``, if given)."""
        host = self[name]
        if not host.up and self.running:
            self.event(f"crash {name}: it was down already, nothing done")
        host.crash(restart_after_s)

    def restart(self, name: str) -> None:
        """Bring crashed host ``name`` back, empty."""
        host = self[name]
        if host.up and self.running:
            self.event(f"restart {name}: it was up, nothing done")
        host.restart()

    def partition(self, a=None, b=None, *, region: str | None = None, other: str | None = None,
                  one_way: bool = False) -> None:
        """Lose every message between two sides: hosts ``a`` and ``b`` or regions ``region`` and ``other``."""
        xs, ys, left, right = self._sides("partition", a, b, region, other)
        self.net.partition(xs, ys, one_way=one_way)
        self.event(f"partition {left}{' ->' if one_way else ' <->'} {right}")

    def repair(self, a=None, b=None, *, region: str | None = None, other: str | None = None,
               one_way: bool = False) -> None:
        """Undo ``partition`` between the same two sides."""
        xs, ys, left, right = self._sides("repair", a, b, region, other)
        self.net.repair(xs, ys, one_way=one_way)
        self.event(f"repair {left} {right}")

    def hold(self, a=None, b=None, *, region: str | None = None, other: str | None = None,
             one_way: bool = False) -> None:
        """Keep messages between two sides at the link (delayed, not lost) until ``release``."""
        xs, ys, left, right = self._sides("hold", a, b, region, other)
        self.net.hold(xs, ys, one_way=one_way)
        self.event(f"hold {left} {right}")

    def release(self, a=None, b=None, *, region: str | None = None, other: str | None = None,
                one_way: bool = False) -> None:
        """Deliver, in order, what ``hold`` kept between two sides, and stop holding."""
        xs, ys, left, right = self._sides("release", a, b, region, other)
        self.net.release(xs, ys, one_way=one_way)
        self.event(f"release {left} {right}")

    def slow(self, a, b=None, factor: float = 10.0) -> None:
        """Make host ``a``'s work ``factor`` times slower; with ``b``, the link between ``a`` and ``b``."""
        if b is None:
            self[a].slow(factor)
        else:
            self.net.slow(a, b, factor)
            self.event(f"slow link {a} {b} x{factor:g}")

    def heal(self, a, b=None) -> None:
        """Undo ``slow`` on host ``a`` (or on the link between ``a`` and ``b``)."""
        if b is None:
            self[a].heal()
        else:
            self.net.heal(a, b)
            self.event(f"heal link {a} {b}")


def _names(hosts) -> list[str]:
    if isinstance(hosts, str):
        return [hosts]
    try:
        return [h if isinstance(h, str) else h.name for h in hosts]
    except (TypeError, AttributeError):
        raise ConfigError(f"hosts must be a host name or a list of them, got {hosts!r}") from None


def _label(hosts) -> str:
    return hosts if isinstance(hosts, str) else str(_names(hosts))


def _plan(t_s: float, action: Callable) -> str:
    return f"sim.at({t_s:g}, {getattr(action, '__name__', action)!r})"


def unfired_warning(plans, done: set[int], run_s: float) -> str | None:
    """The warning for the ``plans`` not ``done`` (indices) when a run ended: each run replays every plan."""
    missed = [_call(t_s, action, args, kwargs) for i, (t_s, action, args, kwargs) in enumerate(plans)
              if i not in done]
    if not missed:
        return None
    shown = "; ".join(missed[:3]) + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")
    return (f"{shown}: did not happen, the run lasted {run_s:g} s (sim.at times count from the start of "
            "each run: run longer, or plan it earlier)")


def _call(t_s: float, action: Callable, args: tuple, kwargs: dict) -> str:
    owner = getattr(action, "__self__", None)
    name = getattr(action, "__name__", repr(action))
    prefix = "sim." if owner is not None and isinstance(owner, FaultVerbs) else ""
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"sim.at({t_s:g}, {prefix}{name}{''.join(', ' + a for a in shown)})"


def run_action(item) -> None:
    """A planned action is due (a scheduler callback)."""
    sim, action, args, kwargs, plan = item
    if not sim.running:  # scheduled beyond the end of its run
        return
    sim._plans_done.add(plan)
    try:
        action(*args, **kwargs)
    except Exception as exc:  # a failure at run time (checked plans rarely get here) is noted, not fatal
        sim.event(f"action {getattr(action, '__name__', action)!r} failed: {exc!r}")
