"""Bad input is refused when it is given, with a message that names the value and the rule."""
from __future__ import annotations

import pytest

from playground import (ClosedLoop, ConfigError, Node, OpenLoop, Population, Resource, Scheduler, Sim, WiringError,
                        Workload)


class Quiet(Node):
    kind = "quiet"


@pytest.fixture
def sim() -> Sim:
    sim = Sim(seed=1)
    sim.add(Quiet("a"))
    sim.add(Quiet("b"))
    return sim


@pytest.mark.parametrize("bad, message", [
    (lambda sim: sim.link("a", "b", latency_s=-1), r"^latency_s must be >= 0 seconds, got -1$"),
    (lambda sim: sim.link("a", "b", latency_s="fast"), r"^latency_s must be a number of seconds or a Distribution, got 'fast'$"),
    (lambda sim: sim.link("a", "b", loss=1.5), r"^loss must be between 0 and 1, got 1\.5$"),
    (lambda sim: sim.link("a", "b", loss=-0.1), r"^loss must be between 0 and 1, got -0\.1$"),
    (lambda sim: sim.link("a", "b", jitter_s=-0.001), r"^jitter_s must be >= 0, got -0\.001$"),
    (lambda sim: sim.link("a", "b", bandwidth_bytes_per_s=0), r"^bandwidth_bytes_per_s must be > 0, got 0$"),
    (lambda sim: sim.slow("a", factor=0), r"^slow factor must be > 0, got 0$"),
    (lambda sim: sim.slow("a", "b", factor=-2), r"^slow factor must be > 0, got -2$"),
    (lambda sim: sim.run(duration_s=0), r"^duration_s must be > 0, got 0$"),
    (lambda sim: sim.run(duration_s=-1), r"^duration_s must be > 0, got -1$"),
    (lambda sim: sim.run(duration_s=1, drain_s=-1), r"^drain_s must be >= 0, got -1$"),
    (lambda sim: sim.at(-1, print), r"^t_s must be >= 0, got -1$"),
    (lambda sim: sim.at(1, "crash"), r"^action must be callable, got 'crash'$"),
    (lambda sim: sim.diagram("png"), r"^fmt must be 'mermaid' or 'dot', got 'png'$"),
    (lambda sim: sim.add("a"), r"^add\(\) takes a Node \(a component\), got 'a'$"),
    (lambda sim: sim.load("a"), r"^load\(\) takes an OpenLoop, ClosedLoop or Population, got 'a'$"),
])
def test_bad_calls_on_a_sim(sim, bad, message):
    with pytest.raises(ConfigError, match=message):
        bad(sim)


@pytest.mark.parametrize("bad, message", [
    (lambda sim: sim.add(Quiet("a")), r"^duplicate host name 'a': host names must be unique$"),
    (lambda sim: sim.link("a", "nope"), r"^unknown host 'nope' \(known hosts: a, b\)$"),
    (lambda sim: sim["nope"], r"^unknown host 'nope' \(known hosts: a, b\)$"),
    (lambda sim: sim.crash("nope"), r"^unknown host 'nope' \(known hosts: a, b\)$"),
    (lambda sim: sim.partition("a", ["b", "ghost"]), r"^unknown host 'ghost' \(known hosts: a, b\)$"),
    (lambda sim: sim.hold("ghost", "a"), r"^unknown host 'ghost' \(known hosts: a, b\)$"),
])
def test_wiring_mistakes_name_the_host(sim, bad, message):
    with pytest.raises(WiringError, match=message):
        bad(sim)


def test_a_load_aimed_at_no_host_is_refused_before_the_run(sim):
    sim.load(OpenLoop("ghost", rate=10))
    with pytest.raises(WiringError, match=r"^unknown host 'ghost' \(known hosts: a, b, client\)$"):
        sim.run(duration_s=1)


@pytest.mark.parametrize("make, message", [
    (lambda: OpenLoop("a", rate=0), r"^rate must be > 0 requests per second, got 0$"),
    (lambda: OpenLoop("a", rate=-5), r"^rate must be > 0 requests per second, got -5$"),
    (lambda: OpenLoop("a", arrivals="bursty"), r"^arrivals must be 'poisson' or 'constant', got 'bursty'$"),
    (lambda: OpenLoop("a", connections=0), r"^connections must be an integer >= 1 or None, got 0$"),
    (lambda: OpenLoop("a", timeout_s=0), r"^timeout_s must be > 0, got 0$"),
    (lambda: OpenLoop("a", retries=-1), r"^retries must be an integer >= 0, got -1$"),
    (lambda: OpenLoop("", rate=1), r"^target must be a host name, got ''$"),
    (lambda: ClosedLoop("a", users=0), r"^users must be an integer >= 1, got 0$"),
    (lambda: ClosedLoop("a", think_time_s=-1), r"^think_time_s must be >= 0 seconds, got -1$"),
    (lambda: Population("a", users=0), r"^users must be an integer >= 1, got 0$"),
    (lambda: Population("a", users=10, requests_per_user_per_s=0), r"^requests_per_user_per_s must be > 0, got 0$"),
    (lambda: Workload(write_share=2), r"^write_share must be between 0 and 1, got 2$"),
    (lambda: Quiet(""), r"^host name must be a non-empty string, got ''$"),
    (lambda: Quiet("x", concurrency=0), r"^concurrency must be an integer >= 1 or None, got 0$"),
    (lambda: Quiet("x", queue_limit=-1), r"^queue_limit must be an integer >= 0 or None, got -1$"),
    (lambda: Sim(seed=1.5), r"^seed must be an int or a str, got 1\.5$"),
    (lambda: Sim(speed=0), r"^speed must be > 0, got 0$"),
    (lambda: Resource(Scheduler(), 0, "cores"), r"^cores capacity must be an integer >= 1, got 0$"),
])
def test_bad_configs_are_refused_when_built(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_config_errors_are_value_errors_too():
    assert issubclass(ConfigError, ValueError) and issubclass(WiringError, ConfigError)
