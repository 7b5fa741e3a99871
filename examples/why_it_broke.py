"""Why it broke: a topology pushed past saturation, with queueing theory explaining the knee.

Three app servers (2 cores, 5 ms of CPU a request) behind an L7 balancer read
from one database with 2 IO channels and 3 ms a read. Each population step runs
the same topology with more users (0.02 requests per user per second). Latency
stays flat, then climbs steeply, then requests time out: the knee.

``report.theory()`` says why, from the run itself: the database's service demand
per request (3 ms on 2 channels: 1.5 ms per channel) is the largest, so it is
the bottleneck, and no topology of these demands can serve more than
1 / 1.5 ms = ~667 requests per second - about 33,000 users at this rate. Below
that the M/M/2 model of the database predicts its queue; above it there is no
steady state: the queue only grows, until clients give up.

    python examples/why_it_broke.py
"""
from __future__ import annotations

from playground import Exponential, Population, Sim
from components import AppServer, Database, DatabaseClient, HealthCheck, L7Balancer

RATE_PER_USER = 0.02
USERS = (10_000, 20_000, 30_000, 40_000)


def build(users: int, seed: int = 1) -> Sim:
    sim = Sim(seed=seed)
    sim.add(Database("db", read_latency_s=Exponential(0.003), io_capacity=2, queue_limit=None))
    db = DatabaseClient("db", timeout_s=2.0)

    async def handler(request, ctx):
        await ctx.cpu(Exponential(0.005).sample(ctx.rng))
        return (await db.get(ctx, request.route.rsplit("/", 1)[-1]) or "").encode()

    apps = [f"app{i}" for i in (1, 2, 3)]
    for name in apps:
        sim.add(AppServer(name, handler, cores=2, calls=("db",)))
    sim.add(L7Balancer("lb", apps, retries=0, health_check=HealthCheck(interval_s=1.0)))
    sim.load(Population("lb", users=users, requests_per_user_per_s=RATE_PER_USER, timeout_s=2.0))
    return sim


def main() -> None:
    print(f"{'users':>7} {'offered/s':>9} {'ok/s':>7} {'p99 ms':>8} {'errors':>7}  bottleneck (theory)")
    reports = []
    for users in USERS:
        report = build(users).run(duration_s=20)
        bounds = report.theory().bounds
        reports.append((users, report))
        print(f"{users:>7,} {bounds.offered_per_s:>9,.0f} {report.throughput_per_s:>7,.0f} "
              f"{report.p99_s * 1000:>8,.1f} {report.error_rate:>7.1%}  {bounds.bottleneck} at "
              f"{bounds.bottleneck_utilisation:.0%} of its capacity")
    healthy_users, healthy = reports[0]
    theory = healthy.theory()
    b = theory.bounds
    print()
    print(theory.render(width=100))
    servers = theory.station(b.bottleneck).servers
    print(f"Measured at {healthy_users:,} users, {b.bottleneck} needs {b.demands_s[b.bottleneck] * 1000:.2f} ms a request "
          f"on {servers} servers, the largest demand per server: it saturates at {b.max_throughput_per_s:,.0f} "
          f"req/s, that is ~{b.saturation_users:,.0f} users at {RATE_PER_USER} requests per user per second.")
    users, past = reports[-1]
    over = past.theory().bounds
    print(f"At {users:,} users the offered {over.offered_per_s:,.0f} req/s is {over.bottleneck_utilisation:.0%} of what "
          f"{over.bottleneck} can serve: no steady state, the queue grows until clients give up "
          f"(p99 {past.p99_s * 1000:,.0f} ms, {past.error_rate:.1%} errors).")


if __name__ == "__main__":
    main()
