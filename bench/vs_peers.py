"""The same M/M/c queue in playground, SimPy and Ciw: do they agree, and how fast is each?

The model: Poisson arrivals (``--rate``, 1000/s), exponential service (``--mu``,
150/s per server), ``--servers`` (8) servers behind one FIFO queue, about
``--requests`` (100,000) customers, i.e. ``requests / rate`` simulated seconds.
Each library runs it the way its users would write it:

* playground: ``OpenLoop`` feeding ``components.AppServer`` with ``cores=c``,
  ``workers=c``, no accept-queue limit and ``cpu_s=Exponential(1/mu)``, over
  links with zero latency (so the client's latency is the server's residence).
  A server with no handler serves these CPU-only requests with scheduler
  callbacks; ``pg-tasks`` is the same server with an async handler, so that
  every request runs in one of its c trio worker tasks (what real apps do).
  The ratio line is for the first; the second is printed beside it;
* SimPy: a source process and a ``simpy.Resource(capacity=c)``;
* Ciw: ``ciw.create_network`` with one node of ``c`` servers (Ciw seeds a
  module-level RNG with ``ciw.seed``; that is its API).

Agreement. All of them measure the time in system W of each customer, grouped
by the second in which it left; after ``--warmup-s`` the run is cut into
``--batches`` equal batches and the batch means give a 95% confidence
interval (Student t). The mean wait in queue is reported as Wq = W - 1/mu for
all (SimPy and Ciw also measure it directly; shown for reference), next
to the Erlang C value. They agree when every pair of intervals overlaps.

Speed. Each library runs ``--rounds`` times, interleaved, and the fastest
round counts (the machine may be shared); the figure is customers served per
wall-clock second. The engine's peak memory is measured on a separate
1,000,000-customer run in a child process (``resource.getrusage``), so the
peers' allocations do not count. The engine's floor is how many times one
trio task can sleep and wake on the virtual clock per wall-clock second; the
event heap alone is the same M/M/c written as bare callbacks on playground's
``Scheduler`` (no requests, network, timeouts or metrics), so the distance
between it and the engine's figure is what the request model costs.

    python bench/vs_peers.py                      # defaults above
    python bench/vs_peers.py --requests 20000 --rounds 1 --rss-requests 0

The last line is ``ratio_vs_simpy=<x> ratio_vs_ciw=<y> tasks_vs_simpy=<z>``:
the engine's throughput (the server without a handler) divided by each
peer's, and the async-handler server's (real trio worker tasks) divided by
SimPy's.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

# Student t, two-sided 95%, by degrees of freedom (a normal 1.96 beyond 30).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
        18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
        26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


@dataclass(frozen=True)
class Model:
    rate: float
    mu: float
    servers: int
    requests: int
    seed: int

    @property
    def duration_s(self) -> float:
        return self.requests / self.rate


@dataclass
class Outcome:
    """What one library measured: per-second sums of W by departure second, and the count."""

    name: str
    served: int
    wall_s: float
    w_sum: dict[int, float]
    w_n: dict[int, int]
    wq_direct: float | None = None  # mean wait in queue measured by the library itself


def erlang_c(rate: float, mu: float, c: int) -> tuple[float, float]:
    """(probability of waiting, mean wait in queue Wq) of an M/M/c queue."""
    a = rate / mu
    rho = a / c
    if rho >= 1:
        return 1.0, math.inf
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait, p_wait / (c * mu - rate)


def _per_second(pairs) -> tuple[dict[int, float], dict[int, int]]:
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for t_out, w in pairs:
        s = int(t_out)
        sums[s] = sums.get(s, 0.0) + w
        counts[s] = counts.get(s, 0) + 1
    return sums, counts


# -- the implementations --------------------------------------------------------


def run_playground(m: Model) -> Outcome:
    from components import AppServer
    from playground import Exponential, Sim

    t0 = time.perf_counter()
    sim = Sim(seed=m.seed, default_latency_s=0.0)
    sim.add(AppServer("server", cores=m.servers, workers=m.servers, queue_limit=None,
                      cpu_s=Exponential(1 / m.mu)))
    return _drive(sim, m, t0, "playground")


def _drive(sim, m: Model, t0: float, name: str) -> Outcome:
    """Open-loop Poisson arrivals into "server"; W per departure second from the report's series."""
    from playground import OpenLoop

    load = sim.load(OpenLoop("server", rate=m.rate))
    report = sim.run(duration_s=m.duration_s)
    wall = time.perf_counter() - t0
    sums, counts = {}, {}
    for row in report.series[load.name]:
        s = int(round(row.t_s))
        sums[s], counts[s] = row.mean_s * row.ok, row.ok
    return Outcome(name, report.ok, wall, sums, counts)


def run_playground_tasks(m: Model) -> Outcome:
    """The same station with a handler: every request runs in one of c real trio worker tasks.

    ``AppServer`` with no handler serves CPU-only requests with scheduler
    callbacks (no task switch); a handler (what every real app has) runs in the
    server's worker tasks. This variant keeps the benchmark honest about both.
    """
    from components import AppServer
    from playground import Exponential, Sim

    service = Exponential(1 / m.mu)

    async def handler(request, ctx):
        await ctx.cpu(service)

    t0 = time.perf_counter()
    sim = Sim(seed=m.seed, default_latency_s=0.0)
    sim.add(AppServer("server", handler, cores=m.servers, workers=m.servers, queue_limit=None))
    return _drive(sim, m, t0, "pg-tasks")


def run_simpy(m: Model) -> Outcome:
    import simpy

    t0 = time.perf_counter()
    rng = random.Random(m.seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=m.servers)
    done: list[tuple[float, float]] = []
    waits: list[float] = []

    def customer(env):
        arrived = env.now
        with server.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.expovariate(m.mu))
        done.append((env.now, env.now - arrived))

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(m.rate))
            if env.now >= m.duration_s:
                return
            env.process(customer(env))

    env.process(source(env))
    env.run()  # arrivals stop at the end; everyone in the system is served
    wall = time.perf_counter() - t0
    sums, counts = _per_second(done)
    return Outcome("simpy", len(done), wall, sums, counts, statistics.fmean(waits))


def run_ciw(m: Model) -> Outcome:
    import ciw

    t0 = time.perf_counter()
    network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(m.rate)],
                                 service_distributions=[ciw.dists.Exponential(m.mu)],
                                 number_of_servers=[m.servers])
    ciw.seed(m.seed)
    q = ciw.Simulation(network)
    q.simulate_until_max_time(m.duration_s)
    records = q.get_all_records()
    wall = time.perf_counter() - t0
    sums, counts = _per_second((r.exit_date, r.exit_date - r.arrival_date) for r in records)
    return Outcome("ciw", len(records), wall, sums, counts, statistics.fmean(r.waiting_time for r in records))


# -- statistics ---------------------------------------------------------------------


def measured_seconds(m: Model, warmup_s: float) -> list[int]:
    """The departure seconds that count: whole seconds after the warm-up, inside the arrival window."""
    return list(range(math.ceil(warmup_s), int(m.duration_s)))


def batch_means(o: Outcome, m: Model, batches: int, warmup_s: float) -> tuple[float, float]:
    """(mean W, 95% half-width) from ``batches`` equal batches of departure seconds after warm-up."""
    seconds = measured_seconds(m, warmup_s)
    size = len(seconds) // batches
    means = []
    for b in range(batches):
        span = seconds[b * size:(b + 1) * size]
        n = sum(o.w_n.get(s, 0) for s in span)
        means.append(sum(o.w_sum.get(s, 0.0) for s in span) / n)
    t = _T95.get(batches - 1, 1.96)
    return statistics.fmean(means), t * statistics.stdev(means) / math.sqrt(batches)


# -- the engine's floor and memory ------------------------------------------------------


def trio_floor(wakeups: int) -> dict[str, float]:
    """Wake-ups per wall-second of one trio task sleeping on the virtual clock."""
    import trio

    from playground import VirtualClock

    out: dict[str, float] = {}

    async def main() -> None:
        sched = trio.lowlevel.current_clock().scheduler
        t0 = time.perf_counter()
        for _ in range(wakeups):
            await sched.sleep(0.001)
        out["sched_sleep_per_s"] = wakeups / (time.perf_counter() - t0)
        n = wakeups // 4
        t0 = time.perf_counter()
        for _ in range(n):
            await trio.sleep(0.001)
        out["trio_sleep_per_s"] = n / (time.perf_counter() - t0)

    trio.run(main, clock=VirtualClock())
    return out


def heap_floor(m: Model) -> tuple[int, float]:
    """The same M/M/c as bare callbacks on playground's ``Scheduler`` (no trio, no requests, network,
    timeouts or metrics): (customers served, wall seconds). What the event heap alone costs; the
    distance from here to ``run_playground`` is the request model the components carry."""
    from collections import deque

    from playground import Scheduler

    sched = Scheduler()
    rng = random.Random(m.seed)
    waiting: deque[float] = deque()
    free = [m.servers]
    served = [0]
    draw = rng.expovariate

    def arrive(_) -> None:
        if free[0]:
            free[0] -= 1
            sched.call_later(draw(m.mu), depart, sched.now)
        else:
            waiting.append(sched.now)
        sched.call_later(draw(m.rate), arrive)

    def depart(_arrived) -> None:
        served[0] += 1
        if waiting:
            sched.call_later(draw(m.mu), depart, waiting.popleft())
        else:
            free[0] += 1

    t0 = time.perf_counter()
    sched.call_later(draw(m.rate), arrive)
    sched.fire_until(m.duration_s)
    return served[0], time.perf_counter() - t0


def rss_child(m: Model) -> None:
    """Run in a child process: one big engine run; print its figures as JSON."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import components  # noqa: F401  (count the imports in the baseline)
    import playground  # noqa: F401

    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    o = run_playground(m)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"served": o.served, "wall_s": o.wall_s, "peak_rss_kib": peak, "hwm_kib": _hwm_kib() or 0,
                      "after_imports_kib": imported, "interpreter_kib": before}))


def _hwm_kib() -> int | None:
    """Linux's own peak RSS of this process image (resets on exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def measure_rss(m: Model) -> dict:
    cmd = [sys.executable, __file__, "--rate", str(m.rate), "--mu", str(m.mu), "--servers", str(m.servers),
           "--requests", str(m.requests), "--seed", str(m.seed), "--rss-child"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- main -------------------------------------------------------------------------------


def _require_peers() -> None:
    missing = [name for name in ("simpy", "ciw") if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(f"bench/vs_peers.py needs {' and '.join(missing)}: pip install -e '.[bench]'")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=1000.0, help="arrivals per second (lambda)")
    p.add_argument("--mu", type=float, default=150.0, help="services per second per server")
    p.add_argument("--servers", type=int, default=8, help="number of servers (c)")
    p.add_argument("--requests", type=int, default=100_000, help="customers (about: arrivals are Poisson)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batches", type=int, default=None,
                   help="batches for the confidence intervals (default: 20, or one a measured second if fewer)")
    p.add_argument("--warmup-s", type=float, default=1.0, help="simulated seconds left out at the start")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per library; the fastest counts")
    p.add_argument("--rss-requests", type=int, default=1_000_000, help="customers in the memory run (0: skip)")
    p.add_argument("--floor-wakeups", type=int, default=200_000, help="wake-ups in the floor test (0: skip)")
    p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    for name in ("rate", "mu", "requests", "servers", "rounds"):
        if not getattr(a, name) > 0:
            p.error(f"--{name} must be > 0, got {getattr(a, name)!r}")
    model = Model(a.rate, a.mu, a.servers, a.requests, a.seed)
    measured = len(measured_seconds(model, a.warmup_s))
    if measured < 2:  # checked now, not after minutes of runs
        p.error(f"the run is too short for confidence intervals: --requests {a.requests} at --rate {a.rate:g} "
                f"leaves {measured} whole second(s) after the {a.warmup_s:g} s warm-up; at least 2 are needed")
    if a.batches is None:
        a.batches = min(20, measured)
    if not 2 <= a.batches <= measured:
        p.error(f"--batches must be between 2 and the {measured} whole seconds measured after the warm-up "
                f"(--requests / --rate - --warmup-s), got {a.batches}")
    if a.rss_child:
        rss_child(model)
        return
    _require_peers()
    # The memory run goes first, while this process is small: a child's ru_maxrss
    # starts from its parent's size at the fork.
    memory = measure_rss(Model(a.rate, a.mu, a.servers, a.rss_requests, a.seed)) if a.rss_requests else None

    rho = a.rate / (a.servers * a.mu)
    p_wait, wq = erlang_c(a.rate, a.mu, a.servers)
    print(f"M/M/{a.servers}: lambda={a.rate:g}/s, mu={a.mu:g}/s per server, rho={rho:.3f}, "
          f"~{a.requests:,} customers ({model.duration_s:g} simulated s), seed {a.seed}")
    print(f"Erlang C: P(wait)={p_wait:.4f}  Wq={wq * 1000:.4f} ms  W=Wq+1/mu={(wq + 1 / a.mu) * 1000:.4f} ms")

    runners = {"playground": run_playground, "pg-tasks": run_playground_tasks, "simpy": run_simpy, "ciw": run_ciw}
    best: dict[str, Outcome] = {}
    for _ in range(a.rounds):  # interleaved, so a busy moment on the machine hits all alike
        for name, run in runners.items():
            o = run(model)
            if name not in best or o.wall_s < best[name].wall_s:
                best[name] = o

    print(f"\nTime in system W and wait in queue Wq, 95% CI from {a.batches} batch means "
          f"(after {a.warmup_s:g} s warm-up):")
    print(f"  {'library':<11} {'served':>8} {'W ms':>9} {'+/- ms':>8} {'Wq=W-1/mu ms':>13} {'Wq direct ms':>13} "
          f"{'theory in CI':>12}")
    est: dict[str, tuple[float, float]] = {}
    for name, o in best.items():
        mean, half = batch_means(o, model, a.batches, a.warmup_s)
        est[name] = (mean, half)
        w_theory = wq + 1 / a.mu
        direct = f"{o.wq_direct * 1000:.4f}" if o.wq_direct is not None else "-"
        inside = "yes" if abs(mean - w_theory) <= half else "no"
        print(f"  {name:<11} {o.served:>8,} {mean * 1000:>9.4f} {half * 1000:>8.4f} "
              f"{(mean - 1 / a.mu) * 1000:>13.4f} {direct:>13} {inside:>12}")
    names = list(est)
    agree = True
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            (mx, hx), (my, hy) = est[x], est[y]
            ok = abs(mx - my) <= hx + hy
            agree &= ok
            print(f"  {x} vs {y}: difference {abs(mx - my) * 1000:.4f} ms, "
                  f"CIs {'overlap' if ok else 'DO NOT overlap'}")
    print(f"  agreement: {'all agree within their confidence intervals' if agree else 'DISAGREE'}")

    print(f"\nSpeed (best of {a.rounds} rounds, customers served per wall-clock second):")
    rate = {name: o.served / o.wall_s for name, o in best.items()}
    for name, o in best.items():
        print(f"  {name:<11} {rate[name]:>10,.0f} /s   ({o.served:,} in {o.wall_s:.3f} s)")
    r_simpy = rate["playground"] / rate["simpy"]
    r_ciw = rate["playground"] / rate["ciw"]
    print(f"  playground / simpy = {r_simpy:.2f}   playground / ciw = {r_ciw:.2f}   "
          "(AppServer without a handler: CPU-only requests served by scheduler callbacks)")
    print(f"  pg-tasks / simpy = {rate['pg-tasks'] / rate['simpy']:.2f}   pg-tasks / ciw = "
          f"{rate['pg-tasks'] / rate['ciw']:.2f}   (the same server with an async handler: c real trio worker tasks)")

    if a.floor_wakeups:
        floor = trio_floor(a.floor_wakeups)
        print(f"\nEngine floor: {floor['sched_sleep_per_s']:,.0f} scheduler wake-ups/s "
              f"(one task, await sched.sleep on the virtual clock); "
              f"plain trio.sleep: {floor['trio_sleep_per_s']:,.0f}/s")
        heap = min((heap_floor(model) for _ in range(a.rounds)), key=lambda sw: sw[1])
        heap_rate = heap[0] / heap[1]
        print(f"Event heap alone: {heap_rate:,.0f} customers/s = {heap_rate / rate['simpy']:.2f}x SimPy (the same "
              f"M/M/{a.servers} as bare scheduler callbacks: no requests, network, timeouts or metrics; best of "
              f"{a.rounds}); the rest of a playground request's cost is its request model")

    if memory is not None:
        big, r = Model(a.rate, a.mu, a.servers, a.rss_requests, a.seed), memory
        print(f"\nMemory: a {a.rss_requests:,}-customer engine run ({big.duration_s:g} simulated s) in a child "
              f"process: peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB (after imports {r['after_imports_kib'] / 1024:.1f} "
              f"MiB, at start {r['interpreter_kib'] / 1024:.1f} MiB; VmHWM {r['hwm_kib'] / 1024:.1f} MiB); "
              f"served {r['served']:,} in "
              f"{r['wall_s']:.2f} s = {r['served'] / r['wall_s']:,.0f} /s")

    r_tasks = rate["pg-tasks"] / rate["simpy"]
    print(f"ratio_vs_simpy={r_simpy:.2f} ratio_vs_ciw={r_ciw:.2f} tasks_vs_simpy={r_tasks:.2f}")


if __name__ == "__main__":
    main()
