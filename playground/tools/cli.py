"""Command line: ``playground`` and ``python -m playground`` (the same thing).

    playground ladder                 the scaling story on its defaults (the README's first command)
    playground ladder --stages 3,4 --users 10000,100000 --seed 7 --json out.json --plots out/
    playground ladder --stages 2 --html out/   stage2.html: the run that broke stage 2, to open offline
    playground ladder --scaling vertical      the same core budget in one bigger machine
    playground serve                  a live topology on 127.0.0.1 with a dashboard
"""
from __future__ import annotations

import argparse
import sys

from .._errors import ConfigError


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x.replace("_", "").replace("k", "000").replace("M", "000000")) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="playground", description="An in-process architecture playground on trio.")
    sub = p.add_subparsers(dest="command")
    lad = sub.add_parser("ladder", help="from 5 users to 1 million: run the scaling ladder")
    lad.add_argument("--stages", default=None, help="comma-separated stage numbers (default: all, 1-5)")
    lad.add_argument("--users", type=_int_list, default=None,
                     help="comma-separated populations (default 5,100,1k,5k,10k,50k,100k,1M)")
    lad.add_argument("--rate-per-user", type=float, default=None, help="requests per user per second (default 0.02)")
    lad.add_argument("--seed", type=int, default=1)
    lad.add_argument("--slo-ms", type=float, default=None, help="p99 SLO in milliseconds (default 500)")
    lad.add_argument("--duration-s", type=float, default=None,
                     help="simulated seconds per step (default: long enough for --target-requests, 1-30 s)")
    lad.add_argument("--target-requests", type=int, default=None,
                     help="about how many requests each step simulates (default 12000)")
    lad.add_argument("--scaling", choices=("horizontal", "vertical"), default="horizontal",
                     help="stage 3+: more machines (horizontal) or one bigger machine with the same cores")
    lad.add_argument("--budget-cores", type=int, default=None, help="app-tier cores for stage 3 (default 32)")
    lad.add_argument("--all-steps", action="store_true", help="keep raising the population after a stage breaks")
    lad.add_argument("--json", metavar="PATH", help="save the results as JSON")
    lad.add_argument("--plots", metavar="DIR", help="save plots (needs the 'plots' extra: matplotlib)")
    lad.add_argument("--html", metavar="DIR",
                     help="save an HTML run report per stage (the step that broke it, else its largest)")
    lad.add_argument("--quiet", action="store_true", help="no progress bar")
    srv = sub.add_parser("serve", help="run a topology live on 127.0.0.1 with a dashboard", add_help=False)
    srv.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _ladder(args) -> int:
    from rich.console import Console

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
    console = Console() if sys.stdout.isatty() else Console(width=170)
    console.print(f"[bold]From 5 users to 1 million[/bold] - seed {opts.seed}, "
                  f"{opts.requests_per_user_per_s:g} requests per user per second, "
                  f"SLO p99 < {opts.slo_p99_s * 1000:.0f} ms, errors < {opts.max_error_rate:.0%}, "
                  f"{opts.scaling} scaling")
    result = run_ladder(opts, stages, console=console, progress=not args.quiet, html_dir=args.html)
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
    except ConfigError as exc:
        print(f"playground: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
