"""Every ``examples/*.py`` runs, exits 0, says what the docs claim, and docs/EXAMPLES.md is its output.

Each example is its own test: it runs in a subprocess (``sys.executable``, a
temporary working directory, as ``docs/make_examples.py`` runs it) and its
output is checked against the claims the docs make (who breaks where, zero errors on failover, one query with
coalescing), written as patterns with numbers compared loosely, so that a
small change of figures in a component does not fail them but a changed story
does. Examples run under virtual time, so their output does not depend on how
busy the machine is; the only wall-clock limit is a generous hang guard per
example (``HANG_GUARD_S`` in ``docs/make_examples.py``), never shared between
examples. Then the page's section for that example must be exactly what the
generator writes from this output (and the README's table likewise), so a
change of output that is not regenerated fails here.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
_spec = importlib.util.spec_from_file_location("make_examples", ROOT / "docs" / "make_examples.py")
make_examples = sys.modules.setdefault("make_examples", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(make_examples)


def num(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


def find(pattern: str, out: str) -> tuple[str, ...]:
    match = re.search(pattern, out)
    assert match, f"expected a line matching {pattern!r} in:\n{out}"
    return match.groups()


def stage1(out):
    find(r"Stage 1 breaks at 10,000 users", out)
    (kills,) = find(r"Bottleneck: monolith \(CPU, then memory: OOM\); the process was OOM-killed (\d+) times", out)
    assert int(kills) >= 1


def stage2(out):
    find(r"Stage 2 breaks at 50,000 users", out)
    find(r"Bottleneck: app \(CPU\) at 100%", out)


def stage3(out):
    find(r"Failover at 50,000 users \(0\.0% errors\): t=\S+ crash app8; t=\S+ lb: app8 marked down", out)
    find(r"Stage 3 breaks at 100,000 users", out)
    find(r"Bottleneck: db \(reads\)", out)


def stage4(out):
    hit, queries = find(r"At 100,000 users: cache hit ratio (\d+)%, ([\d,]+) database queries/s", out)
    assert num(hit) >= 80 and num(queries) < 700  # stage 3 sent ~1,400/s to the database at this load
    find(r"Stage 4 breaks at 1,000,000 users", out)
    find(r"Bottleneck: app\d+ \(CPU\)", out)


def stage5(out):
    find(r"Stage 5 holds 1,000,000 users within the SLO", out)
    (p99,) = find(r"1,000,000 users: [\d,]+ ok/s, p50 \S+ ms, p99 (\S+) ms, errors 0\.0%", out)
    assert num(p99) < 500


def failover(out):
    failed, held = find(r"With health checks and retries: 0 client errors\. Without retries: (\d+) errors, "
                        r"all of them requests app2 held \((\d+)\)", out)
    assert 0 < int(failed) == int(held)
    assert out.count("t=11-20 s 0;") == 2  # nothing sent to app2 while it was marked down


def l4_vs_l7(out):
    l4, l7, many = find(r"4 connections: L4 spread (\S+)x, L7 spread (\S+)x; 300 connections: L4 spread (\S+)x", out)
    assert num(l4) > 1.9 and num(l7) < 1.05 and num(many) < 1.05


def cache_aside(out):
    before, after = find(r"Database queries: (\d+) without the cache -> (\d+) with it", out)
    assert int(after) < int(before) / 2
    p99_before, p99_after = find(r"p99 (\S+) -> (\S+) ms", out)
    assert num(p99_after) < num(p99_before)
    (first,) = find(r"Cold cache warming up, hit ratio: 0-0\.1s (\d+)%", out)
    (overall,) = find(r"Overall hit ratio (\S+)%", out)
    assert num(first) < num(overall)
    (tiny,) = find(r"LRU with room for\s+6 items: hit ratio (\S+)%", out)
    assert num(tiny) < 5


def stampede(out):
    (herd,) = find(r"Hot key expiry: (\d+) database queries without coalescing, 1 with coalescing\.", out)
    assert int(herd) >= 5


def sessions(out):
    rr, crash = find(r"Sessions lost: in app memory, round robin (\d+); sticky 0; sticky and app2 crashes (\d+); "
                     r"in the cache, app2 crashes 0", out)
    assert int(rr) > 100 and 0 < int(crash) <= 60


def vertical_vs_horizontal(out):
    (lost,) = find(r"vertical: p99 \S+ ms undisturbed; a crash costs (\d+) failed requests", out)
    assert int(lost) > 1000
    find(r"horizontal: p99 \S+ ms undisturbed; a crash costs 0 failed requests", out)


def cdn_regions(out):
    (offload,) = find(r"origin offload (\S+)%", out)
    assert num(offload) > 95
    without, with_cdn = find(r"\bap\s+│\s+(\S+) │\s+(\S+) │", out)
    assert num(without) > 300 and num(with_cdn) < 5


def quart_app(out):
    find(r'GET  /item/7    -> 200 \{"key":"7","value":"item 7"\}', out)
    find(r'POST /item/7    -> 201 \{"key":"7","version":\d+\}', out)
    find(r'GET  /item/7    -> 200 \{"key":"7","value":"blue"\}', out)
    find(r'GET  /item/999  -> 404 \{"error":"no item 999"\}', out)
    find(r"through the Quart app: \d+ answered, statuses \{200: \d+, 404: \d+\}", out)


def aiocache_api(out):
    find(r"(\d+) of \1 reads answered \(0 errors\)", out)
    hits, errors = find(r"(?m)^\s+5\s+\d+\s+(\d+)\s+(\d+)", out)  # the second the cache was down
    assert int(hits) == 0 and int(errors) > 100


def fault_injection(out):
    find(r"partition app1 <-> db; lb: app1 marked down", out)
    find(r"crash app2; lb: app2 marked down", out)
    find(r"\d+ requests, 0 errors", out)


def db_failover(out):
    lost, missing = find(r"async: lost acknowledged writes (\d+) \(missing from db-r1: (\d+)\)", out)
    assert int(lost) == int(missing) > 50
    find(r"sync: lost acknowledged writes 0 \(missing from db-r1: 0\)", out)
    (p50,) = find(r"replication=sync: .* order p50 (\d+) ms", out)
    assert num(p50) > 400  # every write waited for a replica's 0.5 s lag


def nearest_replica(out):
    local, far, back = find(r"eu reads: (\S+) ms local, (\S+) ms while db-eu was down \(from db-us\), "
                            r"(\S+) ms after it came back", out)
    assert num(local) < 5 and 80 <= num(far) < 90 and num(back) < 5
    find(r"\d+ reads, 0 failed", out)
    assert "db-ap" not in find(r"Reads served by: (.*)", out)[0]


def why_it_broke(out):
    (users,) = find(r"saturates at [\d,]+ req/s, that is ~([\d,]+) users", out)
    assert 30_000 < num(users) < 36_000  # 2 IO channels at ~3 ms a read, 0.02 requests per user per second
    find(r"db\.io\s+│ M/M/2 .*│ agrees", out)
    (share,) = find(r"At 40,000 users the offered [\d,]+ req/s is (\d+)% of what db\.io can serve: no steady state", out)
    assert num(share) > 100


def sharding(out):
    (uniform_hot,) = find(r"keys uniform: .*\n.*\n   hottest shard db\d at (\d+)%", out)
    hot, median = find(r"hottest shard db\d at (\d+)% \(it owns item:0, the most popular\); "
                       r"the others \d+%-\d+%, median (\d+)%", out)
    assert num(uniform_hot) < 60 and num(hot) >= 95 and num(median) < 45
    ring, modulo = find(r"moves (\S+)% of 50,000 keys with a consistent-hash ring \(1/9 = 11\.1%\) "
                        r"and (\S+)% with hash % N", out)
    assert 8 < num(ring) < 14 and 85 < num(modulo) < 92


def connection_pool(out):
    (refused,) = find(r"pool 20, max_connections  100: \d+ ok, errors \{'too_many_connections': (\d+)\}", out)
    assert int(refused) > 0
    waits, p99 = find(r"pool 10, max_connections  100: \d+ ok, errors 0; peak connections 100, refused 0; "
                      r"(\d+) waits for a connection .* p99 (\d+) ms", out)
    (roomy_p99,) = find(r"pool 40, max_connections 1000: .* 0 waits for a connection .* p99 (\d+) ms", out)
    assert int(waits) > 0 and num(p99) > num(roomy_p99) + 20


def capacity_planning(out):
    plain, cached = find(r"Answer: for 10,000 users at p99 < 200 ms, without a cache (\d+) app servers \(p99 "
                         r"\S+ ms, 95% CI \[\S+, \S+\]; \$[\d,]+/month\), with a 2,500-item cache (\d+) app "
                         r"servers .*: the cache saves \$[\d,]+ a month\.", out)
    assert int(cached) < int(plain)
    assert out.count("minimum servers=") == 2
    # the server count below each answer was probed and missed
    assert f"servers={int(plain) - 1}: " in out and f"servers={int(cached) - 1}: " in out


def autoscaling(out):
    def fleet(label):
        p99, errors, hours = find(re.escape(label) + r": spike p99 \(worst second\)\s+(\S+) ms, errors\s+(\S+), "
                                  r"server-hours (\S+)", out)
        return num(p99), num(errors), num(hours)

    base, peak, auto = fleet("fixed 3 (base)"), fleet("fixed 10 (peak)"), fleet("autoscaled 3..12")
    assert peak[1] == 0 and base[1] > auto[1] > 0  # errors
    assert base[2] < auto[2] < peak[2]  # server-hours
    lag, settled = find(r"worst p99 (\S+) ms in the first 40 s of the spike, (\S+) ms once the fleet had grown", out)
    assert num(lag) > 2 * num(settled)


def queue_writes(out):
    (failed,) = find(r"Straight to the database: p99 \S+ ms, (\S+) of \S+ orders failed", out)
    assert num(failed) > 100
    (p99,) = find(r"Through the queue: p99 (\S+) ms, 0 of \S+ orders failed", out)
    assert num(p99) < 10
    (age,) = find(r"oldest message (\S+) s old at worst", out)
    assert num(age) > 10
    written, accepted = find(r"Caught up: depth 0, (\S+) orders written for (\S+) accepted", out)
    assert written == accepted


def rate_limit(out):
    (share,) = find(r"No limit:\s+polite clients \S+ of \S+ failed \((\d+)%\)", out)
    assert int(share) > 20
    find(r"20/s per client \(LB\):\s+polite clients 0 of \S+ failed \(0%\)", out)


def circuit_breaker(out):
    (share,) = find(r"Without a breaker: (\d+)% of pages failed while 'recs' was slow", out)
    assert int(share) > 80
    (guarded,) = find(r"With a breaker: (\S+)% of pages failed while 'recs' was slow", out)
    assert num(guarded) < 2
    (closed,) = find(r"Closed again at t=(\S+) s, after 'recs' recovered at t=50 s", out)
    assert 50 <= num(closed) < 57


def hedging(out):
    (plain,) = find(r"No hedging:\s+p50 \S+ ms, p99 (\S+) ms", out)
    hedged, extra = find(r"Hedge after 20 ms:\s+p50 \S+ ms, p99 (\S+) ms, backend requests \S+ \(\+(\S+)%\)", out)
    assert num(hedged) < num(plain) / 5 and 1 < num(extra) < 10


def load_shedding(out):
    (fifo,) = find(r"FIFO:\s+(\d+)% answered in time", out)
    (deadline,) = find(r"FIFO \+ deadline:\s+(\d+)% answered in time", out)
    (lifo,) = find(r"LIFO:\s+(\d+)% answered in time", out)
    (codel,) = find(r"CoDel 50 ms:\s+(\d+)% answered in time", out)
    assert int(fifo) < 20 < int(deadline) < int(lifo) and int(codel) > 50


CHECKS = {
    "autoscaling.py": autoscaling,
    "queue_writes.py": queue_writes,
    "rate_limit.py": rate_limit,
    "circuit_breaker.py": circuit_breaker,
    "hedging.py": hedging,
    "load_shedding.py": load_shedding,
    "stage1_monolith.py": stage1,
    "stage2_separate_db.py": stage2,
    "stage3_horizontal.py": stage3,
    "stage4_cache_cdn.py": stage4,
    "stage5_dns_regions.py": stage5,
    "failover.py": failover,
    "l4_vs_l7.py": l4_vs_l7,
    "cache_aside.py": cache_aside,
    "stampede.py": stampede,
    "sessions.py": sessions,
    "vertical_vs_horizontal.py": vertical_vs_horizontal,
    "cdn_regions.py": cdn_regions,
    "quart_app.py": quart_app,
    "aiocache_api.py": aiocache_api,
    "fault_injection.py": fault_injection,
    "db_failover.py": db_failover,
    "nearest_replica.py": nearest_replica,
    "why_it_broke.py": why_it_broke,
    "sharding.py": sharding,
    "connection_pool.py": connection_pool,
    "capacity_planning.py": capacity_planning,
}


_RUNS: dict[str, "make_examples.Run"] = {}


def run_example(name: str) -> "make_examples.Run":
    """Run an example once per test session (the docs checks reuse the run)."""
    if name not in _RUNS:
        _RUNS[name] = make_examples.run(EXAMPLES / name)
    return _RUNS[name]


def test_every_example_has_a_check():
    assert sorted(p.name for p in make_examples.discover()) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs_and_says_what_the_docs_quote(name):
    done = run_example(name)
    assert done.returncode == 0, done.stderr
    CHECKS[name](done.stdout)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_tables_fit_a_100_column_terminal_without_cutting_anything(name):
    done = run_example(name)  # run with COLUMNS=100, as a pipe to a 100-column terminal
    assert done.returncode == 0, done.stderr
    tables = [line for line in done.stdout.splitlines() if make_examples._TABLE.search(line)]
    assert all(len(line.rstrip()) <= 100 for line in tables), max(tables, key=len)
    assert "…" not in done.stdout  # rich marks what it had to cut


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"(?m)^(?=## )", text)
    out = {}
    for part in parts[1:]:
        match = re.match(r"## .* \(`([\w.]+\.py)`\)\n", part)
        assert match, f"a section of docs/EXAMPLES.md does not name its example: {part[:80]!r}"
        out[match.group(1)] = part.rstrip("\n") + "\n"
    return out


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_docs_examples_page_shows_this_examples_current_output(name):
    page = _sections(make_examples.PAGE.read_text(encoding="utf-8"))
    assert list(page) == [p.name for p in make_examples.discover()], "run python docs/make_examples.py"
    done = run_example(name)
    assert done.returncode == 0, done.stderr
    assert page[name] == make_examples.section(EXAMPLES / name, done.stdout), \
        f"docs/EXAMPLES.md is stale for {name}: run python docs/make_examples.py"


def test_the_readme_table_shows_every_examples_current_output():
    paths = make_examples.discover()
    runs = {p.name: run_example(p.name) for p in paths}
    readme = make_examples.README.read_text(encoding="utf-8")
    assert make_examples.comparable(readme) == make_examples.comparable(make_examples.with_table(readme, paths, runs)), \
        "README.md's examples table is stale: run python docs/make_examples.py"
    page = make_examples.PAGE.read_text(encoding="utf-8")
    assert make_examples.comparable(page) == make_examples.comparable(make_examples.page(paths, runs))


def _fenced_blocks(text: str) -> list[list[str]]:
    """The plain ``` blocks of a Markdown text (no language: output), each as its lines without trailing spaces."""
    blocks, current, plain = [], None, False
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, plain = [], line.strip() == "```"
            else:
                if plain and current:
                    blocks.append(current)
                current = None
        elif current is not None:
            current.append(line.rstrip())
    return blocks


def test_what_the_readme_quotes_of_an_examples_output_is_its_output_today():
    """A README block that starts as a line of an example's output does (as docs/EXAMPLES.md holds it, and
    that page is checked against fresh runs) must be that output, line for line."""
    page = [line.rstrip() for line in make_examples.PAGE.read_text(encoding="utf-8").splitlines()]
    quoted = 0
    for block in _fenced_blocks(make_examples.README.read_text(encoding="utf-8")):
        starts = [i for i, line in enumerate(page) if line.strip() and line[:24] == block[0][:24]]
        if not starts or block[0].startswith(("python", "playground", "$")):
            continue  # commands, and blocks that are not an example's output
        quoted += 1
        assert any(page[i:i + len(block)] == block for i in starts), (
            f"README.md quotes an example's output that has changed, from {block[0]!r}: "
            "paste it again from docs/EXAMPLES.md")
    assert quoted >= 2  # the capacity answer and why_it_broke's table at least


def test_the_readmes_figures_for_the_fault_injection_page_are_this_runs(tmp_path):
    """The README gives the page's size and the run's request count: both must be what the example makes."""
    page = tmp_path / "run.html"
    done = subprocess.run([sys.executable, str(EXAMPLES / "fault_injection.py"), "--html", str(page)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    sent = int(re.search(r"^(\d+) requests, ", done.stdout, re.M).group(1))
    kb = round(page.stat().st_size / 1024)
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"fault-injection example's page is {kb} KB for 30 simulated seconds, five hosts and {sent:,} requests"
            in readme), f"README.md: the fault-injection page is {kb} KB for {sent:,} requests now"
