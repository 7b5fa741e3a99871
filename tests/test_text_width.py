"""Text reports fit the terminal they are printed to: 100 columns unless ``COLUMNS`` says otherwise.

When output goes to a pipe there is no terminal to measure, so ``COLUMNS`` is
what counts (else 100); tables shrink their text columns to fit and never cut
a number (rich would mark a cut with "…").
"""
from __future__ import annotations

import pytest

from components import AppServer, CacheServer, L7Balancer
from playground import OpenLoop, Sim
from playground._report import text_width


def busy_report():
    sim = Sim(seed=1)
    for name in ("app-server-with-a-long-name-1", "app-server-with-a-long-name-2"):
        sim.add(AppServer(name, cores=2, cpu_s=0.004, queue_limit=5))
    sim.add(CacheServer("cache"))
    sim.add(L7Balancer("lb", ["app-server-with-a-long-name-1", "app-server-with-a-long-name-2"]))
    sim.load(OpenLoop("lb", rate=900, timeout_s=0.05, name="a-load-with-a-long-name"))
    return sim.run(2)


@pytest.mark.parametrize("columns", [None, "100", "120"])
def test_the_report_fits_the_width_it_is_given_and_cuts_no_number(monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    width = int(columns or 100)
    assert text_width(None) == width
    text = busy_report().render()
    assert max(len(line) for line in text.splitlines()) <= width
    # the run and component tables cut nothing (the theory table after them is checked on its own)
    assert "…" not in text.split("Component counters:")[0]
    assert "a-load-with-a-long-name" in text.replace("\n", "").replace("│", "").replace(" ", "") or \
        "a-load-with-a" in text  # a long name may wrap, but is not cut


def test_a_given_width_wins_and_nonsense_columns_fall_back_to_100(monkeypatch):
    monkeypatch.setenv("COLUMNS", "junk")
    assert text_width(None) == 100
    assert text_width(72) == 72
