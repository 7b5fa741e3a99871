"""Ctrl-C stops a run: a plain KeyboardInterrupt comes out of ``sim.run``, and the Sim can run again.

Each case runs in a child process that sends itself SIGINT at a set virtual time, so
the interrupt lands at the same point of the run every time (no wall-clock race). A
run that ignored it would go on for 10^5 simulated seconds: the timeout is a hang
guard only.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import os, signal, sys
    import playground as pg, components as c

    mode = sys.argv[1]
    sim = pg.Sim(seed=1)
    if mode == "callbacks":  # handler-less server: the run is scheduler callbacks only, no task wakes
        sim.add(c.AppServer("app", cores=8, cpu_s=0.001))
    else:  # an async handler: every request is a trio task the virtual clock steps itself
        async def handler(request, ctx):
            await ctx.cpu(0.001)
            if mode == "in-handler" and ctx.now >= 2.0:
                os.kill(os.getpid(), signal.SIGINT)  # lands inside user code
            return "ok"
        sim.add(c.AppServer("app", cores=8, handler=handler))
    sim.load(pg.Population(target="app", users=100_000, requests_per_user_per_s=0.05))
    if mode != "in-handler":
        sim.at(2.0, os.kill, os.getpid(), signal.SIGINT)  # lands while the scheduler fires entries
    try:
        sim.run(100_000)
    except KeyboardInterrupt as exc:
        print("interrupted:", type(exc).__name__, "running:", sim.running, flush=True)
    report = sim.run(1.0)  # the same Sim runs again
    print("again:", report.ok > 0, flush=True)
""")


@pytest.mark.parametrize("mode", ["callbacks", "tasks", "in-handler"])
def test_ctrl_c_stops_a_run_with_a_plain_keyboard_interrupt(mode, tmp_path):
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["interrupted: KeyboardInterrupt running: False", "again: True"], done.stderr
