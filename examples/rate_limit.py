"""A noisy client, with and without a rate limit at the balancer.

Five polite clients send 5 requests/s each; one noisy client sends 200/s. Two
app servers (one core, 20 ms a request: 100 requests/s together) cannot serve
them all. Without a limit the noisy client fills the accept queues and
everyone's requests wait or are refused. With a token bucket of 20 requests/s
per client (burst 40) at the balancer, the noisy client is answered ``429``
with ``Retry-After`` beyond its share and the polite clients do not notice it.

    python examples/rate_limit.py
"""
from __future__ import annotations

from components import AppServer, L7Balancer, RateLimit, TokenBucket
from playground import OpenLoop, Sim


def build(limit: RateLimit | None, seed: int = 7) -> Sim:
    sim = Sim(seed=seed)
    for i in (1, 2):
        sim.add(AppServer(f"app{i}", cpu_s=0.02, cores=1, queue_limit=20))
    sim.add(L7Balancer("lb", ["app1", "app2"], retries=0, rate_limit=limit))
    for i in range(5):
        sim.load(OpenLoop("lb", rate=5, client=f"polite{i}", name=f"polite{i}", timeout_s=2.0))
    sim.load(OpenLoop("lb", rate=200, client="noisy", name="noisy", timeout_s=2.0))
    return sim


def summary(report) -> str:
    polite = [report.clients[f"polite{i}"] for i in range(5)]
    sent = sum(c.sent for c in polite)
    failed = sum(c.failed for c in polite)
    p99 = max(c.latency.p99_s for c in polite)
    noisy = report.clients["noisy"]
    return (f"polite clients {failed:,} of {sent:,} failed ({failed / sent:.0%}), worst p99 {p99 * 1000:,.0f} ms; "
            f"noisy client {noisy.statuses.get(200, 0):,} served, {noisy.statuses.get(429, 0):,} answered 429")


def main() -> dict:
    free = build(None).run(30)
    limited = build(RateLimit(TokenBucket(rate_per_s=20, burst=40))).run(30)
    print("5 polite clients at 5/s, 1 noisy client at 200/s; 2 servers serve 100/s")
    print(f"No limit:             {summary(free)}")
    print(f"20/s per client (LB): {summary(limited)}")
    return {"free": free, "limited": limited}


if __name__ == "__main__":
    main()
