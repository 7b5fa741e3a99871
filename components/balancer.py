"""Load balancers: one address in front of many backends, at layer 7 (requests) or layer 4 (connections).

An *L7* balancer (nginx, HAProxy in http mode, Envoy) terminates HTTP: it
reads every request, routes it by path, host or header to a pool of
backends, picks one with a policy, adds ``x-forwarded-for``, and when a
backend fails it can retry an idempotent request on another. An *L4*
balancer (LVS, AWS NLB, HAProxy in tcp mode) sees only connections: the
first packet of a connection picks a backend and every later byte of that
connection goes to the same one, so a few long-lived keep-alive connections
can load backends unevenly however good the policy is.

Both run active health checks as background tasks that send real requests
over the simulated network, eject outliers passively, may ramp returning
backends up slowly, and answer at once with 503 "no healthy backend" when no
backend is eligible (never a hang). A connection refused is always tried on
another backend: the request never reached anyone. Both are hosts and can
crash; what they learnt (health, ejections, the connection table) is lost.

Modelled: routing rules, policies (``components.policies``), sticky cookies,
per-attempt timeouts, retries bounded by a retry budget, rate limits
(``components.rate_limit``, L7 only), hedged requests (``hedge_after_s``: a
second attempt on another backend after that long without an answer, the
first good answer wins, L7 only), a circuit breaker per backend
(``circuit_breaker=``, ``components.circuit_breaker``), health and outlier state
(``components.health``) kept per backend by ``components.backend_pool``,
backends added and removed at run time (an autoscaler; a removed backend
finishes what it holds). Left out: TLS, HTTP/2 multiplexing, request
buffering limits, and the L4 balancer's own TCP resets
(when it has nothing to offer it answers 503, as the engine's messages are
HTTP).

    lb = L7Balancer("lb", ["app1", "app2", "app3"], health_check=HealthCheck(interval_s=0.5), retries=2)
    lb = L7Balancer("lb", ["app1", "app2"], pools={"cdn": ["edge"]}, routes=[Route(pool="cdn", prefix="/static")])
    l4 = L4Balancer("nlb", ["app1", "app2", "app3"], policy=LeastConnections())
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import trio

from playground import ConfigError, Request, RequestError, Response, WiringError
from playground._errors import check_positive

from .backend_pool import DEFAULT_POOL, BalancerBase, check_backends
from .health import HealthCheck, OutlierDetection, RetryBudget, RetryBudgetTracker
from .circuit_breaker import CircuitBreaker
from .policies import ConsistentHash, Policy
from .rate_limit import RateLimit, RateLimiter

__all__ = ["L7Balancer", "L4Balancer", "Route"]

RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_KINDS = frozenset({"timeout", "reset", "refused"})


@dataclass(frozen=True)
class Route:
    """Send requests matching every given condition to ``pool``; the first matching route wins.

        >>> Route(pool="cdn", prefix="/static")
        Route(pool='cdn', prefix='/static', host=None, header=None, value=None)

    ``host`` matches the host header (without a port); ``header`` alone matches
    its presence, with ``value`` its exact value.
    """

    pool: str
    prefix: str | None = None
    host: str | None = None
    header: str | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.pool, str) and self.pool):
            raise ConfigError(f"Route pool must be a non-empty string, got {self.pool!r}")
        if self.prefix is not None and not (isinstance(self.prefix, str) and self.prefix.startswith("/")):
            raise ConfigError(f"Route prefix must start with '/', got {self.prefix!r}")
        if self.value is not None and self.header is None:
            raise ConfigError(f"Route value {self.value!r} needs a header name")
        if self.prefix is None and self.host is None and self.header is None:
            raise ConfigError(f"Route to {self.pool!r} needs at least one of prefix, host, header")
        if self.header is not None:
            object.__setattr__(self, "header", self.header.lower())

    def matches(self, request: Request) -> bool:
        if self.prefix is not None and not request.route.startswith(self.prefix):
            return False
        if self.host is not None:
            host = request.headers.get("host", "").split(":", 1)[0].lower()
            if host != self.host.lower():
                return False
        if self.header is not None:
            got = request.headers.get(self.header)
            if got is None or (self.value is not None and got != self.value):
                return False
        return True


def _error_response(kind: str, message: str) -> Response:
    return Response(504 if kind == "timeout" else 502, {"x-error": kind}, message.encode())


class L7Balancer(BalancerBase):
    """An HTTP balancer: routes, picks a backend per request, retries, adds ``x-backend``.

        >>> lb = L7Balancer("lb", ["app1", "app2"], retries=2, health_check=HealthCheck())
        >>> lb.downstream()
        ('app1', 'app2')

    ``backends`` (a list of hosts, or a mapping host -> weight) is the default
    pool; ``pools`` adds named ones that ``routes`` send requests to. Defaults:
    round robin, 5 s per attempt, 1 retry under a ``RetryBudget()``, no health
    checks, no outlier detection, no slow start, no sticky sessions.
    """

    def __init__(self, name: str, backends: Sequence[str] | Mapping[str, float] = (), *,
                 pools: Mapping[str, Sequence[str] | Mapping[str, float]] | None = None,
                 routes: Sequence[Route] = (), policy: Policy | None = None, sticky: bool = False,
                 timeout_s: float = 5.0, retries: int = 1, retry_budget: RetryBudget | None = RetryBudget(),
                 health_check: HealthCheck | None = None, outlier: OutlierDetection | None = None,
                 slow_start_s: float = 0.0, rate_limit: RateLimit | None = None,
                 circuit_breaker: CircuitBreaker | None = None, hedge_after_s: float | None = None,
                 region: str | None = None, concurrency: int | None = None, queue_limit: int | None = None) -> None:
        check_backends(f"L7Balancer {name!r}", backends)
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise ConfigError(f"rate_limit must be a RateLimit or None, got {rate_limit!r}")
        self.rate_limit = rate_limit
        all_pools = {DEFAULT_POOL: backends, **dict(pools or {})}
        if not backends and pools:  # routes only, no default pool
            del all_pools[DEFAULT_POOL]
        for route in routes:
            if not isinstance(route, Route):
                raise ConfigError(f"routes must be Route objects, got {route!r}")
            if route.pool not in all_pools:
                raise ConfigError(f"route pool {route.pool!r} is not defined (pools: {', '.join(all_pools)})")
        if not (isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0):
            raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
        if retry_budget is not None and not isinstance(retry_budget, RetryBudget):
            raise ConfigError(f"retry_budget must be a RetryBudget or None, got {retry_budget!r}")
        self.routes = tuple(routes)
        self.sticky = bool(sticky)
        self.retries = retries
        self.retry_budget = retry_budget
        if hedge_after_s is not None:
            check_positive("hedge_after_s", hedge_after_s)
        self.hedge_after_s = hedge_after_s
        super().__init__(name, all_pools, policy=policy, health_check=health_check, outlier=outlier,
                         slow_start_s=slow_start_s, timeout_s=timeout_s, region=region,
                         concurrency=concurrency, queue_limit=queue_limit, circuit_breaker=circuit_breaker)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._budget = RetryBudgetTracker(self.retry_budget) if self.retry_budget else None
        self.limiter = RateLimiter(self.rate_limit) if self.rate_limit else None
        self.retries_used = 0
        self.unroutable = 0
        self.hedges = 0
        self.hedges_won = 0

    def pool_for(self, request: Request) -> str | None:
        for route in self.routes:
            if route.matches(request):
                return route.pool
        return DEFAULT_POOL if DEFAULT_POOL in self.pools else None

    def _admit(self, request: Request) -> Response | tuple[str, Request]:
        """Before any attempt: an immediate answer (rate limited, no route), or the pool and the
        request to forward (with ``x-forwarded-for``)."""
        if self.limiter is not None:
            refused = self.limiter.check(request, self.sched.now)
            if refused is not None:
                return refused
        pool = self.pool_for(request)
        if pool is None:
            self.unroutable += 1
            return Response(404, {"x-error": "no-route"}, b"no route for this request")
        if self._budget is not None:
            self._budget.request(self.sched.now)
        forwarded = request.copy()
        xff = request.headers.get("x-forwarded-for")
        forwarded.headers["x-forwarded-for"] = f"{xff}, {request.client}" if xff else request.client
        return pool, forwarded

    async def handle(self, request: Request) -> Response:
        admitted = self._admit(request)
        if isinstance(admitted, Response):
            return admitted
        pool, forwarded = admitted
        pinned = _sticky_backend(request) if self.sticky else None
        tried: set[str] = set()
        retries_left = self.retries
        failure: Response | None = None  # the last answer worth passing on if no backend is left
        while True:
            now = self.sched.now
            eligible = self._eligible(pool, now, tried)
            if not eligible:
                return failure if failure is not None else self._no_backend()
            if pinned is not None and any(b.name == pinned for b in eligible):
                name = pinned
            else:
                name = self._policies[pool].choose(eligible, request, self.rng)
            pinned = None
            tried.add(name)
            if self.hedge_after_s is not None and request.idempotent:
                name, result = await self._hedged(pool, name, forwarded, request, tried)
            else:
                result = await self._attempt(name, forwarded.copy())
            if isinstance(result, Response):
                kind = None if result.status not in RETRY_STATUSES else "5xx"
            else:
                kind = result.kind
            if kind is None:
                return self._answer(result, name, request)
            if kind == "refused":  # never reached the backend: always safe to try another
                self.refused_retries += 1
                continue
            if isinstance(result, Response):
                failure = self._answer(result, name, request)
            else:
                failure = _error_response(kind, str(result))
                failure.headers["x-backend"] = name
            if retries_left and request.idempotent and (kind in RETRY_KINDS or kind == "5xx"):
                if self._budget is None or self._budget.try_retry(self.sched.now):
                    retries_left -= 1
                    self.retries_used += 1
                    continue
            return failure

    # -- the inline path (BalancerBase): ``handle`` above, step for step, as callbacks ----------
    def _inline_server(self):
        plain = (type(self).handle is L7Balancer.handle and type(self)._attempt is BalancerBase._attempt
                 and self.hedge_after_s is None)
        return self._serve_forward if plain else None

    def _forward_begin(self, forward) -> Response | None:
        request = forward.ex.request
        admitted = self._admit(request)
        if isinstance(admitted, Response):
            return admitted
        forward.pool, forward.forwarded = admitted
        forward.pinned = _sticky_backend(request) if self.sticky else None
        forward.retries_left = self.retries
        return None

    def _forward_next(self, forward) -> None:
        """The top of ``handle``'s loop: pick a backend and send the attempt."""
        now = self.sched.now
        pool = forward.pool
        eligible = self._eligible(pool, now, forward.tried)
        if not eligible:
            return self._inline_done(forward, forward.failure if forward.failure is not None else self._no_backend())
        pinned = forward.pinned
        if pinned is not None and any(b.name == pinned for b in eligible):
            name = pinned
        else:
            name = self._policies[pool].choose(eligible, forward.ex.request, self.rng)
        forward.pinned = None
        forward.tried.add(name)
        self._attempt_then(forward, name, forward.forwarded.copy())

    def _forward_answered(self, forward, name: str, result) -> None:
        """The rest of ``handle``'s loop, once the attempt answered."""
        request = forward.ex.request
        if isinstance(result, Response):
            kind = None if result.status not in RETRY_STATUSES else "5xx"
        else:
            kind = result.kind
        if kind is None:
            return self._inline_done(forward, self._answer(result, name, request))
        if kind == "refused":  # never reached the backend: always safe to try another
            self.refused_retries += 1
            return self._forward_next(forward)
        if isinstance(result, Response):
            failure = self._answer(result, name, request)
        else:
            failure = _error_response(kind, str(result))
            failure.headers["x-backend"] = name
        forward.failure = failure
        if forward.retries_left and request.idempotent and (kind in RETRY_KINDS or kind == "5xx"):
            if self._budget is None or self._budget.try_retry(self.sched.now):
                forward.retries_left -= 1
                self.retries_used += 1
                return self._forward_next(forward)
        self._inline_done(forward, failure)

    async def _hedged(self, pool: str, first: str, forwarded: Request, request: Request,
                      tried: set[str]) -> tuple[str, Response | RequestError]:
        """Send to ``first``; without an answer after ``hedge_after_s``, also to another backend.

        The first good answer wins and the other attempt is cancelled (its
        backend has the work already: that is the extra load hedging costs).
        If both fail, the last failure is returned.
        """
        outcomes: list[tuple[str, Response | RequestError]] = []

        async def attempt(name: str, scope) -> None:
            result = await self._attempt(name, forwarded.copy())
            outcomes.append((name, result))
            good = isinstance(result, Response) and result.status not in RETRY_STATUSES
            if good:
                scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attempt, first, nursery.cancel_scope)
            await self.sleep(self.hedge_after_s)  # cancelled if the first answered well in time
            if not outcomes:
                others = self._eligible(pool, self.sched.now, tried)
                if others:
                    second = self._policies[pool].choose(others, request, self.rng)
                    tried.add(second)
                    self.hedges += 1
                    nursery.start_soon(attempt, second, nursery.cancel_scope)
        for name, result in outcomes:
            if isinstance(result, Response) and result.status not in RETRY_STATUSES:
                if name != first:
                    self.hedges_won += 1
                return name, result
        return outcomes[-1]

    def _answer(self, response: Response, name: str, request: Request) -> Response:
        headers = {**response.headers, "x-backend": name}
        if self.sticky and _sticky_backend(request) != name:
            # keep the backend's own cookies (a session id): repeated headers are joined with ", "
            own = headers.get("set-cookie")
            headers["set-cookie"] = f"{own}, lb={name}" if own else f"lb={name}"
        return Response(response.status, headers, response.body)

    def detail(self) -> dict[str, Any]:
        d = super().detail()
        d["retries_used"] = self.retries_used
        d["retries_denied"] = self._budget.denied if self._budget else 0
        if self.routes:
            d["unroutable"] = self.unroutable
        if self.limiter is not None:
            d["rate_limit"] = self.limiter.detail()
        if self.hedge_after_s is not None:
            d["hedges"] = self.hedges
            d["hedges_won"] = self.hedges_won
        return d


def _sticky_backend(request: Request) -> str | None:
    for part in request.headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "lb" and value:
            return value
    return None


class L4Balancer(BalancerBase):
    """A connection balancer: the first request of a connection picks a backend, the rest follow it.

        >>> l4 = L4Balancer("nlb", ["app1", "app2", "app3"])

    It never reads paths or headers and never retries a request that reached a
    backend (it cannot know the bytes are safe to replay); only a refused
    connection is tried elsewhere. A connection's entry is dropped when its
    backend fails. ``request.conn == 0`` means a new connection per request.
    Passive outlier detection sees connection failures only, not statuses.
    """

    kind = "l4lb"

    def __init__(self, name: str, backends: Sequence[str] | Mapping[str, float] = (), *,
                 policy: Policy | None = None, timeout_s: float = 5.0, health_check: HealthCheck | None = None,
                 outlier: OutlierDetection | None = None, slow_start_s: float = 0.0, region: str | None = None,
                 concurrency: int | None = None, queue_limit: int | None = None) -> None:
        check_backends(f"L4Balancer {name!r}", backends)
        if isinstance(policy, ConsistentHash) and policy.key != "client":
            raise ConfigError(f"L4Balancer {name!r} cannot hash on {policy.key!r}: it sees connections, "
                              f"not HTTP; use ConsistentHash(key='client')")
        super().__init__(name, {DEFAULT_POOL: backends}, policy=policy, health_check=health_check,
                         outlier=outlier, slow_start_s=slow_start_s, timeout_s=timeout_s, region=region,
                         concurrency=concurrency, queue_limit=queue_limit)

    def _reset_state(self) -> None:
        super()._reset_state()
        self.connections: dict[int, str] = {}
        self.conn_dropped = 0

    def _backend_failed(self, name: str) -> None:
        gone = [c for c, b in self.connections.items() if b == name]
        for c in gone:
            del self.connections[c]
        self.conn_dropped += len(gone)

    def _counts_as_failure(self, result) -> bool:
        return isinstance(result, RequestError)

    async def handle(self, request: Request) -> Response:
        conn = request.conn
        name = self.connections.get(conn) if conn else None
        tried: set[str] = set()
        while True:
            now = self.sched.now
            if name is not None and not self._eligible_name(name, now):
                self._backend_failed(name)
                name = None
            if name is None:
                eligible = self._eligible(DEFAULT_POOL, now, tried)
                if not eligible:
                    return self._no_backend()
                name = self._policies[DEFAULT_POOL].choose(eligible, request, self.rng)
                if conn:
                    self.connections[conn] = name
            tried.add(name)
            result = await self._attempt(name, request)
            if isinstance(result, Response):
                return result
            if conn and self.connections.get(conn) == name:
                del self.connections[conn]
                self.conn_dropped += 1
            if result.kind != "refused":
                return _error_response(result.kind, str(result))
            self.refused_retries += 1
            name = None

    # -- the inline path (BalancerBase): ``handle`` above, step for step, as callbacks ----------
    def _inline_server(self):
        plain = type(self).handle is L4Balancer.handle and type(self)._attempt is BalancerBase._attempt
        return self._serve_forward if plain else None

    def _forward_begin(self, forward) -> Response | None:
        conn = forward.ex.request.conn
        forward.name = self.connections.get(conn) if conn else None
        return None

    def _forward_next(self, forward) -> None:
        request = forward.ex.request
        conn = request.conn
        now = self.sched.now
        name = forward.name
        if name is not None and not self._eligible_name(name, now):
            self._backend_failed(name)
            name = None
        if name is None:
            eligible = self._eligible(DEFAULT_POOL, now, forward.tried)
            if not eligible:
                return self._inline_done(forward, self._no_backend())
            name = self._policies[DEFAULT_POOL].choose(eligible, request, self.rng)
            if conn:
                self.connections[conn] = name
        forward.tried.add(name)
        self._attempt_then(forward, name, request)

    def _forward_answered(self, forward, name: str, result) -> None:
        if isinstance(result, Response):
            return self._inline_done(forward, result)
        conn = forward.ex.request.conn
        if conn and self.connections.get(conn) == name:
            del self.connections[conn]
            self.conn_dropped += 1
        if result.kind != "refused":
            return self._inline_done(forward, _error_response(result.kind, str(result)))
        self.refused_retries += 1
        forward.name = None
        self._forward_next(forward)

    def detail(self) -> dict[str, Any]:
        d = super().detail()
        d["connections"] = len(self.connections)
        d["conn_dropped"] = self.conn_dropped
        return d
