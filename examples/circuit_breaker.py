"""A slow dependency, with and without a circuit breaker.

Each page of the app (2 cores, 8 workers, an accept queue of 50) calls a
recommendations service that answers in 20 ms, with a 1 s timeout. From
t=20 s to t=50 s the service takes 4 s to answer. Without a breaker every
worker waits out its timeout, the queue fills, pages fail with 503 and users
time out: the slow dependency takes the app down with it. With a
``CircuitBreaker`` (50% failures over the last 20 calls, 5 s open, 3 probes)
two seconds of timeouts open it, the pages are served with a fallback (a
list of popular items), it probes every 5 s, and it closes once the service
has recovered.

    python examples/circuit_breaker.py
"""
from __future__ import annotations

from components import AppServer, CircuitBreaker
from playground import OpenLoop, Request, Response, Sim


def build(breaker: CircuitBreaker | None, seed: int = 11) -> tuple[Sim, list]:
    sim = Sim(seed=seed)
    served: list[tuple[float, str]] = []

    async def recs(request, ctx):
        await ctx.sleep(0.02)
        return b"[1, 2, 3]"

    async def page(request, ctx):
        call = Request("GET", "/recs")
        if breaker is None:
            response = await ctx.call("recs", call, timeout_s=1.0)
        else:
            response = await breaker.call(ctx, "recs", call, timeout_s=1.0,
                                          fallback=Response(200, body=b"[] (popular items)"))
        served.append((ctx.now, "fallback" if "x-fallback" in response.headers else "real"))
        return response

    sim.add(AppServer("recs", recs, workers=200))
    sim.add(AppServer("app", page, cores=2, cpu_s=0.002, workers=8, queue_limit=50, calls=("recs",)))
    sim.load(OpenLoop("app", rate=40, timeout_s=2.0))
    sim.at(20, sim.slow, "app", "recs", 4000.0)  # 0.5 ms -> 2 s each way
    sim.at(50, sim.heal, "app", "recs")
    return sim, served


def error_share(report, t0: float, t1: float) -> float:
    rows = [r for r in report.series[next(iter(report.series))] if t0 <= r.t_s < t1]
    ok, errors = sum(r.ok for r in rows), sum(r.errors for r in rows)
    return errors / (ok + errors) if ok + errors else 0.0


def main() -> dict:
    plain_sim, _ = build(None)
    plain = plain_sim.run(70)
    breaker = CircuitBreaker("recs", failure_rate_threshold=0.5, window=20, minimum_calls=10, open_s=5.0,
                             half_open_probes=3)
    guarded_sim, served = build(breaker)
    guarded = guarded_sim.run(70)
    print("40 pages/s; each calls 'recs' (1 s timeout); 'recs' takes 4 s from t=20 s to t=50 s")
    app = plain.component("app")
    print(f"Without a breaker: {error_share(plain, 22, 50):.0%} of pages failed while 'recs' was slow "
          f"(timeouts {plain.errors.get('timeout', 0):,}, 5xx {plain.errors.get('5xx', 0):,}); "
          f"accept queue full ({app.peak_queue:.0f} of 50), {app.rejected:,} refused")
    fallbacks = sum(1 for t, kind in served if kind == "fallback")
    print(f"With a breaker: {error_share(guarded, 22, 50):.1%} of pages failed while 'recs' was slow; "
          f"{fallbacks:,} pages served from the fallback")
    print("Breaker transitions:", "; ".join(f"t={t:.1f} {old}->{new}" for t, old, new in breaker.transitions))
    closed = max(t for t, _, new in breaker.transitions if new == "CLOSED")
    real_after = sum(1 for t, kind in served if t > closed and kind == "real")
    print(f"Closed again at t={closed:.1f} s, after 'recs' recovered at t=50 s; {real_after:,} real pages since")
    return {"plain": plain, "guarded": guarded, "breaker": breaker}


if __name__ == "__main__":
    main()
