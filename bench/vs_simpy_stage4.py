"""The soak's stage-4 web stack in playground and written directly in SimPy: same figures, which is faster?

The model (``bench/soak.py``'s stage 4): Poisson users at ``--rate`` (2,000/s)
-> an L7 balancer (round robin, health checks every second) -> 4 app servers
(4 cores, 16 workers, accept queue 100, CPU Exponential(2 ms) per request) that
read through a cache (cache-aside with single-flight per app server; an LRU
of 5,000 items, TTL 300 s, 8 operation slots of 100 us) in front of a SQLite
database (8 IO slots; reads LogNormal(median 2 ms), writes LogNormal(median
5 ms), sigma 0.5; real ``SELECT``/``INSERT`` statements). 50,000 keys, Zipf
s=1.0, 5% writes (a write updates the row, then deletes the cache entry).
Every message crosses a 0.5 ms hop.

* playground: the components, wired as ``bench/soak.py`` wires them (it is
  the same function), with every figure the engine keeps: per-host stats, the
  per-second series, timeouts armed on every call.
* SimPy: what a competent SimPy user writes for the same system: one process
  per request, ``simpy.Resource`` for workers, cores, cache slots and IO
  slots, an ``OrderedDict`` LRU, a dict of pending loads (single-flight), a
  real ``sqlite3`` table, an HDR histogram for the client latency, and
  ``env.timeout(0.0005)`` per hop. It leaves out the timeouts (client 5 s,
  balancer 2 s, cache 50 ms, database 2 s): at this load none of them fires,
  and the playground run checks that none did. That favours SimPy.

Agreement: the two use different random streams, so they agree statistically:
p50 within ``--p50-tolerance`` (3%), p99 within ``--p99-tolerance`` (8%), the
cache hit ratio within ``--hit-tolerance`` (1 percentage point). The script
fails (exit 1) if they do not.

Speed: ``--rounds`` (3) interleaved rounds, the fastest of each counts;
requests per wall-clock second.

    python bench/vs_simpy_stage4.py                     # 40,000 requests, 3 rounds
    python bench/vs_simpy_stage4.py --requests 10000 --rounds 1

The last line is ``stage4_vs_simpy=<ratio>``: playground's rate divided by SimPy's.
"""
from __future__ import annotations

import argparse
import math
import random
import sqlite3
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HOP_S = 0.0005
APPS = 4
CORES, WORKERS, ACCEPT_QUEUE = 4, 16, 100
CPU_MEAN_S = 0.002
CACHE_ITEMS, CACHE_TTL_S, CACHE_SLOTS, CACHE_OP_S = 5_000, 300.0, 8, 0.0001
DB_SLOTS, READ_MEDIAN_S, WRITE_MEDIAN_S, SIGMA = 8, 0.002, 0.005, 0.5
KEYS, ZIPF_S, WRITE_SHARE = 50_000, 1.0, 0.05
HEALTH_INTERVAL_S = 1.0


@dataclass
class Outcome:
    name: str
    requests: int
    ok: int
    wall_s: float
    p50_s: float
    p99_s: float
    hit_ratio: float

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s


def run_playground(requests: int, rate: float, seed: int) -> Outcome:
    from soak import stage4

    t0 = time.perf_counter()
    sim, load = stage4(seed, rate, APPS)
    report = sim.run(duration_s=requests / rate)
    wall = time.perf_counter() - t0
    stats = report.clients[load.name]
    if stats.failed or stats.in_flight:
        raise SystemExit(f"playground run had errors {stats.errors} / {stats.in_flight} in flight: "
                         "the SimPy model (no timeouts) would not be the same model")
    return Outcome("playground", stats.sent, stats.ok, wall, stats.latency.p50_s, stats.latency.p99_s,
                   report.components["cache"].detail["hit_ratio"])


class SimpyStage4:
    """The same stack as SimPy processes and resources."""

    def __init__(self, seed: int) -> None:
        import simpy
        from hdrh.histogram import HdrHistogram

        self.simpy = simpy
        self.env = env = simpy.Environment()
        self.rng = random.Random(seed)
        self.workers = [simpy.Resource(env, WORKERS) for _ in range(APPS)]
        self.cores = [simpy.Resource(env, CORES) for _ in range(APPS)]
        self.flights: list[dict[str, object]] = [{} for _ in range(APPS)]
        self.cache_slots = simpy.Resource(env, CACHE_SLOTS)
        self.lru: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self.hits = self.misses = 0
        self.db_slots = simpy.Resource(env, DB_SLOTS)
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)")
        self.version = 0
        self.next_app = 0
        self.hist = HdrHistogram(1, 3_600_000_000, 3)
        self.ok = self.rejected = 0
        weights = (1.0 / (k + 1) ** ZIPF_S for k in range(KEYS))
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        self.zipf_cum = cum

    # -- the parts ------------------------------------------------------------------
    def cache_op(self, op: str, key: str, value: bytes = b""):
        yield self.env.timeout(HOP_S)
        with self.cache_slots.request() as slot:
            yield slot
            yield self.env.timeout(CACHE_OP_S)
        now = self.env.now
        found = None
        if op == "get":
            item = self.lru.get(key)
            if item is not None and item[1] > now:
                self.lru.move_to_end(key)
                self.hits += 1
                found = item[0]
            else:
                if item is not None:
                    del self.lru[key]
                self.misses += 1
        elif op == "set":
            self.lru[key] = (value, now + CACHE_TTL_S)
            self.lru.move_to_end(key)
            if len(self.lru) > CACHE_ITEMS:
                self.lru.popitem(last=False)
        else:
            self.lru.pop(key, None)
        yield self.env.timeout(HOP_S)
        return found

    def db_op(self, key: str, value: str | None = None):
        yield self.env.timeout(HOP_S)
        median = READ_MEDIAN_S if value is None else WRITE_MEDIAN_S
        seconds = median * math.exp(SIGMA * self.rng.gauss(0.0, 1.0))
        with self.db_slots.request() as slot:
            yield slot
            yield self.env.timeout(seconds)
            if value is None:
                row = self.db.execute("SELECT value, version FROM kv WHERE key = ?", (key,)).fetchone()
            else:
                self.version += 1
                self.db.execute("INSERT OR REPLACE INTO kv (key, value, version) VALUES (?, ?, ?)",
                                (key, value, self.version))
                row = None
        yield self.env.timeout(HOP_S)
        return row

    def cache_aside_get(self, app: int, key: str):
        flights = self.flights[app]
        pending = flights.get(key)
        if pending is not None:  # someone on this server is loading it: wait for that load
            return (yield pending)
        found = yield from self.cache_op("get", key)
        if found is not None:
            return found
        pending = flights.get(key)
        if pending is not None:
            return (yield pending)
        done = flights[key] = self.env.event()
        row = yield from self.db_op(key)
        value = (row[0] if row else "").encode()
        done.succeed(value)
        yield from self.cache_op("set", key, value)
        del flights[key]
        return value

    def app(self, app: int, key: str | None, write: bool):
        """One request at app server ``app``: worker, core, then the handler; False if refused (503)."""
        workers = self.workers[app]
        if workers.count >= WORKERS and len(workers.queue) >= ACCEPT_QUEUE:
            return False
        with workers.request() as worker:
            yield worker
            with self.cores[app].request() as core:
                yield core
                yield self.env.timeout(self.rng.expovariate(1 / CPU_MEAN_S))
            if key is None:  # a health check
                return True
            if write:
                yield from self.db_op(key, "v")
                yield from self.cache_op("delete", key)
            else:
                yield from self.cache_aside_get(app, key)
        return True

    def request(self, key: str, write: bool):
        env = self.env
        start = env.now
        yield env.timeout(HOP_S)  # client -> balancer
        app = self.next_app
        self.next_app = (app + 1) % APPS
        yield env.timeout(HOP_S)  # balancer -> app
        served = yield from self.app(app, key, write)
        yield env.timeout(2 * HOP_S)  # app -> balancer -> client
        if served:
            self.ok += 1
            self.hist.record_value(max(1, int((env.now - start) * 1_000_000 + 0.5)))
        else:
            self.rejected += 1

    def health(self, app: int):
        while True:
            yield self.env.timeout(HEALTH_INTERVAL_S)
            yield self.env.timeout(HOP_S)
            yield from self.app(app, None, False)
            yield self.env.timeout(HOP_S)

    def users(self, rate: float, until: float):
        env, rng, cum = self.env, self.rng, self.zipf_cum
        from bisect import bisect_left

        while True:
            yield env.timeout(rng.expovariate(rate))
            if env.now >= until:
                return
            write = rng.random() < WRITE_SHARE
            key = str(bisect_left(cum, rng.random() * cum[-1]))
            env.process(self.request(key, write))


def run_simpy(requests: int, rate: float, seed: int) -> Outcome:
    t0 = time.perf_counter()
    model = SimpyStage4(seed)
    until = requests / rate
    model.env.process(model.users(rate, until))
    for app in range(APPS):
        model.env.process(model.health(app))
    model.env.run(until=until + 5.0)  # arrivals stop at ``until``; the rest drain
    wall = time.perf_counter() - t0
    reads = model.hits + model.misses
    h = model.hist
    return Outcome("simpy", model.ok + model.rejected, model.ok, wall, h.get_value_at_percentile(50) / 1e6,
                   h.get_value_at_percentile(99) / 1e6, model.hits / reads if reads else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=40_000, help="requests (about: arrivals are Poisson)")
    p.add_argument("--rate", type=float, default=2_000.0, help="arrivals per simulated second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds; the fastest of each counts")
    p.add_argument("--p50-tolerance", type=float, default=0.03, help="relative difference allowed in p50")
    p.add_argument("--p99-tolerance", type=float, default=0.08, help="relative difference allowed in p99")
    p.add_argument("--hit-tolerance", type=float, default=0.01, help="absolute difference allowed in hit ratio")
    a = p.parse_args(argv)
    for name in ("requests", "rate", "rounds"):
        if not getattr(a, name) > 0:
            p.error(f"--{name} must be > 0, got {getattr(a, name)!r}")
    try:
        import simpy  # noqa: F401
    except ImportError:
        raise SystemExit("bench/vs_simpy_stage4.py needs simpy: pip install -e '.[bench]'") from None

    print(f"stage 4: {a.rate:,.0f} req/s for {a.requests / a.rate:g} simulated s (~{a.requests:,} requests), "
          f"lb -> {APPS} apps -> cache-aside -> SQLite, {HOP_S * 1000:g} ms per hop, seed {a.seed}")
    best: dict[str, Outcome] = {}
    for _ in range(a.rounds):  # interleaved, so a busy moment on the machine hits both alike
        for name, run in (("playground", run_playground), ("simpy", run_simpy)):
            o = run(a.requests, a.rate, a.seed)
            if name not in best or o.wall_s < best[name].wall_s:
                best[name] = o

    pg, sp = best["playground"], best["simpy"]
    print(f"\n  {'':<11} {'requests':>9} {'ok':>9} {'p50 ms':>8} {'p99 ms':>8} {'hit ratio':>9} {'wall s':>7} "
          f"{'requests/s':>11}")
    for o in (pg, sp):
        print(f"  {o.name:<11} {o.requests:>9,} {o.ok:>9,} {o.p50_s * 1000:>8.3f} {o.p99_s * 1000:>8.3f} "
              f"{o.hit_ratio:>9.2%} {o.wall_s:>7.2f} {o.rate:>11,.0f}")
    d50 = abs(pg.p50_s - sp.p50_s) / sp.p50_s
    d99 = abs(pg.p99_s - sp.p99_s) / sp.p99_s
    dhit = abs(pg.hit_ratio - sp.hit_ratio)
    agree = d50 <= a.p50_tolerance and d99 <= a.p99_tolerance and dhit <= a.hit_tolerance
    print(f"\n  agreement: p50 differs {d50:.1%} (allowed {a.p50_tolerance:.0%}), p99 {d99:.1%} "
          f"(allowed {a.p99_tolerance:.0%}), hit ratio {dhit * 100:.2f} points (allowed {a.hit_tolerance * 100:g}): "
          f"{'AGREE' if agree else 'DISAGREE'}")
    print(f"  speed (fastest of {a.rounds} interleaved rounds): playground {pg.rate:,.0f} requests/s, "
          f"SimPy {sp.rate:,.0f} requests/s")
    print(f"stage4_vs_simpy={pg.rate / sp.rate:.2f}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
