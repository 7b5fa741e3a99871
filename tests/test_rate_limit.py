"""Rate limits: the algorithms as pure functions, their configs, and the noisy-client story."""
from __future__ import annotations

import re

import pytest

from components import APIGateway, AppServer, L7Balancer, RateLimit, SlidingWindow, TokenBucket
from components.rate_limit import RateLimiter
from playground import ConfigError, OpenLoop, Request, Sim


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_a_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate_per_s=10, burst=5)
    state = bucket.new_state(0.0)
    assert [bucket.allow(state, 0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.allow(state, 0.0) == pytest.approx(0.1)  # empty: the next token in 100 ms
    assert bucket.allow(state, 0.1) == 0.0
    passed = sum(bucket.allow(state, 1.0 + i * 0.01) == 0.0 for i in range(100))  # 100/s for 1 s
    assert passed == pytest.approx(10 + 5, abs=1)  # the rate plus what the bucket had refilled


def test_a_sliding_window_counts_the_overlap_of_the_previous_window():
    window = SlidingWindow(limit=10, window_s=1.0)
    state = window.new_state(0.0)
    assert sum(window.allow(state, 0.5 + i * 0.01) == 0.0 for i in range(20)) == 10
    # at t=1.25 three quarters of the previous window still count: 7.5 of 10 used
    assert sum(window.allow(state, 1.25) == 0.0 for _ in range(5)) == 2
    assert window.allow(state, 1.25) == pytest.approx(0.05, abs=1e-6)  # until 0.3 of the weight is gone


def test_keys_are_the_client_a_header_or_everyone():
    by_client = RateLimiter(RateLimit(TokenBucket(1, burst=1)))
    assert by_client.key_of(Request(client="c1")) == "c1"
    assert by_client.key_of(Request(headers={"x-forwarded-for": "c9, lb"}, client="lb")) == "c9"
    by_key = RateLimiter(RateLimit(TokenBucket(1, burst=1), key="header:X-Api-Key"))
    assert by_key.key_of(Request(headers={"x-api-key": "k1"}, client="c1")) == "k1"
    assert by_key.key_of(Request(client="c1")) == "c1"
    assert RateLimiter(RateLimit(TokenBucket(1), key="global")).key_of(Request(client="c1")) == "*"
    refused = by_client.check(Request(client="c1"), 0.0) or by_client.check(Request(client="c1"), 0.0)
    assert refused.status == 429 and refused.headers["retry-after"] == "1"
    assert refused.text == "rate limit exceeded for 'c1': 1 requests per s (burst 1)"


def test_bad_rate_limit_configs_are_refused_with_clear_messages():
    with pytest.raises(ConfigError, match=exactly("rate_per_s must be > 0, got 0")):
        TokenBucket(rate_per_s=0)
    with pytest.raises(ConfigError, match=exactly("burst must be an integer >= 1, got 0.5")):
        TokenBucket(rate_per_s=1, burst=0.5)
    with pytest.raises(ConfigError, match=exactly("limit must be an integer >= 1, got 0")):
        SlidingWindow(limit=0)
    with pytest.raises(ConfigError, match=exactly("window_s must be finite, got inf")):
        SlidingWindow(limit=5, window_s=float("inf"))
    with pytest.raises(ConfigError, match=exactly("key must be 'client', 'global' or 'header:<name>', got 'ip'")):
        RateLimit(TokenBucket(1), key="ip")
    with pytest.raises(ConfigError, match=exactly("algorithm must be a TokenBucket or a SlidingWindow, got 10")):
        RateLimit(10)
    with pytest.raises(ConfigError, match=exactly("rate_limit must be a RateLimit or None, got 10")):
        L7Balancer("lb", ["app"], rate_limit=10)
    with pytest.raises(ConfigError, match=exactly("upstream must be a host name, got ''")):
        APIGateway("gw", "")


def noisy_sim(limit: RateLimit | None, at: str) -> Sim:
    """Five polite clients at 5 requests/s each and one noisy client at 200/s share two app servers."""
    sim = Sim(seed=7)
    for i in (1, 2):
        sim.add(AppServer(f"app{i}", cpu_s=0.02, cores=1, queue_limit=20))
    sim.add(L7Balancer("lb", ["app1", "app2"], retries=0, rate_limit=limit if at == "lb" else None))
    entry = "lb"
    if at == "gateway":
        sim.add(APIGateway("gw", "lb", rate_limit=limit))
        entry = "gw"
    for i in range(5):
        sim.load(OpenLoop(entry, rate=5, client=f"polite{i}", name=f"polite{i}", timeout_s=2.0))
    sim.load(OpenLoop(entry, rate=200, client="noisy", name="noisy", timeout_s=2.0))
    return sim


@pytest.mark.parametrize("at", ["lb", "gateway"])
def test_rate_limit_stops_a_noisy_client_without_hurting_the_others(at):
    free = noisy_sim(None, at).run(30)
    polite_free = [free.clients[f"polite{i}"] for i in range(5)]
    # unlimited, the noisy client fills both servers (100 requests/s of capacity): everyone suffers
    assert sum(c.failed for c in polite_free) > 0.2 * sum(c.sent for c in polite_free)
    limited_sim = noisy_sim(RateLimit(TokenBucket(rate_per_s=20, burst=40)), at)
    limited = limited_sim.run(30)
    polite = [limited.clients[f"polite{i}"] for i in range(5)]
    noisy = limited.clients["noisy"]
    assert all(c.failed == 0 and c.statuses.get(429, 0) == 0 for c in polite)
    assert max(c.latency.p50_s for c in polite) < 0.06  # about the 20 ms of CPU: as if alone
    assert max(c.latency.p99_s for c in polite) < min(c.latency.p99_s for c in polite_free)
    # the noisy client gets its 20/s (plus the burst) and a 429 with Retry-After for the rest
    assert noisy.statuses[200] == pytest.approx(20 * 30 + 40, rel=0.05)
    assert noisy.statuses[429] > 0.8 * noisy.sent
    limiter = limited_sim[at if at == "lb" else "gw"].detail()["rate_limit"]
    assert list(limiter["limited_by_key"]) == ["noisy"]
