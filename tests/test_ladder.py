"""The ladder's story, checked: each stage breaks where and why the story says.

These run single steps of the ladder (the same builders ``playground ladder``
uses) at the population where each stage should break, with fewer simulated
requests per step than the CLI's default so that the suite stays quick.
"""
from __future__ import annotations

import json

import pytest

from playground import ConfigError
from playground.tools.ladder import DEFAULT_USERS, STAGES, LadderOptions, run_ladder, run_step
from playground.tools.cli import main

QUICK = LadderOptions(target_requests=6_000)


def stage(key: str):
    return next(s for s in STAGES if s.key == key)


def assert_predicted_within_one_step(step, broke_users: int) -> None:
    """Theory's saturation population (measured at a healthy step) lands within one
    population step of where the stage actually broke."""
    predicted = step.predicted_saturation_users
    assert predicted is not None and predicted > step.users
    at = next((i for i, u in enumerate(DEFAULT_USERS) if u >= predicted), len(DEFAULT_USERS))
    assert abs(at - DEFAULT_USERS.index(broke_users)) <= 1, (predicted, broke_users)


def test_monolith_serves_thousands_then_its_cpu_saturates_and_memory_runs_out():
    fine = run_step(stage("1").build, 5_000, QUICK)
    assert not fine.broke
    broke = run_step(stage("1").build, 10_000, QUICK)
    assert broke.broke
    assert broke.bottleneck.startswith("monolith (CPU")
    assert "OOM" in broke.bottleneck  # the queue grew until memory ran out
    assert broke.errors  # requests failed, not just slowed down
    assert_predicted_within_one_step(fine, 10_000)
    assert fine.predicted_bottleneck == "monolith.cpu"


def test_separate_database_moves_the_limit_to_the_app_servers_cpu():
    fine = run_step(stage("2").build, 10_000, QUICK)
    assert not fine.broke
    assert_predicted_within_one_step(fine, 50_000)
    assert fine.predicted_bottleneck == "app.cpu"
    broke = run_step(stage("2").build, 100_000, QUICK)
    assert broke.broke and broke.bottleneck == "app (CPU)"
    assert broke.bottleneck_utilisation > 0.95


def test_horizontal_scaling_moves_the_limit_to_the_database_reads():
    ok = run_step(stage("3").build, 10_000, QUICK)
    assert not ok.broke and ok.error_rate == 0.0  # an app server crashed mid-run: failover hid it
    assert any("crash" in e for _, e in ok.events)
    broke = run_step(stage("3").build, 100_000, QUICK)
    assert broke.broke and broke.bottleneck == "db (reads)"
    fine = run_step(stage("3").build, 50_000, QUICK)
    assert_predicted_within_one_step(fine, 100_000)
    assert fine.predicted_bottleneck == "db.io"


def test_cache_and_cdn_take_the_reads_and_the_app_tier_is_next():
    ok = run_step(stage("4").build, 100_000, QUICK)
    assert not ok.broke
    assert ok.cache_hit_ratio > 0.8
    three = run_step(stage("3").build, 100_000, QUICK)
    assert ok.db_queries_per_s < 0.5 * three.db_queries_per_s  # the cache took most database reads
    assert_predicted_within_one_step(ok, 1_000_000)
    broke = run_step(stage("4").build, 1_000_000, QUICK)
    assert broke.broke and "(CPU)" in broke.bottleneck and broke.bottleneck.startswith("app")


def test_regions_behind_dns_serve_a_million_users():
    step = run_step(stage("5").build, 1_000_000, QUICK)
    assert not step.broke, step.why
    assert step.throughput_per_s > 0.95 * step.offered_per_s


BEYOND = LadderOptions(duration_s=0.02)  # 200,000 requests/s at ten million users: a short step


def test_beyond_a_million_holds_ten_million_users_and_past_the_fleet_the_edge_sheds_with_429():
    ok = run_step(stage("6").build, 10_000_000, BEYOND)
    assert not ok.broke, ok.why
    assert ok.throughput_per_s > 0.95 * ok.offered_per_s and ok.error_rate == 0.0
    broke = run_step(stage("6").build, 20_000_000, BEYOND)
    assert broke.broke and broke.bottleneck == "edge (rate limit: 429)"
    assert broke.errors.get("429", 0) > 0.9 * sum(broke.errors.values()) and broke.error_rate > 0.2
    assert broke.p99_s < 0.5  # what the edge lets through is still served fast


def test_stage_6_runs_only_when_asked_for():
    six = stage("6")
    assert not six.in_default and six.users == (1_000_000, 10_000_000, 20_000_000)
    assert [s.key for s in STAGES if s.in_default] == ["1", "2", "3", "4", "5"]


def test_vertical_scaling_has_no_failover():
    vertical = LadderOptions(target_requests=6_000, scaling="vertical")
    step = run_step(stage("3").build, 10_000, vertical)
    assert step.errors  # the one big machine crashed mid-run and took every request with it
    assert ("crash app1") in [e for _, e in step.events]


def test_run_ladder_stops_each_stage_at_its_break_and_saves_json(tmp_path):
    result = run_ladder(LadderOptions(users=(100, 10_000), target_requests=3_000), stages=["1", "2"])
    assert [len(s.steps) for s in result.stages] == [2, 2]
    assert result.stages[0].broke_at.users == 10_000
    assert result.stages[1].broke_at is None
    data = json.loads(result.to_json())
    assert data["stages"][0]["steps"][1]["broke"] is True
    assert "comparison" in result.render()


def test_cli_runs_chosen_stages_and_writes_json(tmp_path, capsys):
    out = tmp_path / "ladder.json"
    assert main(["ladder", "--stages", "2", "--users", "100,1k", "--target-requests", "2000", "--quiet",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Stage 2: app + database" in printed and "the comparison" in printed
    assert json.loads(out.read_text())["stages"][0]["key"] == "2"


def test_a_fixed_step_duration_can_be_chosen():
    assert LadderOptions(duration_s=7.5).duration_for(1_000_000) == 7.5
    assert LadderOptions().duration_for(100) == 30.0  # 2 req/s: the cap
    with pytest.raises(ConfigError, match=r"^duration_s must be > 0, got 0$"):
        LadderOptions(duration_s=0)


def test_bad_options_name_the_value():
    with pytest.raises(ConfigError, match=r"^scaling must be 'horizontal' or 'vertical', got 'diagonal'$"):
        LadderOptions(scaling="diagonal")
    with pytest.raises(ConfigError, match=r"^unknown stage '9' \(stages: 1, 2, 3, 4, 5, 6\)$"):
        run_ladder(LadderOptions(users=(5,)), stages=["9"])


def test_ladder_plots_are_saved(tmp_path):
    pytest.importorskip("matplotlib")
    from playground.tools.ladder.plots import ladder_plot

    result = run_ladder(LadderOptions(users=(100, 10_000), target_requests=2_000), stages=["1"])
    paths = ladder_plot(result, tmp_path / "plots")
    assert [p.name for p in paths] == ["ladder.png", "ladder.svg"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_the_readme_shows_the_default_ladders_final_table_as_it_prints_now(capsys, monkeypatch):
    """The README quotes ``playground ladder``'s comparison table on its defaults; it must be today's."""
    from pathlib import Path

    monkeypatch.setenv("COLUMNS", "100")
    assert main(["ladder", "--quiet"]) == 0
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    start = printed.index("From 5 users to 1 million: the comparison")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8").splitlines()
    first = readme.index("From 5 users to 1 million: the comparison")
    quoted = [line.rstrip() for line in readme[first:readme.index("```", first)]]
    assert printed[start:start + len(quoted)] == quoted, "the README's ladder table is stale: paste today's"
