"""Properties that hold for every topology, load and fault, found by hypothesis.

* Any valid topology under any load and any scheduled faults runs to the end
  without an exception escaping, accounts for every request exactly once,
  leaves none in flight once drained, and repeats exactly with the same seed.
* Any invalid configuration value, and any wiring that cannot work, raises
  ``playground.ConfigError`` (``WiringError`` is one) with a message - never a
  bare ``KeyError``/``TypeError``/``AttributeError``, and never a hang.

Examples are small (a few hosts, a few virtual seconds) so that a hundred of
them take seconds. ``derandomize=True`` makes CI explore the same examples
every run; drop it locally to search new ones.
"""
from __future__ import annotations

import functools
import math
from collections import Counter

import pytest
from hypothesis import HealthCheck as HypothesisHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from components import (AppServer, AutoScaler, CacheAside, CacheServer, ConsistentHash, Database, DatabaseClient,
                        HealthCheck, L4Balancer, L7Balancer, LeastConnections, MessageQueue, OutlierDetection,
                        PowerOfTwoChoices, QueueDepth, Random, RoundRobin, SlidingWindow, TargetTracking, TokenBucket,
                        WorkerPool)
from playground import (ClosedLoop, ConfigError, Constant, Exponential, LogNormal, OpenLoop, Population, Request,
                        Response, Sim, Uniform, Workload, Zipf)

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HypothesisHealthCheck.too_slow])


class Ledger:
    """Counts, per request id, how often a load reported it finished (the engine's ``_done`` hook)."""

    def __init__(self) -> None:
        self.finished: Counter[int] = Counter()


def ledgered(cls):
    class Ledgered(cls):
        def _done(self, pending, ok: bool) -> None:
            self.ledger.finished[pending.request.id] += 1
            super()._done(pending, ok)

    Ledgered.__name__ = f"Ledgered{cls.__name__}"
    return Ledgered


LOADS = {"open": ledgered(OpenLoop), "closed": ledgered(ClosedLoop)}


# -- valid topologies -----------------------------------------------------------------------------

def app_handler(plan: list[tuple[str, str]], cache: CacheAside | None, db: DatabaseClient | None):
    """Call each (kind, host) of ``plan`` in turn: another app, the cache (cache-aside) or the database."""

    async def handler(request: Request, ctx) -> Response:
        key = request.route.rsplit("/", 1)[-1] or "k"
        for kind, host in plan:
            if kind == "app":
                response = await ctx.call(host, Request(request.method, request.path, body=request.body), 1.0)
                if response.status >= 500:
                    return Response(502, body=b"downstream failed")
            elif kind == "cache" and cache is not None and db is not None:
                await cache.get(ctx, key, lambda: _load(ctx, db, key))
            elif kind == "db" and db is not None:
                if request.method == "POST":
                    await db.put(ctx, key, "v")
                else:
                    await db.get(ctx, key)
        return Response(200)

    return handler


async def _load(ctx, db: DatabaseClient, key: str) -> bytes:
    return ((await db.get(ctx, key)) or "").encode()


POLICIES = [RoundRobin, LeastConnections, PowerOfTwoChoices, Random, lambda: ConsistentHash("path")]
DISTRIBUTIONS = st.one_of(
    st.floats(0.0, 0.01).map(Constant),
    st.floats(0.0002, 0.01).map(Exponential),
    st.floats(0.0002, 0.01).map(lambda m: LogNormal(m, 0.6)),
    st.tuples(st.floats(0.0, 0.005), st.floats(0.0, 0.005)).map(lambda t: Uniform(min(t), max(t))),
)


def build(draw):
    """A small random web stack: optional balancer, 1-3 app servers, optional cache and database.

    ``draw`` takes a strategy and returns a value: hypothesis's, or a replay of an earlier build.
    """
    seed = draw(st.integers(0, 10_000))
    sim = Sim(seed=seed, default_latency_s=draw(st.sampled_from([0.0, 0.0005, 0.005])))
    has_db = draw(st.booleans())
    has_cache = has_db and draw(st.booleans())
    n_apps = draw(st.integers(1, 3))
    apps = [f"app{i}" for i in range(n_apps)]
    for i, name in enumerate(apps):
        plan = []
        for later in apps[i + 1:]:  # only forwards: no cycles
            if draw(st.booleans()):
                plan.append(("app", later))
        if has_cache and draw(st.booleans()):
            plan.append(("cache", "cache"))
        if has_db and draw(st.booleans()):
            plan.append(("db", "db"))
        cache = CacheAside("cache", ttl_s=draw(st.sampled_from([None, 0.5, 5.0]))) if has_cache else None
        db = DatabaseClient("db", timeout_s=draw(st.floats(0.05, 1.0))) if has_db else None
        cores = draw(st.integers(1, 3))
        sim.add(AppServer(name, app_handler(plan, cache, db), cores=cores,
                          workers=draw(st.sampled_from([None, 1, 2 * cores, 8])),
                          queue_limit=draw(st.sampled_from([None, 0, 1, 10])), cpu_s=draw(DISTRIBUTIONS),
                          memory_mb=draw(st.sampled_from([None, 120.0])), memory_per_request_mb=1.0,
                          restart_after_s=draw(st.sampled_from([None, 0.0, 0.3])),
                          calls=tuple(h for _, h in plan)))
    if has_cache:
        sim.add(CacheServer("cache", capacity_items=draw(st.integers(1, 50)),
                            policy=draw(st.sampled_from(["lru", "lfu", "random"])), op_latency_s=draw(DISTRIBUTIONS),
                            concurrency=draw(st.integers(1, 4)), queue_limit=draw(st.sampled_from([None, 0, 5]))))
    if has_db:
        sim.add(Database("db", read_latency_s=draw(DISTRIBUTIONS), write_latency_s=draw(DISTRIBUTIONS),
                         io_capacity=draw(st.integers(1, 4)), max_connections=draw(st.integers(1, 20)),
                         queue_limit=draw(st.sampled_from([None, 0, 10]))))
    front = draw(st.sampled_from(["none", "l7", "l4"]))
    target = apps[0]
    if front != "none":
        backends = apps[: draw(st.integers(1, n_apps))]
        policy = draw(st.sampled_from(POLICIES[:4] if front == "l4" else POLICIES))()
        health = draw(st.sampled_from([None, HealthCheck(interval_s=0.2, timeout_s=0.1, rise=1, fall=1)]))
        outlier = draw(st.sampled_from([None, OutlierDetection(consecutive_errors=2, ejection_s=0.5)]))
        if front == "l7":
            lb = L7Balancer("lb", backends, policy=policy, health_check=health, outlier=outlier,
                            timeout_s=draw(st.floats(0.05, 1.0)), retries=draw(st.integers(0, 2)))
        else:
            lb = L4Balancer("lb", backends, policy=policy, health_check=health, outlier=outlier,
                            timeout_s=draw(st.floats(0.05, 1.0)))
        sim.add(lb)
        target = "lb"
    loads = []
    for i in range(draw(st.integers(1, 2))):
        workload = Workload(keys=draw(st.integers(1, 50)), write_share=draw(st.sampled_from([0.0, 0.3])))
        common = dict(workload=workload, timeout_s=draw(st.floats(0.05, 1.5)), retries=draw(st.integers(0, 2)),
                      client=draw(st.sampled_from(["client", f"client{i}"])), name=f"load{i}")
        if draw(st.booleans()):
            load = LOADS["open"](target, rate=draw(st.floats(1.0, 300.0)),
                                 arrivals=draw(st.sampled_from(["poisson", "constant"])),
                                 connections=draw(st.sampled_from([None, 1, 4])), **common)
        else:
            # think time > 0: a closed loop whose whole round trip takes no virtual time (zero think
            # time, zero latency, zero CPU) never lets the clock advance - a known, reported hang
            load = LOADS["closed"](target, users=draw(st.integers(1, 10)),
                                   think_time_s=draw(st.sampled_from([0.05, Exponential(0.1)])), **common)
        load.ledger = Ledger()
        loads.append(sim.load(load))
    duration = draw(st.floats(0.5, 2.0))
    hosts = [h for h in sim.hosts if not h.startswith("client")]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.floats(0.0, duration))
        until = at + draw(st.floats(0.0, 1.0))
        verb = draw(st.sampled_from(["crash", "partition", "hold", "slow", "slow_link", "loss"]))
        a, b = draw(st.sampled_from(sorted(sim.hosts))), draw(st.sampled_from(sorted(sim.hosts)))
        if verb == "crash":
            sim.at(at, sim.crash, draw(st.sampled_from(hosts)), until - at)
        elif verb == "slow":
            host = draw(st.sampled_from(hosts))
            sim.at(at, sim.slow, host, None, draw(st.floats(1.0, 50.0)))
            sim.at(until, sim.heal, host)
        elif a != b and verb == "partition":
            sim.at(at, sim.partition, a, b)
            sim.at(until, sim.repair, a, b)
        elif a != b and verb == "hold":
            sim.at(at, sim.hold, a, b)
            sim.at(until, sim.release, a, b)
        elif a != b and verb == "slow_link":
            sim.at(at, sim.slow, a, b, draw(st.floats(1.0, 100.0)))
            sim.at(until, sim.heal, a, b)
        elif a != b and verb == "loss":
            sim.at(at, functools.partial(sim.link, a, b, 0.0005, loss=draw(st.floats(0.0, 1.0))))
            sim.at(until, functools.partial(sim.link, a, b, 0.0005))
    return sim, loads, duration


topologies = st.composite(build)


class Recorder:
    """A ``draw`` that remembers what it drew, so that the same topology can be built again."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.values: list = []

    def __call__(self, strategy):
        value = self.draw(strategy)
        self.values.append(value)
        return value

    def replay(self):
        values = iter(self.values)
        return lambda strategy: next(values)


def drain_for(loads) -> float:
    """Long enough for every request to end: each attempt ends by its timeout, plus retry back-offs."""
    return max(load.timeout_s * (load.retries + 2) + 0.1 * 2 ** load.retries for load in loads) + 1.0


@PROPERTY
@given(topologies())
def test_any_valid_topology_runs_and_conserves_requests(case):
    sim, loads, duration = case
    report = sim.run(duration_s=duration, drain_s=drain_for(loads))
    assert not [e for _, e in report.events if " failed: " in e], report.events
    for load in loads:
        client = report.clients[load.name]
        assert client.ok + client.failed + client.in_flight == client.sent
        assert client.in_flight == 0, f"{load.name}: {client.in_flight} requests never ended"
        assert len(load.ledger.finished) == client.sent
        assert set(load.ledger.finished.values()) <= {1}, "a request finished twice"
    for stats in report.components.values():
        assert stats.handler_errors == 0 or stats.kind == "app", f"{stats.name} raised: {stats.detail}"
        assert "task_errors" not in stats.detail, f"{stats.name} crashed on a bug: {stats.detail}"


@settings(PROPERTY, max_examples=30)
@given(st.data())
def test_any_valid_topology_repeats_exactly_with_the_same_seed(data):
    recorder = Recorder(data.draw)
    sim, loads, duration = build(recorder)
    again, _, _ = build(recorder.replay())
    assert sim.run(duration_s=duration).to_json() == again.run(duration_s=duration).to_json()


# -- invalid configurations ------------------------------------------------------------------------

NAN = float("nan")
TEXT = st.text(max_size=5)
JUNK = st.one_of(TEXT, st.lists(st.integers(), max_size=2), st.dictionaries(TEXT, st.integers(), max_size=1))
NOT_POSITIVE = st.one_of(st.floats(max_value=0.0), st.integers(max_value=0), st.just(NAN))
FRACTIONS = st.floats(allow_nan=True).filter(lambda x: not math.isfinite(x) or x != int(x))
POS_INT = st.one_of(st.integers(max_value=0), FRACTIONS, st.booleans(), JUNK)
COUNT = st.one_of(st.integers(max_value=0), FRACTIONS, JUNK)  # the engine's counts accept True as 1
NONNEG_INT = st.one_of(st.integers(max_value=-1), st.floats(0.5, 100).filter(lambda x: x != int(x)), st.just(NAN),
                       st.booleans(), JUNK)
POS_FLOAT = st.one_of(NOT_POSITIVE, st.booleans(), JUNK)
NONNEG_FLOAT = st.one_of(st.floats(max_value=-1e-9), st.just(NAN), st.booleans(), JUNK)
PROB = st.one_of(st.floats(min_value=1.000001), st.floats(max_value=-1e-9), st.just(NAN), st.booleans(), JUNK)
DIST = st.one_of(st.floats(max_value=-1e-9), st.just(NAN), st.booleans(), JUNK)
RATE = st.one_of(NOT_POSITIVE, st.just(math.inf), st.booleans(), JUNK)  # inf would issue forever at one instant
NAME = st.one_of(st.just(""), st.integers(), st.none(), st.lists(TEXT, max_size=1))

# (what is built, the keyword that gets a bad value, which bad values)
INVALID = [
    (lambda **kw: AppServer("a", **kw), "cores", POS_INT),
    (lambda **kw: AppServer("a", **kw), "core_speed", POS_FLOAT),
    (lambda **kw: AppServer("a", **kw), "workers", POS_INT),
    (lambda **kw: AppServer("a", **kw), "queue_limit", NONNEG_INT),
    (lambda **kw: AppServer("a", **kw), "cpu_s", DIST),
    (lambda **kw: AppServer("a", **kw), "memory_mb", POS_FLOAT),
    (lambda **kw: AppServer("a", **kw), "restart_after_s", NONNEG_FLOAT),
    (lambda **kw: AppServer(**kw), "name", NAME),
    (lambda **kw: CacheServer("c", **kw), "capacity_items", POS_INT),
    (lambda **kw: CacheServer("c", **kw), "capacity_bytes", POS_INT),
    (lambda **kw: CacheServer("c", **kw), "policy", st.one_of(TEXT.filter(lambda s: s not in ("lru", "lfu", "ttl",
                                                                                             "random")), JUNK)),
    (lambda **kw: CacheServer("c", **kw), "ttl_s", NONNEG_FLOAT),
    (lambda **kw: CacheServer("c", **kw), "op_latency_s", DIST),
    (lambda **kw: CacheServer("c", **kw), "concurrency", POS_INT),
    (lambda **kw: Database("d", **kw), "read_latency_s", DIST),
    (lambda **kw: Database("d", **kw), "write_latency_s", DIST),
    (lambda **kw: Database("d", **kw), "io_capacity", POS_INT),
    (lambda **kw: Database("d", **kw), "max_connections", POS_INT),
    (lambda **kw: Database("d", **kw), "queue_limit", NONNEG_INT),
    (lambda **kw: L7Balancer("lb", ["a"], **kw), "timeout_s", POS_FLOAT),
    (lambda **kw: L7Balancer("lb", ["a"], **kw), "retries", NONNEG_INT),
    (lambda **kw: L7Balancer("lb", ["a"], **kw), "slow_start_s", NONNEG_FLOAT),
    # an empty list of backends is accepted when built (an autoscaler fills it) and refused by validate()
    (lambda **kw: L7Balancer("lb", **kw), "backends", st.one_of(st.lists(NAME, min_size=1, max_size=2),
                                                                st.integers(), st.none())),
    (lambda **kw: L4Balancer("lb", ["a"], **kw), "timeout_s", POS_FLOAT),
    (lambda **kw: L4Balancer("lb", **kw), "backends", st.one_of(st.lists(NAME, min_size=1, max_size=2),
                                                                st.integers(), st.none())),
    (lambda **kw: HealthCheck(**kw), "interval_s", POS_FLOAT),
    (lambda **kw: HealthCheck(**kw), "timeout_s", POS_FLOAT),
    (lambda **kw: HealthCheck(**kw), "rise", POS_INT),
    (lambda **kw: HealthCheck(**kw), "fall", POS_INT),
    (lambda **kw: OpenLoop("a", **kw), "rate", RATE),
    (lambda **kw: OpenLoop("a", **kw), "timeout_s", POS_FLOAT),
    (lambda **kw: OpenLoop("a", **kw), "retries", st.one_of(st.integers(max_value=-1), FRACTIONS, JUNK)),
    (lambda **kw: OpenLoop("a", **kw), "retry_backoff_s", NONNEG_FLOAT),
    (lambda **kw: OpenLoop("a", **kw), "connections", COUNT),
    (lambda **kw: OpenLoop("a", **kw), "arrivals", st.one_of(TEXT.filter(lambda s: s not in ("poisson", "constant")),
                                                             JUNK)),
    (lambda **kw: OpenLoop(**kw), "target", NAME),
    (lambda **kw: ClosedLoop("a", **kw), "users", COUNT),
    (lambda **kw: ClosedLoop("a", **kw), "think_time_s", DIST),
    (lambda **kw: Population("a", **kw), "users", COUNT),
    (lambda **kw: Population("a", users=10, **kw), "requests_per_user_per_s", RATE),
    (lambda **kw: Workload(**kw), "keys", COUNT),
    (lambda **kw: Workload(**kw), "zipf_exponent", NONNEG_FLOAT),
    (lambda **kw: Workload(**kw), "write_share", PROB),
    (lambda **kw: Workload(**kw), "static_share", PROB),
    (lambda **kw: Zipf(**kw), "n", COUNT),
    (lambda **kw: Exponential(**kw), "mean_s", POS_FLOAT),
    (lambda **kw: Constant(**kw), "value_s", NONNEG_FLOAT),
    (lambda **kw: LogNormal(median_s=0.01, **kw), "sigma", NONNEG_FLOAT),
    (lambda **kw: Sim(**kw), "seed", st.one_of(st.floats(), st.booleans(), st.none(), st.lists(st.integers()))),
    (lambda **kw: Sim(**kw), "speed", POS_FLOAT),
    (lambda **kw: CacheAside("c", **kw), "timeout_s", POS_FLOAT),
    (lambda **kw: CacheAside("c", **kw), "negative_ttl_s", POS_FLOAT),
    (lambda **kw: DatabaseClient("d", **kw), "timeout_s", POS_FLOAT),
    (lambda **kw: AutoScaler("g", factory=AppServer, policy=TargetTracking(), **kw), "interval_s", POS_FLOAT),
    (lambda **kw: AutoScaler("g", factory=AppServer, policy=TargetTracking(), **kw), "boot_s", NONNEG_FLOAT),
    (lambda **kw: AutoScaler("g", factory=AppServer, policy=TargetTracking(), **kw), "min_size", POS_INT),
    (lambda **kw: QueueDepth(**kw), "target_per_server", POS_FLOAT),
    (lambda **kw: MessageQueue("q", **kw), "capacity", POS_INT),
    (lambda **kw: MessageQueue("q", **kw), "visibility_timeout_s", POS_FLOAT),
    (lambda **kw: WorkerPool("w", queue="q", handler=_noop_handler, **kw), "concurrency", POS_INT),
    (lambda **kw: TokenBucket(**kw), "rate_per_s", POS_FLOAT),
    (lambda **kw: SlidingWindow(limit=5, **kw), "window_s", POS_FLOAT),
]


async def _noop_handler(message, ctx):
    return None


def _linked(**kw):
    sim = Sim()
    sim.add(AppServer("a"))
    sim.add(AppServer("b"))
    return sim.link("a", "b", **kw)


INVALID += [
    (_linked, "latency_s", DIST),
    (_linked, "loss", PROB),
    (_linked, "jitter_s", st.one_of(st.floats(max_value=-1e-9), st.just(NAN), st.just(True), JUNK)),
    (_linked, "bandwidth_bytes_per_s", POS_FLOAT),
]


@PROPERTY
@given(st.data())
def test_any_invalid_value_raises_config_error(data):
    build, keyword, bad = data.draw(st.sampled_from(INVALID), label="what")
    value = data.draw(bad, label=keyword)
    try:
        build(**{keyword: value})
    except ConfigError as exc:
        assert str(exc), "a ConfigError must say what is wrong"
    else:
        raise AssertionError(f"{keyword}={value!r} was accepted")


@st.composite
def miswired(draw):
    """A topology that cannot work: an unknown host, a loop, a duplicate name, a load with no target."""
    sim = Sim(seed=1)
    flaw = draw(st.sampled_from(["unknown_call", "unknown_backend", "cycle", "self_call", "unknown_target",
                                 "duplicate", "replica_of_unknown"]))
    names = ["a", "b", "c"]
    calls = {n: () for n in names}
    if flaw == "unknown_call":
        calls["a"] = ("nowhere",)
    elif flaw == "cycle":
        length = draw(st.integers(2, 3))
        for i in range(length):
            calls[names[i]] = (names[(i + 1) % length],)
    elif flaw == "self_call":
        calls["b"] = ("b",)
    for n in names:
        sim.add(AppServer(n, calls=calls[n]))
    target = "a"
    if flaw == "unknown_backend":
        sim.add(L7Balancer("lb", ["a", "ghost"]))
    elif flaw == "unknown_target":
        target = "ghost"
    elif flaw == "duplicate":
        return lambda: sim.add(AppServer(draw(st.sampled_from(names))))
    elif flaw == "replica_of_unknown":
        sim.add(Database("r", replica_of="ghost"))
    sim.load(OpenLoop(target, rate=10))
    return lambda: sim.run(duration_s=0.5)


@PROPERTY
@given(miswired())
def test_any_miswired_topology_raises_config_error_before_running(attempt):
    try:
        attempt()
    except ConfigError as exc:
        assert str(exc)
    else:
        raise AssertionError("a topology that cannot work ran")


# -- values that once slipped through (found by the properties above, now fixed) -----------------------


@pytest.mark.parametrize("backends", [None, 3])
def test_balancer_backends_that_are_not_a_list_raise_config_error(backends):
    with pytest.raises(ConfigError, match=r"^L7Balancer 'lb': backends must be a list of host names or a mapping"):
        L7Balancer("lb", backends)
    with pytest.raises(ConfigError, match=r"^L4Balancer 'lb': backends must be a list of host names or a mapping"):
        L4Balancer("lb", backends)


def test_a_link_bandwidth_that_is_not_a_number_raises_config_error():
    with pytest.raises(ConfigError, match=r"^bandwidth_bytes_per_s must be a number > 0, got 'fast'$"):
        _linked(bandwidth_bytes_per_s="fast")


def test_an_infinite_rate_is_refused():
    with pytest.raises(ConfigError, match=r"^rate must be finite, got inf$"):
        OpenLoop("a", rate=math.inf)
