"""Sweeps: rows per (point, seed), confidence intervals, common random numbers, bad grids, Ctrl-C."""
from __future__ import annotations

import csv
import importlib.util
import json
import sys

import pytest

from playground import ConfigError, Sim, SweepResult, sweep
from playground._stats import estimate, t_quantile

from sweep_builds import CALLS, dict_build, flaky_build, interrupting_build, servers_build

QUICK = dict(duration_s=5.0, progress=False)


def test_student_t_quantiles_match_the_tables():
    assert [round(t_quantile(0.975, df), 3) for df in (1, 2, 4, 9, 29)] == [12.706, 4.303, 2.776, 2.262, 2.045]
    e = estimate([1, 2, 3, 4, 5])
    assert e.mean == 3 and round(e.low, 3) == 1.037 and round(e.high, 3) == 4.963 and e.n == 5


def test_one_row_per_point_and_seed_in_point_order():
    result = sweep(servers_build, {"servers": [3, 2]}, seeds=[5, 6], executor="serial", **QUICK)
    assert isinstance(result, SweepResult)
    assert [(r["servers"], r["seed"]) for r in result.rows] == [(3, 5), (3, 6), (2, 5), (2, 6)]
    row = result.rows[0]
    for col in ("p50_ms", "p99_ms", "mean_ms", "throughput_per_s", "error_rate", "busiest_host",
                "busiest_utilisation", "cache_hit_ratio", "db_queries_per_s", "cost_per_month", "warmup_s",
                "status", "error"):
        assert col in row
    assert row["status"] == "ok" and row["p99_ms"] > row["p50_ms"] > 0 and row["cache_hit_ratio"] is None
    assert [p.params for p in result.points] == [{"servers": 3}, {"servers": 2}]
    assert result.points[1]["p99_ms"].mean > result.points[0]["p99_ms"].mean  # fewer servers, slower
    assert repr(result) == ("<SweepResult sweep_builds:servers_build over servers=[3, 2], 2 seeds: "
                            "4 runs of 5 s (4 ok); print it for the table>")  # a REPL's view: one line, not the rows


def test_a_row_is_the_same_whoever_runs_it():
    kw = dict(grid={"servers": [2, 3]}, seeds=2, **QUICK)
    serial = sweep(servers_build, executor="serial", **kw)
    pooled = sweep(servers_build, workers=2, **kw)
    by_name = sweep("sweep_builds:servers_build", workers=2, **kw)
    assert serial.rows == pooled.rows == by_name.rows


def test_build_may_take_one_dict_and_fixed_parameters_reach_every_point():
    result = sweep(dict_build, {"servers": [2]}, seeds=1, fixed={"rate": 50.0}, **QUICK)
    assert 40 < result.rows[0]["throughput_per_s"] < 60


def test_the_confidence_interval_narrows_with_more_seeds():
    few = sweep(servers_build, {"servers": [2]}, seeds=3, executor="serial", **QUICK).points[0]["mean_ms"]
    many = sweep(servers_build, {"servers": [2]}, seeds=12, executor="serial", **QUICK).points[0]["mean_ms"]
    assert few.n == 3 and many.n == 12
    assert many.half_width < few.half_width / 2


def test_common_random_numbers_narrow_the_interval_of_a_difference():
    # Is a 10% faster core worth it? Paired: both variants see seeds 1..8, so the same arrivals
    # and the same work per request (the host's own stream). Independent: the faster variant runs
    # on seeds 101..108. The difference is measured far more sharply when paired.
    kw = dict(executor="serial", **QUICK)
    seeds = list(range(1, 9))
    kw["fixed"] = {"servers": 1, "rate": 40.0}  # one server: the topologies agree host for host
    a = sweep(servers_build, {"cpu_ms": [10.0]}, seeds=seeds, **kw).rows
    b_paired = sweep(servers_build, {"cpu_ms": [9.0]}, seeds=seeds, **kw).rows
    b_indep = sweep(servers_build, {"cpu_ms": [9.0]}, seeds=[s + 100 for s in seeds], **kw).rows
    paired = estimate([x["mean_ms"] - y["mean_ms"] for x, y in zip(a, b_paired)])
    independent = estimate([x["mean_ms"] - y["mean_ms"] for x, y in zip(a, b_indep)])
    assert paired.low > 0  # faster cores are faster, and the paired interval is sure of it
    assert paired.half_width < independent.half_width / 3, (paired, independent)


def test_the_load_draws_arrivals_apart_from_what_it_asks():
    from playground import OpenLoop, Workload
    from components import AppServer

    def arrivals(write_share):
        sim = Sim(seed=3)
        sim.add(AppServer("app", cores=4, cpu_s=0.001))
        sim.load(OpenLoop("app", rate=50, workload=Workload(keys=100, write_share=write_share)))
        return [(row.t_s, row.ok) for row in sim.run(10).series["openloop->app"]], sim.run(1).sent

    assert arrivals(0.0) == arrivals(0.5)  # changing the write share moves no arrival


def test_bad_grids_fail_before_any_run_naming_the_parameter_and_value():
    with pytest.raises(ConfigError, match=r"^grid parameter must be a parameter of servers_build\(\) "
                                          r"\(it takes servers, rate, cpu_ms\), got 'sevrers'$"):
        sweep(servers_build, {"sevrers": [2]}, **QUICK)
    with pytest.raises(ConfigError, match=r"^grid\['servers'\] must be a non-empty list of values, got \[\]$"):
        sweep(servers_build, {"servers": []}, **QUICK)
    with pytest.raises(ConfigError, match=r"^build rejects servers=0: servers must be an integer >= 1, got 0$"):
        sweep(servers_build, {"servers": [2, 0], "rate": [10.0, 20.0]}, **QUICK)
    with pytest.raises(ConfigError, match=r"^seeds must be an integer >= 1 or a list of seeds, got 0$"):
        sweep(servers_build, {"servers": [2]}, seeds=0, **QUICK)
    with pytest.raises(ConfigError, match=r"^warmup_s must be shorter than duration_s \(5\), got 5$"):
        sweep(servers_build, {"servers": [2]}, warmup_s=5, **QUICK)


def test_a_build_that_cannot_be_imported_is_named():
    with pytest.raises(ConfigError, match=r"^cannot import 'no_such_module_xyz': ModuleNotFoundError"):
        sweep("no_such_module_xyz:build", {"servers": [2]}, **QUICK)


def test_a_run_that_raises_is_a_failed_row_and_the_sweep_goes_on(monkeypatch):
    calls = {"n": 0}

    def build(servers=2):
        calls["n"] += 1
        if calls["n"] > 1 and servers == 3:  # builds in the check, fails in its run
            raise RuntimeError("disk on fire")
        return servers_build(servers)

    result = sweep(build, {"servers": [3, 2]}, seeds=2, executor="serial", **QUICK)
    assert [r["status"] for r in result.rows] == ["failed", "failed", "ok", "ok"]
    assert result.rows[0]["error"] == "RuntimeError: disk on fire" and result.rows[0]["p99_ms"] is None
    assert result.points[0].n == 0 and result.points[0].failed == 2 and result.points[1].n == 2


def test_ctrl_c_keeps_and_saves_the_finished_rows(tmp_path):
    CALLS.update(n=0, interrupt_at=3 + 3)  # 3 points are built once in the check; then the 3rd run
    out_csv, out_json = tmp_path / "rows.csv", tmp_path / "rows.json"
    result = sweep(interrupting_build, {"servers": [1, 2, 3]}, seeds=2, executor="serial", csv=str(out_csv),
                   json=str(out_json), **QUICK)
    assert result.interrupted
    assert [(r["servers"], r["seed"]) for r in result.rows] == [(1, 1), (1, 2)]
    with open(out_csv) as f:
        assert [(r["servers"], r["seed"]) for r in csv.DictReader(f)] == [("1", "1"), ("1", "2")]
    assert json.loads(out_json.read_text())["interrupted"] is True
    assert "interrupted" in result.render()


def test_exports(tmp_path):
    result = sweep(servers_build, {"servers": [2, 3], "rate": [50.0, 100.0]}, seeds=2, **QUICK)
    text = result.to_csv(tmp_path / "a.csv")
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["servers", "rate", "seed"] and "cost_per_month" in header
    assert ",," in text  # no cache: an empty cell
    data = json.loads(result.to_json(tmp_path / "a.json"))
    assert len(data["rows"]) == 8 and data["points"][0]["p99_ms"]["n"] == 2
    if importlib.util.find_spec("pandas") is not None:  # optional: not a dependency
        frame = result.to_pandas()
        assert list(frame.columns[:3]) == ["servers", "rate", "seed"] and len(frame) == 8
    summary = result.summary("p99_ms")
    assert summary[0]["servers"] == 2 and summary[0]["ci_low"] <= summary[0]["mean"] <= summary[0]["ci_high"]
    assert "p99 ms" in result.render()
    path = result.plot(tmp_path / "p99.png", metric="p99_ms", x="servers")
    assert path.stat().st_size > 1000


def test_to_pandas_says_what_to_install_when_pandas_is_missing(monkeypatch):
    result = sweep(servers_build, {"servers": [2]}, seeds=1, **QUICK)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"^SweepResult.to_pandas\(\) needs pandas, which playground does not "
                                          r"install: pip install pandas$"):
        result.to_pandas()


def test_points_get_an_slo_verdict_and_rows_a_monthly_cost():
    from playground import SLO

    result = sweep(servers_build, {"servers": [2, 4]}, seeds=3, slo=SLO(p99_ms=200), executor="serial", **QUICK)
    costs = [r["cost_per_month"] for r in result.rows]
    assert all(c > 0 for c in costs) and costs[0] < costs[-1]  # two more servers cost more
    assert result.points[1].verdict == "met"  # the upper end of its p99 interval is under 200 ms
    assert result.points[0].verdict in ("met", "missed", "not sure")
    assert "SLO" in result.render() and "met" in result.render()


def test_a_saturated_point_is_named_and_misses_any_slo():
    """servers=1 is offered 150 requests/s of 10 ms work (rho 1.5): its queue grows for as long as the run
    lasts, so no p99 it shows is a steady state, and even an SLO its short runs meet is missed."""
    from playground import SLO

    result = sweep(servers_build, {"servers": [1, 4]}, seeds=2, slo=SLO(p99_ms=10**7), executor="serial", **QUICK)
    one, four = result.points
    assert all(r["saturated"].startswith("app0.cpu (rho 1.") for r in result.rows if r["servers"] == 1)
    assert all(r["saturated"] == "" for r in result.rows if r["servers"] == 4)
    assert one.saturated_runs == 2 and one.saturated[0].startswith("app0.cpu") and one.verdict == "missed"
    assert four.saturated == () and four.verdict == "met"
    text = result.render(width=200)
    assert "missed (saturated)" in text and "servers=1: saturated in 2 of 2 runs: app0.cpu" in text
    assert json.loads(result.to_json())["points"][0]["saturated_runs"] == 2


def test_a_runs_warnings_reach_its_row_and_point():
    from playground._sim import SHARED_RANDOM_WARNING
    from sweep_builds import shared_random_build

    result = sweep(shared_random_build, {"servers": [2]}, seeds=2, executor="serial", **QUICK)
    assert [r["warnings"] for r in result.rows] == [SHARED_RANDOM_WARNING] * 2
    assert result.points[0].warnings == (SHARED_RANDOM_WARNING,)
    assert f"servers=2: warning: {SHARED_RANDOM_WARNING}" in result.notes()
    clean = sweep(servers_build, {"servers": [2]}, seeds=1, executor="serial", **QUICK)
    assert clean.rows[0]["warnings"] == "" and clean.points[0].warnings == () and clean.notes() == []
