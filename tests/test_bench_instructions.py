"""bench/instructions.py: its arithmetic, its children and its errors (valgrind itself is not needed here;
SimPy is, and the test extra installs it)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import instructions  # noqa: E402 - bench/ is not a package: its scripts are imported by file name


def test_the_count_per_request_is_the_difference_of_two_runs_over_the_requests_between(monkeypatch):
    runs = {20_000: (9_000_000_000, 20_010), 60_000: (13_000_000_000, 60_030)}
    monkeypatch.setattr(instructions, "count", lambda tree, model, n: runs[n])
    # start-up and the report are in both counts and cancel out
    assert instructions.per_request(BENCH.parent, "pg") == pytest.approx(4e9 / 40_020)


@pytest.mark.parametrize("model", ["pg", "pg-tasks", "simpy", "stage4", "simpy-stage4", "floor"])
def test_a_child_runs_its_model_and_prints_the_requests_served(model, capsys):
    instructions._child(BENCH.parent, model, 300)
    served = int(capsys.readouterr().out.split()[-1])
    assert 200 < served < 400  # Poisson arrivals: about 300


def test_an_unknown_model_is_named_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        instructions.main(["--models", "pg,simply"])
    err = capsys.readouterr().err
    assert "simply" in err and "simpy-stage4" in err


def test_without_valgrind_it_says_so_and_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main(["--models", "pg"]) == 2
    assert "valgrind is not on the PATH" in capsys.readouterr().err


def test_the_last_line_divides_simpys_count_by_the_engines(monkeypatch, capsys):
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    figures = {"pg": 120_000.0, "simpy": 102_000.0, "stage4": 560_000.0, "simpy-stage4": 375_000.0}
    monkeypatch.setattr(instructions, "per_request", lambda tree, model: figures[model])
    assert instructions.main(["--models", "pg,simpy,stage4,simpy-stage4"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == "instructions_vs_simpy=0.85 stage4_instructions_vs_simpy=0.67"
