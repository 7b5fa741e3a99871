"""SLOs: thresholds on one run (check, assert_slo) and verdicts on a sweep point's confidence intervals."""
from __future__ import annotations

import math

import pytest

from components import AppServer, L7Balancer
from playground import SLO, ConfigError, Exponential, OpenLoop, Sim, assert_slo


def two_servers(rate: float, cpu_s: float = 0.010, seed: int = 1):
    """Two 1-core servers behind a balancer: at 180 req/s each runs at ~90%, at 40 req/s ~20%."""
    sim = Sim(seed=seed)
    sim.add(AppServer("app1", cores=1, cpu_s=Exponential(cpu_s)))
    sim.add(AppServer("app2", cores=1, cpu_s=Exponential(cpu_s)))
    sim.add(L7Balancer("lb", ["app1", "app2"]))
    sim.load(OpenLoop("lb", rate=rate, timeout_s=5))
    return sim.run(duration_s=20)


@pytest.fixture(scope="module")
def light():
    return two_servers(40)


@pytest.fixture(scope="module")
def heavy():
    return two_servers(190)


# -- building an SLO ------------------------------------------------------------------------
def test_the_default_slo_is_p99_200_ms_and_one_percent_errors():
    assert SLO().thresholds == {"p99_ms": 200.0, "error_rate": 0.01}
    assert SLO(p99_ms=None, throughput_per_s=500).thresholds == {"error_rate": 0.01, "throughput_per_s": 500.0}
    assert repr(SLO(p99_ms=300, throughput_per_s=1000)) == "SLO(p99 <= 300.0 ms, errors <= 1.00%, throughput >= 1,000.0/s)"


@pytest.mark.parametrize("kw, message", [
    ({"p99_ms": float("nan")}, r"^p99_ms must be > 0, got nan$"),
    ({"p99_ms": -5}, r"^p99_ms must be > 0, got -5$"),
    ({"p99_ms": math.inf}, r"^p99_ms must be finite, got inf$"),
    ({"mean_ms": 0}, r"^mean_ms must be > 0, got 0$"),
    ({"error_rate": 1.5}, r"^error_rate must be between 0 and 1, got 1\.5$"),
    ({"error_rate": float("nan")}, r"^error_rate must be between 0 and 1, got nan$"),
    ({"throughput_per_s": -1.0}, r"^throughput_per_s must be > 0, got -1\.0$"),
    ({"p99_ms": True}, r"^p99_ms must be a number > 0, got True$"),
    ({"p99_ms": None, "error_rate": None}, r"^an SLO needs at least one threshold, got none$"),
])
def test_bad_thresholds_are_refused_with_the_value(kw, message):
    with pytest.raises(ConfigError, match=message):
        SLO(**kw)


def test_parse_reads_the_command_lines_slo():
    assert SLO.parse("p99_ms=250") == SLO(p99_ms=250)
    assert SLO.parse(["p99_ms=150,error_rate=0.05", "throughput_per_s=1_000"]) == SLO(
        p99_ms=150, error_rate=0.05, throughput_per_s=1000)
    assert SLO.parse("p50_ms=20,error_rate=none").thresholds == {"p99_ms": 200.0, "p50_ms": 20.0}


@pytest.mark.parametrize("text, message", [
    ("p99=abc", r"^--slo metric must be one of p50_ms, p99_ms, mean_ms, error_rate, throughput_per_s, "
                r"busiest_utilisation, cost_per_month, got 'p99'$"),
    ("p99_ms=abc", r"^--slo p99_ms must be a number, got 'abc'$"),
    ("p99_ms", r"^--slo must be METRIC=NUMBER pairs, got 'p99_ms'$"),
    ("p99_ms=", r"^--slo must be METRIC=NUMBER pairs, got 'p99_ms='$"),
    ("p99_ms=-3", r"^--slo p99_ms must be > 0, got -3\.0$"),
    ("error_rate=nan", r"^--slo error_rate must be between 0 and 1, got nan$"),
])
def test_bad_slo_text_names_the_flag(text, message):
    with pytest.raises(ConfigError, match=message):
        SLO.parse(text)


# -- one run ------------------------------------------------------------------------------------
def test_a_lightly_loaded_run_passes_every_threshold(light):
    check = light.check(SLO(p99_ms=200, p50_ms=50, throughput_per_s=35))
    assert check and check.passed and not check.failed
    assert [r.name for r in check.results] == ["p50_ms", "p99_ms", "error_rate", "throughput_per_s"]
    assert check["p99_ms"].measured == pytest.approx(light.p99_s * 1000)
    assert check["throughput_per_s"].measured == pytest.approx(light.throughput_per_s)
    assert "SLO: met" in str(check) and "FAIL" not in str(check)


def test_a_saturated_run_fails_p99_and_says_by_how_much(heavy):
    check = heavy.check(SLO(p99_ms=50, throughput_per_s=1000))
    assert not check
    assert [r.name for r in check.failed] == ["p99_ms", "throughput_per_s"]
    assert check["p99_ms"].measured == pytest.approx(heavy.p99_s * 1000) and heavy.p99_s > 0.050
    assert check["error_rate"].passed
    text = str(check)
    assert "SLO: MISSED" in text and "FAIL" in text and "worst host: app" in text


def test_a_minimum_throughput_fails_below_it(light):
    assert not light.check(SLO(p99_ms=None, throughput_per_s=1_000))


def test_cost_can_be_a_threshold(light):
    total = light.cost().total_per_month
    assert light.check(SLO(cost_per_month=total + 1))
    assert not light.check(SLO(cost_per_month=total - 1))
    assert light.check(SLO(cost_per_month=total - 1), prices={"core_hour": 0.0, "memory_gb_hour": 0.0})


def test_assert_slo_names_the_threshold_the_figure_and_the_worst_host(heavy):
    util = {n: s.utilisation for n, s in heavy.components.items()}
    worst = max(util, key=util.get)
    p99 = heavy.p99_s * 1000
    with pytest.raises(AssertionError) as info:
        assert_slo(heavy, p99_ms=50)
    message = str(info.value)
    assert message.startswith(f"SLO missed: p99_ms {p99:,.1f} ms > limit 50.0 ms; worst host: {worst} "
                              f"(utilisation {util[worst]:.0%}, p99 residence ")
    assert worst.startswith("app") and util[worst] > 0.8


def test_assert_slo_returns_the_check_when_it_passes(light):
    check = assert_slo(light, SLO(p99_ms=500), error_rate=0.0)
    assert check.slo == SLO(p99_ms=500, error_rate=0.0)


def test_assert_slo_refuses_an_unknown_threshold(light):
    with pytest.raises(ConfigError, match=r"^threshold must be one of p50_ms, .*, got 'p99'$"):
        assert_slo(light, p99=100)


# -- a sweep point: judged by its confidence interval ------------------------------------------
def point(**metrics):
    return {name: {"mean": (lo + hi) / 2, "low": lo, "high": hi, "n": 5} for name, (lo, hi) in metrics.items()}


@pytest.mark.parametrize("p99, verdict", [
    ((150, 190), "met"),        # the whole interval under the limit
    ((150, 200), "met"),        # the upper end on the limit: inside
    ((180, 220), "not sure"),   # the limit inside the interval
    ((201, 260), "missed"),     # the whole interval above it
])
def test_a_point_meets_only_if_the_upper_end_of_its_interval_is_inside(p99, verdict):
    assert SLO(p99_ms=200, error_rate=None).verdict(point(p99_ms=p99)) == verdict


@pytest.mark.parametrize("throughput, verdict", [
    ((1000, 1100), "met"), ((950, 1050), "not sure"), ((800, 999), "missed")])
def test_a_minimum_is_judged_by_the_lower_end(throughput, verdict):
    assert SLO(p99_ms=None, error_rate=None, throughput_per_s=1000).verdict(point(throughput_per_s=throughput)) == verdict


def test_one_missed_threshold_misses_the_point_and_one_unsure_makes_it_unsure():
    slo = SLO(p99_ms=200, error_rate=0.01)
    assert slo.verdict(point(p99_ms=(100, 150), error_rate=(0.0, 0.0))) == "met"
    assert slo.verdict(point(p99_ms=(100, 150), error_rate=(0.005, 0.02))) == "not sure"
    assert slo.verdict(point(p99_ms=(180, 220), error_rate=(0.02, 0.03))) == "missed"
    assert slo.verdicts(point(p99_ms=(180, 220), error_rate=(0.02, 0.03))) == {"p99_ms": "not sure",
                                                                               "error_rate": "missed"}


def test_an_unknown_interval_is_not_sure():
    nan = float("nan")
    assert SLO(error_rate=None).verdict(point(p99_ms=(nan, nan))) == "not sure"
    one_run = {"p99_ms": {"mean": 50.0, "low": None, "high": None, "n": 1}}  # no interval from one seed
    assert SLO(error_rate=None).verdict(one_run) == "not sure"


def test_flat_and_attribute_summaries_are_read_too():
    class Interval:
        def __init__(self, low, high):
            self.low, self.high = low, high

    class Point:
        p99_ms = Interval(10, 20)

    class SweepPoint:  # a sweep's point: metrics by name
        metrics = {"p99_ms": Interval(300, 400)}

    assert SLO(error_rate=None).verdict(Point()) == "met"
    assert SLO(error_rate=None).verdict(SweepPoint()) == "missed"
    assert SLO(error_rate=None).verdict({"p99_ms_low": 250, "p99_ms_high": 300}) == "missed"
    with pytest.raises(ConfigError, match=r"^a sweep point must summarise p99_ms with low and high ends"):
        SLO(error_rate=None).verdict({"p50_ms": {"low": 1, "high": 2}})
