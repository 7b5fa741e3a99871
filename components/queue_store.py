"""The bookkeeping of a message queue: visible messages, messages in flight, redelivery, dead letters.

This is the part of SQS or RabbitMQ that decides *which message goes to whom
and when*, as plain synchronous code fed with times (no trio, no network):

* ``put`` appends a message unless the queue holds ``capacity`` already.
* ``take`` hands out the next visible message and hides it for
  ``visibility_timeout_s``: at-least-once delivery. It comes back (a
  *redelivery*) when the timeout passes without an ``ack``, or at once on a
  ``nack``. Each delivery has its own receipt; an ack with an old receipt (the
  message was redelivered since) is refused, as the consumer's lease is gone.
* A message delivered ``max_attempts`` times and still not acked goes to the
  dead-letter list instead of coming back (SQS's ``maxReceiveCount``).
* With groups (SQS FIFO's ``MessageGroupId``), messages of one group are
  delivered in order and one at a time: while one is in flight the group
  waits; other groups go on.

``expire(now)`` applies the visibility timeouts that have passed; every
operation calls it first, so the figures are always current.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Message", "QueueStore"]


@dataclass(slots=True)
class Message:
    """One message: its ``body``, ``headers``, optional idempotency ``key`` and FIFO ``group``.

    ``attempt`` is how many times it has been delivered (1 on the first delivery).
    """

    id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    key: str | None = None
    group: str | None = None
    enqueued_at: float = 0.0
    attempt: int = 0
    receipt: str = ""
    done: bool = False  # acked or dead-lettered: no longer in the queue

    def to_json(self) -> dict:
        return {"id": self.id, "body": self.body.decode("latin-1"), "headers": self.headers, "key": self.key,
                "group": self.group, "enqueued_at": self.enqueued_at, "attempt": self.attempt,
                "receipt": self.receipt}

    @classmethod
    def from_json(cls, data: dict) -> "Message":
        return cls(data["id"], data["body"].encode("latin-1"), dict(data["headers"]), data["key"], data["group"],
                   data["enqueued_at"], data["attempt"], data["receipt"])


class QueueStore:
    """Visible and in-flight messages of one queue. See the module docstring."""

    def __init__(self, capacity: int, visibility_timeout_s: float, max_attempts: int | None,
                 fifo: bool = False) -> None:
        self.capacity = capacity
        self.visibility_timeout_s = visibility_timeout_s
        self.max_attempts = max_attempts
        self.fifo = fifo
        self._ready: deque[Message] = deque()  # without groups
        self._groups: dict[str, deque[Message]] = {}  # with groups: each group's messages in order
        self._ready_groups: deque[str] = deque()  # groups whose head may be delivered now
        self._locked: set[str] = set()  # groups with a message in flight
        self._visible = 0
        self._inflight: dict[str, Message] = {}  # receipt -> message
        self._leases: list[tuple[float, int, str]] = []  # (visible again at, seq, receipt)
        self._seq = 0
        self._order: deque[Message] = deque()  # every message in enqueue order, for the oldest one's age
        self.dead: deque[Message] = deque()
        self.enqueued = self.delivered = self.acked = self.nacked = 0
        self.redeliveries = self.expired = self.dead_lettered = self.stale_acks = 0

    # -- figures -------------------------------------------------------------------------
    @property
    def visible(self) -> int:
        return self._visible

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def __len__(self) -> int:
        return self._visible + len(self._inflight)

    def oldest_enqueued_at(self) -> float | None:
        order = self._order
        while order and order[0].done:
            order.popleft()
        return order[0].enqueued_at if order else None

    # -- producing -------------------------------------------------------------------------
    def put(self, message: Message) -> bool:
        """Append ``message``; False when the queue is full."""
        if len(self) >= self.capacity:
            return False
        self.enqueued += 1
        self._order.append(message)
        self._make_visible(message, front=False)
        return True

    def _make_visible(self, message: Message, front: bool) -> None:
        self._visible += 1
        if not self.fifo:
            (self._ready.appendleft if front else self._ready.append)(message)
            return
        group = message.group or ""
        q = self._groups.get(group)
        if q is None:
            q = self._groups[group] = deque()
        (q.appendleft if front else q.append)(message)
        if len(q) == 1 and group not in self._locked:
            self._ready_groups.append(group)

    # -- consuming -------------------------------------------------------------------------
    def take(self, now: float) -> Message | None:
        """The next visible message, now hidden until ``now + visibility_timeout_s``; None if there is none."""
        self.expire(now)
        if self.fifo:
            if not self._ready_groups:
                return None
            group = self._ready_groups.popleft()
            message = self._groups[group].popleft()
            if not self._groups[group]:
                del self._groups[group]
            self._locked.add(group)
        else:
            if not self._ready:
                return None
            message = self._ready.popleft()
        self._visible -= 1
        message.attempt += 1
        if message.attempt > 1:
            self.redeliveries += 1
        message.receipt = f"{message.id}#{message.attempt}"
        self.delivered += 1
        self._inflight[message.receipt] = message
        self._seq += 1
        heapq.heappush(self._leases, (now + self.visibility_timeout_s, self._seq, message.receipt))
        return message

    def ack(self, receipt: str, now: float) -> bool:
        """The consumer is done with the message: delete it. False if the receipt is no longer valid."""
        self.expire(now)
        message = self._inflight.pop(receipt, None)
        if message is None:
            self.stale_acks += 1
            return False
        self.acked += 1
        message.done = True
        self._unlock(message)
        return True

    def nack(self, receipt: str, now: float) -> Message | None | bool:
        """The consumer gives the message back: visible again now (or dead-lettered). False if stale."""
        self.expire(now)
        message = self._inflight.pop(receipt, None)
        if message is None:
            self.stale_acks += 1
            return False
        self.nacked += 1
        return self._return(message)

    def expire(self, now: float) -> list[Message]:
        """Apply the visibility timeouts due by ``now``; returns the messages dead-lettered by them."""
        dead = []
        leases = self._leases
        while leases and leases[0][0] <= now:
            _, _, receipt = heapq.heappop(leases)
            message = self._inflight.pop(receipt, None)
            if message is None:  # acked or nacked in time
                continue
            self.expired += 1
            if self._return(message) is None:
                dead.append(message)
        return dead

    def next_expiry(self) -> float | None:
        """When the earliest lease in flight runs out (for a timer that wakes waiting consumers)."""
        leases = self._leases
        while leases and leases[0][2] not in self._inflight:
            heapq.heappop(leases)
        return leases[0][0] if leases else None

    def _return(self, message: Message) -> Message | None:
        """Back to the queue, or to the dead letters after ``max_attempts``; None when dead-lettered."""
        self._unlock(message, requeue=message)
        if self.max_attempts is not None and message.attempt >= self.max_attempts:
            message.done = True
            self.dead_lettered += 1
            self.dead.append(message)
            return None
        return message

    def _unlock(self, message: Message, requeue: Message | None = None) -> None:
        dead = requeue is not None and self.max_attempts is not None and requeue.attempt >= self.max_attempts
        if requeue is not None and not dead:
            self._make_visible(requeue, front=True)  # a redelivered message goes first (FIFO keeps its order)
        if self.fifo:
            group = message.group or ""
            self._locked.discard(group)
            if group in self._groups and group not in self._ready_groups:
                self._ready_groups.append(group)
