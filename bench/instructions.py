"""Instructions per request, counted by valgrind: the engine's work against SimPy's, without the noise.

Wall-clock ratios on a shared machine move by tens of percent between runs of
the same code (SimPy's own rate on the development machine went from 40,623
to 58,314 customers/s in one day), which hides a change of a few percent. An
instruction count does not move: this script runs each model under valgrind's
cachegrind (``--cache-sim=no``: it only counts) in a child process, once for
``n1`` and once for ``n2`` requests, and reports

    (instructions for n2 - instructions for n1) / (requests served in n2 - in n1)

so the interpreter's start-up, the imports, building the topology and the
report cancel out. Each child first runs 500 requests of the same model, so
that both counts include the same warm-up. ``PYTHONHASHSEED`` is fixed: the
count is the same on every run of the same code.

The models are those of ``bench/vs_peers.py`` (the M/M/8, 1000/s, mu = 150/s:
``pg`` without a handler, ``pg-tasks`` with an async handler, ``simpy``) and
``bench/vs_simpy_stage4.py`` (``stage4`` and ``simpy-stage4``); ``floor`` counts
one task's ``sched.sleep`` wake-up instead (the engine's floor in
``bench/vs_peers.py``: what every wake-up of a handler's task costs). An instruction
is not a unit of time (a cache miss or a mispredicted branch costs more than
an add), so these ratios are not the wall-clock ones; they say how much work
each does, and whether a change to the engine made it do less.

    python bench/instructions.py                    # all six models (about 10 minutes)
    python bench/instructions.py --models pg,simpy  # some of them
    python bench/instructions.py --tree ../other    # another checkout's engine, same models

Needs ``valgrind`` on the PATH (Debian: ``apt install valgrind``). The last
line is ``instructions_vs_simpy=<x> tasks_instructions_vs_simpy=<y>
stage4_instructions_vs_simpy=<z>``: SimPy's instructions per request divided
by the engine's (above 1: the engine does less work), for the models measured.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {  # name: (requests n1, n2)
    "pg": (20_000, 60_000),
    "pg-tasks": (20_000, 60_000),
    "simpy": (20_000, 60_000),
    "stage4": (2_000, 6_000),
    "simpy-stage4": (2_000, 6_000),
    "floor": (20_000, 60_000),  # one task's wake-ups, not requests
}
WARMUP = 500
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _child(tree: Path, model: str, n: int) -> None:
    """Run ``model`` for ``n`` requests (after a warm-up) and print the requests served."""
    sys.path[:0] = [str(tree), str(tree / "bench")]
    if model == "floor":
        _floor(WARMUP + n)
        print(n)
    elif model in ("stage4", "simpy-stage4"):
        import vs_simpy_stage4 as s4

        run = s4.run_playground if model == "stage4" else s4.run_simpy
        run(WARMUP, 2000.0, 1)
        print(run(n, 2000.0, 1).requests)
    else:
        import vs_peers

        run = {"pg": vs_peers.run_playground, "pg-tasks": vs_peers.run_playground_tasks,
               "simpy": vs_peers.run_simpy}[model]
        model_of = lambda k: vs_peers.Model(rate=1000.0, mu=150.0, servers=8, requests=k, seed=1)  # noqa: E731
        run(model_of(WARMUP))
        print(run(model_of(n)).served)


def _floor(wakeups: int) -> None:
    """The engine's floor (as in ``bench/vs_peers.py``): one trio task sleeping on the virtual clock."""
    import trio

    from playground import VirtualClock

    async def main() -> None:
        sched = trio.lowlevel.current_clock().scheduler
        for _ in range(wakeups):
            await sched.sleep(0.001)

    trio.run(main, clock=VirtualClock())


def count(tree: Path, model: str, n: int) -> tuple[int, int]:
    """(instructions, requests served) of one child run under cachegrind."""
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, str(Path(__file__).resolve()), "--child", model, str(n), "--tree", str(tree)]
    env = dict(os.environ, PYTHONHASHSEED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    refs = _REFS.search(proc.stderr)
    if proc.returncode != 0 or refs is None:
        raise SystemExit(f"{model} ({n} requests) failed under valgrind (exit {proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return int(refs.group(1).replace(",", "")), int(proc.stdout.split()[-1])


def per_request(tree: Path, model: str) -> float:
    n1, n2 = MODELS[model]
    (i1, s1), (i2, s2) = count(tree, model, n1), count(tree, model, n2)
    return (i2 - i1) / (s2 - s1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout whose engine is counted")
    p.add_argument("--child", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.tree.resolve(), args.child[0], int(args.child[1]))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not on the PATH: this benchmark counts instructions with it "
              "(Debian: apt install valgrind)", file=sys.stderr)
        return 2
    tree = args.tree.resolve()
    print(f"instructions per request (valgrind cachegrind), engine from {tree}, Python {sys.version.split()[0]}")
    got: dict[str, float] = {}
    for m in models:
        got[m] = per_request(tree, m)
        n1, n2 = MODELS[m]
        unit = "wake-ups" if m == "floor" else "requests"
        print(f"  {m:<13} {got[m]:>10,.0f}   ({n1:,} and {n2:,} {unit})", flush=True)
    ratios = []
    for label, ours, theirs in (("instructions_vs_simpy", "pg", "simpy"),
                                ("tasks_instructions_vs_simpy", "pg-tasks", "simpy"),
                                ("stage4_instructions_vs_simpy", "stage4", "simpy-stage4")):
        if ours in got and theirs in got:
            ratios.append(f"{label}={got[theirs] / got[ours]:.2f}")
    if ratios:
        print(" ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
