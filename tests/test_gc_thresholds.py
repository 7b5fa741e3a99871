"""A run collects garbage in bigger batches, and puts the collector back as it found it."""
from __future__ import annotations

import gc
import threading

import pytest

from components import AppServer
from playground import OpenLoop, PlaygroundError, Sim
from playground._gc import GEN0_THRESHOLD, FewerCollections


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


def _sim() -> Sim:
    sim = Sim(seed=1)
    sim.add(AppServer("app", cpu_s=0.001))
    sim.load(OpenLoop("app", rate=200))
    return sim


def test_a_run_raises_the_first_threshold_while_it_goes_on_and_puts_it_back(thresholds):
    gc.set_threshold(700, 11, 12)
    seen = []
    sim = _sim()
    sim.at(0.5, lambda: seen.append(gc.get_threshold()))
    sim.run(duration_s=1)
    assert seen == [(GEN0_THRESHOLD, 11, 12)]
    assert gc.get_threshold() == (700, 11, 12)


def test_a_run_that_fails_puts_it_back_too(thresholds):
    gc.set_threshold(700, 10, 10)
    sim = _sim()

    def broken(_):
        raise RuntimeError("boom")

    sim.at(0.5, lambda: sim.sched.call_soon(broken))  # an engine callback that raises ends the run
    with pytest.raises(PlaygroundError, match="boom"):
        sim.run(duration_s=1)
    assert gc.get_threshold() == (700, 10, 10)


def test_collection_turned_off_or_a_higher_threshold_is_left_alone(thresholds):
    for threshold in ((0, 10, 10), (GEN0_THRESHOLD * 2, 10, 10)):
        gc.set_threshold(*threshold)
        seen = []
        sim = _sim()
        sim.at(0.5, lambda: seen.append(gc.get_threshold()))
        sim.run(duration_s=1)
        assert seen == [threshold] and gc.get_threshold() == threshold


def test_overlapping_runs_put_it_back_when_the_last_one_ends(thresholds):
    gc.set_threshold(700, 10, 10)
    first, second = FewerCollections(), FewerCollections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == GEN0_THRESHOLD  # the second run is still going on
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_runs_in_two_threads_at_once_leave_the_threshold_as_it_was(thresholds):
    gc.set_threshold(700, 10, 10)
    errors = []

    def run():
        try:
            for _ in range(3):
                _sim().run(duration_s=0.5)
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert gc.get_threshold() == (700, 10, 10)


def test_a_threshold_changed_during_the_run_is_kept(thresholds):
    gc.set_threshold(700, 10, 10)
    sim = _sim()
    sim.at(0.5, lambda: gc.set_threshold(1234, 10, 10))
    sim.run(duration_s=1)
    assert gc.get_threshold() == (1234, 10, 10)
