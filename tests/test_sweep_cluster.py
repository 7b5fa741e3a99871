"""Sweeps beyond one process: the CLI, and a real Dask LocalCluster giving the local pool's rows."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Executor, Future
from pathlib import Path

import pytest

from playground import ConfigError, sweep
from playground.tools.cli import main
from playground.tools.sweep_cli import parse_value

BUILDS = str(Path(__file__).with_name("sweep_builds.py"))


def test_values_on_the_command_line():
    assert [parse_value(t) for t in ("4", "1M", "10k", "2.5k", "0.25", "1e-3", "true", "False", "none", "lru")] == \
        [4, 1_000_000, 10_000, 2500, 0.25, 0.001, True, False, None, "lru"]


def test_the_sweep_command_writes_a_row_per_point_and_seed(tmp_path, capsys):
    out = tmp_path / "a.csv"
    code = main(["sweep", f"{BUILDS}:servers_build", "--grid", "servers=2,3", "--seeds", "2", "--duration-s", "3",
                 "--set", "rate=80", "--csv", str(out), "--json", str(tmp_path / "a.json"), "--plot",
                 str(tmp_path / "a.png"), "--workers", "1", "--quiet"])
    assert code == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [(r["servers"], r["seed"]) for r in rows] == [("2", "1"), ("2", "2"), ("3", "1"), ("3", "2")]
    for col in ("p50_ms", "p99_ms", "error_rate", "throughput_per_s", "cost_per_month"):
        assert col in rows[0]
    text = capsys.readouterr().out
    assert "Sweep: 4 runs" in text and "saved" in text and (tmp_path / "a.png").exists()


def test_the_sweep_command_names_bad_grids(capsys):
    assert main(["sweep", f"{BUILDS}:servers_build", "--grid", "servers=2,0", "--quiet"]) == 2
    assert capsys.readouterr().err == "playground: build rejects servers=0: servers must be an integer >= 1, got 0\n"
    assert main(["sweep", f"{BUILDS}:servers_build", "--grid", "cores=2", "--quiet"]) == 2
    assert "got 'cores'" in capsys.readouterr().err
    assert main(["sweep", "no_such_module_xyz:build", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("playground: cannot import 'no_such_module_xyz': ModuleNotFoundError")


def test_a_worker_that_cannot_import_the_build_says_which_module(tmp_path):
    # a module this process can import but the workers cannot: it is on our sys.path only
    (tmp_path / "only_here.py").write_text(
        "from sweep_builds import servers_build\n\ndef build(servers=2):\n    return servers_build(servers)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import only_here

        class Elsewhere(Executor):  # a worker that does not have our sys.path: runs here, without it
            def submit(self, fn, *args):
                sys.path.remove(str(tmp_path))
                sys.modules.pop("only_here", None)
                future = Future()
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
                finally:
                    sys.path.insert(0, str(tmp_path))
                return future

        with pytest.raises(ConfigError, match=r"^cannot import 'only_here' on the worker: ModuleNotFoundError: "
                                              r"No module named 'only_here' - the build function must be "
                                              r"importable \(a module on the workers' PYTHONPATH, or a \.py file "
                                              r"at the same path on each worker\)$"):
            sweep(only_here.build, {"servers": [2]}, seeds=1, duration_s=1.0, executor=Elsewhere(), progress=False)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_here", None)


def test_ctrl_c_stops_a_pooled_sweep_and_keeps_the_finished_rows(tmp_path):
    out = tmp_path / "rows.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "playground", "sweep", f"{BUILDS}:servers_build", "--grid",
                             "servers=2,3,4,5,6,7,8,9", "--seeds", "40", "--duration-s", "60", "--workers", "2",
                             "--csv", str(out), "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300  # a hang guard, not a speed target
    # 320 runs of 9,000 requests: minutes of work on any machine, so the signal finds it running
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    assert proc.returncode == 130, stderr
    assert "interrupted: kept" in stdout
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) < 320 and all(r["status"] == "ok" for r in rows)


@pytest.mark.cluster
def test_a_dask_local_cluster_gives_the_local_pools_rows():
    distributed = pytest.importorskip("distributed")
    kw = dict(grid={"servers": [2, 3]}, seeds=2, duration_s=3.0, progress=False)
    pooled = sweep(f"{BUILDS}:servers_build", workers=2, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in client.scheduler_info()["workers"])
        on_dask = sweep(f"{BUILDS}:servers_build", executor=client.get_executor(), **kw)
    assert on_dask.rows == pooled.rows
    assert [r["status"] for r in on_dask.rows] == ["ok"] * 4
