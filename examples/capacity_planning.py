"""A capacity question, answered: how many app servers, with and without a cache, and what each costs.

The question an engineer brings: "how many app servers do 10,000 users need at
p99 < 200 ms, with and without a cache, and what does each option cost a
month?". The topology: 2-core app servers behind an L7 balancer, a database,
and optionally a cache (cache-aside, started warm with the hottest keys).
Each request spends CPU on its server; a cache miss also reads the database
and spends more CPU turning the row into a page, which a hit skips - so the
cache saves app servers, not only database load.

The answer comes from ``capacity_search``: the smallest number of servers
whose p99 meets the SLO *with confidence* - the upper end of the 95%
confidence interval over seeds under 200 ms - found by bisection, with the
servers below it missing. Each probe is printed; the last line is one
sentence with the answer, its interval and the cost of each option.

What to look for: without a cache a request needs ~23 ms of CPU (page and
row), so 200 requests/s need ~4.6 cores: two 2-core servers are overloaded
(p99 over a second, queues growing for as long as the run lasts) and three
are not (p99 ~75 ms, each server 77% busy). With the cache 79% of reads skip
the row's CPU, ~14 ms a request, ~2.8 cores: two servers meet the SLO and the
cache (~$12/month) saves a server (~$76/month). A probe whose interval straddles 200 ms is "not
sure" and counts as not met. Costs are ``report.cost()`` at the default,
illustrative prices.

``build`` is what the command line uses too:

    playground sweep examples/capacity_planning.py:build --grid servers=2,4 --seeds 3 --duration-s 10
    playground capacity examples/capacity_planning.py:build --knob servers --lo 1 --hi 32 --slo p99_ms=200 --seeds 3

    python examples/capacity_planning.py
"""
from __future__ import annotations

from playground import LogNormal, Population, Request, Response, Sim, Workload
from components import AppServer, CacheAside, CacheServer, Database, DatabaseClient, L7Balancer

USERS = 10_000
RATE_PER_USER = 0.02           # one request every 50 s per user: 200 requests/s for 10,000 users
KEYS = 10_000
WORKLOAD = Workload(keys=KEYS, zipf_exponent=1.0)
PAGE_CPU = LogNormal(median_s=0.010, sigma=0.4)    # every request: routing, templates (~10.8 ms mean)
ROW_CPU_S = 0.012              # a database row turned into a page (ORM, serialising): what a hit skips
HIT_CPU_S = 0.0006             # a cached page deserialised
DB_READ_S = 0.003
CACHE_ITEMS = 2_500            # the cache option: room for a quarter of the keys (79% of reads hit)
TIMEOUT_S = 5.0
SCHEMA = f"""
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
WITH RECURSIVE n(id) AS (SELECT 0 UNION ALL SELECT id + 1 FROM n WHERE id < {KEYS - 1})
INSERT INTO items SELECT id, 'item ' || id FROM n;
"""


def handler(db: DatabaseClient, aside: CacheAside | None):
    async def read(ctx, key: str) -> str | None:
        rows = await db.query(ctx, "SELECT name FROM items WHERE id = ?", [int(key)])
        return rows[0][0] if rows else None

    async def handle(request: Request, ctx) -> Response:
        await ctx.cpu(PAGE_CPU)
        key = request.route.rsplit("/", 1)[-1]
        if aside is None:
            value = await read(ctx, key)
            await ctx.cpu(ROW_CPU_S)
        else:
            missed = False

            async def load():
                nonlocal missed
                missed = True
                row = await read(ctx, key)
                return None if row is None else row.encode()

            value = await aside.get(ctx, f"item:{key}", load)
            await ctx.cpu(ROW_CPU_S if missed else HIT_CPU_S)
        if value is None:
            return Response(404, body=b"no such item")
        return Response(200, body=value if isinstance(value, bytes) else value.encode())

    return handle


def build(servers: int = 4, cache_items: int = 0, users: int = USERS, rate_per_user: float = RATE_PER_USER,
          cores: int = 2, seed: int = 1) -> Sim:
    """``servers`` app servers of ``cores`` cores behind a balancer; a cache of ``cache_items`` if > 0."""
    sim = Sim(seed=seed)
    sim.add(Database("db", schema=SCHEMA, read_latency_s=DB_READ_S, io_capacity=8, max_connections=400,
                     queue_limit=2000))
    calls: tuple[str, ...] = ("db",)
    aside = None
    if cache_items:
        cache = sim.add(CacheServer("cache", capacity_items=cache_items, concurrency=8))
        for k in range(min(cache_items, KEYS)):  # warm: Zipf rank k is key k, the lowest the hottest
            cache.store.set(f"item:{k}", f"item {k}".encode())
        aside = CacheAside("cache")
        calls = ("db", "cache")
    names = [f"app{i}" for i in range(1, servers + 1)]
    code = handler(DatabaseClient("db"), aside)
    for name in names:
        sim.add(AppServer(name, code, cores=cores, calls=calls))
    sim.add(L7Balancer("lb", names))
    sim.load(Population("lb", users=users, requests_per_user_per_s=rate_per_user, workload=WORKLOAD,
                        timeout_s=TIMEOUT_S))
    return sim


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from playground import SLO, capacity_search, pareto_front

    slo = SLO(p99_ms=200, error_rate=0.01)
    seeds, duration_s = 3, 5.0
    rate = USERS * RATE_PER_USER
    print(f"{USERS:,} users at {RATE_PER_USER:g} requests/s each ({rate:,.0f} requests/s); SLO {slo.describe()}; "
          f"{seeds} seeds of {duration_s:g} s per probe\n")
    options = {"none": 0, f"{CACHE_ITEMS:,} items": CACHE_ITEMS}
    headings = {"none": "Without a cache", f"{CACHE_ITEMS:,} items": f"With a {CACHE_ITEMS:,}-item cache"}
    found = {}
    for label, items in options.items():
        print(f"{headings[label]}:")
        found[label] = capacity_search(build, knob="servers", lo=1, hi=6, slo=slo, seeds=seeds,
                                       duration_s=duration_s, fixed={"cache_items": items})
        print(found[label].answer + "\n")

    # every probe is a priced configuration: which of them are not beaten on both cost and p99?
    probes = [(label, p) for label, result in found.items() for p in result.probes]
    front = pareto_front([p.point for _, p in probes])
    table = Table(title="Every probe: mean [95% CI] over seeds; Pareto: not beaten on both cost and p99",
                  title_justify="left")
    for col in ("cache", "servers", "p99 ms", "errors", "$/month", "SLO", "Pareto"):
        table.add_column(col, justify="left" if col in ("cache", "SLO", "Pareto") else "right")
    for label, p in sorted(probes, key=lambda lp: (lp[1].point["cost_per_month"].mean, lp[0])):
        p99, err, cost = p.point["p99_ms"], p.point["error_rate"], p.point["cost_per_month"]
        table.add_row(label, str(p.value), f"{p99.mean:,.1f} [{p99.low:,.1f}, {p99.high:,.1f}]", f"{err.mean:.2%}",
                      f"{cost.mean:,.0f}", p.verdict, "front" if any(p.point is f for f in front) else "")
    Console(width=100).print(table)

    answers = {label: r for label, r in found.items() if r.value is not None}
    if len(answers) < len(found):
        missing = ", ".join(label for label in found if label not in answers)
        print(f"\nAnswer: no number of servers up to 6 meets the SLO (cache: {missing}).")
        return
    parts = []
    for label, result in answers.items():
        what = headings[label].lower()
        p99, cost = result.point["p99_ms"], result.point["cost_per_month"].mean
        parts.append(f"{what} {result.value} app servers (p99 {p99.mean:,.1f} ms, 95% CI "
                     f"[{p99.low:,.1f}, {p99.high:,.1f}]; ${cost:,.0f}/month)")
    plain, cached = [r.point["cost_per_month"].mean for r in answers.values()]
    saving = f": the cache saves ${plain - cached:,.0f} a month" if cached < plain else ""
    print(f"\nAnswer: for {USERS:,} users at p99 < {slo.p99_ms:g} ms, {parts[0]}, {parts[1]}{saving}.")


if __name__ == "__main__":
    main()
