"""``playground sweep``: a grid of configurations, many seeds, one table with confidence intervals.

    playground sweep examples/capacity_planning.py:build --grid servers=2,4,8 --grid cache_items=0,5000 \\
        --seeds 10 --duration-s 30 --warmup-s auto --slo p99_ms=200 --set users=1M \\
        --csv out.csv --json out.json --plot out.png [--workers N] [--dask local|tcp://HOST:8786]

``MODULE:FUNCTION`` names the build function: an importable module, or a path
to a ``.py`` file. Values read as integers (``1M``, ``10k``, ``1_000``), numbers,
booleans (``true``/``false``), ``none``, or text. The runs go to a local
process pool (one worker per core; ``--workers 1`` runs them here, one by
one), or with ``--dask`` to Dask: ``local`` starts a LocalCluster on this
machine (loopback only), ``tcp://HOST:8786`` uses a running scheduler.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Any

from .._errors import ConfigError

__all__ = ["add_parser", "run", "parse_value", "parse_assignment"]

_SUFFIX = {"k": 1_000, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}
_NUMBER = re.compile(r"^[+-]?(\d[\d_]*)(\.\d+)?([kKMG])?$")


def parse_value(text: str) -> Any:
    """``"4"`` -> 4, ``"1M"`` -> 1000000, ``"2.5k"`` -> 2500, ``"0.2"`` -> 0.2, ``"true"`` -> True, else the text."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    m = _NUMBER.match(t)
    if m:
        whole, frac, suffix = m.groups()
        number = float(t[:-1] if suffix else t) if frac else int(t[:-1] if suffix else t)
        if suffix:
            number = number * _SUFFIX[suffix]
            number = int(number) if float(number).is_integer() else number
        return number
    try:
        return float(t)  # 1e-3, inf is refused by the build's own checks
    except ValueError:
        return t


def parse_assignment(text: str, *, many: bool = False) -> tuple[str, Any]:
    """``"name=value"`` (``many``: ``"name=v1,v2,..."``, a list)."""
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE{'S' if many else ''}, got {text!r}")
    if many:
        values = [parse_value(v) for v in value.split(",") if v.strip()]
        return name, values
    return name, parse_value(value)


def _grid(text: str):
    return parse_assignment(text, many=True)


def _set(text: str):
    return parse_assignment(text)


def _warmup(text: str):
    return "auto" if text.strip().lower() == "auto" else parse_value(text)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="run a grid of configurations over many seeds, with confidence intervals",
                       description="Run a grid of configurations over many seeds: one table, 95% confidence "
                                   "intervals.", epilog=__doc__.split("\n\n", 1)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build", metavar="MODULE:FUNCTION", help="the build function (a module or a .py file)")
    p.add_argument("--grid", type=_grid, action="append", default=[], metavar="NAME=V1,V2,...",
                   help="a parameter of the build function and its values (repeat for more)")
    p.add_argument("--set", type=_set, action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter passed to every point")
    p.add_argument("--seeds", type=int, default=5, help="replications per point: seeds 1..N (default 5)")
    p.add_argument("--duration-s", type=float, default=30.0, help="simulated seconds per run (default 30)")
    p.add_argument("--warmup-s", type=_warmup, default=0.0,
                   help="seconds left out at the start of each run, or 'auto' (MSER-5)")
    p.add_argument("--slo", action="append", default=[], metavar="METRIC=NUMBER",
                   help="an SLO threshold, e.g. p99_ms=200 (each point: met / missed / not sure)")
    p.add_argument("--csv", metavar="PATH", help="save the rows as CSV")
    p.add_argument("--json", metavar="PATH", help="save the rows and point summaries as JSON")
    p.add_argument("--plot", metavar="PATH", help="plot a metric against the first grid parameter (.png/.svg/.pdf)")
    p.add_argument("--plot-metric", default="p99_ms", help="the metric --plot draws (default p99_ms)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core; 1: serial)")
    p.add_argument("--dask", metavar="local|tcp://HOST:PORT", default=None,
                   help="run on Dask: 'local' starts a LocalCluster here, or the address of a running scheduler")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _slo(texts):
    """``--slo p99_ms=200`` (repeatable, or comma-separated) as an SLO; errors name the flag."""
    if not texts:
        return None
    from .. import SLO

    return SLO.parse(texts, flag="--slo")


def _dask_executor(address: str, workers: int | None, stack):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--dask needs Dask: pip install -e '.[cluster]'") from None
    if address == "local":
        # workers import the build's module as this process does: from here, and the current directory
        path = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), path) if p)
        cluster = stack.enter_context(LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None,
                                                   silence_logs=logging.ERROR))
        client = stack.enter_context(Client(cluster))
    elif address.startswith(("tcp://", "tls://")) or ":" in address:
        client = stack.enter_context(Client(address))
    else:
        raise ConfigError(f"--dask must be 'local' or a scheduler address like tcp://HOST:8786, got {address!r}")
    return client.get_executor()


def run(args) -> int:
    from contextlib import ExitStack

    from rich.console import Console

    from .. import sweep

    if os.getcwd() not in sys.path:  # 'mymodule:build' finds a module here, as 'python -m' would
        sys.path.insert(0, os.getcwd())
    grid = dict(args.grid)
    fixed = dict(args.set)
    console = Console() if sys.stdout.isatty() else Console(width=170)
    err = Console(stderr=True)
    with ExitStack() as stack:
        executor = None
        if args.dask:
            executor = _dask_executor(args.dask, args.workers, stack)
        elif args.workers == 1:
            executor = "serial"
        result = sweep(args.build, grid, seeds=args.seeds, duration_s=args.duration_s, warmup_s=args.warmup_s,
                       executor=executor, workers=None if args.dask else args.workers, progress=not args.quiet,
                       slo=_slo(args.slo), fixed=fixed, csv=args.csv, json=args.json, console=err)
    console.print(result)
    for row in result.failed[:5]:
        params = ", ".join(f"{k}={row[k]}" for k in grid)
        console.print(f"failed: {params} seed {row['seed']}: {row['error']}")
    saved = [p for p in (args.csv, args.json) if p]
    if args.plot and result.rows:
        saved.append(str(result.plot(args.plot, metric=args.plot_metric, x=next(iter(grid), None))))
    if saved:
        console.print(f"saved {', '.join(saved)}")
    if result.interrupted:
        console.print(f"interrupted: kept {len(result.rows)} finished runs")
        return 130
    return 0
