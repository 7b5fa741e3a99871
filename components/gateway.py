"""An API gateway: one front door that admits, limits and forwards requests to the service behind it.

In the real world (AWS API Gateway, Kong, Apigee, an Envoy edge) the gateway
is where a request from the internet is first *judged*: is this client within
its rate limit? Requests over the limit are answered ``429`` with
``Retry-After`` there and then, before they cost the service anything; the
others are forwarded (with ``x-forwarded-for``) to ``upstream``, typically a
balancer.

    gw = APIGateway("gw", upstream="lb", rate_limit=RateLimit(TokenBucket(rate_per_s=50, burst=100)))

Modelled: per-client (or per-API-key, or global) limits from
``components.rate_limit``, a per-request timeout to the upstream. Left out:
authentication, request transformation, caching, usage plans by the day.
"""
from __future__ import annotations

from typing import Any

from playground import ConfigError, Request, RequestError, Response, Node
from playground._errors import check_positive

from .rate_limit import RateLimit, RateLimiter

__all__ = ["APIGateway"]


class APIGateway(Node):
    """Rate limits, then forwards to ``upstream``. Defaults: no limit, 10 s per request upstream."""

    kind = "gateway"

    def __init__(self, name: str, upstream: str, *, rate_limit: RateLimit | None = None, timeout_s: float = 10.0,
                 region: str | None = None, concurrency: int | None = None, queue_limit: int | None = None) -> None:
        super().__init__(name, region=region, concurrency=concurrency, queue_limit=queue_limit)
        if not (isinstance(upstream, str) and upstream):
            raise ConfigError(f"upstream must be a host name, got {upstream!r}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise ConfigError(f"rate_limit must be a RateLimit or None, got {rate_limit!r}")
        check_positive("timeout_s", timeout_s)
        self.upstream = upstream
        self.rate_limit = rate_limit
        self.timeout_s = float(timeout_s)
        self.limiter = RateLimiter(rate_limit) if rate_limit else None

    def downstream(self) -> tuple[str, ...]:
        return (self.upstream,)

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self.limiter = RateLimiter(self.rate_limit) if self.rate_limit else None
        self.forwarded = 0

    def on_crash(self) -> None:  # the counts live in memory
        self.limiter = RateLimiter(self.rate_limit) if self.rate_limit else None

    async def handle(self, request: Request) -> Response:
        if self.limiter is not None:
            refused = self.limiter.check(request, self.sched.now)
            if refused is not None:
                return refused
        forwarded = request.copy()
        xff = request.headers.get("x-forwarded-for")
        forwarded.headers["x-forwarded-for"] = f"{xff}, {request.client}" if xff else request.client
        self.forwarded += 1
        try:
            return await self.call(self.upstream, forwarded, self.timeout_s)
        except RequestError as exc:
            return Response(504 if exc.kind == "timeout" else 502, {"x-error": exc.kind}, str(exc).encode())

    def detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {"forwarded": getattr(self, "forwarded", 0)}
        if self.limiter is not None:
            d["rate_limit"] = self.limiter.detail()
        return d
