"""A worker pool: a host that consumes a message queue with a handler and a concurrency limit.

In the real world this is a fleet of Celery, Sidekiq or Lambda-on-SQS workers:
``concurrency`` consumer loops each long-poll the queue for a message, run the
handler on it, and acknowledge it when the handler returns. A handler that
raises (or answers a Response with status >= 500) gives the message back
(``nack``) to be retried, and after the queue's ``max_attempts`` it is
dead-lettered. A worker that crashes mid-message acknowledges nothing: the
queue redelivers the message once its visibility timeout passes - which is why
a handler's side effects should be idempotent (keyed by ``message.key``).

    async def send_email(message, ctx):
        await ctx.cpu(0.005)
        await db.execute(ctx, "INSERT OR IGNORE INTO sent (key) VALUES (?)", [message.key])

    sim.add(WorkerPool("workers", queue="jobs", handler=send_email, concurrency=8))

The pool is an ``AppServer`` (cores, ``ctx.cpu``, ``ctx.call``, crash and
restart; it answers health checks), so an ``AutoScaler`` can grow it on the
queue's depth (``QueueDepth(queue="jobs")``). ``drain()`` stops taking new
messages and lets the ones in hand finish (scale-in). Left out: batch receive
and prefetch, per-message visibility extension (heartbeats), and priorities.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from playground import ConfigError, LatencyHistogram, Request, RequestError, Response
from playground._errors import check_positive

from .app_server import AppServer, Context, _is_async
from .message_queue import Message, QueueClient

__all__ = ["WorkerPool"]

MessageHandler = Callable[[Message, Context], Awaitable[Any]]


class WorkerPool(AppServer):
    """``concurrency`` consumers of ``queue`` running ``handler(message, ctx)``. Defaults: 8 consumers, 2 cores.

    ``wait_s`` is the long poll of each receive (default 20 s, SQS's longest);
    ``backoff_s`` the pause after the queue could not be reached.
    """

    kind = "workers"

    def __init__(self, name: str, *, queue: str, handler: MessageHandler, concurrency: int = 8,
                 cores: int = 2, wait_s: float = 20.0, backoff_s: float = 1.0, region: str | None = None,
                 **kw) -> None:
        if not (isinstance(queue, str) and queue):
            raise ConfigError(f"queue must be the name of a MessageQueue host, got {queue!r}")
        if not _is_async(handler):
            raise ConfigError(f"WorkerPool {name!r}: handler must be an async function (message, ctx), "
                              f"got {handler!r}")
        if not (isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1):
            raise ConfigError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        check_positive("wait_s", wait_s, allow_zero=True)
        if wait_s > 20.0:
            raise ConfigError(f"wait_s must be <= 20 (the longest long poll), got {wait_s!r}")
        check_positive("backoff_s", backoff_s)
        super().__init__(name, cores=cores, region=region, calls=(queue,) + tuple(kw.pop("calls", ())), **kw)
        self.queue = queue
        self.message_handler = handler
        self.consumers = concurrency
        self.wait_s = float(wait_s)
        self.backoff_s = float(backoff_s)
        self.client = QueueClient(queue)
        self.draining = False
        self._reset_work()

    def _reset_work(self) -> None:
        self.processed = 0
        self.failed = 0
        self.lost_acks = 0
        self.in_hand = 0
        self.handling = LatencyHistogram()
        self.end_to_end = LatencyHistogram()  # enqueued -> acked: what the backlog costs a message

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self._reset_work()

    async def run(self) -> None:
        for _ in range(self.consumers):
            self.spawn(self._consume)

    def drain(self) -> None:
        """Take no new message; the ones in hand finish (an autoscaler's scale-in)."""
        self.draining = True

    def in_progress(self) -> int:
        """Messages being handled now, plus HTTP requests in service."""
        return self.in_hand + len(self._inflight)

    async def _consume(self) -> None:
        while not self.draining:
            try:
                messages = await self.client.receive(self, wait_s=self.wait_s)
            except RequestError:
                await self.sleep(self.backoff_s)
                continue
            for message in messages:
                await self._work(message)

    async def _work(self, message: Message) -> None:
        started = self.sched.now
        self.in_hand += 1
        self._busy.add(1, started)
        request = Request("POST", f"/messages/{message.id}", dict(message.headers), message.body,
                          client=message.headers.get("x-forwarded-for", self.name))
        ctx = Context(self, request)
        try:
            result = await self.message_handler(message, ctx)
            ok = not (isinstance(result, Response) and result.status >= 500)
        except RequestError:
            ok = False
        except Exception as exc:  # a bug or a poison message: the message goes back, the worker goes on
            self.handler_errors += 1
            self.last_error = repr(exc)
            ok = False
        finally:
            self.in_hand -= 1
            self._busy.add(-1, self.sched.now)
        self.handling.record(self.sched.now - started)
        try:
            if ok:
                if await self.client.ack(self, message):
                    self.processed += 1
                    self.end_to_end.record(self.sched.now - message.enqueued_at)
                else:
                    self.lost_acks += 1  # too slow: the lease ran out, someone else has it now
            else:
                self.failed += 1
                await self.client.nack(self, message)
        except RequestError:
            self.lost_acks += 1

    def detail(self) -> dict[str, Any]:
        d = super().detail()
        e2e = self.end_to_end.summary()
        d.update({
            "queue": self.queue,
            "consumers": self.consumers,
            "processed": self.processed,
            "failed": self.failed,
            "lost_acks": self.lost_acks,
            "in_hand": self.in_hand,
            "handling_p99_s": self.handling.percentile(99),
            "end_to_end_p50_s": e2e.p50_s,
            "end_to_end_p99_s": e2e.p99_s,
        })
        return d
