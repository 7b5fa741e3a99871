"""The engine's fast paths change how much work a request costs, never what happens.

* An ``AppServer`` with no handler serves its requests with scheduler callbacks
  instead of a worker task; with a handler that does the same (answer 200 "ok")
  it takes the task path. Both must give the same report, to the byte, through
  queueing, crashes, timeouts and retries.
* Entries due at the current time wait in a FIFO beside the heap; they fire in
  the same (time, order made) sequence as if they were in the heap. Entries
  nobody cancels (``Scheduler.post``) are plain lists, in the same order.
* A ``Workload`` joins a request's path around its template's one field
  instead of calling ``str.format``: the same paths, and the same as
  ``str.format`` for any other template.
* Answered requests leave the timeout FIFO early; the timeouts that do fire
  fire at the same moments.
* A lone task woken by the scheduler is stepped inside the virtual clock, not
  in a trio round of its own: same report, and trio (locks, nurseries, cancel
  scopes, ``trio.sleep``) works in it as in any task.
* ``Node.call`` returns the network's call to await instead of being a
  coroutine of its own; a server's class with a ``call`` of its own (``async
  def``, awaiting ``super().call``) still sees every call its handler makes.
* A task's waits on the engine (a sleep, a core, a call's answer) share trap
  messages and a wake-up made once for the task (``TaskWaits``), which find what
  the task waits on in ``task.custom_sleep_data``: a cancelled wait is disarmed
  and never wakes it later, and a child task (whose context starts as a copy of
  its parent's) waits with its own.
* A kind of host gets its own copy of each hot method it inherits (its
  ``_hot_methods``), so that CPython specialises each copy for one class: the
  same function in everything but its code object's identity.
"""
from __future__ import annotations

import math
import random

import trio

from components import AppServer
from playground import ClosedLoop, Exponential, OpenLoop, Request, Response, Sim, VirtualClock
from playground._clock import Scheduler, _TaskStepper


async def _ok(request, ctx):
    return Response(200, body=b"ok")


def _without_declared_service(report_json: str) -> str:
    """What a component *declares* about its service differs by construction (a handler's
    CPU is unknown until measured); everything measured must be the same."""
    import json

    data = json.loads(report_json)
    for station in data["stations"]:
        station.pop("declared_mean_s"), station.pop("declared_scv")
    return json.dumps(data, sort_keys=True)


def _run(handler, *, seed: int) -> str:
    sim = Sim(seed=seed)
    sim.add(AppServer("app", handler, cores=2, workers=5, queue_limit=40, cpu_s=Exponential(0.003)))
    sim.load(OpenLoop("app", rate=900, timeout_s=0.15, retries=1))
    sim.load(ClosedLoop("app", users=6, think_time_s=Exponential(0.01), client="mobile", timeout_s=0.2))
    sim.at(1.0, sim.crash, "app", 0.25)
    sim.at(1.8, sim.slow, "app", None, 2.0)
    sim.at(2.2, sim.partition, "client", "app")
    sim.at(2.4, sim.repair, "client", "app")
    return _without_declared_service(sim.run(duration_s=3).to_json())


def test_a_server_without_handler_runs_inline_and_reports_exactly_what_the_task_path_does():
    for seed in (1, 2):
        inline, tasks = _run(None, seed=seed), _run(_ok, seed=seed)
        assert '"reset"' in inline and '"timeout"' in inline  # the story had crashes and timeouts
        assert inline == tasks


def test_only_a_server_without_handler_or_app_takes_the_inline_path():
    sim = Sim(seed=1)
    plain, custom = sim.add(AppServer("plain")), sim.add(AppServer("custom", _ok))
    sim.run(duration_s=0.1)
    assert plain._serve_inline is not None
    assert custom._serve_inline is None


def test_entries_due_now_and_heap_entries_fire_in_the_order_they_were_made():
    sched = Scheduler()
    fired: list[str] = []
    sched.call_at(0.0, fired.append, "a")  # due now: the FIFO
    sched.call_later(0.0, fired.append, "b")  # the heap, same time, made later
    sched.call_soon(fired.append, "c")  # the FIFO again
    sched.call_later(0.5, lambda _: sched.call_soon(fired.append, "e"))
    sched.call_at(0.5, fired.append, "d")  # made before "e" is
    assert sched.pending == 5
    assert sched.fire_until(1.0) is False
    assert fired == ["a", "b", "c", "d", "e"]
    assert sched.fired == 6 and sched.now == 0.5 and sched.pending == 0


def test_posted_entries_fire_in_the_order_call_at_entries_made_at_the_same_moments_would():
    def story(sched: Scheduler, post: bool) -> list[str]:
        fired: list[str] = []
        at = sched.post if post else sched.call_at
        at(0.0, fired.append, "a")  # due now
        sched.call_at(0.0, fired.append, "b")
        at(0.25, fired.append, "c")
        sched.call_later(0.25, fired.append, "d")  # the same time, made later
        at(0.1, lambda _: at(0.1, fired.append, "f"))  # due when made, behind "e"
        sched.call_at(0.1, fired.append, "e")
        sched.call_at(0.05, lambda _: at(0.1, fired.append, "g"))  # made after "f"'s parent, before "f"
        assert sched.fire_until(1.0) is False
        return fired

    assert story(Scheduler(), post=True) == story(Scheduler(), post=False) == ["a", "b", "e", "g", "f", "c", "d"]


def test_a_workloads_paths_are_what_str_format_gives_for_every_template():
    from playground import Workload

    templates = ["/item/{key}", "{key}", "/k/{key}.json", "/k/{key:05d}", "/a{{b}}/{key}", "/k/{key}/{key}",
                 "/k/{key!r}", "/fixed"]
    for template in templates:
        for static in ("/static/{asset}.js", "/s/{asset:>3}"):
            w = Workload(keys=5000, write_share=0.1, static_share=0.2, item_path=template, static_path=static)
            rng, draws = random.Random(7), random.Random(7)
            for _ in range(300):
                request = w.request(rng)
                u = draws.random()  # the same draws, the paths made with str.format
                if u < 0.2:
                    expected = static.format(asset=int(draws.random() * w.static_assets))
                else:
                    expected = template.format(key=w._zipf.sample(draws))
                assert request.path == expected, (template, static)


def test_timeouts_fire_on_time_while_thousands_of_answered_requests_leave_early():
    sim = Sim(seed=3, default_latency_s=0.0)
    sim.add(AppServer("app", cores=1, workers=1, queue_limit=None, cpu_s=0.001))
    sim.load(OpenLoop("app", rate=2000, arrivals="constant", timeout_s=0.5))
    report = sim.run(duration_s=2)
    # 1000 served per second; the queue grows by 1000 a second, so from 0.5 s on the oldest wait too long
    stats = report.clients["openloop->app"]
    assert stats.ok + stats.errors["timeout"] + stats.in_flight == stats.sent
    assert stats.errors["timeout"] > 1000
    assert stats.latency.max_s < 0.5


def _timeout_story(fifo: bool) -> tuple[list, int]:
    """1,000 requests a second for 3 s, timeout 0.5 s: a quarter never answered, the rest after
    up to 0.8 s. Timeouts through the FIFO, or one timer per request cancelled by its answer."""
    from playground._network import Exchange, Network, _Deadlines
    from playground._errors import Timeout

    sched = Scheduler()
    net = Network(random.Random(0))
    net.sched = net._deadlines_sched = sched
    rng = random.Random(7)
    log: list = []
    timeouts = net._deadlines[0.5] = _Deadlines(net, 0.5)

    def send(i: int) -> None:
        ex = Exchange(None, "c", "s", lambda result: log.append((sched.now, i, type(result).__name__)), sched.now)
        if fifo:
            timeouts.add(ex)
            timer = None
        else:
            timer = sched.call_later(0.5, lambda _: ex.finish(Timeout("")))
        if rng.random() < 0.75:
            sched.call_later(rng.random() * 0.8, answer, (ex, timer))

    def answer(item) -> None:
        ex, timer = item
        if timer is not None:
            timer.cancel()
        ex.finish(Response())

    for i in range(3000):
        sched.call_at(i / 1000, send, i)
    sched.fire_until(math.inf)
    return log, sched.fired


def test_the_timeout_fifo_fires_where_one_timer_per_request_would():
    fifo, individual = _timeout_story(True), _timeout_story(False)
    kinds = {kind for _, _, kind in fifo[0]}
    assert kinds == {"Timeout", "Response"} and len(fifo[0]) == 3000
    assert fifo == individual  # the same answers and timeouts, at the same moments, in the same order, same count


# -- lone woken tasks stepped inside the virtual clock ------------------------------------


def _trio_handler():
    """A handler that uses trio itself: a lock, a nursery, a cancel scope, trio.sleep, its own task."""
    lock = trio.Lock()

    async def handler(request, ctx):
        me = trio.lowlevel.current_task()
        await ctx.cpu(Exponential(0.002))
        async with lock:
            await trio.sleep(0.0005)
        with trio.move_on_after(0.001) as scope:
            await ctx.sleep(0.01 if request.id % 3 == 0 else 0.0001)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ctx.sleep, 0.0002)
        assert trio.lowlevel.current_task() is me
        return Response(200, body=b"cancelled" if scope.cancelled_caught else b"ok")

    return handler


def _run_trio_story(step_tasks: bool, monkeypatch) -> str:
    monkeypatch.setattr(VirtualClock, "step_tasks", step_tasks)
    sim = Sim(seed=4)
    sim.add(AppServer("app", _trio_handler(), cores=2, workers=6, queue_limit=30))
    sim.load(OpenLoop("app", rate=400, timeout_s=0.2, retries=1))
    sim.at(0.7, sim.crash, "app", 0.2)
    return sim.run(duration_s=1.5).to_json()


def test_tasks_stepped_by_the_clock_report_exactly_what_trio_rounds_give(monkeypatch):
    stepped, plain = _run_trio_story(True, monkeypatch), _run_trio_story(False, monkeypatch)
    assert '"reset"' in stepped and '"ok": 0' not in stepped
    assert stepped == plain
    assert _run(_ok, seed=1) == _run(None, seed=1)  # and the task path still matches the inline one


def test_the_clock_steps_lone_woken_tasks_itself(monkeypatch):
    steps = []
    real_step = _TaskStepper.step
    monkeypatch.setattr(_TaskStepper, "step", lambda self: steps.append(1) or real_step(self))
    _run(_ok, seed=1)
    assert len(steps) > 1000


async def test_a_stepped_task_is_cancelled_by_its_scope_as_in_a_trio_round(virtual_clock):
    sched = virtual_clock.scheduler
    log = []

    async def sleeper():
        try:
            while True:
                await sched.sleep(0.001)
                log.append(sched.now)
        except trio.Cancelled:
            log.append("cancelled")
            raise

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        sched.call_later(0.0105, lambda _: nursery.cancel_scope.cancel())
        await trio.sleep_forever()
    assert log[-1] == "cancelled" and len(log) == 11


def test_engine_wake_ups_are_trio_reschedules_that_instruments_see():
    """The engine wakes tasks with its own copy of ``Runner.reschedule``; an instrument that
    watches scheduling, added mid-run, sees every wake-up from then on."""
    scheduled = []

    class Watch(trio.abc.Instrument):
        def task_scheduled(self, task):
            scheduled.append(task)

    async def main():
        sched = trio.lowlevel.current_clock().scheduler
        await sched.sleep(0.5)  # before the instrument: not seen
        trio.lowlevel.add_instrument(Watch())
        for _ in range(3):
            await sched.sleep(0.5)
        return trio.lowlevel.current_task(), sched.now

    me, now = trio.run(main, clock=VirtualClock())
    assert now == 2.0 and scheduled.count(me) == 3  # the three wake-ups after it was added


def test_the_engines_reschedule_leaves_anything_unusual_to_trios_own():
    from collections import deque
    from types import SimpleNamespace

    from playground._clock import _reschedule_for

    slow = []
    runner = SimpleNamespace(runq=deque(), instruments=SimpleNamespace(data={"_all": {}}), is_guest=False,
                             reschedule=lambda task, value: slow.append((task, value)))
    fast = _reschedule_for(runner)
    task = SimpleNamespace(_next_send_fn=None, _next_send=None, _runner=runner, _abort_func=print,
                           custom_sleep_data=1, coro=SimpleNamespace(send=len))
    fast(task, "v")
    assert list(runner.runq) == [task] and (task._next_send_fn, task._next_send) == (len, "v")
    assert task._abort_func is None and task.custom_sleep_data is None and not slow
    fast(task, "again")  # already runnable: trio's own asserts it was blocked
    other = SimpleNamespace(_next_send_fn=None, _runner=object())  # another run's task
    fast(other, "x")
    runner.instruments.data["task_scheduled"] = {}
    blocked = SimpleNamespace(_next_send_fn=None, _runner=runner)
    fast(blocked, "y")
    runner.instruments.data.clear()
    runner.is_guest = True
    fast(blocked, "z")
    assert slow == [(task, "again"), (other, "x"), (blocked, "y"), (blocked, "z")] and len(runner.runq) == 1


def test_percentiles_from_the_counts_are_exactly_hdr_histograms_own():
    from hdrh.histogram import HdrHistogram

    from playground._metrics import LatencyHistogram

    rng = random.Random(7)
    dense = 0
    for figures in (2, 3):
        for n in (1, 2, 7, 5000, 40_000):
            ours, theirs = LatencyHistogram(figures), HdrHistogram(1, 3_600_000_000, figures)
            for i in range(n):
                # now and then one below a microsecond or past the hour: its batch takes the clamp
                seconds = (0.0, 4e-7, 4000.0)[i % 3] if i % 1500 == 17 else rng.lognormvariate(-5, 2)
                ours.record(seconds)
                theirs.record_value(min(max(int(seconds * 1e6 + 0.5), 1), 3_600_000_000))
            qs = (0, 1, 50, 90, 99, 99.9, 100)
            assert ours.percentiles(qs) == [theirs.get_value_at_percentile(q) / 1e6 for q in qs]
            assert ours.percentile(99) == theirs.get_value_at_percentile(99) / 1e6
            dense += ours._dense is not None
    assert dense  # the dense form (past DENSE_AT live buckets) was read too


def test_a_servers_own_call_still_sees_its_handlers_calls():
    seen = []

    class Counting(AppServer):
        async def call(self, dst, request, timeout_s=30.0):
            seen.append((dst, request.path))
            return await super().call(dst, request, timeout_s)

    async def handler(request, ctx):
        await ctx.call("backend", Request("GET", "/x"))
        return (await ctx.get("backend", "/y"))

    sim = Sim(seed=1)
    sim.add(Counting("front", handler, calls=("backend",)))
    sim.add(AppServer("backend", cpu_s=0.001))
    sim.load(OpenLoop("front", rate=20))
    report = sim.run(duration_s=2)
    assert report.ok > 20 and not report.errors
    assert len(seen) >= 2 * report.ok  # both calls of every answered request (and of those in flight)
    assert {p for _, p in seen} == {"/x", "/y"} and {d for d, _ in seen} == {"backend"}


def test_each_kind_of_host_runs_its_own_copy_of_the_hot_methods():
    from components import CacheServer, L4Balancer, L7Balancer
    from components.backend_pool import BalancerBase
    from playground import Node

    kinds = (AppServer, CacheServer, L7Balancer, L4Balancer)
    for name in BalancerBase._hot_methods:
        assert name in Node._hot_methods or name in BalancerBase.__dict__
    for name in Node._hot_methods:
        functions = [getattr(cls, name) for cls in kinds]
        codes = {id(f.__code__) for f in functions}
        assert len(codes) == len(kinds), name  # no two kinds share the code
        base = getattr(Node, name)
        for f in functions:
            if f.__code__.co_code == base.__code__.co_code:  # a copy, not an override: the same in all else
                assert (f.__qualname__, f.__module__, f.__defaults__, f.__closure__, f.__doc__) == (
                    base.__qualname__, base.__module__, base.__defaults__, base.__closure__, base.__doc__)
                assert f.__code__.co_firstlineno == base.__code__.co_firstlineno  # tracebacks point at the source
    # a method the subclass writes itself is its own, and ``super()`` in a copy still reaches the base
    calls = []

    class Own(AppServer):
        def _complete(self, ex, response):
            calls.append(response.status)
            super()._complete(ex, response)

    class Later(Own):
        pass

    assert Own._complete.__qualname__.endswith("Own._complete")
    assert Later._complete.__code__ is not Own._complete.__code__
    sim = Sim(seed=1)
    sim.add(Later("app", cpu_s=0.001))
    sim.load(OpenLoop("app", rate=50))
    report = sim.run(duration_s=1)
    assert report.ok > 20 and len(calls) >= report.ok and set(calls) == {200}


async def test_a_tasks_waits_share_one_taskwaits_and_a_cancelled_one_never_wakes_it(virtual_clock, monkeypatch):
    from playground import _clock

    made = []
    real_init = _clock.TaskWaits.__init__
    monkeypatch.setattr(_clock.TaskWaits, "__init__", lambda self, task, sched: made.append(task) or real_init(self, task, sched))
    sched = virtual_clock.scheduler
    log = []

    async def sleeper(name, naps):
        for _ in range(naps):
            await sched.sleep(0.001)
        log.append((name, sched.now))
        with trio.move_on_after(0.0005):  # cancelled while its entry is in the heap
            await sched.sleep(0.002)
        log.append((name, "moved on", sched.now))
        await sched.sleep(0.01)  # a stray wake-up from the cancelled entry would come in this sleep
        log.append((name, "done", sched.now))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, "a", 3)
        nursery.start_soon(sleeper, "b", 5)
    assert log == [("a", 0.003), ("a", "moved on", 0.0035), ("b", 0.005), ("b", "moved on", 0.0055),
                   ("a", "done", 0.0135), ("b", "done", 0.0155)]
    assert sorted(map(id, made)) == sorted(map(id, set(made))) and len(made) == 2  # once a task, not once a wait


def test_child_tasks_of_a_handler_wait_with_their_own_taskwaits():
    """Children inherit a copy of their parent's context, and with it the parent's ``TaskWaits``:
    a child must make its own, or its answers would wake the parent."""
    async def backend(request, ctx):
        await ctx.cpu(0.001 * int(request.path.rsplit("/", 1)[1]))
        return Response(200, body=request.path.encode())

    async def front(request, ctx):
        await ctx.cpu(0.0005)
        got = {}

        async def fetch(i):
            await ctx.sleep(0.0001 * i)
            got[i] = (await ctx.get("backend", f"/item/{i}")).body
            with trio.move_on_after(0.0002):  # a call given up on: its answer comes later, to nobody
                await ctx.get("backend", "/item/9")

        async with trio.open_nursery() as nursery:
            for i in (3, 1, 2):
                nursery.start_soon(fetch, i)
        await ctx.cpu(0.0005)
        assert got == {i: f"/item/{i}".encode() for i in (1, 2, 3)}, got
        return Response(200, body=b"ok")

    sim = Sim(seed=2)
    sim.add(AppServer("front", front, cores=2, workers=8, calls=("backend",)))
    sim.add(AppServer("backend", backend, cores=4, workers=32))
    sim.load(OpenLoop("front", rate=100))
    report = sim.run(duration_s=2)
    assert report.ok > 150 and not report.errors, report
