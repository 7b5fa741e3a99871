"""The cache: eviction and expiry as pure bookkeeping, then the server over the network."""
from __future__ import annotations

import random

import pytest

from components import CacheServer, CacheStore
from playground import ClosedLoop, ConfigError, Node, Request, Response, Sim, Workload


class Clock:
    """A hand-driven timer for the pure store."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the pure store ----------------------------------------------------------------------
def test_lru_evicts_the_least_recently_used():
    store = CacheStore(capacity_items=3)
    for key in "abc":
        store.set(key, b"v")
    assert store.get("a") is not None  # a is now the most recent; b the least
    store.set("d", b"v")
    assert sorted(store.keys()) == ["a", "c", "d"]
    assert store.get("b") is None
    assert (store.hits, store.misses, store.sets, store.evictions) == (1, 1, 4, 1)


def test_lfu_keeps_the_frequently_read():
    store = CacheStore(capacity_items=3, policy="lfu")
    for key in "abc":
        store.set(key, b"v")
    for _ in range(3):
        store.get("a")
        store.get("c")
    store.get("b")
    store.set("d", b"v")  # b was read once, a and c three times
    assert sorted(store.keys()) == ["a", "c", "d"]


def test_random_policy_is_seeded():
    def survivors(seed):
        store = CacheStore(capacity_items=5, policy="random", rng=random.Random(seed))
        for i in range(50):
            store.set(f"k{i}", b"v")
        return sorted(store.keys())

    assert survivors(1) == survivors(1)
    assert len(survivors(1)) == 5


def test_ttl_expires_on_the_given_clock_not_the_wall():
    clock = Clock()
    store = CacheStore(capacity_items=10, policy="ttl", ttl_s=5, timer=clock)
    store.set("default", b"v")
    store.set("short", b"v", ttl_s=1)
    store.set("forever", b"v", ttl_s=0)
    clock.now = 0.999
    assert store.get("short") is not None
    clock.now = 1.0
    assert store.get("short") is None
    clock.now = 5.0
    assert store.get("default") is None
    clock.now = 1e9
    assert store.get("forever") is not None
    assert store.expirations == 2 and store.items == 1


def test_lru_with_per_item_ttl_expires_lazily():
    clock = Clock()
    store = CacheStore(capacity_items=10, timer=clock)
    store.set("k", b"v", ttl_s=2)
    clock.now = 3
    assert store.items == 1  # still held: dropped when next read, as memcached does
    assert store.get("k") is None
    assert (store.items, store.expirations, store.misses) == (0, 1, 1)


def test_byte_capacity_evicts_until_the_new_item_fits():
    store = CacheStore(capacity_items=100, capacity_bytes=100)
    for key in "abcd":
        store.set(key, b"x" * 24)  # 1 byte of key + 24 of value = 25 bytes each
    assert (store.items, store.bytes) == (4, 100)
    store.set("e", b"x" * 49)  # 50 bytes: two items must go
    assert sorted(store.keys()) == ["c", "d", "e"]
    assert store.bytes == 100 and store.evictions == 2
    assert store.set("huge", b"x" * 200) is False
    assert store.too_large == 1 and store.get("huge") is None


def test_delete_and_if_absent():
    store = CacheStore(capacity_items=2)
    assert store.set("a", b"1", if_absent=True)
    assert not store.set("a", b"2", if_absent=True)
    assert store.get("a").value == b"1"
    assert store.delete("a") and not store.delete("a")


@pytest.mark.parametrize("kwargs, message", [
    ({"capacity_items": 0}, r"^capacity_items must be >= 1, got 0$"),
    ({"capacity_items": 2.5}, r"^capacity_items must be an integer, got 2\.5$"),
    ({"capacity_items": 1, "capacity_bytes": 0}, r"^capacity_bytes must be an integer >= 1 or None, got 0$"),
    ({"capacity_items": 1, "policy": "fifo"},
     r"^policy must be one of 'lru', 'lfu', 'ttl', 'random', got 'fifo'$"),
    ({"capacity_items": 1, "policy": "ttl"}, r"^policy 'ttl' needs a default ttl_s > 0, got None$"),
    ({"capacity_items": 1, "ttl_s": -1}, r"^ttl_s must be >= 0, got -1$"),
])
def test_store_config_errors_name_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CacheStore(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"capacity_items": 0}, r"^capacity_items must be >= 1, got 0$"),
    ({"concurrency": 0}, r"^concurrency must be an integer >= 1, got 0$"),
    ({"op_latency_s": -0.1}, r"^op_latency_s must be >= 0 seconds, got -0\.1$"),
])
def test_server_config_errors_name_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        CacheServer("cache", **kwargs)


# -- the server over the simulated network ------------------------------------------------
class Script(Node):
    """A host that runs ``story(self)`` once; a trickle of load keeps the run going meanwhile."""

    def __init__(self, name: str, story) -> None:
        super().__init__(name)
        self.story = story

    async def run(self) -> None:
        await self.story(self)

    async def handle(self, request: Request) -> Response:
        return Response(204)


def script_sim(story, **cache_kw) -> tuple[Sim, CacheServer]:
    sim = Sim(seed=1)
    cache = sim.add(CacheServer("cache", **cache_kw))
    sim.add(Script("app", story))
    sim.link("app", "cache", latency_s=0.001)
    sim.load(ClosedLoop("app", users=1, think_time_s=1.0, workload=Workload(keys=1)))
    return sim, cache


async def test_hits_and_misses_over_the_network(virtual_clock):
    seen = []

    async def story(app):
        seen.append((await app.get("cache", "/cache/user%3A1")).status)
        put = Request("PUT", "/cache/user%3A1", {"x-ttl": "2"}, b"ada")
        seen.append((await app.call("cache", put)).status)
        got = await app.get("cache", "/cache/user%3A1")
        seen.append((got.status, got.body, app.sched.now))
        await app.sleep(2.5)
        seen.append((await app.get("cache", "/cache/user%3A1")).status)
        seen.append((await app.call("cache", Request("DELETE", "/cache/nope"))).status)
        seen.append((await app.call("cache", Request("POST", "/cache/x"))).status)

    sim, cache = script_sim(story, op_latency_s=0.0001)
    report = await sim.run_async(5)
    miss, stored, (status, body, t), expired, deleted, bad = seen
    assert (miss, stored, status, body, expired, deleted, bad) == (404, 204, 200, b"ada", 404, 404, 405)
    # three round trips of 2 ms plus three operations of 0.1 ms
    assert t == pytest.approx(0.0063)
    d = report.component("cache").detail
    assert (d["hits"], d["misses"], d["sets"], d["expirations"]) == (1, 2, 1, 1)
    assert d["hit_ratio"] == pytest.approx(1 / 3)


async def test_a_crash_empties_the_cache(virtual_clock):
    seen = []

    async def story(app):
        for i in range(10):
            await app.call("cache", Request("PUT", f"/cache/k{i}", body=b"v"))
        seen.append((await app.get("cache", "/cache/k1")).status)
        await app.sleep(2)  # the cache crashes at t=1 and is back at t=1.5
        seen.append((await app.get("cache", "/cache/k1")).status)

    sim, cache = script_sim(story)
    sim.at(1.0, sim.crash, "cache", 0.5)
    report = await sim.run_async(3)
    assert seen == [200, 404]
    d = report.component("cache").detail
    assert d["items"] == 0 and d["crashes"] == 1


async def test_operations_queue_on_few_slots(virtual_clock):
    done = []

    async def story(app):
        async def one(i):
            await app.call("cache", Request("PUT", f"/cache/k{i}", body=b"v"))
            done.append(app.sched.now)

        for i in range(8):
            app.spawn(one, i)

    sim, cache = script_sim(story, op_latency_s=0.01, concurrency=2)
    await sim.run_async(2)
    # 8 operations of 10 ms on 2 slots: the last finishes after 40 ms of work, plus 2 ms of network
    assert max(done) == pytest.approx(0.042)


# -- the package and the runs ----------------------------------------------------------------
def test_the_cache_names_are_exported():
    import components

    for name in ("CacheServer", "CacheStore", "CacheAside", "SimulatedCache"):
        assert name in vars(components), name


def test_contents_and_their_clock_carry_over_between_runs():
    sim, cache = script_sim(lambda app: app.sleep(0))
    cache.store.set("k", b"v", ttl_s=3.0)
    sim.run(2)
    assert cache.store.peek("k") is not None and cache.store.timer() == pytest.approx(2.0, abs=0.1)
    sim.run(2)  # a new run restarts the simulated clock at zero; the cache's time goes on
    assert cache.store.peek("k") is None and cache.store.timer() == pytest.approx(4.0, abs=0.1)


def test_same_seed_same_report():
    def once():
        async def story(app):
            for i in range(20):
                await app.call("cache", Request("PUT", f"/cache/k{i}", body=b"v" * i))
                await app.get("cache", f"/cache/k{app.rng.randrange(20)}")

        sim, _ = script_sim(story, capacity_items=5, policy="random")
        return sim.run(3).to_json()

    assert once() == once()
