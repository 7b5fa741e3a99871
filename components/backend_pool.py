"""What a balancer knows about its backends, and how it learns it.

Every real balancer keeps a table of its upstreams (nginx ``upstream``, an
Envoy cluster): their names and weights, which are fit to serve right now,
and how busy each is. This module is that table for both ``L7Balancer`` and
``L4Balancer``: named pools of weighted backends, the eligible set (healthy
by active checks, not ejected by outlier detection, weight ramped by slow
start), the active health-check tasks that probe each backend over the
simulated network, and one forwarding attempt that counts in-flight requests
and feeds passive detection. The decisions themselves are the pure state
machines of ``components.health`` and the policies of ``components.policies``;
the balancers in ``components.balancer`` decide what to do with a request.
"""
from __future__ import annotations

import copy
from collections import Counter
from typing import Any, Mapping

from playground import ConfigError, Footprint, Node, Request, RequestError, Response, WiringError
from playground._errors import check_positive

from .circuit_breaker import CircuitBreaker
from .deadline import DEADLINE_HEADER, DeadlineExceeded, remaining_s
from .health import HealthCheck, HealthTracker, OutlierDetection, OutlierTracker, slow_start_factor
from .policies import BackendState, Policy, RoundRobin, policy_hint

__all__ = ["BalancerBase", "DEFAULT_POOL"]

DEFAULT_POOL = "default"
_INF = float("inf")


class _Forward:
    """One request a balancer forwards inline: where its retry loop stands, and the attempt out.

    Its fields are the loop's locals in ``handle``; ``down`` is the attempt's exchange.
    """

    __slots__ = ("lb", "ex", "pool", "forwarded", "pinned", "tried", "retries_left", "failure",
                 "name", "state", "breaker", "started", "down")

    def __init__(self, lb, ex) -> None:
        self.lb = lb
        self.ex = ex
        self.tried: set[str] = set()
        self.pinned = self.failure = self.down = self.forwarded = None

    def answered(self, result) -> None:
        """The attempt's answer arrived (a scheduler callback): go on from where ``handle`` waited."""
        lb = self.lb
        if self.ex not in lb._forwarding:  # pragma: no cover - abandoned attempts are marked done
            return
        try:
            lb._attempt_answered(self, result)
        except Exception as exc:
            lb._inline_failed(self, exc)


def check_backends(owner: str, backends) -> None:
    """Backends are a list of host names or a mapping host -> weight; anything else is a ConfigError."""
    if not isinstance(backends, (str, Mapping, list, tuple, set, frozenset)):
        raise ConfigError(f"{owner}: backends must be a list of host names or a mapping host -> weight, "
                          f"got {backends!r}")


def _weights(owner: str, pool: str, backends) -> dict[str, float]:
    if isinstance(backends, str):
        backends = [backends]
    items = list(backends.items()) if isinstance(backends, Mapping) else [(b, 1.0) for b in backends]
    if not items and pool == DEFAULT_POOL:
        return {}  # filled at run time (an autoscaler adds its servers); validate() checks it is not empty
    if not items:
        raise WiringError(f"{owner}: backends of pool {pool!r} must name at least one host, got {backends!r}")
    out: dict[str, float] = {}
    for name, weight in items:
        if not (isinstance(name, str) and name):
            raise ConfigError(f"{owner}: a backend must be a host name, got {name!r}")
        check_positive(f"weight of backend {name!r}", weight)
        out[name] = float(weight)
    return out


class BalancerBase(Node):
    """What both balancers share: pools, eligibility, health checks, outliers, one forwarding attempt."""

    kind = "lb"
    _hot_methods = Node._hot_methods + ("_serve_forward", "_inline_start", "_inline_done", "_attempt_then",
                                        "_attempt_answered", "_eligible_name", "_eligible")

    def __init__(self, name: str, pools: dict, *, policy: Policy | None, health_check: HealthCheck | None,
                 outlier: OutlierDetection | None, slow_start_s: float, timeout_s: float,
                 region: str | None, concurrency: int | None, queue_limit: int | None,
                 circuit_breaker: CircuitBreaker | None = None) -> None:
        super().__init__(name, region=region, concurrency=concurrency, queue_limit=queue_limit)
        owner = f"{type(self).__name__} {name!r}"
        self.pools = {p: _weights(owner, p, b) for p, b in pools.items()}
        policy = RoundRobin() if policy is None else policy
        if not callable(getattr(policy, "choose", None)):
            raise ConfigError(f"policy must have a choose(backends, request, rng) method, got {policy!r}"
                              + policy_hint(policy))
        if health_check is not None and not isinstance(health_check, HealthCheck):
            raise ConfigError(f"health_check must be a HealthCheck, got {health_check!r}")
        if outlier is not None and not isinstance(outlier, OutlierDetection):
            raise ConfigError(f"outlier must be an OutlierDetection, got {outlier!r}")
        check_positive("slow_start_s", slow_start_s, allow_zero=True)
        check_positive("timeout_s", timeout_s)
        if circuit_breaker is not None and not isinstance(circuit_breaker, CircuitBreaker):
            raise ConfigError(f"circuit_breaker must be a CircuitBreaker or None, got {circuit_breaker!r}")
        self.circuit_breaker = circuit_breaker
        self.policy = policy
        self._policies = {p: copy.deepcopy(policy) for p in self.pools}  # each pool keeps its own position
        self.health_check = health_check
        self.outlier = outlier
        self.slow_start_s = float(slow_start_s)
        self.timeout_s = float(timeout_s)
        self.backend_names = tuple(dict.fromkeys(n for pool in self.pools.values() for n in pool))
        self._reset_state()

    def _reset_state(self) -> None:
        self._states = {n: BackendState(n) for n in self.backend_names}
        hc = self.health_check
        self._health = {n: HealthTracker(hc) for n in self.backend_names} if hc else {}
        self._outliers = OutlierTracker(self.outlier, self.backend_names) if self.outlier else None
        self._breakers = {n: self._new_breaker(n) for n in self.backend_names} if self.circuit_breaker else {}
        self._returned_at: dict[str, float] = {}
        self.sent: Counter[str] = Counter()
        self.health_changes: Counter[str] = Counter()
        self.ejections: Counter[str] = Counter()
        self.no_backend = 0
        self.refused_retries = 0

    def _new_breaker(self, name: str) -> CircuitBreaker:
        breaker = self.circuit_breaker.copy()
        breaker.name = f"{self.name}->{name}"
        breaker.on_transition = lambda t, old, new: self.sim.event(f"circuit {breaker.name}: {old} -> {new}")
        return breaker

    # -- wiring ---------------------------------------------------------------------------
    def downstream(self) -> tuple[str, ...]:
        return self.backend_names

    def validate(self, sim) -> None:
        if not self.backend_names:
            raise WiringError(f"{type(self).__name__} {self.name!r}: backends must name at least one host, got []")
        for name in self.backend_names:
            if name not in sim.net.hosts:
                known = ", ".join(sorted(sim.net.hosts)) or "none"
                raise WiringError(f"{type(self).__name__} {self.name!r}: unknown backend host {name!r} "
                                  f"(known hosts: {known})")
        super().validate(sim)

    def _attach(self, sim, rng) -> None:
        super()._attach(sim, rng)
        self._reset_state()
        self._forwarding: dict = {}  # exchange -> _Forward: requests being forwarded inline
        self._serve_inline = self._inline_server() if self.forward_inline else None

    # -- the inline path ----------------------------------------------------------------------
    # A balancer's request only waits for its backends' answers, so it is forwarded with
    # scheduler callbacks (Node._serve_inline) instead of a worker task: ``handle`` step for
    # step - the same draws, sends, counters and answers - with no task switch per request
    # and per answer. A traced request, hedging, or a subclass that overrides ``handle`` or
    # ``_attempt`` takes the task path. ``forward_inline = False`` forces it (for tests).
    forward_inline = True

    def _inline_server(self):
        """``_serve_forward`` when this balancer forwards inline, None for the task path."""
        return None

    def _serve_forward(self, ex) -> None:
        forward = self._inline_start(ex)
        if forward is None:
            return
        try:
            answer = self._forward_begin(forward)
            if answer is not None:
                return self._inline_done(forward, answer)
            self._forward_next(forward)
        except Exception as exc:
            self._inline_failed(forward, exc)

    # what each balancer's inline path implements: ``handle`` cut at its awaits
    def _forward_begin(self, forward: "_Forward") -> Response | None:
        """Before the first attempt: an immediate answer, or None (``forward`` set up)."""
        raise NotImplementedError

    def _forward_next(self, forward: "_Forward") -> None:
        """Pick a backend and send the attempt (``_attempt_then``), or answer."""
        raise NotImplementedError

    def _forward_answered(self, forward: "_Forward", name: str, result) -> None:
        """The attempt answered: answer, or go on with ``_forward_next``."""
        raise NotImplementedError

    def _inline_start(self, ex) -> "_Forward | None":
        """Begin serving ``ex`` inline: a record of it, or None once it went to a task (traced)."""
        if ex.request.trace is not None:
            self.sched._woke += 1
            self._nursery.start_soon(self._serve_task, ex)
            return None
        self._busy.add(1, self.sched.now)
        forward = self._forwarding[ex] = _Forward(self, ex)
        return forward

    async def _serve_task(self, ex) -> None:
        """Serve one exchange in a task, then go on as an inline completion does."""
        try:
            await self._serve(ex)
        except BaseException:
            self._workers -= 1
            raise
        self._next_inline()

    def _inline_done(self, forward: "_Forward", response) -> None:
        """``_serve``'s ending for an inline-forwarded exchange."""
        ex = forward.ex
        del self._forwarding[ex]
        if (response.__class__ is not Response or response.status.__class__ is not int
                or not 100 <= response.status < 600 or response.body.__class__ is not bytes):
            response = self._checked(response, ex)
        self._busy.add(-1, self.sched.now)
        self._complete(ex, response)
        self._next_inline()

    def _inline_failed(self, forward: "_Forward", exc: Exception) -> None:
        """Forwarding raised (a policy's bug, an unknown backend): the answer ``_serve`` gives.
        Raised after the exchange was answered, it is the engine's own failure: raised on."""
        if forward.ex not in self._forwarding:
            raise exc
        self._inline_done(forward, self._failed(exc, forward.ex))

    def _fail_held(self) -> None:
        # what cancelling the worker tasks would do: each pending attempt is abandoned (its
        # answer, when it comes, is ignored) and each request stops counting as busy
        now = self.sched.now
        for forward in self._forwarding.values():
            if forward.down is not None:
                forward.down.done = True
            self._busy.add(-1, now)
        self._forwarding.clear()
        super()._fail_held()

    def _attempt_then(self, forward: "_Forward", name: str, request: Request) -> None:
        """``_attempt`` without a task: ``_forward_answered(forward, name, result)`` gets the answer or the error."""
        timeout_s = self.timeout_s
        if DEADLINE_HEADER in request.headers:  # the client's remaining time caps the attempt
            left = remaining_s(request, self.sched.now)
            if left is not None and left <= 0:
                self.counters["deadline_refused"] += 1
                forward.down = None
                self._forward_answered(forward, name, DeadlineExceeded(f"deadline exceeded: not forwarded to {name!r}"))
                return
            if left is not None:
                timeout_s = min(timeout_s, left)
        state = self._states[name]
        breaker = self._breakers.get(name)
        now = self.sched.now
        if breaker is not None:
            breaker.allow(now)  # eligible, so permitted: this takes a half-open probe
        state.active += 1
        self.sent[name] += 1
        forward.name, forward.state, forward.breaker, forward.started = name, state, breaker, now
        try:
            if not 0.0 < timeout_s < _INF:
                check_positive("timeout_s", timeout_s)
            forward.down = self.net.send(self.name, name, request, forward.answered, timeout_s)
        except BaseException:
            state.active -= 1
            raise

    def _attempt_answered(self, forward: "_Forward", result) -> None:
        forward.down = None
        forward.state.active -= 1
        breaker = forward.breaker
        if breaker is not None:
            now = self.sched.now
            breaker.record(not self._counts_as_failure(result), now, now - forward.started)
        self._passive(forward.name, result)
        self._forward_answered(forward, forward.name, result)

    def on_crash(self) -> None:  # a balancer keeps what it learnt in memory only
        # the requests it held have failed: it comes back with none in flight (their attempts,
        # abandoned, count down on the state objects they started on, which are dropped here)
        self._reset_state()

    # -- backends that come and go (an autoscaled group) ------------------------------------------
    def add_backend(self, name: str, *, weight: float = 1.0, pool: str = DEFAULT_POOL) -> None:
        """Start sending to host ``name`` (during a run too): an autoscaler registers a booted server."""
        if not (isinstance(name, str) and name):
            raise ConfigError(f"{type(self).__name__} {self.name!r}: a backend must be a host name, got {name!r}")
        check_positive(f"weight of backend {name!r}", weight)
        self.pools.setdefault(pool, {})[name] = float(weight)
        if pool not in self._policies:
            self._policies[pool] = copy.deepcopy(self.policy)
        if name in self.backend_names:
            return
        self.backend_names = self.backend_names + (name,)
        self._states.setdefault(name, BackendState(name))
        self.sent.setdefault(name, 0)
        if self.health_check:
            self._health[name] = HealthTracker(self.health_check)
            if self.sim is not None and self.sim.running and self._nursery is not None:
                self.spawn(self._check_loop, name, 0.0)
        if self._outliers is not None:
            self._outliers = self._outliers.with_names(self.backend_names)
        if self.circuit_breaker is not None:
            self._breakers[name] = self._new_breaker(name)

    def remove_backend(self, name: str) -> None:
        """Stop sending new requests to ``name``; requests it holds finish (connection draining)."""
        for weights in self.pools.values():
            weights.pop(name, None)
        if name in self.backend_names:
            self.backend_names = tuple(n for n in self.backend_names if n != name)
            self._health.pop(name, None)
            self._backend_failed(name)

    def active_requests(self, name: str) -> int:
        """Requests this balancer has sent to ``name`` and not yet had answered."""
        state = self._states.get(name)
        return state.active if state is not None else 0

    # -- who may serve ------------------------------------------------------------------------
    def _eligible_name(self, name: str, now: float) -> bool:
        health = self._health.get(name)
        if health is not None and not health.up:
            return False
        if self._breakers and not self._breakers[name].permits(now):
            return False
        return not (self._outliers is not None and self._outliers.ejected(name, now))

    def _eligible(self, pool: str, now: float, exclude=()) -> list[BackendState]:
        out = []
        states, returned_at = self._states, self._returned_at
        for name, weight in self.pools[pool].items():
            if name in exclude or not self._eligible_name(name, now):
                continue
            state = states[name]
            back = returned_at.get(name)
            state.weight = weight if back is None else weight * slow_start_factor(now - back, self.slow_start_s)
            out.append(state)
        return out

    def _no_backend(self) -> Response:
        self.no_backend += 1
        return Response(503, {"x-error": "no-backend", "retry-after": "1"}, b"no healthy backend")

    def _backend_failed(self, name: str) -> None:
        """A backend left the eligible set (hook: the L4 balancer forgets its connections)."""

    # -- one attempt ----------------------------------------------------------------------------
    async def _attempt(self, name: str, request: Request) -> Response | RequestError:
        """Forward ``request`` to ``name``; the answer or the error, fed to outlier detection."""
        timeout_s = self.timeout_s
        if DEADLINE_HEADER in request.headers:  # the client's remaining time caps the attempt
            left = remaining_s(request, self.sched.now)
            if left is not None and left <= 0:
                self.counters["deadline_refused"] += 1
                return DeadlineExceeded(f"deadline exceeded: not forwarded to {name!r}")
            if left is not None:
                timeout_s = min(timeout_s, left)
        state = self._states[name]
        breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.allow(self.sched.now)  # eligible, so permitted: this takes a half-open probe
        state.active += 1
        self.sent[name] += 1
        started = self.sched.now
        try:
            result: Response | RequestError = await self.call(name, request, timeout_s)
        except RequestError as exc:
            result = exc
        finally:
            state.active -= 1
        if breaker is not None:
            breaker.record(not self._counts_as_failure(result), self.sched.now, self.sched.now - started)
        self._passive(name, result)
        return result

    def _counts_as_failure(self, result) -> bool:
        return isinstance(result, RequestError) or result.status >= 500

    def _passive(self, name: str, result) -> None:
        if self._outliers is None:
            return
        now = self.sched.now
        if self._outliers.record(name, not self._counts_as_failure(result), now):
            self.ejections[name] += 1
            self._returned_at[name] = now + self.outlier.ejection_s
            self._backend_failed(name)
            self.sim.event(f"{self.name}: ejected {name} for {self.outlier.ejection_s:g}s")

    # -- active health checks ---------------------------------------------------------------------
    async def run(self) -> None:
        hc = self.health_check
        if hc is None:
            return
        n = len(self.backend_names)
        for i, name in enumerate(self.backend_names):  # staggered, as real checkers spread their probes
            self.spawn(self._check_loop, name, hc.interval_s * i / n)

    async def _check_loop(self, name: str, offset_s: float) -> None:
        hc = self.health_check
        await self.sleep(offset_s)
        while name in self._health:  # a removed backend is no longer checked
            started = self.sched.now
            probe = Request("GET", hc.path, {"user-agent": "playground-health-check"}, client=self.name)
            try:
                response = await self.call(name, probe, hc.timeout_s)
                passed = response.status < 500
            except RequestError:
                passed = False
            tracker = self._health.get(name)
            if tracker is None:
                return
            if tracker.record(passed):
                self.health_changes[name] += 1
                if tracker.up:
                    self._returned_at[name] = self.sched.now
                else:
                    self._backend_failed(name)
                self.sim.event(f"{self.name}: {name} marked {'up' if tracker.up else 'down'}")
            await self.sleep(max(0.0, started + hc.interval_s - self.sched.now))

    # -- figures ------------------------------------------------------------------------------------
    def footprint(self) -> Footprint:
        """A managed load balancer, billed by the hour."""
        return Footprint("balancer")

    def detail(self) -> dict[str, Any]:
        now = self.sched.now if self.sched else 0.0
        d: dict[str, Any] = {
            "policy": repr(self.policy),
            "sent": {n: self.sent[n] for n in dict.fromkeys(self.backend_names + tuple(self.sent))},
            "no_backend": self.no_backend,
            "refused_retries": self.refused_retries,
        }
        if self.health_check:
            d["health_changes"] = {n: self.health_changes[n] for n in self.backend_names}
        if self.outlier:
            d["ejections"] = {n: self.ejections[n] for n in self.backend_names}
        if self._breakers:
            d["circuits"] = {n: b.detail() for n, b in self._breakers.items()}
        d["down"] = [n for n in self.backend_names if not self._eligible_name(n, now)]
        return d
