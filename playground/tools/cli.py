"""Command line: ``playground`` and ``python -m playground`` (the same thing).

    playground ladder                 the scaling story on its defaults (the README's first command)
    playground ladder --stages 3,4 --users 10000,100000 --seed 7 --json out.json --plots out/
    playground ladder --stages 2 --html out/   stage2.html: the run that broke stage 2, to open offline
    playground ladder --scaling vertical      the same core budget in one bigger machine
    playground ladder --jobs 1        one step at a time in this process (default: one process per core)
    playground serve                  a live topology on 127.0.0.1 with a dashboard
    playground sweep examples/capacity_planning.py:build --grid servers=2,4,8 --seeds 10 --csv out.csv
    playground capacity examples/capacity_planning.py:build --knob servers --lo 1 --hi 32 --slo p99_ms=200
"""
from __future__ import annotations

import argparse
import sys

from .._errors import ConfigError


_SUFFIXES = {"k": 1_000, "K": 1_000, "M": 1_000_000, "m": 1_000_000}


def _count(text: str) -> int:
    """A whole number of users: ``10000``, ``10_000``, ``10k``, ``1.5M``."""
    raw = text.strip().replace("_", "").replace(",", "")
    scale = _SUFFIXES.get(raw[-1:], 1)
    if scale != 1:
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be whole numbers such as 5000, 10k or 1.5M, got {text!r}") from None
    if not (value >= 1 and value == int(value) and value < 1e12):
        raise argparse.ArgumentTypeError(f"must be whole numbers >= 1 such as 5000, 10k or 1.5M, got {text!r}")
    return int(value)


def _int_list(text: str) -> tuple[int, ...]:
    """Comma-separated counts: ``5,100,1k,1.5M``."""
    return tuple(_count(x) for x in text.split(","))


def _positive(kind: type, minimum: float = 0.0, strict: bool = True):
    """An argparse type: a finite number of ``kind`` above ``minimum`` (the error names the flag)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {'whole ' if kind is int else ''}number, got {text!r}") from None
        ok = value > minimum if strict else value >= minimum
        if not ok or value != value or value in (float("inf"), float("-inf")):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
        return value

    return parse


# LadderOptions' parameters and the flags that set them, for an error from deeper down
_FLAGS = {"requests_per_user_per_s": "--rate-per-user", "users": "--users", "slo_p99_s": "--slo-ms",
          "target_requests": "--target-requests", "duration_s": "--duration-s", "budget_cores": "--budget-cores",
          "seed": "--seed", "scaling": "--scaling", "jobs": "--jobs"}


def _in_flags(message: str) -> str:
    """A ConfigError's message with the Python parameter it starts with replaced by its flag."""
    name = message.split(" ", 1)[0]
    return _FLAGS[name] + message[len(name):] if name in _FLAGS else message


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = argparse.ArgumentParser(prog="playground", description="An in-process architecture playground on trio.")
    p.add_argument("--version", action="version", version=f"playground {__version__}")
    sub = p.add_subparsers(dest="command")
    lad = sub.add_parser("ladder", help="from 5 users to 1 million: run the scaling ladder")
    lad.add_argument("--stages", default=None, help="comma-separated stage numbers (default: all, 1-5)")
    lad.add_argument("--users", type=_int_list, default=None,
                     help="comma-separated populations, k and M allowed (default 5,100,1k,5k,10k,50k,100k,1M)")
    lad.add_argument("--rate-per-user", type=_positive(float), default=None,
                     help="requests per user per second (default 0.02)")
    lad.add_argument("--seed", type=int, default=1,
                     help="seed of every random draw: the same seed gives the same results (default 1)")
    lad.add_argument("--slo-ms", type=_positive(float), default=None, help="p99 SLO in milliseconds (default 500)")
    lad.add_argument("--duration-s", type=_positive(float), default=None,
                     help="simulated seconds per step (default: long enough for --target-requests, 1-30 s)")
    lad.add_argument("--target-requests", type=_positive(int), default=None,
                     help="about how many requests each step simulates (default 12000)")
    lad.add_argument("--scaling", choices=("horizontal", "vertical"), default="horizontal",
                     help="stage 3+: more machines (horizontal) or one bigger machine with the same cores")
    lad.add_argument("--budget-cores", type=_positive(int, 2, strict=False), default=None,
                     help="app-tier cores for stage 3 (default 32)")
    lad.add_argument("--all-steps", action="store_true", help="keep raising the population after a stage breaks")
    lad.add_argument("--json", metavar="PATH", help="save the results as JSON")
    lad.add_argument("--plots", metavar="DIR", help="save plots (needs the 'plots' extra: matplotlib)")
    lad.add_argument("--html", metavar="DIR",
                     help="save an HTML run report per stage (the step that broke it, else its largest)")
    lad.add_argument("--quiet", action="store_true", help="no progress bar")
    lad.add_argument("--jobs", type=_positive(int, 1, strict=False), default=None,
                     help="steps run side by side, one process each (default: one per core; 1: one at a time, "
                          "in this process); the results are the same")
    from . import sweep_cli

    sweep_cli.add_parser(sub)
    from . import capacity_cli

    capacity_cli.add_parser(sub)
    srv = sub.add_parser("serve", help="run a topology live on 127.0.0.1 with a dashboard", add_help=False)
    srv.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _ladder(args) -> int:
    from rich.console import Console

    from playground._report import text_width

    from .ladder import LadderOptions, run_ladder

    kw = {"seed": args.seed, "scaling": args.scaling, "stop_at_break": not args.all_steps}
    if args.users:
        kw["users"] = args.users
    if args.rate_per_user is not None:
        kw["requests_per_user_per_s"] = args.rate_per_user
    if args.slo_ms is not None:
        kw["slo_p99_s"] = args.slo_ms / 1000
    if args.target_requests is not None:
        kw["target_requests"] = args.target_requests
    if args.duration_s is not None:
        kw["duration_s"] = args.duration_s
    if args.budget_cores is not None:
        kw["budget_cores"] = args.budget_cores
    opts = LadderOptions(**kw)
    stages = args.stages.split(",") if args.stages else None
    console = Console() if sys.stdout.isatty() else Console(width=text_width(None))  # piped: $COLUMNS, else 100
    console.print(f"[bold]From 5 users to 1 million[/bold] - seed {opts.seed}, "
                  f"{opts.requests_per_user_per_s:g} requests per user per second, "
                  f"SLO p99 < {opts.slo_p99_s * 1000:.0f} ms, errors < {opts.max_error_rate:.0%}, "
                  f"{opts.scaling} scaling")
    result = run_ladder(opts, stages, console=console, progress=not args.quiet, html_dir=args.html, jobs=args.jobs)
    console.print(result.comparison())
    if args.json:
        with open(args.json, "w") as f:
            f.write(result.to_json())
        console.print(f"saved {args.json}")
    if args.plots:
        from .ladder.plots import ladder_plot

        paths = ladder_plot(result, args.plots)
        console.print(f"saved {', '.join(str(p) for p in paths)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        from .live import cli_main

        return cli_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command in (None, "ladder"):
            if args.command is None:
                args = _parser().parse_args(["ladder", *argv])
            return _ladder(args)
        if args.command == "sweep":
            from . import sweep_cli

            return sweep_cli.run(args)
        if args.command == "capacity":
            from . import capacity_cli

            return capacity_cli.run(args)
    except ConfigError as exc:
        print(f"playground: {_in_flags(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a sweep's own handling (which keeps its rows): just stop
        print("playground: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
