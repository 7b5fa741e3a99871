"""The circuit breaker: its state machine without trio, in a handler around ctx.call, and per backend."""
from __future__ import annotations

import re

import pytest

from components import AppServer, CircuitBreaker, CircuitOpen, L7Balancer
from playground import ConfigError, OpenLoop, Request, Response, Sim


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


# -- the state machine ----------------------------------------------------------------------------
def test_the_failure_rate_over_a_count_window_opens_the_breaker_after_minimum_calls():
    b = CircuitBreaker(failure_rate_threshold=0.5, window=10, minimum_calls=6, open_s=5.0, half_open_probes=2)
    for i in range(5):
        assert b.allow(i * 0.1)
        b.record(False, i * 0.1)
    assert b.state == "CLOSED"  # 5 failures, but fewer calls than minimum_calls
    b.record(True, 0.6)
    assert b.state == "OPEN" and b.failure_rate == pytest.approx(5 / 6)
    assert not b.allow(1.0) and b.not_permitted == 1
    assert b.state_at(5.6) == "HALF_OPEN"
    assert b.allow(5.6) and b.allow(5.6) and not b.allow(5.6)  # two probes, no more
    b.record(True, 5.7)
    b.record(True, 5.8)
    assert b.state == "CLOSED" and b.failure_rate == 0.0
    assert [to for _, _, to in b.transitions] == ["OPEN", "HALF_OPEN", "CLOSED"]


def test_a_failed_probe_opens_it_again_and_consecutive_failures_trip_at_once():
    b = CircuitBreaker(consecutive_failures=3, open_s=2.0, half_open_probes=1)
    for t in (0.0, 0.1, 0.2):
        b.record(False, t)
    assert b.state == "OPEN"
    assert b.allow(2.2)  # half-open: one probe
    b.record(False, 2.3)
    assert b.state == "OPEN" and not b.allow(3.0) and b.state_at(4.3) == "HALF_OPEN"


def test_a_time_window_forgets_old_failures_and_slow_calls_count_as_failures():
    b = CircuitBreaker(window_s=10.0, minimum_calls=4, failure_rate_threshold=0.5, slow_call_s=1.0)
    for t in (0.0, 1.0, 2.0):
        b.record(False, t)
    for t in (12.5, 13.0, 13.5):
        b.record(True, t)
    assert b.state == "CLOSED" and b.failure_rate == 0.0  # the failures left the window
    b.record(True, 14.0, duration_s=2.5)  # answered, but too slowly
    b.record(True, 14.1, duration_s=3.0)
    assert b.state == "CLOSED"  # 2 of 5 calls failed
    b.record(True, 14.2, duration_s=1.0)
    assert b.slow_calls == 3 and b.state == "OPEN"  # 3 of 6


def test_bad_breaker_configs_are_refused_with_clear_messages():
    with pytest.raises(ConfigError, match=exactly("failure_rate_threshold must be between 0 (excluded) and 1, got 0")):
        CircuitBreaker(failure_rate_threshold=0)
    with pytest.raises(ConfigError, match=exactly("window must be an integer >= 1, got 0")):
        CircuitBreaker(window=0)
    with pytest.raises(ConfigError, match=exactly("open_s must be > 0, got -1")):
        CircuitBreaker(open_s=-1)
    with pytest.raises(ConfigError, match=exactly("half_open_probes must be an integer >= 1, got 2.5")):
        CircuitBreaker(half_open_probes=2.5)
    with pytest.raises(ConfigError, match=exactly("consecutive_failures must be an integer >= 1 or None, got 0")):
        CircuitBreaker(consecutive_failures=0)
    with pytest.raises(ConfigError, match=exactly("window_s must be finite, got inf")):
        CircuitBreaker(window_s=float("inf"))
    with pytest.raises(ConfigError, match=exactly("circuit_breaker must be a CircuitBreaker or None, got 3")):
        L7Balancer("lb", ["a"], circuit_breaker=3)


# -- the story: a slow dependency ------------------------------------------------------------------
def dependency_sim(breaker: CircuitBreaker | None):
    """40 pages/s; each calls "recs" (20 ms) with a 1 s timeout. From t=20 to t=50 s "recs" takes 4 s."""
    sim = Sim(seed=11)
    served = []  # (time, "real" | "fallback" | "error")

    async def recs(request, ctx):
        await ctx.sleep(0.02)
        return b"[1, 2, 3]"

    async def page(request, ctx):
        call = Request("GET", "/recs")
        if breaker is None:
            response = await ctx.call("recs", call, timeout_s=1.0)
        else:
            response = await breaker.call(ctx, "recs", call, timeout_s=1.0,
                                          fallback=Response(200, body=b"[]  (popular items)"))
        served.append((ctx.now, "fallback" if "x-fallback" in response.headers else "real"))
        return response

    sim.add(AppServer("recs", recs, workers=200))
    sim.add(AppServer("app", page, cores=2, cpu_s=0.002, workers=8, queue_limit=50, calls=("recs",)))
    sim.load(OpenLoop("app", rate=40, timeout_s=2.0))
    sim.at(20, sim.slow, "app", "recs", 4000.0)  # 0.5 ms -> 2 s each way
    sim.at(50, sim.heal, "app", "recs")
    return sim, served


def window(report, t0, t1):
    rows = [r for r in report.series[next(iter(report.series))] if t0 <= r.t_s < t1]
    ok, errors = sum(r.ok for r in rows), sum(r.errors for r in rows)
    return errors / (ok + errors)


def test_circuit_breaker_keeps_the_app_up_on_a_fallback_and_closes_when_the_dependency_recovers():
    plain_sim, _ = dependency_sim(None)
    plain = plain_sim.run(70)
    # without a breaker: every worker waits a second on "recs", the accept queue fills, users time out
    assert window(plain, 22, 50) > 0.8
    app = plain.component("app")
    assert app.peak_in_system >= 8 + 50 and app.rejected > 500
    assert plain.errors.get("timeout", 0) > 100 and plain.errors.get("5xx", 0) > 100

    breaker = CircuitBreaker("recs", failure_rate_threshold=0.5, window=20, minimum_calls=10, open_s=5.0,
                             half_open_probes=3)
    guarded_sim, served = dependency_sim(breaker)
    guarded = guarded_sim.run(70)
    # with one: the first two seconds of timeouts open it; pages are served from the fallback meanwhile
    assert window(guarded, 23, 50) < 0.02 and guarded.failed < 0.02 * guarded.sent
    assert guarded.component("app").rejected < 100  # only before it opened (more than 500 without)
    fallbacks = [t for t, kind in served if kind == "fallback"]
    assert len(fallbacks) > 0.9 * 40 * 27 and 20.5 < min(fallbacks) < 23  # from the first timeouts on
    # it probed every open_s while "recs" was slow, and closed once it had healed
    opened = [t for t, _, to in breaker.transitions if to == "OPEN"]
    assert len(opened) >= 5 and 21 < opened[0] < 23  # 10 timeouts of 1 s, 8 workers waiting at a time
    closed_at = max(t for t, _, to in breaker.transitions if to == "CLOSED") - guarded_sim.sched.now + 70
    assert 50 <= closed_at < 57 and breaker.state == "CLOSED"
    assert all(kind == "real" for t, kind in served if t > closed_at + 1) and max(t for t, _ in served) > 65
    assert any("circuit recs: CLOSED -> OPEN" in e for _, e in guarded.events)


async def test_circuit_open_is_raised_without_a_fallback(virtual_clock):
    sim = Sim(seed=1)
    breaker = CircuitBreaker(consecutive_failures=1, open_s=60)
    seen = []

    async def page(request, ctx):
        try:
            await breaker.call(ctx, "down", Request("GET", "/"), timeout_s=0.1)
        except CircuitOpen as exc:
            seen.append(str(exc))
        except Exception as exc:
            seen.append(type(exc).__name__)
        return "ok"

    sim.add(AppServer("down"))
    sim.add(AppServer("app", page, calls=("down",)))
    sim.crash("down")
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    await sim.run_async(0.35)
    assert seen == ["Refused", "circuit 'breaker' is OPEN: call to 'down' not sent",
                    "circuit 'breaker' is OPEN: call to 'down' not sent"]


def test_a_balancer_keeps_a_breaker_per_backend_and_stops_sending_to_a_failing_one():
    sim = Sim(seed=3)

    async def broken(request, ctx):
        return Response(500, body=b"boom")

    sim.add(AppServer("good1"))
    sim.add(AppServer("good2"))
    sim.add(AppServer("bad", broken))
    sim.add(L7Balancer("lb", ["good1", "good2", "bad"], retries=0,
                       circuit_breaker=CircuitBreaker(window=10, minimum_calls=5, open_s=60)))
    sim.load(OpenLoop("lb", rate=30, timeout_s=2.0))
    report = sim.run(20)
    lb = report.component("lb").detail
    assert lb["circuits"]["bad"]["state"] == "OPEN" and lb["circuits"]["good1"]["state"] == "CLOSED"
    assert lb["sent"]["bad"] == 5  # the five failures that tripped it, then nothing
    assert report.failed == 5
