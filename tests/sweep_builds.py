"""Small build functions for the sweep tests (a module, so worker processes can import them)."""
from __future__ import annotations

from components import AppServer, L4Balancer
from playground import ConfigError, Exponential, OpenLoop, Sim


def servers_build(servers: int = 2, rate: float = 150.0, cpu_ms: float = 10.0) -> Sim:
    """``servers`` app servers of 1 core behind a balancer, Poisson arrivals, exponential work."""
    if not (isinstance(servers, int) and servers >= 1):
        raise ConfigError(f"servers must be an integer >= 1, got {servers!r}")
    sim = Sim()
    names = [f"app{i}" for i in range(servers)]
    for n in names:
        sim.add(AppServer(n, cores=1, cpu_s=Exponential(cpu_ms / 1000)))
    sim.add(L4Balancer("lb", names))
    sim.load(OpenLoop("lb", rate=rate, timeout_s=5.0))
    return sim


def dict_build(params: dict) -> Sim:
    return servers_build(**params)


def flaky_build(servers: int = 2, explode: bool = False) -> Sim:
    sim = servers_build(servers)
    if explode:
        sim.at(1.0, lambda: None)
        raise RuntimeError(f"boom at servers={servers}")
    return sim


CALLS = {"n": 0, "interrupt_at": None}


def interrupting_build(servers: int = 2) -> Sim:
    """Raises KeyboardInterrupt (as Ctrl-C would) on call number ``CALLS["interrupt_at"]``."""
    CALLS["n"] += 1
    if CALLS["n"] == CALLS["interrupt_at"]:
        raise KeyboardInterrupt
    return servers_build(servers)
