"""Overload protection at one server: deadlines, queue disciplines (LIFO, CoDel) and a bulkhead."""
from __future__ import annotations

import pytest

from components import AppServer, Bulkhead, CoDel, LIFO
from playground import ConfigError, Exponential, OpenLoop, Request, Response, Sim, Workload


def overloaded(discipline="fifo", propagate_deadline: bool = False, seed: int = 9):
    """150 requests/s at a server that does 100/s, with a deep accept queue; clients give up after 1 s."""
    sim = Sim(seed=seed)
    sim.add(AppServer("app", cores=1, workers=1, cpu_s=Exponential(0.01), queue_limit=5000,
                      queue_discipline=discipline))
    sim.load(OpenLoop("app", rate=150, timeout_s=1.0, propagate_deadline=propagate_deadline))
    return sim, sim.run(30)


def test_fifo_under_overload_serves_only_users_who_have_left():
    sim, report = overloaded("fifo")
    assert report.ok < 0.1 * report.sent  # the backlog passes the timeout in seconds; then every answer is late
    assert report.component("app").served > 0.6 * report.sent  # busy all along, for nobody


def test_deadline_propagation_skips_work_past_the_clients_timeout():
    sim, report = overloaded("fifo", propagate_deadline=True)
    skipped = report.component("app").detail["deadline_skipped"]
    assert skipped > 0.25 * report.sent  # requests whose client had gone: no CPU spent on them
    assert report.ok > 0.4 * report.sent  # the CPU goes to requests that can still be answered (FIFO: < 10%)


def test_load_shedding_with_lifo_or_codel_keeps_most_answers_fast():
    _, lifo = overloaded("lifo")
    assert lifo.ok > 0.55 * lifo.sent and lifo.latency.p50_s < 0.1  # the newest first: most users are fast
    _, codel = overloaded(CoDel(target_s=0.05, interval_s=0.1))
    shed = codel.component("app").detail["shed"]
    assert codel.ok > 0.55 * codel.sent and codel.latency.p99_s < 0.5
    assert shed > 0.2 * codel.sent  # answered 503 at once instead of a timeout later
    assert codel.errors.get("timeout", 0) < 0.05 * codel.sent


def test_adaptive_lifo_is_fifo_while_the_queue_is_short():
    queue = LIFO(adaptive_above=2).make(None)
    queue.extend([1, 2])
    assert queue.popleft() == 1  # short: first come, first served
    queue.extend([3, 4, 5])
    assert queue.popleft() == 5  # long: newest first


def test_bad_discipline_configs_are_refused_with_clear_messages():
    with pytest.raises(ConfigError, match=r"^queue_discipline must be 'fifo', 'lifo', 'codel' or a FIFO/LIFO/CoDel "
                                          r"object, got 'random'$"):
        AppServer("app", queue_discipline="random")
    with pytest.raises(ConfigError, match=r"^target_s must be > 0, got 0$"):
        CoDel(target_s=0)
    with pytest.raises(ConfigError, match=r"^adaptive_above must be an integer >= 0 or None, got -1$"):
        LIFO(adaptive_above=-1)


# -- a bulkhead around one dependency ----------------------------------------------------------------
def two_dependencies(bulkhead: Bulkhead | None):
    """/report calls a "reports" service that hangs; /profile calls a fast "users" service."""
    sim = Sim(seed=13)

    async def hang(request, ctx):
        await ctx.sleep(30.0)
        return "late"

    async def fast(request, ctx):
        await ctx.sleep(0.005)
        return "ok"

    async def page(request, ctx):
        if request.route == "/report":
            call = Request("GET", "/daily")
            if bulkhead is None:
                return await ctx.call("reports", call, timeout_s=2.0)
            return await bulkhead.call(ctx, "reports", call, timeout_s=2.0, fallback=Response(503, body=b"busy"))
        return await ctx.call("users", Request("GET", "/me"), timeout_s=2.0)

    sim.add(AppServer("reports", hang, workers=1000))
    sim.add(AppServer("users", fast, workers=100))
    sim.add(AppServer("app", page, workers=8, queue_limit=20, calls=("reports", "users")))
    sim.load(OpenLoop("app", rate=10, name="report", timeout_s=3.0,
                      workload=Workload(make=lambda rng: Request("GET", "/report"))))
    sim.load(OpenLoop("app", rate=50, name="profile", timeout_s=3.0,
                      workload=Workload(make=lambda rng: Request("GET", "/profile"))))
    return sim.run(30)


def test_bulkhead_keeps_a_hanging_dependency_from_taking_every_worker():
    plain = two_dependencies(None)
    assert plain.clients["profile"].error_rate > 0.5  # the hanging calls hold all 8 workers
    bulkhead = Bulkhead("reports", max_concurrent=2)
    guarded = two_dependencies(bulkhead)
    profile = guarded.clients["profile"]
    assert profile.failed == 0 and profile.latency.p99_s < 0.05  # 6 workers stay free for it
    assert bulkhead.peak_active == 2 and bulkhead.rejected > 0.8 * guarded.clients["report"].sent


def test_bad_bulkhead_configs_are_refused_with_clear_messages():
    with pytest.raises(ConfigError, match=r"^max_concurrent must be an integer >= 1, got 0$"):
        Bulkhead(max_concurrent=0)
    with pytest.raises(ConfigError, match=r"^max_wait_s must be >= 0, got -1$"):
        Bulkhead(max_concurrent=1, max_wait_s=-1)
