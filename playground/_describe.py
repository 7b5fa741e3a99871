"""What was run: the topology and its settings, as plain data a report can keep.

A post-mortem starts with "what exactly was deployed": which hosts, who sends
to whom, and how each was configured. ``describe(sim)`` takes that down when a
run starts (before anything has been counted) so a report, its JSON and its
HTML page say what produced their figures. A host's settings are its public
attributes that hold plain values (numbers, strings, tuples of them, the
frozen ``Distribution`` records); handlers, connections and counters that
only mean something while running are left out, as are values whose text
would change from one process to the next (an object's memory address).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._distributions import Distribution

if TYPE_CHECKING:
    from ._sim import Sim

__all__ = ["describe", "edges"]

# what every host has but is state, not configuration
_RUNTIME = {"up", "sim", "net", "sched", "rng", "served", "rejected", "refused", "reset_count", "handler_errors",
            "crashes", "counters", "last_error", "residence", "slow_factor", "name", "kind", "memory", "oom_kills"}
_PLAIN = (int, float, str, bool, type(None))


def _setting(value) -> Any:
    """``value`` as plain data, or ``None`` when it is not a setting worth showing."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Distribution):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value) and len(value) <= 32:
        return list(value)
    text = repr(value)
    if " at 0x" in text or len(text) > 200 or text.startswith("<"):
        return None
    return text


def edges(sim: "Sim") -> list[tuple[str, str]]:
    """Who sends to whom: loads to their targets, then hosts to their ``downstream()``."""
    out: list[tuple[str, str]] = [(load.client, load.target) for load in sim.loads]
    for node in sim.net.hosts.values():
        out.extend((node.name, d) for d in node.downstream())
    return [e for e in dict.fromkeys(out) if e[0] in sim.net.hosts and e[1] in sim.net.hosts]


def describe(sim: "Sim") -> dict[str, Any]:
    """``{"hosts": {name: {"kind", "region", "settings"}}, "edges": [[a, b]], "loads": [text]}``."""
    hosts = {}
    for name, node in sim.net.hosts.items():
        settings = {}
        for key, value in sorted(vars(node).items()):
            if key.startswith("_") or key in _RUNTIME:
                continue
            plain = _setting(value)
            if plain is not None:
                settings[key] = plain
        hosts[name] = {"kind": node.kind, "region": node.region, "settings": settings}
    loads = []
    for load in sim.loads:
        settings = {k: _setting(v) for k, v in sorted(vars(load).items())
                    if not k.startswith("_") and k not in ("sim", "net", "sched", "rng", "metrics", "stopped")}
        loads.append({"name": load.name, "kind": type(load).__name__, "client": load.client, "target": load.target,
                      "settings": {k: v for k, v in settings.items() if v is not None}})
    return {"hosts": hosts, "edges": [list(e) for e in edges(sim)], "loads": loads}
