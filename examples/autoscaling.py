"""A traffic spike against three fleets: sized for the base load, sized for the peak, and autoscaled.

The load is 30 requests/s, rising to 120/s for three minutes (a ``Spike``).
Each app server has 2 cores and spends 100 ms of CPU per request (20
requests/s at 100%). A fixed fleet of 3 servers is comfortable at the base
load and drowns in the spike; a fixed fleet of 10 sails through it and pays
for 10 servers all the time; an autoscaled group (3..12 servers, target 60%
CPU, 30 s to boot) pays for what the load needs, at the price of the first
half-minute of the spike: p99 climbs before the new servers are ready.

    python examples/autoscaling.py
"""
from __future__ import annotations

from components import AppServer, AutoScaler, L7Balancer, TargetTracking
from playground import Exponential, OpenLoop, Sim, Spike

SPIKE = Spike(base_per_s=30, peak_per_s=120, at_s=60, for_s=180)
DURATION_S = 360.0


def server(name: str) -> AppServer:
    return AppServer(name, cores=2, cpu_s=Exponential(0.1), queue_limit=50)


def build(fleet: str, seed: int = 1) -> Sim:
    """``fleet`` is "base" (3 fixed servers), "peak" (10 fixed) or "auto" (3..12, target 60% CPU)."""
    sim = Sim(seed=seed)
    if fleet == "auto":
        sim.add(L7Balancer("lb", [], retries=0))
        sim.add(AutoScaler("web", factory=server, balancer="lb", min_size=3, max_size=12,
                           policy=TargetTracking(cpu_utilisation=0.6), boot_s=30, interval_s=10,
                           cooldown_out_s=20, cooldown_in_s=60, drain_s=10))
    else:
        n = 3 if fleet == "base" else 10
        for i in range(n):
            sim.add(server(f"web-{i + 1}"))
        sim.add(L7Balancer("lb", [f"web-{i + 1}" for i in range(n)], retries=0))
    sim.load(OpenLoop("lb", rate=SPIKE, timeout_s=5.0))
    return sim


def window(report, t0: float, t1: float) -> dict:
    """Requests answered, errors and the worst per-second p99 between ``t0`` and ``t1``."""
    rows = [r for r in report.series[next(iter(report.series))] if t0 <= r.t_s < t1]
    return {"ok": sum(r.ok for r in rows), "errors": sum(r.errors for r in rows),
            "worst_p99_s": max((r.p99_s for r in rows), default=0.0)}


def measure(fleet: str, seed: int = 1) -> dict:
    report = build(fleet, seed).run(DURATION_S)
    if fleet == "auto":
        server_s = report.component("web").detail["server_seconds"]
    else:
        server_s = (3 if fleet == "base" else 10) * report.duration_s
    spike = window(report, SPIKE.at_s, SPIKE.at_s + SPIKE.for_s)
    lag = window(report, SPIKE.at_s, SPIKE.at_s + 40)  # before the first new servers are in service
    settled = window(report, SPIKE.at_s + 100, SPIKE.at_s + SPIKE.for_s)
    ready = [t for t, e in report.events if e.endswith("in service")]
    return {"report": report, "server_hours": server_s / 3600, "cost": report.cost().total_per_month, "spike": spike, "lag": lag, "settled": settled,
            "errors": report.failed,
            "first_ready_s": ready[0] if ready else None}


def main() -> dict:
    results = {fleet: measure(fleet) for fleet in ("base", "peak", "auto")}
    print(f"Spike: {SPIKE.base_per_s:g} -> {SPIKE.peak_per_s:g} requests/s at t={SPIKE.at_s:g} s for "
          f"{SPIKE.for_s:g} s; {DURATION_S:g} s in all")
    labels = {"base": "fixed 3 (base)", "peak": "fixed 10 (peak)", "auto": "autoscaled 3..12"}
    for fleet, r in results.items():
        print(f"{labels[fleet]:>17}: spike p99 (worst second) {r['spike']['worst_p99_s'] * 1000:7,.0f} ms, "
              f"errors {r['errors']:6,}, server-hours {r['server_hours']:.2f}")
    print("report.cost() at this rate for a month: " + ", ".join(
        f"{labels[f]} ${r['cost']:,.0f}" for f, r in results.items()))
    auto = results["auto"]
    print(f"Autoscaled lag: first new server in service at t={auto['first_ready_s']:g} s; worst p99 "
          f"{auto['lag']['worst_p99_s'] * 1000:,.0f} ms in the first 40 s of the spike, "
          f"{auto['settled']['worst_p99_s'] * 1000:,.0f} ms once the fleet had grown")
    print("Scaling decisions:")
    for t, e in auto["report"].events:
        if "scale" in e:
            print(f"  t={t:g} s {e}")
    return results


if __name__ == "__main__":
    main()
