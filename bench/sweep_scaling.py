"""How a sweep scales: the same sweep serially, on the local pool, and on a Dask LocalCluster.

    python bench/sweep_scaling.py                     # 4 points x 4 seeds, 20 simulated s each
    python bench/sweep_scaling.py --points 6 --seeds 6 --duration-s 30 --workers 2

Runs one grid three ways and checks that all three give identical rows:

* serially in this process (``executor="serial"``), the baseline;
* on the local process pool with ``--workers`` workers (default 2);
* on a Dask ``LocalCluster`` with as many single-threaded worker processes
  (loopback only, no dashboard), if ``distributed`` is installed.

For each it prints the wall time, the speedup over serial, and the per-run
overhead: (wall time - the serial time of the same runs / workers) / runs,
the cost of shipping a run to a worker and its row back, including starting
the workers (the cluster's start is timed separately). A speedup near the
number of workers needs runs that take far longer than that overhead and a
machine whose cores are otherwise idle.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playground import sweep  # noqa: E402

BUILD = str(Path(__file__).resolve().parent.parent / "tests" / "sweep_builds.py") + ":servers_build"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=4, help="grid points: servers = 2, 3, ... (default 4)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args(argv)
    grid = {"servers": list(range(2, 2 + args.points))}
    kw = dict(seeds=args.seeds, duration_s=args.duration_s, progress=False)
    runs = args.points * args.seeds
    print(f"sweep of {args.points} points x {args.seeds} seeds = {runs} runs of {args.duration_s:g} simulated s "
          f"({BUILD.rsplit('/', 1)[-1]}), {args.workers} workers, {os.cpu_count()} cores seen")

    t = time.perf_counter()
    serial = sweep(BUILD, grid, executor="serial", **kw)
    serial_s = time.perf_counter() - t
    print(f"{'serial':<28} {serial_s:8.2f} s   1.00x   ({serial_s / runs * 1000:.0f} ms a run)")

    def report(label: str, wall_s: float, rows) -> None:
        same = "same rows" if rows == serial.rows else "ROWS DIFFER"
        overhead_ms = (wall_s - serial_s / args.workers) / runs * 1000
        print(f"{label:<28} {wall_s:8.2f} s   {serial_s / wall_s:.2f}x   overhead {overhead_ms:+.0f} ms a run   {same}")

    t = time.perf_counter()
    pooled = sweep(BUILD, grid, workers=args.workers, **kw)
    report(f"local pool, {args.workers} workers", time.perf_counter() - t, pooled.rows)

    if not args.no_dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("dask: not installed (pip install -e '.[cluster]')")
            return 0
        import logging

        t = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            on_dask = sweep(BUILD, grid, executor=client.get_executor(), **kw)
            report(f"dask LocalCluster, {args.workers} workers", time.perf_counter() - t, on_dask.rows)
        print(f"{'  (cluster start, not above)':<28} {start_s:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
