"""The ladder's steps side by side in processes (--jobs): the same results, tables and files as one at a time."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from playground import ConfigError
from playground.tools.cli import main
from playground.tools.ladder import LadderOptions, run_ladder
from playground.tools.ladder.schedule import LadderPlan

# stage 1 breaks at 10k: its 50k step may run before that is known, and must then be left out
SMALL = LadderOptions(users=(5, 10_000, 50_000), duration_s=2.0)


def _run(jobs: int, html_dir, opts: LadderOptions = SMALL) -> tuple[str, str, dict[str, bytes], list]:
    buf = io.StringIO()
    result = run_ladder(opts, ["1", "2", "4"], console=Console(file=buf, width=100), html_dir=html_dir, jobs=jobs)
    printed = buf.getvalue().replace(str(html_dir), "<dir>")
    pages = {p.name: p.read_bytes() for p in sorted(html_dir.iterdir())}
    return printed + result.render(), result.to_json(), pages, [[s.users for s in st.steps] for st in result.stages]


def test_two_jobs_give_what_one_gives_byte_for_byte(tmp_path):
    one = _run(1, tmp_path / "one")
    two = _run(2, tmp_path / "two")
    assert one == two
    assert sorted(one[2]) == ["stage1.html", "stage2.html", "stage4.html"]
    assert one[3] == [[5, 10_000], [5, 10_000, 50_000], [5, 10_000, 50_000]]  # stage 1 stopped at its break


def test_all_steps_in_parallel_keep_the_steps_past_a_break(tmp_path):
    opts = LadderOptions(users=(5, 10_000, 50_000), duration_s=2.0, stop_at_break=False)
    one = _run(1, tmp_path / "one", opts)
    assert one == _run(2, tmp_path / "two", opts)
    assert one[3] == [[5, 10_000, 50_000]] * 3


@pytest.mark.parametrize("jobs", [0, -1, 1.5, "2", True])
def test_bad_jobs_are_refused_naming_the_value(jobs):
    with pytest.raises(ConfigError, match=rf"jobs must be an integer >= 1 .*got {jobs!r}"):
        run_ladder(SMALL, ["1"], jobs=jobs)


@pytest.mark.parametrize("value, message", [
    ("0", "argument --jobs: must be a finite number >= 1, got '0'"),
    ("-2", "argument --jobs: must be a finite number >= 1, got '-2'"),
    ("two", "argument --jobs: must be a whole number, got 'two'"),
    ("1.5", "argument --jobs: must be a whole number, got '1.5'"),
])
def test_the_cli_refuses_bad_jobs(value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ladder", "--stages", "1", "--users", "5", f"--jobs={value}", "--quiet"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"playground ladder: error: {message}"


def test_the_cli_takes_jobs(tmp_path, capsys):
    out = {}
    for jobs in ("1", "2"):
        assert main(["ladder", "--stages", "1,2", "--users", "5,10k", "--duration-s", "1", "--quiet",
                     "--jobs", jobs, "--json", str(tmp_path / f"{jobs}.json")]) == 0
        out[jobs] = capsys.readouterr().out.replace(str(tmp_path / f"{jobs}.json"), "<json>")
    assert out["1"] == out["2"]
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()


# -- the schedule (no processes) ----------------------------------------------------------------
def test_in_order_the_plan_runs_each_stage_up_to_its_break():
    plan = LadderPlan([(5, 100, 1000), (5, 100)])
    seen = []
    while (step := plan.next_step(in_order=True)) is not None:
        seen.append(step)
        plan.record(*step, result=step, broke=step == (0, 1))
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert plan.ready_stages() == [0, 1]
    assert plan.results(0) == [(0, 0), (0, 1)]
    assert plan.settled() == plan.total == 5


def test_side_by_side_the_least_speculative_step_goes_first_and_a_step_past_a_break_is_unwanted():
    plan = LadderPlan([(5, 100, 1000), (5, 100, 1000)])
    assert plan.next_step() == (1, 0)  # equally sure: the stage listed last (the dearer topology)
    assert plan.next_step([(1, 0)]) == (0, 0)
    assert plan.next_step([(1, 0), (0, 0)]) == (1, 1)  # one unknown step before it
    plan.record(0, 0, "a", broke=True)
    assert not plan.wanted(0, 1) and plan.next_step([(1, 0)]) == (1, 1)
    assert plan.ready_stages() == [0]  # stage 0 is complete at its first step
    assert plan.settled() == 3
    plan.record(1, 1, "c", broke=False)
    assert plan.ready_stages() == []  # stage 1's first step is still running
    plan.record(1, 0, "b", broke=False)
    assert plan.ready_stages() == [] and plan.next_step() == (1, 2)
    plan.record(1, 2, "d", broke=False)
    assert plan.ready_stages() == [1] and plan.results(1) == ["b", "c", "d"]
    assert plan.next_step() is None
