"""Capacity search: bisection over a monotone knob, and the load at which a topology breaks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_builds import servers_build

from playground import SLO, ConfigError, breaking_point, capacity_search
from playground._capacity import _search


class Judge:
    """A monotone yes/no with a record of what was asked."""

    def __init__(self, test):
        self.test, self.asked = test, []

    def __call__(self, value):
        self.asked.append(value)
        return self.test(value)


@pytest.mark.parametrize("threshold", [1, 2, 7, 8, 9, 31, 32])
def test_bisection_finds_the_smallest_value_that_meets_and_probes_its_neighbour(threshold):
    judge = Judge(lambda v: v >= threshold)
    assert _search(judge, 1, 32, 1, want_smallest=True) == threshold
    assert judge.asked[:2] == [32, 1] or (threshold == 1 and judge.asked == [32, 1])
    assert len(judge.asked) == len(set(judge.asked)) <= 2 + 5  # the two ends, then log2(31) halvings
    if threshold > 1:
        assert threshold - 1 in judge.asked  # the value below the answer was shown to miss


def test_no_value_in_the_range_meets():
    judge = Judge(lambda v: v >= 100)
    assert _search(judge, 1, 64, 1, want_smallest=True) is None
    assert judge.asked == [64]  # the best value misses: nothing below can meet


@pytest.mark.parametrize("limit", [1000, 4000, 39_000, 40_000])
def test_the_largest_load_held_in_steps(limit):
    judge = Judge(lambda v: v <= limit)
    assert _search(judge, 1000, 40_000, 1000, want_smallest=False) == limit
    if limit < 40_000:
        assert limit + 1000 in judge.asked  # where it breaks was probed


def test_a_load_that_breaks_at_once():
    assert _search(lambda v: False, 10, 100, 10, want_smallest=False) is None


def test_a_range_that_does_not_end_on_a_step_still_probes_hi():
    judge = Judge(lambda v: v >= 10)
    assert _search(judge, 1, 10, 4, want_smallest=True) == 10  # 1, 5, 9, then 10
    assert judge.asked[0] == 10 and 9 in judge.asked


# -- the real thing: sweeps at each probe -----------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = f"{ROOT / 'examples' / 'capacity_planning.py'}:build"


def test_the_load_two_servers_hold_and_where_they_break():
    lines = []
    result = breaking_point(servers_build, knob="rate", lo=20, hi=200, step=20, fixed={"servers": 2},
                            slo=SLO(p99_ms=100), seeds=3, duration_s=5, executor="serial", echo=lines.append)
    # two 1-core servers of 10 ms work hold 200 requests/s at 100% busy; p99 < 100 ms needs headroom
    assert result.value is not None and 80 <= result.value <= 180
    assert result.probe(result.value).verdict == "met"
    assert result.breaks_at == result.value + 20 and result.probe(result.breaks_at).verdict != "met"
    assert result.answer == f"holds rate={result.value}, breaks at rate={result.value + 20}"
    assert lines[0].startswith("Loading rate in [20, 200] for SLO p99 <= 100.0 ms")
    assert any(line.startswith("  rate=20: p99 ") and line.endswith("3 seeds - met") for line in lines)


def test_bad_searches_are_refused_before_any_run():
    for kw, message in [
        ({"lo": 5, "hi": 2}, r"^hi must be >= lo \(5\), got 2$"),
        ({"seeds": 1}, r"^seeds must be an integer >= 2, got 1$"),
        ({"lo": 1.5}, r"^lo must be an integer, got 1\.5$"),
        ({"step": 0}, r"^step must be an integer >= 1, got 0$"),
        ({"fixed": {"servers": 2}}, r"^the knob is searched, not fixed: remove 'servers' from fixed$"),
        ({"slo": {"p99_ms": 200}}, r"^slo must be an SLO, got \{'p99_ms': 200\}$"),
        ({"max_seeds": 2, "seeds": 3}, r"^max_seeds must be an integer >= 3, got 2$"),
    ]:
        with pytest.raises(ConfigError, match=message):
            capacity_search(servers_build, **kw)


def test_a_knob_the_build_does_not_take_is_named():
    with pytest.raises(ConfigError, match=r"^grid parameter must be a parameter of servers_build\(\)"):
        capacity_search(servers_build, knob="cores", lo=1, hi=2, seeds=2, duration_s=1, executor="serial",
                        echo=None)


def test_a_search_result_reads_as_its_answer_in_a_repl():
    result = capacity_search(servers_build, knob="servers", lo=1, hi=4, slo=SLO(p99_ms=200), seeds=2,
                             duration_s=5, executor="serial", echo=None)
    assert result.value in (2, 3, 4) and result.answer == f"minimum servers={result.value}"  # 1.5 Erlangs of work
    assert repr(result) == (f"<CapacityResult minimum servers={result.value} (servers in [1, 4], SLO p99 <= 200.0 ms, "
                            f"errors <= 1.00%; {len(result.probes)} probes: print it for each)>")
    assert str(result).splitlines()[-1] == result.answer


def cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "playground", "capacity", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_example_needs_three_servers_two_miss_and_three_meet():
    """The README's question on the command line: the last line is the answer, and its neighbour missed."""
    done = cli(EXAMPLE, "--knob", "servers", "--lo", "2", "--hi", "3", "--slo", "p99_ms=200", "--seeds", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "minimum servers=3"
    probes = {line.split(":")[0].strip(): line for line in lines if line.startswith("  servers=")}
    assert "- missed (saturated: app1.cpu" in probes["servers=2"] and probes["servers=3"].endswith("- met")


@pytest.mark.parametrize("slo, message", [
    ("p99=abc", "playground: --slo metric must be one of p50_ms, p99_ms, mean_ms, error_rate, throughput_per_s, "
                "busiest_utilisation, cost_per_month, got 'p99'"),
    ("p99_ms=abc", "playground: --slo p99_ms must be a number, got 'abc'"),
    ("p99_ms=-1", "playground: --slo p99_ms must be > 0, got -1.0"),
])
def test_a_bad_slo_on_the_command_line_names_the_flag(slo, message):
    done = cli(EXAMPLE, "--slo", slo)
    assert done.returncode == 2 and done.stderr.strip() == message and done.stdout == ""


def test_a_sweep_gives_its_cost_vs_p99_pareto_front():
    from playground import sweep

    result = sweep(servers_build, grid={"servers": [1, 2, 3]}, seeds=2, duration_s=3, executor="serial",
                   progress=False, fixed={"rate": 80})
    front = result.pareto()
    costs = [p["cost_per_month"].mean for p in front]
    assert front and costs == sorted(costs)
    for p in result.points:  # every point left out is beaten on both by one on the front
        if p not in front:
            assert any(f["cost_per_month"].mean <= p["cost_per_month"].mean and f["p99_ms"].mean <= p["p99_ms"].mean
                       for f in front)


def test_a_warning_from_the_probes_runs_is_shown_with_the_answer():
    """A model that draws from the shared ``random`` cannot repeat: the answer says so, per knob value."""
    from sweep_builds import shared_random_build

    from playground._sim import SHARED_RANDOM_WARNING

    lines: list[str] = []
    result = capacity_search(shared_random_build, knob="servers", lo=1, hi=2, slo=SLO(p99_ms=10**6), seeds=2,
                             duration_s=2, executor="serial", echo=lines.append)
    assert result.warnings == {SHARED_RANDOM_WARNING: tuple(sorted(p.value for p in result.probes))}
    assert f"    warning: {SHARED_RANDOM_WARNING}" in lines
    assert all(line.endswith("; 1 warning") for line in lines if line.startswith("  servers="))
    *_, warning, answer = str(result).splitlines()
    assert (warning, answer) == (f"warning (servers=1, servers=2): {SHARED_RANDOM_WARNING}", result.answer)
