"""``playground capacity``: the smallest value of a knob that meets an SLO, by bisection over seeds.

    playground capacity examples/capacity_planning.py:build --knob servers --lo 1 --hi 32 \\
        --slo p99_ms=200 --seeds 3 [--set users=20k] [--duration-s 10] [--workers N] [--dask local]
    playground capacity mymodule:build --knob users --lo 1k --hi 1M --step 1k --breaking-point --set servers=4

Each probe (one value of the knob, every seed) is printed with its p99 and
95% interval, error rate, cost and verdict; the last line is exactly
``minimum KNOB=N`` or ``no value in [LO, HI] meets the SLO`` (with
``--breaking-point``: ``holds KNOB=N, breaks at KNOB=M``). ``MODULE:FUNCTION``,
``--set``, ``--workers`` and ``--dask`` are read as ``playground sweep`` reads
them. ``--slo`` takes ``METRIC=NUMBER`` pairs (``p99_ms``, ``p50_ms``,
``mean_ms``, ``error_rate``, ``throughput_per_s``, ``busiest_utilisation``,
``cost_per_month``); thresholds not given keep the defaults (p99 200 ms,
errors 1%). "Not sure" counts as not met; ``--max-seeds`` retries it with
more seeds first.
"""
from __future__ import annotations

import argparse
import os
import sys

from .._errors import ConfigError
from . import sweep_cli

__all__ = ["add_parser", "run"]


def _int(text: str) -> int:
    value = sweep_cli.parse_value(text)
    if not (isinstance(value, int) and not isinstance(value, bool)):
        raise argparse.ArgumentTypeError(f"expected an integer (1000, 10k, 1M), got {text!r}")
    return value


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("capacity", help="the smallest value of a knob that meets an SLO (bisection over seeds)",
                       description="The smallest value of a knob (servers, cores, cache size) that meets an SLO "
                                   "for a given load, by bisection with several seeds at each probe; the last line "
                                   "is the answer.")
    p.add_argument("build", metavar="MODULE:FUNCTION", help="the build function (a module or a .py file)")
    p.add_argument("--knob", default="servers", help="the parameter of the build function searched (default servers)")
    p.add_argument("--lo", type=_int, default=1, help="the smallest value tried (default 1)")
    p.add_argument("--hi", type=_int, default=64, help="the largest value tried (default 64)")
    p.add_argument("--step", type=_int, default=1, help="values tried are lo, lo+step, ..., hi (default 1)")
    p.add_argument("--slo", action="append", default=[], metavar="METRIC=NUMBER",
                   help="SLO thresholds, e.g. p99_ms=200 or p99_ms=200,error_rate=0.01 (repeatable)")
    p.add_argument("--set", type=sweep_cli.parse_assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter passed to every run, e.g. users=1M")
    p.add_argument("--seeds", type=int, default=5, help="replications per probe: seeds 1..N (default 5, at least 2)")
    p.add_argument("--max-seeds", type=int, default=None,
                   help="retry a 'not sure' probe with twice the seeds, up to this many (default: no retry)")
    p.add_argument("--duration-s", type=float, default=10.0, help="simulated seconds per run (default 10)")
    p.add_argument("--warmup-s", type=sweep_cli._warmup, default=0.0,
                   help="seconds left out at the start of each run, or 'auto' (MSER-5)")
    p.add_argument("--prices", metavar="TOML", default=None, help="a TOML file of prices for the cost column")
    p.add_argument("--breaking-point", action="store_true",
                   help="the knob is a load: find the largest value that still meets the SLO")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core; 1: serial)")
    p.add_argument("--dask", metavar="local|tcp://HOST:PORT", default=None,
                   help="run on Dask: 'local' starts a LocalCluster here, or the address of a running scheduler")
    return p


def run(args) -> int:
    from contextlib import ExitStack

    from .. import SLO, Prices, breaking_point, capacity_search

    slo = SLO.parse(args.slo, flag="--slo") if args.slo else SLO()
    if args.prices is not None:
        Prices.of(args.prices)  # a missing or broken file fails now, not in every run
    if os.getcwd() not in sys.path:  # 'mymodule:build' finds a module here, as 'python -m' would
        sys.path.insert(0, os.getcwd())
    search = breaking_point if args.breaking_point else capacity_search
    with ExitStack() as stack:
        executor = None
        if args.dask:
            executor = sweep_cli._dask_executor(args.dask, args.workers, stack)
        elif args.workers == 1:
            executor = "serial"
        try:
            result = search(args.build, knob=args.knob, lo=args.lo, hi=args.hi, slo=slo, seeds=args.seeds,
                            duration_s=args.duration_s, warmup_s=args.warmup_s, fixed=dict(args.set),
                            executor=executor, workers=None if args.dask else args.workers, prices=args.prices,
                            step=args.step, max_seeds=args.max_seeds, echo=lambda line: print(line, flush=True))
        except KeyboardInterrupt:
            print("interrupted: no answer", flush=True)
            return 130
    if result.warnings:  # before the answer, which stays the last line
        print(f"the runs gave {len(result.warnings)} warning(s), shown above with their probes: "
              "fix what they name before trusting the answer")
    print(result.answer)
    return 0
