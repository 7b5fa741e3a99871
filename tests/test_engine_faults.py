"""Every fault verb and its inverse, as stories (turmoil style), under virtual time.

The cast: one ``server`` that takes 5 ms a request, a ``client`` 1 ms away,
and users sending 200 requests a second at even intervals (so each second of
the story has 200 of them). Marks taken with ``sim.at`` show what the server
had served at the moments that matter.
"""
from __future__ import annotations

from functools import partial

from playground import ClosedLoop, Node, OpenLoop, Response, Sim


class Server(Node):
    """Serves a request in ``service_s`` (times ``slow_factor``); notes the order requests start in."""

    kind = "server"

    def __init__(self, name: str, service_s: float = 0.005, concurrency: int | None = None) -> None:
        super().__init__(name, concurrency=concurrency, queue_limit=None)
        self.service_s = service_s
        self.started: list[int] = []

    async def handle(self, request):
        self.started.append(request.id)
        await self.sleep(self.service_s * self.slow_factor)
        return Response(200, body=b"ok")


def story(*, service_s=0.005, latency_s=0.001, rate=200.0, timeout_s=0.5, concurrency=None):
    sim = Sim(seed=1)
    server = sim.add(Server("server", service_s, concurrency))
    load = sim.load(OpenLoop("server", rate=rate, arrivals="constant", timeout_s=timeout_s))
    sim.link("client", "server", latency_s)
    served_at: dict[float, int] = {}

    def mark(t: float) -> None:
        sim.at(t, lambda: served_at.__setitem__(t, server.served))

    return sim, server, load, served_at, mark


def per_second(report, load):
    return {int(row.t_s): row for row in report.series[load.name]}


async def test_partition_times_requests_out_and_repair_brings_them_back(virtual_clock):
    sim, server, load, served_at, mark = story()
    sim.at(2, sim.partition, "client", "server")
    sim.at(4, sim.repair, "client", "server")
    mark(2.01), mark(4.0)  # at 2.01 the last request that got in before the cut is done

    report = await sim.run_async(6)

    assert served_at[4.0] == served_at[2.01]  # nothing got through
    second = per_second(report, load)
    assert second[3].ok == 0 and second[3].errors >= 199  # each one timed out 0.5 s after it left
    assert second[1].errors == second[5].errors == 0 and second[5].ok >= 199
    assert set(report.errors) == {"timeout"}  # silent: no error message, only no answer
    assert report.errors["timeout"] == report.network["dropped_partition"] + report.network.get("dropped_in_flight", 0)


async def test_a_one_way_partition_loses_only_one_direction(virtual_clock):
    sim, server, load, served_at, mark = story()
    sim.at(1, partial(sim.partition, "client", "server", one_way=True))  # requests cannot reach the server
    sim.at(2, partial(sim.repair, "client", "server", one_way=True))
    sim.at(3, partial(sim.partition, "server", "client", one_way=True))  # answers cannot come back
    sim.at(4, partial(sim.repair, "server", "client", one_way=True))
    for t in (1.0, 2.0, 3.0, 4.0):
        mark(t)

    report = await sim.run_async(5)

    assert served_at[2.0] - served_at[1.0] <= 1  # the way in was cut (one may have landed at 1.0)
    assert served_at[4.0] - served_at[3.0] >= 199  # the way in was open: the server did the work...
    assert per_second(report, load)[3].ok == 0  # ...and still nobody got an answer
    assert 398 <= report.errors["timeout"] <= 402 and set(report.errors) == {"timeout"}  # two seconds' worth


async def test_hold_keeps_messages_and_release_delivers_them_in_order(virtual_clock):
    sim, server, load, served_at, mark = story(timeout_s=5.0)
    sim.at(2.0, sim.hold, "client", "server")
    sim.at(2.5, sim.release, "client", "server")
    mark(2.01), mark(2.49), mark(2.6)

    report = await sim.run_async(4)

    assert served_at[2.49] == served_at[2.01]  # held: nothing arrives
    assert served_at[2.6] - served_at[2.49] >= 100  # released: the half second of requests lands
    assert server.started == sorted(server.started)  # in the order they were sent
    assert report.failed == 0 and report.ok == report.sent  # held, not lost
    assert 0.49 <= report.latency.max_s <= 0.52  # the first one held waited the whole half second


async def test_crash_refuses_and_resets_and_restart_serves_again(virtual_clock):
    sim, server, load, served_at, mark = story(service_s=0.050)  # 10 requests in service at any moment
    sim.at(2, sim.crash, "server")
    sim.at(3, sim.restart, "server")

    report = await sim.run_async(5)

    stats = report.components["server"]
    assert 8 <= report.errors["reset"] == stats.reset <= 12  # what it held when it died
    assert 195 <= report.errors["refused"] <= 201  # a second of requests, each refused
    assert stats.refused == report.errors["refused"]
    second = per_second(report, load)
    assert second[4].errors == 0 and second[4].ok >= 199  # back in business
    assert [d for _, d in report.events] == ["crash server", "restart server"]
    assert stats.up


async def test_slowing_a_host_slows_its_answers_and_healing_restores_them(virtual_clock):
    sim, server, load, served_at, mark = story(service_s=0.005)
    sim.at(2, sim.slow, "server", None, 10.0)
    sim.at(4, sim.heal, "server")

    report = await sim.run_async(6)

    p50_ms = {t: round(row.p50_s * 1000) for t, row in per_second(report, load).items()}
    assert p50_ms[1] == p50_ms[5] == 7  # 5 ms of work + 2 x 1 ms on the wire
    assert p50_ms[3] == 52  # ten times the work
    assert report.failed == 0


async def test_slowing_a_link_slows_the_trip_and_healing_restores_it(virtual_clock):
    sim, server, load, served_at, mark = story(latency_s=0.010)
    sim.at(2, sim.slow, "client", "server", 5.0)
    sim.at(4, sim.heal, "client", "server")

    report = await sim.run_async(6)

    p50_ms = {t: round(row.p50_s * 1000) for t, row in per_second(report, load).items()}
    assert p50_ms[1] == p50_ms[5] == 25  # 2 x 10 ms + 5 ms
    assert p50_ms[3] == 105  # 2 x 50 ms + 5 ms
    assert report.failed == 0


async def test_a_partition_loses_the_request_already_on_the_wire(virtual_clock):
    # one request a second over a 1 s link: the first leaves at t=1 and would land at t=2
    sim, server, load, served_at, mark = story(latency_s=1.0, rate=1.0, timeout_s=3.0)
    sim.at(1.5, sim.partition, "client", "server")
    sim.at(1.8, sim.repair, "client", "server")  # repaired before it would have landed: still lost

    report = await sim.run_async(3)  # requests at t=1 and t=2

    assert report.network["dropped_in_flight"] == 1
    assert report.network.get("dropped_partition", 0) == 0  # nothing was sent while cut
    assert server.started == [2]  # the second one, sent after the repair, got there
    assert report.ok == 1 and report.errors == {"timeout": 1}


async def test_a_partition_loses_the_answer_on_its_way_back(virtual_clock):
    sim, server, load, served_at, mark = story(latency_s=1.0, rate=1.0, timeout_s=3.0)
    sim.at(2.5, sim.partition, "server", "client")  # the answer to t=1 is on the wire from 2.005 to 3.005

    report = await sim.run_async(2)  # one request, at t=1

    assert report.components["server"].served == 1  # the work was done
    assert report.errors == {"timeout": 1} and report.network["dropped_in_flight"] == 1


def stalled_run(load, *, stall: bool):
    sim = Sim(seed=2)
    sim.add(Server("server", 0.005))
    sim.load(load)
    marks: dict[float, int] = {}
    for t in (2.0, 4.0):
        sim.at(t, lambda t=t: marks.__setitem__(t, load.metrics.sent))
    if stall:
        sim.at(2, sim.slow, "server", None, 1000.0)  # 5 s a request from t=2
    report = sim.run(duration_s=4, drain_s=0)
    return report, marks[4.0] - marks[2.0]


def test_open_loop_users_keep_arriving_at_a_stalled_server():
    normal, sent_normal = stalled_run(OpenLoop("server", rate=100, timeout_s=30), stall=False)
    stalled, sent_stalled = stalled_run(OpenLoop("server", rate=100, timeout_s=30), stall=True)
    assert sent_stalled == sent_normal and 150 <= sent_stalled <= 250  # the same arrivals, 100 a second
    assert stalled.sent == normal.sent
    assert stalled.in_flight > 150  # piling up: no coordinated omission


def test_closed_loop_users_stop_sending_to_a_stalled_server():
    users = dict(users=10, think_time_s=0.05, timeout_s=30)
    normal, sent_normal = stalled_run(ClosedLoop("server", **users), stall=False)
    stalled, sent_stalled = stalled_run(ClosedLoop("server", **users), stall=True)
    assert sent_normal > 300  # 10 users, one request every ~57 ms each
    assert sent_stalled <= 10  # each user sends at most once more, then waits for the answer
    assert stalled.in_flight <= 10


def test_a_plan_past_the_end_of_the_run_is_a_warning_not_silence():
    sim, server, load, _, _ = story()
    sim.at(1, sim.slow, "server", factor=2)
    sim.at(5, sim.crash, "server")
    sim.at(7, sim.heal, "server")
    short = sim.run(2)
    assert short.run_warnings == [
        "sim.at(5, sim.crash, 'server'); sim.at(7, sim.heal, 'server'): did not happen, the run lasted 2 s "
        "(sim.at times count from the start of each run: run longer, or plan it earlier)"]
    assert [what for _, what in short.events] == ["slow server x2"]
    assert "Warning: sim.at(5, sim.crash, 'server')" in str(short)
    long = sim.run(8)  # each run replays the plans from its own start: now all three happen
    assert long.run_warnings == []
    assert [what for _, what in long.events] == ["slow server x2", "crash server", "heal server"]


def test_restarting_a_host_that_is_up_or_crashing_one_that_is_down_says_nothing_was_done():
    sim, server, load, _, _ = story()
    sim.at(1, sim.restart, "server")
    sim.at(2, sim.crash, "server")
    sim.at(3, sim.crash, "server")
    report = sim.run(4)
    assert [what for _, what in report.events] == [
        "restart server: it was up, nothing done", "crash server", "crash server: it was down already, nothing done"]
