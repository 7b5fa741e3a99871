"""When user code fails, the report says what failed, where, how often and since when.

A handler that raises is a 500 for its client (as in a real server) and a row
in its host's error table; a bad value from user code is that request's error;
a callback of the engine that raises ends the run as a named PlaygroundError,
never as trio's "internal error".
"""
from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from components import AppServer, Database, DatabaseClient
from playground import ConfigError, ErrorRecord, Node, OpenLoop, PlaygroundError, Request, Response, Sim, Workload
from playground._errortable import ASYNCIO_HINT, ErrorTable


def one_app(handler, *, rate: float = 10.0, duration_s: float = 2.0, **load) -> tuple[Sim, object]:
    sim = Sim(seed=1)
    sim.add(AppServer("app", handler))
    sim.load(OpenLoop("app", rate=rate, arrivals="constant", **load))
    return sim, sim.run(duration_s=duration_s)


def test_a_handler_that_raises_is_in_the_report_with_its_count():
    async def handler(request, ctx):
        raise ValueError("bug in my handler")

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    assert record == ErrorRecord("ValueError", "bug in my handler", 19, record.first_s, record.last_s,
                                 record.path, "")
    assert report.errors == {"5xx": 19}
    assert 0 < record.first_s < record.last_s < 2.0 and record.path.startswith("/item/")
    text = report.render(width=100)
    assert "bug in my handler" in text and "ValueError" in text
    assert "│    19 │" in text  # the count column
    saved = json.loads(report.to_json())["components"]["app"]["errors"]
    assert saved[0]["message"] == "bug in my handler" and saved[0]["count"] == 19


def test_the_error_table_keeps_the_top_messages_in_bounded_memory():
    table = ErrorTable(limit=3)
    for i in range(100):
        table.note("KeyError", f"'user-{i % 7}'", float(i), "/u")
    assert len(table) == 3 and table.total == 100
    assert table.other == 100 - sum(r.count for r in table.records())
    first = table.records()[0]
    assert (first.message, first.first_s, first.last_s) == ("'user-0'", 0.0, 98.0)


def test_distinct_messages_beyond_the_limit_are_counted_not_kept():
    async def handler(request, ctx):
        raise KeyError(request.path)

    sim, report = one_app(handler, rate=100, workload=Workload(keys=1000, zipf_exponent=0))
    stats = report.components["app"]
    assert len(stats.errors) == 20
    assert sum(r.count for r in stats.errors) + stats.errors_other == stats.handler_errors == 199


def test_a_handler_that_awaits_asyncio_is_told_this_runs_on_trio():
    async def handler(request, ctx):
        await asyncio.sleep(0.01)
        return "never"

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    assert (record.error, record.message, record.hint) == ("RuntimeError", "no running event loop", ASYNCIO_HINT)
    assert "this runs on trio, not asyncio" in report.render(width=200)  # one line: a hint wraps at 100 columns


def test_a_call_made_without_await_is_named_with_its_line_on_its_host():
    """``ctx.cpu(0.005)`` without ``await`` spends nothing and would pass silently (Python prints its
    RuntimeWarning once, to stderr): the report names the call, the line and the fix, every run."""
    db = DatabaseClient("db")

    async def handler(request, ctx):
        ctx.cpu(0.005)  # no await: no CPU is spent
        db.get(ctx, "k")  # nor is this read made
        return "ok"

    line = handler.__code__.co_firstlineno
    for _ in range(2):  # every run, not once a process
        sim = Sim(seed=1)
        sim.add(AppServer("app", handler, calls=("db",)))
        sim.add(Database("db"))
        sim.load(OpenLoop("app", rate=10))
        report = sim.run(duration_s=1)
        assert report.components["app"].warnings == (
            f"test_user_errors.py:{line + 1}: Context.cpu(...) was called without await: the coroutine never ran, "
            "so it did nothing (a ctx.cpu spent no CPU, a call sent nothing); write await before the call",
            f"test_user_errors.py:{line + 2}: DatabaseClient.get(...) was called without await: the coroutine "
            "never ran, so it did nothing (a ctx.cpu spent no CPU, a call sent nothing); write await before the call")
        assert report.components["app"].utilisation == 0.0 and report.components["db"].served == 0
        assert "without await" in report.render(width=100)


def test_a_handler_that_returns_an_unawaited_coroutine_is_told_to_await_it():
    db = DatabaseClient("db")

    async def handler(request, ctx):
        return db.get(ctx, "k")

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler, calls=("db",)))
    sim.add(Database("db"))
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    report = sim.run(duration_s=1)
    (record,) = report.components["app"].errors
    assert record.error == "ConfigError" and record.message == (
        "the handler returned the coroutine DatabaseClient.get(...) instead of its result: it was never awaited; "
        "write return await ...")
    assert report.errors == {"5xx": report.sent} and not report.warnings  # closed, so not warned about twice


def test_other_warnings_pass_through_a_run_as_before():
    import warnings

    async def handler(request, ctx):
        warnings.warn("my own deprecation", DeprecationWarning)
        return "ok"

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        one_app(handler, duration_s=0.5)
    assert {str(w.message) for w in seen} == {"my own deprecation"}


def test_a_handler_with_the_wrong_signature_is_refused_when_built():
    async def handler(request):
        return "ok"

    with pytest.raises(ConfigError, match=r"^AppServer 'app': handler must take \(request, ctx\), "
                                          r"got test_a_handler_with_the_wrong_signature_is_refused_when_built"
                                          r"\.<locals>\.handler\(request\)$"):
        AppServer("app", handler)


def test_a_database_client_aimed_at_no_host_is_a_named_error():
    db = DatabaseClient("nodb")

    async def handler(request, ctx):
        return await db.get(ctx, "k")

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    assert (record.error, record.message) == ("WiringError", "unknown host 'nodb' (known hosts: app, client)")


def test_a_database_client_declared_in_calls_is_checked_before_the_run():
    db = DatabaseClient("nodb")
    sim = Sim(seed=1)
    sim.add(AppServer("app", calls=db.hosts))
    with pytest.raises(PlaygroundError, match=r"^'app' sends to unknown host 'nodb'$"):
        sim.validate()


@pytest.mark.parametrize("answer, message", [
    (Response("200"), "'app': Response status must be an int from 100 to 599, got '200'"),
    (Response(42), "'app': Response status must be an int from 100 to 599, got 42"),
    (Response(200, body=12), "'app': Response body must be bytes or str, got 12"),
])
def test_a_bad_response_from_a_handler_is_that_requests_error(answer, message):
    async def handler(request, ctx):
        return answer

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    assert (record.error, record.message, record.count) == ("ConfigError", message, 19)
    assert report.errors == {"5xx": 19}


def test_a_text_body_is_sent_as_utf8_text():
    async def handler(request, ctx):
        return Response(200, body="héllo")

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler))
    got = []

    async def probe():
        got.append(await sim["client"].call("app", Request("GET", "/")))

    sim.load(OpenLoop("app", rate=1))
    sim.at(0.5, lambda: sim["client"].spawn(probe))
    report = sim.run(duration_s=1)
    assert report.errors == {}
    assert got[0].body == "héllo".encode() and got[0].headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("make, message", [
    (lambda rng: 1 / 0, ("ZeroDivisionError", "division by zero")),
    (lambda rng: None, ("ConfigError", "Workload make must return a Request, got None")),
])
def test_a_workload_that_fails_to_make_a_request_is_that_requests_error(make, message):
    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("app", rate=10, arrivals="constant", workload=Workload(make=make)))
    report = sim.run(duration_s=2)
    assert report.errors == {"workload": 19} and report.sent == 19
    ((host, record),) = report.error_table()
    assert (host, record.error, record.message, record.count) == ("client", *message, 19)
    assert record.hint == "in the Workload of load 'openloop->app'"


@pytest.mark.parametrize("step", ["sleep", "cpu"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_a_bad_time_in_a_handler_is_that_requests_error(step, bad):
    async def handler(request, ctx):
        await getattr(ctx, step)(bad)
        return "ok"

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    constraint = "finite" if bad == math.inf else ">= 0"
    assert (record.error, record.message) == ("ConfigError", f"ctx.{step} seconds must be {constraint}, got {bad!r}")
    assert report.errors == {"5xx": 19}


def test_slowing_a_host_infinitely_is_refused_before_the_run():
    sim = Sim(seed=1)
    sim.add(AppServer("app", cpu_s=0.01))
    sim.load(OpenLoop("app", rate=10))
    with pytest.raises(ConfigError, match=r"^slow factor must be finite, got inf$"):
        sim.slow("app", factor=math.inf)


def test_a_callback_that_raises_ends_the_run_as_a_named_playground_error():
    class Boom:
        name = "boom"
        armed = True

        def fire(self, _):
            if Boom.armed:
                Boom.armed = False
                raise RuntimeError("engine bug")

    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("app", rate=10))
    sim.at(0.5, lambda: sim.sched.call_later(0.1, Boom().fire))
    with pytest.raises(PlaygroundError, match=r"^Boom 'boom': callback .*Boom\.fire failed at t=0\.600000s: "
                                              r"RuntimeError\('engine bug'\)$") as info:
        sim.run(duration_s=2)
    assert isinstance(info.value.__cause__, RuntimeError)
    sim.run(duration_s=1)  # the Sim is usable again


def test_a_handler_that_blocks_the_thread_is_warned_about():
    async def handler(request, ctx):
        time.sleep(0.3)  # the mistake: blocks every host, costs no simulated time
        return "ok"

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler))
    sim.load(OpenLoop("app", rate=1, arrivals="constant"))
    report = sim.run(duration_s=2.5)
    (warning,) = report.wall_warnings
    assert warning.startswith("'app': test_a_handler_that_blocks_the_thread_is_warned_about.<locals>.handler "
                              "(test_user_errors.py:")
    assert "blocks the whole simulation and costs no simulated time" in warning
    assert "blocks the whole simulation" in report.render()
    assert "wall_warnings" not in report.to_json() and warning in json.loads(report.to_json(wall=True))["wall_warnings"]


def test_a_handler_that_waits_simulated_time_is_not_warned_about():
    async def handler(request, ctx):
        await ctx.sleep(0.3)
        return "ok"

    sim, report = one_app(handler)
    assert report.wall_warnings == []


def test_the_dashboard_snapshot_carries_each_hosts_top_errors():
    from playground.tools.live._sampler import Sampler

    async def handler(request, ctx):
        raise ValueError("bug in my handler")

    sim, report = one_app(handler)
    node = Sampler().sample(sim, [load.metrics for load in sim.loads])["nodes"]["app"]
    assert node["top_errors"] == [{"error": "ValueError", "message": "bug in my handler", "count": 19,
                                   "first_s": report.components["app"].errors[0].first_s,
                                   "last_s": report.components["app"].errors[0].last_s,
                                   "path": report.components["app"].errors[0].path, "hint": ""}]


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0, -1])
def test_a_bad_timeout_on_a_call_is_that_requests_error(bad):
    async def handler(request, ctx):
        return await ctx.get("app", "/x", timeout_s=bad)

    sim, report = one_app(handler)
    (record,) = report.components["app"].errors
    constraint = "finite" if bad == math.inf else "> 0"
    assert (record.error, record.message) == ("ConfigError", f"timeout_s must be {constraint}, got {bad!r}")


def test_an_idle_real_time_run_is_not_mistaken_for_a_blocked_one():
    sim = Sim(seed=1, realtime=True)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("app", rate=2, arrivals="constant"))
    report = sim.run(duration_s=0.3)  # 0.3 s of wall time, mostly waiting in trio's run loop
    assert report.wall_warnings == []


def test_a_handler_drawing_from_the_shared_random_module_is_told_its_run_will_not_repeat():
    """Same seed, different report - unless every draw comes from the Sim's streams. A handler that
    calls ``random.expovariate`` is named in the report (it cannot be made to repeat); ``ctx.rng``
    repeats and is not warned about."""
    import random

    from playground._sim import SHARED_RANDOM_WARNING

    async def shared(request, ctx):
        await ctx.cpu(random.expovariate(200))
        return "ok"

    async def own(request, ctx):
        await ctx.cpu(ctx.rng.expovariate(200))
        return "ok"

    _, report = one_app(shared)
    assert report.warnings == [SHARED_RANDOM_WARNING] and "ctx.rng" in SHARED_RANDOM_WARNING
    assert json.loads(report.to_json())["run_warnings"] == [SHARED_RANDOM_WARNING]
    assert f"Warning: {SHARED_RANDOM_WARNING[:40]}" in report.render(width=400)
    first, second = one_app(own)[1], one_app(own)[1]
    assert first.warnings == [] and first.to_json() == second.to_json()


def test_a_function_imported_by_name_from_random_is_caught_too():
    """``from random import expovariate`` bypasses the module's names; the generator's state still moved."""
    from random import expovariate

    from playground._sim import SHARED_RANDOM_WARNING

    async def imported(request, ctx):
        await ctx.cpu(expovariate(200))
        return "ok"

    assert one_app(imported)[1].warnings == [SHARED_RANDOM_WARNING]


def test_another_thread_drawing_from_random_during_a_run_is_not_the_models_doing():
    """A Dask worker's event loop draws from ``random`` for its own jitter while a run is under way in
    another thread: that changes nothing in the run and is not warned about."""
    import random
    import threading

    started, stop, draws = threading.Event(), threading.Event(), [0]

    def jitter():
        started.set()
        while not stop.is_set():
            random.random()
            draws[0] += 1
            stop.wait(0.0005)

    thread = threading.Thread(target=jitter, name="not-the-sim")
    thread.start()
    try:
        started.wait()

        async def own(request, ctx):
            await ctx.cpu(ctx.rng.expovariate(200))
            return "ok"

        before = draws[0]
        while draws[0] < before + 3:  # the run begins while the thread draws ...
            report = one_app(own, rate=2000.0, duration_s=5.0)[1]
    finally:
        stop.set()
        thread.join()
    assert report.warnings == []  # ... and the last one ran while it drew
    assert random.random is not None and getattr(random.random, "__self__", None) is random._inst  # unwrapped after


def test_runs_overlapping_in_two_threads_leave_the_random_module_as_it_was():
    """Two runs at once (``python -m trio`` runs each ``await sim.run_async`` in a worker thread): the
    second must not take the first's wrapper for the original and put it back when it ends."""
    import random
    import threading

    from playground._shared_random import SharedRandomWatch

    originals = (random.random, random.getrandbits)
    first, second = SharedRandomWatch(), SharedRandomWatch()
    first.start()
    done = threading.Event()

    def other_run():
        second.start()
        random.random()  # drawn in the second run's thread only
        done.set()

    thread = threading.Thread(target=other_run)
    thread.start()
    thread.join()
    assert done.is_set()
    first.stop()  # the first run ends while the second still watches
    assert random.random is not originals[0]
    second_drew = second._saw
    second.stop()
    assert (random.random, random.getrandbits) == originals
    assert "random" not in vars(random._inst) and "getrandbits" not in vars(random._inst)
    assert second_drew and not first._saw


def test_runs_overlapping_in_two_threads_leave_the_warnings_filters_as_they_were():
    import threading
    import warnings

    from playground._unawaited import UnawaitedCoroutines

    show, filters = warnings.showwarning, list(warnings.filters)
    first, second = UnawaitedCoroutines(), UnawaitedCoroutines()
    first.__enter__()
    thread = threading.Thread(target=second.__enter__)
    thread.start()
    thread.join()
    first.__exit__(None, None, None)  # the first run ends while the second still listens
    assert warnings.showwarning is not show
    second.__exit__(None, None, None)
    assert warnings.showwarning is show and warnings.filters == filters


def test_a_value_of_the_wrong_kind_is_called_what_it_should_be():
    from playground import OpenLoop as Open

    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    with pytest.raises(ConfigError, match=r"^duration_s must be a number > 0, got '10'$"):
        sim.run(duration_s="10")
    with pytest.raises(ConfigError, match=r"^add\(\) takes a Node \(a component\), got <OpenLoop client -> app>: "
                                          r"a load goes in with sim\.load\(\.\.\.\)$"):
        sim.add(Open("app", rate=5))


def test_a_run_in_which_nothing_sent_a_request_says_so():
    from playground._sim import NOTHING_SENT_WARNING

    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    report = sim.run(duration_s=1)
    assert report.sent == 0 and report.warnings == [NOTHING_SENT_WARNING] and "sim.load(" in NOTHING_SENT_WARNING

    class Ticker(Node):  # traffic from a host's own task counts: no warning
        kind = "ticker"

        def downstream(self):
            return ("app",)

        async def run(self):
            for _ in range(3):
                await self.sleep(0.1)
                await self.call("app", Request("GET", "/tick"))

    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.add(Ticker("ticker"))
    report = sim.run(duration_s=1)
    assert report.components["app"].served == 3 and report.warnings == []


@pytest.mark.parametrize("answer, message", [
    (404, "the handler returned 404, a number, which is not a response: return Response(404, ...) or a (body, "
          "status) pair"),
    (1.5, "the handler returned 1.5, a number, which is not a response: return Response(200, ...) or a (body, "
          "status) pair"),
    (True, "the handler returned True, a number, which is not a response: return Response(200, ...) or a (body, "
           "status) pair"),
])
def test_a_handler_that_returns_a_bare_number_is_told_what_to_return(answer, message):
    async def handler(request, ctx):
        return answer

    _, report = one_app(handler, duration_s=1)
    (record,) = report.components["app"].errors
    assert (record.error, record.message) == ("ConfigError", message) and report.ok == 0


def test_what_a_handler_may_return_is_what_quart_takes():
    answers = {"/text": ("hi", 200, b"hi"), "/bytes": (b"\x00", 200, b"\x00"), "/json": ({"a": [1]}, 200, b'{"a": [1]}'),
               "/none": (None, 204, b""), "/pair": (("gone", 410), 410, b"gone"),
               "/triple": (("made", 201, {"Location": "/item/7"}), 201, b"made"),
               "/headers": (("hi", {"x-served-by": "app"}), 200, b"hi"),
               "/pairs": (("hi", 202, [("x-a", "1")]), 202, b"hi")}
    seen, headers = {}, {}

    async def handler(request, ctx):
        return answers[request.path][0]

    async def front(request, ctx):
        for path in answers:
            r = await ctx.call("app", Request("GET", path))
            seen[path] = (r.status, r.body)
            headers[path] = r.headers
        return "ok"

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler))
    sim.add(AppServer("front", front, calls=("app",)))
    sim.load(OpenLoop("front", rate=2, arrivals="constant"))
    report = sim.run(duration_s=1)
    assert report.ok >= 1 and report.components["app"].errors == ()
    assert seen == {path: (status, body) for path, (_, status, body) in answers.items()}
    assert headers["/triple"]["location"] == "/item/7" and headers["/headers"]["x-served-by"] == "app"
    assert headers["/pairs"]["x-a"] == "1"


FORMS = "(body, status), (body, status, headers) or (body, headers), status an int from 100 to 599"


@pytest.mark.parametrize("answer, message", [
    (("gone", "410"), f"the handler returned ('gone', '410'): its status '410' is not an int from 100 to 599 "
                      f"(a response tuple is {FORMS})"),
    (("gone", True), f"the handler returned ('gone', True): its status True is not an int from 100 to 599 "
                     f"(a response tuple is {FORMS})"),
    (("gone", 999), f"the handler returned ('gone', 999): its status 999 is not an int from 100 to 599 "
                    f"(a response tuple is {FORMS})"),
    (("gone", 410, "x"), f"the handler returned ('gone', 410, 'x'): its headers 'x' are not a dict or a list of "
                         f"(name, value) pairs (a response tuple is {FORMS})"),
    ((1, 2, 3, 4), f"the handler returned a tuple of 4, (1, 2, 3, 4), which is not a response: a response tuple "
                   f"is {FORMS}; return a list for a JSON array"),
])
def test_a_response_tuple_quart_would_refuse_is_a_named_500(answer, message):
    async def handler(request, ctx):
        return answer

    _, report = one_app(handler, duration_s=1)
    (record,) = report.components["app"].errors
    assert (record.error, record.message) == ("ConfigError", message) and report.errors == {"5xx": report.sent}


@pytest.mark.parametrize("step", ["sleep", "cpu"])
def test_a_duration_written_as_text_in_a_handler_is_told_durations_are_seconds(step):
    async def handler(request, ctx):
        await getattr(ctx, step)("5ms")
        return "ok"

    _, report = one_app(handler, duration_s=1)
    (record,) = report.components["app"].errors
    assert (record.error, record.message) == (
        "ConfigError", f"ctx.{step} seconds must be a number of seconds, got the string '5ms': durations are plain "
                       "seconds everywhere (0.005 for 5 ms)")


def test_a_handler_that_calls_sys_exit_fails_its_request_not_the_simulation():
    async def handler(request, ctx):
        if request.path.endswith("/3"):
            raise SystemExit(3)
        return "ok"

    _, report = one_app(handler, rate=50, duration_s=2, workload=Workload(keys=5, zipf_exponent=0.0))
    (record,) = report.components["app"].errors
    assert (record.error, record.message) == ("SystemExit", "3")
    assert report.errors == {"5xx": record.count} and 0 < record.count < report.sent and report.ok > 0



def test_sim_run_inside_trio_says_to_await_run_async():
    import trio

    sim = Sim(seed=1)
    sim.add(AppServer("app"))
    sim.load(OpenLoop("app", rate=10))

    async def notebook_cell():
        sim.run(1)

    with pytest.raises(ConfigError, match=r"^sim\.run\(\) was called inside a running trio loop .*: there, write "
                                          r"report = await sim\.run_async\(\.\.\.\)$"):
        trio.run(notebook_cell)
    assert sim.run(1).ok > 0  # nothing was left half-started


def test_a_plan_given_the_result_of_a_call_says_to_pass_the_verb_and_its_arguments():
    sim = Sim(seed=1)
    sim.add(AppServer("app2"))
    with pytest.raises(ConfigError, match=r"^action must be callable, got None: the result of a call made now, not a "
                                          r"plan\? Pass the verb and its arguments, sim\.at\(5, sim\.crash, 'app2'\), "
                                          r"not sim\.at\(5, sim\.crash\('app2'\)\)$"):
        sim.at(5, sim.crash("app2"))


@pytest.mark.parametrize("given, hint", [
    ("least_connections", "write policy=LeastConnections() (from components import LeastConnections)"),
    ("power_of_two_choices", "write policy=PowerOfTwoChoices() (from components import PowerOfTwoChoices)"),
    ("fastest", "one of RoundRobin(), WeightedRoundRobin(), Random(), LeastConnections(), PowerOfTwoChoices(), "
                "SourceIPHash(), ConsistentHash() (from components)"),
])
def test_a_balancer_policy_given_by_name_is_told_which_object_to_write(given, hint):
    from components import L7Balancer

    with pytest.raises(ConfigError) as caught:
        L7Balancer("lb", ["a", "b"], policy=given)
    assert str(caught.value) == (f"policy must have a choose(backends, request, rng) method, got {given!r}: a policy "
                                 f"is an object, {hint}")


@pytest.mark.parametrize("loop", ["trio.sleep(0)", "ctx.sleep(0)", "ctx.cpu(0)"])
def test_a_handler_looping_without_waiting_simulated_time_ends_the_run_with_a_named_error(loop, monkeypatch):
    """Simulated time would never reach the run's end: after MAX_STILL_WALL_S of wall time at one
    instant (0.3 s here; the loop is endless, so how fast the machine is does not matter) the run
    ends with an error that says what happened, and the Sim can run again."""
    import trio

    from playground import limits

    monkeypatch.setattr(limits, "MAX_STILL_WALL_S", 0.3)
    spin = {"trio.sleep(0)": lambda ctx: trio.sleep(0), "ctx.sleep(0)": lambda ctx: ctx.sleep(0),
            "ctx.cpu(0)": lambda ctx: ctx.cpu(0)}[loop]
    broken = [True]

    async def handler(request, ctx):
        while broken[0] and ctx.now >= 1.0:
            await spin(ctx)
        return "ok"

    sim = Sim(seed=1)
    sim.add(AppServer("app", handler))
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    with pytest.raises(PlaygroundError, match=r"^simulated time stood still at t=1\.0\d+ s for [\d.]+ s of wall time "
                                              r"while the simulation kept working: something loops without waiting "
                                              r"simulated time .* \(now 0\.3 s\)$"):
        sim.run(3)
    broken[0] = False
    assert sim.run(1).ok > 0


def test_a_blocking_call_longer_than_the_still_limit_is_a_warning_not_the_stuck_error(monkeypatch):
    from playground import limits

    monkeypatch.setattr(limits, "MAX_STILL_WALL_S", 0.1)
    once = [True]

    async def handler(request, ctx):
        if once[0] and ctx.now >= 1.0:
            once[0] = False
            time.sleep(0.5)  # held in one place: blocking, not looping
        return "ok"

    _, report = one_app(handler, duration_s=2)
    assert report.ok == report.sent and len(report.wall_warnings) == 1


@pytest.mark.parametrize("make, message", [
    (lambda: __import__("playground").Population("app", users=10, rate_per_user=0.05),
     "Population takes no argument 'rate_per_user' (did you mean 'requests_per_user_per_s'?); it takes arrivals, "),
    (lambda: __import__("playground").ClosedLoop("app", users=3, think_s=1),
     "ClosedLoop takes no argument 'think_s' (did you mean 'think_time_s'?); it takes client, cookies, "),
    (lambda: OpenLoop("app", timeout=3), "OpenLoop takes no argument 'timeout' (did you mean 'timeout_s'?); "),
])
def test_a_load_given_a_misspelt_argument_names_the_one_it_takes(make, message):
    with pytest.raises(ConfigError) as caught:
        make()
    assert str(caught.value).startswith(message)
