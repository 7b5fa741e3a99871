"""The message queue and its workers: the store's bookkeeping, wiring errors, and the stories."""
from __future__ import annotations

import re

import pytest

from components import (AppServer, AutoScaler, Database, DatabaseClient, Message, MessageQueue, QueueClient,
                        QueueDepth, QueueFull, WorkerPool)
from components.queue_store import QueueStore
from playground import ConfigError, OpenLoop, Request, Sim, WiringError


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def msg(i: int, group: str | None = None) -> Message:
    return Message(f"m{i}", f"body {i}".encode(), group=group, enqueued_at=float(i))


# -- the bookkeeping, without trio --------------------------------------------------------------
def test_a_message_taken_and_not_acked_comes_back_after_its_visibility_timeout():
    store = QueueStore(capacity=10, visibility_timeout_s=30.0, max_attempts=3)
    store.put(msg(1))
    first = store.take(now=0.0)
    assert first.attempt == 1 and store.take(now=1.0) is None  # hidden while in flight
    again = store.take(now=30.0)  # the lease ran out: redelivered
    assert again is first and again.attempt == 2 and store.redeliveries == 1
    assert store.ack("m1#1", now=31.0) is False and store.stale_acks == 1  # the first lease is gone
    assert store.ack("m1#2", now=31.0) is True and len(store) == 0


def test_after_max_attempts_a_message_goes_to_the_dead_letters():
    store = QueueStore(capacity=10, visibility_timeout_s=5.0, max_attempts=2)
    store.put(msg(1))
    store.nack(store.take(0.0).receipt, 0.0)
    assert store.visible == 1
    assert store.nack(store.take(0.0).receipt, 0.0) is None  # the second failure: dead
    assert store.visible == 0 and [m.id for m in store.dead] == ["m1"] and store.dead_lettered == 1


def test_the_queue_is_bounded_and_knows_its_oldest_message():
    store = QueueStore(capacity=2, visibility_timeout_s=5.0, max_attempts=None)
    assert store.put(msg(1)) and store.put(msg(2)) and not store.put(msg(3))
    assert store.oldest_enqueued_at() == 1.0
    store.ack(store.take(5.0).receipt, 5.0)
    assert store.oldest_enqueued_at() == 2.0


def test_fifo_groups_are_delivered_in_order_one_at_a_time():
    store = QueueStore(capacity=10, visibility_timeout_s=5.0, max_attempts=None, fifo=True)
    for i, g in enumerate(["a", "a", "b", "a"]):
        store.put(msg(i, g))
    a0, b2 = store.take(0.0), store.take(0.0)
    assert (a0.id, b2.id) == ("m0", "m2") and store.take(0.0) is None  # group a waits for m0
    store.nack(a0.receipt, 1.0)
    assert store.take(1.0).id == "m0"  # redelivered first: the group keeps its order


def test_bad_queue_configs_are_refused_with_clear_messages():
    with pytest.raises(ConfigError, match=exactly("capacity must be an integer >= 1, got 0")):
        MessageQueue("jobs", capacity=0)
    with pytest.raises(ConfigError, match=exactly("visibility_timeout_s must be > 0, got 0")):
        MessageQueue("jobs", visibility_timeout_s=0)
    with pytest.raises(ConfigError, match=exactly("max_attempts must be an integer >= 1 or None, got 0")):
        MessageQueue("jobs", max_attempts=0)
    with pytest.raises(ConfigError, match=exactly("fifo_by must be 'header:<name>' or None, got 'group'")):
        MessageQueue("jobs", fifo_by="group")
    with pytest.raises(ConfigError, match=exactly("dead_letter must be another queue than 'jobs', got 'jobs'")):
        MessageQueue("jobs", dead_letter="jobs")
    with pytest.raises(ConfigError, match=exactly("concurrency must be an integer >= 1, got 0")):
        WorkerPool("w", queue="jobs", handler=noop, concurrency=0)
    with pytest.raises(ConfigError, match=exactly("wait_s must be <= 20 (the longest long poll), got 60")):
        WorkerPool("w", queue="jobs", handler=noop, wait_s=60)
    with pytest.raises(ConfigError, match=r"^WorkerPool 'w': handler must be an async function \(message, ctx\), got "):
        WorkerPool("w", queue="jobs", handler=lambda m, c: None)
    sim = Sim(seed=1)
    sim.add(WorkerPool("w", queue="jobs", handler=noop))
    with pytest.raises(WiringError, match=r"^'w' sends to unknown host 'jobs'$"):
        sim.validate()


async def noop(message, ctx):
    return None


async def test_a_full_queue_answers_503_and_the_client_raises_queue_full(virtual_clock):
    sim = Sim(seed=1)
    sim.add(MessageQueue("jobs", capacity=2))
    results = []

    async def produce(request, ctx):
        try:
            results.append(await QueueClient("jobs").send(ctx, b"x"))
        except QueueFull as exc:
            results.append(str(exc))
        return "ok"

    sim.add(AppServer("app", produce, calls=("jobs",)))
    sim.load(OpenLoop("app", rate=10, arrivals="constant"))
    await sim.run_async(0.35)
    assert results == ["jobs-1", "jobs-2", "queue 'jobs' is full: 2 messages (capacity 2)"]
    assert sim["jobs"].detail()["rejected_full"] == 1


# -- the stories ----------------------------------------------------------------------------------
SCHEMA = "CREATE TABLE orders (id INTEGER PRIMARY KEY, ref TEXT UNIQUE, n INTEGER)"


def orders_sim(through_queue: bool) -> Sim:
    """15 orders/s; the database takes 20 ms a write on one IO channel and is 10x slower from t=10 to t=40."""
    sim = Sim(seed=5)
    sim.add(Database("db", schema=SCHEMA, write_latency_s=0.02, io_capacity=1, queue_limit=1000))
    db = DatabaseClient("db", timeout_s=30.0)
    jobs = QueueClient("jobs")

    async def direct(request, ctx):
        await db.execute(ctx, "INSERT INTO orders (ref, n) VALUES (?, 1)", [str(request.id)])
        return "stored"

    async def queued(request, ctx):
        await jobs.send(ctx, str(request.id), key=str(request.id))
        return "accepted", 202

    async def store(message, ctx):
        await db.execute(ctx, "INSERT INTO orders (ref, n) VALUES (?, 1)", [message.key])

    if through_queue:
        sim.add(MessageQueue("jobs", visibility_timeout_s=60))
        sim.add(WorkerPool("workers", queue="jobs", handler=store, concurrency=4, calls=("db",)))
        sim.add(AppServer("app", queued, calls=("jobs",)))
    else:
        sim.add(AppServer("app", direct, calls=("db",)))
    sim.load(OpenLoop("app", rate=15, timeout_s=2.0))
    sim.at(10, sim.slow, "db", None, 10.0)
    sim.at(40, sim.heal, "db")
    return sim


def test_queue_writes_keep_user_latency_flat_while_a_slow_database_catches_up():
    direct = orders_sim(through_queue=False)
    d = direct.run(70)
    queued = orders_sim(through_queue=True)
    q = queued.run(70)
    # writing straight to the slow database: users wait for it, and time out
    assert d.p99_s > 1.5 and d.failed > 100
    # through the queue: users get 202 in milliseconds all along, not one error
    assert q.failed == 0 and q.p99_s < 0.01
    jobs = q.component("jobs").detail
    age = {t: a for t, _, _, a in queued["jobs"].series}
    assert jobs["peak_age_s"] > 15  # the backlog, in seconds, while the database was slow
    assert age[9.0] < 0.5 and age[39.0] > 15  # flat before, growing during the slowdown
    assert age[69.0] < 0.5 and jobs["depth"] + jobs["in_flight"] <= 4  # caught up after healing
    rows = queued["db"].direct("SELECT count(*) FROM orders").rows[0][0]
    assert rows == jobs["acked"]  # every order acked was written, once
    assert q.ok - rows == jobs["depth"] + jobs["in_flight"]  # and the rest are the last few on their way


def test_dead_letter_takes_a_poison_message_after_max_attempts():
    sim = Sim(seed=1)
    attempts = []

    async def handler(message, ctx):
        attempts.append((message.id, message.attempt))
        if message.body == b"poison":
            raise ValueError("cannot parse")

    sim.add(MessageQueue("jobs", max_attempts=4, dead_letter="jobs-dlq"))
    sim.add(MessageQueue("jobs-dlq"))
    sim.add(WorkerPool("workers", queue="jobs", handler=handler, concurrency=2))
    for t, body in ((1.0, b"fine"), (2.0, b"poison"), (3.0, b"fine")):
        sim.at(t, lambda body=body: sim.net.send("client", "jobs", Request("POST", "/enqueue", body=body),
                                                 lambda result: None))
    sim.add(AppServer("client"))
    report = sim.run(10)
    jobs, dlq = report.component("jobs").detail, report.component("jobs-dlq").detail
    assert [a for m, a in attempts if m == "jobs-2"] == [1, 2, 3, 4]  # tried max_attempts times, no more
    assert jobs["dead_lettered"] == 1 and jobs["acked"] == 2 and jobs["depth"] == 0
    assert dlq["depth"] == 1 and sim["jobs-dlq"].store.take(sim.sched.now).headers["x-attempts"] == "4"
    assert report.component("workers").detail["failed"] == 4
    assert any("jobs-2 dead-lettered after 4 attempts" in e for _, e in report.events)


def crash_sim(idempotent: bool) -> Sim:
    """Workers write a row and then ack; one crashes after writing and before acking."""
    sim = Sim(seed=2)
    sim.add(Database("db", schema=SCHEMA, write_latency_s=0.005))
    db = DatabaseClient("db")
    sql = ("INSERT INTO orders (ref, n) VALUES (?, 1) ON CONFLICT(ref) DO UPDATE SET n = n + 1" if not idempotent
           else "INSERT OR IGNORE INTO orders (ref, n) VALUES (?, 1)")
    ref = "ref" if idempotent else "id"

    async def handler(message, ctx):
        key = message.key if idempotent else message.id + f"#{message.attempt}"
        await db.execute(ctx, sql, [key])
        await ctx.sleep(0.5)  # the side effect is done; the ack comes after more work

    sim.add(MessageQueue("jobs", visibility_timeout_s=3.0))
    sim.add(WorkerPool("w1", queue="jobs", handler=handler, concurrency=1, calls=("db",), restart_after_s=None))
    sim.add(WorkerPool("w2", queue="jobs", handler=handler, concurrency=1, calls=("db",)))
    sim.add(AppServer("client"))
    sim.crash("w2")  # w2 starts later, so that w1 is the one that takes the message
    sim.at(1.0, lambda: sim.net.send("client", "jobs", Request("POST", "/enqueue", {"x-idempotency-key": "order-7"},
                                                               b"charge 7"), lambda r: None))
    sim.at(1.2, sim.crash, "w1")  # w1 holds the message: written, not acked
    sim.at(2.0, sim.restart, "w2")
    return sim


def test_queue_redelivers_a_crashed_workers_message_once_its_lease_expires():
    sim = crash_sim(idempotent=True)
    report = sim.run(10)
    jobs = report.component("jobs").detail
    assert jobs["visibility_expired"] == 1 and jobs["redeliveries"] == 1 and jobs["acked"] == 1
    assert report.component("w2").detail["processed"] == 1  # the other worker finished it


def test_queue_at_least_once_duplicates_a_write_and_an_idempotency_key_removes_it():
    plain = crash_sim(idempotent=False)
    plain.run(10)
    # keyed by the delivery, the side effect happened twice: two rows for one order
    assert plain["db"].direct("SELECT count(*) FROM orders").rows[0][0] == 2
    keyed = crash_sim(idempotent=True)
    keyed.run(10)
    # keyed by the message's idempotency key, the redelivery finds the row and changes nothing
    assert keyed["db"].direct("SELECT ref, n FROM orders").rows == [("order-7", 1)]


def test_an_autoscaled_worker_pool_grows_on_queue_depth():
    sim = Sim(seed=4)

    async def work(message, ctx):
        await ctx.sleep(0.5)

    sim.add(MessageQueue("jobs"))
    sim.add(AutoScaler("workers", factory=lambda name: WorkerPool(name, queue="jobs", handler=work, concurrency=4),
                       min_size=1, max_size=8, policy=QueueDepth(target_per_server=20, queue="jobs"),
                       boot_s=5, interval_s=5, cooldown_in_s=20))
    jobs = QueueClient("jobs")

    async def produce(request, ctx):
        await jobs.send(ctx, b"job")
        return "ok"

    sim.add(AppServer("app", produce, calls=("jobs",)))
    sim.load(OpenLoop("app", rate=40, timeout_s=2.0))  # 40/s; one pool does 8/s
    report = sim.run(60)
    group = report.component("workers").detail
    assert group["peak_in_service"] >= 5 and group["scale_outs"] >= 1
    processed = sum(c.detail.get("processed", 0) for n, c in report.components.items() if n.startswith("workers-"))
    assert processed > 0.6 * report.ok
