"""A message queue host (think SQS or RabbitMQ) and the client that talks to it.

A queue decouples the code that asks for work from the code that does it: a
producer enqueues a message and answers its user at once; consumers take
messages at their own pace. The queue is bounded (``capacity``; beyond it a
producer gets 503 and must back off), delivers *at least once* (a message
taken is hidden for ``visibility_timeout_s`` and comes back if it is not
acknowledged in time, so a crashed consumer's message is redelivered - and a
consumer that did the work but crashed before acking does it twice), and after
``max_attempts`` deliveries a message that keeps failing goes to a dead-letter
queue (a poison message must not block the others forever). With ``fifo_by``
messages of one group (a header's value) are delivered in order, one at a time.

The protocol is HTTP over the simulated network, as SQS's API is::

    POST /enqueue   body = the message; x-idempotency-key, the fifo_by header   -> 202 {"id": ...} | 503 full
    POST /receive   x-max-messages (1), x-wait-s (0: long polling up to that)  -> 200 [messages]
    POST /ack       x-receipt                                                   -> 200 | 410 lease gone
    POST /nack      x-receipt                                                   -> 200 | 410
    GET  /          the figures as JSON

``QueueClient`` wraps it for handlers::

    jobs = QueueClient("jobs")
    await jobs.send(ctx, b'{"user": 7}', key="order-7")
    sim.add(MessageQueue("jobs", capacity=10_000, visibility_timeout_s=30, max_attempts=5))

Figures: depth (visible messages), in flight, the age of the oldest message
(the backlog in seconds), redeliveries, dead letters; ``series`` samples them
every ``sample_s``. Left out: message size limits, delayed messages, per-message
visibility changes, and the queue's own durability (a crash loses nothing: the
messages are on disk, as SQS's are).
"""
from __future__ import annotations

import json
from typing import Any

import trio

from playground import ConfigError, Node, Request, RequestError, Response, TimeWeighted
from playground._errors import check_positive

from .queue_store import Message, QueueStore

__all__ = ["MessageQueue", "QueueClient", "QueueFull", "Message"]

MAX_WAIT_S = 20.0  # SQS's longest long poll


def _json(status: int, value) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(value).encode())


class MessageQueue(Node):
    """A bounded at-least-once queue. Defaults: 10,000 messages, 30 s visibility, 5 attempts, built-in DLQ.

    ``dead_letter``: None keeps dead letters in this queue (``dead_letters``);
    a host name sends them there (another ``MessageQueue``). ``fifo_by``:
    ``"header:<name>"`` groups messages by that header for in-order delivery.
    """

    kind = "queue"

    def __init__(self, name: str, *, capacity: int = 10_000, visibility_timeout_s: float = 30.0,
                 max_attempts: int | None = 5, dead_letter: str | None = None, fifo_by: str | None = None,
                 sample_s: float = 1.0, region: str | None = None) -> None:
        super().__init__(name, region=region)
        if not (isinstance(capacity, int) and not isinstance(capacity, bool) and capacity >= 1):
            raise ConfigError(f"capacity must be an integer >= 1, got {capacity!r}")
        check_positive("visibility_timeout_s", visibility_timeout_s)
        if max_attempts is not None and not (isinstance(max_attempts, int) and not isinstance(max_attempts, bool)
                                             and max_attempts >= 1):
            raise ConfigError(f"max_attempts must be an integer >= 1 or None, got {max_attempts!r}")
        if dead_letter is not None and not (isinstance(dead_letter, str) and dead_letter):
            raise ConfigError(f"dead_letter must be a queue host name or None, got {dead_letter!r}")
        if dead_letter == name:
            raise ConfigError(f"dead_letter must be another queue than {name!r}, got {dead_letter!r}")
        if fifo_by is not None and not (isinstance(fifo_by, str) and fifo_by.startswith("header:")
                                        and len(fifo_by) > len("header:")):
            raise ConfigError(f"fifo_by must be 'header:<name>' or None, got {fifo_by!r}")
        check_positive("sample_s", sample_s)
        self.capacity = capacity
        self.visibility_timeout_s = float(visibility_timeout_s)
        self.max_attempts = max_attempts
        self.dead_letter = dead_letter
        self.fifo_header = fifo_by.split(":", 1)[1].lower() if fifo_by else None
        self.sample_s = float(sample_s)
        self.store = self._new_store()
        self._ids = 0

    def _new_store(self) -> QueueStore:
        return QueueStore(self.capacity, self.visibility_timeout_s, self.max_attempts, fifo=self.fifo_header is not None)

    def downstream(self) -> tuple[str, ...]:
        return (self.dead_letter,) if self.dead_letter else ()

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        now = self.sched.now
        self._arrived = trio.Event()
        self._depth = TimeWeighted(now, self.store.visible)
        self.rejected_full = 0
        self.forwarded = 0
        self.forward_failed = 0
        self.series: list[tuple[float, int, int, float]] = []
        self.peak_age_s = 0.0
        self._t0 = now

    # -- figures -----------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Visible messages waiting for a consumer (SQS's ApproximateNumberOfMessages)."""
        return self.store.visible

    @property
    def in_flight(self) -> int:
        return self.store.in_flight

    @property
    def dead_letters(self) -> list[Message]:
        return list(self.store.dead)

    def oldest_age_s(self) -> float:
        """Seconds the oldest message still in the queue has waited (0 when empty)."""
        oldest = self.store.oldest_enqueued_at()
        return 0.0 if oldest is None else self.sched.now - oldest

    async def run(self) -> None:
        while True:  # sample the backlog, as a metrics agent would
            self._expire()
            age = self.oldest_age_s()
            self.peak_age_s = max(self.peak_age_s, age)
            self.series.append((round(self.sched.now - self._t0, 6), self.store.visible, self.store.in_flight,
                                round(age, 6)))
            await self.sleep(self.sample_s)

    # -- what moves messages -------------------------------------------------------------------
    def _changed(self) -> None:
        self._depth.set(self.store.visible, self.sched.now)
        if self.store.visible:
            self._arrived.set()
            self._arrived = trio.Event()

    def _expire(self, _=None) -> None:
        for message in self.store.expire(self.sched.now):
            self._dead(message)
        self._changed()

    def _dead(self, message: Message) -> None:
        if self.sim is not None:
            self.sim.event(f"{self.name}: message {message.id} dead-lettered after {message.attempt} attempts")
        if self.dead_letter and self._nursery is not None:
            self.spawn(self._forward, message)

    async def _forward(self, message: Message) -> None:
        headers = dict(message.headers)
        headers["x-dead-letter-from"] = self.name
        headers["x-attempts"] = str(message.attempt)
        if message.key:
            headers["x-idempotency-key"] = message.key
        try:
            response = await self.call(self.dead_letter, Request("POST", "/enqueue", headers, message.body,
                                                                 client=self.name), 5.0)
            ok = response.status == 202
        except RequestError:
            ok = False
        if ok:
            self.forwarded += 1
        else:
            self.forward_failed += 1

    async def handle(self, request: Request) -> Response:
        route = request.route
        if request.method == "GET":
            return _json(200, self.detail()) if route != "/health" else Response(200, body=b"ok")
        if route == "/enqueue":
            return self._enqueue(request)
        if route == "/receive":
            return await self._receive(request)
        if route in ("/ack", "/nack"):
            receipt = request.headers.get("x-receipt", "")
            now = self.sched.now
            if route == "/ack":
                done = self.store.ack(receipt, now)
            else:
                done = self.store.nack(receipt, now)
                if done is None:  # the last attempt failed: dead letter
                    self._dead(self.store.dead[-1])
            self._changed()
            if done is False:
                return Response(410, {"x-error": "stale-receipt"},
                                f"receipt {receipt!r} is no longer valid (redelivered or acked)".encode())
            return Response(200, body=b"ok")
        return Response(404, body=f"no such queue operation: {request.method} {route}".encode())

    def _enqueue(self, request: Request) -> Response:
        group = None
        if self.fifo_header is not None:
            group = request.headers.get(self.fifo_header)
            if group is None:
                return Response(400, {"x-error": "no-group"},
                                f"queue {self.name!r} is FIFO by header {self.fifo_header!r}: the header is missing"
                                .encode())
        self._ids += 1
        message = Message(f"{self.name}-{self._ids}", request.body, dict(request.headers),
                          request.headers.get("x-idempotency-key"), group, self.sched.now)
        if not self.store.put(message):
            self._ids -= 1
            self.rejected_full += 1
            return Response(503, {"retry-after": "1", "x-error": "queue-full"},
                            f"queue {self.name!r} is full: {len(self.store)} messages (capacity {self.capacity})"
                            .encode())
        self._changed()
        return _json(202, {"id": message.id})

    async def _receive(self, request: Request) -> Response:
        try:
            wanted = int(request.headers.get("x-max-messages", "1"))
            wait_s = float(request.headers.get("x-wait-s", "0"))
        except ValueError:
            return Response(400, body=b"x-max-messages must be an integer and x-wait-s a number of seconds")
        if not (1 <= wanted <= 10 and 0 <= wait_s <= MAX_WAIT_S):
            return Response(400, body=f"x-max-messages must be 1..10 and x-wait-s 0..{MAX_WAIT_S:g}".encode())
        deadline = self.sched.now + wait_s
        while True:
            out = []
            while len(out) < wanted:
                message = self.store.take(self.sched.now)
                if message is None:
                    break
                self.sched.call_at(self.sched.now + self.visibility_timeout_s, self._expire)
                out.append(message.to_json())
            if out or self.sched.now >= deadline:
                self._changed()
                return _json(200, out)
            with trio.move_on_at(deadline):
                await self._arrived.wait()

    def detail(self) -> dict[str, Any]:
        s = self.store
        now = self.sched.now if self.sched else 0.0
        return {
            "depth": s.visible,
            "in_flight": s.in_flight,
            "oldest_age_s": self.oldest_age_s() if self.sched else 0.0,
            "peak_age_s": getattr(self, "peak_age_s", 0.0),
            "mean_depth": self._depth.mean(now) if hasattr(self, "_depth") else 0.0,
            "peak_depth": self._depth.peak if hasattr(self, "_depth") else 0,
            "enqueued": s.enqueued,
            "delivered": s.delivered,
            "acked": s.acked,
            "nacked": s.nacked,
            "redeliveries": s.redeliveries,
            "visibility_expired": s.expired,
            "stale_acks": s.stale_acks,
            "dead_lettered": s.dead_lettered,
            "dlq_size": len(s.dead) if not self.dead_letter else getattr(self, "forwarded", 0),
            "rejected_full": getattr(self, "rejected_full", 0),
        }


class QueueFull(RequestError):
    """The queue answered 503: it is full. Back off and retry, or shed the work."""

    kind = "queue_full"


class QueueClient:
    """What a handler uses to enqueue (and a consumer to receive, ack and nack) over the network.

        >>> jobs = QueueClient("jobs")
        >>> await jobs.send(ctx, b"resize 42", key="img-42")   # doctest: +SKIP

    ``caller`` is an app server's ``Context`` or any ``Node``. ``send`` raises
    ``QueueFull`` on 503 and passes network errors on.
    """

    def __init__(self, queue: str, *, timeout_s: float = 5.0, group_header: str = "x-group") -> None:
        if not (isinstance(queue, str) and queue):
            raise ConfigError(f"queue must be a queue host name, got {queue!r}")
        check_positive("timeout_s", timeout_s)
        self.queue = queue
        self.timeout_s = float(timeout_s)
        self.group_header = group_header

    async def send(self, caller, body: bytes | str, *, key: str | None = None, group: str | None = None,
                   headers: dict[str, str] | None = None) -> str:
        """Enqueue ``body``; returns the message id."""
        h = dict(headers or {})
        if key is not None:
            h["x-idempotency-key"] = key
        if group is not None:
            h[self.group_header] = group
        data = body.encode() if isinstance(body, str) else body
        response = await caller.call(self.queue, Request("POST", "/enqueue", h, data), self.timeout_s)
        if response.status == 503:
            raise QueueFull(response.text)
        if response.status != 202:
            raise RequestError(f"{self.queue!r} answered {response.status}: {response.text}")
        return json.loads(response.body)["id"]

    async def receive(self, caller, *, max_messages: int = 1, wait_s: float = 0.0) -> list[Message]:
        headers = {"x-max-messages": str(max_messages), "x-wait-s": repr(float(wait_s))}
        response = await caller.call(self.queue, Request("POST", "/receive", headers), wait_s + self.timeout_s)
        if response.status != 200:
            raise RequestError(f"{self.queue!r} answered {response.status}: {response.text}")
        return [Message.from_json(m) for m in json.loads(response.body)]

    async def ack(self, caller, message: Message) -> bool:
        """True if acked; False if the lease was gone (the message was redelivered meanwhile)."""
        response = await caller.call(self.queue, Request("POST", "/ack", {"x-receipt": message.receipt}),
                                     self.timeout_s)
        return response.status == 200

    async def nack(self, caller, message: Message) -> bool:
        response = await caller.call(self.queue, Request("POST", "/nack", {"x-receipt": message.receipt}),
                                     self.timeout_s)
        return response.status == 200

    def __repr__(self) -> str:
        return f"QueueClient({self.queue!r})"
