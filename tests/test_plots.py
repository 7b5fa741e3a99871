"""Plots of a run (faults marked) and of a ladder's stages, written as files."""
from __future__ import annotations

import sys

import pytest

from components import AppServer
from playground import Exponential, OpenLoop, Sim
from playground.tools.progress import progress_bar, track

pytest.importorskip("matplotlib")
from playground.plots import PlotsUnavailable, plot_run, plot_stages  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def a_run_with_a_crash(cores: int = 2):
    sim = Sim(seed=1)
    sim.add(AppServer("app", cores=cores, cpu_s=Exponential(0.004)))
    sim.load(OpenLoop("app", rate=200))
    sim.at(3, sim.crash, "app", 1.0)
    return sim.run(duration_s=8)


def test_a_run_is_drawn_as_a_png_with_its_faults(tmp_path):
    report = a_run_with_a_crash()
    assert [d for _, d in report.events] == ["crash app", "restart app"]
    path = plot_run(report, tmp_path / "run.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_the_ladder_stages_are_compared_in_an_svg(tmp_path):
    stages = [("2 cores", a_run_with_a_crash(2)), ("4 cores", a_run_with_a_crash(4))]
    path = plot_stages(stages, tmp_path / "sub" / "ladder.svg")
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text


def test_an_unknown_file_type_is_refused(tmp_path):
    with pytest.raises(PlotsUnavailable, match=r"^plot files must end in \.png, \.svg or \.pdf, got 'run\.gif'$"):
        plot_run(a_run_with_a_crash(), tmp_path / "run.gif")


def test_progress_is_silent_off_a_terminal(capsys):
    with progress_bar(3, "stages") as bar:
        for _ in range(3):
            bar.advance()
    assert bar.completed == 3
    assert list(track([1, 2, 3], "items")) == [1, 2, 3]
    assert capsys.readouterr() == ("", "")


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch, tmp_path):
    report = a_run_with_a_crash()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(PlotsUnavailable, match=r"^plots need matplotlib: pip install 'playground\[plots\]'$"):
        plot_run(report, tmp_path / "run.png")
