"""The simulated network: named hosts, links with latency, and faults.

Every message between two hosts crosses a *link*. A link has a latency
distribution, optional jitter, a loss probability and an optional bandwidth
(bytes per second; messages on one link are serialised, so a big response
delays the ones behind it). Links are looked up, most specific first:
an explicit ``link(a, b)``, then the latency between the two hosts' regions,
then the network's default LAN latency. A host talking to itself pays nothing.

Faults are verbs in pairs, usable before a run or during one:

* ``partition(a, b)`` / ``repair(a, b)`` - messages are lost, in either
  direction or (``one_way=True``) only from ``a`` to ``b``. A message already
  in flight when the partition starts is lost too, even if the link is
  repaired before it would have landed, as a cut cable loses what is on the
  wire. Callers see a timeout, never an error message: a partition is silent.
* ``hold(a, b)`` / ``release(a, b)`` - messages are kept at the link and
  delivered, in order, on release (a stalled switch, a long GC pause).
* ``slow(a, b, factor)`` / ``heal(a, b)`` - link latency multiplied.
* ``crash``/``restart`` and ``slow``/``heal`` of a host live on the host
  (``playground.Node``); a message to a crashed host is refused, which the
  caller sees after one trip back (a TCP reset), and requests a host was
  holding when it crashed fail with ``reset``.

Host groups: every fault verb takes a host name or a list of names.
"""
from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from trio.lowlevel import current_task

from ._clock import task_waits, wait_with
from ._distributions import Constant, Distribution, as_distribution
from ._errors import ConfigError, Refused, RequestError, Timeout, WiringError, check_positive, check_probability
from . import _trace
from ._messages import Request, Response

if TYPE_CHECKING:
    from ._clock import Scheduler
    from ._node import Node

__all__ = ["Network", "Link", "Exchange"]

MAX_HOPS = 32
_INF = float("inf")


@dataclass(frozen=True)
class Link:
    """How messages travel from one host (or region) to another."""

    latency_s: Distribution
    loss: float = 0.0
    bandwidth_bytes_per_s: float | None = None

    def __post_init__(self) -> None:
        check_probability("loss", self.loss)
        if self.bandwidth_bytes_per_s is not None:
            check_positive("bandwidth_bytes_per_s", self.bandwidth_bytes_per_s)


def make_link(latency_s, jitter_s: float = 0.0, loss: float = 0.0, bandwidth_bytes_per_s=None) -> Link:
    dist = as_distribution(latency_s, "latency_s")
    check_positive("jitter_s", jitter_s, allow_zero=True)  # '' or False must not pass as "no jitter"
    if jitter_s:
        dist = dist.jittered(jitter_s)
    return Link(dist, loss, bandwidth_bytes_per_s)


class Exchange:
    """One request in flight from ``src`` to ``dst`` and, later, its answer.

    ``on_reply(result)`` is called exactly once, on the caller's side, with a
    ``Response`` or a ``RequestError``.
    """

    __slots__ = ("request", "src", "dst", "on_reply", "done", "sent_at")

    def __init__(self, request: Request, src: str, dst: str, on_reply, sent_at: float) -> None:
        self.request = request
        self.src = src
        self.dst = dst
        self.on_reply = on_reply
        self.done = False
        self.sent_at = sent_at

    def finish(self, result) -> None:
        """Hand ``result`` to the caller (once; later answers are ignored)."""
        if self.done:
            return
        self.done = True
        on_reply = self.on_reply  # a slot read, then a call: ``self.on_reply(...)`` is not specialised
        on_reply(result)


_COMPACT_AT = 256  # a timeout FIFO's length from which answered heads are dropped on the next add


class _Deadlines:
    """The pending timeouts that share one duration, in the order they were set.

    Timeouts of one length expire in the order they were set, so a FIFO holds
    them and only its head sits in the scheduler's heap. A busy client keeps
    thousands of timeouts pending (rate x timeout_s); in the heap they would
    make every push and pop slower, here they cost a deque append. The head is
    pushed with the place in the firing order taken when the timeout was set,
    so timeouts fire exactly when, and in the order, individual timers would.

    Answered exchanges leave the FIFO from its head. Left there until the head
    expires, they would keep every request of the last ``timeout_s`` alive (and
    the garbage collector busy walking them); so once the FIFO is long, an add
    drops the answered ones at its head. The armed entry stays in the heap: when
    it fires for an exchange already dropped it does nothing (and is not counted
    as fired, as an answered request's own timer would have been disarmed) but
    arm the head. Re-arming on every add instead cost a heap push and a
    cancelled entry per request, and the head's timer would fire at the same
    place either way: it keeps the order taken when its timeout was set.
    """

    __slots__ = ("net", "timeout_s", "items", "armed", "_timer")

    def __init__(self, net: "Network", timeout_s: float) -> None:
        self.net = net
        self.timeout_s = timeout_s
        self.items: deque = deque()  # (when, seq, exchange)
        self.armed = False
        self._timer = None

    def add(self, ex: "Exchange") -> None:
        sched = self.net.sched
        items = self.items
        items.append((sched.now + self.timeout_s, next(sched._seq), ex))  # next_seq(), written out
        if not self.armed:
            self._arm()
        elif len(items) > _COMPACT_AT and items[0][2].done:  # the module's name: read faster than the class's
            popleft = items.popleft
            popleft()
            while items[0][2].done:  # stops at the latest, at the exchange just added
                popleft()

    def _arm(self) -> None:
        items = self.items
        while items and items[0][2].done:  # answered in time: nothing to fire
            items.popleft()
        if not items:
            if self.net._deadlines.get(self.timeout_s) is self:
                del self.net._deadlines[self.timeout_s]
            return
        when, seq, _ = items[0]
        self._timer = self.net.sched.call_at_seq(when, seq, self._expire)
        self.armed = True

    def _expire(self, _=None) -> None:
        self.armed = False
        items = self.items
        if items and items[0][1] == self._timer[1]:  # the head is the entry this timer was set for
            _, _, ex = items.popleft()
            if ex.done:  # answered after the head was armed: an individual timer would have been disarmed
                self.net.sched.fired -= 1
            else:
                ex.finish(Timeout(f"no answer from {ex.dst!r}"))
        else:  # its entry was answered and dropped by ``add``: its own timer would have been disarmed
            self.net.sched.fired -= 1
        if not self.armed:
            self._arm()


def _names(hosts) -> list[str]:
    if isinstance(hosts, str):
        return [hosts]
    return [h if isinstance(h, str) else h.name for h in hosts]


class Network:
    """Hosts, links and faults. Owned by a ``Sim``; components reach it through their host."""

    def __init__(self, rng: random.Random, default_latency_s=0.0005) -> None:
        self.hosts: dict[str, Node] = {}
        self._deliver_to: dict[str, Callable[[Exchange], None]] = {}  # host name -> its bound ``_deliver``
        self.rng = rng
        self.sched: Scheduler | None = None
        self.default_link = make_link(default_latency_s)
        self._links: dict[tuple[str, str], Link] = {}
        self._region_links: dict[tuple[str, str], Link] = {}
        self._cut: set[tuple[str, str]] = set()
        self._cuts_made = 0  # partitions so far; a message on the wire notes the count when it left
        self._cut_epoch: dict[tuple[str, str], int] = {}  # pair -> count at its latest partition
        self._held: dict[tuple[str, str], deque] = {}
        self._slow: dict[tuple[str, str], float] = {}
        self._faulty = False  # a pair is cut, held or slowed: every message looks at the faults
        self._busy_until: dict[tuple[str, str], float] = {}
        # (src, dst) -> ``route``'s answer and the delay of a message that needs nothing else
        self._route_cache: dict[tuple[str, str], tuple[Link, tuple[str, str], bool, float | None, float | None]] = {}
        self.counters: Counter[str] = Counter()
        self._deadlines: dict[float, _Deadlines] = {}  # pending timeouts by duration
        self._deadlines_sched: Scheduler | None = None
        self.active = False  # True while a run is in progress; messages outside a run vanish
        # ``self._arrive`` bound once: every message posts it, and reading a method off the
        # instance makes a new bound method each time (CPython 3.11 does not specialise that read)
        self._arrive_cb = self._arrive

    # -- wiring -------------------------------------------------------------------
    def add_host(self, node: "Node") -> None:
        if node.name in self.hosts:
            raise WiringError(f"duplicate host name {node.name!r}: host names must be unique")
        self.hosts[node.name] = node
        # its ``_deliver`` bound once: a send reads it from here, not off the node (a new bound method each time)
        self._deliver_to[node.name] = node._deliver
        self._route_cache.clear()

    def host(self, name: str) -> "Node":
        try:
            return self.hosts[name]
        except KeyError:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise WiringError(f"unknown host {name!r} (known hosts: {known})") from None

    def link(self, a: str, b: str, latency_s=0.0005, *, jitter_s=0.0, loss=0.0, bandwidth_bytes_per_s=None,
             one_way: bool = False) -> Link:
        """Set the link between hosts ``a`` and ``b`` (both directions unless ``one_way``)."""
        self.host(a), self.host(b)
        link = make_link(latency_s, jitter_s, loss, bandwidth_bytes_per_s)
        self._links[(a, b)] = link
        if not one_way:
            self._links[(b, a)] = link
        self._route_cache.clear()
        return link

    def region_link(self, r1: str, r2: str, latency_s, *, jitter_s=0.0, loss=0.0) -> Link:
        """Latency between any host in region ``r1`` and any in ``r2`` (both ways)."""
        link = make_link(latency_s, jitter_s, loss)
        self._region_links[(r1, r2)] = link
        self._region_links[(r2, r1)] = link
        self._route_cache.clear()
        return link

    def route(self, src: str, dst: str) -> tuple[Link, tuple[str, str], bool, float | None, float | None]:
        """The link from ``src`` to ``dst``, the pair, whether it crosses between regions, the
        link's delay when that is all it does (a constant latency; no loss, no bandwidth), and
        a message's delay when that is all there is to carrying it (such a link, not between
        regions; 0.0 to itself), else None.

        Crossing is between two hosts in two different named regions; a
        client (the users' side) sending to a region is not inter-region
        traffic, and neither is a host with no region.
        """
        key = (src, dst)
        hit = self._route_cache.get(key)
        if hit is not None:
            return hit
        a, b = self.hosts.get(src), self.hosts.get(dst)
        ra = a.region if a is not None else None
        rb = b.region if b is not None else None
        link = self._links.get(key)
        if link is None:
            link = self._region_links.get((ra, rb))
            if link is None:
                link = self.default_link
        crosses = (ra is not None and rb is not None and ra != rb
                   and a.kind != "client" and b.kind != "client")
        # a link that only delays, by a constant: its delay, so that a message on it draws nothing
        # and reads no more of the link (most links are these); None for any other link
        plain = (link.latency_s.value_s if link.latency_s.__class__ is Constant and not link.loss
                 and not link.bandwidth_bytes_per_s else None)
        # what ``_carry`` needs to know of a message with no fault on the way: its delay, if that
        # is all there is to it (a plain link, not billed between regions; none to itself)
        only = 0.0 if src == dst else None if crosses else plain
        hit = self._route_cache[key] = (link, key, crosses, plain, only)
        return hit

    # -- faults -------------------------------------------------------------------
    def _pairs(self, a, b, one_way: bool) -> Iterable[tuple[str, str]]:
        xs, ys = _names(a), _names(b)
        for x in xs:
            self.host(x)
        for y in ys:
            self.host(y)
        for x in xs:
            for y in ys:
                yield (x, y)
                if not one_way:
                    yield (y, x)

    def partition(self, a, b, *, one_way: bool = False) -> None:
        """Lose every message between ``a`` and ``b`` (only a->b if ``one_way``)."""
        pairs = list(self._pairs(a, b, one_way))
        self._cuts_made += 1
        for pair in pairs:  # what is on the wire now is lost, even if repaired before it lands
            self._cut_epoch[pair] = self._cuts_made
        self._cut.update(pairs)
        self._faults_changed()

    def repair(self, a, b, *, one_way: bool = False) -> None:
        """Undo ``partition``."""
        self._cut.difference_update(self._pairs(a, b, one_way))
        self._faults_changed()

    def hold(self, a, b, *, one_way: bool = False) -> None:
        """Keep messages between ``a`` and ``b`` at the link until ``release``."""
        for pair in self._pairs(a, b, one_way):
            self._held.setdefault(pair, deque())
        self._faults_changed()

    def release(self, a, b, *, one_way: bool = False) -> None:
        """Deliver, in order, what ``hold`` kept, and stop holding."""
        for pair in self._pairs(a, b, one_way):
            queue = self._held.pop(pair, None)
            while queue:
                fn, arg = queue.popleft()
                self.sched.call_soon(fn, arg)
        self._faults_changed()

    def slow(self, a, b, factor: float = 10.0) -> None:
        """Multiply the latency between ``a`` and ``b`` by ``factor``."""
        check_positive("slow factor", factor)
        for pair in self._pairs(a, b, False):
            self._slow[pair] = float(factor)
        self._faults_changed()

    def heal(self, a, b) -> None:
        """Undo ``slow``."""
        for pair in self._pairs(a, b, False):
            self._slow.pop(pair, None)
        self._faults_changed()

    def _faults_changed(self) -> None:
        self._faulty = bool(self._cut or self._held or self._slow)

    @property
    def faults(self) -> dict[str, list[tuple[str, str]]]:
        return {"partitioned": sorted(self._cut), "held": sorted(self._held), "slowed": sorted(self._slow)}

    # -- moving messages ------------------------------------------------------------
    def _carry(self, src: str, dst: str, size: int, fn, arg) -> None:
        """Put a message of ``size`` bytes on the wire; ``fn(arg)`` runs when it arrives (if it does)."""
        key = (src, dst)
        if not self._faulty:  # most messages: a known plain link and no fault anywhere, only a delay
            hit = self._route_cache.get(key)
            if hit is not None:
                delay = hit[4]
                if delay is not None:
                    sched = self.sched
                    sched.post(sched.now + delay, self._arrive_cb, (key, fn, arg, self._cuts_made))
                    return
        if src == dst:
            delay = 0.0
        else:
            hit = self._route_cache.get(key)
            if hit is None:
                hit = self.route(src, dst)
            if self._cut and key in self._cut:
                self.counters["dropped_partition"] += 1
                return
            if hit[2]:  # between regions: what a cloud bills as inter-region transfer
                self.counters["bytes_cross_region"] += size
            delay = hit[3]
            if delay is None:  # a link that loses, limits bandwidth or draws its latency
                link = hit[0]
                if link.loss and self.rng.random() < link.loss:
                    self.counters["dropped_loss"] += 1
                    return
                delay = link.latency_s.sample(self.rng)
            if self._slow:
                delay *= self._slow.get(key, 1.0)
            if hit[3] is None and hit[0].bandwidth_bytes_per_s:
                now = self.sched.now
                start = max(now, self._busy_until.get(key, now))
                done = start + size / hit[0].bandwidth_bytes_per_s
                self._busy_until[key] = done
                delay += done - now
        if self._held:
            held = self._held.get(key)
            if held is not None:
                held.append((fn, arg))
                return
        sched = self.sched
        sched.post(sched.now + delay, self._arrive_cb, (key, fn, arg, self._cuts_made))

    def _arrive(self, item) -> None:
        if not self.active:  # a message still on the wire when its run ended
            return
        key, fn, arg, cuts_at_departure = item
        if self._cut_epoch and self._cut_epoch.get(key, 0) > cuts_at_departure and key[0] != key[1]:
            self.counters["dropped_in_flight"] += 1  # the link was cut while it was on the wire
            return
        if self._held:
            held = self._held.get(key)
            if held is not None:
                held.append((fn, arg))
                return
        fn(arg)

    def send(self, src: str, dst: str, request: Request, on_reply, timeout_s: float | None = None) -> Exchange:
        """Send ``request`` from ``src`` to ``dst``; ``on_reply`` gets the answer or an error.

        Never raises for network conditions: a lost message surfaces as a
        timeout, a crashed host as ``Refused``. Raises ``WiringError`` for an
        unknown host (a bug in the wiring, not a network condition).
        """
        sched = self.sched
        ex = Exchange(request, src, dst, on_reply, sched.now)
        deliver = self._deliver_to.get(dst)
        if deliver is None:
            self.host(dst)  # raises a clear WiringError
        if timeout_s is not None:
            if sched is not self._deadlines_sched:  # a new run on a new clock: old timeouts are gone
                self._deadlines = {}
                self._deadlines_sched = sched
            queue = self._deadlines.get(timeout_s)
            if queue is None:
                queue = self._deadlines[timeout_s] = _Deadlines(self, timeout_s)
            queue.add(ex)
        request.hops += 1
        if request.hops > MAX_HOPS:
            sched.call_soon(ex.finish, Response(508, {}, b"loop detected"))
            return ex
        self.counters["sent"] += 1
        self._carry(src, dst, len(request.body) + 200, deliver, ex)  # if lost, the timeout fires
        return ex

    def respond(self, ex: Exchange, result) -> None:
        """Carry ``result`` (a Response or RequestError) from ``ex.dst`` back to ``ex.src``."""
        if ex.request.trace is not None:
            _trace.answered(ex.request.trace, self.sched.now, result)
        if ex.done:
            return
        size = len(result.body) + 200 if isinstance(result, Response) else 60
        self._carry(ex.dst, ex.src, size, ex.finish, result)

    def refuse(self, ex: Exchange) -> None:
        """The destination is down: a reset comes back after one trip."""
        self.counters["refused"] += 1
        self.respond(ex, Refused(f"connection to {ex.dst!r} refused"))

    async def call(self, src: str, dst: str, request: Request, timeout_s: float | None = 30.0) -> Response:
        """Send from within a task and wait for the answer. Raises ``RequestError`` on failure."""
        if timeout_s is not None and not 0.0 < timeout_s < _INF:  # NaN too: it would corrupt the event heap
            check_positive("timeout_s", timeout_s)
        task = current_task()
        waits = task_waits(task, self.sched)
        ex = self.send(src, dst, request, waits.answer, timeout_s)
        task.custom_sleep_data = ex  # what the wait's abort marks done
        result = await wait_with(waits.call)
        if isinstance(result, RequestError):
            raise result
        return result


