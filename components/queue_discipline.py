"""Accept-queue disciplines: which waiting request a freed worker takes, and which it sheds.

A server's backlog is served first come, first served by default. Under
sustained overload that is the worst order: every request waits behind all
the others, so once the queue holds more than the clients' timeout worth of
work, *every* answer is late and the server works only for users who have
left. Two remedies from production systems (Facebook's "Fail at scale",
Maurer 2015; Nichols and Jacobson's CoDel for network queues):

* ``LIFO(adaptive_above=None)`` - serve the newest request first: under
  overload most users get a fast answer and the unlucky ones at the bottom
  time out (they were late anyway). With ``adaptive_above=n`` the queue stays
  FIFO while it holds at most ``n`` requests - fair when it is short - and
  turns LIFO beyond (adaptive LIFO).
* ``CoDel(target_s=0.005, interval_s=0.1)`` - controlled delay: when requests
  have waited longer than ``target_s`` for a whole ``interval_s`` (a standing
  queue, not a burst), a request taken from the head that waited longer than
  ``target_s`` is shed with a 503 at once instead of being served late. The
  last request in the queue is never shed (CoDel keeps one packet), and the
  state ends as soon as a request is taken that waited less than the target.

``AppServer(queue_discipline="fifo" | "lifo" | "codel" | LIFO(...) | CoDel(...))``
picks one. Each discipline builds the host's accept queue, a ``deque``
subclass whose ``popleft`` applies the rule, so the default FIFO path is the
engine's plain deque, untouched. Left out: CoDel's drop rate growing with the
square root of the drop count (a server sheds every stale request while
overloaded, as Facebook's variant does).
"""
from __future__ import annotations

from collections import deque

from playground import ConfigError, Response
from playground._errors import check_positive

__all__ = ["FIFO", "LIFO", "CoDel", "as_discipline"]


class FIFO:
    """First come, first served: the engine's plain deque."""

    def make(self, node) -> deque:
        return deque()

    def __repr__(self) -> str:
        return "FIFO()"


class _LifoQueue(deque):
    __slots__ = ("above",)

    def popleft(self):
        if self.above is None or len(self) > self.above:
            return self.pop()  # the newest request
        return deque.popleft(self)


class LIFO:
    """Newest first; with ``adaptive_above=n``, FIFO until more than ``n`` requests wait."""

    def __init__(self, adaptive_above: int | None = None) -> None:
        if adaptive_above is not None and not (isinstance(adaptive_above, int) and not isinstance(adaptive_above, bool)
                                               and adaptive_above >= 0):
            raise ConfigError(f"adaptive_above must be an integer >= 0 or None, got {adaptive_above!r}")
        self.adaptive_above = adaptive_above

    def make(self, node) -> deque:
        q = _LifoQueue()
        q.above = self.adaptive_above
        return q

    def __repr__(self) -> str:
        return f"LIFO(adaptive_above={self.adaptive_above!r})"


class _CoDelQueue(deque):
    __slots__ = ("node", "target_s", "interval_s", "above_since", "shed")

    def popleft(self):
        node = self.node
        now = node.sched.now
        arrived = node._inflight
        while True:
            ex = deque.popleft(self)
            waited = now - arrived.get(ex, now)
            if waited < self.target_s:
                self.above_since = None  # the queue drains: no standing queue
                return ex
            if self.above_since is None:
                self.above_since = now
            if now - self.above_since < self.interval_s or not self:
                return ex  # a burst, not yet a standing queue (or the last one: kept)
            self._shed(ex, waited, now)

    def _shed(self, ex, waited: float, now: float) -> None:
        node = self.node
        self.shed += 1
        node.counters["shed"] += 1
        del node._inflight[ex]
        node._in_system.set(len(node._inflight), now)
        node._queued.set(len(self), now)
        node.net.respond(ex, Response(503, {"retry-after": "1", "x-error": "shed"},
                                      f"shed: waited {waited * 1000:.0f} ms in the accept queue".encode()))


class CoDel:
    """Shed requests that waited over ``target_s`` once a queue has stood for ``interval_s``."""

    def __init__(self, target_s: float = 0.005, interval_s: float = 0.1) -> None:
        check_positive("target_s", target_s)
        check_positive("interval_s", interval_s)
        self.target_s = float(target_s)
        self.interval_s = float(interval_s)

    def make(self, node) -> deque:
        q = _CoDelQueue()
        q.node, q.target_s, q.interval_s, q.above_since, q.shed = node, self.target_s, self.interval_s, None, 0
        return q

    def __repr__(self) -> str:
        return f"CoDel(target_s={self.target_s:g}, interval_s={self.interval_s:g})"


_NAMED = {"fifo": FIFO, "lifo": LIFO, "codel": CoDel}


def as_discipline(value):
    """``"fifo"``, ``"lifo"``, ``"codel"`` or a discipline object (anything with ``make(node)``)."""
    if isinstance(value, str) and value in _NAMED:
        return _NAMED[value]()
    if callable(getattr(value, "make", None)):
        return value
    raise ConfigError(f"queue_discipline must be 'fifo', 'lifo', 'codel' or a FIFO/LIFO/CoDel object, got {value!r}")
